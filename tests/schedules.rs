#![cfg(not(loom))]
//! Random client schedules against the real server: the test that finds what the hand-written
//! ones did not think of.
//!
//! Each case draws a schedule (`support/schedule.rs`: the server's settings and up to
//! 40 clients with awkward messages, write patterns and endings), starts a fresh server on port
//! 0, plays every client on its own thread over real sockets, and then checks:
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
//!    and no server thread (`accept`, `client-*`, `worker-*`, `busy`) is left behind.
//!
//! None of these depends on how the threads happened to interleave (the model's docs say why),
//! so a failing case fails again when replayed, and proptest shrinks it to a small schedule.
//!
//! Runs: `cargo test --test schedules` runs `DEFAULT_CASES` random schedules (about 20 s here);
//! `PROPTEST_CASES=256 cargo test --test schedules` is the soak run `.ci/run` does (about 4 min
//! here, debug build, on a busy 2-core machine). Failures are saved in
//! `proptest-regressions/schedules.txt` (committed) and replayed first on every run; for an
//! integration test proptest's default would be `tests/schedules.proptest-regressions`, hence the
//! explicit `FileFailurePersistence::Direct` below.

#[path = "support/schedule_client.rs"]
mod client_side;
#[path = "support/schedule_model.rs"]
mod model;
#[path = "support/schedule.rs"]
mod schedule;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use many_clients::client::{self, EchoClient, check_echo_reply, parse_greet_id};
use many_clients::conn::Mode;
use many_clients::server::{Engine, Event, LiveStats, Server, ServerConfig, ServerHandle, Summary};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use client_side::{Observation, Recorder, outcome_in, play};
use model::check;
use schedule::{DRAIN_MS, Schedule};

/// Cases per `cargo test` run; `PROPTEST_CASES` overrides it.
const DEFAULT_CASES: u32 = 24;
/// How long the server's own bookkeeping may take to settle, and `join` to return.
const SETTLE: Duration = Duration::from_secs(10);

// ANCHOR: property
proptest! {
    #![proptest_config(ProptestConfig {
        cases: DEFAULT_CASES,
        // Integration tests have no `lib.rs` above them, so the default `SourceParallel` would
        // fall back to `tests/schedules.proptest-regressions`; put it where the crate keeps them.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/schedules.txt"
        )))),
        // A failing case can take seconds (it waits out timeouts); keep shrinking bounded.
        max_shrink_time: 240_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_client_gets_what_the_protocol_promises(schedule in schedule::schedule()) {
        run(&schedule).map_err(TestCaseError::fail)?;
    }
}
// ANCHOR_END: property

// ANCHOR: run
/// One case, start to finish. The server is always shut down and joined, even on failure, so
/// the next case (and the thread check) starts clean.
fn run(schedule: &Schedule) -> Result<(), String> {
    let threads_before = server_threads();
    let recorder = Arc::new(Recorder::default());
    let server = Stopper(Some(start(schedule, recorder.clone())?));
    let addr = server.handle().local_addr();
    let seen = play_all(schedule, addr, &recorder)?;

    // Everyone has left. The server reports each accept and refusal to the recorder; wait
    // until it has accounted for every client, then judge each one by what happened to it.
    let n = schedule.clients.len() as u64;
    let settled = settle(server.handle(), |s| s.clients.served + s.refused == n);
    let events = recorder.events();
    let wrong = judge(schedule, seen, &events);
    let stats = match settled {
        Ok(stats) if wrong.is_empty() => stats,
        Ok(_) => return Err(wrong.join("\n")),
        Err(e) => return Err([wrong, vec![e]].concat().join("\n")),
    };
    check_counts(schedule, &stats, &events)?;

    // 4. A fresh client is still served.
    let served = stats.clients.served;
    fresh_client(addr, schedule.server.mode, served + 1)?;
    settle(server.handle(), |s| s.clients.served == served + 1)?;

    // 5. Shutdown and join, bounded; then no server thread is left.
    let live = server.handle().shutdown();
    let summary = server.join()?;
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
    let deadline = Instant::now() + SETTLE;
    while !server_threads().is_subset(&threads_before) {
        if Instant::now() > deadline {
            let left = server_threads();
            return Err(format!(
                "threads left: {:?}",
                left.difference(&threads_before)
            ));
        }
        thread::sleep(Duration::from_millis(5)); // polling with a deadline
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
fn judge(schedule: &Schedule, seen: Vec<Seen>, events: &[Event]) -> Vec<String> {
    let clients = schedule.clients.iter().zip(seen);
    let judged = clients.map(|(plan, seen)| {
        let (local, seen) = seen?;
        let outcome = outcome_in(events, local).ok_or("the server never reported it")?;
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

fn start(schedule: &Schedule, recorder: Arc<Recorder>) -> Result<ServerHandle, String> {
    let settings = schedule.server;
    let mut config = ServerConfig::new(settings.mode);
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.max_line = settings.max_line;
    config.idle_timeout = Duration::from_millis(settings.idle_ms);
    config.drain_timeout = Duration::from_millis(DRAIN_MS);
    config.grace = Duration::from_secs(2);
    if let Some(limit) = settings.limit {
        config.max_connections = limit;
    }
    if settings.pool {
        config.engine = Engine::Pool {
            workers: settings.limit.unwrap_or(schedule::MAX_CLIENTS + 1),
        };
    }
    config.observer = Some(recorder);
    let server = Server::bind(config).map_err(|e| format!("bind: {e}"))?;
    server.start().map_err(|e| format!("start: {e}"))
}

/// Polls the server's counts until nothing is live and `done` holds, within [`SETTLE`].
fn settle(handle: &ServerHandle, done: impl Fn(&LiveStats) -> bool) -> Result<LiveStats, String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let stats = handle.stats();
        if stats.live == 0 && stats.clients.active == 0 && done(&stats) {
            return Ok(stats);
        }
        if Instant::now() > deadline {
            return Err(format!("the server did not settle: {stats:?}"));
        }
        thread::sleep(Duration::from_millis(5)); // polling with a deadline
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

/// Shuts the server down and joins it when dropped, so a failing case cleans up too.
struct Stopper(Option<ServerHandle>);

impl Stopper {
    fn handle(&self) -> &ServerHandle {
        self.0.as_ref().expect("joined already")
    }

    /// `join`, but give up after [`SETTLE`] (leaving the joining thread behind).
    fn join(mut self) -> Result<Summary, String> {
        let handle = self.0.take().expect("joined once");
        let (tx, rx) = mpsc::channel();
        let joiner = thread::Builder::new().name("sched-join".into());
        joiner
            .spawn(move || tx.send(handle.join()))
            .map_err(|e| e.to_string())?;
        rx.recv_timeout(SETTLE)
            .map_err(|_| format!("join did not return within {SETTLE:?}"))
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.shutdown();
            let _ = Stopper(self.0.take()).join();
        }
    }
}

/// The process's server threads (by the names the server gives them), as (tid, name).
fn server_threads() -> BTreeSet<(String, String)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return BTreeSet::new();
    };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let name = name.trim_end().to_string();
            let ours = name == "accept"
                || name == "busy"
                || name.starts_with("client-")
                || name.starts_with("worker-");
            ours.then(|| (task.file_name().to_string_lossy().into_owned(), name))
        })
        .collect()
}
