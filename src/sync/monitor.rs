//! A monitor: some state, the mutex around it, the condition variable that
//! says "it changed", and a count of the threads waiting for that — the one
//! place in the crate that waits for a condition.
//!
//! Every object in the core that waits has the same shape: change the state
//! under the lock, tell whoever waits for the change; or, on the other side,
//! check the state under the lock and wait while it is not what we need.
//! [`Monitor`] is that shape, written once:
//!
//! ```
//! use many_clients::sync::{Monitor, Std};
//! use std::sync::Arc;
//! use std::thread;
//!
//! let ready = Arc::new(Monitor::<bool, Std>::new(false));
//! let r = ready.clone();
//! let waiter = thread::spawn(move || {
//!     let mut ready = r.lock();
//!     while !*ready {
//!         ready = ready.wait(); // unlocks, sleeps, locks again
//!     }
//! });
//! let mut state = ready.lock();
//! *state = true; // change the state...
//! state.notify_all(); // ...then unlock and wake whoever waits
//! waiter.join().unwrap();
//! ```
//!
//! # Why it counts its waiters
//!
//! A notify on std's condition variable is a system call even when nobody
//! waits, and the server notifies on every connection's way out (a permit
//! given back, a live connection gone) while almost never having a waiter.
//! So the monitor counts the threads in [`MonitorGuard::wait`] and skips the
//! notify when the count is zero. *Rust Atomics and Locks* keeps the same
//! count inside its condition variable (chapter 9, `num_waiters`): the
//! saving belongs to the condition variable, not to each object that uses
//! one, so every object gets it and none can get it wrong on its own.
//!
//! Why that cannot lose a wake-up: the count is kept under the same lock as
//! the state. A waiter counts itself and starts waiting in one step (the
//! condition variable releases the lock only once the thread is waiting), so
//! a notifier that changes the state after that sees the count and wakes it;
//! a notifier that changed the state before that made the waiter's check
//! come out true, and it never waits. The loom model `tests/loom_monitor.rs`
//! checks exactly this race, on the real code.
//!
//! # The guard cannot cross threads
//!
//! A lock must be unlocked by the thread that locked it, so a guard is not
//! `Send` (std's and loom's guards are not; the monitor's inherits that):
//!
//! ```compile_fail,E0277
//! use many_clients::sync::{Monitor, Std};
//!
//! let monitor = Monitor::<u32, Std>::new(0);
//! let guard = monitor.lock();
//! std::thread::scope(|s| {
//!     s.spawn(move || drop(guard)); // error[E0277]: the guard is not `Send`
//! });
//! ```

use super::{Backend, Condvar, Guard, Lock, Std};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

// ANCHOR: monitor
/// State of type `T` behind a mutex, with a condition variable that knows
/// how many threads wait on it.
pub struct Monitor<T: Send, B: Backend = Std> {
    /// The state and the waiter count, under one lock: a waiter is counted
    /// in the same critical section that checked the state, so a notifier
    /// cannot change the state between the check and the count.
    state: B::Mutex<Counted<T>>,
    /// Signalled after a change, and only when `Counted::waiters` says
    /// someone waits. Lives as long as the monitor.
    changed: B::Condvar,
}

struct Counted<T> {
    value: T,
    /// Threads inside `wait` or `wait_timeout` right now.
    waiters: usize,
}

/// The locked state of a [`Monitor`]. Dereferences to the state; dropping
/// it unlocks. Waiting and notifying go through it, so they always use this
/// monitor's lock and condition variable together.
#[must_use = "dropping the guard unlocks at once"]
pub struct MonitorGuard<'a, T: Send + 'a, B: Backend = Std> {
    monitor: &'a Monitor<T, B>,
    guard: Guard<'a, B, Counted<T>>,
}

impl<T: Send, B: Backend> Monitor<T, B> {
    /// A monitor holding `value`, nobody waiting. `#[track_caller]` so that
    /// under a model checker its lock and condition variable are named after
    /// the line that made the monitor (`state: Monitor::new(…)` → `state`),
    /// not after this one, in a failing run's trace (`src/sync/trace/`).
    #[track_caller]
    pub fn new(value: T) -> Self {
        Monitor {
            state: B::Mutex::new(Counted { value, waiters: 0 }),
            changed: B::Condvar::new(),
        }
    }

    /// Locks the state.
    #[track_caller]
    pub fn lock(&self) -> MonitorGuard<'_, T, B> {
        MonitorGuard {
            monitor: self,
            guard: self.state.lock(),
        }
    }
}

impl<'a, T: Send + 'a, B: Backend> MonitorGuard<'a, T, B> {
    /// Unlocks, sleeps until a notify (or spuriously), and locks again. Call
    /// it in a `while` loop that re-checks the condition: a wake-up only
    /// says "look again".
    #[track_caller]
    pub fn wait(self) -> Self {
        let MonitorGuard { monitor, mut guard } = self;
        guard.waiters += 1;
        let mut guard = monitor.changed.wait(guard);
        guard.waiters -= 1;
        MonitorGuard { monitor, guard }
    }

    /// Like [`MonitorGuard::wait`], but gives up after `timeout`; the `bool`
    /// is `true` when it timed out. (Under loom it never times out.)
    #[track_caller]
    pub fn wait_timeout(self, timeout: Duration) -> (Self, bool) {
        let MonitorGuard { monitor, mut guard } = self;
        guard.waiters += 1;
        let (mut guard, timed_out) = monitor.changed.wait_timeout(guard, timeout);
        guard.waiters -= 1;
        (MonitorGuard { monitor, guard }, timed_out)
    }

    /// Unlocks, then wakes one waiting thread — if one waits. For a change
    /// that one waiter can use (one slot freed, one item queued).
    #[track_caller]
    pub fn notify_one(self) {
        let monitor = self.monitor;
        if self.unlock() {
            monitor.changed.notify_one();
        }
    }

    /// Unlocks, then wakes every waiting thread — if any waits. For a change
    /// every waiter must see (closing, the last connection gone).
    #[track_caller]
    pub fn notify_all(self) {
        let monitor = self.monitor;
        if self.unlock() {
            monitor.changed.notify_all();
        }
    }

    /// Threads waiting on this monitor now (for tests and debug output).
    pub fn waiters(&self) -> usize {
        self.guard.waiters
    }

    /// Unlocks; says whether anyone was waiting. Notifying after the unlock,
    /// not before, spares the woken thread an immediate block on the mutex
    /// we would still hold.
    #[track_caller]
    fn unlock(self) -> bool {
        let MonitorGuard { monitor: _, guard } = self;
        let someone_waits = guard.waiters > 0;
        drop(guard);
        someone_waits
    }
}
// ANCHOR_END: monitor

impl<'a, T: Send + 'a, B: Backend> Deref for MonitorGuard<'a, T, B> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard.value
    }
}

impl<'a, T: Send + 'a, B: Backend> DerefMut for MonitorGuard<'a, T, B> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard.value
    }
}

impl<T: Send + std::fmt::Debug, B: Backend> std::fmt::Debug for Monitor<T, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Monitor")
            .field("value", &*state)
            .field("waiters", &state.waiters())
            .finish()
    }
}

#[cfg(test)]
mod tests;
