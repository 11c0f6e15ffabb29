#![cfg(not(any(loom, shuttle)))]
//! Many clients at once against the real TCP server, and what one client or one panic must not
//! do to the others: unique ids and exact counts under a burst, a write to a client that never
//! reads cut at its timeout, a handler that panics (again and again, while well-behaved
//! clients are served, and as shutdown closes it), and an observer that panics in the accept
//! loop. Against every engine. (The faults a hostile client can cause are in
//! `tests/hostile.rs`.)

#[path = "support/good.rs"]
mod good;
#[path = "support/stall.rs"]
mod stall;
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use good::{Good, GoodPlan, Tally, figures};
use many_clients::client::{self, parse_greet_id};
use many_clients::conn::Mode;
use many_clients::counter::CounterKind;
use many_clients::server::events::Listeners;
use many_clients::server::{Engine, Event};
use support::{
    BUSY, Client, SETTLE, T, TestServer, at_least, eventually, pool_of, server_cpu_ticks, show,
    start,
};

support::engine_tests!(
    fifty_concurrent_greets_get_ids_1_to_50,
    a_reply_larger_than_any_buffer_to_a_client_that_never_reads_times_out,
    a_panicking_handler_is_contained,
    a_panicking_observer_does_not_stop_the_accept_loop,
    idle_clients_cost_no_cpu,
);

/// Well-behaved clients running beside the panics.
const GOOD: usize = 3;

const CLIENTS: u64 = 50;

