#![cfg(not(any(loom, shuttle)))]
//! Random client schedules against the real server: the test that finds what the hand-written
//! ones did not think of.
//!
//! Each case draws a schedule (`support/schedule.rs`: the server's settings and up to
//! 40 clients with awkward messages, write patterns and endings), starts a fresh server on port
//! 0 with the engine under test (every engine gets its own cases: `engine::thread::…`,
//! `engine::pool::…`, `engine::events::…`), plays every client on its own thread over real sockets, and then checks:
//!
//! 1. every client saw exactly what the reference model says it is owed, in order: its replies,
//!    error lines exactly where the protocol puts them, EOF where the server must close — or,
//!    if the server refused it at the connection limit, exactly the busy line;
//! 2. once everyone has left: `active == 0`, nothing live, `served + refused == clients`, no
//!    refusal without a limit, `peak` within the limit;
//! 3. ids are unique: the server's `Connected` events carry exactly the ids `1..=served`, each
//!    closed exactly once, and every greet reply carries the id of its own connection;
//! 4. the server still answers a fresh client (in greet mode with the next id);
//! 5. `shutdown` + `join` return in bounded time with the right totals, nothing cut, no panic,
//!    and no server thread (`accept`, `client-*`, `worker-*`, `busy`, `events-*`) is left behind.
//!
//! None of these depends on how the threads happened to interleave (the model's docs say why),
//! so a failing case fails again when replayed, and proptest shrinks it to a small schedule.
//!
//! Runs: `cargo test --test schedules` runs `DEFAULT_CASES` random schedules per engine;
//! `PROPTEST_CASES=N` runs N per engine instead: `.ci/run`'s soak is `PROPTEST_CASES=64` (its
//! `SCHEDULE_SOAK_CASES`), 192 schedules over the three engines. A case takes 0.8 to 1.1 s here
//! (debug build, a busy 2-core machine), so about 10 s per engine in `cargo test` and about a
//! minute per engine in the soak.
//! Failures are saved in `proptest-regressions/schedules.txt` (committed) and replayed first on
//! every run, for every engine; for an integration test proptest's default would be
//! `tests/schedules.proptest-regressions`, hence the explicit `FileFailurePersistence::Direct`
//! below.

#[path = "support/schedule_client.rs"]
mod client_side;
#[path = "support/schedule_model.rs"]
mod model;
#[path = "support/schedule.rs"]
mod schedule;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use many_clients::client::{self, EchoClient, check_echo_reply, parse_greet_id};
use many_clients::conn::Mode;
use many_clients::server::{Engine, Event, LiveStats, Summary};
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseError, TestRunner, contextualize_config,
};

use client_side::{Observation, play};
use model::check;
use schedule::{DRAIN_MS, Schedule};
use support::{Recorder, SETTLE, TestServer, poll, start};

/// Cases per engine in a `cargo test` run; `PROPTEST_CASES` overrides it.
const DEFAULT_CASES: u32 = 12;

support::engine_tests!(every_client_gets_what_the_protocol_promises);

// ANCHOR: property
/// The property, for one engine: proptest draws schedules for a server with it and runs each,
/// shrinking a failing one.
fn every_client_gets_what_the_protocol_promises(engine: Engine) {
    let config = Config {
        cases: DEFAULT_CASES,
        // Integration tests have no `lib.rs` above them, so the default `SourceParallel` would
        // fall back to `tests/schedules.proptest-regressions`; put it where the crate keeps them.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/schedules.txt"
        )))),
        // A failing case can take seconds (it waits out timeouts); keep shrinking bounded.
        max_shrink_time: 240_000,
        ..Config::default()
    };
    // As `proptest!` does: `PROPTEST_CASES` and the other variables override the config.
    let mut runner = TestRunner::new(contextualize_config(config));
    let outcome = runner.run(&schedule::schedule(engine), |schedule| {
        run(&schedule).map_err(TestCaseError::fail)
    });
    if let Err(failure) = outcome {
        panic!("{engine:?}: {failure}");
    }
}
// ANCHOR_END: property

// ANCHOR: run
/// One case, start to finish. The server is always shut down and joined, even on failure (its
/// `Drop`), so the next case starts clean; a failed harness check panics, which proptest
/// takes as a failure like any other.
fn run(schedule: &Schedule) -> Result<(), String> {
    let server = start_for(schedule);
    let seen = play_all(schedule, server.addr, &server.recorder)?;

    // Everyone has left. The server reports each accept and refusal to the recorder; wait
    // until it has accounted for every client, then judge each one by what happened to it.
    let n = schedule.clients.len() as u64;
    let settled = settle(&server, |s| s.clients.served + s.refused == n);
    let wrong = judge(schedule, seen, &server.recorder);
    let stats = match settled {
        Ok(stats) if wrong.is_empty() => stats,
        Ok(_) => return Err(wrong.join("\n")),
        Err(e) => return Err([wrong, vec![e]].concat().join("\n")),
    };
    check_counts(schedule, &stats, &server.recorder.events())?;

    // 4. A fresh client is still served.
    let served = stats.clients.served;
    fresh_client(server.addr, schedule.server.mode, served + 1)?;
    settle(&server, |s| s.clients.served == served + 1)?;

    // 5. Shutdown and join, bounded; `join` checks that no server thread is left.
    let live = server.shutdown();
    let summary = server.join().summary;
    let want = Summary {
        served: served + 1,
        refused: stats.refused,
        peak: summary.peak.max(stats.clients.peak),
        cut: 0,
        panicked: 0,
    };
    if live != 0 || summary != want {
        return Err(format!(
            "shutdown saw {live} live; {summary:?}, want {want:?}"
        ));
    }
    Ok(())
}
// ANCHOR_END: run

