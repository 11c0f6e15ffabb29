//! The connection limit: at most `max` connections at once.
//!
//! The seeds have none: a burst of clients gets a thread each until the
//! machine runs out. Ours hands out [`Permit`]s, RAII guards that give their
//! slot back on drop. Two ways to ask:
//!
//! * [`Limiter::try_acquire`] answers at once — the server uses it to send
//!   `error: server busy` instead of making the client wait;
//! * [`Limiter::acquire`] blocks until a slot frees up — backpressure, for
//!   callers that would rather wait — and returns `None` once the limit is
//!   closed at shutdown, so it can never block forever. The server never
//!   waits for a slot (it answers busy); `acquire` is here for the book: the
//!   textbook condition-variable wait, which must also wake when the limit
//!   closes, checked by chapter 6's and chapter 8.1's loom models.
//!
//! [`Limit`] checks and takes a slot under one lock. [`buggy::CheckThenActLimit`]
//! checks, then takes, in two steps: **a bug** loom catches overshooting.

use crate::sync::{Arc, Backend, Monitor, Std};

pub mod buggy;

/// Something that hands out at most `max` slots. Implemented by [`Limit`]
/// and by the buggy variant, so models and tests run against both.
pub trait Limiter: Send + Sync + 'static {
    /// Takes a slot if one is free, without waiting.
    fn try_take(&self) -> bool;
    /// Waits for a free slot; `false` if the limit was closed meanwhile.
    fn take(&self) -> bool;
    /// Gives a slot back. Only [`Permit`]'s drop calls it.
    fn give_back(&self);
    /// Refuses every later `take` and wakes those waiting in one.
    fn close(&self);
    /// Slots in use now.
    fn in_use(&self) -> usize;
    /// The most slots that may be in use at once.
    fn max(&self) -> usize;

    // ANCHOR: try_acquire
    /// A permit if a slot is free now.
    fn try_acquire(self: &Arc<Self>) -> Option<Permit<Self>>
    where
        Self: Sized,
    {
        self.try_take().then(|| Permit {
            limit: self.clone(),
        })
    }
    // ANCHOR_END: try_acquire

    /// A permit once a slot is free; `None` if the limit is closed.
    fn acquire(self: &Arc<Self>) -> Option<Permit<Self>>
    where
        Self: Sized,
    {
        self.take().then(|| Permit {
            limit: self.clone(),
        })
    }
}

/// One slot of a limit; dropping it gives the slot back.
#[must_use = "dropping the permit frees the slot at once"]
#[derive(Debug)]
pub struct Permit<L: Limiter + ?Sized = Limit> {
    /// Keeps the limit alive for as long as the slot is held.
    limit: Arc<L>,
}

impl<L: Limiter + ?Sized> Drop for Permit<L> {
    fn drop(&mut self) {
        self.limit.give_back();
    }
}

// ANCHOR: limit
/// The sound limit: a count in a monitor, checked and changed under its lock.
pub struct Limit<B: Backend = Std> {
    max: usize,
    /// Slots in use and whether the limit is closed, under one lock so the
    /// check "is a slot free?" and the take are one step. Blocking `take`
    /// waits on it for a slot to be given back or the limit to close.
    slots: Monitor<Slots, B>,
}

#[derive(Debug, Default)]
struct Slots {
    in_use: usize,
    closed: bool,
}

impl<B: Backend> Limit<B> {
    /// A limit of `max` slots, all free.
    pub fn new(max: usize) -> Self {
        Limit {
            max,
            slots: Monitor::new(Slots::default()),
        }
    }
}

impl<B: Backend> Limiter for Limit<B> {
    // ANCHOR: try_take
    fn try_take(&self) -> bool {
        let mut slots = self.slots.lock();
        let free = !slots.closed && slots.in_use < self.max;
        if free {
            slots.in_use += 1;
        }
        free
    }
    // ANCHOR_END: try_take

    fn take(&self) -> bool {
        let mut slots = self.slots.lock();
        // `while`, not `if`: a wake-up only says "look again" — another
        // thread may have taken the slot first, or it was spurious.
        while !slots.closed && slots.in_use >= self.max {
            slots = slots.wait();
        }
        if slots.closed {
            return false;
        }
        slots.in_use += 1;
        true
    }

    fn give_back(&self) {
        let mut slots = self.slots.lock();
        debug_assert!(slots.in_use > 0, "give_back without take");
        slots.in_use = slots.in_use.saturating_sub(1);
        // One slot freed, so one waiter can use it.
        slots.notify_one();
    }

    fn close(&self) {
        let mut slots = self.slots.lock();
        slots.closed = true;
        slots.notify_all();
    }

    fn in_use(&self) -> usize {
        self.slots.lock().in_use
    }

    fn max(&self) -> usize {
        self.max
    }
}
// ANCHOR_END: limit

impl<B: Backend> std::fmt::Debug for Limit<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limit")
            .field("max", &self.max)
            .field("in_use", &self.in_use())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::ParkingLot;
    use std::thread;

    #[test]
    fn try_acquire_refuses_past_max_and_frees_on_drop() {
        let limit = Arc::new(Limit::<Std>::new(2));
        let a = limit.try_acquire().expect("first");
        let _b = limit.try_acquire().expect("second");
        assert!(limit.try_acquire().is_none(), "third must be refused");
        drop(a);
        assert!(limit.try_acquire().is_some());
    }

    #[test]
    fn blocking_acquire_waits_for_a_release() {
        let limit = Arc::new(Limit::<ParkingLot>::new(1));
        let held = limit.try_acquire().unwrap();
        let l = limit.clone();
        let waiter = thread::spawn(move || l.acquire().is_some());
        drop(held);
        assert!(waiter.join().unwrap(), "the waiter gets the freed slot");
        assert_eq!(limit.in_use(), 0);
    }

    #[test]
    fn close_wakes_a_blocked_acquire_with_none() {
        let limit = Arc::new(Limit::<Std>::new(1));
        let _held = limit.try_acquire().unwrap();
        let l = limit.clone();
        let waiter = thread::spawn(move || l.acquire().is_none());
        limit.close();
        assert!(waiter.join().unwrap());
        assert!(limit.try_acquire().is_none(), "closed stays closed");
    }

    /// `in_use` and `max` feed the server's "permit taken" log line and `Debug` its state
    /// dumps; the other tests only ever see `in_use() == 0`.
    #[test]
    fn in_use_max_and_debug_report_the_slots() {
        let limit = Arc::new(Limit::<Std>::new(3));
        assert_eq!((limit.in_use(), limit.max()), (0, 3));
        let a = limit.try_acquire().unwrap();
        let _b = limit.try_acquire().unwrap();
        assert_eq!(limit.in_use(), 2);
        assert_eq!(format!("{limit:?}"), "Limit { max: 3, in_use: 2 }");
        drop(a);
        assert_eq!(limit.in_use(), 1);
    }

    #[test]
    fn a_poisoned_lock_still_gives_slots_back() {
        let limit = Arc::new(Limit::<Std>::new(1));
        let l = limit.clone();
        let result = thread::spawn(move || {
            let _permit = l.try_acquire().unwrap();
            let _held = l.slots.lock();
            panic!("handler panicked while holding the limit's lock");
        })
        .join();
        assert!(result.is_err());
        // The permit was dropped during unwinding, after the lock guard.
        assert_eq!(limit.in_use(), 0);
        assert!(limit.try_acquire().is_some());
    }
}
