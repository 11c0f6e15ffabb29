//! The book's exercises. Every test here fails until you do its exercise; each is `#[ignore]`d
//! so that `cargo test` stays green, and its reason names the chapter that explains it. Remove
//! the `#[ignore]` of the one you are working on, or run them all with:
//!
//! ```text
//! cargo test --test exercises -- --ignored
//! cargo loom --test exercises -- --ignored       # the two loom exercises (chapters 5 and 6)
//! ```
//!
//! The stubs below compile and return a wrong answer on purpose, so each test fails on an
//! assertion that says what is missing, not on a panic in the stub.
//!
//! The loom exercises exist only under `--cfg loom` (`cargo loom` is the alias in
//! `.cargo/config.toml`); everything else here uses the standard library's real threads and
//! the crate's default `Std` backend, so it builds and behaves the same in both builds.

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
#[ignore = "exercise: see book chapter 13"]
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
#[ignore = "exercise: see book chapter 13"]
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
/// can produce the line has to reach it (see chapter 13).
#[test]
#[ignore = "exercise: see book chapter 13"]
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

// ---- Chapter 3: a named thread that reports its panic ----

// ANCHOR: named_thread_stub
/// Starts `work` on a thread of its own for client `id`, the way step 3's accept loop does.
///
/// EXERCISE: name the thread `client-{id}`, so that a panic message says which client's thread
/// it was, and hand back a spawn failure as an error instead of panicking
/// (`std::thread::Builder`). The stub uses `thread::spawn`: no name, and a panic if the
/// operating system refuses the thread.
fn spawn_client(
    id: u64,
    work: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    let _ = id;
    Ok(thread::spawn(work))
}
// ANCHOR_END: named_thread_stub

#[test]
#[ignore = "exercise: see book chapter 3"]
fn a_client_thread_is_named_and_its_panic_reaches_join() {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = spawn_client(7, move || {
        tx.send(thread::current().name().map(str::to_string))
            .unwrap();
        panic!("a bug in client 7's handler");
    })
    .expect("the thread starts");
    let name = rx.recv().unwrap();
    assert!(handle.join().is_err(), "join reports the panic");
    assert_eq!(name.as_deref(), Some("client-7"), "the thread is named");
}

// ---- Chapter 4: a guard that counts a client gone on every path ----

// ANCHOR: connected_guard_stub
/// How many clients are connected now, shared by every client thread.
#[derive(Default)]
struct Connected {
    count: std::sync::Mutex<u64>,
}

/// Counts one client as connected for as long as it lives.
///
/// EXERCISE: count the client gone when the guard is dropped, so that no way out of a handler
/// (an early `return`, a `?`, a panic) can forget it. The stub counts clients in and never out.
#[must_use = "dropping the guard counts the client gone at once"]
struct ConnectedGuard {
    connected: Arc<Connected>,
}

impl ConnectedGuard {
    fn new(connected: Arc<Connected>) -> Self {
        *connected.count.lock().unwrap() += 1;
        ConnectedGuard { connected }
    }
}
// ANCHOR_END: connected_guard_stub

#[test]
#[ignore = "exercise: see book chapter 4"]
fn a_connected_guard_counts_its_client_gone_even_after_a_panic() {
    let connected = Arc::new(Connected::default());
    let quiet = ConnectedGuard::new(connected.clone());
    let shared = connected.clone();
    let handler = thread::spawn(move || {
        let _client = ConnectedGuard::new(shared);
        panic!("a bug in the handler"); // `_client` is dropped while unwinding
    });
    assert!(handler.join().is_err());
    assert_eq!(
        *connected.count.lock().unwrap(),
        1,
        "only `quiet` is still connected"
    );
    assert!(Arc::ptr_eq(&quiet.connected, &connected));
    drop(quiet);
    assert_eq!(*connected.count.lock().unwrap(), 0, "nobody is connected");
}

// ---- Chapter 7: a line framer ----

