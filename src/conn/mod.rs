//! One connection's protocol as a state machine that does no I/O ("sans-IO").
//!
//! The connection never touches a socket, a thread, a lock or a clock. The I/O shell (in
//! `server/`) owns the socket and tells a [`Conn`] what happened, through the `handle_*` methods:
//! bytes arrived, the peer closed, a deadline passed, the server is shutting down. The [`Conn`]
//! answers with [`Action`]s (send this line, shut down writing, close, report this to the log),
//! which the shell collects with [`Conn::poll_action`] and carries out. Time is always an argument
//! ([`Now`]), and [`Conn::poll_timeout`] tells the shell how long it may block before it must call
//! [`Conn::handle_timeout`].
//!
//! Why split it this way (the design comes from `quinn-proto`, a QUIC implementation):
//! * every protocol rule lives in one place that a test can drive in microseconds, without ports,
//!   threads or sleeps, through any sequence of events, including ones a real network makes rare;
//! * a model test (`tests/conn_model.rs`) can compare it, step by step, with a tiny reference
//!   model of the protocol;
//! * the shell stays small and knows nothing of lines, greetings or timeouts.
//!
//! The states, and what moves a connection between them:
//!
//! ```text
//!  greet: AwaitingMessage ──first read──▶ reply, ShutdownWrite ──┐
//!  echo:  ReadingLines ─┬─ each line ──▶ reply (stays)           │
//!                       └─ line too long ──▶ error, ShutdownWrite┤
//!  either: idle timeout / shutdown ──▶ error, ShutdownWrite ─────┤
//!                                                                ▼
//!                         Draining { until } ── EOF or `until` passed ──▶ Closed
//!  either, on EOF while reading: answer a final unterminated line (echo), then ─▶ Closed
//! ```
//!
//! Draining exists because closing a socket that still has unread input makes the kernel send a
//! reset, and a reset can destroy the reply the client has not read yet. So after the last reply
//! the connection shuts down its writing side (the client sees EOF) and keeps reading, discarding,
//! until the client closes too or `drain_timeout` passes.

mod clock;
pub mod echo;
pub mod framing;
pub mod greet;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use clock::later;
pub use clock::{Clock, ManualClock, Now, SystemClock};
use framing::{Frame, LineFramer};
pub use greet::printable;

/// Which seed's protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Seed 000: one message, one reply with the client's id, close.
    Greet,
    /// Seed 001: every line answered with a timestamped echo, until the client closes.
    Echo,
}

impl Mode {
    /// The seeds' hard-coded addresses: 65434 for greet, 5000 for echo.
    pub fn default_addr(self) -> &'static str {
        match self {
            Mode::Greet => "127.0.0.1:65434",
            Mode::Echo => "127.0.0.1:5000",
        }
    }

    /// The lower-case name used on command lines and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Greet => "greet",
            Mode::Echo => "echo",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "greet" => Ok(Mode::Greet),
            "echo" => Ok(Mode::Echo),
            _ => Err(format!("unknown mode {s:?} (expected greet or echo)")),
        }
    }
}

/// The limits of one connection; the server copies them from its command line.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    /// Which protocol to speak.
    pub mode: Mode,
    /// Longest echo line, in bytes before the `\n` (a `\r` included).
    pub max_line: usize,
    /// How long a connection may go without a complete message before it is cut.
    pub idle_timeout: Duration,
    /// How long to keep reading (and discarding) after shutting down writing.
    pub drain_timeout: Duration,
}

impl ConnConfig {
    /// `--max-line` default.
    pub const DEFAULT_MAX_LINE: usize = 65536;
    /// `--idle-timeout` default.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The drain limit from PROTOCOL.md ("at most 1 second").
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

