#![cfg(not(loom))]
//! Many clients at once, and clients that misbehave, against the real TCP server: unique ids,
//! exact counts, and a server that keeps serving whatever one client does. The tests hold
//! [`serial`] so that "no server thread left" can be checked by thread name.

#[path = "support/stall.rs"]
mod stall;
#[path = "support/server.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use many_clients::client::{self, parse_greet_id};
use many_clients::conn::Mode;
use many_clients::counter::CounterKind;
use many_clients::server::{Event, Observer};
use support::engine;
use support::{
    Lines, Recorder, assert_no_server_threads, observed, poll_until, reset_on_close, serial, start,
};

const CLIENTS: u64 = 50;

/// The server's log lines, captured by a global `tracing` subscriber (installed once).
fn log() -> String {
    static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
    static INSTALLED: Once = Once::new();
    struct Capture;
    impl std::io::Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut log = LOG.lock().unwrap_or_else(|p| p.into_inner());
            log.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    INSTALLED.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_level(false)
            .init();
    });
    let log = LOG.lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&log).into_owned()
}

/// Polls the log until it has this exact line.
fn wait_for_log_line(line: &str) {
    poll_until(&format!("the log line {line:?}"), || {
        log().lines().any(|l| l.trim() == line).then_some(())
    });
}

/// `CLIENTS` greet clients on real threads, released together.
fn fifty_greets(workers: Option<usize>, counter: CounterKind) {
    let server = start(Mode::Greet, |c| {
        c.engine = engine(workers);
        c.counter = counter;
    });
    let addr = server.addr;
    let barrier = Arc::new(Barrier::new(CLIENTS as usize));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                client::greet(addr, "Hello, Server!", support::IO_TIMEOUT)
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
    let what = format!("workers {workers:?}, {counter:?}");
    assert_eq!(unique, (1..=CLIENTS).collect(), "{what}: ids {ids:?}");

    let stats = poll_until("every client counted served", || {
        let s = server.stats();
        (s.clients.active == 0 && s.clients.served == CLIENTS).then_some(s)
    });
    assert_eq!(stats.clients.issued, CLIENTS, "{what}");
    assert!(
        (1..=CLIENTS).contains(&stats.clients.peak),
        "{what}: {stats:?}"
    );
    let summary = server.stop();
    assert_eq!((summary.served, summary.refused), (CLIENTS, 0), "{what}");
    assert_eq!((summary.cut, summary.panicked), (0, 0), "{what}");
    assert_eq!(summary.peak, stats.clients.peak, "{what}");
    assert_no_server_threads();
}

#[test]
fn fifty_concurrent_greets_get_ids_1_to_50_thread_per_connection() {
    let _serial = serial();
    for counter in [
        CounterKind::Mutex,
        CounterKind::ParkingLot,
        CounterKind::Atomic,
    ] {
        fifty_greets(None, counter);
    }
}

#[test]
fn fifty_concurrent_greets_get_ids_1_to_50_with_a_pool_of_4() {
    let _serial = serial();
    for counter in [
        CounterKind::Mutex,
        CounterKind::ParkingLot,
        CounterKind::Atomic,
    ] {
        fifty_greets(Some(4), counter);
    }
}

#[test]
fn a_client_that_resets_mid_conversation_disturbs_nothing() {
    let _serial = serial();
    for workers in [None, Some(2)] {
        let recorder = Recorder::new();
        let server = start(Mode::Echo, |c| {
            c.engine = engine(workers);
            c.observer = observed(&recorder);
        });
        let mut steady = Lines::connect(server.addr);
        steady.exchange("before");
        log(); // capture from here on
        let mut rude = Lines::connect(server.addr);
        let rude_peer = rude.stream().local_addr().unwrap();
        rude.exchange("hello");
        // Half a line sits in the server's buffer when the reset comes.
        rude.send(b"never fini");
        let rude_id = recorder.id_of(rude_peer);
        reset_on_close(rude.stream());
        drop(rude);
        recorder.wait_for("the reset client's disconnect", |events| {
            events.contains(&Event::Closed { id: rude_id })
        });
        wait_for_log_line(&format!("[-] Disconnected: {rude_peer}"));
        steady.exchange("after");
        let stats = poll_until("the reset client counted served", || {
            let s = server.stats();
            (s.clients.served == 1).then_some(s)
        });
        assert_eq!((stats.clients.active, stats.live), (1, 1), "{workers:?}");
        steady.finish();
        steady.expect_then_eof(b"");
        // A new client is served.
        let mut fresh = Lines::connect(server.addr);
        fresh.exchange("new");
        fresh.finish();
        fresh.expect_then_eof(b"");
        let stats = server.wait_idle();
        assert_eq!(stats.clients.served, 3, "{workers:?}");
        let summary = server.stop();
        assert_eq!((summary.served, summary.cut, summary.panicked), (3, 0, 0));
        assert_no_server_threads();
    }
}

