#![cfg(not(loom))]
//! Many clients at once, and clients that misbehave, against the real TCP server: unique ids,
//! exact counts, and a server that keeps serving whatever one client does. Against every
//! engine.

#[path = "support/log.rs"]
mod log;
#[path = "support/stall.rs"]
mod stall;
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use many_clients::client::{self, parse_greet_id};
use many_clients::conn::Mode;
use many_clients::counter::CounterKind;
use many_clients::server::{Engine, Event};
use support::{BUSY, Client, IDLE, SETTLE, T, eventually, pool_of, show, start};

support::engine_tests!(
    fifty_concurrent_greets_get_ids_1_to_50,
    a_reply_larger_than_any_buffer_to_a_client_that_never_reads_times_out,
    a_client_that_resets_mid_conversation_disturbs_nothing,
    a_client_that_never_reads_is_dropped_when_the_write_stalls,
    a_panicking_handler_is_contained,
    a_panicking_observer_does_not_stop_the_accept_loop,
);

const CLIENTS: u64 = 50;

/// `CLIENTS` greet clients on real threads, released together, with each counter.
fn fifty_concurrent_greets_get_ids_1_to_50(engine: Engine) {
    for counter in [
        CounterKind::Mutex,
        CounterKind::ParkingLot,
        CounterKind::Atomic,
    ] {
        let server = start(Mode::Greet, engine, |c| c.counter = counter);
        let addr = server.addr;
        let barrier = Arc::new(Barrier::new(CLIENTS as usize));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    client::greet(addr, "Hello, Server!", T)
                })
            })
            .collect();
        let ids: Vec<u64> = clients
            .into_iter()
            .map(|c| {
                let reply = c.join().unwrap().expect("a greet exchange");
                parse_greet_id(&reply).unwrap_or_else(|| panic!("wrong reply {reply:?}"))
            })
            .collect();
        let unique: BTreeSet<u64> = ids.iter().copied().collect();
        let what = format!("{engine:?}, {counter:?}");
        assert_eq!(unique, (1..=CLIENTS).collect(), "{what}: ids {ids:?}");

        let mut stats = server.stats();
        eventually("every client counted served", SETTLE, || {
            stats = server.stats();
            stats.clients.active == 0 && stats.clients.served == CLIENTS
        });
        assert_eq!(stats.clients.issued, CLIENTS, "{what}");
        assert!(
            (1..=CLIENTS).contains(&stats.clients.peak),
            "{what}: {stats:?}"
        );
        let summary = server.stop().summary;
        assert_eq!((summary.served, summary.refused), (CLIENTS, 0), "{what}");
        assert_eq!((summary.cut, summary.panicked), (0, 0), "{what}");
        assert_eq!(summary.peak, stats.clients.peak, "{what}");
    }
}

// ANCHOR: stalled_write
fn a_reply_larger_than_any_buffer_to_a_client_that_never_reads_times_out(engine: Engine) {
    // The idle timeout is also the write timeout. Not shorter: the whole line must arrive
    // within it, even on a loaded machine, or the idle timeout answers it first.
    let timeout = Duration::from_secs(2);
    let server = start(Mode::Echo, engine, |c| {
        c.idle_timeout = timeout;
        c.max_line = stall::huge_line();
    });
    let (stalled, id) = stall::stuck_on_huge_line(&server);
    let read_at = Instant::now();
    server
        .recorder
        .wait_for("the stalled client's disconnect", |events| {
            events.contains(&Event::Closed { id })
        });
    let took = read_at.elapsed();
    // Cut once the reply's write has made no progress for the timeout. The kernel finds the
    // last room for it within a few hundred milliseconds (measured: ~0.3 s after the line was
    // read, so the cut came ~2.55 s after it; it came after 6 s when a blocking write waited
    // the whole timeout per call).
    assert!(took >= timeout, "closed after {took:?}");
    assert!(
        took < timeout + Duration::from_millis(1500),
        "closed {took:?} after the line was read"
    );
    // ANCHOR_END: stalled_write
    assert_eq!(
        server.recorder.lines(id),
        (1, 0),
        "nothing was written whole, not even an error line"
    );
    server.serves_a_new_client("still served");
    drop(stalled);
    assert_eq!(server.wait_live(0).clients.served, 2);
    let summary = server.stop().summary;
    assert_eq!((summary.served, summary.cut, summary.panicked), (2, 0, 0));
}

fn a_client_that_resets_mid_conversation_disturbs_nothing(engine: Engine) {
    let log = log::log();
    let server = start(Mode::Echo, engine, |_| {});
    let mut steady = server.client();
    steady.exchange("before");
    let mut rude = server.client();
    let rude_peer = rude.local;
    rude.exchange("hello");
    // Half a line sits in the server's buffer when the reset comes.
    rude.send(b"never fini");
    let rude_id = server.recorder.id_of(rude_peer);
    rude.reset();
    server
        .recorder
        .wait_for("the reset client's disconnect", |events| {
            events.contains(&Event::Closed { id: rude_id })
        });
    log.wait_for_line(&format!("[-] Disconnected: {rude_peer}"));
    steady.exchange("after");
    let mut stats = server.stats();
    eventually("the reset client counted served", SETTLE, || {
        stats = server.stats();
        stats.clients.served == 1
    });
    assert_eq!((stats.clients.active, stats.live), (1, 1), "{engine:?}");
    steady.half_close();
    steady.expect_rest(b"");
    // A new client is served.
    server.serves_a_new_client("new");
    let stats = server.wait_live(0);
    assert_eq!(stats.clients.served, 3, "{engine:?}");
    let summary = server.stop().summary;
    assert_eq!((summary.served, summary.cut, summary.panicked), (3, 0, 0));
}

