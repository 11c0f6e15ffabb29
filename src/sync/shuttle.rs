//! The [`Shuttle`] backend, compiled only under `--cfg shuttle`: Shuttle's
//! controlled versions of the same primitives, so `shuttle::check_pct` and
//! `shuttle::check_random` can run the core's real code under schedules they
//! choose — thousands of them, at random, with a probabilistic guarantee,
//! where loom's exhaustive search would never finish.
//!
//! Shuttle's limits, next to loom's: it samples schedules instead of trying
//! them all (a pass is strong evidence, not a proof); it does not model weak
//! memory (every atomic behaves as `SeqCst`, so it cannot find an ordering
//! bug that loom can); no spurious wake-ups; `wait_timeout` never times out;
//! no `std::net` (the models run the server over `server::pipe`). No limit
//! on threads: a whole server with eight clients is one model.
//!
//! Every primitive is a thin newtype whose methods forward to Shuttle's, as
//! in the [`Loom`](super) backend, so a method can be observed (logged,
//! traced) by adding a line to it without touching the core.

use super::{AtomicBool, AtomicU64, Backend, Condvar, Guard, JoinHandle, Lock, Ordering};
use shuttle::sync;
use std::io;
use std::sync::PoisonError;
use std::time::Duration;

/// Shuttle's scheduled primitives. Only usable inside a Shuttle test
/// (`shuttle::check_*`, `shuttle::replay`, a `shuttle::Runner`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Shuttle;

// ANCHOR: shuttle_backend
impl Backend for Shuttle {
    type Mutex<T: Send> = ShuttleMutex<T>;
    type Condvar = ShuttleCondvar;
    type AtomicU64 = ShuttleAtomicU64;
    type AtomicBool = ShuttleAtomicBool;
    type JoinHandle<T: Send + 'static> = ShuttleJoinHandle<T>;

    fn spawn<F, T>(name: String, stack_size: Option<usize>, f: F) -> io::Result<Self::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let builder = shuttle::thread::Builder::new().name(name);
        let builder = match stack_size {
            Some(bytes) => builder.stack_size(bytes),
            None => builder,
        };
        builder.spawn(f).map(ShuttleJoinHandle)
    }

    fn yield_now() {
        shuttle::thread::yield_now();
    }

    /// Lets the panic through: inside a Shuttle test it is the test failing,
    /// and Shuttle must see it to print the schedule that led there.
    fn catch_unwind<R>(work: impl FnOnce() -> R) -> std::thread::Result<R> {
        Ok(work())
    }
}

// ANCHOR_END: shuttle_backend

/// `shuttle::sync::Mutex` with the parking_lot-shaped API.
#[derive(Debug)]
pub struct ShuttleMutex<T>(sync::Mutex<T>);

impl<T: Send> Lock<T> for ShuttleMutex<T> {
    type Guard<'a>
        = sync::MutexGuard<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        ShuttleMutex(sync::Mutex::new(value))
    }

    fn lock(&self) -> Self::Guard<'_> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `shuttle::sync::Condvar`.
#[derive(Debug)]
pub struct ShuttleCondvar(sync::Condvar);

impl Condvar<Shuttle> for ShuttleCondvar {
    fn new() -> Self {
        ShuttleCondvar(sync::Condvar::new())
    }

    fn wait<'a, T: Send + 'a>(&self, guard: Guard<'a, Shuttle, T>) -> Guard<'a, Shuttle, T> {
        self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// Never times out (Shuttle does not model time): a model that needs
    /// the timeout to make progress is reported as a deadlock.
    fn wait_timeout<'a, T: Send + 'a>(
        &self,
        guard: Guard<'a, Shuttle, T>,
        timeout: Duration,
    ) -> (Guard<'a, Shuttle, T>, bool) {
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

/// `shuttle::sync::atomic::AtomicU64`: every operation is a point where
/// Shuttle may switch threads.
#[derive(Debug)]
pub struct ShuttleAtomicU64(sync::atomic::AtomicU64);

impl AtomicU64 for ShuttleAtomicU64 {
    fn new(v: u64) -> Self {
        ShuttleAtomicU64(sync::atomic::AtomicU64::new(v))
    }
    fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    fn store(&self, v: u64, order: Ordering) {
        self.0.store(v, order)
    }
    fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
        self.0.fetch_add(v, order)
    }
    fn fetch_sub(&self, v: u64, order: Ordering) -> u64 {
        self.0.fetch_sub(v, order)
    }
    fn fetch_max(&self, v: u64, order: Ordering) -> u64 {
        self.0.fetch_max(v, order)
    }
}

/// `shuttle::sync::atomic::AtomicBool`.
#[derive(Debug)]
pub struct ShuttleAtomicBool(sync::atomic::AtomicBool);

impl AtomicBool for ShuttleAtomicBool {
    fn new(v: bool) -> Self {
        ShuttleAtomicBool(sync::atomic::AtomicBool::new(v))
    }
    fn load(&self, order: Ordering) -> bool {
        self.0.load(order)
    }
    fn swap(&self, v: bool, order: Ordering) -> bool {
        self.0.swap(v, order)
    }
}

/// `shuttle::thread::JoinHandle`.
#[derive(Debug)]
pub struct ShuttleJoinHandle<T>(shuttle::thread::JoinHandle<T>);

impl<T: Send + 'static> JoinHandle<T> for ShuttleJoinHandle<T> {
    fn join(self) -> std::thread::Result<T> {
        self.0.join()
    }

    /// Shuttle's handle has no such query (only its scoped one does), and
    /// the accept loop only asks to prune handles every 16 connections —
    /// more than any model opens.
    fn is_finished(&self) -> bool {
        false
    }
}