/// `CLIENTS` greet clients on real threads, released together, with each counter.
fn fifty_concurrent_greets_get_ids_1_to_50(engine: Engine) {
    let mut runs = vec![
        (CounterKind::Mutex, Listeners::PerLoop),
        (CounterKind::ParkingLot, Listeners::PerLoop),
        (CounterKind::Atomic, Listeners::PerLoop),
    ];
    // Event loops can also share one listening socket, each taking one connection a turn.
    if let Engine::Events { .. } = engine {
        runs.push((CounterKind::Atomic, Listeners::Shared));
    }
    for (counter, listeners) in runs {
        let server = start(Mode::Greet, engine, |c| {
            c.counter = counter;
            c.listeners = listeners;
        });
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
        let what = format!("{engine:?}, {counter:?}, {listeners:?}");
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
        if let (Engine::Events { loops }, Listeners::Shared) = (engine, listeners) {
            // Every loop was woken by the burst and took its share, one a turn.
            let serving: BTreeSet<String> = (1..=CLIENTS)
                .filter_map(|id| server.recorder.handler_of(id))
                .collect();
            assert_eq!(serving.len(), loops, "{what}: served by {serving:?}");
        }
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
    // Timed from before the line is sent: the server's write clock cannot start earlier, so
    // the lower bound below holds however late this thread runs.
    let sent_at = Instant::now();
    let (stalled, id) = stall::stuck_on_huge_line(&server);
    server
        .recorder
        .wait_for("the stalled client's disconnect", |events| {
            events.contains(&Event::Closed { id })
        });
    let took = sent_at.elapsed();
    // Cut once the reply's write has made no progress for the timeout. The kernel finds the
    // last room for it within a few hundred milliseconds (measured: ~0.3 s after the line was
    // read, so the cut came ~2.55 s after it; it came after 6 s when a blocking write waited
    // the whole timeout per call).
    assert!(took >= timeout, "closed after {took:?}");
    assert!(
        took < timeout + Duration::from_millis(1500),
        "closed {took:?} after the line was sent"
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

/// The length of the line that makes the observer panic (no well-behaved line is this long).
const PANIC_LEN: usize = 77;
/// A pool's size in the panic test: fewer workers than panics.
const PANIC_POOL: usize = 4;

/// Sends the fatal line and checks what a client of a panicking handler sees: the connection
/// closes without a reply.
fn fatal_line(h: &TestServer) -> u64 {
    let mut c = h.client();
    let id = h.recorder.id_of(c.local);
    c.send(&[vec![b'P'; PANIC_LEN], b"\n".to_vec()].concat());
    c.half_close();
    c.expect_rest(b"");
    h.wait_gone(id);
    id
}

// The only test of a panicking handler (chapter 9 includes its first part). A pool gets fewer
// workers than there are panics below: a panic that took its worker with it would leave nobody
// to serve.
fn a_panicking_handler_is_contained(engine: Engine) {
    let h = start(Mode::Echo, pool_of(engine, PANIC_POOL), |_| {});
    // First on its own: client 2's handler panics on its first message, client 1 looks on.
    h.recorder
        .panic_when(|e| matches!(e, Event::Message { id: 2, .. }));
    let mut one = h.client();
    one.exchange("one");
    // ANCHOR: panicking_handler
    let mut two = h.client();
    two.send(b"boom\n");
    // No reply: the handler died before answering; its socket is closed (maybe reset).
    let _ = two.rest(T);
    eventually("the panicked client counted served", SETTLE, || {
        h.stats().clients.served == 1
    });
    one.exchange("one again");
    let stats = h.stats();
    assert_eq!((stats.clients.active, stats.live), (1, 1));
    // ANCHOR_END: panicking_handler
    one.half_close();
    one.expect_rest(b"");
    let stats = h.wait_live(0);
    assert_eq!((stats.clients.served, stats.clients.issued), (2, 2));
    // Still serving, and as many clients at once as before (a pool has all its workers).
    let mut all: Vec<Client> = (0..PANIC_POOL).map(|_| h.client()).collect();
    for (i, c) in all.iter_mut().enumerate() {
        c.exchange(&format!("after {i}"));
    }
    for mut c in all {
        c.half_close();
        c.expect_rest(b"");
    }
    assert_eq!(h.wait_live(0).clients.served, 2 + PANIC_POOL as u64);

    // Then more panics than a pool has workers, while well-behaved clients are served.
    h.recorder
        .panic_when(|e| matches!(e, Event::Message { len: PANIC_LEN, .. }));
    let good = Good::start(&h, GoodPlan::new(GOOD));
    for _ in 0..PANIC_POOL + 1 {
        let before = good.answered();
        fatal_line(&h);
        assert!(h.stats().clients.is_consistent());
        good.wait_answers(2);
        assert!(good.answered() > before);
    }
    // Enough short connections afterwards that the accept loop tidies up its list of finished
    // threads: the panics must still be counted at the end.
    for i in 0..70 {
        h.serves_a_new_client(&format!("short {i}"));
    }
    let stats = h.stats();
    assert!(stats.clients.is_consistent(), "{stats:?}");
    let phase1 = good.stop();
    let stats = h.wait_live(0);
    assert_eq!(
        stats.clients.served, stats.clients.issued,
        "every client counted served: {stats:?}"
    );

    // Shutdown with a handler that panics as it closes.
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let mut c = h.client();
    let id = h.recorder.id_of(c.local);
    h.recorder.panic_when(move |e| *e == Event::Closed { id });
    good.shutting_down();
    let stopped = h.stop_telling(&mut c);
    // Client 2's, the fatal lines', and the one on close.
    let panics = 1 + (PANIC_POOL + 1) + 1;
    assert_eq!(stopped.summary.panicked, panics, "{:?}", stopped.summary);
    let all = Tally::merged([phase1, good.stop()]);
    figures(
        engine,
        "panics",
        &[
            "handler panic, one at a time",
            "more handler panics than a pool has workers",
            "panic while shutting down",
        ],
        panics as u64,
        &all,
        "",
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

// ANCHOR: idle_cpu
/// No busy waiting: with 200 clients connected and silent, the server's threads use (almost) no
/// CPU. A thread blocked in `read` and an event loop asleep in `poll` until its next deadline
/// both cost nothing; a loop that polled with a zero timeout would use a whole core (100 ticks
/// a second).
fn idle_clients_cost_no_cpu(engine: Engine) {
    const IDLE: usize = 200;
    // Every idle client held by a worker of its own: the premise is 200 served at once.
    let engine = at_least(engine, IDLE);
    let server = start(Mode::Echo, engine, |_| {});
    let clients: Vec<Client> = (0..IDLE).map(|_| Client::connect(server.addr)).collect();
    server.wait_live(IDLE);
    // Everyone has settled into waiting: a connection's thread reaches `read`, a loop its poll.
    eventually("the server's threads to go quiet", SETTLE, || {
        let before = server_cpu_ticks();
        thread::sleep(Duration::from_millis(100)); // a measuring interval, not synchronisation
        server_cpu_ticks() == before
    });
    let before = server_cpu_ticks();
    let began = Instant::now();
    thread::sleep(Duration::from_secs(1)); // the interval measured, not synchronisation
    let used = server_cpu_ticks() - before;
    let over = began.elapsed();
    assert!(
        used <= 3,
        "{} with {IDLE} idle clients used {used} ticks of CPU in {over:?}",
        engine.name()
    );
    drop(clients);
    server.stop_when_idle();
}
// ANCHOR_END: idle_cpu
