//! A model test of one connection: random event sequences against a reference model.
//!
//! `proptest-state-machine` generates sequences of events — bytes arrive (read in random splits
//! that cut lines anywhere), time passes, the client closes, the server shuts down — and applies
//! each one both to a tiny reference model of PROTOCOL.md and to the real [`Conn`]. After every
//! step the actions `Conn` produced must equal the ones the model expects, and a few invariants
//! must hold whatever the model says: no write after `ShutdownWrite`, nothing after `Close`, no
//! line answered twice, a bounded line buffer.
//!
//! The model is written independently of the implementation on purpose: it looks at the stream
//! one byte at a time, where the real framer searches each read for `\n` and copies whole slices;
//! it keeps time in plain milliseconds, where `Conn` keeps `Instant` deadlines. Two different
//! programs agreeing on thousands of random runs is the evidence; when they disagree, proptest
//! shrinks the run to a few steps that show the difference.
//!
//! The test is pure (no threads, no sockets, no clock), so it also runs under `--cfg loom`.
//! `PROPTEST_CASES=10000 cargo test --test conn_model` runs it harder.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{Datelike, TimeDelta, Timelike};
use many_clients::conn::{Action, Conn, ConnConfig, ManualClock, Mode, Report, State};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

const CLIENT_ID: u64 = 42;

/// Bytes that print as a byte string, so shrunk sequences are readable.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// One step of the world around a connection.
///
/// Every step is allowed in every state (one that cannot happen just does nothing), so shrinking
/// may delete any step without invalidating a later one: proptest-state-machine stops shrinking a
/// step for good once a simplification of it breaks a precondition.
#[derive(Clone, Debug)]
enum Step {
    /// The client sends `bytes`, and the server reads them `read_len` bytes at a time (the last
    /// read may be shorter), all at the same instant. Ignored once the client has closed.
    ///
    /// The read size lives in the step, not in separate "read" steps, so that shrinking can make
    /// the bytes shorter without losing the split that makes a bug show.
    Data { read_len: usize, bytes: Bytes },
    /// The client closes its writing side. Ignored if it already has.
    Eof,
    /// Milliseconds pass, then the shell calls `handle_timeout`.
    Tick(u64),
    /// The server begins a graceful shutdown.
    Shutdown,
}

/// Where the connection is, as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for a greeting or for lines.
    Open,
    /// Writing shut down; reading until EOF or this time.
    Draining {
        until_ms: u64,
    },
    Closed,
}

/// The reference model: PROTOCOL.md for one connection, in the plainest terms.
#[derive(Clone)]
struct Model {
    mode: Mode,
    max_line: usize,
    idle_ms: u64,
    drain_ms: u64,
    /// Milliseconds since accept.
    now_ms: u64,
    client_closed: bool,
    phase: Phase,
    /// When the last complete line arrived (or accept): the idle timeout counts from here.
    last_line_ms: u64,
    /// The current echo line so far.
    line: Vec<u8>,
    /// How many `\n` the client has sent: no more lines than that (plus a final one) exist.
    newlines_sent: usize,
    /// What the latest step must make `Conn` do.
    expected: Vec<Action>,
}

impl fmt::Debug for Model {
    // Only the settings: proptest prints the initial state, where the rest is empty anyway.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("mode", &self.mode)
            .field("max_line", &self.max_line)
            .field("idle_ms", &self.idle_ms)
            .field("drain_ms", &self.drain_ms)
            .finish_non_exhaustive()
    }
}

impl Model {
    fn new(mode: Mode, max_line: usize, idle_ms: u64, drain_ms: u64) -> Self {
        Model {
            mode,
            max_line,
            idle_ms,
            drain_ms,
            now_ms: 0,
            client_closed: false,
            phase: Phase::Open,
            last_line_ms: 0,
            line: Vec::new(),
            newlines_sent: 0,
            expected: Vec::new(),
        }
    }

    /// The next deadline in milliseconds, if any.
    fn deadline_ms(&self) -> Option<u64> {
        match self.phase {
            Phase::Open => Some(self.last_line_ms + self.idle_ms),
            Phase::Draining { until_ms } => Some(until_ms),
            Phase::Closed => None,
        }
    }