    /// The protocol's defaults for `mode`.
    pub fn new(mode: Mode) -> Self {
        ConnConfig {
            mode,
            max_line: Self::DEFAULT_MAX_LINE,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// How many bytes an echo connection asks the shell to read at a time. Any size is correct (the
/// framer copes with lines split across reads); 8 KiB keeps small lines to one read each.
pub const ECHO_READ_LEN: usize = 8 * 1024;

/// An echo connection's first read buffer: most lines fit (the seeds' are under 40 bytes), and
/// an idle connection holds only this much (`benches/idle_memory.rs`).
pub const ECHO_FIRST_READ_LEN: usize = 256;

/// Something the shell must do, in the order [`Conn::poll_action`] returns them.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes, with a single write: exactly one reply line or one error line.
    Send(Vec<u8>),
    /// Shut down the writing side (the client sees EOF after the last reply); keep reading.
    ShutdownWrite,
    /// Close the socket. Nothing follows.
    Close,
    /// Not for the socket: something worth a log line or a timeline entry. A `Report` comes just
    /// before the `Send` it explains.
    Report(Report),
}

/// What a connection tells the log.
#[derive(Clone, PartialEq, Eq)]
pub enum Report {
    /// The greet message as received, after stripping; render it with [`printable`].
    Greeting(Vec<u8>),
    /// One echo line answered; `len` is its length in bytes without the `\n` or `\r\n` (a final
    /// line answered at EOF has no ending, so all its bytes count).
    Line { len: usize },
    /// An echo line went over `max_line`; the connection is being closed.
    LineTooLong,
    /// An echo line was not UTF-8; it got an error line and the connection stays open.
    InvalidUtf8,
    /// No complete message within `idle_timeout`; the connection is being closed.
    IdleTimeout,
    /// The server is shutting down and this connection was waiting for input.
    ShuttingDown,
    /// The connection limit was reached; this connection is refused (see [`Conn::busy`]).
    Busy,
}

// `Debug` by hand so that bytes print as text (`Send(b"error: idle timeout\n")`), not as a list
// of numbers: failing tests and debug logs stay readable.
impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send(bytes) => write!(f, "Send(b\"{}\")", bytes.escape_ascii()),
            Action::ShutdownWrite => f.write_str("ShutdownWrite"),
            Action::Close => f.write_str("Close"),
            Action::Report(report) => write!(f, "Report({report:?})"),
        }
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Greeting(bytes) => write!(f, "Greeting(b\"{}\")", bytes.escape_ascii()),
            Report::Line { len } => write!(f, "Line {{ len: {len} }}"),
            Report::LineTooLong => f.write_str("LineTooLong"),
            Report::InvalidUtf8 => f.write_str("InvalidUtf8"),
            Report::IdleTimeout => f.write_str("IdleTimeout"),
            Report::ShuttingDown => f.write_str("ShuttingDown"),
            Report::Busy => f.write_str("Busy"),
        }
    }
}

// ANCHOR: state
/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Greet mode: no data yet.
    AwaitingMessage,
    /// Echo mode: answering lines as they complete.
    ReadingLines,
    /// Writing is shut down; reading and discarding until EOF or `until`.
    Draining { until: Instant },
    /// Done: the shell closes the socket and drops the connection.
    Closed,
}
// ANCHOR_END: state

// The error lines, each sent with one write.
const IDLE_TIMEOUT_LINE: &str = "error: idle timeout\n";
const SHUTTING_DOWN_LINE: &str = "error: server shutting down\n";
const NOT_UTF8_LINE: &str = "error: message is not valid UTF-8\n";
const BUSY_LINE: &str = "error: server busy, try again later\n";

/// One connection's protocol state. See the [module docs](self) for the picture.
///
/// Driving it: after every `handle_*` call, take [`Conn::poll_action`] until it returns `None` and
/// carry each action out in order; then, if not [`Conn::is_closed`], wait for input until
/// [`Conn::poll_timeout`] and call [`Conn::handle_timeout`] if it passes first.
#[derive(Clone, Debug)]
pub struct Conn {
    id: u64,
    config: ConnConfig,
    state: State,
    /// When the idle timeout fires: accept time or last complete line, plus `idle_timeout`. Only a
    /// *complete* line moves it, so trickling bytes cannot keep a connection alive.
    idle_deadline: Instant,
    /// The partial echo line (unused in greet mode, where it stays empty and unallocated).
    lines: LineFramer,
    /// Actions produced but not yet taken by the shell.
    actions: VecDeque<Action>,
    /// Bytes read and thrown away while draining (for the log).
    discarded: usize,
}

