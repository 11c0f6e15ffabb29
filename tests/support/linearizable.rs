//! Linearizability checking for tiny concurrent histories: the pure part, no loom.
//!
//! A *history* is what the threads of one run saw: for every operation, when it was
//! called, when it returned and what it returned. It is **linearizable** if the
//! operations can be put in one sequential order that
//!
//! 1. respects real time — an operation that returned before another was called comes
//!    first (so each thread's own operations stay in program order), and
//! 2. makes a sequential reference model (a [`Spec`]) return exactly the observed results.
//!
//! That is the correctness condition of Herlihy and Wing (1990), the one Jepsen's Knossos
//! and Porcupine check against databases.
//!
//! # The search ([`linearize`])
//!
//! Build the order from the front. An operation may go next if it was called before the
//! earliest return among the operations not yet placed (otherwise something that finished
//! before it began would come after it). Try each such operation on the model; keep it if the
//! model's result equals the observed one, and recurse. If every choice dead-ends, back up.
//! Memoising failed (placed-set, model state) pairs stops the search from exploring the same
//! dead end twice — the trick Lowe and Porcupine use; histories here have ≤ ~12 operations.
//!
//! Blocking operations fit in naturally: the model says in which states an operation *can*
//! complete (`acquire` needs a free slot, `wait_drained` needs no live connection) and the
//! search only places it in such a state, somewhere inside its call–return window.

use std::collections::HashSet;
use std::fmt::{self, Debug, Display};
use std::hash::Hash;

use many_clients::counter::Stats;

/// What an operation returned: one type for every object, so histories print alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Returned nothing (`disconnect`, `release`, `wait_drained`, …).
    Done,
    /// A client id from `connect`.
    Id(u64),
    /// Yes/no: did `try_acquire` / `acquire` / `enter` succeed?
    Bool(bool),
    /// A number: the live count `begin` reports.
    Count(usize),
    /// A counter snapshot.
    Stats(Stats),
}

impl Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ret::Done => Ok(()),
            Ret::Id(n) => write!(f, "{n}"),
            Ret::Bool(b) => write!(f, "{b}"),
            Ret::Count(n) => write!(f, "{n}"),
            Ret::Stats(s) => write!(
                f,
                "{{active {}, peak {}, served {}, issued {}}}",
                s.active, s.peak, s.served, s.issued
            ),
        }
    }
}

// ANCHOR: spec
/// A sequential reference model: what the object does when operations come one at a time.
pub trait Spec: Clone + Send + Sync + 'static {
    /// Fixed at the start of a program (the limit's `max`); printed before the threads.
    type Params: Clone + PartialEq + Display + Send + Sync + 'static;
    /// The operations, as data.
    type Op: Clone + PartialEq + Display + Send + Sync + 'static;
    /// The model's state. `Hash + Eq` for the search's memo table.
    type State: Clone + Eq + Hash;

    /// The state before any operation.
    fn init(&self, params: &Self::Params) -> Self::State;
    /// Applies `op`: the next state and the result, or `None` if `op` cannot complete in
    /// `state` (it would block, or is not allowed there).
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<(Self::State, Ret)>;
    /// Whether the `observed` result is acceptable where the model returns `expected`.
    /// Equality, unless an implementation promises less for some operation (see the counter's
    /// `Reads::Consistent`).
    fn accepts(&self, _op: &Self::Op, expected: &Ret, observed: &Ret) -> bool {
        expected == observed
    }
}
// ANCHOR_END: spec

/// A concurrent program: parameters and, per thread, the operations it runs in order.
#[derive(Clone, PartialEq)]
pub struct Program<P, O> {
    pub params: P,
    pub threads: Vec<Vec<O>>,
}

