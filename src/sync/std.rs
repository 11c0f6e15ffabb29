//! The [`Std`] backend: `std::sync` and `std::thread`, what the seed's
//! Python `threading.Lock` becomes in Rust.

use super::{Backend, Condvar, Guard, JoinHandle, Lock, Ordering, forward_atomics};
use std::io;
use std::sync::{self, PoisonError};
use std::thread;
use std::time::Duration;

/// Real primitives from the standard library. The default backend of every
/// core type, and the one the server uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Std;

impl Backend for Std {
    type Mutex<T: Send> = StdMutex<T>;
    type Condvar = StdCondvar;
    type AtomicU64 = sync::atomic::AtomicU64;
    type AtomicBool = sync::atomic::AtomicBool;
    type JoinHandle<T: Send + 'static> = thread::JoinHandle<T>;

    fn spawn<F, T>(name: String, stack_size: Option<usize>, f: F) -> io::Result<Self::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let builder = thread::Builder::new().name(name);
        match stack_size {
            Some(bytes) => builder.stack_size(bytes).spawn(f),
            None => builder.spawn(f),
        }
    }

    fn yield_now() {
        thread::yield_now();
    }

    fn catch_unwind<R>(work: impl FnOnce() -> R) -> thread::Result<R> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
    }
}

forward_atomics!(sync::atomic::AtomicU64, sync::atomic::AtomicBool);

/// `std::sync::Mutex` without the poisoning in its API (see the module docs
/// of [`crate::sync`] for why recovering is sound in the core).
#[derive(Debug, Default)]
pub struct StdMutex<T>(sync::Mutex<T>);

// ANCHOR: std_lock
impl<T: Send> Lock<T> for StdMutex<T> {
    type Guard<'a>
        = sync::MutexGuard<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        StdMutex(sync::Mutex::new(value))
    }

    fn lock(&self) -> Self::Guard<'_> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
// ANCHOR_END: std_lock

impl<T> StdMutex<T> {
    /// Whether a thread panicked while holding this lock (std only; the
    /// poisoning tests use it to prove the panic really happened).
    pub fn is_poisoned(&self) -> bool {
        self.0.is_poisoned()
    }
}

/// `std::sync::Condvar`, recovering from poisoning like [`StdMutex`].
#[derive(Debug, Default)]
pub struct StdCondvar(sync::Condvar);

impl Condvar<Std> for StdCondvar {
    fn new() -> Self {
        StdCondvar(sync::Condvar::new())
    }

    fn wait<'a, T: Send + 'a>(&self, guard: Guard<'a, Std, T>) -> Guard<'a, Std, T> {
        self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_timeout<'a, T: Send + 'a>(
        &self,
        guard: Guard<'a, Std, T>,
        timeout: Duration,
    ) -> (Guard<'a, Std, T>, bool) {
        let (guard, result) = self
            .0
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        (guard, result.timed_out())
    }

    fn notify_one(&self) {
        self.0.notify_one();
    }

    fn notify_all(&self) {
        self.0.notify_all();
    }
}

impl<T: Send + 'static> JoinHandle<T> for thread::JoinHandle<T> {
    fn join(self) -> thread::Result<T> {
        thread::JoinHandle::join(self)
    }

    fn is_finished(&self) -> bool {
        thread::JoinHandle::is_finished(self)
    }
}
