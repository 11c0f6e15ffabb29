//! The operations on the core's shared state, as data; their sequential reference models; and
//! the proptest strategies that build programs out of them (`lin_programs.rs` makes those
//! well-formed). Pure: no loom.

use std::fmt::{self, Display};

use proptest::prelude::*;

use crate::lin_programs::{Alphabet, Shape, Sizes, programs};
use crate::linearizable::{Program, Ret, Spec};

/// No parameters (prints as nothing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoParams;

impl Display for NoParams {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// Implements `Display` for an operation enum as its snake_case name.
macro_rules! op_names {
    ($t:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$variant => $name),* })
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The counter

// ANCHOR: counter_op
/// Operations on a [`Counter`](many_clients::counter::Counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterOp {
    /// `ClientGuard::new`: the new client's id; the thread keeps the guard.
    Connect,
    /// Drops the thread's oldest `ClientGuard`.
    Disconnect,
    /// `stats()`.
    Stats,
}
op_names!(CounterOp { Connect => "connect", Disconnect => "disconnect", Stats => "stats" });
// ANCHOR_END: counter_op

impl Alphabet for CounterOp {
    fn shape(&self) -> Shape {
        match self {
            CounterOp::Connect => Shape::Takes,
            CounterOp::Disconnect => Shape::Gives,
            CounterOp::Stats => Shape::Other,
        }
    }
    fn blocks(&self) -> bool {
        false
    }
    fn release() -> Self {
        CounterOp::Disconnect
    }
    fn simplest() -> Self {
        CounterOp::Connect
    }
}

/// Random counter programs; `connect` first, so shrinking prefers it.
pub fn counter_programs(sizes: Sizes) -> BoxedStrategy<Program<NoParams, CounterOp>> {
    use CounterOp::*;
    programs(
        Just(NoParams),
        prop_oneof![Just(Connect), Just(Disconnect), Just(Stats)],
        sizes,
    )
    .boxed()
}

/// How a `stats` result is judged.
///
/// `LockedCounter` copies all four numbers under its lock, so a snapshot is one atomic
/// moment and must equal the model's state exactly: [`Reads::Snapshot`].
///
/// `AtomicCounter` reads four atomics one after another, and `connect` bumps them one after
/// another, so a snapshot taken during a `connect` can show the new id but not yet the new
/// client: a state the sequential counter never passes through. Its documented promise is
/// weaker — every snapshot [`is_consistent`](many_clients::counter::Stats::is_consistent),
/// exact counts once the threads are joined — so it is judged by that: [`Reads::Consistent`]
/// accepts any consistent snapshot (a read then constrains nothing), and `Object::at_rest`
/// checks the exact counts at quiescence. The test `atomic_counter_snapshots_are_not_linearizable`
/// shows the counterexample strict reads find. Ids and the counts behind them are
/// linearizable in both modes: `connect` takes its id in one locked step or one `fetch_add`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// A snapshot must equal the model's state at some point inside the read.
    Snapshot,
    /// Any snapshot that `is_consistent` is accepted.
    Consistent,
}

// ANCHOR: counter_spec
/// The sequential counter: ids 1, 2, 3, …; counts as in `LockedCounter`.
#[derive(Clone, Copy, Debug)]
pub struct CounterSpec {
    pub reads: Reads,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CounterState {
    active: u64,
    peak: u64,
    served: u64,
    issued: u64,
}

impl Spec for CounterSpec {
    type Params = NoParams;
    type Op = CounterOp;
    type State = CounterState;

    fn init(&self, _: &NoParams) -> CounterState {
        CounterState::default()
    }

    fn step(&self, s: &CounterState, op: &CounterOp) -> Option<(CounterState, Ret)> {
        let mut n = *s;
        let ret = match op {
            CounterOp::Connect => {
                n.issued += 1;
                n.active += 1;
                n.peak = n.peak.max(n.active);
                Ret::Id(n.issued)
            }
            CounterOp::Disconnect => {
                n.active = n.active.checked_sub(1)?; // a disconnect needs a connected client
                n.served += 1;
                Ret::Done
            }
            CounterOp::Stats => Ret::Stats(many_clients::counter::Stats {
                active: n.active,
                peak: n.peak,
                served: n.served,
                issued: n.issued,
            }),
        };
        Some((n, ret))
    }

    fn accepts(&self, _: &CounterOp, expected: &Ret, observed: &Ret) -> bool {
        match (self.reads, observed) {
            (Reads::Consistent, Ret::Stats(seen)) => seen.is_consistent(),
            _ => expected == observed,
        }
    }
}
// ANCHOR_END: counter_spec

// ---------------------------------------------------------------------------------------------
// The limit

/// Operations on a [`Limiter`](many_clients::limit::Limiter). No `close`: the buggy limit does
/// not implement it, and the bug to catch is the overshoot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitOp {
    /// `try_acquire()`: got a permit? The thread keeps it.
    TryAcquire,
    /// Drops the thread's oldest permit.
    Release,
    /// `acquire()`: waits for a slot (never closed here, so always `true`).
    Acquire,
}
op_names!(LimitOp { TryAcquire => "try_acquire", Release => "release", Acquire => "acquire" });

