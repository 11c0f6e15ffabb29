//! The [`Loom`] backend, compiled only under `--cfg loom`: loom's mocks of
//! the same primitives, so `loom::model` can run every interleaving of the
//! core's real code.
//!
//! Loom's limits shape the core: no `wait_while` (write the loop), no
//! spurious wake-ups simulated, `wait_timeout` never times out, `SeqCst` is
//! modelled as `AcqRel`, at most 5 threads per model including the main one.
//!
//! Every primitive here also reports what it did to the trace recorder
//! ([`super::trace`]), so a failing model can print its interleaving. The
//! methods are `#[track_caller]`: the location a step is shown with is the
//! core's line that called it (through the monitor's own `#[track_caller]`
//! methods, the line that locked the monitor), not this file's. Reporting
//! adds no scheduling point — loom switches threads only inside its own
//! operations — so it changes no interleaving and no count.

use super::trace::{self, Kind, ObjId, Op, Site, Value};
use super::{AtomicBool, AtomicU64, Backend, Condvar, Guard, JoinHandle, Lock, Ordering};
use loom::sync;
use std::io;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// loom's model-checked primitives. Only usable inside `loom::model`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loom;

impl Loom {
    /// The running loom thread's index: 0 for the model's main thread, then
    /// 1, 2, … in spawn order — what loom's deadlock reports call `Id(n)`.
    /// A model checker hands this to [`trace::begin`].
    pub fn thread_index() -> usize {
        index_of(loom::thread::current().id())
    }
}

/// loom's `ThreadId` shows its number only through `Debug`: `ThreadId(2)`.
fn index_of(id: loom::thread::ThreadId) -> usize {
    let text = format!("{id:?}");
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(usize::MAX)
}

impl Backend for Loom {
    type Mutex<T: Send> = LoomMutex<T>;
    type Condvar = LoomCondvar;
    type AtomicU64 = LoomU64;
    type AtomicBool = LoomBool;
    type JoinHandle<T: Send + 'static> = LoomJoinHandle<T>;

    #[track_caller]
    fn spawn<F, T>(name: String, stack_size: Option<usize>, f: F) -> io::Result<Self::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let at = Site::caller();
        let builder = loom::thread::Builder::new().name(name);
        // The thread reports its end, so a join on it is known not to wait.
        let f = move || {
            let result = f();
            trace::record(Op::Finish, None);
            result
        };
        let inner = match stack_size {
            Some(bytes) => builder.stack_size(bytes).spawn(f),
            None => builder.spawn(f),
        }?;
        let thread = index_of(inner.thread().id());
        trace::record(Op::Spawn { thread }, Some(at));
        Ok(LoomJoinHandle { inner, thread })
    }

    #[track_caller]
    fn yield_now() {
        loom::thread::yield_now();
        trace::record(Op::Yield, Some(Site::caller()));
    }

    /// Lets the panic through: inside a model it is the model failing.
    fn catch_unwind<R>(work: impl FnOnce() -> R) -> std::thread::Result<R> {
        Ok(work())
    }
}

/// `loom::sync::Mutex` with the parking_lot-shaped API.
#[derive(Debug)]
pub struct LoomMutex<T> {
    inner: sync::Mutex<T>,
    id: ObjId,
}

/// The guard of a [`LoomMutex`]; reports the unlock when dropped.
#[derive(Debug)]
pub struct LoomGuard<'a, T> {
    /// `Some` until a condition variable's `wait` takes it.
    inner: Option<sync::MutexGuard<'a, T>>,
    id: ObjId,
}

impl<T: Send> Lock<T> for LoomMutex<T> {
    type Guard<'a>
        = LoomGuard<'a, T>
    where
        T: 'a;

    #[track_caller]
    fn new(value: T) -> Self {
        let id = trace::created(Kind::Mutex, None, Site::caller());
        LoomMutex {
            inner: sync::Mutex::new(value),
            id,
        }
    }

    #[track_caller]
    fn lock(&self) -> Self::Guard<'_> {
        let at = Some(Site::caller());
        trace::before(Op::Lock { obj: self.id }, at);
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        trace::record(Op::Lock { obj: self.id }, at);
        LoomGuard {
            inner: Some(inner),
            id: self.id,
        }
    }
}

impl<T> Deref for LoomGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("a guard holds its lock")
    }
}

impl<T> DerefMut for LoomGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("a guard holds its lock")
    }
}

impl<T> Drop for LoomGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            // No caller location: a drop has none to give.
            trace::record(Op::Unlock { obj: self.id }, None);
            drop(inner);
        }
    }
}

/// `loom::sync::Condvar`.
#[derive(Debug)]
pub struct LoomCondvar {
    inner: sync::Condvar,
    id: ObjId,
}

impl Condvar<Loom> for LoomCondvar {
    #[track_caller]
    fn new() -> Self {
        let id = trace::created(Kind::Condvar, None, Site::caller());
        LoomCondvar {
            inner: sync::Condvar::new(),
            id,
        }
    }