    /// Deadlines are checked at the start of every event, at most one per event.
    fn check_deadline(&mut self) {
        match self.phase {
            Phase::Open if self.now_ms >= self.last_line_ms + self.idle_ms => {
                self.hang_up(Report::IdleTimeout, "error: idle timeout\n".into());
            }
            Phase::Draining { until_ms } if self.now_ms >= until_ms => self.close(),
            _ => {}
        }
    }

    // ANCHOR: model_receive
    /// One read's worth of bytes.
    fn receive(&mut self, bytes: &[u8]) {
        self.check_deadline();
        if self.phase != Phase::Open {
            return; // draining or closed: input is thrown away
        }
        if self.mode == Mode::Greet {
            let first = &bytes[..bytes.len().min(1024)];
            let message = if first.ends_with(b"\r\n") {
                &first[..first.len() - 2]
            } else if first.ends_with(b"\n") {
                &first[..first.len() - 1]
            } else {
                first
            };
            let report = Report::Greeting(message.to_vec());
            self.expected.push(Action::Report(report));
            let hello = format!("Hello Client {CLIENT_ID}, server received your message!");
            self.expected.push(Action::Send(hello.into_bytes()));
            self.stop_writing();
            return;
        }
        for &byte in bytes {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.last_line_ms = self.now_ms;
                self.answer(&line);
            } else {
                self.line.push(byte);
                if self.line.len() > self.max_line {
                    let error = format!("error: line too long (limit {} bytes)\n", self.max_line);
                    self.hang_up(Report::LineTooLong, error);
                    return;
                }
            }
        }
    }
    // ANCHOR_END: model_receive

    fn answer(&mut self, line: &[u8]) {
        match std::str::from_utf8(line) {
            Ok(text) => {
                let report = Report::Line { len: line.len() };
                self.expected.push(Action::Report(report));
                let reply = format!("[{}] Server got '{}'\n", self.timestamp(), text.trim());
                self.expected.push(Action::Send(reply.into_bytes()));
            }
            Err(_) => {
                self.expected.push(Action::Report(Report::InvalidUtf8));
                let error = b"error: message is not valid UTF-8\n".to_vec();
                self.expected.push(Action::Send(error));
            }
        }
    }

    /// The local time now, written out field by field (not with the implementation's format).
    fn timestamp(&self) -> String {
        let millis = TimeDelta::milliseconds(self.now_ms as i64);
        let t = ManualClock::start_wall() + millis;
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond() / 1000
        )
    }

    fn eof(&mut self) {
        self.check_deadline();
        match self.phase {
            Phase::Open => {
                if self.mode == Mode::Echo && !self.line.is_empty() {
                    let last = std::mem::take(&mut self.line);
                    self.answer(&last); // a final line needs no `\n`, and keeps its `\r`
                }
                self.close();
            }
            Phase::Draining { .. } => self.close(),
            Phase::Closed => {}
        }
    }

    fn shutdown(&mut self) {
        self.check_deadline();
        if self.phase == Phase::Open {
            self.hang_up(Report::ShuttingDown, "error: server shutting down\n".into());
        }
    }

    fn hang_up(&mut self, report: Report, error: String) {
        self.expected.push(Action::Report(report));
        self.expected.push(Action::Send(error.into_bytes()));
        self.stop_writing();
    }

    fn stop_writing(&mut self) {
        if self.drain_ms == 0 {
            // No drain: nothing for a shutdown to come before.
            return self.close();
        }
        self.expected.push(Action::ShutdownWrite);
        self.line.clear();
        self.phase = Phase::Draining {
            until_ms: self.now_ms + self.drain_ms,
        };
    }

    fn close(&mut self) {
        self.expected.push(Action::Close);
        self.line.clear();
        self.phase = Phase::Closed;
    }
}

