//! The real types behind one interface, so the loom runner can drive any of them with
//! operations as data, on the [`Traced`] backend (loom's primitives, instrumented).
//!
//! Each wrapper shares its object through a `std::sync::Arc` (loom's `Arc` aborts the test
//! binary when a model deadlocks, loom#291). A thread keeps the guards its operations return
//! in a queue; a release drops the oldest.

use std::collections::VecDeque;
use std::sync::Arc;

use many_clients::counter::{ClientGuard, Counter};
use many_clients::limit::buggy::CheckThenActLimit;
use many_clients::limit::{Limit, Limiter, Permit};
use many_clients::shutdown::{Drain, Live};

use crate::lin_specs::*;
use crate::lin_traced::Traced;
use crate::linearizable::{History, Outcome, Program, Ret, Spec};

pub type OpOf<O> = <<O as Object>::Spec as Spec>::Op;
pub type ParamsOf<O> = <<O as Object>::Spec as Spec>::Params;
pub type ProgramOf<O> = Program<ParamsOf<O>, OpOf<O>>;

/// A real implementation, driven by operations as data.
pub trait Object: Clone + Send + 'static {
    type Spec: Spec;
    /// The guard a thread keeps (`ClientGuard`, `Permit`, `Live`).
    type Held: Send + 'static;
    fn new(params: &ParamsOf<Self>) -> Self;
    /// Runs `op`; `Skipped` if it is a release and the thread holds nothing.
    fn call(&self, op: &OpOf<Self>, held: &mut VecDeque<Self::Held>) -> Outcome;
    /// After every thread is joined (all guards still held): the exact counts.
    fn at_rest(&self, history: &History<OpOf<Self>>) -> Result<(), String>;
}

/// Drops the oldest guard: `Done`, or `Skipped` if there is none.
fn release<T>(held: &mut VecDeque<T>) -> Outcome {
    match held.pop_front() {
        Some(guard) => {
            drop(guard);
            Outcome::Returned(Ret::Done)
        }
        None => Outcome::Skipped,
    }
}

/// Keeps `guard` if there is one and reports whether there was.
fn keep<T>(held: &mut VecDeque<T>, guard: Option<T>) -> Outcome {
    let got = guard.map(|g| held.push_back(g)).is_some();
    Outcome::Returned(Ret::Bool(got))
}

/// The wrappers share their object; derived `Clone` would demand `C: Clone`.
macro_rules! shared_clone {
    ($($wrapper:ident),*) => {$(
        impl<T> Clone for $wrapper<T> {
            fn clone(&self) -> Self {
                $wrapper(self.0.clone())
            }
        }
    )*};
}
shared_clone!(Counting, Limiting, Draining);

/// `Ok` if `seen == expected`, else the quiescent check's complaint.
fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    seen: T,
    expected: T,
) -> Result<(), String> {
    match seen == expected {
        true => Ok(()),
        false => Err(format!(
            "at rest: {what} is {seen:?}, expected {expected:?}"
        )),
    }
}

/// A [`Counter`]: `connect` keeps a `ClientGuard`, `disconnect` drops one.
pub struct Counting<C>(Arc<C>);

impl<C: Counter + Default> Object for Counting<C> {
    type Spec = CounterSpec;
    type Held = ClientGuard<C>;
    fn new(_: &NoParams) -> Self {
        Counting(Arc::new(C::default()))
    }
    fn call(&self, op: &CounterOp, held: &mut VecDeque<ClientGuard<C>>) -> Outcome {
        match op {
            CounterOp::Connect => {
                let guard = ClientGuard::new(self.0.clone());
                let id = guard.id();
                held.push_back(guard);
                Outcome::Returned(Ret::Id(id))
            }
            CounterOp::Disconnect => release(held),
            CounterOp::Stats => Outcome::Returned(Ret::Stats(self.0.stats())),
        }
    }
    fn at_rest(&self, h: &History<CounterOp>) -> Result<(), String> {
        let s = self.0.stats();
        let connects = h.count(|op| *op == CounterOp::Connect, |_| true) as u64;
        let disconnects = h.count(|op| *op == CounterOp::Disconnect, |_| true) as u64;
        expect_eq("issued", s.issued, connects)?;
        expect_eq("served", s.served, disconnects)?;
        expect_eq("active", s.active, connects - disconnects)?;
        expect_eq("consistent", s.is_consistent(), true)
    }
}

/// The limits' constructors differ only in name.
pub trait WithMax {
    fn with_max(max: usize) -> Self;
}
impl WithMax for Limit<Traced> {
    fn with_max(max: usize) -> Self {
        Limit::new(max)
    }
}
impl WithMax for CheckThenActLimit<Traced> {
    fn with_max(max: usize) -> Self {
        CheckThenActLimit::new(max)
    }
}

/// A [`Limiter`]: `try_acquire` / `acquire` keep a `Permit`, `release` drops one.
pub struct Limiting<L>(Arc<L>);

impl<L: Limiter + WithMax> Object for Limiting<L> {
    type Spec = LimitSpec;
    type Held = Permit<L>;
    fn new(max: &Max) -> Self {
        Limiting(Arc::new(L::with_max(max.0)))
    }
    fn call(&self, op: &LimitOp, held: &mut VecDeque<Permit<L>>) -> Outcome {
        match op {
            LimitOp::TryAcquire => keep(held, self.0.try_acquire()),
            LimitOp::Acquire => keep(held, self.0.acquire()),
            LimitOp::Release => release(held),
        }
    }
    fn at_rest(&self, h: &History<LimitOp>) -> Result<(), String> {
        let taken = h.count(|op| *op != LimitOp::Release, |r| *r == Ret::Bool(true));
        let released = h.count(|op| *op == LimitOp::Release, |_| true);
        expect_eq("in_use", self.0.in_use(), taken - released)
    }
}

/// A [`Drain`]: `enter` keeps a `Live` guard, `leave` drops one.
pub struct Draining<D>(Arc<D>);

impl<D: Drain + Default> Object for Draining<D> {
    type Spec = DrainSpec;
    type Held = Live<D>;
    fn new(_: &NoParams) -> Self {
        Draining(Arc::new(D::default()))
    }
    fn call(&self, op: &DrainOp, held: &mut VecDeque<Live<D>>) -> Outcome {
        match op {
            DrainOp::Enter => keep(held, self.0.try_enter()),
            DrainOp::Leave => release(held),
            DrainOp::Begin => Outcome::Returned(Ret::Count(self.0.begin())),
            DrainOp::WaitDrained => {
                self.0.wait_drained();
                Outcome::Returned(Ret::Done)
            }
        }
    }
    fn at_rest(&self, h: &History<DrainOp>) -> Result<(), String> {
        let entered = h.count(|op| *op == DrainOp::Enter, |r| *r == Ret::Bool(true));
        let left = h.count(|op| *op == DrainOp::Leave, |_| true);
        expect_eq("live", self.0.live(), entered - left)
    }
}
