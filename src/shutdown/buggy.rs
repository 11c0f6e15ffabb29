//! **BUGGY ON PURPOSE.** Two drains that differ from [`Shutdown`] only in
//! `wait_drained`, each with a classic condition-variable mistake. The loom
//! models in `tests/loom_shutdown.rs` must catch both. Nothing in the
//! server uses them.

use super::{Drain, Shutdown};
use crate::sync::{Backend, Std};
use std::time::Duration;

/// Forwards every [`Drain`] method but `wait_drained` to the inner [`Shutdown`].
macro_rules! forward_all_but_wait {
    () => {
        fn enter(&self) -> bool {
            self.0.enter()
        }
        fn leave(&self) {
            self.0.leave()
        }
        fn begin(&self) -> usize {
            self.0.begin()
        }
        fn is_shutting_down(&self) -> bool {
            self.0.is_shutting_down()
        }
        fn live(&self) -> usize {
            self.0.live()
        }
        fn wait_drained_for(&self, timeout: Duration) -> bool {
            self.0.wait_drained_for(timeout)
        }
    };
}

// ANCHOR: unlocked_check
/// **BUG: lost wake-up.** Checks the count, lets go of the lock, then takes
/// it again to wait. The last `leave` can run — and notify nobody — in the
/// gap, and the waiter then sleeps forever.
#[derive(Debug, Default)]
pub struct UnlockedCheckDrain<B: Backend = Std>(Shutdown<B>);

impl<B: Backend> Drain for UnlockedCheckDrain<B> {
    forward_all_but_wait!();

    fn wait_drained(&self) {
        loop {
            let live = self.0.state.lock().live; // BUG: lock released here...
            if live == 0 {
                return;
            }
            let state = self.0.state.lock(); // ...and taken again: a leave may have run between.
            drop(state.wait());
        }
    }
}
// ANCHOR_END: unlocked_check

// ANCHOR: if_not_while
/// **BUG: `if` instead of `while`.** Any wake-up — shutdown beginning, or a
/// spurious one — ends the wait, so it returns while connections are still
/// live.
#[derive(Debug, Default)]
pub struct IfDrain<B: Backend = Std>(Shutdown<B>);

impl<B: Backend> Drain for IfDrain<B> {
    forward_all_but_wait!();

    fn wait_drained(&self) {
        let state = self.0.state.lock();
        if state.live > 0 {
            // BUG: should loop until the condition holds.
            drop(state.wait());
        }
    }
}
// ANCHOR_END: if_not_while
