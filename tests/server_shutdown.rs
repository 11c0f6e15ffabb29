#![cfg(not(any(loom, shuttle)))]
//! Graceful shutdown of the real TCP server with clients in every state: waiting for input,
//! half-way through a line, with a line the server has read but maybe not answered yet, queued
//! for a pool worker, and one that never reads; against every engine. Each test ends with
//! [`support::TestServer::join`]'s checks: `join` within the grace period, no server thread
//! left.

#[path = "support/stall.rs"]
mod stall;
mod support;

use std::time::{Duration, Instant};

use many_clients::conn::Mode;
use many_clients::server::{Engine, Event};
use support::{BUSY, Client, SETTLE, SHUTTING_DOWN, at_least, eventually, pool_of, start};

support::engine_tests!(
    shutdown_answers_what_was_read_and_tells_waiting_clients,
    shutdown_with_no_clients_stops_at_once,
    shutdown_cuts_a_client_that_never_reads_after_the_grace_period,
    shutdown_cuts_every_stuck_client_at_once,
    shutdown_tells_silent_greet_clients_and_never_counts_refused_ones,
);

/// Talkers exchange a line, then send a second one and wait until the server has read it;
/// the others connect and say nothing, or only half a line. Then shutdown.
fn shutdown_answers_what_was_read_and_tells_waiting_clients(engine: Engine) {
    const TALKERS: usize = 3;
    const SILENT: usize = 4;
    let grace = Duration::from_secs(5);
    let server = start(Mode::Echo, pool_of(engine, TALKERS + 1), |c| {
        c.grace = grace
    });
    let what = format!("{:?}", server.engine);
    // Talkers first: in a pool they get the workers, so their lines are read; of the silent
    // ones, all but one wait in the queue until shutdown frees a worker.
    let mut talkers: Vec<(u64, Client)> = (0..TALKERS)
        .map(|i| {
            let mut c = server.client();
            c.exchange(&format!("first {i}"));
            (server.recorder.id_of(c.local), c)
        })
        .collect();
    let mut silent: Vec<Client> = (0..SILENT).map(|_| server.client()).collect();
    silent[0].send(b"half a li");
    for (i, (_, c)) in talkers.iter_mut().enumerate() {
        c.send(format!("second {i}\n").as_bytes());
    }
    for (id, _) in &talkers {
        eventually("the talkers' second lines to be read", SETTLE, || {
            server.recorder.lines(*id).0 == 2
        });
    }
    let clients = TALKERS + SILENT;
    eventually("every client accepted", SETTLE, || {
        server.stats().live == clients
    });

    // ANCHOR: mid_conversation
    assert_eq!(server.shutdown(), clients, "{what}");
    let began = Instant::now();
    // Each client closes once it has read everything, as a real one would.
    for (i, (_, mut c)) in talkers.into_iter().enumerate() {
        c.expect_echo(&format!("second {i}"));
        c.expect_rest(SHUTTING_DOWN);
    }
    for mut c in silent {
        c.expect_rest(SHUTTING_DOWN);
    }
    let recorder = server.recorder.clone();
    let summary = server.join().summary;
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
}

fn shutdown_with_no_clients_stops_at_once(engine: Engine) {
    let server = start(Mode::Greet, engine, |_| {});
    let began = Instant::now();
    assert_eq!(server.shutdown(), 0);
    assert_eq!(server.shutdown(), 0, "a second shutdown is harmless");
    let summary = server.join().summary;
    assert!(began.elapsed() < Duration::from_secs(2), "{engine:?}");
    assert_eq!(summary, Default::default());
}

fn shutdown_cuts_a_client_that_never_reads_after_the_grace_period(engine: Engine) {
    let what = format!("{engine:?}");
    let grace = Duration::from_millis(500);
    let server = start(Mode::Echo, engine, |c| {
        c.grace = grace;
        c.max_line = stall::huge_line();
        // Long enough that only the cut can end the stalled write.
        c.idle_timeout = Duration::from_secs(30);
    });
    let mut polite = server.client();
    polite.exchange("hello");
    let (stalled, _) = stall::stuck_on_huge_line(&server);

    let began = Instant::now();
    // ANCHOR: cut_after_grace
    assert_eq!(server.shutdown(), 2, "{what}");
    polite.expect_rest(SHUTTING_DOWN);
    let summary = server.join().summary;
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
}

/// Several clients stuck at once are all cut when the grace runs out: with an event loop,
/// several of them on one loop.
fn shutdown_cuts_every_stuck_client_at_once(engine: Engine) {
    const STUCK: usize = 3;
    let grace = Duration::from_millis(500);
    let engine = at_least(engine, STUCK);
    let server = start(Mode::Echo, engine, |c| {
        c.grace = grace;
        c.max_line = stall::huge_line();
        c.idle_timeout = Duration::from_secs(30);
    });
    let stuck: Vec<_> = (0..STUCK)
        .map(|_| stall::stuck_on_huge_line(&server))
        .collect();
    assert_eq!(server.shutdown(), STUCK, "{engine:?}");
    let began = Instant::now();
    let summary = server.join().summary;
    let took = began.elapsed();
    assert!(
        took < grace + Duration::from_secs(1),
        "{engine:?}: join took {took:?}"
    );
    assert_eq!(
        (summary.served, summary.cut, summary.panicked),
        (STUCK as u64, STUCK, 0),
        "{engine:?}: {summary:?}"
    );
    drop(stuck);
}

fn shutdown_tells_silent_greet_clients_and_never_counts_refused_ones(engine: Engine) {
    let server = start(Mode::Greet, engine, |c| c.max_connections = 2);
    let mut silent: Vec<Client> = (0..2).map(|_| server.client()).collect();
    eventually("both clients accepted", SETTLE, || server.stats().live == 2);
    let mut refused = server.client();
    refused.expect_rest(BUSY);
    drop(refused); // (else its drain holds `join` up for a second)
    assert_eq!(server.shutdown(), 2, "a refused connection is never live");
    for c in &mut silent {
        c.expect_rest(SHUTTING_DOWN);
    }
    drop(silent);
    let summary = server.join().summary;
    assert_eq!((summary.served, summary.refused, summary.cut), (2, 1, 0));
}
