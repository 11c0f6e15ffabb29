//! Timers, draining, shutdown and closing, in both modes (PROTOCOL.md "Writing and closing",
//! the idle-timeout row of "Limits", and "Graceful shutdown").

use super::*;

const MS: Duration = Duration::from_millis(1);
const IDLE_LINE: &str = "error: idle timeout\n";
const SHUTDOWN_LINE: &str = "error: server shutting down\n";

// ANCHOR: idle_deadline
#[test]
fn the_idle_timeout_fires_exactly_at_its_deadline() {
    let mut h = Harness::echo();
    assert_eq!(h.conn.poll_timeout(), Some(h.at(IDLE)));
    assert_eq!(h.wait(IDLE - MS), vec![]);
    assert_eq!(h.wait(MS), refused(Report::IdleTimeout, IDLE_LINE));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(DRAIN)));
}
// ANCHOR_END: idle_deadline

#[test]
fn trickling_bytes_does_not_reset_the_idle_timeout() {
    let mut h = Harness::echo();
    for _ in 0..59 {
        h.clock.advance(Duration::from_secs(1));
        assert_eq!(h.data(b"x"), vec![]);
    }
    assert_eq!(
        h.wait(Duration::from_secs(1)),
        refused(Report::IdleTimeout, IDLE_LINE)
    );
}

#[test]
fn a_complete_line_resets_the_idle_timeout() {
    let mut h = Harness::echo();
    h.clock.advance(Duration::from_secs(30));
    h.data(b"alive\n");
    assert_eq!(h.conn.poll_timeout(), Some(h.at(IDLE)));
    assert_eq!(h.wait(IDLE - MS), vec![]);
    assert_eq!(h.wait(MS), refused(Report::IdleTimeout, IDLE_LINE));
}

#[test]
fn an_invalid_utf8_line_is_a_complete_line_for_the_idle_timeout() {
    let mut h = Harness::echo();
    h.clock.advance(Duration::from_secs(30));
    h.data(b"\xff\n");
    assert_eq!(h.conn.poll_timeout(), Some(h.at(IDLE)));
}

#[test]
fn data_arriving_after_the_deadline_does_not_beat_the_timeout() {
    let mut h = Harness::echo();
    h.clock.advance(IDLE);
    assert_eq!(
        h.data(b"too late\n"),
        refused(Report::IdleTimeout, IDLE_LINE)
    );
}

#[test]
fn an_early_handle_timeout_is_harmless() {
    let mut h = Harness::echo();
    h.data(b"part");
    assert_eq!(h.wait(Duration::ZERO), vec![]);
    assert_eq!(h.wait(MS), vec![]);
    assert_eq!(h.conn.buffered(), 4);
    assert_eq!(h.conn.state(), State::ReadingLines);
}

