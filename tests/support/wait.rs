//! Time limits, and the one way a test waits for something: poll a condition against a
//! deadline. Every socket has read and write timeouts and every wait has a deadline, so a server
//! bug fails a test instead of hanging it; and nothing waits by sleeping a guessed time.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// What any one client wait (connect, send, reply) is allowed.
pub const T: Duration = Duration::from_secs(10);
/// How long a condition may take to come true before the test fails.
pub const SETTLE: Duration = Duration::from_secs(10);
/// How much later than the grace period `join` may return when it had to cut someone.
pub const CUT_SLACK: Duration = Duration::from_millis(750);

/// Polls `cond` until it holds, or panics with `what` once `within` has passed. A condition
/// that has a value to hand back stores it in a variable it captures.
pub fn eventually(what: &str, within: Duration, cond: impl FnMut() -> bool) {
    assert!(poll(within, cond), "not within {within:?}: {what}");
}

/// The loop behind [`eventually`], for a caller whose failure message needs the state the
/// condition last saw: whether `cond` held within `within`.
pub fn poll(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        // The polling interval inside a deadline loop, not a synchronisation.
        thread::sleep(Duration::from_millis(5));
    }
    true
}

/// A lock that a panicking test (or an injected panic in the server) does not poison for the
/// tests after it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
