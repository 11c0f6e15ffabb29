//! Framing: where one message ends and the next begins.
//!
//! TCP carries a stream of bytes, not messages. One `read` may return half a line, or three lines
//! and the start of a fourth, depending on how the sender wrote, how the network split the packets
//! and how quickly the reader came back. A protocol therefore needs a rule for cutting the stream
//! into messages; echo mode's rule is "a message is a line ending in `\n`" ([`LineFramer`]).
//!
//! The seeds had no such rule: they treat whatever one `recv` returns as one message. That works on
//! a quiet loopback with one small message at a time, and answers wrongly as soon as the bytes
//! arrive split or batched. [`SeedFraming`] keeps that design so the book can show the difference
//! side by side (see the tests at the bottom of this file).

/// What [`LineFramer::next_frame`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its `\n` or `\r\n`.
    Line(Vec<u8>),
    /// More than `max_line` bytes before a `\n`. The framer has dropped the line's bytes and has no
    /// boundary to resynchronise on, so the caller should stop reading lines from this stream.
    TooLong,
}

/// Cuts a byte stream into `\n`-terminated lines, holding at most `max_line` bytes of a partial
/// line.
///
/// The bound is the point: a client that sends a gigabyte without a newline must not make the
/// server hold a gigabyte. The length of a line is the number of bytes before its `\n`, a `\r`
/// included, so with `\r\n` endings the text itself can be one byte shorter than `max_line`.
#[derive(Clone, Debug)]
pub struct LineFramer {
    /// Bytes of the current line not yet ended by `\n`. Never longer than `max_line`: the moment
    /// a read would take it past that, the line is reported as too long instead of stored.
    partial: Vec<u8>,
    max_line: usize,
}

impl LineFramer {
    /// A framer accepting lines of up to `max_line` bytes (before the `\n`).
    pub fn new(max_line: usize) -> Self {
        LineFramer {
            partial: Vec::new(),
            max_line,
        }
    }

    // ANCHOR: next_frame
    /// Takes bytes from the front of `input` until one frame is complete, and returns it.
    ///
    /// Returns `None` once all of `input` is consumed without completing a line; the bytes are kept
    /// for the next call. Call it in a loop until `None` (or [`Frame::TooLong`]) so that several
    /// lines in one read are all found, in order.
    pub fn next_frame(&mut self, input: &mut &[u8]) -> Option<Frame> {
        if input.is_empty() {
            return None;
        }
        let Some(newline) = input.iter().position(|&byte| byte == b'\n') else {
            // No end of line in this read. Store it only if the line stays within bounds; this is
            // where "fires as soon as more than N bytes are buffered" happens, before any `\n`.
            let too_long = self.partial.len().saturating_add(input.len()) > self.max_line;
            if !too_long {
                self.partial.extend_from_slice(input);
            }
            *input = &[];
            return too_long.then(|| self.give_up());
        };
        let (body, rest) = input.split_at(newline);
        // `rest` starts with the `\n` itself; skip it.
        *input = rest.get(1..).unwrap_or_default();
        if self.partial.len().saturating_add(body.len()) > self.max_line {
            return Some(self.give_up());
        }
        let mut line = std::mem::take(&mut self.partial);
        line.extend_from_slice(body);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(Frame::Line(line))
    }
    // ANCHOR_END: next_frame

    /// The peer closed: hands back the final unterminated line, if any bytes of one are buffered.
    ///
    /// It is returned exactly as received (a trailing `\r` is not a line ending without its `\n`).
    /// It is never too long, because [`LineFramer::next_frame`] never buffers more than `max_line`.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.partial.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.partial))
        }
    }

    /// How many bytes of a partial line are held. At most `max_line`.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Drops any partial line, and the memory behind it (the connection has stopped reading lines).
    pub fn clear(&mut self) {
        self.partial = Vec::new();
    }

    fn give_up(&mut self) -> Frame {
        self.clear();
        Frame::TooLong
    }
}

// ANCHOR: seed_framing
/// **The seed's design, kept only for the book: do not use it.** One read is one message.
///
/// Seed 001 does `msg = conn.recv(1024).decode().strip()`: it answers each read, whatever the read
/// happens to contain. A line split across two reads gets two answers, two lines in one read get
/// one answer. [`LineFramer`] is the fix.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedFraming;

