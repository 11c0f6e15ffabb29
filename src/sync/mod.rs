//! The swappable synchronisation primitives: the one place that knows which
//! `Mutex`, `Condvar`, atomics and threads the core runs on.
//!
//! # Why a backend type, not only a `cfg` switch
//!
//! tokio's `src/loom/` module swaps std for loom with a `cfg`: compile with
//! `--cfg loom` and every lock in the crate becomes a loom lock. That is the
//! right idea, and this module keeps it — the `Loom` backend exists only
//! under `cfg(loom)`, the `Shuttle` backend only under `cfg(shuttle)`, and
//! neither `cfg` appears anywhere else in `src/`. But a
//! pure `cfg` switch has two costs this crate cannot pay:
//!
//! 1. **It swaps everything at once.** Under `--cfg loom` a doc-test or an
//!    example that builds a server would touch loom types outside a loom
//!    model and panic. `cargo test` runs doc-tests without `RUSTFLAGS`, yet
//!    links them against the library built with it, so
//!    `RUSTFLAGS="--cfg loom" cargo test` would go red.
//! 2. **It allows one backend per build.** A benchmark cannot put the std
//!    mutex, `parking_lot` and atomics side by side in one binary.
//!
//! So the choice is a *type parameter*. Every core type takes a
//! `B: Backend` with a default of [`Std`]:
//!
//! ```
//! use many_clients::counter::LockedCounter;
//! use many_clients::sync::ParkingLot;
//!
//! let seed_design: LockedCounter = LockedCounter::new(); // B = Std: std::sync::Mutex
//! let swapped = LockedCounter::<ParkingLot>::new();      // the one-line swap
//! # let _ = (seed_design, swapped);
//! ```
//!
//! Public, server-facing types default to [`Std`] and so always run on real
//! primitives, whatever the `cfg`. Only the model tests name a model
//! backend, through the [`Model`] alias: `tests/loom_*.rs` inside
//! `loom::model`, `tests/shuttle_*.rs` inside Shuttle's `check_*`. Nothing
//! in the core imports `std::sync` or `parking_lot` directly: they go through
//! the traits below, so the same source is what loom checks and what the
//! server runs.
//!
//! # Lock poisoning
//!
//! A std `Mutex` is *poisoned* when a thread panics while holding it, and
//! every later `lock()` returns an error. `parking_lot` has no poisoning. The
//! core makes them behave the same: [`Lock::lock`] on [`Std`] recovers the
//! guard from a poisoned lock. That is sound here because every critical
//! section in the core is a handful of integer updates that cannot panic
//! half-way and calls no user code while holding the lock, so the data
//! behind a poisoned lock is still consistent. Refusing every later client
//! because one handler thread panicked would turn one bug into an outage. The
//! tests in `counter.rs` and `limit.rs` poison the lock on purpose and check
//! that the counts stay right.
//!
//! # What is left out
//!
//! `Arc` is always `std::sync::Arc`. Its reference count is not the state
//! under test, and loom's `Arc` aborts the whole test binary when a model
//! that holds one deadlocks (loom#291) — exactly the models we write to show
//! loom catching a lost wake-up.

mod monitor;
mod parking_lot;
mod std;
pub mod trace;

pub use self::monitor::{Monitor, MonitorGuard};
pub use self::parking_lot::ParkingLot;
pub use self::std::Std;

#[cfg(any(loom, shuttle))]
mod traced;

#[cfg(loom)]
mod loom;
#[cfg(loom)]
pub use self::loom::Loom;

#[cfg(shuttle)]
mod shuttle;
#[cfg(shuttle)]
pub use self::shuttle::Shuttle;

// One model checker per build: each replaces the primitives under the
// other's feet (a loom lock inside a Shuttle test, or the reverse, fails at
// the first use), so asking for both is a mistake to stop at compile time.
#[cfg(all(loom, shuttle))]
compile_error!("`--cfg loom` and `--cfg shuttle` together: pick one model checker per build");

/// The backend the model tests run on: `Loom` under `--cfg loom`,
/// `Shuttle` under `--cfg shuttle`, [`Std`] otherwise. This alias is the
/// crate's tokio-style switch.
#[cfg(loom)]
pub type Model = Loom;
/// The backend the model tests run on: `Loom` under `--cfg loom`,
/// `Shuttle` under `--cfg shuttle`, [`Std`] otherwise. This alias is the
/// crate's tokio-style switch.
#[cfg(all(shuttle, not(loom)))]
pub type Model = Shuttle;
/// The backend the model tests run on: `Loom` under `--cfg loom`,
/// `Shuttle` under `--cfg shuttle`, [`Std`] otherwise. This alias is the
/// crate's tokio-style switch.
#[cfg(not(any(loom, shuttle)))]
pub type Model = Std;

pub use ::std::sync::Arc;
pub use ::std::sync::atomic::Ordering;

use ::std::io;
use ::std::ops::DerefMut;
use ::std::time::Duration;

