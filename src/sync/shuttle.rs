//! The [`Shuttle`] backend, compiled only under `--cfg shuttle`: Shuttle's
//! controlled versions of the same primitives, so `shuttle::check_pct` and
//! `shuttle::check_random` can run the core's real code under schedules they
//! choose — thousands of them, at random, with a probabilistic guarantee,
//! where loom's exhaustive search would never finish.
//!
//! Shuttle's limits, next to loom's: it samples schedules instead of trying
//! them all (a pass is strong evidence, not a proof); it does not model weak
//! memory (every atomic behaves as `SeqCst`, so it cannot find an ordering
//! bug that loom can); no spurious wake-ups; `wait_timeout` never times out;
//! no `std::net` (the models run the server over `server::pipe`). No limit
//! on threads: a whole server with eight clients is one model.
//!
//! Every primitive wraps Shuttle's and reports what it did to the trace
//! recorder, exactly as the [`Loom`](super) backend's do: the wrappers are
//! written once for both, in `traced.rs`, so a failing Shuttle model prints
//! the same table of its failing schedule.

use super::trace::{self, Kind, ObjId, Op, Site, Value};
use super::traced::{rmw, traced_primitives};
use super::{AtomicBool, AtomicU64, Backend, Condvar, Guard, JoinHandle, Lock, Ordering};
use std::io;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

// ANCHOR: shuttle_backend
/// Shuttle's scheduled primitives. Only usable inside a Shuttle test
/// (`shuttle::check_*`, `shuttle::replay`, a `shuttle::Runner`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Shuttle;

impl Shuttle {
    /// The running Shuttle thread's index: 0 for the test's main thread,
    /// then 1, 2, … in spawn order. A model runner hands this to
    /// [`trace::begin`].
    pub fn thread_index() -> usize {
        usize::from(shuttle::current::me())
    }
}

/// Shuttle numbers its threads (tasks) the way loom does.
fn index_of(id: shuttle::thread::ThreadId) -> usize {
    usize::from(id)
}

traced_primitives!(shuttle, Shuttle, index_of);
// ANCHOR_END: shuttle_backend
