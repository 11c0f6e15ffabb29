#![cfg(not(loom))]
//! The exercises of book chapter 12. Every test here fails until you do the exercise; each is
//! `#[ignore]`d so that `cargo test` stays green. Remove the `#[ignore]` of the one you are
//! working on, or run them all with:
//!
//! ```text
//! cargo test --test exercises -- --ignored
//! ```
//!
//! The stubs below compile and return a wrong answer on purpose, so each test fails on an
//! assertion that says what is missing, not on a panic in the stub.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use many_clients::conn::Mode;
use many_clients::counter::{ClientGuard, Counter, Stats};
use many_clients::server::{Server, ServerConfig};

// ---- Exercise 1: a per-address limit (`--max-per-ip`) ----

// ANCHOR: per_ip_stub
/// At most `max` connections at once from any one IP address.
///
/// EXERCISE: make `try_acquire` refuse when `ip` already holds `max` permits, and make dropping
/// a permit give its slot back. (Hint: a `Mutex<HashMap<IpAddr, usize>>` in an `Arc`, and a
/// permit that holds the `Arc` and its address, like `Permit` in `src/limit.rs`.)
struct PerIpLimit {
    max: usize,
}

/// One connection's slot for its address.
#[must_use]
struct PerIpPermit {
    ip: IpAddr,
}

impl PerIpLimit {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(PerIpLimit { max })
    }

    /// A permit if `ip` holds fewer than `max`. The stub never refuses.
    fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<PerIpPermit> {
        let _ = self.max;
        Some(PerIpPermit { ip })
    }
}
// ANCHOR_END: per_ip_stub

// ANCHOR: per_ip_test
#[test]
#[ignore = "exercise: see book chapter 12"]
fn per_ip_limit_refuses_the_third_connection_from_one_address() {
    let limit = PerIpLimit::new(2);
    let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let b = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let first = limit.try_acquire(a).expect("the first from a");
    let _second = limit.try_acquire(a).expect("the second from a");
    assert!(
        limit.try_acquire(a).is_none(),
        "a third connection from {a} must be refused"
    );
    let _other = limit
        .try_acquire(b)
        .expect("another address has its own count");
    assert_eq!(first.ip, a);
    drop(first);
    assert!(
        limit.try_acquire(a).is_some(),
        "dropping a permit frees its slot"
    );
}
// ANCHOR_END: per_ip_test

// ---- Exercise 2: a counter behind a readers/writer lock ----

// ANCHOR: rwlock_stub
/// A [`Counter`] whose `stats` takes a *read* lock, so that many threads reading the counts do
/// not wait for each other, and whose `enter`/`leave` take the *write* lock.
///
/// EXERCISE: keep the four numbers in a `std::sync::RwLock<Stats>` and implement the trait the
/// way `LockedCounter` in `src/counter.rs` does with its mutex. The stub counts nothing and
/// hands everyone id 1.
struct RwLockCounter;

impl RwLockCounter {
    fn new() -> Self {
        RwLockCounter
    }
}

impl Counter for RwLockCounter {
    fn enter(&self) -> u64 {
        1
    }

    fn leave(&self) {}

    fn stats(&self) -> Stats {
        Stats::default()
    }
}
// ANCHOR_END: rwlock_stub

// ANCHOR: rwlock_test
#[test]
#[ignore = "exercise: see book chapter 12"]
fn rwlock_counter_gives_unique_ids_and_consistent_snapshots() {
    const THREADS: u64 = 8;
    const EACH: u64 = 500;
    let counter: Arc<dyn Counter> = Arc::new(RwLockCounter::new());
    let clients: Vec<_> = (0..THREADS)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || {
                (0..EACH)
                    .map(|_| ClientGuard::new(counter.clone()).id())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    // A reader checks snapshots while the clients come and go.
    let reader = {
        let counter = counter.clone();
        thread::spawn(move || {
            for _ in 0..2_000 {
                let stats = counter.stats();
                assert!(stats.is_consistent(), "inconsistent snapshot: {stats:?}");
            }
        })
    };
    let mut ids = HashSet::new();
    for client in clients {
        for id in client.join().unwrap() {
            assert!(ids.insert(id), "id {id} handed out twice");
        }
    }
    reader.join().unwrap();
    let total = THREADS * EACH;
    assert_eq!(ids, (1..=total).collect(), "ids are 1 to {total}");
    let stats = counter.stats();
    assert_eq!(
        (stats.active, stats.served, stats.issued),
        (0, total, total)
    );
    assert!(stats.peak >= 1 && stats.peak <= THREADS, "{stats:?}");
}
// ANCHOR_END: rwlock_test

// ---- Exercise 3: a `stats` command in echo mode ----

// ANCHOR: stats_test
/// EXERCISE: in echo mode, a line that is exactly `stats` is answered with the server's counts
/// instead of an echo: `stats: {active} active, {served} served, peak {peak}, {refused} refused`
/// and `\n`. The connection asking counts as active. This needs a change in the crate: the
/// connection state machine (`src/conn/`) knows nothing about the counter, so something that
/// can produce the line has to reach it (see chapter 12).
#[test]
#[ignore = "exercise: see book chapter 12"]
fn echo_server_answers_the_stats_command() {
    let mut config = ServerConfig::new(Mode::Echo);
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = Server::bind(config).unwrap();
    let handle = server.start().unwrap();
    let addr = handle.local_addr();

    let exchange = |lines: &mut BufReader<TcpStream>, line: &str| {
        lines.get_mut().write_all(line.as_bytes()).unwrap();
        let mut reply = String::new();
        lines.read_line(&mut reply).unwrap();
        reply
    };
    let connect = || {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        BufReader::new(stream)
    };
    // One client comes and goes first, so `served` is 1.
    let mut first = connect();
    assert!(exchange(&mut first, "hello\n").ends_with("Server got 'hello'\n"));
    drop(first);
    // Its end is counted a moment after its socket closes: wait for it, so the peak stays 1.
    for _ in 0..250 {
        if handle.stats().clients.served == 1 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut asking = connect();
    assert_eq!(
        exchange(&mut asking, "stats\n"),
        "stats: 1 active, 1 served, peak 1, 0 refused\n"
    );
    // Anything else is still echoed.
    assert!(exchange(&mut asking, " stats please\n").ends_with("Server got 'stats please'\n"));
    drop(asking);
    handle.shutdown();
    let summary = handle.join();
    assert_eq!(summary.served, 2);
}
// ANCHOR_END: stats_test