// ANCHOR: framer_stub
/// Cuts a byte stream into lines ending in `\n`, however the reads split it.
///
/// EXERCISE: keep the start of a line until its end arrives, and return every complete line
/// in a read, without its `\n` (`LineFramer` in `src/conn/framing.rs` is one answer; write your
/// own before you look). The stub is seed 001's rule: one read is one message.
#[derive(Default)]
struct MyFramer {
    partial: Vec<u8>,
}

impl MyFramer {
    /// The lines that `read` completes, in order.
    fn push(&mut self, read: &[u8]) -> Vec<Vec<u8>> {
        let _ = &self.partial;
        vec![read.to_vec()]
    }
}
// ANCHOR_END: framer_stub

#[test]
#[ignore = "exercise: see book chapter 7"]
fn my_framer_finds_lines_however_the_reads_cut_them() {
    let mut framer = MyFramer::default();
    let mut lines = Vec::new();
    for read in [&b"Hel"[..], b"lo\nwor", b"ld\n\nlast", b" one\n"] {
        lines.extend(framer.push(read));
    }
    let lines: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    assert_eq!(lines, ["Hello", "world", "", "last one"]);
}

// ---- Chapter 8.1: linearizability for the limit ----

// ANCHOR: limit_check_stub
/// A `try_acquire` as its thread saw it: its place in a shared log when it was called and when
/// it returned, and whether it got a slot. No slot is ever given back in these histories.
struct TryAcquire {
    called: usize,
    returned: usize,
    got: bool,
}

/// Is there an order of `ops` that respects the timeline (an operation that returned before
/// another was called comes first) and in which a limit of `max` slots, used one call at a
/// time, gives exactly these answers?
///
/// EXERCISE: search for such an order, like chapter 8.1's `linearizable` for `connect`. The
/// sequential model: the k-th `try_acquire` in the order gets a slot if fewer than `max` slots
/// were taken before it. The stub accepts every well-formed history.
fn limit_linearizable(max: usize, ops: &[TryAcquire]) -> bool {
    let _ = max;
    ops.iter().all(|op| op.called < op.returned || op.got)
}
// ANCHOR_END: limit_check_stub

#[test]
#[ignore = "exercise: see book chapter 8.1"]
fn the_limit_check_rejects_two_holders_of_one_slot() {
    let op = |called, returned, got| TryAcquire {
        called,
        returned,
        got,
    };
    // CheckThenActLimit's history: one slot, two overlapping calls, and both got it.
    assert!(!limit_linearizable(1, &[op(0, 3, true), op(1, 2, true)]));
    // Overlapping, one got it: either may have come first.
    assert!(limit_linearizable(1, &[op(0, 3, false), op(1, 2, true)]));
    // One after the other: the first call found the limit empty, so it must have got a slot.
    assert!(!limit_linearizable(1, &[op(0, 1, false), op(2, 3, true)]));
    assert!(limit_linearizable(1, &[op(0, 1, true), op(2, 3, false)]));
    // Two slots: two holders are fine, three are not.
    assert!(limit_linearizable(2, &[op(0, 5, true), op(1, 4, true)]));
    assert!(!limit_linearizable(
        2,
        &[op(0, 5, true), op(1, 4, true), op(2, 3, true)]
    ));
}

// ---- Chapter 10: a drain that waits, but not for ever ----

// ANCHOR: grace_drain_stub
/// Connections still live, and a way to wait until there are none, with a deadline.
#[derive(Default)]
struct GraceDrain {
    live: std::sync::Mutex<usize>,
    changed: std::sync::Condvar,
}

impl GraceDrain {
    fn enter(&self) {
        *self.live.lock().unwrap() += 1;
    }

    fn leave(&self) {
        *self.live.lock().unwrap() -= 1;
        self.changed.notify_all();
    }

    /// Waits until nobody is live (`true`) or `timeout` has passed (`false`).
    ///
    /// EXERCISE: wait on `changed` in a `while` loop with `Condvar::wait_timeout`, against a
    /// deadline computed once before the loop, so that wake-ups that are not "done" (and
    /// spurious ones) neither end the wait early nor restart the clock. The stub does not wait.
    fn wait_for(&self, timeout: Duration) -> bool {
        let _ = (timeout, &self.changed);
        *self.live.lock().unwrap() == 0
    }
}
// ANCHOR_END: grace_drain_stub

