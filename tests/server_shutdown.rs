#![cfg(not(loom))]
//! Graceful shutdown of the real TCP server with clients in every state: waiting for input,
//! half-way through a line, with a line the server has read but maybe not answered yet, queued
//! for a pool worker, and one that never reads. The tests hold [`serial`] so that "no server
//! thread left" can be checked by thread name.

#[path = "support/stall.rs"]
mod stall;
#[path = "support/server.rs"]
mod support;

use std::time::{Duration, Instant};

use many_clients::conn::Mode;
use many_clients::server::Event;
use support::engine;
use support::{
    Lines, Recorder, SHUTTING_DOWN, assert_no_server_threads, observed, poll_until, serial, start,
};

/// Talkers exchange a line, then send a second one and wait until the server has read it;
/// the others connect and say nothing, or only half a line. Then shutdown.
fn shutdown_mid_conversation(workers: Option<usize>) {
    const TALKERS: usize = 3;
    const SILENT: usize = 4;
    let what = format!("workers {workers:?}");
    let grace = Duration::from_secs(5);
    let recorder = Recorder::new();
    let server = start(Mode::Echo, |c| {
        c.engine = engine(workers);
        c.grace = grace;
        c.observer = observed(&recorder);
    });
    // Talkers first: in a pool they get the workers, so their lines are read.
    let mut talkers: Vec<(u64, Lines)> = (0..TALKERS)
        .map(|i| {
            let mut c = Lines::connect(server.addr);
            c.exchange(&format!("first {i}"));
            (recorder.id_of(c.stream().local_addr().unwrap()), c)
        })
        .collect();
    let mut silent: Vec<Lines> = (0..SILENT).map(|_| Lines::connect(server.addr)).collect();
    silent[0].send(b"half a li");
    for (i, (_, c)) in talkers.iter_mut().enumerate() {
        c.send(format!("second {i}\n").as_bytes());
    }
    for (id, _) in &talkers {
        recorder.wait_for("the talkers' second lines to be read", |events| {
            Recorder::messages_from(events, *id) == 2
        });
    }
    let clients = TALKERS + SILENT;
    poll_until("every client accepted", || {
        (server.stats().live == clients).then_some(())
    });

    // ANCHOR: mid_conversation
    assert_eq!(server.shutdown(), clients, "{what}");
    let began = Instant::now();
    // Each client closes once it has read everything, as a real one would.
    for (i, (_, mut c)) in talkers.into_iter().enumerate() {
        c.expect_echo(&format!("second {i}"));
        c.expect_then_eof(SHUTTING_DOWN);
    }
    for c in silent {
        c.expect_then_eof(SHUTTING_DOWN);
    }
    let summary = server.join();
    let took = began.elapsed();
    assert!(took < grace, "{what}: join took {took:?}");
    // ANCHOR_END: mid_conversation
    assert_eq!(summary.served, clients as u64, "{what}");
    assert_eq!(
        (summary.cut, summary.panicked, summary.refused),
        (0, 0, 0),
        "{what}"
    );
    assert!(summary.peak >= clients as u64, "{what}: {summary:?}");
    let events = recorder.events();
    assert!(
        events.contains(&Event::ShutdownBegan { live: clients }),
        "{what}"
    );
    assert_eq!(events.last(), Some(&Event::Drained), "{what}");
    assert_no_server_threads();
}

#[test]
fn shutdown_answers_what_was_read_and_tells_waiting_clients() {
    let _serial = serial();
    shutdown_mid_conversation(None);
}

#[test]
fn shutdown_with_a_pool_reaches_queued_connections_too() {
    let _serial = serial();
    // 4 workers, 7 clients: three silent ones wait in the queue until shutdown frees a worker.
    shutdown_mid_conversation(Some(4));
}

#[test]
fn shutdown_with_no_clients_stops_at_once() {
    let _serial = serial();
    for workers in [None, Some(3)] {
        let server = start(Mode::Greet, |c| c.engine = engine(workers));
        let began = Instant::now();
        assert_eq!(server.shutdown(), 0);
        assert_eq!(server.shutdown(), 0, "a second shutdown is harmless");
        let summary = server.join();
        assert!(began.elapsed() < Duration::from_secs(2), "{workers:?}");
        assert_eq!(summary, Default::default());
        assert_no_server_threads();
    }
}

#[test]
fn shutdown_cuts_a_client_that_never_reads_after_the_grace_period() {
    let _serial = serial();
    for workers in [None, Some(2)] {
        let what = format!("workers {workers:?}");
        let grace = Duration::from_millis(500);
        let recorder = Recorder::new();
        let server = start(Mode::Echo, |c| {
            c.engine = engine(workers);
            c.grace = grace;
            c.max_line = stall::huge_line();
            // Long enough that only the cut can end the stalled write.
            c.idle_timeout = Duration::from_secs(30);
            c.observer = observed(&recorder);
        });
        let mut polite = Lines::connect(server.addr);
        polite.exchange("hello");
        let stalled = stall::send_huge_line(server.addr);
        let id = recorder.id_of(stalled.local_addr().unwrap());
        let len = stall::huge_line();
        recorder.wait_for("the huge line to be read", |events| {
            events.contains(&Event::Message { id, len })
        });

        let began = Instant::now();
        // ANCHOR: cut_after_grace
        assert_eq!(server.shutdown(), 2, "{what}");
        polite.expect_then_eof(SHUTTING_DOWN);
        let summary = server.join();
        let took = began.elapsed();
        assert!(
            took >= grace,
            "{what}: ended before the grace ran out ({took:?})"
        );
        assert!(
            took < grace + Duration::from_secs(1),
            "{what}: join took {took:?}"
        );
        assert_eq!(summary.cut, 1, "{what}: {summary:?}");
        // ANCHOR_END: cut_after_grace
        assert_eq!((summary.served, summary.panicked), (2, 0), "{what}");
        drop(stalled);
        assert_no_server_threads();
    }
}

#[test]
fn shutdown_tells_silent_greet_clients_and_never_counts_refused_ones() {
    let _serial = serial();
    let server = start(Mode::Greet, |c| c.max_connections = 2);
    let mut silent: Vec<_> = (0..2).map(|_| support::connect(server.addr)).collect();
    poll_until("both clients accepted", || {
        (server.stats().live == 2).then_some(())
    });
    let mut refused = support::connect(server.addr);
    support::expect_then_eof(&mut refused, support::BUSY);
    drop(refused); // (else its drain holds `join` up for a second)
    assert_eq!(server.shutdown(), 2, "a refused connection is never live");
    for stream in &mut silent {
        support::expect_then_eof(stream, SHUTTING_DOWN);
    }
    drop(silent);
    let summary = server.join();
    assert_eq!((summary.served, summary.refused, summary.cut), (2, 1, 0));
    assert_no_server_threads();
}
