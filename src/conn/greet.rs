//! Greet mode (seed 000): read one message, answer with the client's id, close.
//!
//! The seed does `client_socket.recv(1024)` once and takes whatever came as the message. We keep
//! that on purpose: seed 000's own client sends its message without a newline and then waits for
//! the reply, so a server that waited for a `\n` would wait forever. The only cleaning is the
//! removal of one trailing line ending, so that `printf 'hi\n' | nc` and the seed's client log the
//! same thing.

/// How many bytes the one read may take: the seed's `recv(1024)`.
pub const MESSAGE_LIMIT: usize = 1024;

/// The message in the first read: at most [`MESSAGE_LIMIT`] bytes, one trailing `\n` or `\r\n`
/// removed. Anything may remain, including nothing at all or bytes that are not UTF-8.
pub fn message(first_read: &[u8]) -> &[u8] {
    let read = first_read.get(..MESSAGE_LIMIT).unwrap_or(first_read);
    read.strip_suffix(b"\r\n")
        .or_else(|| read.strip_suffix(b"\n"))
        .unwrap_or(read)
}

/// The reply line, exactly the seed's (no newline: the seed's client reads once and prints it).
pub fn reply(id: u64) -> Vec<u8> {
    format!("Hello Client {id}, server received your message!").into_bytes()
}

/// Renders a greet message for the log: invalid UTF-8 becomes `U+FFFD`, and control characters
/// (and the Unicode line and paragraph separators) are escaped, so that a hostile message cannot
/// forge extra log lines or move the terminal's cursor.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for c in String::from_utf8_lossy(bytes).chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_ending_is_removed() {
        assert_eq!(message(b"Hello, Server!"), b"Hello, Server!");
        assert_eq!(message(b"hi\n"), b"hi");
        assert_eq!(message(b"hi\r\n"), b"hi");
        assert_eq!(message(b"hi\n\n"), b"hi\n");
        assert_eq!(message(b"hi\r"), b"hi\r");
        assert_eq!(message(b"\n"), b"");
        assert_eq!(message(b"\r\n"), b"");
    }

    #[test]
    fn the_message_is_cut_at_1024_bytes_before_stripping() {
        let mut long = vec![b'a'; MESSAGE_LIMIT - 1];
        long.extend_from_slice(b"\r\n");
        // Byte 1024 is the `\r`; the `\n` lies beyond the limit, so nothing is stripped.
        let expected = &long[..MESSAGE_LIMIT];
        assert_eq!(message(&long), expected);
        assert_eq!(message(&vec![b'b'; 5000]).len(), MESSAGE_LIMIT);
    }

    #[test]
    fn the_reply_is_the_seeds() {
        assert_eq!(
            reply(7),
            b"Hello Client 7, server received your message!".to_vec()
        );
    }

    #[test]
    fn printable_keeps_one_line() {
        assert_eq!(printable(b"Hello, Server!"), "Hello, Server!");
        assert_eq!(printable("héllo ✓".as_bytes()), "héllo ✓");
        assert_eq!(printable(b"a\nb\r\tc\x1b[2J"), "a\\nb\\r\\tc\\u{1b}[2J");
        assert_eq!(printable(b"bad \xff byte"), "bad \u{fffd} byte");
        assert_eq!(printable("x\u{2028}y".as_bytes()), "x\\u{2028}y");
        assert_eq!(printable(b""), "");
    }
}