/// Bytes a client might send: a few pieces, each a line body of some kind with or without an end.
fn sent_bytes(mode: Mode, max_line: usize) -> impl Strategy<Value = Bytes> {
    let invalid = prop::sample::select(vec![&b"\xff"[..], b"\xc3", b"\xe6\x97", b"\x80"]);
    let mut bodies: Vec<(u32, BoxedStrategy<Vec<u8>>)> = vec![
        (6, "[a-z ]{0,6}".prop_map(String::into_bytes).boxed()),
        (1, Just(Vec::new()).boxed()),
        (1, "[ \t]{1,3}".prop_map(String::into_bytes).boxed()),
        (
            2,
            "[é日\u{3000}\u{a0} x]{1,4}"
                .prop_map(String::into_bytes)
                .boxed(),
        ),
        (
            2,
            ("[a-z]{0,3}", invalid)
                .prop_map(|(text, bad)| [text.as_bytes(), bad].concat())
                .boxed(),
        ),
        // Exactly at the limit: allowed with `\n`, one byte too many with `\r\n`.
        (1, Just(vec![b'n'; max_line]).boxed()),
        (1, Just(vec![b'r'; max_line.saturating_sub(1)]).boxed()),
        (
            1,
            (1..=4usize)
                .prop_map(move |extra| vec![b'o'; max_line + extra])
                .boxed(),
        ),
    ];
    if mode == Mode::Greet {
        // Longer than the greeting's 1024-byte read.
        bodies.push((1, (1000..1100usize).prop_map(|n| vec![b'g'; n]).boxed()));
    }
    let ending = prop_oneof![Just(&b"\n"[..]), Just(&b""[..]), Just(&b"\r\n"[..])];
    prop::collection::vec((Union::new_weighted(bodies), ending), 1..4).prop_map(|pieces| {
        let bytes = pieces
            .into_iter()
            .flat_map(|(body, end)| [&body[..], end].concat());
        Bytes(bytes.collect())
    })
}

struct ConnModel;

impl ReferenceStateMachine for ConnModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        let mode = prop_oneof![3 => Just(Mode::Echo), 1 => Just(Mode::Greet)];
        (mode, 2..=16usize, 20..=100u64, 0..=50u64)
            .prop_map(|(mode, max_line, idle_ms, drain_ms)| {
                Model::new(mode, max_line, idle_ms, drain_ms)
            })
            .boxed()
    }

    /// Steps that make a difference now (the others are harmless, but a waste of a run).
    fn transitions(m: &Model) -> BoxedStrategy<Step> {
        let to_deadline = m.deadline_ms().map_or(0, |d| d.saturating_sub(m.now_ms));
        // Mostly short waits, sometimes straight to (or just short of) the next deadline.
        let tick = prop_oneof![
            6 => (0..=10u64).prop_map(Step::Tick),
            1 => Just(Step::Tick(to_deadline.saturating_sub(1))),
            1 => Just(Step::Tick(to_deadline)),
            1 => (0..=to_deadline + 5).prop_map(Step::Tick),
        ];
        // Small reads cut lines anywhere; a big one (more than greet's 1024) takes it all at once.
        let read_len = prop_oneof![3 => 1..=8usize, 1 => Just(2048usize)];
        let data = (read_len, sent_bytes(m.mode, m.max_line))
            .prop_map(|(read_len, bytes)| Step::Data { read_len, bytes });
        // Weights out of about 100 per step: shutdown and EOF are rare because they end the run.
        let mut steps: Vec<(u32, BoxedStrategy<Step>)> =
            vec![(20, tick.boxed()), (2, Just(Step::Shutdown).boxed())];
        if !m.client_closed {
            steps.push((70, data.boxed()));
            steps.push((4, Just(Step::Eof).boxed()));
        }
        Union::new_weighted(steps).boxed()
    }

    fn apply(mut m: Model, step: &Step) -> Model {
        m.expected.clear();
        match step {
            Step::Data { .. } | Step::Eof if m.client_closed => {}
            Step::Data { read_len, bytes } => {
                m.newlines_sent += bytes.0.iter().filter(|&&b| b == b'\n').count();
                for read in bytes.0.chunks((*read_len).max(1)) {
                    m.receive(read);
                }
            }
            Step::Eof => {
                m.client_closed = true;
                m.eof();
            }
            Step::Tick(ms) => {
                m.now_ms += ms;
                m.check_deadline();
            }
            Step::Shutdown => m.shutdown(),
        }
        m
    }
}

