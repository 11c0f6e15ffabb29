//! The client counter: the seed's `client_counter` with its lock, grown up.
//!
//! The seed does `with counter_lock: client_counter += 1; client_id =
//! client_counter` and never decrements. Ours hands out ids (1, 2, 3, …
//! unique, never reused) and also tracks how many clients are connected
//! *now*, the most that ever were at once (`peak`) and how many have been
//! served. Four implementations of one trait, [`Counter`]:
//!
//! | type | how | for |
//! |---|---|---|
//! | [`LockedCounter`] (`<Std>`) | one `Mutex` around all four numbers | the seed's design |
//! | [`LockedCounter<ParkingLot>`] | the same, `parking_lot`'s lock | the one-line swap |
//! | [`AtomicCounter`] | four atomics, no lock | speed; weaker snapshots |
//! | [`racy::RacyCounter`] | load, then store | **a bug**, kept so loom can catch it |
//!
//! A client is counted by [`ClientGuard`]: connecting returns the guard,
//! dropping it — normal return, early return or panic — counts the client
//! gone. The decrement is automatic: no code path can forget it (only
//! `mem::forget` or an abort can skip it).
//!
//! [`LockedCounter<ParkingLot>`]: LockedCounter

use crate::sync::{Arc, AtomicU64, Backend, Lock, Ordering, ParkingLot, Std};

pub mod racy;

/// What a counter knows at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Clients connected now.
    pub active: u64,
    /// The most clients ever connected at the same moment.
    pub peak: u64,
    /// Clients that connected and have left.
    pub served: u64,
    /// Ids handed out so far; the last id is this number.
    pub issued: u64,
}

impl Stats {
    /// The invariants every snapshot of a sound counter keeps, even one read
    /// while other threads connect and leave: nobody is counted twice, and
    /// the peak is at least what is active now.
    pub fn is_consistent(&self) -> bool {
        self.active + self.served <= self.issued
            && self.active <= self.peak
            && self.peak <= self.issued
    }
}

/// Hands out client ids and counts clients. Every method takes `&self`:
/// the counter is shared between threads behind an `Arc`.
pub trait Counter: Send + Sync + 'static {
    /// Takes the next id and counts the client as connected. Low level:
    /// prefer [`ClientGuard::new`], whose drop cannot forget [`Counter::leave`].
    fn enter(&self) -> u64;
    /// Counts one connected client as gone (served).
    fn leave(&self);
    /// A snapshot of the counts.
    fn stats(&self) -> Stats;
}

// ANCHOR: guard
/// Proof that a client is connected, carrying its id. Dropping it counts
/// the client gone, on every path out of the handler including a panic.
#[must_use = "dropping the guard counts the client gone at once"]
#[derive(Debug)]
pub struct ClientGuard<C: Counter + ?Sized = dyn Counter> {
    id: u64,
    /// Shared with the server and every other guard; the last one to go
    /// (usually the server) frees the counter.
    counter: Arc<C>,
}

impl<C: Counter + ?Sized> ClientGuard<C> {
    /// Connects a client: takes the next id and counts it active.
    pub fn new(counter: Arc<C>) -> Self {
        let id = counter.enter();
        ClientGuard { id, counter }
    }

    /// This client's id: 1, 2, 3, … in the order clients connected.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<C: Counter + ?Sized> Drop for ClientGuard<C> {
    fn drop(&mut self) {
        self.counter.leave();
    }
}
// ANCHOR_END: guard

// ANCHOR: locked
/// The seed's design: one lock around all the numbers, so every snapshot is
/// exact. `B` picks the lock: `LockedCounter` is `std::sync::Mutex`,
/// `LockedCounter<ParkingLot>` is `parking_lot::Mutex`.
pub struct LockedCounter<B: Backend = Std> {
    /// One lock for all four numbers: `enter` must bump `issued`, `active`
    /// and `peak` together or a reader could see a client twice or not at
    /// all. Held for a few additions, never across I/O.
    stats: B::Mutex<Stats>,
}

impl<B: Backend> LockedCounter<B> {
    /// A counter at zero; the first id will be 1.
    pub fn new() -> Self {
        LockedCounter {
            stats: B::Mutex::new(Stats::default()),
        }
    }
}

impl<B: Backend> Counter for LockedCounter<B> {
    fn enter(&self) -> u64 {
        let mut s = self.stats.lock();
        s.issued += 1;
        s.active += 1;
        s.peak = s.peak.max(s.active);
        s.issued
    }

    fn leave(&self) {
        let mut s = self.stats.lock();
        debug_assert!(s.active > 0, "leave without enter");
        s.active = s.active.saturating_sub(1);
        s.served += 1;
    }