impl<P: Display, O: Display> Display for Program<P, O> {
    /// `max=1; T1: try_acquire, release | T2: acquire`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.params)?;
        for (t, ops) in self.threads.iter().enumerate() {
            let ops: Vec<String> = ops.iter().map(|op| op.to_string()).collect();
            let sep = if t == 0 { "" } else { " | " };
            write!(f, "{sep}T{}: {}", t + 1, ops.join(", "))?;
        }
        Ok(())
    }
}

/// proptest prints failing inputs with `Debug`: make that the readable form too.
impl<P: Display, O: Display> Debug for Program<P, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(self, f)
    }
}

/// One line of the log a run writes: a thread calls an operation, or it returns.
#[derive(Clone, Debug)]
pub enum Event<O> {
    Call { thread: usize, op: O },
    Return { thread: usize, outcome: Outcome },
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Returned(Ret),
    /// A release-style operation found nothing to release (an earlier `try_acquire` or
    /// `enter` was refused). It did not touch the object, so it is left out of the check.
    Skipped,
    /// Still running when the run stopped: loom found the program blocked forever.
    Pending,
}

/// A run's events in order, as the run writes them. A call can be logged a little late yet
/// belong earlier (see `run_thread` in `lin_run.rs`), so each event carries its place: an
/// appended event takes the next number; a call placed back takes a number already handed
/// out and sorts just before the event that got it. (Two calls at one place may go in either
/// order: only returns order calls.)
pub struct Events<O> {
    next: usize,
    events: Vec<(usize, bool, Event<O>)>,
}

impl<O: Clone> Events<O> {
    /// The place the next appended event will get.
    pub fn mark(&self) -> usize {
        self.next
    }
    pub fn push(&mut self, event: Event<O>) {
        self.events.push((self.next, true, event));
        self.next += 1;
    }
    pub fn push_at(&mut self, place: usize, event: Event<O>) {
        self.events.push((place, false, event));
    }
    pub fn history(&self) -> History<O> {
        let mut events = self.events.clone();
        events.sort_by_key(|&(place, appended, _)| (place, appended)); // stable
        History::from_events(events.into_iter().map(|(_, _, event)| event).collect())
    }
}

impl<O> Default for Events<O> {
    fn default() -> Self {
        Events {
            next: 0,
            events: Vec::new(),
        }
    }
}

/// One operation of a history, with the log positions of its call and return.
#[derive(Clone, Debug)]
pub struct Operation<O> {
    pub thread: usize,
    pub op: O,
    pub outcome: Outcome,
    pub called: usize,
    /// `usize::MAX` while pending: it never returned, so nothing is ordered after it.
    pub returned: usize,
}

/// A run's operations, built from its log, in the order they were called.
#[derive(Clone, Debug)]
pub struct History<O> {
    pub ops: Vec<Operation<O>>,
    pub events: Vec<Event<O>>,
}

impl<O: Clone> History<O> {
    pub fn from_events(events: Vec<Event<O>>) -> Self {
        let mut ops: Vec<Operation<O>> = Vec::new();
        for (at, event) in events.iter().enumerate() {
            match event {
                Event::Call { thread, op } => ops.push(Operation {
                    thread: *thread,
                    op: op.clone(),
                    outcome: Outcome::Pending,
                    called: at,
                    returned: usize::MAX,
                }),
                // A thread runs one operation at a time: a return belongs to its last call.
                Event::Return { thread, outcome } => {
                    let open = ops.iter_mut().rev().find(|o| o.thread == *thread);
                    let open = open.expect("a return without a call");
                    open.outcome = *outcome;
                    open.returned = at;
                }
            }
        }
        History { ops, events }
    }

    /// How many operations returned `ret` for an op matching `is_op` (for quiescent checks).
    pub fn count(&self, is_op: impl Fn(&O) -> bool, ret: impl Fn(&Ret) -> bool) -> usize {
        let returned = |o: &&Operation<O>| matches!(o.outcome, Outcome::Returned(r) if ret(&r));
        self.ops
            .iter()
            .filter(|o| is_op(&o.op))
            .filter(returned)
            .count()
    }
}