/// The real connection, with what the shell would remember about its socket.
struct Driven {
    conn: Conn,
    clock: ManualClock,
    accepted: Instant,
    client_closed: bool,
    write_shut: bool,
    closed: bool,
    /// Lines answered so far, with a reply or an error line.
    answered: usize,
}

impl StateMachineTest for Driven {
    type SystemUnderTest = Self;
    type Reference = ConnModel;

    fn init_test(m: &Model) -> Self {
        let config = ConnConfig {
            mode: m.mode,
            max_line: m.max_line,
            idle_timeout: Duration::from_millis(m.idle_ms),
            drain_timeout: Duration::from_millis(m.drain_ms),
        };
        let clock = ManualClock::new();
        let accepted = clock.now().instant;
        Driven {
            conn: Conn::new(&config, CLIENT_ID, accepted),
            clock,
            accepted,
            client_closed: false,
            write_shut: false,
            closed: false,
            answered: 0,
        }
    }

    // ANCHOR: sut_apply
    fn apply(mut d: Self, m: &Model, step: Step) -> Self {
        let now = d.clock.now();
        match step {
            // A client that has closed cannot send or close again.
            Step::Data { .. } | Step::Eof if d.client_closed => {}
            Step::Data { read_len, bytes } => {
                for read in bytes.0.chunks(read_len.max(1)) {
                    d.conn.handle_data(read, now);
                }
            }
            Step::Eof => {
                d.client_closed = true;
                d.conn.handle_eof(now);
            }
            Step::Tick(ms) => {
                d.clock.advance(Duration::from_millis(ms));
                d.conn.handle_timeout(d.clock.now());
            }
            Step::Shutdown => d.conn.handle_shutdown(now),
        }
        let actions: Vec<Action> = std::iter::from_fn(|| d.conn.poll_action()).collect();
        for action in &actions {
            assert!(!d.closed, "{action:?} after Close");
            match action {
                Action::Send(_) => assert!(!d.write_shut, "Send after ShutdownWrite"),
                Action::ShutdownWrite => d.write_shut = true,
                Action::Close => d.closed = true,
                Action::Report(Report::Line { .. } | Report::InvalidUtf8) => d.answered += 1,
                Action::Report(_) => {}
            }
        }
        assert_eq!(actions, m.expected, "actions differ from the model's");
        d
    }
    // ANCHOR_END: sut_apply

    fn check_invariants(d: &Self, m: &Model) {
        let at = |ms: u64| d.accepted + Duration::from_millis(ms);
        let state = match m.phase {
            Phase::Open if m.mode == Mode::Greet => State::AwaitingMessage,
            Phase::Open => State::ReadingLines,
            Phase::Draining { until_ms } => State::Draining {
                until: at(until_ms),
            },
            Phase::Closed => State::Closed,
        };
        assert_eq!(d.conn.state(), state, "state differs from the model's");
        let deadline = m.deadline_ms().map(at);
        assert_eq!(d.conn.poll_timeout(), deadline, "poll_timeout differs");
        assert_eq!(d.conn.is_closed(), d.closed, "is_closed without Close");
        assert_eq!(d.conn.wants_read(), !d.closed, "wants_read wrong");
        // Memory stays bounded however the bytes arrive.
        let buffered = d.conn.buffered();
        assert!(buffered <= m.max_line + 1, "{buffered} bytes buffered");
        let partial = m.line.len();
        assert_eq!(buffered, partial, "buffered differs from the model's line");
        // No line answered twice: never more answers than lines the client has sent.
        let lines = m.newlines_sent + usize::from(m.client_closed);
        let answered = d.answered;
        assert!(answered <= lines, "{answered} answers to {lines} lines");
    }
}

// ANCHOR: run
prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        .. ProptestConfig::default()
    })]

    #[test]
    fn conn_matches_the_model(sequential 1..50 => Driven);
}
// ANCHOR_END: run
