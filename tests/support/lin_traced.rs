//! [`Traced`]: loom's primitives plus a note of the moment an operation first touches shared
//! state — so the history can log the operation's call *then*, as late as it could be.
//!
//! # Why
//!
//! loom switches threads only at its own operations (a lock, an atomic access, …). The code
//! between two operations of a program thread — log the return of one, log the call of the
//! next — contains none, so if the call were logged there, it would always sit right after
//! the thread's previous return, even in runs where loom lets other threads run whole
//! operations before this one does anything. The history would then show the operations
//! overlapping, and overlap excuses a lot: a bug such as a drain that returns while a
//! connection is still live between two of its operations would go unseen.
//!
//! The core takes its primitives from a `Backend` type parameter, so the test can hand it
//! this one: every primitive forwards to loom's and then calls [`touched`], which logs the
//! pending call (at most once per operation). No new scheduling points are added, so
//! exploring costs exactly what it costs with plain loom. The methods are `#[track_caller]`, so
//! the steps loom's primitives report to the trace recorder carry the core's line, not this
//! file's.
//!
//! # Ordering
//!
//! [`touched`] runs `fence(SeqCst)` right after the first touch, so whatever returned before
//! the call is logged happens-before the rest of the operation (see "Recording real time" in
//! `lin_run.rs`). The first touch itself ran before that fence. A lock, a read-modify-write,
//! a store or a notify cannot have read a stale value, so the call goes where the touch
//! happened. A plain load can: if other threads logged events while loom had switched away
//! just before it, the call is logged before those events instead — still true, only less
//! tight.

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use many_clients::sync::{AtomicBool, AtomicU64, Backend, Condvar, Guard, Lock, Loom, Ordering};

type LoomMutex<T> = <Loom as Backend>::Mutex<T>;
type LoomCondvar = <Loom as Backend>::Condvar;

loom::thread_local! {
    /// The pending call of this loom thread's current operation: logs it when given whether
    /// the first touch could not have read a stale value.
    static PENDING: RefCell<Option<Box<dyn FnOnce(bool)>>> = RefCell::new(None);
}

/// Arms the current loom thread: `log_call` runs at the operation's first touch.
pub fn expect_call(log_call: impl FnOnce(bool) + 'static) {
    PENDING.with(|p| *p.borrow_mut() = Some(Box::new(log_call)));
}

/// The current operation touched shared state; logs its call if this was the first touch.
/// `fresh`: the touch could not have read a stale value.
pub fn touched(fresh: bool) {
    if let Some(log_call) = PENDING.with(|p| p.borrow_mut().take()) {
        loom::sync::atomic::fence(Ordering::SeqCst);
        log_call(fresh);
    }
}

/// loom's primitives, noting each operation's first touch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Traced;

impl Backend for Traced {
    type Mutex<T: Send> = TracedMutex<T>;
    type Condvar = TracedCondvar;
    type AtomicU64 = TracedU64;
    type AtomicBool = TracedBool;
    type JoinHandle<T: Send + 'static> = <Loom as Backend>::JoinHandle<T>;

    fn spawn<F, T>(name: String, stack_size: Option<usize>, f: F) -> io::Result<Self::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Loom::spawn(name, stack_size, f)
    }

    fn yield_now() {
        Loom::yield_now()
    }

    fn catch_unwind<R>(work: impl FnOnce() -> R) -> std::thread::Result<R> {
        Loom::catch_unwind(work)
    }
}

pub struct TracedMutex<T: Send>(LoomMutex<T>);

impl<T: Send> Lock<T> for TracedMutex<T> {
    type Guard<'a>
        = Guard<'a, Loom, T>
    where
        T: 'a;

    #[track_caller]
    fn new(value: T) -> Self {
        TracedMutex(LoomMutex::new(value))
    }

    #[track_caller]
    fn lock(&self) -> Self::Guard<'_> {
        let guard = self.0.lock();
        touched(true);
        guard
    }
}

pub struct TracedCondvar(LoomCondvar);

impl Condvar<Traced> for TracedCondvar {
    #[track_caller]
    fn new() -> Self {
        TracedCondvar(<LoomCondvar as Condvar<Loom>>::new())
    }
    #[track_caller]
    fn wait<'a, T: Send + 'a>(&self, guard: Guard<'a, Traced, T>) -> Guard<'a, Traced, T> {
        touched(true); // (never the first touch: the lock came first)
        self.0.wait(guard)
    }
    #[track_caller]
    fn wait_timeout<'a, T: Send + 'a>(
        &self,
        guard: Guard<'a, Traced, T>,
        timeout: Duration,
    ) -> (Guard<'a, Traced, T>, bool) {
        touched(true);
        self.0.wait_timeout(guard, timeout)
    }
    #[track_caller]
    fn notify_one(&self) {
        self.0.notify_one();
        touched(true);
    }
    #[track_caller]
    fn notify_all(&self) {
        self.0.notify_all();
        touched(true);
    }
}

/// Runs `op` on the inner atomic, then notes the touch.
macro_rules! touch {
    ($fresh:expr, $op:expr) => {{
        let result = $op;
        touched($fresh);
        result
    }};
}

pub struct TracedU64(<Loom as Backend>::AtomicU64);

impl AtomicU64 for TracedU64 {
    #[track_caller]
    fn new(v: u64) -> Self {
        TracedU64(AtomicU64::new(v))
    }
    #[track_caller]
    fn load(&self, order: Ordering) -> u64 {
        touch!(false, AtomicU64::load(&self.0, order))
    }
    #[track_caller]
    fn store(&self, v: u64, order: Ordering) {
        touch!(true, AtomicU64::store(&self.0, v, order))
    }
    #[track_caller]
    fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
        touch!(true, AtomicU64::fetch_add(&self.0, v, order))
    }
    #[track_caller]
    fn fetch_sub(&self, v: u64, order: Ordering) -> u64 {
        touch!(true, AtomicU64::fetch_sub(&self.0, v, order))
    }
    #[track_caller]
    fn fetch_max(&self, v: u64, order: Ordering) -> u64 {
        touch!(true, AtomicU64::fetch_max(&self.0, v, order))
    }
}

pub struct TracedBool(<Loom as Backend>::AtomicBool);

impl AtomicBool for TracedBool {
    #[track_caller]
    fn new(v: bool) -> Self {
        TracedBool(AtomicBool::new(v))
    }
    #[track_caller]
    fn load(&self, order: Ordering) -> bool {
        touch!(false, AtomicBool::load(&self.0, order))
    }
    #[track_caller]
    fn swap(&self, v: bool, order: Ordering) -> bool {
        touch!(true, AtomicBool::swap(&self.0, v, order))
    }
}