/// Finds a linearization: indices into `history.ops` in a valid sequential order, or `None`
/// if there is none. Skipped operations are left out; pending ones must not be present.
pub fn linearize<S: Spec>(
    spec: &S,
    params: &S::Params,
    history: &History<S::Op>,
) -> Option<Vec<usize>> {
    let todo: Vec<usize> = (0..history.ops.len())
        .filter(|&i| history.ops[i].outcome != Outcome::Skipped)
        .collect();
    assert!(todo.len() <= 64, "the placed-set is a u64 bitmask");
    let mut search = Search {
        spec,
        history,
        todo,
        failed: HashSet::new(),
        order: Vec::new(),
    };
    let all = if search.todo.len() == 64 {
        u64::MAX
    } else {
        (1u64 << search.todo.len()) - 1
    };
    search
        .dfs(0, spec.init(params), all)
        .then_some(search.order)
}

struct Search<'a, S: Spec> {
    spec: &'a S,
    history: &'a History<S::Op>,
    /// The operations to place (skipped ones are not); bit `k` of a set means `todo[k]`.
    todo: Vec<usize>,
    /// (placed set, model state) pairs known to lead nowhere.
    failed: HashSet<(u64, S::State)>,
    /// The order built so far.
    order: Vec<usize>,
}

// ANCHOR: search
impl<S: Spec> Search<'_, S> {
    fn dfs(&mut self, placed: u64, state: S::State, all: u64) -> bool {
        if placed == all {
            return true;
        }
        if self.failed.contains(&(placed, state.clone())) {
            return false;
        }
        // Copy the shared references out of `self`, so pushing to `self.order` below is fine.
        let (spec, history) = (self.spec, self.history);
        let ops = &history.ops;
        let left = || (0..self.todo.len()).filter(move |&k| placed & (1u64 << k) == 0);
        // Real time: whatever goes next must have been called before every unplaced
        // operation returned — else one of those finished before it started.
        let deadline = left()
            .map(|k| ops[self.todo[k]].returned)
            .min()
            .unwrap_or(usize::MAX);
        let candidates: Vec<usize> = left()
            .filter(|&k| ops[self.todo[k]].called < deadline)
            .collect();
        for k in candidates {
            let op = &ops[self.todo[k]];
            let Outcome::Returned(observed) = op.outcome else {
                unreachable!("pending operations are not checked")
            };
            let Some((next, expected)) = spec.step(&state, &op.op) else {
                continue; // cannot complete here (it would block): try another
            };
            if spec.accepts(&op.op, &expected, &observed) {
                self.order.push(self.todo[k]);
                if self.dfs(placed | (1u64 << k), next, all) {
                    return true;
                }
                self.order.pop();
            }
        }
        self.failed.insert((placed, state));
        false
    }
}
// ANCHOR_END: search

/// The history per thread, in program order, with results:
/// `T1: connect→1 | T2: connect→1`; a blocked operation shows `→blocked`.
pub fn show_history<O: Display>(params: &impl Display, history: &History<O>) -> String {
    let threads = history
        .ops
        .iter()
        .map(|o| o.thread)
        .max()
        .map_or(0, |t| t + 1);
    let mut out = params.to_string();
    for t in 0..threads {
        let ops: Vec<String> = history
            .ops
            .iter()
            .filter(|o| o.thread == t)
            .map(|o| match o.outcome {
                Outcome::Returned(Ret::Done) => o.op.to_string(),
                Outcome::Returned(r) => format!("{}→{r}", o.op),
                Outcome::Skipped => format!("{}→skipped", o.op),
                Outcome::Pending => format!("{}→blocked", o.op),
            })
            .collect();
        let sep = if t == 0 { "" } else { " | " };
        out += &format!("{sep}T{}: {}", t + 1, ops.join(", "));
    }
    out
}
