//! This process's threads and memory, from `/proc`: which threads are the server's (by the
//! names it gives them), whether one is alive, how much CPU one used; and [`serial`], which the
//! thread checks need.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::wait::{lock, poll};

/// Whether a thread name is one the server gives its threads: `accept`, `busy` (answering a
/// refused connection), `client-{id}` (a thread per connection), `worker-{i}` (a pool),
/// `events-{i}` (an event loop). The one place that knows: an engine that names new threads
/// adds its names here.
pub fn is_server_thread(name: &str) -> bool {
    name == "accept"
        || name == "busy"
        || name.starts_with("client-")
        || name.starts_with("worker-")
        || name.starts_with("events-")
}

/// `(tid, name)` of every thread of this process. Panics if the list cannot be read (out of
/// descriptors, say): an empty list would pass every "no thread left" check.
pub fn threads() -> Vec<(u64, String)> {
    let tasks = std::fs::read_dir("/proc/self/task")
        .unwrap_or_else(|e| panic!("listing this process's threads: {e}"));
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse().ok()?;
            // A thread may exit between the listing and the read.
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            Some((tid, comm.trim_end().to_string()))
        })
        .collect()
}

/// Names of the server threads alive now, sorted.
pub fn server_threads() -> Vec<String> {
    let mut names: Vec<String> = threads()
        .into_iter()
        .map(|(_, n)| n)
        .filter(|n| is_server_thread(n))
        .collect();
    names.sort();
    names
}

/// Whether a thread with exactly this name is alive.
pub fn thread_alive(name: &str) -> bool {
    threads().iter().any(|(_, n)| n == name)
}

/// Polls until no server thread is left: a joined thread can stay listed for a moment while
/// the kernel reaps it. Only meaningful while no other server runs in this process, which
/// [`serial`] makes sure of (`start` checks that its caller holds it).
pub fn assert_no_server_threads(within: Duration) {
    let mut left = Vec::new();
    let gone = poll(within, || {
        left = server_threads();
        left.is_empty()
    });
    assert!(
        gone,
        "server threads still alive after {within:?}: {left:?}"
    );
}

/// `VmRSS` of this process, in KiB.
pub fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a thread has used, in clock ticks (Linux reports 100 per second).
pub fn thread_cpu_ticks(tid: u64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // The name field is in parentheses and may hold spaces: count fields after its `)`.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state(3) … utime is field 14, stime 15 (1-based in proc(5)).
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// CPU time all of the server's threads have used so far, in clock ticks (100 per second).
/// Threads that have ended are not counted, so compare two readings of the same threads.
pub fn server_cpu_ticks() -> u64 {
    threads()
        .into_iter()
        .filter(|(_, name)| is_server_thread(name))
        .map(|(tid, _)| thread_cpu_ticks(tid))
        .sum()
}

thread_local! {
    /// Whether this thread holds [`serial`]: a test's server is started on the test's thread.
    static HOLDS_SERIAL: Cell<bool> = const { Cell::new(false) };
}

/// Held while a test runs a server: the tests of one binary take turns, because each counts
/// the server's threads by name (and some take many file descriptors), so two at once would see
/// each other's. `engine_tests!` takes it for every test it makes.
pub struct Serial {
    _guard: MutexGuard<'static, ()>,
}

/// Waits for the other tests of this binary to finish with their servers.
pub fn serial() -> Serial {
    static SERIAL: Mutex<()> = Mutex::new(());
    let guard = lock(&SERIAL);
    HOLDS_SERIAL.set(true);
    Serial { _guard: guard }
}

impl Drop for Serial {
    fn drop(&mut self) {
        HOLDS_SERIAL.set(false);
    }
}

/// Whether the current thread holds [`serial`].
pub fn holds_serial() -> bool {
    HOLDS_SERIAL.get()
}
