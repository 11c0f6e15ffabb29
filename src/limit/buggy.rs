//! **BUGGY ON PURPOSE.** A limit that checks, then acts, in two separate
//! steps — the classic time-of-check-to-time-of-use race. Kept so loom can
//! show it letting more than `max` connections in. Nothing in the server
//! uses it.

use super::Limiter;
use crate::sync::{AtomicU64, Backend, Ordering, Std};

// ANCHOR: check_then_act
/// **BUG: overshoots.** Two threads can both see `in_use == max - 1` and
/// both take the last slot.
pub struct CheckThenActLimit<B: Backend = Std> {
    max: usize,
    in_use: B::AtomicU64,
}

impl<B: Backend> CheckThenActLimit<B> {
    /// A limit of `max` slots.
    pub fn new(max: usize) -> Self {
        CheckThenActLimit {
            max,
            in_use: B::AtomicU64::new(0),
        }
    }
}

impl<B: Backend> Limiter for CheckThenActLimit<B> {
    fn try_take(&self) -> bool {
        // BUG: the check...
        if self.in_use.load(Ordering::SeqCst) < self.max as u64 {
            // ...and the act are separate: another thread can act in between.
            self.in_use.fetch_add(1, Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    fn take(&self) -> bool {
        // Spin until the (racy) check passes.
        while !self.try_take() {
            B::yield_now();
        }
        true
    }

    fn give_back(&self) {
        self.in_use.fetch_sub(1, Ordering::SeqCst);
    }

    // Also not honoured: a `take` on a closed buggy limit keeps spinning.
    // The models only ever use `try_take` and a bounded number of `take`s.
    fn close(&self) {}

    fn in_use(&self) -> usize {
        self.in_use.load(Ordering::SeqCst) as usize
    }

    fn max(&self) -> usize {
        self.max
    }
}
// ANCHOR_END: check_then_act
