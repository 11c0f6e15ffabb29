//! The [`ParkingLot`] backend: `parking_lot`'s smaller, faster, unpoisoned
//! locks with std's atomics and threads.
//!
//! `parking_lot` cannot run inside a loom model (loom only sees its own
//! types; a real lock held across a loom thread switch blocks the single OS
//! thread loom runs on forever), so it is checked by the same generic tests
//! natively and by loom only through the identical algorithm on `Loom` (`crate::sync`).
//!

use super::{Backend, Condvar, Guard, Lock, Std};
use std::io;
use std::sync::atomic;
use std::thread;
use std::time::Duration;

/// `parking_lot::{Mutex, Condvar}` with std atomics and threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParkingLot;

impl Backend for ParkingLot {
    type Mutex<T: Send> = PlMutex<T>;
    type Condvar = PlCondvar;
    type AtomicU64 = atomic::AtomicU64;
    type AtomicBool = atomic::AtomicBool;
    type JoinHandle<T: Send + 'static> = thread::JoinHandle<T>;

    fn spawn<F, T>(name: String, stack_size: Option<usize>, f: F) -> io::Result<Self::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Std::spawn(name, stack_size, f)
    }

    fn yield_now() {
        Std::yield_now();
    }

    fn catch_unwind<R>(work: impl FnOnce() -> R) -> thread::Result<R> {
        Std::catch_unwind(work)
    }
}

/// `parking_lot::Mutex`: no poisoning, one byte of state.
#[derive(Debug, Default)]
pub struct PlMutex<T>(parking_lot::Mutex<T>);

impl<T: Send> Lock<T> for PlMutex<T> {
    type Guard<'a>
        = parking_lot::MutexGuard<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        PlMutex(parking_lot::Mutex::new(value))
    }

    fn lock(&self) -> Self::Guard<'_> {
        self.0.lock()
    }
}

/// `parking_lot::Condvar`, adapted to take the guard by value like std's.
#[derive(Debug, Default)]
pub struct PlCondvar(parking_lot::Condvar);

impl Condvar<ParkingLot> for PlCondvar {
    fn new() -> Self {
        PlCondvar(parking_lot::Condvar::new())
    }

    fn wait<'a, T: Send + 'a>(
        &self,
        mut guard: Guard<'a, ParkingLot, T>,
    ) -> Guard<'a, ParkingLot, T> {
        self.0.wait(&mut guard);
        guard
    }

    fn wait_timeout<'a, T: Send + 'a>(
        &self,
        mut guard: Guard<'a, ParkingLot, T>,
        timeout: Duration,
    ) -> (Guard<'a, ParkingLot, T>, bool) {
        let result = self.0.wait_for(&mut guard, timeout);
        (guard, result.timed_out())
    }

    fn notify_one(&self) {
        self.0.notify_one();
    }

    fn notify_all(&self) {
        self.0.notify_all();
    }
}
