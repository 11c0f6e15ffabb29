//! Loom models of the server's real connection lifecycle — the same
//! `accept → permit or busy → id → register → serve → deregister → release`
//! code and the same shutdown and drain the TCP server runs, instantiated
//! with loom's primitives and in-memory pipes instead of sockets.
//!
//! Each model opens a few connections whose clients have already written a
//! greet message and closed their writing side (so no client threads are
//! needed), starts the server, shuts it down while it works, and checks:
//! every connection got exactly one protocol-allowed answer, nothing was
//! served twice, ids are unique, every count returns to zero, and shutdown
//! never hangs (a hang is a loom deadlock report).
//!
//! Those checks accept "shutting down" and "closed unserved" as answers, so a
//! server that served nobody would pass them all. One more model waits for a
//! client's answer *before* shutting down, and requires the greeting: in every
//! interleaving, a server that is not shutting down serves.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_lifecycle -- --nocapture`
#![cfg(loom)]

#[path = "support/loom_check.rs"]
mod loom_check;

use many_clients::conn::{Clock, Mode, Now, SystemClock};
use many_clients::limit::Limiter;
use many_clients::server::pipe::{PipeListener, PipeStream};
use many_clients::server::transport::Stream;
use many_clients::server::{Running, ServerConfig};
use many_clients::sync::Model;
use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

/// Time stands still inside a model: no deadline ever passes (loom cannot
/// model timeouts anyway), and no clock is read inside the model.
struct Frozen(Now);

impl Clock for Frozen {
    fn now(&self) -> Now {
        self.0
    }
}

/// What one client ended up reading.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Greeted(u64),
    ShuttingDown,
    Busy,
    /// Still in the listen backlog at shutdown: closed unserved.
    Unserved,
}

fn answer(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    if text.is_empty() {
        return Answer::Unserved;
    }
    if text == "error: server shutting down\n" {
        return Answer::ShuttingDown;
    }
    if text == "error: server busy, try again later\n" {
        return Answer::Busy;
    }
    let id = text
        .strip_prefix("Hello Client ")
        .and_then(|rest| rest.strip_suffix(", server received your message!"))
        .and_then(|id| id.parse().ok());
    match id {
        Some(id) => Answer::Greeted(id),
        None => panic!("not a protocol answer: {text:?}"),
    }
}

/// `connections` greet clients against a server with `max_connections`,
/// served by a thread each or by `workers`; shutdown races with all of it.
fn lifecycle(connections: usize, max_connections: usize, workers: Option<usize>) {
    let listener = PipeListener::<Model>::new();
    let mut clients: Vec<PipeStream<Model>> = (0..connections)
        .map(|_| {
            let mut client = listener.connect();
            client.write_all(b"hi").unwrap();
            client.shutdown_write().unwrap();
            client
        })
        .collect();
    let mut config = ServerConfig::new(Mode::Greet);
    config.max_connections = max_connections;
    let shared = config.shared::<Model>();
    let (counter, limit) = (shared.counter.clone(), shared.limit.clone());
    let clock = Frozen(SystemClock.now());
    // ANCHOR: run_and_shut_down
    let running = Running::start(listener, shared, clock, workers, Duration::from_secs(5)).unwrap();
    running.shutdown();
    let summary = running.join();
    // ANCHOR_END: run_and_shut_down

    let answers: Vec<Answer> = clients.iter_mut().map(|c| answer(&c.read_all())).collect();
    let ids: Vec<u64> = answers
        .iter()
        .filter_map(|a| match a {
            Answer::Greeted(id) => Some(*id),
            _ => None,
        })
        .collect();
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an id was handed out twice: {answers:?}"
    );
    let admitted = answers
        .iter()
        .filter(|a| matches!(a, Answer::Greeted(_) | Answer::ShuttingDown))
        .count() as u64;
    let busy = answers.iter().filter(|a| **a == Answer::Busy).count() as u64;
    if connections <= max_connections {
        // Room for everyone: a busy answer would be shutdown's closed limit
        // mistaken for a full one.
        assert_eq!(busy, 0, "busy answer with room to spare: {answers:?}");
    }
    assert_eq!(
        summary.served, admitted,
        "served count is off: {answers:?} {summary:?}"
    );
    assert_eq!(
        summary.refused, busy,
        "refused count is off: {answers:?} {summary:?}"
    );
    assert!(
        summary.peak as usize <= max_connections,
        "limit exceeded: {summary:?}"
    );
    let after = counter.stats();
    assert_eq!(
        after.active, 0,
        "a client is still counted active: {after:?}"
    );
    assert_eq!(
        after.issued, admitted,
        "ids issued vs clients admitted: {after:?}"
    );
    assert_eq!(limit.in_use(), 0, "a limit slot leaked");
    assert_eq!(summary.cut, 0, "nobody should need cutting");
}