    #[track_caller]
    fn wait<'a, T: Send + 'a>(&self, mut guard: Guard<'a, Loom, T>) -> Guard<'a, Loom, T> {
        let (at, lock) = (Some(Site::caller()), guard.id);
        let inner = guard.inner.take().expect("a guard holds its lock");
        trace::record(Op::Wait { cv: self.id, lock }, at);
        let inner = self
            .inner
            .wait(inner)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        trace::record(Op::Woken { cv: self.id, lock }, at);
        guard.inner = Some(inner);
        guard
    }

    #[track_caller]
    fn wait_timeout<'a, T: Send + 'a>(
        &self,
        mut guard: Guard<'a, Loom, T>,
        timeout: Duration,
    ) -> (Guard<'a, Loom, T>, bool) {
        let (at, lock) = (Some(Site::caller()), guard.id);
        let inner = guard.inner.take().expect("a guard holds its lock");
        trace::record(Op::Wait { cv: self.id, lock }, at);
        let (inner, result) = self
            .inner
            .wait_timeout(inner, timeout)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        trace::record(Op::Woken { cv: self.id, lock }, at);
        guard.inner = Some(inner);
        (guard, result.timed_out())
    }

    #[track_caller]
    fn notify_one(&self) {
        self.inner.notify_one();
        let op = Op::Notify {
            cv: self.id,
            all: false,
        };
        trace::record(op, Some(Site::caller()));
    }

    #[track_caller]
    fn notify_all(&self) {
        self.inner.notify_all();
        let op = Op::Notify {
            cv: self.id,
            all: true,
        };
        trace::record(op, Some(Site::caller()));
    }
}

/// A loom thread's handle; reports the join.
#[derive(Debug)]
pub struct LoomJoinHandle<T> {
    inner: loom::thread::JoinHandle<T>,
    thread: usize,
}

impl<T: Send + 'static> JoinHandle<T> for LoomJoinHandle<T> {
    #[track_caller]
    fn join(self) -> std::thread::Result<T> {
        let (at, op) = (
            Some(Site::caller()),
            Op::Join {
                thread: self.thread,
            },
        );
        trace::before(op.clone(), at);
        let result = self.inner.join();
        trace::record(op, at);
        result
    }

    fn is_finished(&self) -> bool {
        false // loom has no such query; models are too small to need pruning
    }
}

/// Reports a read-modify-write: its name, argument, and the values before
/// and after.
macro_rules! rmw {
    ($self:ident, $name:literal, $arg:expr, $old:expr, $new:expr) => {{
        let (old, new) = ($old, $new);
        let op = Op::Rmw {
            obj: $self.id,
            name: $name,
            arg: $arg,
            old,
            new,
        };
        trace::record(op, Some(Site::caller()));
    }};
}

/// loom's `AtomicU64`, reporting every access with its value.
#[derive(Debug)]
pub struct LoomU64 {
    inner: sync::atomic::AtomicU64,
    id: ObjId,
}

impl AtomicU64 for LoomU64 {
    #[track_caller]
    fn new(v: u64) -> Self {
        let id = trace::created(Kind::Atomic, Some(Value::U64(v)), Site::caller());
        LoomU64 {
            inner: sync::atomic::AtomicU64::new(v),
            id,
        }
    }
    #[track_caller]
    fn load(&self, order: Ordering) -> u64 {
        let value = self.inner.load(order);
        let op = Op::Load {
            obj: self.id,
            value: Value::U64(value),
        };
        trace::record(op, Some(Site::caller()));
        value
    }
    #[track_caller]
    fn store(&self, v: u64, order: Ordering) {
        self.inner.store(v, order);
        let op = Op::Store {
            obj: self.id,
            value: Value::U64(v),
        };
        trace::record(op, Some(Site::caller()));
    }
    #[track_caller]
    fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
        let old = self.inner.fetch_add(v, order);
        rmw!(
            self,
            "fetch_add",
            Value::U64(v),
            Value::U64(old),
            Value::U64(old.wrapping_add(v))
        );
        old
    }
    #[track_caller]
    fn fetch_sub(&self, v: u64, order: Ordering) -> u64 {
        let old = self.inner.fetch_sub(v, order);
        rmw!(
            self,
            "fetch_sub",
            Value::U64(v),
            Value::U64(old),
            Value::U64(old.wrapping_sub(v))
        );
        old
    }
    #[track_caller]
    fn fetch_max(&self, v: u64, order: Ordering) -> u64 {
        let old = self.inner.fetch_max(v, order);
        rmw!(
            self,
            "fetch_max",
            Value::U64(v),
            Value::U64(old),
            Value::U64(old.max(v))
        );
        old
    }
}

/// loom's `AtomicBool`, reporting every access with its value.
#[derive(Debug)]
pub struct LoomBool {
    inner: sync::atomic::AtomicBool,
    id: ObjId,
}

impl AtomicBool for LoomBool {
    #[track_caller]
    fn new(v: bool) -> Self {
        let id = trace::created(Kind::Atomic, Some(Value::Bool(v)), Site::caller());
        LoomBool {
            inner: sync::atomic::AtomicBool::new(v),
            id,
        }
    }
    #[track_caller]
    fn load(&self, order: Ordering) -> bool {
        let value = self.inner.load(order);
        let op = Op::Load {
            obj: self.id,
            value: Value::Bool(value),
        };
        trace::record(op, Some(Site::caller()));
        value
    }
    #[track_caller]
    fn swap(&self, v: bool, order: Ordering) -> bool {
        let old = self.inner.swap(v, order);
        rmw!(
            self,
            "swap",
            Value::Bool(v),
            Value::Bool(old),
            Value::Bool(v)
        );
        old
    }
}