#[test]
fn a_client_that_never_reads_is_dropped_when_the_write_stalls() {
    let _serial = serial();
    log(); // capture from here on
    let timeout = Duration::from_millis(500);
    let recorder = Recorder::new();
    let server = start(Mode::Echo, |c| {
        c.idle_timeout = timeout;
        c.observer = observed(&recorder);
    });
    let stall::Flood {
        stream: stalled,
        sent,
        stopped,
    } = stall::flood_without_reading(server.addr, timeout);
    let events = recorder.events();
    let last = &events[events.len().saturating_sub(6)..];
    assert!(stopped, "{sent} bytes went out; the last events: {last:?}");
    let stalled_peer = stalled.local_addr().unwrap();
    let stalled_id = recorder.id_of(stalled_peer);
    assert!(sent >= 2 * 1000, "only {sent} bytes went out");
    let started = Instant::now();

    // Other clients are served all the while.
    let mut other = Lines::connect(server.addr);
    other.exchange("not stuck");
    other.finish();
    other.expect_then_eof(b"");

    recorder.wait_for("the stalled client's disconnect", |events| {
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
        len: support::IDLE.len(),
    };
    let how = if recorder.events().contains(&idle_line) {
        "an idle timeout and a drain"
    } else {
        "a write timeout"
    };
    eprintln!("the stalled client was cut by {how}, {took:?} after its last write");
    wait_for_log_line(&format!("[-] Disconnected: {stalled_peer}"));
    let name = format!("client-{stalled_id}");
    poll_until("the stalled client's thread to end", || {
        (!support::server_threads().contains(&name)).then_some(())
    });
    let mut after = Lines::connect(server.addr);
    after.exchange("still served");
    after.finish();
    after.expect_then_eof(b"");
    drop(stalled);
    let stats = server.wait_idle();
    assert_eq!(stats.clients.served, 3);
    let summary = server.stop();
    assert_eq!((summary.served, summary.cut, summary.panicked), (3, 0, 0));
    assert_no_server_threads();
}

#[test]
// ANCHOR: stalled_write
fn a_reply_larger_than_any_buffer_to_a_client_that_never_reads_times_out() {
    let _serial = serial();
    // The idle timeout is also the write timeout. Not shorter: the whole line must arrive
    // within it, even on a loaded machine, or the idle timeout answers it first.
    let timeout = Duration::from_secs(2);
    let recorder = Recorder::new();
    let server = start(Mode::Echo, |c| {
        c.idle_timeout = timeout;
        c.max_line = stall::huge_line();
        c.observer = observed(&recorder);
    });
    let stalled = stall::send_huge_line(server.addr);
    let id = recorder.id_of(stalled.local_addr().unwrap());
    let len = stall::huge_line();
    recorder.wait_for("the huge line to be read", |events| {
        events.contains(&Event::Message { id, len })
    });
    let read_at = Instant::now();
    recorder.wait_for("the stalled client's disconnect", |events| {
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
    let events = recorder.events();
    let replies = events
        .iter()
        .filter(|e| matches!(e, Event::Replied { id: i, .. } if *i == id));
    assert_eq!(
        replies.count(),
        0,
        "nothing was written whole, not even an error line"
    );
    let mut after = Lines::connect(server.addr);
    after.exchange("still served");
    after.finish();
    after.expect_then_eof(b"");
    drop(stalled);
    assert_eq!(server.wait_idle().clients.served, 2);
    let summary = server.stop();
    assert_eq!((summary.served, summary.cut, summary.panicked), (2, 0, 0));
    assert_no_server_threads();
}

/// Panics in the handler of client `victim`, on its first message.
struct PanicOnMessage {
    victim: u64,
}

impl Observer for PanicOnMessage {
    fn event(&self, event: &Event) {
        if let Event::Message { id, .. } = event
            && *id == self.victim
        {
            panic!("injected panic in client {id}'s handler");
        }
    }
}

#[test]
fn a_panicking_handler_is_contained() {
    let _serial = serial();
    for workers in [None, Some(2)] {
        let what = format!("workers {workers:?}");
        let server = start(Mode::Echo, |c| {
            c.engine = engine(workers);
            c.observer = Some(Arc::new(PanicOnMessage { victim: 2 }));
        });
        let mut one = Lines::connect(server.addr);
        one.exchange("one");
        // ANCHOR: panicking_handler
        let mut two = Lines::connect(server.addr);
        two.send(b"boom\n");
        // No reply: the handler died before answering; its socket is closed (maybe reset).
        let _ = support::read_to_eof(&mut two.reader);
        poll_until("the panicked client counted served", || {
            (server.stats().clients.served == 1).then_some(())
        });
        one.exchange("one again");
        let stats = server.stats();
        assert_eq!((stats.clients.active, stats.live), (1, 1), "{what}");
        // ANCHOR_END: panicking_handler
        one.finish();
        one.expect_then_eof(b"");
        let stats = server.wait_idle();
        assert_eq!(
            (stats.clients.served, stats.clients.issued),
            (2, 2),
            "{what}"
        );
        // Still serving, and as many clients at once as before (a pool has all its workers).
        let mut both: Vec<Lines> = (0..2).map(|_| Lines::connect(server.addr)).collect();
        for (i, c) in both.iter_mut().enumerate() {
            c.exchange(&format!("after {i}"));
        }
        for c in both {
            c.finish();
            c.expect_then_eof(b"");
        }
        assert_eq!(server.wait_idle().clients.served, 4, "{what}");
        let summary = server.stop();
        assert_eq!(
            (summary.served, summary.panicked, summary.cut),
            (4, 1, 0),
            "{what}"
        );
        assert_no_server_threads();
    }
}

/// An observer that panics on every event the accept loop and shutdown send it.
struct PanicOnAcceptEvents;

impl Observer for PanicOnAcceptEvents {
    fn event(&self, event: &Event) {
        if matches!(
            event,
            Event::Connected { .. }
                | Event::Refused { .. }
                | Event::ShutdownBegan { .. }
                | Event::Drained
        ) {
            panic!("injected panic in the observer on {event:?}");
        }
    }
}

#[test]
fn a_panicking_observer_does_not_stop_the_accept_loop() {
    // The accept loop runs the observer for `Connected` and `Refused`; an earlier version let
    // the panic end the loop, and with it the server.
    let _serial = serial();
    let server = start(Mode::Echo, |c| {
        c.max_connections = 1;
        c.observer = Some(Arc::new(PanicOnAcceptEvents));
    });
    let mut first = Lines::connect(server.addr);
    first.exchange("first");
    // At the limit: refused (a `Refused` event, another panic), answered busy all the same.
    let mut refused = Lines::connect(server.addr);
    assert_eq!(refused.line(), "error: server busy, try again later\n");
    first.finish();
    first.expect_then_eof(b"");
    // Still accepting, one after another.
    for i in 0..3 {
        poll_until("the slot free again", || {
            (server.stats().live == 0).then_some(())
        });
        let mut next = Lines::connect(server.addr);
        next.exchange(&format!("next {i}"));
        next.finish();
        next.expect_then_eof(b"");
    }
    let summary = server.stop();
    assert_eq!(
        (summary.served, summary.refused, summary.panicked),
        (4, 1, 0),
        "observer panics are not handler panics, and nothing else was lost"
    );
    assert_no_server_threads();
}
