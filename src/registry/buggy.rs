//! **BUGGY ON PURPOSE.** A registry that forgets to check whether it was
//! closed. A connection that registers just after shutdown took the list
//! is never woken, and its thread stays blocked in `read`. The loom model in
//! `tests/loom_registry.rs` must find that connection. Nothing in the server
//! uses it.

use super::Registry;
use crate::sync::{Backend, Lock, Std};
use std::collections::BTreeMap;

// ANCHOR: forgetful
/// **BUG: accepts entries after `close`.**
pub struct ForgetfulRegistry<T: Send, B: Backend = Std> {
    /// Ordered like the sound registry's, so loom sees the same run twice.
    by_id: B::Mutex<BTreeMap<u64, T>>,
}

impl<T: Send, B: Backend> ForgetfulRegistry<T, B> {
    /// An empty registry.
    pub fn new() -> Self {
        ForgetfulRegistry {
            by_id: B::Mutex::new(BTreeMap::new()),
        }
    }
}

impl<T: Send + 'static, B: Backend> Registry<T> for ForgetfulRegistry<T, B> {
    fn insert(&self, id: u64, entry: T) -> Result<(), T> {
        // BUG: no "closed?" check — an insert after close is silently kept.
        self.by_id.lock().insert(id, entry);
        Ok(())
    }

    fn remove(&self, id: u64) -> Option<T> {
        self.by_id.lock().remove(&id)
    }

    fn close(&self) -> Vec<(u64, T)> {
        std::mem::take(&mut *self.by_id.lock())
            .into_iter()
            .collect()
    }

    fn len(&self) -> usize {
        self.by_id.lock().len()
    }
}
// ANCHOR_END: forgetful

impl<T: Send, B: Backend> Default for ForgetfulRegistry<T, B> {
    fn default() -> Self {
        Self::new()
    }
}
