//! Echo mode: framing, trimming, limits and bad input, as PROTOCOL.md "Echo mode" and "Limits".

use super::*;

#[test]
fn a_line_split_across_reads_is_answered_once_when_complete() {
    let mut h = Harness::echo();
    assert_eq!(h.data(b"Hel"), vec![]);
    assert_eq!(h.data(b"lo, Ser"), vec![]);
    assert_eq!(h.conn.buffered(), 10);
    assert_eq!(h.data(b"ver!\n"), h.got("Hello, Server!", 14).to_vec());
    assert_eq!(h.conn.buffered(), 0);
}

#[test]
fn many_lines_in_one_read_are_answered_in_order() {
    let mut h = Harness::echo();
    let got = h.data(b"one\ntwo\nthree\nfo");
    let want = [h.got("one", 3), h.got("two", 3), h.got("three", 5)].concat();
    assert_eq!(got, want);
    assert_eq!(h.data(b"ur\n"), h.got("four", 4).to_vec());
}

#[test]
fn crlf_ends_a_line_too() {
    let mut h = Harness::echo();
    let got = h.data(b"dos\r\nunix\n");
    assert_eq!(got, [h.got("dos", 3), h.got("unix", 4)].concat());
    // A `\r\n` split between reads is still one line ending.
    assert_eq!(h.data(b"split\r"), vec![]);
    assert_eq!(h.data(b"\n"), h.got("split", 5).to_vec());
}

#[test]
fn empty_and_whitespace_only_lines_are_answered_with_empty_quotes() {
    let mut h = Harness::echo();
    let got = h.data(b"\n \t \r\n");
    assert_eq!(got, [h.got("", 0), h.got("", 3)].concat());
}

#[test]
fn unicode_white_space_is_trimmed_and_unicode_text_kept() {
    let mut h = Harness::echo();
    let line = "\u{3000} grüße, 世界 \u{a0}\n";
    let len = line.len() - 1;
    assert_eq!(h.data(line.as_bytes()), h.got("grüße, 世界", len).to_vec());
}

#[test]
fn a_multibyte_character_split_across_reads_is_fine() {
    let mut h = Harness::echo();
    let bytes = "é\n".as_bytes();
    assert_eq!(h.data(&bytes[..1]), vec![]);
    assert_eq!(h.data(&bytes[1..]), h.got("é", 2).to_vec());
}

#[test]
fn a_final_unterminated_line_is_answered_at_eof_then_closed() {
    let mut h = Harness::echo();
    assert_eq!(h.data(b"first\nlast"), h.got("first", 5).to_vec());
    let mut want = h.got("last", 4).to_vec();
    want.push(Action::Close);
    assert_eq!(h.eof(), want);
    assert!(h.conn.is_closed());
    assert!(!h.conn.wants_read());
}

#[test]
fn eof_with_nothing_buffered_just_closes() {
    let mut h = Harness::echo();
    assert_eq!(h.data(b"only\n"), h.got("only", 4).to_vec());
    assert_eq!(h.eof(), vec![Action::Close]);
}

#[test]
fn exactly_max_line_bytes_are_allowed_with_and_without_cr() {
    let mut h = Harness::echo_with_max_line(4);
    let got = h.data(b"abcd\nabc\r\n");
    assert_eq!(got, [h.got("abcd", 4), h.got("abc", 3)].concat());
    assert_eq!(h.conn.state(), State::ReadingLines);
}

#[test]
fn max_line_plus_one_is_too_long() {
    let mut h = Harness::echo_with_max_line(4);
    let err = "error: line too long (limit 4 bytes)\n";
    assert_eq!(h.data(b"abcde\n"), refused(Report::LineTooLong, err));
    assert_eq!(h.conn.state(), State::Draining { until: h.at(DRAIN) });
}

#[test]
fn max_line_plus_one_counts_the_cr() {
    let mut h = Harness::echo_with_max_line(4);
    let err = "error: line too long (limit 4 bytes)\n";
    assert_eq!(h.data(b"abcd\r\n"), refused(Report::LineTooLong, err));
}

#[test]
fn too_long_fires_as_soon_as_the_limit_is_passed_without_a_newline() {
    let mut h = Harness::echo_with_max_line(8);
    assert_eq!(h.data(b"12345678"), vec![]);
    assert_eq!(h.conn.buffered(), 8);
    let err = "error: line too long (limit 8 bytes)\n";
    assert_eq!(h.data(b"9"), refused(Report::LineTooLong, err));
    assert_eq!(h.conn.buffered(), 0);
}

#[test]
fn a_huge_read_is_refused_without_being_buffered() {
    let mut h = Harness::echo();
    let huge = vec![b'x'; 10 * ConnConfig::DEFAULT_MAX_LINE];
    let got = h.data(&huge);
    assert_eq!(got.first(), Some(&Action::Report(Report::LineTooLong)));
    assert_eq!(h.conn.buffered(), 0);
}

#[test]
fn a_too_long_final_line_is_refused_before_eof_and_not_answered_at_eof() {
    let mut h = Harness::echo_with_max_line(3);
    let err = "error: line too long (limit 3 bytes)\n";
    assert_eq!(h.data(b"abcd"), refused(Report::LineTooLong, err));
    assert_eq!(h.eof(), vec![Action::Close]);
}

#[test]
fn lines_before_a_too_long_one_are_answered_and_nothing_after_it() {
    let mut h = Harness::echo_with_max_line(4);
    let got = h.data(b"ok\nfine\ntoolong\nafter\n");
    let mut want = [h.got("ok", 2), h.got("fine", 4)].concat();
    want.extend(refused(
        Report::LineTooLong,
        "error: line too long (limit 4 bytes)\n",
    ));
    assert_eq!(got, want);
    assert_eq!(h.data(b"more\n"), vec![]);
}

#[test]
fn invalid_utf8_gets_an_error_and_the_connection_stays_open() {
    let mut h = Harness::echo();
    let got = h.data(b"before\nbad \xff\xfe\nafter\n");
    let mut want = h.got("before", 6).to_vec();
    want.push(Action::Report(Report::InvalidUtf8));
    want.push(send("error: message is not valid UTF-8\n"));
    want.extend(h.got("after", 5));
    assert_eq!(got, want);
    assert_eq!(h.conn.state(), State::ReadingLines);
}

#[test]
fn an_invalid_final_line_gets_its_error_before_the_close() {
    let mut h = Harness::echo();
    assert_eq!(h.data(b"\xc3"), vec![]);
    let want = vec![
        Action::Report(Report::InvalidUtf8),
        send("error: message is not valid UTF-8\n"),
        Action::Close,
    ];
    assert_eq!(h.eof(), want);
}

#[test]
fn a_zero_max_line_allows_only_empty_lines() {
    let mut h = Harness::echo_with_max_line(0);
    assert_eq!(h.data(b"\n"), h.got("", 0).to_vec());
    let err = "error: line too long (limit 0 bytes)\n";
    assert_eq!(h.data(b"x"), refused(Report::LineTooLong, err));
}

#[test]
fn the_timestamp_is_the_wall_time_of_the_read() {
    let mut h = Harness::echo();
    h.wait(Duration::from_millis(1500));
    let got = h.data(b"hi\n");
    let want = send("[2026-11-21 22:33:52.623456] Server got 'hi'\n");
    assert_eq!(got.get(1), Some(&want));
}

#[test]
fn echo_reads_8_kib_at_a_time() {
    // The number, not `ECHO_READ_LEN`: compared with itself, the constant could be anything.
    assert_eq!(Harness::echo().conn.read_buf_len(), 8192);
}