impl Conn {
    /// A connection accepted at `now`, with the client id `id` (used in the greet reply).
    pub fn new(config: &ConnConfig, id: u64, now: Instant) -> Conn {
        Conn {
            id,
            config: config.clone(),
            state: match config.mode {
                Mode::Greet => State::AwaitingMessage,
                Mode::Echo => State::ReadingLines,
            },
            idle_deadline: later(now, config.idle_timeout),
            lines: LineFramer::new(config.max_line),
            actions: VecDeque::new(),
            discarded: 0,
        }
    }

    /// A connection refused at `now` because the server is at its connection limit: it sends
    /// the busy line, then drains and closes like any other, so the reply survives. It has no
    /// client id (refused clients take none); [`Conn::id`] returns 0.
    pub fn busy(config: &ConnConfig, now: Instant) -> Conn {
        let mut conn = Conn::new(config, 0, now);
        conn.actions.push_back(Action::Report(Report::Busy));
        conn.actions
            .push_back(Action::Send(BUSY_LINE.as_bytes().to_vec()));
        conn.stop_writing_at(now);
        conn
    }

    /// The client id given at creation.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The protocol this connection speaks.
    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// How many bytes the shell should read at a time. Greet mode must read at most
    /// [`greet::MESSAGE_LIMIT`]: the seed's `recv(1024)` is part of its protocol.
    pub fn read_buf_len(&self) -> usize {
        match self.config.mode {
            Mode::Greet => greet::MESSAGE_LIMIT,
            Mode::Echo => ECHO_READ_LEN,
        }
    }

    /// How big the shell's read buffer should start: greet needs its whole message from one
    /// read; echo starts at [`ECHO_FIRST_READ_LEN`] and grows to [`Conn::read_buf_len`] once a
    /// read fills it, so an idle echo connection holds a small buffer, not 8 KiB.
    pub fn first_read_len(&self) -> usize {
        match self.config.mode {
            Mode::Greet => greet::MESSAGE_LIMIT,
            Mode::Echo => ECHO_FIRST_READ_LEN,
        }
    }

    /// Bytes arrived from the peer (an empty slice changes nothing).
    pub fn handle_data(&mut self, data: &[u8], now: Now) {
        self.fire_timers(now);
        match self.state {
            State::AwaitingMessage if !data.is_empty() => self.answer_greeting(data, now),
            State::ReadingLines => self.read_lines(data, now),
            // Draining reads only to empty the socket; what it reads does not matter.
            State::Draining { .. } => self.discarded += data.len(),
            _ => {}
        }
    }

    /// The peer shut down its writing side: no more data will come.
    pub fn handle_eof(&mut self, now: Now) {
        self.fire_timers(now);
        match self.state {
            State::ReadingLines => {
                // The protocol answers a last line even without its `\n`.
                if let Some(last) = self.lines.finish() {
                    self.answer_line(&last, now);
                }
                self.close();
            }
            // Greet: EOF before any data gets no reply. Draining: the peer has read everything.
            State::AwaitingMessage | State::Draining { .. } => self.close(),
            State::Closed => {}
        }
    }

    /// Fires any deadline that has passed. Calling it early (or twice) is harmless.
    ///
    /// Every other `handle_*` method checks the deadlines first as well, so a shell that hands in
    /// data a little late cannot let a late line beat the idle timeout.
    pub fn handle_timeout(&mut self, now: Now) {
        self.fire_timers(now);
    }

    /// The server is shutting down gracefully.
    ///
    /// Every line already handled has been answered (its `Send` is queued), so only a connection
    /// still waiting for input needs anything: it gets an error line and is drained. A partial
    /// line is dropped. A connection already draining or closed just goes on.
    pub fn handle_shutdown(&mut self, now: Now) {
        self.fire_timers(now);
        if let State::AwaitingMessage | State::ReadingLines = self.state {
            self.refuse(
                Report::ShuttingDown,
                SHUTTING_DOWN_LINE.as_bytes().to_vec(),
                now,
            );
        }
    }

