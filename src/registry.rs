//! The live-connection registry: who to wake when the server shuts down.
//!
//! A handler thread spends most of its life blocked in `read`, and no flag
//! can reach it there. So each connection registers something that can wake
//! it — the server stores a weak reference to its `TcpStream` and shuts its
//! reading side down; loom models store an in-memory pipe's waker — and
//! [`Registry::close`] hands every entry to the caller to wake.
//!
//! The registry is generic over what it stores, so it knows nothing about
//! sockets. The one rule that makes it correct: registering and closing
//! take the same lock, and registering after `close` is *refused* (the
//! entry comes back in the `Err`), so a connection registering while
//! shutdown runs is either woken by `close` or told at once. [`Roster`] is
//! the sound one the server uses. The buggy
//! [`buggy::ForgetfulRegistry`] drops that check, and loom finds the
//! connection nobody wakes.

use crate::sync::{Arc, Backend, Lock, Std};
use std::collections::BTreeMap;

pub mod buggy;

/// The registry operations, so models run against the buggy variant too.
pub trait Registry<T: Send>: Send + Sync + 'static {
    /// Adds `entry` under `id`, or gives it back if the registry is closed.
    fn insert(&self, id: u64, entry: T) -> Result<(), T>;
    /// Removes and returns the entry under `id`, if still there.
    fn remove(&self, id: u64) -> Option<T>;
    /// Closes the registry and takes every entry, in id order, for the
    /// caller to wake outside the lock. Later inserts are refused.
    /// Idempotent.
    fn close(&self) -> Vec<(u64, T)>;
    /// Entries registered now.
    fn len(&self) -> usize;
    /// Whether nothing is registered.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers `entry`; the returned guard removes it again on drop.
    fn register(self: &Arc<Self>, id: u64, entry: T) -> Result<Registration<T, Self>, T>
    where
        Self: Sized,
    {
        self.insert(id, entry)?;
        Ok(Registration {
            id,
            registry: self.clone(),
            _entry: std::marker::PhantomData,
        })
    }
}

/// A registered connection; dropping it deregisters.
#[must_use = "dropping the registration removes the entry at once"]
#[derive(Debug)]
pub struct Registration<T: Send, R: Registry<T> + ?Sized = Roster<T>> {
    id: u64,
    registry: Arc<R>,
    _entry: std::marker::PhantomData<fn() -> T>,
}

impl<T: Send, R: Registry<T> + ?Sized> Drop for Registration<T, R> {
    fn drop(&mut self) {
        // Dropped outside the lock: whatever the entry owns is released here, not under it.
        drop(self.registry.remove(self.id));
    }
}

// ANCHOR: registry
/// The sound registry: the roster of live connections to wake at shutdown.
pub struct Roster<T: Send, B: Backend = Std> {
    /// The entries and the closed flag under one lock, so `insert` cannot
    /// slip in after `close` took everything.
    state: B::Mutex<Entries<T>>,
}

struct Entries<T> {
    /// A `BTreeMap`, not a `HashMap`: `close` must hand entries back in the
    /// same order every run. A `HashMap`'s order changes with each new map
    /// (std's `RandomState`), and loom, which replays schedules on the
    /// premise that the program is deterministic, then fails a correct
    /// model: see `tests/loom_registry.rs`.
    by_id: BTreeMap<u64, T>,
    closed: bool,
}

impl<T: Send, B: Backend> Roster<T, B> {
    /// An empty, open registry.
    pub fn new() -> Self {
        Roster {
            state: B::Mutex::new(Entries {
                by_id: BTreeMap::new(),
                closed: false,
            }),
        }
    }
}

impl<T: Send + 'static, B: Backend> Registry<T> for Roster<T, B> {
    // ANCHOR: insert_close
    fn insert(&self, id: u64, entry: T) -> Result<(), T> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(entry);
        }
        state.by_id.insert(id, entry);
        Ok(())
    }

    fn remove(&self, id: u64) -> Option<T> {
        self.state.lock().by_id.remove(&id)
    }

    fn close(&self) -> Vec<(u64, T)> {
        let mut state = self.state.lock();
        state.closed = true;
        std::mem::take(&mut state.by_id).into_iter().collect()
    }
    // ANCHOR_END: insert_close

    fn len(&self) -> usize {
        self.state.lock().by_id.len()
    }
}
// ANCHOR_END: registry

impl<T: Send, B: Backend> Default for Roster<T, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send, B: Backend> std::fmt::Debug for Roster<T, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Roster")
            .field("entries", &state.by_id.len())
            .field("closed", &state.closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_takes_everything_and_refuses_later_inserts() {
        let registry = Arc::new(Roster::<&str, Std>::new());
        let a = registry.register(1, "a").unwrap();
        let _b = registry.register(2, "b").unwrap();
        drop(a);
        assert_eq!(registry.len(), 1);
        assert!(!registry.is_empty());
        assert_eq!(
            format!("{registry:?}"),
            "Roster { entries: 1, closed: false }"
        );
        let mut woken = registry.close();
        woken.sort();
        assert_eq!(woken, vec![(2, "b")]);
        assert_eq!(registry.register(3, "c").err(), Some("c"));
        assert!(registry.is_empty());
    }

    #[test]
    fn close_returns_entries_in_id_order() {
        // Twenty ids registered backwards: a hash map would hand them back
        // sorted by chance about once in 20! runs.
        let registry = Roster::<u64, Std>::new();
        for id in (1..=20).rev() {
            registry.insert(id, id * 10).unwrap();
        }
        let ids: Vec<u64> = registry.close().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, (1..=20).collect::<Vec<_>>());
    }
}