/// One greet client, and shutdown only once it has its answer: the answer must
/// be the greeting with id 1, in every interleaving. (In the models above,
/// shutdown may come first, so "shutting down" is a right answer there.)
fn served_before_shutdown(workers: Option<usize>) {
    let listener = PipeListener::<Model>::new();
    let mut client = listener.connect();
    client.write_all(b"hi").unwrap();
    client.shutdown_write().unwrap();
    let shared = ServerConfig::new(Mode::Greet).shared::<Model>();
    let counter = shared.counter.clone();
    let clock = Frozen(SystemClock.now());
    let running = Running::start(listener, shared, clock, workers, Duration::from_secs(5)).unwrap();
    // Blocks until the server closes the connection, so shutdown begins after the answer.
    // A server that never answers leaves this read blocked: a loom deadlock, a failure too.
    let answered = answer(&client.read_all());
    running.shutdown();
    let summary = running.join();
    assert_eq!(answered, Answer::Greeted(1), "not served while running");
    assert_eq!(summary.served, 1, "{summary:?}");
    assert_eq!(counter.stats().active, 0, "{:?}", counter.stats());
}

// ANCHOR: bound
/// Every lifecycle model is bounded. Even one connection touches a dozen
/// locks (pipe, limit, drain, counter, registry) on three threads, and the
/// unbounded search ran past ten minutes without finishing here. Three
/// preemptions let shutdown land between any two steps of any one thread
/// (before accept, between permit and id, mid-serve, between deregister and
/// release) and still reorder the others around it — what these models are
/// about. Cost at 3: 773 to 13,913 interleavings, under 5 s each in release.
const BOUND: usize = 3;
// ANCHOR_END: bound

#[test]
fn one_connection_thread_per_connection_with_shutdown() {
    loom_check::explore(
        "lifecycle: 1 conn, thread each, shutdown",
        Some(BOUND),
        || lifecycle(1, 8, None),
    );
}

#[test]
fn one_connection_pool_with_shutdown() {
    loom_check::explore(
        "lifecycle: 1 conn, pool of 1, shutdown",
        Some(BOUND),
        || lifecycle(1, 8, Some(1)),
    );
}

#[test]
fn limit_one_two_connections_busy_and_shutdown() {
    // Four threads: main, accept, one handler, one busy answer.
    loom_check::explore("lifecycle: 2 conns, limit 1, shutdown", Some(BOUND), || {
        lifecycle(2, 1, None)
    });
}

#[test]
fn two_connections_thread_per_connection_with_shutdown() {
    loom_check::explore(
        "lifecycle: 2 conns, thread each, shutdown",
        Some(BOUND),
        || lifecycle(2, 8, None),
    );
}

#[test]
fn a_client_is_served_before_shutdown_begins() {
    loom_check::explore(
        "lifecycle: 1 conn served, then shutdown",
        Some(BOUND),
        || served_before_shutdown(None),
    );
}