    /// The next thing to do, or `None` when the queue is empty.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Conn::handle_timeout`] must be called: the idle deadline while waiting for input, the
    /// drain deadline while draining, `None` once closed. May change after any `handle_*` call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitingMessage | State::ReadingLines => Some(self.idle_deadline),
            State::Draining { until } => Some(until),
            State::Closed => None,
        }
    }

    /// Whether the shell should keep reading. Also true while draining: draining *is* reading.
    pub fn wants_read(&self) -> bool {
        !self.is_closed()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether [`Action::Close`] has been produced.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Bytes read and thrown away while draining, so far.
    pub fn discarded(&self) -> usize {
        self.discarded
    }

    /// Bytes of a partial echo line held in memory; never more than `max_line`.
    pub fn buffered(&self) -> usize {
        self.lines.buffered()
    }

    fn fire_timers(&mut self, now: Now) {
        match self.state {
            State::AwaitingMessage | State::ReadingLines if now.instant >= self.idle_deadline => {
                self.refuse(
                    Report::IdleTimeout,
                    IDLE_TIMEOUT_LINE.as_bytes().to_vec(),
                    now,
                );
            }
            State::Draining { until } if now.instant >= until => self.close(),
            _ => {}
        }
    }

    fn answer_greeting(&mut self, first_read: &[u8], now: Now) {
        let message = greet::message(first_read).to_vec();
        self.actions
            .push_back(Action::Report(Report::Greeting(message)));
        self.actions.push_back(Action::Send(greet::reply(self.id)));
        self.stop_writing(now);
    }

    fn read_lines(&mut self, mut data: &[u8], now: Now) {
        while let Some(frame) = self.lines.next_frame(&mut data) {
            match frame {
                Frame::Line(line) => {
                    self.idle_deadline = later(now.instant, self.config.idle_timeout);
                    self.answer_line(&line, now);
                }
                Frame::TooLong => {
                    let limit = self.config.max_line;
                    let error = format!("error: line too long (limit {limit} bytes)\n");
                    // Whatever followed in `data` belongs to a connection we are closing.
                    self.refuse(Report::LineTooLong, error.into_bytes(), now);
                    return;
                }
            }
        }
    }

    fn answer_line(&mut self, line: &[u8], now: Now) {
        match echo::reply(line, now.wall) {
            Ok(reply) => {
                let report = Report::Line { len: line.len() };
                self.actions.push_back(Action::Report(report));
                self.actions.push_back(Action::Send(reply));
            }
            Err(echo::NotUtf8) => {
                self.actions.push_back(Action::Report(Report::InvalidUtf8));
                self.actions
                    .push_back(Action::Send(NOT_UTF8_LINE.as_bytes().to_vec()));
            }
        }
    }

    /// Ends the conversation with one error line.
    fn refuse(&mut self, report: Report, error_line: Vec<u8>, now: Now) {
        self.actions.push_back(Action::Report(report));
        self.actions.push_back(Action::Send(error_line));
        self.stop_writing(now);
    }

    /// After the last `Send`: shut down writing and start draining.
    fn stop_writing(&mut self, now: Now) {
        self.stop_writing_at(now.instant);
    }

    fn stop_writing_at(&mut self, now: Instant) {
        if self.config.drain_timeout.is_zero() {
            // No drain, so nothing for the shutdown to come before: `close` sends the same
            // end of stream, and the shutdown would be one more system call per connection.
            self.close();
            return;
        }
        self.lines.clear();
        self.actions.push_back(Action::ShutdownWrite);
        self.state = State::Draining {
            until: later(now, self.config.drain_timeout),
        };
    }

    fn close(&mut self) {
        self.lines.clear();
        self.actions.push_back(Action::Close);
        self.state = State::Closed;
    }
}
