//! Shutdown and drain: stop taking connections, then wait until the last
//! live one is gone.
//!
//! The seeds stop with Ctrl-C and a traceback; their daemon threads die
//! mid-reply. Ours is a [`Shutdown`] shared by the accept loop, every
//! connection and whoever asks the server to stop:
//!
//! * each accepted connection holds a [`Live`] guard from
//!   [`Drain::try_enter`] until it has closed;
//! * [`Drain::begin`] flips the flag, refuses later `try_enter`s, and says
//!   how many connections are still live;
//! * [`Drain::wait_drained`] blocks on a condition variable — no polling —
//!   until the last guard is dropped.
//!
//! Checking "shutting down?" and counting the connection happen under one
//! lock, so a connection accepted while shutdown begins is either refused
//! or counted and waited for, never missed. The buggy variants in [`buggy`]
//! show what loom finds when the check leaves the lock or `while` becomes
//! `if`.

use crate::sync::{Arc, AtomicBool, Backend, Monitor, Ordering, Std};
use std::time::Duration;

pub mod buggy;

/// The shutdown-and-drain operations. Implemented by [`Shutdown`] and the
/// buggy variants, so the same models run against all of them.
pub trait Drain: Send + Sync + 'static {
    /// Counts one more live connection, unless shutdown has begun.
    fn enter(&self) -> bool;
    /// Counts one live connection gone. Only [`Live`]'s drop calls it.
    fn leave(&self);
    /// Starts shutdown (idempotent) and returns the live count at that moment.
    fn begin(&self) -> usize;
    /// Whether [`Drain::begin`] has been called.
    fn is_shutting_down(&self) -> bool;
    /// Live connections now.
    fn live(&self) -> usize;
    /// Blocks until no connection is live.
    fn wait_drained(&self);
    /// Blocks until no connection is live or `timeout` passes; `true` if
    /// drained. Never reads a clock: a caller that wants a deadline keeps
    /// calling it with the time that is left.
    fn wait_drained_for(&self, timeout: Duration) -> bool;

    /// A guard counting a live connection, or `None` during shutdown.
    fn try_enter(self: &Arc<Self>) -> Option<Live<Self>>
    where
        Self: Sized,
    {
        self.enter().then(|| Live {
            drain: self.clone(),
        })
    }
}

/// One live connection; dropping it counts the connection gone and wakes a
/// drain waiting for the last one.
#[must_use = "dropping the guard counts the connection gone at once"]
#[derive(Debug)]
pub struct Live<D: Drain + ?Sized = Shutdown> {
    drain: Arc<D>,
}

impl<D: Drain + ?Sized> Drop for Live<D> {
    fn drop(&mut self) {
        self.drain.leave();
    }
}

// ANCHOR: shutdown
/// The sound shutdown signal and drain.
pub struct Shutdown<B: Backend = Std> {
    /// The flag and the live count under one lock: `try_enter` checks the
    /// flag and counts in one step, and `wait_drained` checks the count
    /// without a window for the last `leave` to slip through. Every change
    /// (a leave, the start of shutdown) notifies; waiters re-check their own
    /// condition in a `while` loop.
    state: Monitor<State, B>,
    /// A copy of `state.shutting_down` for the hot path: every connection
    /// checks it before every read, and a lock there would make all
    /// connections contend on one mutex. Decisions that must not race with
    /// `begin` (`enter`) still read the flag under the lock.
    flag: B::AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    shutting_down: bool,
    live: usize,
}

impl<B: Backend> Shutdown<B> {
    /// Not shutting down, nothing live.
    pub fn new() -> Self {
        Shutdown {
            state: Monitor::new(State::default()),
            flag: B::AtomicBool::new(false),
        }
    }
}

impl<B: Backend> Drain for Shutdown<B> {
    fn enter(&self) -> bool {
        let mut state = self.state.lock();
        if state.shutting_down {
            return false;
        }
        state.live += 1;
        true
    }

    // ANCHOR: leave
    fn leave(&self) {
        let mut state = self.state.lock();
        debug_assert!(state.live > 0, "leave without enter");
        state.live = state.live.saturating_sub(1);
        state.notify_all();
    }
    // ANCHOR_END: leave

    fn begin(&self) -> usize {
        let mut state = self.state.lock();
        state.shutting_down = true;
        // Release pairs with the Acquire load in `is_shutting_down`: whoever
        // sees the flag also sees everything done before shutdown began.
        self.flag.swap(true, Ordering::Release);
        let live = state.live;
        state.notify_all();
        live
    }

    fn is_shutting_down(&self) -> bool {
        // Acquire pairs with the Release swap in `begin`.
        self.flag.load(Ordering::Acquire)
    }

    fn live(&self) -> usize {
        self.state.lock().live
    }

    // ANCHOR: wait_drained
    fn wait_drained(&self) {
        let mut state = self.state.lock();
        // `while`: we are woken by every leave and by `begin`, and spuriously.
        while state.live > 0 {
            state = state.wait();
        }
    }
    // ANCHOR_END: wait_drained

    fn wait_drained_for(&self, timeout: Duration) -> bool {
        let mut state = self.state.lock();
        if state.live > 0 {
            // One bounded wait; the caller loops with its own clock.
            (state, _) = state.wait_timeout(timeout);
        }
        state.live == 0
    }
}
// ANCHOR_END: shutdown

impl<B: Backend> Default for Shutdown<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> std::fmt::Debug for Shutdown<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Shutdown")
            .field("shutting_down", &state.shutting_down)
            .field("live", &state.live)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::ParkingLot;
    use std::thread;

    #[test]
    fn drain_waits_for_the_last_guard() {
        let shutdown = Arc::new(Shutdown::<Std>::new());
        let guards: Vec<_> = (0..3).map(|_| shutdown.try_enter().unwrap()).collect();
        assert_eq!(shutdown.begin(), 3);
        assert!(
            shutdown.try_enter().is_none(),
            "no new connections once shutting down"
        );
        let s = shutdown.clone();
        let waiter = thread::spawn(move || {
            s.wait_drained();
            s.live()
        });
        drop(guards);
        assert_eq!(waiter.join().unwrap(), 0);
    }

    /// `Debug` is how the state shows up in a log line or a failed assertion.
    #[test]
    fn debug_shows_the_flag_and_the_live_count() {
        let shutdown = Arc::new(Shutdown::<Std>::new());
        let _live = shutdown.try_enter().unwrap();
        shutdown.begin();
        let shown = format!("{shutdown:?}");
        assert_eq!(shown, "Shutdown { shutting_down: true, live: 1 }");
    }

    #[test]
    fn wait_drained_for_times_out_while_someone_is_live() {
        let shutdown = Arc::new(Shutdown::<ParkingLot>::new());
        let live = shutdown.try_enter().unwrap();
        shutdown.begin();
        assert!(!shutdown.wait_drained_for(Duration::from_millis(20)));
        drop(live);
        assert!(shutdown.wait_drained_for(Duration::from_millis(20)));
    }
}