impl Alphabet for LimitOp {
    fn shape(&self) -> Shape {
        match self {
            LimitOp::TryAcquire | LimitOp::Acquire => Shape::Takes,
            LimitOp::Release => Shape::Gives,
        }
    }
    fn blocks(&self) -> bool {
        *self == LimitOp::Acquire
    }
    fn release() -> Self {
        LimitOp::Release
    }
    fn simplest() -> Self {
        LimitOp::TryAcquire
    }
}

/// The limit's size, printed as `max=1; `.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Max(pub usize);

impl Display for Max {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "max={}; ", self.0)
    }
}

/// Random limit programs, `max` 1 or 2.
pub fn limit_programs(sizes: Sizes) -> BoxedStrategy<Program<Max, LimitOp>> {
    use LimitOp::*;
    let op = prop_oneof![Just(TryAcquire), Just(Release), Just(Acquire)];
    programs((1usize..=2).prop_map(Max), op, sizes).boxed()
}

/// The sequential limit: a count of slots in use, at most `max`.
#[derive(Clone, Copy, Debug)]
pub struct LimitSpec;

impl Spec for LimitSpec {
    type Params = Max;
    type Op = LimitOp;
    /// (max, in use)
    type State = (usize, usize);

    fn init(&self, max: &Max) -> (usize, usize) {
        (max.0, 0)
    }

    fn step(&self, &(max, in_use): &(usize, usize), op: &LimitOp) -> Option<((usize, usize), Ret)> {
        let free = in_use < max;
        match op {
            LimitOp::TryAcquire if free => Some(((max, in_use + 1), Ret::Bool(true))),
            LimitOp::TryAcquire => Some(((max, in_use), Ret::Bool(false))),
            LimitOp::Acquire if free => Some(((max, in_use + 1), Ret::Bool(true))),
            LimitOp::Acquire => None, // blocks until a slot is free
            LimitOp::Release => Some(((max, in_use.checked_sub(1)?), Ret::Done)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shutdown and drain

/// Operations on a [`Drain`](many_clients::shutdown::Drain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainOp {
    /// `try_enter()`: counted live? The thread keeps the guard.
    Enter,
    /// Drops the thread's oldest live guard.
    Leave,
    /// `begin()`: starts shutdown, returns the live count.
    Begin,
    /// `wait_drained()`: returns once nothing is live.
    WaitDrained,
}
op_names!(DrainOp { Enter => "enter", Leave => "leave", Begin => "begin", WaitDrained => "wait_drained" });

impl Alphabet for DrainOp {
    fn shape(&self) -> Shape {
        match self {
            DrainOp::Enter => Shape::Takes,
            DrainOp::Leave => Shape::Gives,
            DrainOp::Begin | DrainOp::WaitDrained => Shape::Other,
        }
    }
    fn blocks(&self) -> bool {
        *self == DrainOp::WaitDrained
    }
    fn release() -> Self {
        DrainOp::Leave
    }
    fn simplest() -> Self {
        DrainOp::Enter
    }
}

/// Random shutdown-and-drain programs.
pub fn drain_programs(sizes: Sizes) -> BoxedStrategy<Program<NoParams, DrainOp>> {
    use DrainOp::*;
    let op = prop_oneof![Just(Enter), Just(Leave), Just(Begin), Just(WaitDrained)];
    programs(Just(NoParams), op, sizes).boxed()
}

/// The sequential drain: a shutdown flag and a live count.
#[derive(Clone, Copy, Debug)]
pub struct DrainSpec;

impl Spec for DrainSpec {
    type Params = NoParams;
    type Op = DrainOp;
    /// (shutting down, live)
    type State = (bool, usize);

    fn init(&self, _: &NoParams) -> (bool, usize) {
        (false, 0)
    }

    fn step(&self, &(down, live): &(bool, usize), op: &DrainOp) -> Option<((bool, usize), Ret)> {
        match op {
            DrainOp::Enter if down => Some(((down, live), Ret::Bool(false))),
            DrainOp::Enter => Some(((down, live + 1), Ret::Bool(true))),
            DrainOp::Leave => Some(((down, live.checked_sub(1)?), Ret::Done)),
            DrainOp::Begin => Some(((true, live), Ret::Count(live))),
            DrainOp::WaitDrained if live == 0 => Some(((down, live), Ret::Done)),
            DrainOp::WaitDrained => None, // blocks while anyone is live
        }
    }
}