impl SeedFraming {
    /// The messages the seed would see in one read: always exactly one, the whole read.
    pub fn messages(&mut self, read: &[u8]) -> Vec<Vec<u8>> {
        vec![read.to_vec()]
    }
}
// ANCHOR_END: seed_framing

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame the framer yields for these reads, in order.
    fn frames(max_line: usize, reads: &[&[u8]]) -> Vec<Frame> {
        let mut framer = LineFramer::new(max_line);
        let mut out = Vec::new();
        for read in reads {
            let mut input = *read;
            while let Some(frame) = framer.next_frame(&mut input) {
                out.push(frame);
            }
        }
        out
    }

    fn line(text: &str) -> Frame {
        Frame::Line(text.as_bytes().to_vec())
    }

    #[test]
    fn a_line_split_across_reads_is_one_line() {
        assert_eq!(frames(64, &[b"hel", b"lo", b"\n"]), vec![line("hello")]);
    }

    #[test]
    fn many_lines_in_one_read_come_out_in_order() {
        let got = frames(64, &[b"one\ntwo\r\n\nthree\nfou", b"r\n"]);
        let want = ["one", "two", "", "three", "four"].map(line).to_vec();
        assert_eq!(got, want);
    }

    #[test]
    fn only_one_carriage_return_is_removed() {
        assert_eq!(frames(64, &[b"a\r\r\n"]), vec![line("a\r")]);
    }

    #[test]
    fn the_limit_counts_bytes_before_the_newline_including_cr() {
        assert_eq!(frames(4, &[b"abcd\n"]), vec![line("abcd")]);
        assert_eq!(frames(4, &[b"abc\r\n"]), vec![line("abc")]);
        assert_eq!(frames(4, &[b"abcde\n"]), vec![Frame::TooLong]);
        assert_eq!(frames(4, &[b"abcd\r\n"]), vec![Frame::TooLong]);
    }

    #[test]
    fn too_long_fires_before_the_newline_arrives() {
        let mut framer = LineFramer::new(4);
        let mut input: &[u8] = b"abcd";
        assert_eq!(framer.next_frame(&mut input), None);
        assert_eq!(framer.buffered(), 4);
        let mut input: &[u8] = b"e";
        assert_eq!(framer.next_frame(&mut input), Some(Frame::TooLong));
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn a_huge_read_without_newline_is_never_buffered() {
        let mut framer = LineFramer::new(16);
        let huge = vec![b'x'; 1 << 20];
        let mut input = huge.as_slice();
        assert_eq!(framer.next_frame(&mut input), Some(Frame::TooLong));
        assert_eq!(framer.buffered(), 0);
        assert!(input.is_empty());
    }

    #[test]
    fn the_rest_of_the_read_after_a_too_long_line_is_left_unread() {
        let mut framer = LineFramer::new(2);
        let mut input: &[u8] = b"ok\ntoo long\nnext\n";
        assert_eq!(framer.next_frame(&mut input), Some(line("ok")));
        assert_eq!(framer.next_frame(&mut input), Some(Frame::TooLong));
        assert_eq!(input, b"next\n");
    }

    #[test]
    fn finish_returns_the_unterminated_tail_as_is() {
        let mut framer = LineFramer::new(64);
        let mut input: &[u8] = b"done\nlast\r";
        assert_eq!(framer.next_frame(&mut input), Some(line("done")));
        assert_eq!(framer.next_frame(&mut input), None);
        assert_eq!(framer.finish(), Some(b"last\r".to_vec()));
        assert_eq!(framer.finish(), None);
    }

    #[test]
    fn a_zero_limit_allows_only_empty_lines() {
        assert_eq!(frames(0, &[b"\n", b"x"]), vec![line(""), Frame::TooLong]);
    }

    /// What an echo server quotes back for each message (`Server got '…'`): the text, trimmed.
    fn quoted(messages: &[Vec<u8>]) -> Vec<String> {
        let text = |m: &Vec<u8>| String::from_utf8_lossy(m).trim().to_string();
        messages.iter().map(text).collect()
    }

    /// Each message the seed's framing finds in these reads.
    fn seed_messages(reads: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut seed = SeedFraming;
        reads.iter().flat_map(|read| seed.messages(read)).collect()
    }

    /// Each line the line framer finds in these reads.
    fn lines(reads: &[&[u8]]) -> Vec<Vec<u8>> {
        let frames = frames(64, reads);
        let line = |frame| match frame {
            Frame::Line(line) => Some(line),
            Frame::TooLong => None,
        };
        frames.into_iter().filter_map(line).collect()
    }

    // ANCHOR: seed_vs_lines
    /// The book's comparison: the same bytes, arriving in two unlucky ways.
    #[test]
    fn the_seed_framing_answers_wrongly_where_the_line_framer_does_not() {
        // One message split across two reads: the seed answers twice, with half a message each.
        let split: [&[u8]; 2] = [b"Hello, ", b"Server!\n"];
        assert_eq!(quoted(&seed_messages(&split)), ["Hello,", "Server!"]);
        assert_eq!(quoted(&lines(&split)), ["Hello, Server!"]);

        // Two messages in one read: the seed answers once, quoting both with a newline inside, and
        // a client waiting for a second reply waits forever.
        let batched: [&[u8]; 1] = [b"first\nsecond\n"];
        assert_eq!(quoted(&seed_messages(&batched)), ["first\nsecond"]);
        assert_eq!(quoted(&lines(&batched)), ["first", "second"]);
    }
    // ANCHOR_END: seed_vs_lines
}
