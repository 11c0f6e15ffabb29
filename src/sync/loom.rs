//! The [`Loom`] backend, compiled only under `--cfg loom`: loom's mocks of
//! the same primitives, so `loom::model` can run every interleaving of the
//! core's real code.
//!
//! Loom's limits shape the core: no `wait_while` (write the loop), no
//! spurious wake-ups simulated, `wait_timeout` never times out, `SeqCst` is
//! modelled as `AcqRel`, at most 5 threads per model including the main one.
//!
//! Every primitive here also reports what it did to the trace recorder, so
//! a failing model can print its interleaving: the wrappers are written once
//! for both model backends, in `traced.rs`.

use super::trace::{self, Kind, ObjId, Op, Site, Value};
use super::traced::{rmw, traced_primitives};
use super::{AtomicBool, AtomicU64, Backend, Condvar, Guard, JoinHandle, Lock, Ordering};
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

traced_primitives!(loom, Loom, index_of);