type Seen = Result<(SocketAddr, Observation), String>;

/// Every client on its own thread, all at once; what each one saw, in schedule order.
fn play_all(
    schedule: &Schedule,
    addr: SocketAddr,
    recorder: &Arc<Recorder>,
) -> Result<Vec<Seen>, String> {
    let mut clients = Vec::new();
    for (i, plan) in schedule.clients.iter().enumerate() {
        let (settings, plan, recorder) = (schedule.server, plan.clone(), recorder.clone());
        let fills = schedule.filler_client() == Some(i);
        let client = thread::Builder::new().name(format!("sched-{i}"));
        let client = client.spawn(move || play(addr, &settings, &plan, fills, &recorder));
        clients.push(client.map_err(|e| e.to_string())?);
    }
    let joined = clients.into_iter().map(|c| c.join());
    Ok(joined
        .map(|seen| seen.unwrap_or_else(|_| Err("client panicked".into())))
        .collect())
}

/// 1. Each client saw what it is owed, given what the server did with it. Returns what is wrong.
fn judge(schedule: &Schedule, seen: Vec<Seen>, recorder: &Recorder) -> Vec<String> {
    let clients = schedule.clients.iter().zip(seen);
    let judged = clients.map(|(plan, seen)| {
        let (local, seen) = seen?;
        let outcome = recorder.outcome(local, Instant::now());
        let outcome = outcome.ok_or("the server never reported it")?;
        let checked = check(&schedule.server, plan, outcome, &seen);
        checked.map_err(|e| format!("{outcome:?}: {e}"))
    });
    let wrong = judged
        .enumerate()
        .filter_map(|(i, r)| r.err().map(|e| format!("client #{i}: {e}")));
    wrong.collect()
}

/// 2. and 3.: the counts add up, and the ids are exactly `1..=served`, each closed once.
fn check_counts(schedule: &Schedule, stats: &LiveStats, events: &[Event]) -> Result<(), String> {
    let (served, refused, peak) = (stats.clients.served, stats.refused, stats.clients.peak);
    match schedule.server.limit {
        Some(limit) if peak > limit as u64 => {
            return Err(format!("peak {peak} over limit {limit}"));
        }
        None if refused > 0 => return Err(format!("{refused} refused without a limit")),
        _ => {}
    }
    let ids_of = |closed: bool| {
        let ids = events.iter().filter_map(|e| match *e {
            Event::Connected { id, .. } if !closed => Some(id),
            Event::Closed { id } if closed => Some(id),
            _ => None,
        });
        let mut ids: Vec<u64> = ids.collect();
        ids.sort_unstable();
        ids
    };
    let (connected, closed) = (ids_of(false), ids_of(true));
    let want: Vec<u64> = (1..=served).collect();
    if connected != want || closed != want || stats.clients.issued != served {
        return Err(format!(
            "ids: connected {connected:?}, closed {closed:?}, want 1..={served}"
        ));
    }
    let refusals = events.iter().filter(|e| matches!(e, Event::Refused { .. }));
    if refusals.count() as u64 != refused {
        return Err(format!(
            "the Refused events do not add up to refused = {refused}"
        ));
    }
    Ok(())
}

/// A server as the schedule says (its engine included).
fn start_for(schedule: &Schedule) -> TestServer {
    let settings = schedule.server;
    start(settings.mode, settings.engine, |config| {
        config.max_line = settings.max_line;
        config.idle_timeout = Duration::from_millis(settings.idle_ms);
        config.drain_timeout = Duration::from_millis(DRAIN_MS);
        config.grace = Duration::from_secs(2);
        if let Some(limit) = settings.limit {
            config.max_connections = limit;
        }
    })
}

/// Polls the server's counts until nothing is live and `done` holds, within [`SETTLE`].
fn settle(server: &TestServer, done: impl Fn(&LiveStats) -> bool) -> Result<LiveStats, String> {
    let mut stats = server.stats();
    let settled = poll(SETTLE, || {
        stats = server.stats();
        stats.live == 0 && stats.clients.active == 0 && done(&stats)
    });
    if settled {
        Ok(stats)
    } else {
        Err(format!("the server did not settle: {stats:?}"))
    }
}

/// A well-behaved client after the schedule: greet expects the next id, echo one echo.
fn fresh_client(addr: SocketAddr, mode: Mode, next_id: u64) -> Result<(), String> {
    let timeout = Duration::from_secs(5);
    let fail = |e: &dyn std::fmt::Display| format!("fresh client: {e}");
    match mode {
        Mode::Greet => {
            let reply = client::greet(addr, "fresh", timeout).map_err(|e| fail(&e))?;
            if parse_greet_id(&reply) != Some(next_id) {
                return Err(fail(&format!("got {reply:?}, expected id {next_id}")));
            }
        }
        Mode::Echo => {
            let mut conn = EchoClient::connect(addr, timeout).map_err(|e| fail(&e))?;
            let reply = conn.exchange("ok").map_err(|e| fail(&e))?;
            check_echo_reply(&reply, "ok").map_err(|e| fail(&e))?;
        }
    }
    Ok(())
}
