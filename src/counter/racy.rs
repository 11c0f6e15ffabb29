//! **BUGGY ON PURPOSE.** A counter that loses updates, kept so the loom
//! models and the linearizability checker can show they catch it. It is not
//! a [`CounterKind`](super::CounterKind), so the server cannot use it.
//!
//! The bug is the one Python's `client_counter += 1` has without the lock:
//! read the value, add one, write it back. Two threads can both read 4 and
//! both write 5 — two clients get id 5 and one connection is never counted.

use super::{Counter, Stats, impl_default};
use crate::sync::{AtomicU64, Backend, Ordering, Std};

// ANCHOR: racy
/// **BUG: lost updates.** Each number is atomic, but every update is a
/// separate load and store, so a thread can overwrite another's update.
pub struct RacyCounter<B: Backend = Std> {
    issued: B::AtomicU64,
    active: B::AtomicU64,
    peak: B::AtomicU64,
    served: B::AtomicU64,
}

impl<B: Backend> RacyCounter<B> {
    /// A counter at zero.
    pub fn new() -> Self {
        RacyCounter {
            issued: B::AtomicU64::new(0),
            active: B::AtomicU64::new(0),
            peak: B::AtomicU64::new(0),
            served: B::AtomicU64::new(0),
        }
    }

    // BUG: another thread can store between our load and our store.
    fn racy_increment(cell: &B::AtomicU64) -> u64 {
        let next = cell.load(Ordering::SeqCst) + 1;
        cell.store(next, Ordering::SeqCst);
        next
    }
}

impl<B: Backend> Counter for RacyCounter<B> {
    fn enter(&self) -> u64 {
        let id = Self::racy_increment(&self.issued); // BUG: two clients can get the same id
        let now = Self::racy_increment(&self.active);
        self.peak.fetch_max(now, Ordering::SeqCst);
        id
    }

    fn leave(&self) {
        let now = self.active.load(Ordering::SeqCst);
        self.active.store(now.saturating_sub(1), Ordering::SeqCst); // BUG: can undo a concurrent enter
        Self::racy_increment(&self.served);
    }

    fn stats(&self) -> Stats {
        Stats {
            active: self.active.load(Ordering::SeqCst),
            peak: self.peak.load(Ordering::SeqCst),
            served: self.served.load(Ordering::SeqCst),
            issued: self.issued.load(Ordering::SeqCst),
        }
    }
}
// ANCHOR_END: racy

impl_default!(RacyCounter);