    fn stats(&self) -> Stats {
        *self.stats.lock()
    }
}
// ANCHOR_END: locked

/// [`LockedCounter`] on `parking_lot`, named for benchmarks and the book.
pub type ParkingLotCounter = LockedCounter<ParkingLot>;

// ANCHOR: atomic
/// Lock-free: four atomics, each updated with one read-modify-write, so no
/// update is ever lost. The price is that a snapshot reads four numbers one
/// after another; the orderings below make it still keep
/// [`Stats::is_consistent`].
pub struct AtomicCounter<B: Backend = Std> {
    /// Last id handed out. `fetch_add` makes ids unique without a lock.
    issued: B::AtomicU64,
    /// Connected now.
    active: B::AtomicU64,
    /// Highest `active` seen, raised with `fetch_max`.
    peak: B::AtomicU64,
    /// Clients that left.
    served: B::AtomicU64,
}

impl<B: Backend> AtomicCounter<B> {
    /// A counter at zero; the first id will be 1.
    pub fn new() -> Self {
        AtomicCounter {
            issued: B::AtomicU64::new(0),
            active: B::AtomicU64::new(0),
            peak: B::AtomicU64::new(0),
            served: B::AtomicU64::new(0),
        }
    }
}

impl<B: Backend> Counter for AtomicCounter<B> {
    // ANCHOR: atomic_enter
    fn enter(&self) -> u64 {
        // Relaxed: uniqueness needs only the atomicity of the RMW. The
        // Release below publishes this increment to readers.
        let id = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        // AcqRel. Release pairs with the Acquire load of `active` in
        // `stats` (a reader who counts us also sees our id issued); Acquire
        // pairs with earlier clients' Release here, so the `now` we publish
        // through `peak` carries their ids too.
        let now = self.active.fetch_add(1, Ordering::AcqRel) + 1;
        // Release pairs with the Acquire load of `peak` in `stats`.
        self.peak.fetch_max(now, Ordering::Release);
        id
    }
    // ANCHOR_END: atomic_enter

    fn leave(&self) {
        // Release pairs with the Acquire load of `active` in `stats`.
        self.active.fetch_sub(1, Ordering::Release);
        // Release pairs with the Acquire load of `served` in `stats`: a
        // reader that counts us served also sees us gone from `active`.
        self.served.fetch_add(1, Ordering::Release);
    }

    fn stats(&self) -> Stats {
        // Order matters: `served` before `active` (so nobody is counted
        // both), `issued` last (so it covers everyone counted before).
        let served = self.served.load(Ordering::Acquire); // pairs with leave's served Release
        let active = self.active.load(Ordering::Acquire); // pairs with enter/leave's active Release
        let peak = self.peak.load(Ordering::Acquire); // pairs with enter's peak Release
        let issued = self.issued.load(Ordering::Relaxed); // ordered by the Acquires above
        Stats {
            active,
            // A client counted in `active` may not have raised `peak` yet;
            // `active` itself is a moment with that many clients at once.
            peak: peak.max(active),
            served,
            issued,
        }
    }
}
// ANCHOR_END: atomic

macro_rules! impl_default {
    ($($t:ident),*) => {$(
        impl<B: Backend> Default for $t<B> {
            fn default() -> Self {
                Self::new()
            }
        }
        impl<B: Backend> std::fmt::Debug for $t<B> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($t)).field(&self.stats()).finish()
            }
        }
    )*};
}
pub(crate) use impl_default;
impl_default!(LockedCounter, AtomicCounter);

/// The sound counters, for choosing one at run time (the server's
/// `--counter` knob and the benchmarks). The racy one is deliberately not
/// here: nothing can hand it to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterKind {
    /// [`LockedCounter`] on the backend's mutex: the seed's design.
    #[default]
    Mutex,
    /// [`LockedCounter<ParkingLot>`](LockedCounter), whatever the backend.
    ParkingLot,
    /// [`AtomicCounter`] on the backend's atomics.
    Atomic,
}

impl CounterKind {
    /// Builds a counter of this kind. `ParkingLot` ignores `B` (it cannot
    /// run under loom), so loom models use the other two.
    pub fn build<B: Backend>(self) -> Arc<dyn Counter> {
        match self {
            CounterKind::Mutex => Arc::new(LockedCounter::<B>::new()),
            CounterKind::ParkingLot => Arc::new(ParkingLotCounter::new()),
            CounterKind::Atomic => Arc::new(AtomicCounter::<B>::new()),
        }
    }
}

#[cfg(test)]
mod tests;
