//! Echo mode (seed 001): answer every line with a timestamped copy of it.
//!
//! The seed decodes each read as UTF-8, strips it, and replies
//! `[{datetime.now()}] Server got '{msg}'`. We answer lines instead of reads (see
//! [`framing`](super::framing)), and where the seed would crash on bytes that are not UTF-8 (its
//! thread dies with a `UnicodeDecodeError`), we answer with an error line and keep going.

use chrono::NaiveDateTime;

/// Why a line could not be echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotUtf8;

/// The reply to one line (already without its `\n`/`\r\n`), stamped with `wall`.
///
/// The text is trimmed with [`str::trim`], which removes Unicode `White_Space` at both ends, close
/// to Python's `str.strip()`. The timestamp always has six fractional digits; Python's
/// `str(datetime)` drops them when the microseconds are zero, which makes replies harder to parse.
pub fn reply(line: &[u8], wall: NaiveDateTime) -> Result<Vec<u8>, NotUtf8> {
    let text = std::str::from_utf8(line).map_err(|_| NotUtf8)?;
    let stamp = wall.format("%Y-%m-%d %H:%M:%S%.6f");
    Ok(format!("[{stamp}] Server got '{}'\n", text.trim()).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::ManualClock;

    fn reply_text(line: &[u8]) -> String {
        let bytes = reply(line, ManualClock::start_wall()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn the_reply_carries_a_six_digit_timestamp_and_the_trimmed_text() {
        assert_eq!(
            reply_text(b"  hello  "),
            "[2026-11-21 22:33:51.123456] Server got 'hello'\n"
        );
    }

    #[test]
    fn zero_microseconds_still_print_six_digits() {
        let wall = ManualClock::start_wall()
            .date()
            .and_hms_opt(1, 2, 3)
            .unwrap_or_default();
        let reply = reply(b"x", wall).unwrap_or_default();
        assert!(reply.starts_with(b"[2026-11-21 01:02:03.000000] "));
    }

    #[test]
    fn empty_and_whitespace_lines_give_empty_quotes() {
        assert!(reply_text(b"").ends_with("Server got ''\n"));
        assert!(reply_text(b" \t\r ").ends_with("Server got ''\n"));
    }

    #[test]
    fn trim_removes_unicode_white_space_only() {
        // U+3000 ideographic space and U+00A0 no-break space are White_Space; U+200B is not.
        let line = "\u{3000}\u{a0}héllo 日本\u{a0}".as_bytes();
        assert!(reply_text(line).ends_with("Server got 'héllo 日本'\n"));
        let zero_width = "\u{200b}x".as_bytes();
        assert!(reply_text(zero_width).ends_with("Server got '\u{200b}x'\n"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(reply(b"bad \xff", ManualClock::start_wall()), Err(NotUtf8));
        // A truncated multi-byte character is invalid too.
        assert_eq!(
            reply(&"é".as_bytes()[..1], ManualClock::start_wall()),
            Err(NotUtf8)
        );
    }
}
