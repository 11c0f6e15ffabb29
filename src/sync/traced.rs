//! The instrumented primitives both model backends share: each wraps the
//! checker's own (loom's or Shuttle's, whose APIs mirror std's) and reports
//! what it did to the trace recorder ([`super::trace`]), so a failing model
//! can print its interleaving. The methods are `#[track_caller]`: the
//! location a step is shown with is the core's line that called it (through
//! the monitor's own `#[track_caller]` methods, the line that locked the
//! monitor), not this file's. Reporting adds no scheduling point — the
//! checkers switch threads only inside their own operations — so it changes
//! no interleaving and no count.
//!
//! Written once, as a macro each backend invokes with its checker crate:
//! the two backends differ only in which crate's types they wrap and how a
//! thread's id becomes an index.

use super::trace::{self, ObjId, Op, Site, Value};

/// Reports a read-modify-write: its name, argument, and the values before
/// and after.
#[track_caller]
pub(super) fn rmw(obj: ObjId, name: &'static str, arg: Value, old: Value, new: Value) {
    let op = Op::Rmw {
        obj,
        name,
        arg,
        old,
        new,
    };
    trace::record(op, Some(Site::caller()));
}

/// The wrappers and `impl Backend for $Backend`, over crate `$krate`'s
/// `sync` and `thread`; `$index_of` turns its `ThreadId` into the index the
/// trace shows (0 for the model's main thread, then 1, 2, … in spawn order).
macro_rules! traced_primitives {
    ($krate:ident, $Backend:ident, $index_of:path) => {
        impl Backend for $Backend {
            type Mutex<T: Send> = TracedMutex<T>;
            type Condvar = TracedCondvar;
            type AtomicU64 = TracedU64;
            type AtomicBool = TracedBool;
            type JoinHandle<T: Send + 'static> = TracedJoinHandle<T>;

            #[track_caller]
            fn spawn<F, T>(
                name: String,
                stack_size: Option<usize>,
                f: F,
            ) -> io::Result<Self::JoinHandle<T>>
            where
                F: FnOnce() -> T + Send + 'static,
                T: Send + 'static,
            {
                let at = Site::caller();
                let builder = ::$krate::thread::Builder::new().name(name);
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
                let thread = $index_of(inner.thread().id());
                trace::record(Op::Spawn { thread }, Some(at));
                Ok(TracedJoinHandle { inner, thread })
            }

            #[track_caller]
            fn yield_now() {
                ::$krate::thread::yield_now();
                trace::record(Op::Yield, Some(Site::caller()));
            }

            /// Lets the panic through: inside a model it is the model failing.
            fn catch_unwind<R>(work: impl FnOnce() -> R) -> std::thread::Result<R> {
                Ok(work())
            }
        }

        /// The checker's mutex with the parking_lot-shaped API.
        #[derive(Debug)]
        pub struct TracedMutex<T> {
            inner: ::$krate::sync::Mutex<T>,
            id: ObjId,
        }

        /// The guard of a [`TracedMutex`]; reports the unlock when dropped.
        #[derive(Debug)]
        pub struct TracedGuard<'a, T> {
            /// `Some` until a condition variable's `wait` takes it.
            inner: Option<::$krate::sync::MutexGuard<'a, T>>,
            id: ObjId,
        }

        impl<T: Send> Lock<T> for TracedMutex<T> {
            type Guard<'a>
                = TracedGuard<'a, T>
            where
                T: 'a;

            #[track_caller]
            fn new(value: T) -> Self {
                let id = trace::created(Kind::Mutex, None, Site::caller());
                TracedMutex {
                    inner: ::$krate::sync::Mutex::new(value),
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
                TracedGuard {
                    inner: Some(inner),
                    id: self.id,
                }
            }
        }

        impl<T> Deref for TracedGuard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                self.inner.as_ref().expect("a guard holds its lock")
            }
        }

        impl<T> DerefMut for TracedGuard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                self.inner.as_mut().expect("a guard holds its lock")
            }
        }

        impl<T> Drop for TracedGuard<'_, T> {
            fn drop(&mut self) {
                if let Some(inner) = self.inner.take() {
                    // No caller location: a drop has none to give.
                    trace::record(Op::Unlock { obj: self.id }, None);
                    drop(inner);
                }
            }
        }

        /// The checker's condition variable.
        #[derive(Debug)]
        pub struct TracedCondvar {
            inner: ::$krate::sync::Condvar,
            id: ObjId,
        }

        impl Condvar<$Backend> for TracedCondvar {
            #[track_caller]
            fn new() -> Self {
                let id = trace::created(Kind::Condvar, None, Site::caller());
                TracedCondvar {
                    inner: ::$krate::sync::Condvar::new(),
                    id,
                }
            }

            #[track_caller]
            fn wait<'a, T: Send + 'a>(
                &self,
                mut guard: Guard<'a, $Backend, T>,
            ) -> Guard<'a, $Backend, T> {
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
                mut guard: Guard<'a, $Backend, T>,
                timeout: Duration,
            ) -> (Guard<'a, $Backend, T>, bool) {
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

        /// A model thread's handle; reports the join.
        #[derive(Debug)]
        pub struct TracedJoinHandle<T> {
            inner: ::$krate::thread::JoinHandle<T>,
            thread: usize,
        }

        impl<T: Send + 'static> JoinHandle<T> for TracedJoinHandle<T> {
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
                false // neither checker has such a query; models are too small to need pruning
            }
        }

        /// The checker's `AtomicU64`, reporting every access with its value.
        #[derive(Debug)]
        pub struct TracedU64 {
            inner: ::$krate::sync::atomic::AtomicU64,
            id: ObjId,
        }

        impl AtomicU64 for TracedU64 {
            #[track_caller]
            fn new(v: u64) -> Self {
                let id = trace::created(Kind::Atomic, Some(Value::U64(v)), Site::caller());
                TracedU64 {
                    inner: ::$krate::sync::atomic::AtomicU64::new(v),
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
                rmw(
                    self.id,
                    "fetch_add",
                    Value::U64(v),
                    Value::U64(old),
                    Value::U64(old.wrapping_add(v)),
                );
                old
            }
            #[track_caller]
            fn fetch_sub(&self, v: u64, order: Ordering) -> u64 {
                let old = self.inner.fetch_sub(v, order);
                rmw(
                    self.id,
                    "fetch_sub",
                    Value::U64(v),
                    Value::U64(old),
                    Value::U64(old.wrapping_sub(v)),
                );
                old
            }
            #[track_caller]
            fn fetch_max(&self, v: u64, order: Ordering) -> u64 {
                let old = self.inner.fetch_max(v, order);
                rmw(
                    self.id,
                    "fetch_max",
                    Value::U64(v),
                    Value::U64(old),
                    Value::U64(old.max(v)),
                );
                old
            }
        }

        /// The checker's `AtomicBool`, reporting every access with its value.
        #[derive(Debug)]
        pub struct TracedBool {
            inner: ::$krate::sync::atomic::AtomicBool,
            id: ObjId,
        }

        impl AtomicBool for TracedBool {
            #[track_caller]
            fn new(v: bool) -> Self {
                let id = trace::created(Kind::Atomic, Some(Value::Bool(v)), Site::caller());
                TracedBool {
                    inner: ::$krate::sync::atomic::AtomicBool::new(v),
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
                rmw(
                    self.id,
                    "swap",
                    Value::Bool(v),
                    Value::Bool(old),
                    Value::Bool(v),
                );
                old
            }
        }
    };
}
pub(super) use traced_primitives;
