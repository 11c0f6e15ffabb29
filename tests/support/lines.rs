//! What the server sends, byte for byte, as PROTOCOL.md writes it; and [`show`], which turns
//! bytes into something a failure message can print.

pub const BUSY: &[u8] = b"error: server busy, try again later\n";
pub const SHUTTING_DOWN: &[u8] = b"error: server shutting down\n";
pub const IDLE: &[u8] = b"error: idle timeout\n";
pub const NOT_UTF8: &[u8] = b"error: message is not valid UTF-8\n";

/// The answer to a line longer than `limit`.
pub fn too_long(limit: usize) -> Vec<u8> {
    format!("error: line too long (limit {limit} bytes)\n").into_bytes()
}

/// The greet reply for client `id` (the server closes after it; no newline).
pub fn hello(id: u64) -> Vec<u8> {
    format!("Hello Client {id}, server received your message!").into_bytes()
}

/// An error line as text, without its `\n`: how the schedule model names its replies.
pub fn text(line: &[u8]) -> &str {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    std::str::from_utf8(line).expect("the protocol's lines are ASCII")
}

/// Bytes as a quoted, escaped string, shortened in the middle if long (a 4 MiB line must not
/// become a 16 MiB failure message).
pub fn show(bytes: &[u8]) -> String {
    if bytes.len() <= 160 {
        return format!("\"{}\"", bytes.escape_ascii());
    }
    let (head, tail) = (&bytes[..100], &bytes[bytes.len() - 40..]);
    format!(
        "\"{}\"…({} bytes)…\"{}\"",
        head.escape_ascii(),
        bytes.len() - 140,
        tail.escape_ascii()
    )
}
