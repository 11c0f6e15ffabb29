//! The deadlines of one event loop's connections, soonest first.
//!
//! Each connection has at most one entry. Entries are moved lazily: when a
//! connection's deadline moves *later* (every echo line moves its idle
//! deadline), the entry stays where it is, and when it fires the loop asks
//! the connection for its real deadline and files it again. Only a deadline
//! that moves *earlier* (a connection that starts draining) is moved at once.
//! So an echo line costs no timer operation, and the set never holds more
//! than one entry per connection.

use mio::Token;
use std::collections::BTreeSet;
use std::time::Instant;

/// Deadlines by time, then token.
#[derive(Debug, Default)]
pub struct Timers {
    set: BTreeSet<(Instant, Token)>,
}

impl Timers {
    /// Makes sure `token` is woken no later than `want`, given that it is
    /// now filed at `filed`. Returns where it is filed afterwards.
    pub fn file(
        &mut self,
        token: Token,
        filed: Option<Instant>,
        want: Option<Instant>,
    ) -> Option<Instant> {
        match (filed, want) {
            // Filed earlier than needed: it will fire and be filed again.
            (Some(at), Some(want)) if at <= want => Some(at),
            (filed, Some(want)) => {
                if let Some(at) = filed {
                    self.set.remove(&(at, token));
                }
                self.set.insert((want, token));
                Some(want)
            }
            // No deadline any more: a stale entry fires once and finds nothing to do.
            (filed, None) => filed,
        }
    }

    /// Forgets `token`'s entry (its connection is gone).
    pub fn remove(&mut self, token: Token, filed: Option<Instant>) {
        if let Some(at) = filed {
            self.set.remove(&(at, token));
        }
    }

    /// The soonest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.set.first().map(|&(at, _)| at)
    }

    /// Takes the next entry that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Token> {
        let &(at, token) = self.set.first()?;
        (at <= now).then(|| {
            self.set.pop_first();
            token
        })
    }

    /// Entries filed.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether nothing is filed.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn later_deadlines_stay_filed_earlier_ones_move() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let (a, b) = (Token(7), Token(9));
        let filed_a = timers.file(a, None, Some(s(60)));
        assert_eq!(filed_a, Some(s(60)));
        // Later: stays where it is.
        assert_eq!(timers.file(a, filed_a, Some(s(90))), Some(s(60)));
        assert_eq!(timers.len(), 1);
        assert!(!timers.is_empty());
        // Earlier: moves.
        let filed_a = timers.file(a, filed_a, Some(s(1)));
        assert_eq!(filed_a, Some(s(1)));
        assert_eq!(timers.len(), 1, "moved, not added");
        let filed_b = timers.file(b, None, Some(s(30)));
        assert_eq!(timers.next(), Some(s(1)));
        assert_eq!(timers.pop_due(s(0)), None, "nothing due yet");
        assert_eq!(timers.pop_due(s(1)), Some(a));
        assert_eq!(timers.pop_due(s(1)), None);
        timers.remove(b, filed_b);
        assert!(timers.is_empty());
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn no_deadline_keeps_a_stale_entry() {
        let mut timers = Timers::default();
        let at = Instant::now();
        let filed = timers.file(Token(3), None, Some(at));
        assert_eq!(timers.file(Token(3), filed, None), Some(at));
        assert_eq!(timers.pop_due(at), Some(Token(3)));
    }
}
