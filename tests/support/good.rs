//! Well-behaved clients, each on its own thread, that check every reply while a test runs a
//! fault against the same server: proof that the fault disturbed nobody else. Included with
//! `#[path]` next to `support` by the suites that run them (`tests/hostile*.rs`).

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use many_clients::client::{EchoClient, check_echo_reply, greet, parse_greet_id};
use many_clients::conn::Mode;
use many_clients::server::Engine;

use crate::support::{BUSY, SETTLE, SHUTTING_DOWN, T, TestServer, eventually, lock};

/// How the well-behaved clients behave.
#[derive(Clone, Copy, Debug)]
pub struct GoodPlan {
    /// Clients running at once.
    pub clients: usize,
    /// Echo clients reconnect after this many lines (`None`: one connection for the whole
    /// test). Greet clients make a new connection per message anyway.
    pub reconnect_every: Option<u64>,
    /// The pause between two messages of one client: the pace of a client that is not in a
    /// hurry, so that the fault under test gets the CPU too.
    pub pause: Duration,
}

impl GoodPlan {
    pub fn new(clients: usize) -> Self {
        GoodPlan {
            clients,
            reconnect_every: Some(40),
            pause: Duration::from_millis(2),
        }
    }

    pub fn persistent(clients: usize) -> Self {
        GoodPlan {
            reconnect_every: None,
            ..GoodPlan::new(clients)
        }
    }
}

/// What the well-behaved clients saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages that got their right reply.
    pub answered: u64,
    /// Every message that did not: what happened instead. Must stay empty.
    pub lost: Vec<String>,
    /// Greet ids received (must be unique).
    pub ids: Vec<u64>,
    /// `error: server shutting down` answers, after shutdown began.
    pub told_shutdown: u64,
}

impl Tally {
    /// The tallies of a test's phases, added up for its figures.
    pub fn merged(tallies: impl IntoIterator<Item = Tally>) -> Tally {
        let mut all = Tally::default();
        for t in tallies {
            all.answered += t.answered;
            all.lost.extend(t.lost);
            all.ids.extend(t.ids);
            all.told_shutdown += t.told_shutdown;
        }
        all
    }
}

struct Flags {
    stop: AtomicBool,
    /// Set just before the test calls `shutdown()`: from then on the shutdown line, and a
    /// refused or unanswered *new* connection, are right answers.
    shutting: AtomicBool,
    answered: AtomicU64,
    /// Clients that have had their first reply.
    ready: AtomicU64,
    /// What the clients that stopped early lost, for a failure message before [`Good::stop`].
    lost: Mutex<Vec<String>>,
}

/// Well-behaved clients running on their own threads until stopped, checking every reply.
pub struct Good {
    flags: Arc<Flags>,
    threads: Vec<JoinHandle<Tally>>,
}

impl Drop for Good {
    /// A test that fails before [`Good::stop`] still stops its clients.
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::SeqCst);
    }
}

impl Good {
    /// Starts `plan.clients` clients speaking the server's protocol, and waits until each has
    /// had a reply.
    pub fn start(h: &TestServer, plan: GoodPlan) -> Good {
        let flags = Arc::new(Flags {
            stop: AtomicBool::new(false),
            shutting: AtomicBool::new(false),
            answered: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            lost: Mutex::new(Vec::new()),
        });
        let threads = (0..plan.clients)
            .map(|k| {
                let (addr, mode, flags) = (h.addr, h.mode, flags.clone());
                thread::Builder::new()
                    .name(format!("good-{k}"))
                    .spawn(move || {
                        let tally = match mode {
                            Mode::Echo => echo_client(addr, k, plan, &flags),
                            Mode::Greet => greet_client(addr, k, plan, &flags),
                        };
                        lock(&flags.lost).extend(tally.lost.iter().cloned());
                        tally
                    })
                    .expect("spawn a good client")
            })
            .collect();
        let good = Good { flags, threads };
        // Every client connected and answered, so none of them connects later, in the middle
        // of the fault.
        let clients = plan.clients as u64;
        eventually(
            "each well-behaved client gets a first reply",
            SETTLE,
            || {
                good.flags.ready.load(Ordering::SeqCst) == clients
                    || good.threads.iter().any(|t| t.is_finished())
            },
        );
        good.wait_answers(1);
        good
    }

    /// Replies checked so far.
    pub fn answered(&self) -> u64 {
        self.flags.answered.load(Ordering::SeqCst)
    }

    /// Polls until `more` replies have been checked since now: proof the clients are being
    /// served at this moment.
    pub fn wait_answers(&self, more: u64) {
        let target = self.answered() + more;
        eventually("the well-behaved clients get replies", SETTLE, || {
            self.answered() >= target || self.threads.iter().any(|t| t.is_finished())
        });
        assert!(
            self.threads.iter().all(|t| !t.is_finished()),
            "a well-behaved client stopped early: {:?}",
            lock(&self.flags.lost)
        );
    }

    /// Tell the clients shutdown is about to begin.
    pub fn shutting_down(&self) {
        self.flags.shutting.store(true, Ordering::SeqCst);
    }

