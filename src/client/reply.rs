//! Checking replies: pure functions, no I/O, so they are easy to test and reuse.
//!
//! A load test is only as good as its checks: a server that answers quickly but wrongly must fail.
//! These functions know the exact shapes PROTOCOL.md promises and say precisely what differs.

/// Every line the server uses to refuse or cut a client starts with this.
pub const ERROR_PREFIX: &str = "error: ";

/// True for the server's rejection lines (`error: server busy, try again later`, ...).
pub fn is_error_line(line: &str) -> bool {
    line.starts_with(ERROR_PREFIX)
}

/// Extracts the id from `Hello Client {id}, server received your message!`.
///
/// The id must be written the way the server writes numbers: decimal digits, no sign, no leading
/// zeros. Anything else (including an `error: ` line) gives `None`.
pub fn parse_greet_id(reply: &str) -> Option<u64> {
    let id = reply
        .strip_prefix("Hello Client ")?
        .strip_suffix(", server received your message!")?;
    let canonical = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    if canonical { id.parse().ok() } else { None }
}

/// Checks an echo reply line against the message that was sent.
///
/// The line must be exactly `[YYYY-MM-DD HH:MM:SS.ffffff] Server got '{msg}'` (a trailing `\n` is
/// allowed), where `msg` is `sent_msg.trim()` and the fraction has six digits. The error says what
/// is wrong, for the stress client's failure report. (Python prints no fraction when the
/// microseconds happen to be exactly 0, so against the seed server about one reply in a million
/// fails this check; our protocol always prints six digits.)
pub fn check_echo_reply(reply_line: &str, sent_msg: &str) -> Result<(), String> {
    let line = reply_line.strip_suffix('\n').unwrap_or(reply_line);
    if is_error_line(line) {
        return Err(format!("the server answered {line:?}"));
    }
    let shape = || format!("{line:?} is not `[YYYY-MM-DD HH:MM:SS.ffffff] Server got '...'`");
    let rest = line.strip_prefix('[').ok_or_else(shape)?;
    let (stamp, rest) = rest.split_at_checked(26).ok_or_else(shape)?;
    check_timestamp(stamp).map_err(|why| format!("bad timestamp {stamp:?}: {why}"))?;
    let echoed = rest
        .strip_prefix("] Server got '")
        .and_then(|r| r.strip_suffix('\''))
        .ok_or_else(shape)?;
    let expected = sent_msg.trim();
    if echoed == expected {
        Ok(())
    } else {
        Err(format!(
            "the server echoed {echoed:?}, expected {expected:?}"
        ))
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` with plausible field ranges (a leap second is allowed).
fn check_timestamp(stamp: &str) -> Result<(), &'static str> {
    const PATTERN: &[u8] = b"dddd-dd-dd dd:dd:dd.dddddd";
    let bytes = stamp.as_bytes();
    let shape_ok = bytes.len() == PATTERN.len()
        && bytes.iter().zip(PATTERN).all(|(&b, &p)| match p {
            b'd' => b.is_ascii_digit(),
            _ => b == p,
        });
    if !shape_ok {
        return Err("expected the form YYYY-MM-DD HH:MM:SS.ffffff");
    }
    let field = |range: std::ops::Range<usize>| stamp[range].parse::<u32>().unwrap_or(u32::MAX);
    let in_range = (1..=12).contains(&field(5..7))
        && (1..=31).contains(&field(8..10))
        && field(11..13) <= 23
        && field(14..16) <= 59
        && field(17..19) <= 60;
    if in_range {
        Ok(())
    } else {
        Err("a field is out of range")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: &str = "2026-11-21 22:33:51.123456";

    #[test]
    fn error_lines_are_recognised_by_their_prefix() {
        assert!(is_error_line("error: idle timeout"));
        assert!(!is_error_line("Error: idle timeout"));
    }

    #[test]
    fn greet_ids_are_parsed_strictly() {
        let reply = |id: &str| format!("Hello Client {id}, server received your message!");
        assert_eq!(parse_greet_id(&reply("1")), Some(1));
        assert_eq!(
            parse_greet_id(&reply("18446744073709551615")),
            Some(u64::MAX)
        );
        for bad in ["", "+1", "-1", "01", "1 ", "x", "18446744073709551616"] {
            assert_eq!(parse_greet_id(&reply(bad)), None, "{bad:?}");
        }
        assert_eq!(
            parse_greet_id("Hello Client 1, server received your message!\n"),
            None
        );
        assert_eq!(parse_greet_id("error: server busy, try again later"), None);
    }

    #[test]
    fn echo_replies_are_checked_exactly() {
        let ok = format!("[{STAMP}] Server got 'hi there'");
        assert_eq!(check_echo_reply(&ok, "hi there"), Ok(()));
        assert_eq!(
            check_echo_reply(&format!("{ok}\n"), "  hi there \t"),
            Ok(())
        );
        let empty = format!("[{STAMP}] Server got ''");
        assert_eq!(
            check_echo_reply(&empty, " \u{3000} "),
            Ok(()),
            "str::trim is Unicode-aware"
        );
        assert!(
            check_echo_reply(&ok, "hi")
                .unwrap_err()
                .contains("expected \"hi\"")
        );
        for bad in [
            "[2026-11-21 22:33:51] Server got 'hi there'".to_owned(),
            "[2026-11-21 22:33:51.12345] Server got 'hi there'".to_owned(),
            "[2026-13-21 22:33:51.123456] Server got 'hi there'".to_owned(),
            "[2026-11-21T22:33:51.123456] Server got 'hi there'".to_owned(),
            format!("[{STAMP}] Server got 'hi there"),
            format!("[{STAMP}] server got 'hi there'"),
            format!("[{STAMP}]  Server got 'hi there'"),
            format!(" [{STAMP}] Server got 'hi there'"),
            "[é".to_owned(),
            String::new(),
        ] {
            assert!(check_echo_reply(&bad, "hi there").is_err(), "{bad:?}");
        }
        let busy = check_echo_reply("error: server busy, try again later\n", "x").unwrap_err();
        assert!(busy.contains("server busy"), "{busy}");
    }
}
