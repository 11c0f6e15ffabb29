//! The failing execution, as a short table: what a model checker's run did
//! to shared state, step by step, with values and source lines.
//!
//! # Why
//!
//! When loom catches a bug, the test sees one panic line — `duplicate or
//! missing id: [1, 1]` — and the interleaving that produced it, the whole
//! point of the lesson, stays invisible (`LOOM_LOG=trace` shows it as
//! thousands of lines of loom's internals). JetBrains Lincheck shows a
//! failing run as a table instead: one column per thread, one row per read
//! or write of shared state with its value and the line of code that did it,
//! thread switches marked. This module does the same for this crate.
//!
//! # How
//!
//! Every shared access in the core goes through the backend facade
//! (`src/sync/mod.rs`), so the *model* backends can report each operation
//! here — the value a load returned, the value a store wrote, which lock was
//! taken — together with the caller's source location: their methods are
//! `#[track_caller]`, so the location is the core's line (for example in
//! `src/counter/racy.rs`), not the backend's. [`Std`](super::Std) and
//! [`ParkingLot`](super::ParkingLot) never call this module, so they cost
//! nothing more.
//!
//! A model checker runs a model once per interleaving and stops at the
//! first that fails, so the recorder keeps one execution only: [`begin`]
//! clears it at the start of each execution, and after the failure [`take`]
//! hands back the last one. Models can add their own level with [`op`]
//! ("connect() → 1"); the panic hook ([`install_panic_hook`]) records the
//! broken assertion.
//!
//! The recorder lives in a thread-local of the OS thread: loom (and
//! Shuttle) run every thread of a model as a coroutine on the one OS thread
//! that called the checker, so a model sees one recorder, and tests running
//! in parallel do not mix their traces. Outside [`begin`] every call is a
//! no-op, so a model run without it records nothing.
//!
//! What it is not: a log of loom's decisions. It records what the program
//! did, in the order loom ran it; `LOOM_LOG=trace` stays for the internals.
//!
//! # Recording in another model backend
//!
//! Nothing here knows loom. A backend such as Shuttle (`src/sync/shuttle.rs`,
//! `cfg(shuttle)`) records the same way `src/sync/loom.rs` does:
//!
//! 1. Each primitive wraps the checker's and keeps an [`ObjId`] from
//!    [`created`]`(Kind::…, initial value for an atomic, Site::caller())`
//!    in its `new`.
//! 2. Every method is `#[track_caller]` and, after the checker's operation
//!    returned, calls [`record`]`(Op::…, Some(Site::caller()))` with the value
//!    loaded, stored, or found and left by a read-modify-write.
//! 3. `lock` and `join` call [`before`] with the same op first (the recorder
//!    decides whether it will wait); the mutex guard is the backend's own
//!    type and records `Op::Unlock` in its `Drop`; a condition variable
//!    records `Op::Wait` before the checker's `wait` and `Op::Woken` after.
//! 4. `spawn` wraps the closure so that it records `Op::Finish` when it
//!    returns, and records `Op::Spawn { thread }` with the new thread's index.
//! 5. The backend gives the running thread's index as a `fn() -> usize`
//!    (Shuttle: `usize::from(shuttle::current::me())`, 0 for the main
//!    thread), and its test harness calls [`begin`] with it at the start of
//!    every execution, [`install_panic_hook`] once, and [`take`] after the
//!    checker returned or panicked.

mod names;
mod record;
mod render;
mod svg;

pub use self::record::{
    before, begin, created, install_panic_hook, op, op_shown, op_with, record, take,
};
pub use self::render::{Labels, draw as draw_table};

use std::fmt;
use std::panic::Location;

/// An object the trace talks about: an atomic, a mutex or a condition
/// variable, numbered in the order the execution created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjId(pub usize);

impl ObjId {
    /// An object created while nothing was recording: shown as `?`.
    pub const UNKNOWN: ObjId = ObjId(usize::MAX);
}

/// What kind of primitive an object is (each kind is named on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An atomic integer or flag.
    Atomic,
    /// A mutex.
    Mutex,
    /// A condition variable.
    Condvar,
}