    /// Stops the clients and checks: no reply lost, greet ids unique.
    pub fn stop(mut self) -> Tally {
        self.flags.stop.store(true, Ordering::SeqCst);
        let mut all = Tally::default();
        for t in std::mem::take(&mut self.threads) {
            let tally = t.join().expect("a good client panicked");
            all.answered += tally.answered;
            all.lost.extend(tally.lost);
            all.ids.extend(tally.ids);
            all.told_shutdown += tally.told_shutdown;
        }
        assert!(
            all.lost.is_empty(),
            "well-behaved clients lost replies: {:#?}",
            all.lost
        );
        let unique: HashSet<u64> = all.ids.iter().copied().collect();
        assert_eq!(unique.len(), all.ids.len(), "greet ids are unique");
        all
    }
}

fn echo_client(addr: SocketAddr, k: usize, plan: GoodPlan, flags: &Flags) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<EchoClient> = None;
    // Lines answered on the current connection: once one has been, the connection is
    // established and must answer every line, even during shutdown (with the shutdown line).
    let mut on_conn = 0u64;
    for i in 0u64.. {
        if flags.stop.load(Ordering::SeqCst) {
            break;
        }
        let shutting = flags.shutting.load(Ordering::SeqCst);
        let c = match &mut conn {
            Some(c) => c,
            None => match EchoClient::connect(addr, T) {
                Ok(c) => {
                    on_conn = 0;
                    conn.insert(c)
                }
                Err(_) if shutting => break,
                Err(e) => {
                    tally.lost.push(format!("echo {k}: connect: {e}"));
                    break;
                }
            },
        };
        let msg = format!(" good {k}.{i} ✓\t");
        match c.exchange(&msg) {
            Ok(line) => match check_echo_reply(&line, &msg) {
                Ok(()) => {
                    tally.answered += 1;
                    on_conn += 1;
                    if tally.answered == 1 {
                        flags.ready.fetch_add(1, Ordering::SeqCst);
                    }
                    flags.answered.fetch_add(1, Ordering::SeqCst);
                }
                Err(_)
                    if flags.shutting.load(Ordering::SeqCst) && is_line(&line, SHUTTING_DOWN) =>
                {
                    tally.told_shutdown += 1;
                    break;
                }
                // Racing shutdown, a new connection may meet the closed limit.
                Err(_)
                    if flags.shutting.load(Ordering::SeqCst)
                        && on_conn == 0
                        && is_line(&line, BUSY) =>
                {
                    break;
                }
                Err(why) => {
                    tally.lost.push(format!("echo {k}: line {i}: {why}"));
                    break;
                }
            },
            // A connection that shutdown caught before it was served: the backlog is not served.
            Err(_) if flags.shutting.load(Ordering::SeqCst) && on_conn == 0 => break,
            Err(e) => {
                tally.lost.push(format!(
                    "echo {k}: line {i} ({on_conn} on this connection): {e}"
                ));
                break;
            }
        }
        if plan.reconnect_every.is_some_and(|n| on_conn >= n) {
            conn = None;
        }
        // The pace of the scenario: a client that sends a line every few milliseconds.
        thread::sleep(plan.pause);
    }
    tally
}

/// Whether a reply as the client library returns it (one `\n` removed) is this error line.
fn is_line(reply: &str, line: &[u8]) -> bool {
    line.strip_suffix(b"\n") == Some(reply.as_bytes())
}

fn greet_client(addr: SocketAddr, k: usize, plan: GoodPlan, flags: &Flags) -> Tally {
    let mut tally = Tally::default();
    for i in 0u64.. {
        if flags.stop.load(Ordering::SeqCst) {
            break;
        }
        let msg = format!("good {k}.{i} ✓");
        match greet(addr, &msg, T) {
            Ok(reply) => match parse_greet_id(&reply) {
                Some(id) => {
                    tally.ids.push(id);
                    tally.answered += 1;
                    if tally.answered == 1 {
                        flags.ready.fetch_add(1, Ordering::SeqCst);
                    }
                    flags.answered.fetch_add(1, Ordering::SeqCst);
                }
                None if flags.shutting.load(Ordering::SeqCst)
                    && (is_line(&reply, SHUTTING_DOWN) || is_line(&reply, BUSY)) =>
                {
                    tally.told_shutdown += 1;
                    break;
                }
                None => {
                    tally
                        .lost
                        .push(format!("greet {k}.{i}: wrong reply {reply:?}"));
                    break;
                }
            },
            Err(_) if flags.shutting.load(Ordering::SeqCst) => break,
            Err(e) => {
                tally.lost.push(format!("greet {k}.{i}: {e}"));
                break;
            }
        }
        thread::sleep(plan.pause);
    }
    tally
}

// ---------------------------------------------------------------------------------------------
// Figures for the closing note.

/// Prints one test's figures (`--nocapture` shows them).
pub fn figures(
    engine: Engine,
    test: &str,
    classes: &[&str],
    hostile: u64,
    good: &Tally,
    extra: &str,
) {
    eprintln!(
        "[hostile] {test} ({:?}): classes {} ({}), hostile connections {hostile}, good replies \
         checked {}, replies lost {}{extra}",
        engine,
        classes.len(),
        classes.join(", "),
        good.answered,
        good.lost.len(),
    );
}
