//! A connection's queue of replies not yet written: kept only while the client is slower than
//! the server, and empty — holding no memory — the rest of the time.

use std::collections::VecDeque;

/// Queued reply bytes past which a connection stops reading until the client
/// has taken some: the most memory a client that never reads can make the
/// server hold for it, beyond the kernel's buffers.
pub const OUT_LIMIT: usize = 64 * 1024;

/// Queued replies, kept only while the client is slower than the server.
#[derive(Debug, Default)]
pub struct Outgoing {
    /// Bytes not yet written, from `start` on. Freed when it empties, so an
    /// idle connection holds no buffer.
    bytes: Vec<u8>,
    start: usize,
    /// Each queued reply, oldest first: its whole length (for the
    /// observer's `Replied` event) and how many of its bytes are still
    /// queued (only the oldest can have gone out in part).
    replies: VecDeque<(usize, usize)>,
}

impl Outgoing {
    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// The bytes still to write.
    pub fn pending(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Past the bound: the connection should stop reading.
    pub fn is_over_limit(&self) -> bool {
        self.len() > OUT_LIMIT
    }

    /// Down to half the bound: a connection that stopped reading may read
    /// again. Not at the bound itself, or a slow reader would flip it between
    /// paused and reading at every reply.
    pub fn has_room_to_read(&self) -> bool {
        self.len() <= OUT_LIMIT / 2
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues the unwritten `rest` of a reply `reply_len` bytes long.
    pub fn push(&mut self, rest: &[u8], reply_len: usize) {
        self.bytes.extend_from_slice(rest);
        self.replies.push_back((reply_len, rest.len()));
    }

    /// `n` more bytes went out; returns the lengths of the replies that are
    /// now complete.
    pub fn advance(&mut self, mut n: usize) -> Vec<usize> {
        self.start += n;
        let mut done = Vec::new();
        while let Some((len, left)) = self.replies.front_mut() {
            if n < *left {
                *left -= n;
                break;
            }
            n -= *left;
            done.push(*len);
            self.replies.pop_front();
        }
        if self.is_empty() {
            // Give the memory back: a burst must not cost for the connection's whole life.
            *self = Outgoing::default();
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_stops_past_the_bound_and_resumes_at_half_of_it() {
        let mut out = Outgoing::default();
        out.push(&vec![b'x'; OUT_LIMIT], OUT_LIMIT);
        assert!(!out.is_over_limit(), "at the bound, not past it");
        assert!(!out.has_room_to_read());
        out.push(b"y", 1);
        assert!(out.is_over_limit());
        out.advance(OUT_LIMIT / 2);
        assert_eq!(out.len(), OUT_LIMIT / 2 + 1);
        assert!(!out.has_room_to_read(), "one byte more than half");
        out.advance(1);
        assert!(out.has_room_to_read(), "half");
        assert!(!out.is_over_limit());
    }

    #[test]
    fn outgoing_reports_each_reply_when_its_last_byte_goes_out() {
        let mut out = Outgoing::default();
        out.push(b"abc", 3);
        out.push(b"defgh", 5);
        assert_eq!(out.len(), 8);
        assert_eq!(out.advance(2), Vec::<usize>::new(), "half of the first");
        assert_eq!(
            out.advance(2),
            vec![3],
            "the first done, one byte of the second"
        );
        assert_eq!(out.len(), 4);
        assert_eq!(out.advance(4), vec![5]);
        assert!(out.is_empty());
        assert_eq!(out.bytes.capacity(), 0, "an empty queue holds no memory");
    }

    #[test]
    fn outgoing_counts_a_reply_that_went_out_partly_before_it_was_queued() {
        let mut out = Outgoing::default();
        // A 10-byte reply of which 4 went out at once: 6 queued.
        out.push(b"456789", 10);
        out.push(b"xy", 2);
        assert_eq!(out.advance(6), vec![10]);
        assert_eq!(out.advance(2), vec![2]);
    }
}