/// A value an atomic held: no allocation per recorded step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// An integer.
    U64(u64),
    /// A flag.
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// A place in the source: the caller's, from `#[track_caller]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// As the compiler wrote it: relative (`src/counter/racy.rs`) for this
    /// crate's files, absolute for a dependency's.
    pub file: &'static str,
    /// 1-based.
    pub line: u32,
    /// 1-based, where the call expression starts (used to name objects).
    pub column: u32,
}

impl Site {
    /// Where the caller of a `#[track_caller]` function is.
    #[track_caller]
    pub fn caller() -> Site {
        Site::from(Location::caller())
    }
}

impl From<&'static Location<'static>> for Site {
    fn from(at: &'static Location<'static>) -> Self {
        Site {
            file: at.file(),
            line: at.line(),
            column: at.column(),
        }
    }
}

/// One operation on a shared primitive, as a backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// An atomic load returned `value`.
    Load { obj: ObjId, value: Value },
    /// An atomic store wrote `value`.
    Store { obj: ObjId, value: Value },
    /// A read-modify-write (`fetch_add`, `swap`, …) found `old`, left `new`.
    Rmw {
        obj: ObjId,
        name: &'static str,
        arg: Value,
        old: Value,
        new: Value,
    },
    /// A mutex was taken.
    Lock { obj: ObjId },
    /// A mutex was let go.
    Unlock { obj: ObjId },
    /// A thread let go of `lock` and went to sleep on `cv`.
    Wait { cv: ObjId, lock: ObjId },
    /// …and woke up holding `lock` again.
    Woken { cv: ObjId, lock: ObjId },
    /// `notify_one` (`all: false`) or `notify_all`.
    Notify { cv: ObjId, all: bool },
    /// A new thread, by its index.
    Spawn { thread: usize },
    /// A join returned: that thread has finished.
    Join { thread: usize },
    /// A spin loop let other threads run.
    Yield,
    /// The thread's closure returned.
    Finish,
}

/// One row of the execution, in the order the checker ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The thread, by the checker's index (0 is the model's main thread).
    pub thread: usize,
    /// What happened.
    pub event: Event,
    /// The caller's line, when there is one.
    pub at: Option<Site>,
}

/// What a step is: an operation on shared state, or the model's own level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An operation that happened.
    Did(Op),
    /// An operation that must wait for another thread (a lock someone
    /// holds, a join on a running thread): it completes later, at a
    /// [`Event::Did`] of the same thread, or never if the model deadlocked.
    Waits(Op),
    /// A model-level operation begins ([`op`]).
    Begin(String),
    /// …and returns; the text is its result, if it has one to show.
    End(Option<String>),
}

/// What the model checker stopped on: a panic in the model (an assertion)
/// or the checker's own report (a deadlock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The thread that was running (the last one that recorded a step).
    pub thread: usize,
    /// The panic message.
    pub message: String,
    /// Where it panicked, if the panic came from this crate's code.
    pub at: Option<(String, u32)>,
}

/// An object the execution created: where, and what it held at first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// What it is.
    pub kind: Kind,
    /// Where it was created (its name is read from that line).
    pub at: Site,
    /// What an atomic held when created (to tell a stale load).
    pub init: Option<Value>,
}

/// One recorded execution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Every recorded step, in execution order.
    pub steps: Vec<Step>,
    /// The objects, indexed by [`ObjId`].
    pub objects: Vec<Object>,
    /// Why the execution stopped, if it failed.
    pub failure: Option<Failure>,
}

impl Trace {
    /// The trace as text: what each thread's operations returned, then the
    /// interleaving, then the failure. See `render.rs`.
    pub fn render(&self, labels: &Labels) -> String {
        render::render(self, labels)
    }

    /// Only the interleaving table, for a report that says the rest itself
    /// (the linearizability checker's).
    pub fn interleaving(&self, labels: &Labels) -> String {
        render::interleaving(self, labels)
    }

    /// The interleaving as an SVG picture, for the book. See `svg.rs`.
    pub fn svg(&self, labels: &Labels, title: &str) -> String {
        svg::svg(self, labels, title)
    }
}

#[cfg(test)]
mod tests;