#[test]
#[ignore = "exercise: see book chapter 10"]
fn grace_drain_waits_for_the_last_leave_or_the_deadline() {
    let drain = Arc::new(GraceDrain::default());
    drain.enter();
    // Nobody leaves: the wait takes the whole timeout, and says so.
    let start = std::time::Instant::now();
    assert!(
        !drain.wait_for(Duration::from_millis(100)),
        "someone is still live"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "it waited the whole timeout"
    );
    // Someone leaves after 50 ms, with a wake-up that is not "done" before it.
    drain.enter();
    let leaver = {
        let drain = drain.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            drain.changed.notify_all(); // a wake-up with two still live
            thread::sleep(Duration::from_millis(30));
            drain.leave();
            drain.leave();
        })
    };
    let start = std::time::Instant::now();
    assert!(drain.wait_for(Duration::from_secs(5)), "everybody left");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(40) && took < Duration::from_secs(2),
        "it returned when the last one left, not before and not at the deadline: {took:?}"
    );
    leaver.join().unwrap();
}

// ---- Chapters 5 and 6, under loom: `cargo loom --test exercises -- --ignored` ----

#[cfg(loom)]
mod loom_exercises {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU64, Ordering};
    use loom::thread;

    // ANCHOR: ordering_stub
    /// Two of `AtomicCounter`'s numbers: ids handed out, and clients connected now.
    ///
    /// EXERCISE (chapter 5): make every snapshot keep `active <= issued`. A reader that counts a
    /// client as active must also see its id issued. Change only orderings: which write must be
    /// `Release`, and which read `Acquire`, for the pair to synchronise? The stub is `Relaxed`
    /// throughout, and loom finds a reader that sees `active` 1 and `issued` 0.
    #[derive(Default)]
    pub struct TwoNumbers {
        issued: AtomicU64,
        active: AtomicU64,
    }

    impl TwoNumbers {
        pub fn enter(&self) -> u64 {
            let id = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
            self.active.fetch_add(1, Ordering::Relaxed);
            id
        }

        /// (active, issued)
        pub fn snapshot(&self) -> (u64, u64) {
            let active = self.active.load(Ordering::Relaxed);
            let issued = self.issued.load(Ordering::Relaxed);
            (active, issued)
        }
    }
    // ANCHOR_END: ordering_stub

    #[test]
    #[ignore = "exercise: see book chapter 5"]
    fn a_reader_that_counts_a_client_active_sees_its_id_issued() {
        loom::model(|| {
            let numbers = Arc::new(TwoNumbers::default());
            let client = {
                let numbers = numbers.clone();
                thread::spawn(move || numbers.enter())
            };
            let (active, issued) = numbers.snapshot();
            assert!(active <= issued, "active {active} but only {issued} issued");
            client.join().unwrap();
        });
    }

    // ANCHOR: next_id_stub
    /// Hands out ids 1, 2, 3, … to whichever thread asks.
    ///
    /// EXERCISE (chapter 6): the stub is `RacyCounter`'s load-then-store. Make two threads that
    /// ask at once always get different ids, with one change.
    #[derive(Default)]
    pub struct Ids {
        last: AtomicU64,
    }

    impl Ids {
        pub fn next(&self) -> u64 {
            let next = self.last.load(Ordering::SeqCst) + 1;
            self.last.store(next, Ordering::SeqCst);
            next
        }
    }
    // ANCHOR_END: next_id_stub

    #[test]
    #[ignore = "exercise: see book chapter 6"]
    fn two_threads_never_get_the_same_id() {
        loom::model(|| {
            let ids = Arc::new(Ids::default());
            let other = {
                let ids = ids.clone();
                thread::spawn(move || ids.next())
            };
            let mine = ids.next();
            let theirs = other.join().unwrap();
            let mut got = [mine, theirs];
            got.sort_unstable();
            assert_eq!(got, [1, 2], "duplicate or missing id");
        });
    }
}
