//! Unit tests for [`Conn`], one protocol rule each, on a [`ManualClock`]: no sockets, no sleeps.

mod echo;
mod greet;
mod lifecycle;

use std::time::Duration;

use super::*;

const IDLE: Duration = Duration::from_secs(60);
const DRAIN: Duration = Duration::from_secs(1);

/// A connection, its clock, and helpers that run one event and return every action it produced.
struct Harness {
    conn: Conn,
    clock: ManualClock,
}

impl Harness {
    fn new(config: ConnConfig) -> Self {
        let clock = ManualClock::new();
        Harness {
            conn: Conn::new(&config, 7, clock.now().instant),
            clock,
        }
    }

    fn echo() -> Self {
        Self::new(ConnConfig::new(Mode::Echo))
    }

    fn echo_with_max_line(max_line: usize) -> Self {
        Self::new(ConnConfig {
            max_line,
            ..ConnConfig::new(Mode::Echo)
        })
    }

    fn greet() -> Self {
        Self::new(ConnConfig::new(Mode::Greet))
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.conn.poll_action()).collect()
    }

    fn data(&mut self, bytes: &[u8]) -> Vec<Action> {
        self.conn.handle_data(bytes, self.clock.now());
        self.actions()
    }

    fn eof(&mut self) -> Vec<Action> {
        self.conn.handle_eof(self.clock.now());
        self.actions()
    }

    fn shutdown(&mut self) -> Vec<Action> {
        self.conn.handle_shutdown(self.clock.now());
        self.actions()
    }

    /// Lets `by` pass, then tells the connection (as the shell does when its read times out).
    fn wait(&mut self, by: Duration) -> Vec<Action> {
        self.clock.advance(by);
        self.conn.handle_timeout(self.clock.now());
        self.actions()
    }

    /// The echo reply to `msg` at the current time, with its report.
    fn got(&self, msg: &str, len: usize) -> [Action; 2] {
        let stamp = self.clock.now().wall.format("%Y-%m-%d %H:%M:%S%.6f");
        [
            Action::Report(Report::Line { len }),
            send(&format!("[{stamp}] Server got '{msg}'\n")),
        ]
    }

    /// The deadline `from_now` after the current time.
    fn at(&self, from_now: Duration) -> Instant {
        self.clock.now().instant + from_now
    }
}

fn send(text: &str) -> Action {
    Action::Send(text.as_bytes().to_vec())
}

/// The actions that end a conversation with an error line.
fn refused(report: Report, line: &str) -> Vec<Action> {
    vec![Action::Report(report), send(line), Action::ShutdownWrite]
}

#[test]
fn actions_print_their_bytes_as_text() {
    let shown = format!(
        "{:?}",
        refused(Report::IdleTimeout, "error: idle timeout\n")
    );
    assert_eq!(
        shown,
        r#"[Report(IdleTimeout), Send(b"error: idle timeout\n"), ShutdownWrite]"#
    );
    let greeting = Action::Report(Report::Greeting(b"hi\xff".to_vec()));
    assert_eq!(format!("{greeting:?}"), r#"Report(Greeting(b"hi\xff"))"#);
    assert_eq!(format!("{:?}", Report::Line { len: 3 }), "Line { len: 3 }");
}

/// `--mode` parses with `FromStr`: each mode's own name, exactly (names are case-sensitive).
#[test]
fn every_mode_parses_from_its_name() {
    for mode in [Mode::Greet, Mode::Echo] {
        assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
    }
    assert_eq!("greet".parse::<Mode>(), Ok(Mode::Greet));
    assert!("Echo".parse::<Mode>().is_err());
}