fn a_client_that_never_reads_is_dropped_when_the_write_stalls(engine: Engine) {
    let log = log::log();
    let timeout = Duration::from_millis(500);
    let server = start(Mode::Echo, engine, |c| c.idle_timeout = timeout);
    let stall::Flood {
        stream: stalled,
        sent,
        stopped,
    } = stall::flood_without_reading(server.addr, timeout);
    let events = server.recorder.events();
    let last = &events[events.len().saturating_sub(6)..];
    assert!(stopped, "{sent} bytes went out; the last events: {last:?}");
    let stalled_peer = stalled.local_addr().unwrap();
    let stalled_id = server.recorder.id_of(stalled_peer);
    assert!(sent >= 2 * 1000, "only {sent} bytes went out");
    let started = Instant::now();

    // Other clients are served all the while.
    server.serves_a_new_client("not stuck");

    server
        .recorder
        .wait_for("the stalled client's disconnect", |events| {
            events.contains(&Event::Closed { id: stalled_id })
        });
    let took = started.elapsed();
    // The write times out; or, should replies creep out after all (see
    // `flood_without_reading`) and the batch take longer than the idle timeout, the next read
    // gets the idle timeout and the drain (at most 1 s) ends the connection.
    assert!(
        took < timeout * 2 + Duration::from_secs(2),
        "closed only after {took:?}"
    );
    let idle_line = Event::Replied {
        id: stalled_id,
        len: IDLE.len(),
    };
    let how = if server.recorder.events().contains(&idle_line) {
        "an idle timeout and a drain"
    } else {
        "a write timeout"
    };
    eprintln!("the stalled client was cut by {how}, {took:?} after its last write");
    log.wait_for_line(&format!("[-] Disconnected: {stalled_peer}"));
    // Its connection ended, and with a thread per connection, its thread too.
    server.wait_gone(stalled_id);
    server.serves_a_new_client("still served");
    drop(stalled);
    let stats = server.wait_live(0);
    assert_eq!(stats.clients.served, 3);
    let summary = server.stop().summary;
    assert_eq!((summary.served, summary.cut, summary.panicked), (3, 0, 0));
}

fn a_panicking_handler_is_contained(engine: Engine) {
    let what = format!("{engine:?}");
    // A pool of 2: the panic must not cost it a worker.
    let server = start(Mode::Echo, pool_of(engine, 2), |_| {});
    // Client 2's handler panics on its first message.
    server
        .recorder
        .panic_when(|e| matches!(e, Event::Message { id: 2, .. }));
    let mut one = server.client();
    one.exchange("one");
    // ANCHOR: panicking_handler
    let mut two = server.client();
    two.send(b"boom\n");
    // No reply: the handler died before answering; its socket is closed (maybe reset).
    let _ = two.rest(T);
    eventually("the panicked client counted served", SETTLE, || {
        server.stats().clients.served == 1
    });
    one.exchange("one again");
    let stats = server.stats();
    assert_eq!((stats.clients.active, stats.live), (1, 1), "{what}");
    // ANCHOR_END: panicking_handler
    one.half_close();
    one.expect_rest(b"");
    let stats = server.wait_live(0);
    assert_eq!(
        (stats.clients.served, stats.clients.issued),
        (2, 2),
        "{what}"
    );
    // Still serving, and as many clients at once as before (a pool has all its workers).
    let mut both: Vec<Client> = (0..2).map(|_| server.client()).collect();
    for (i, c) in both.iter_mut().enumerate() {
        c.exchange(&format!("after {i}"));
    }
    for mut c in both {
        c.half_close();
        c.expect_rest(b"");
    }
    assert_eq!(server.wait_live(0).clients.served, 4, "{what}");
    let summary = server.stop().summary;
    assert_eq!(
        (summary.served, summary.panicked, summary.cut),
        (4, 1, 0),
        "{what}"
    );
}

fn a_panicking_observer_does_not_stop_the_accept_loop(engine: Engine) {
    // The accept loop runs the observer for `Connected` and `Refused`; an earlier version let
    // the panic end the loop, and with it the server.
    let server = start(Mode::Echo, engine, |c| c.max_connections = 1);
    server.recorder.panic_when(|event| {
        matches!(
            event,
            Event::Connected { .. }
                | Event::Refused { .. }
                | Event::ShutdownBegan { .. }
                | Event::Drained
        )
    });
    let mut first = server.client();
    first.exchange("first");
    // At the limit: refused (a `Refused` event, another panic), answered busy all the same.
    let mut refused = server.client();
    assert_eq!(show(&refused.line()), show(BUSY));
    first.half_close();
    first.expect_rest(b"");
    // Still accepting, one after another.
    for i in 0..3 {
        eventually("the slot free again", SETTLE, || server.stats().live == 0);
        server.serves_a_new_client(&format!("next {i}"));
    }
    let summary = server.stop().summary;
    assert_eq!(
        (summary.served, summary.refused, summary.panicked),
        (4, 1, 0),
        "observer panics are not handler panics, and nothing else was lost"
    );
}
