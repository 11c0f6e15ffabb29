//! The [`Loom`] backend, compiled only under `--cfg loom`: loom's mocks of
//! the same primitives, so `loom::model` can run every interleaving of the
//! core's real code.
//!
//! Loom's limits shape the core: no `wait_while` (write the loop), no
//! spurious wake-ups simulated, `wait_timeout` never times out, `SeqCst` is
//! modelled as `AcqRel`, at most 5 threads per model including the main one.

use super::{Backend, Condvar, Guard, JoinHandle, Lock, Ordering, forward_atomics};
use loom::sync;
use std::io;
use std::time::Duration;

/// loom's model-checked primitives. Only usable inside `loom::model`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loom;

impl Backend for Loom {
    type Mutex<T: Send> = LoomMutex<T>;
    type Condvar = LoomCondvar;
    type AtomicU64 = sync::atomic::AtomicU64;
    type AtomicBool = sync::atomic::AtomicBool;
    type JoinHandle<T: Send + 'static> = loom::thread::JoinHandle<T>;

    fn spawn<F, T>(name: String, stack_size: Option<usize>, f: F) -> io::Result<Self::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let builder = loom::thread::Builder::new().name(name);
        match stack_size {
            Some(bytes) => builder.stack_size(bytes).spawn(f),
            None => builder.spawn(f),
        }
    }

    fn yield_now() {
        loom::thread::yield_now();
    }

    /// Lets the panic through: inside a model it is the model failing.
    fn catch_unwind<R>(work: impl FnOnce() -> R) -> std::thread::Result<R> {
        Ok(work())
    }
}

forward_atomics!(sync::atomic::AtomicU64, sync::atomic::AtomicBool);

/// `loom::sync::Mutex` with the parking_lot-shaped API.
#[derive(Debug)]
pub struct LoomMutex<T>(sync::Mutex<T>);

impl<T: Send> Lock<T> for LoomMutex<T> {
    type Guard<'a>
        = sync::MutexGuard<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        LoomMutex(sync::Mutex::new(value))
    }

    fn lock(&self) -> Self::Guard<'_> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `loom::sync::Condvar`.
#[derive(Debug)]
pub struct LoomCondvar(sync::Condvar);

impl Condvar<Loom> for LoomCondvar {
    fn new() -> Self {
        LoomCondvar(sync::Condvar::new())
    }

    fn wait<'a, T: Send + 'a>(&self, guard: Guard<'a, Loom, T>) -> Guard<'a, Loom, T> {
        self.0
            .wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wait_timeout<'a, T: Send + 'a>(
        &self,
        guard: Guard<'a, Loom, T>,
        timeout: Duration,
    ) -> (Guard<'a, Loom, T>, bool) {
        let (guard, result) = self
            .0
            .wait_timeout(guard, timeout)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (guard, result.timed_out())
    }

    fn notify_one(&self) {
        self.0.notify_one();
    }

    fn notify_all(&self) {
        self.0.notify_all();
    }
}

impl<T: Send + 'static> JoinHandle<T> for loom::thread::JoinHandle<T> {
    fn join(self) -> std::thread::Result<T> {
        loom::thread::JoinHandle::join(self)
    }

    fn is_finished(&self) -> bool {
        false // loom has no such query; models are too small to need pruning
    }
}