// ANCHOR: backend
/// A family of primitives that fit together: a mutex, the condition variable
/// that works with its guard, atomics and threads.
pub trait Backend: Sized + Send + Sync + 'static {
    /// A mutual-exclusion lock.
    type Mutex<T: Send>: Lock<T>;
    /// A condition variable that waits on this backend's mutex guards.
    type Condvar: Condvar<Self>;
    /// An atomic `u64` (counters, ids).
    type AtomicU64: AtomicU64;
    /// An atomic `bool` (flags).
    type AtomicBool: AtomicBool;
    /// The handle a spawned thread is joined through.
    type JoinHandle<T: Send + 'static>: JoinHandle<T>;

    /// Spawns a named thread with an optional stack size.
    fn spawn<F, T>(
        name: String,
        stack_size: Option<usize>,
        f: F,
    ) -> io::Result<Self::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// Lets other threads run; spin loops call it so loom can switch threads.
    fn yield_now();

    /// Runs `work` and catches a panic in it, so that one connection's
    /// panicking handler does not take a pool worker down with it. Under a
    /// model checker a panic is the model failing, and must reach the
    /// checker: the model backends let it through.
    fn catch_unwind<R>(work: impl FnOnce() -> R) -> ::std::thread::Result<R>;
}

/// The guard type of backend `B`'s mutex holding a `T`.
pub type Guard<'a, B, T> = <<B as Backend>::Mutex<T> as Lock<T>>::Guard<'a>;

/// A mutex with a `parking_lot`-shaped API: `lock()` returns the guard.
pub trait Lock<T>: Send + Sync {
    /// What `lock()` hands out; dropping it unlocks.
    type Guard<'a>: DerefMut<Target = T>
    where
        Self: 'a;
    /// A new unlocked mutex holding `value`.
    fn new(value: T) -> Self;
    /// Blocks until the lock is ours. Never fails: see the module docs on
    /// poisoning.
    fn lock(&self) -> Self::Guard<'_>;
}
// ANCHOR_END: backend

/// A condition variable. The core never uses one directly: it waits through
/// a [`Monitor`], which pairs it with its mutex and counts its waiters. No
/// `wait_while`: loom lacks it (loom#393), and the explicit
/// `while !ready { guard = guard.wait() }` loop is the thing to learn anyway.
pub trait Condvar<B: Backend>: Send + Sync {
    /// A condition variable nobody waits on yet.
    fn new() -> Self;
    /// Unlocks, sleeps until notified (or spuriously woken), relocks.
    fn wait<'a, T: Send + 'a>(&self, guard: Guard<'a, B, T>) -> Guard<'a, B, T>;
    /// Like [`Condvar::wait`] but gives up after `timeout`; the `bool` is
    /// `true` when it timed out. Under loom it never times out.
    fn wait_timeout<'a, T: Send + 'a>(
        &self,
        guard: Guard<'a, B, T>,
        timeout: Duration,
    ) -> (Guard<'a, B, T>, bool);
    /// Wakes one waiter.
    fn notify_one(&self);
    /// Wakes every waiter.
    fn notify_all(&self);
}

/// The atomic `u64` operations the core uses.
pub trait AtomicU64: Send + Sync {
    /// A new atomic holding `v`.
    fn new(v: u64) -> Self;
    /// See `std::sync::atomic::AtomicU64::load`.
    fn load(&self, order: Ordering) -> u64;
    /// See `std::sync::atomic::AtomicU64::store`.
    fn store(&self, v: u64, order: Ordering);
    /// See `std::sync::atomic::AtomicU64::fetch_add`.
    fn fetch_add(&self, v: u64, order: Ordering) -> u64;
    /// See `std::sync::atomic::AtomicU64::fetch_sub`.
    fn fetch_sub(&self, v: u64, order: Ordering) -> u64;
    /// See `std::sync::atomic::AtomicU64::fetch_max`.
    fn fetch_max(&self, v: u64, order: Ordering) -> u64;
}

/// The atomic `bool` operations the core uses.
pub trait AtomicBool: Send + Sync {
    /// A new atomic holding `v`.
    fn new(v: bool) -> Self;
    /// See `std::sync::atomic::AtomicBool::load`.
    fn load(&self, order: Ordering) -> bool;
    /// See `std::sync::atomic::AtomicBool::swap`.
    fn swap(&self, v: bool, order: Ordering) -> bool;
}

/// Joins a thread spawned by [`Backend::spawn`].
pub trait JoinHandle<T>: Send {
    /// Waits for the thread; `Err` carries its panic.
    fn join(self) -> ::std::thread::Result<T>;
    /// Whether the thread has finished (so joining would not block).
    fn is_finished(&self) -> bool;
}

/// Implements the atomic traits for one backend's atomic types by
/// forwarding to their inherent methods (the std backend's; the loom backend
/// wraps its atomics to report each access to the trace recorder).
macro_rules! forward_atomics {
    ($u64:ty, $bool:ty) => {
        impl $crate::sync::AtomicU64 for $u64 {
            fn new(v: u64) -> Self {
                <$u64>::new(v)
            }
            fn load(&self, order: Ordering) -> u64 {
                <$u64>::load(self, order)
            }
            fn store(&self, v: u64, order: Ordering) {
                <$u64>::store(self, v, order)
            }
            fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
                <$u64>::fetch_add(self, v, order)
            }
            fn fetch_sub(&self, v: u64, order: Ordering) -> u64 {
                <$u64>::fetch_sub(self, v, order)
            }
            fn fetch_max(&self, v: u64, order: Ordering) -> u64 {
                <$u64>::fetch_max(self, v, order)
            }
        }
        impl $crate::sync::AtomicBool for $bool {
            fn new(v: bool) -> Self {
                <$bool>::new(v)
            }
            fn load(&self, order: Ordering) -> bool {
                <$bool>::load(self, order)
            }
            fn swap(&self, v: bool, order: Ordering) -> bool {
                <$bool>::swap(self, v, order)
            }
        }
    };
}
pub(crate) use forward_atomics;