#[test]
fn draining_ends_on_eof() {
    let mut h = Harness::echo();
    h.data(b"part");
    assert_eq!(
        h.conn.discarded(),
        0,
        "a partial line is kept, not discarded"
    );
    h.wait(IDLE);
    assert_eq!(h.data(b"discarded\n"), vec![]);
    assert_eq!(h.data(b"more"), vec![]);
    assert_eq!(
        h.conn.discarded(),
        14,
        "what came while draining is counted"
    );
    assert_eq!(h.eof(), vec![Action::Close]);
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn draining_ends_at_the_drain_timeout() {
    let mut h = Harness::echo();
    h.wait(IDLE);
    assert_eq!(h.conn.poll_timeout(), Some(h.at(DRAIN)));
    assert_eq!(h.wait(DRAIN - MS), vec![]);
    assert_eq!(h.wait(MS), vec![Action::Close]);
    assert_eq!(h.conn.state(), State::Closed);
}

#[test]
fn a_zero_drain_timeout_closes_at_once_without_shutting_down_first() {
    let mut h = Harness::new(ConnConfig {
        drain_timeout: Duration::ZERO,
        ..ConnConfig::new(Mode::Greet)
    });
    assert_eq!(
        h.data(b"hi"),
        vec![
            Action::Report(Report::Greeting(b"hi".to_vec())),
            send("Hello Client 7, server received your message!"),
            Action::Close,
        ]
    );
    assert_eq!(h.conn.state(), State::Closed);
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn absurd_timeouts_do_not_panic() {
    let mut h = Harness::new(ConnConfig {
        idle_timeout: Duration::MAX,
        drain_timeout: Duration::MAX,
        ..ConnConfig::new(Mode::Echo)
    });
    assert!(h.conn.poll_timeout() > Some(h.at(Duration::from_secs(1 << 30))));
    assert_eq!(h.shutdown(), refused(Report::ShuttingDown, SHUTDOWN_LINE));
    assert_eq!(h.wait(Duration::from_secs(1 << 30)), vec![]);
}

#[test]
fn shutdown_while_awaiting_a_greeting_sends_the_error() {
    let mut h = Harness::greet();
    assert_eq!(h.shutdown(), refused(Report::ShuttingDown, SHUTDOWN_LINE));
    assert_eq!(h.data(b"late"), vec![]);
}

#[test]
fn shutdown_while_reading_lines_drops_the_partial_line() {
    let mut h = Harness::echo();
    let answered = h.data(b"done\npart");
    assert_eq!(answered, h.got("done", 4).to_vec());
    assert_eq!(h.shutdown(), refused(Report::ShuttingDown, SHUTDOWN_LINE));
    assert_eq!(h.conn.buffered(), 0);
    assert_eq!(h.data(b"ial\nnext\n"), vec![]);
    assert_eq!(h.eof(), vec![Action::Close]);
}

#[test]
fn shutdown_while_draining_just_goes_on_draining() {
    let mut h = Harness::greet();
    h.data(b"hi");
    let draining = h.conn.state();
    assert_eq!(h.shutdown(), vec![]);
    assert_eq!(h.conn.state(), draining);
    assert_eq!(h.wait(DRAIN), vec![Action::Close]);
}

#[test]
fn shutdown_after_close_does_nothing() {
    let mut h = Harness::echo();
    h.eof();
    assert_eq!(h.shutdown(), vec![]);
}

#[test]
fn shutdown_after_the_idle_deadline_reports_the_timeout_instead() {
    let mut h = Harness::echo();
    h.clock.advance(IDLE);
    assert_eq!(h.shutdown(), refused(Report::IdleTimeout, IDLE_LINE));
}

#[test]
fn nothing_at_all_happens_after_close() {
    let mut h = Harness::echo();
    assert_eq!(h.eof(), vec![Action::Close]);
    assert_eq!(h.data(b"hello\n"), vec![]);
    assert_eq!(h.eof(), vec![]);
    assert_eq!(h.shutdown(), vec![]);
    assert_eq!(h.wait(IDLE + DRAIN), vec![]);
    assert_eq!(h.conn.poll_timeout(), None);
    assert!(!h.conn.wants_read());
}

#[test]
fn poll_timeout_follows_the_state() {
    let mut h = Harness::echo();
    assert_eq!(h.conn.poll_timeout(), Some(h.at(IDLE)));
    h.clock.advance(Duration::from_secs(5));
    h.data(b"line\n");
    assert_eq!(h.conn.poll_timeout(), Some(h.at(IDLE)));
    h.clock.advance(Duration::from_secs(5));
    h.shutdown();
    assert_eq!(h.conn.state(), State::Draining { until: h.at(DRAIN) });
    assert_eq!(h.conn.poll_timeout(), Some(h.at(DRAIN)));
    h.eof();
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn the_connection_keeps_its_id_and_mode() {
    let h = Harness::greet();
    assert_eq!((h.conn.id(), h.conn.mode()), (7, Mode::Greet));
}
