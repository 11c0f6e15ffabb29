//! Greet mode: one message, one reply, then the drain (PROTOCOL.md "Greet mode").

use super::*;

const HELLO: &str = "Hello Client 7, server received your message!";

/// The actions that answer a greeting `message`.
fn greeted(message: &[u8]) -> Vec<Action> {
    vec![
        Action::Report(Report::Greeting(message.to_vec())),
        send(HELLO),
        Action::ShutdownWrite,
    ]
}

#[test]
fn the_first_read_is_the_message_and_is_answered_with_the_id() {
    let mut h = Harness::greet();
    assert_eq!(h.conn.state(), State::AwaitingMessage);
    assert_eq!(h.data(b"Hello, Server!"), greeted(b"Hello, Server!"));
    assert_eq!(h.conn.state(), State::Draining { until: h.at(DRAIN) });
    assert!(h.conn.wants_read());
}

#[test]
fn one_trailing_line_ending_is_stripped() {
    assert_eq!(Harness::greet().data(b"hi\r\n"), greeted(b"hi"));
    assert_eq!(Harness::greet().data(b"hi\n\n"), greeted(b"hi\n"));
}

#[test]
fn an_empty_message_is_still_a_message() {
    assert_eq!(Harness::greet().data(b"\n"), greeted(b""));
}

/// No bytes is not a message: `handle_data` documents that an empty slice changes nothing (a
/// shell that reads 0 bytes reports EOF instead). The message is the first read with bytes.
#[test]
fn an_empty_read_is_not_the_message() {
    let mut h = Harness::greet();
    assert_eq!(h.data(b""), vec![]);
    assert_eq!(h.conn.state(), State::AwaitingMessage);
    assert_eq!(h.data(b"hi"), greeted(b"hi"));
}

#[test]
fn the_message_need_not_be_utf8() {
    assert_eq!(Harness::greet().data(b"\xff\xfe"), greeted(b"\xff\xfe"));
}

#[test]
fn more_than_1024_bytes_are_cut_to_1024() {
    let mut h = Harness::greet();
    assert_eq!(h.conn.read_buf_len(), 1024);
    let long = vec![b'g'; 3000];
    assert_eq!(h.data(&long), greeted(&long[..1024]));
}

#[test]
fn only_the_first_read_counts() {
    let mut h = Harness::greet();
    assert_eq!(h.data(b"Hel"), greeted(b"Hel"));
    assert_eq!(h.data(b"lo\n"), vec![]);
}

#[test]
fn eof_without_data_closes_without_a_reply() {
    let mut h = Harness::greet();
    assert_eq!(h.eof(), vec![Action::Close]);
    assert!(h.conn.is_closed());
}

#[test]
fn after_the_reply_eof_closes() {
    let mut h = Harness::greet();
    h.data(b"hi");
    assert_eq!(h.eof(), vec![Action::Close]);
}

#[test]
fn the_drain_ends_at_drain_timeout() {
    let mut h = Harness::greet();
    h.data(b"hi");
    assert_eq!(h.wait(DRAIN - Duration::from_millis(1)), vec![]);
    assert_eq!(h.data(b"ignored"), vec![]);
    assert_eq!(h.wait(Duration::from_millis(1)), vec![Action::Close]);
}

#[test]
fn greet_waits_idle_timeout_for_its_message() {
    let mut h = Harness::greet();
    assert_eq!(h.conn.poll_timeout(), Some(h.at(IDLE)));
    assert_eq!(h.wait(IDLE - Duration::from_millis(1)), vec![]);
    let got = h.wait(Duration::from_millis(1));
    assert_eq!(got, refused(Report::IdleTimeout, "error: idle timeout\n"));
}

#[test]
fn printable_is_reexported_for_the_log() {
    assert_eq!(printable(b"two\nlines"), "two\\nlines");
}
