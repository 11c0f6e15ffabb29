//! A load test that checks every reply: seed 001's `stress_client.py`, grown up.
//!
//! Seed 001 starts one thread per client. That does not scale to thousands of clients, and it
//! measures thread creation as much as the server. Here `concurrency` worker threads pull client
//! numbers from one shared atomic counter until none are left, so at most `concurrency` clients are
//! talking to the server at any moment, however many there are in total.
//!
//! A load test that only counts replies can be fooled by a server that answers quickly and
//! wrongly, so every reply is validated ([`check_echo_reply`], [`parse_greet_id`]) and, in greet
//! mode, the ids of all clients are compared at the end: a shared client counter without a lock
//! gives two clients the same id, and then every holder of that id fails ([`check_ids_unique`]).
//!
//! The library keeps the raw per-message latencies; the `stress_client` example turns them into
//! percentiles with `hdrhistogram` and hands them back as a [`Latency`] for the summary line.

mod report;

pub use report::{ClientOutcome, Latency, StressReport, check_ids_unique};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{self, ClientError, EchoClient, Mode, check_echo_reply, parse_greet_id};

/// What to run: `clients` clients, each sending `messages` messages, at most `concurrency` at once.
#[derive(Clone, Debug)]
pub struct StressConfig {
    /// The server to load.
    pub addr: SocketAddr,
    /// Greet: each message is a connection of its own. Echo: one connection, one line per message.
    pub mode: Mode,
    /// How many clients in total.
    pub clients: usize,
    /// Messages per client.
    pub messages: usize,
    /// Worker threads, that is clients in flight at once (clamped to `1..=clients`).
    pub concurrency: usize,
    /// Time allowed for each message's whole exchange (greet: connect included).
    pub timeout: Duration,
    /// Optional bound on the whole run: clients not started by then fail, and no exchange is
    /// allowed to run past it.
    pub deadline: Option<Duration>,
}

impl StressConfig {
    /// The command line's defaults: 20 clients, 1 message each, all at once, 10 s timeout.
    pub fn new(addr: SocketAddr, mode: Mode) -> Self {
        StressConfig {
            addr,
            mode,
            clients: 20,
            messages: 1,
            concurrency: 20,
            timeout: Duration::from_secs(10),
            deadline: None,
        }
    }
}

/// Runs the load test. `on_client_done` is called from the worker threads as each client ends
/// (the example drives its progress bar with it).
pub fn run(
    config: &StressConfig,
    on_client_done: &(dyn Fn(&ClientOutcome) + Sync),
) -> StressReport {
    let start = Instant::now();
    let deadline = config.deadline.map(|d| start + d);
    let next = AtomicUsize::new(0);
    let n = config.clients;

    // Each worker takes the next client number until none are left. `fetch_add` is one atomic
    // read-modify-write, so every number goes to exactly one worker; `Relaxed` is enough because
    // the counter guards no other data (results travel back through `join`).
    let work = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= n || deadline.is_some_and(|d| Instant::now() >= d) {
                return done;
            }
            let outcome = run_client(config, index, deadline);
            on_client_done(&outcome);
            done.push(outcome);
        }
    };

    let mut slots: Vec<Option<ClientOutcome>> = vec![None; n];
    thread::scope(|scope| {
        let workers = config.concurrency.clamp(1, n.max(1));
        let handles: Vec<_> = (0..workers)
            .map_while(|k| {
                let builder = thread::Builder::new().name(format!("stress-{k}"));
                builder.spawn_scoped(scope, work).ok()
            })
            .collect();
        // If not even one thread could be spawned, this thread does the work itself.
        let mut finished = if handles.is_empty() {
            work()
        } else {
            Vec::new()
        };
        for handle in handles {
            // A worker that panicked (only `on_client_done` could) loses its outcomes; those
            // clients are reported as not run below.
            finished.extend(handle.join().unwrap_or_default());
        }
        for outcome in finished {
            let index = outcome.index;
            slots[index] = Some(outcome);
        }
    });

    let elapsed = start.elapsed();
    let outcomes = slots
        .into_iter()
        .enumerate()
        .map(|(index, slot)| {
            slot.unwrap_or_else(|| ClientOutcome {
                error: Some(if deadline.is_some_and(|d| Instant::now() >= d) {
                    "not started before the deadline".to_owned()
                } else {
                    "not run: its worker thread failed".to_owned()
                }),
                ..ClientOutcome::new(index)
            })
        })
        .collect();
    StressReport::from_outcomes(config.mode, outcomes, elapsed)
}

fn run_client(config: &StressConfig, index: usize, deadline: Option<Instant>) -> ClientOutcome {
    let mut outcome = ClientOutcome::new(index);
    let result = match config.mode {
        Mode::Greet => greet_client(config, deadline, &mut outcome),
        Mode::Echo => echo_client(config, deadline, &mut outcome),
    };
    outcome.error = result.err();
    outcome
}

/// The per-exchange timeout, cut short by the run's deadline.
fn time_allowed(config: &StressConfig, deadline: Option<Instant>) -> Result<Duration, String> {
    let Some(deadline) = deadline else {
        return Ok(config.timeout);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("the run's deadline passed".to_owned());
    }
    Ok(left.min(config.timeout))
}

fn greet_client(
    config: &StressConfig,
    deadline: Option<Instant>,
    outcome: &mut ClientOutcome,
) -> Result<(), String> {
    for j in 0..config.messages {
        let message = format!("client {} message {j}", outcome.index);
        let timeout = time_allowed(config, deadline)?;
        let started = Instant::now();
        let result = client::greet(config.addr, &message, timeout);
        // Every error but `Connect` happened on an open connection.
        if !matches!(result, Err(ClientError::Connect { .. })) {
            outcome.connections += 1;
        }
        let reply = result.map_err(|e| format!("connection {j}: {e}"))?;
        outcome.latencies.push(started.elapsed());
        outcome.replies += 1;
        let id = parse_greet_id(&reply)
            .ok_or_else(|| format!("connection {j}: wrong reply {reply:?}"))?;
        outcome.ids.push(id);
    }
    Ok(())
}

fn echo_client(
    config: &StressConfig,
    deadline: Option<Instant>,
    outcome: &mut ClientOutcome,
) -> Result<(), String> {
    let mut conn = EchoClient::connect(config.addr, time_allowed(config, deadline)?)
        .map_err(|e| e.to_string())?;
    outcome.connections = 1;
    for j in 0..config.messages {
        let message = format!("client {} message {j}", outcome.index);
        conn.set_timeout(time_allowed(config, deadline)?);
        let started = Instant::now();
        let reply = conn
            .exchange(&message)
            .map_err(|e| format!("message {j}: {e}"))?;
        outcome.latencies.push(started.elapsed());
        outcome.replies += 1;
        check_echo_reply(&reply, &message).map_err(|e| format!("message {j}: {e}"))?;
    }
    Ok(())
}
