//! Random client schedules: what one test case is, and how proptest draws one.
//!
//! A **schedule** is one server's settings plus a list of clients (1 to [`MAX_CLIENTS`]). Each
//! client ([`Plan`]) waits a start delay, connects, sends its messages in a chosen way
//! ([`Writes`]: all in one write, one write per message, or small chunks with pauses between
//! them) and then ends in a chosen way ([`End`]: half-close and read the rest, close, go silent
//! until the idle timeout, reset, or stop reading). The messages are the awkward ones: empty,
//! short, exactly at and just around the line limit, unicode (including Unicode white space that
//! `trim` removes), an embedded `\r`, bytes that are not UTF-8. A greet client sends one message
//! at most, as the greet protocol has one. The server's settings are drawn too: greet or echo, a
//! small line limit (or a large one, see [`filler`]), a short idle timeout, a connection limit
//! or none. The engine is not drawn: it is the test's parameter, and every engine gets its own
//! cases (`tests/schedules.rs`).
//!
//! What each client must then see is not decided here but in the reference model
//! (`schedule_model.rs`).
//!
//! **Shrinking.** Every choice lists its simplest alternative first, and proptest shrinks toward
//! it: fewer clients, no delay, the message `"a\n"`, one write, half-close, no limit. The `Debug`
//! output is written to be read: a message prints as the bytes on the wire (`"ab\r\n"`,
//! `b"\xff\n"`, `"x"*(limit+1) + "\n"`), so a shrunk failure reads like a short script.

use std::fmt;

use many_clients::conn::Mode;
use many_clients::server::Engine;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::support::at_least;

/// The most clients one schedule runs at once.
pub const MAX_CLIENTS: usize = 40;
/// Greet mode reads one message of at most this many bytes (the seed's `recv(1024)`).
pub const GREET_READ: usize = 1024;
/// How long a closing connection drains (the protocol allows up to one second).
pub const DRAIN_MS: u64 = 400;

/// A whole test case: the server's settings and every client.
#[derive(Clone)]
pub struct Schedule {
    pub server: Settings,
    pub clients: Vec<Plan>,
}

/// What the server is started with.
#[derive(Clone, Copy)]
pub struct Settings {
    pub mode: Mode,
    /// `--max-line` (echo only).
    pub max_line: usize,
    /// `--idle-timeout`, in milliseconds.
    pub idle_ms: u64,
    /// `--max-connections`; `None` is the default 1024, which these schedules never reach.
    pub limit: Option<usize>,
    /// The engine, from the test; a pool gets at least a worker per allowed connection. (With
    /// fewer workers a connection could wait in the queue past its idle timeout, which the
    /// protocol allows, and which no model can predict.)
    pub engine: Engine,
}

/// One client's script.
#[derive(Clone)]
pub struct Plan {
    pub delay_ms: u64,
    pub msgs: Vec<Msg>,
    pub writes: Writes,
    pub end: End,
}

/// One message: its text and its line ending.
#[derive(Clone)]
pub struct Msg {
    pub text: Text,
    pub eol: Eol,
}

#[derive(Clone)]
pub enum Text {
    Str(String),
    /// Not UTF-8 (or not only).
    Bytes(&'static [u8]),
    /// `'x'` repeated the limit plus this many times (the line limit in echo mode, the
    /// 1024-byte read in greet mode): at, just under and just past the limit.
    Long(i8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eol {
    Lf,
    CrLf,
    /// No line ending: in the middle it glues onto the next message; at the end it is a final
    /// unterminated line.
    None,
}

/// How the client cuts its bytes into writes (each with one `write_all`; `TCP_NODELAY` is on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// Everything in one write: several lines arrive in one read.
    Whole,
    /// One write per message.
    PerMessage,
    /// Pieces of `size` bytes (at most [`MAX_PIECES`] pieces, so the last may be longer), with a
    /// pause of 1 to 4 ms between pieces, so that lines usually arrive split across reads.
    /// (Without a pause, back-to-back writes often arrive in one read — [`Writes::PerMessage`]
    /// covers that — and a bug that needs a split would shrink unreliably.)
    Chunks { size: usize, pause_ms: u64 },
}

/// The most writes [`Writes::Chunks`] makes, to bound the time a client spends writing.
pub const MAX_PIECES: usize = 8;

/// How the client ends, after writing everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Shut down writing, then read everything until the server closes.
    HalfClose,
    /// Read the replies it is owed, then close (the server answers a final unterminated line to
    /// a client that is gone, so that reply is not owed).
    Close,
    /// Neither close nor write: read until the server's idle timeout cuts the connection.
    Silent,
    /// Reset the connection (`SO_LINGER` 0) without reading. Nothing is promised to it.
    Reset,
    /// Stop reading until the server has closed the connection, then read what is there. In echo
    /// mode with a large line limit, the first such client of a schedule also sends megabytes of
    /// lines ([`filler`]), so the server's replies fill every buffer and only its write timeout
    /// can end the connection.
    StopReading,
}

impl Schedule {
    /// Which client sends the [`filler`], if any: only one per schedule, because echoing
    /// megabytes costs CPU time, and a starved machine would push well-behaved clients past
    /// the idle timeout.
    pub fn filler_client(&self) -> Option<usize> {
        filler(&self.server)?;
        self.clients.iter().position(|c| c.end == End::StopReading)
    }
}

impl Plan {
    /// Every byte this client sends, in order (greet mode: the first message only).
    pub fn stream(&self, server: &Settings) -> Vec<u8> {
        let take = if server.mode == Mode::Greet {
            1
        } else {
            self.msgs.len()
        };
        self.msgs
            .iter()
            .take(take)
            .flat_map(|m| m.bytes(server))
            .collect()
    }

    /// [`Plan::stream`], cut into writes as [`Plan::writes`] says.
    pub fn pieces(&self, server: &Settings) -> Vec<Vec<u8>> {
        let stream = self.stream(server);
        match self.writes {
            _ if stream.is_empty() => vec![],
            Writes::Whole => vec![stream],
            Writes::PerMessage => {
                let take = if server.mode == Mode::Greet {
                    1
                } else {
                    self.msgs.len()
                };
                let msgs = self.msgs.iter().take(take).map(|m| m.bytes(server));
                msgs.filter(|m| !m.is_empty()).collect()
            }
            Writes::Chunks { size, .. } => {
                let size = size.max(stream.len().div_ceil(MAX_PIECES));
                stream.chunks(size).map(<[u8]>::to_vec).collect()
            }
        }
    }
}

impl Msg {
    pub fn bytes(&self, server: &Settings) -> Vec<u8> {
        let mut out = match &self.text {
            Text::Str(s) => s.as_bytes().to_vec(),
            Text::Bytes(b) => b.to_vec(),
            Text::Long(delta) => vec![b'x'; long_len(server, *delta)],
        };
        out.extend_from_slice(match self.eol {
            Eol::Lf => b"\n",
            Eol::CrLf => b"\r\n",
            Eol::None => b"",
        });
        out
    }
}

fn long_len(server: &Settings, delta: i8) -> usize {
    let base = match server.mode {
        Mode::Greet => GREET_READ,
        Mode::Echo => server.max_line,
    };
    base.saturating_add_signed(delta.into())
}

/// In echo mode with a line limit of at least 4 KiB, what a [`End::StopReading`] client sends
/// after its messages: about 6 MiB of full-length lines. Their replies are more than the
/// kernel's buffers hold on both sides (about 4 MiB here), so the server's writes stop making
/// progress. `None` when the limit is too small for that to be cheap. Sent by at most one
/// client per schedule ([`Schedule::filler_client`]).
pub fn filler(server: &Settings) -> Option<Vec<u8>> {
    if server.mode != Mode::Echo || server.max_line < 4096 {
        return None;
    }
    let mut line = vec![b'f'; server.max_line];
    line.push(b'\n');
    Some(line.repeat((6 << 20) / line.len() + 1))
}

// ---------------------------------------------------------------------------------------------
// Readable `Debug`, for shrunk schedules.

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} with {} clients [", self.server, self.clients.len())?;
        for (i, plan) in self.clients.iter().enumerate() {
            write!(f, "{}#{i} {plan:?}", if i == 0 { "" } else { ", " })?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} server {{ ", self.mode)?;
        if self.mode == Mode::Echo {
            write!(f, "max_line: {}, ", self.max_line)?;
        }
        write!(f, "idle: {}ms, drain: {DRAIN_MS}ms, limit: ", self.idle_ms)?;
        match self.limit {
            Some(n) => write!(f, "{n}, ")?,
            None => f.write_str("none, ")?,
        }
        match self.engine {
            Engine::Thread => f.write_str("thread per connection }"),
            Engine::Pool { workers } => write!(f, "pool of {workers} }}"),
            Engine::Events { loops } => write!(f, "{loops} event loops }}"),
        }
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{ after {}ms send {:?} {:?} then {:?} }}",
            self.delay_ms, self.msgs, self.writes, self.end
        )
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let eol = match self.eol {
            Eol::Lf => "\\n",
            Eol::CrLf => "\\r\\n",
            Eol::None => "",
        };
        self.text.show(f, eol)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.show(f, "")
    }
}

impl Text {
    /// As the bytes on the wire, `eol` included: `"ab\r\n"`, `b"\xff\n"`, `"x"*(limit+1) + "\n"`.
    fn show(&self, f: &mut fmt::Formatter<'_>, eol: &str) -> fmt::Result {
        match self {
            Text::Str(s) => write!(f, "\"{}{eol}\"", s.escape_debug()),
            Text::Bytes(b) => write!(f, "b\"{}{eol}\"", b.escape_ascii()),
            Text::Long(d) => write!(f, "\"x\"*(limit{d:+}) + \"{eol}\""),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies. The first alternative of each choice is the simplest: shrinking goes there.

/// A schedule for a server with `engine`.
pub fn schedule(engine: Engine) -> impl Strategy<Value = Schedule> {
    let greet = (
        settings(Mode::Greet, engine),
        vec(plan(Mode::Greet), 1..=MAX_CLIENTS),
    );
    let echo = (
        settings(Mode::Echo, engine),
        vec(plan(Mode::Echo), 1..=MAX_CLIENTS),
    );
    prop_oneof![greet, echo].prop_map(|(server, clients)| Schedule { server, clients })
}

fn settings(mode: Mode, engine: Engine) -> impl Strategy<Value = Settings> {
    let max_line = prop_oneof![3 => 4..=24usize, 1 => Just(8192)];
    let idle_ms = select(vec![400u64, 500, 600]);
    let limit = prop_oneof![2 => Just(None), 1 => (1..=4usize).prop_map(Some)];
    (max_line, idle_ms, limit).prop_map(move |(max_line, idle_ms, limit)| Settings {
        mode,
        max_line,
        idle_ms,
        limit,
        // Without a limit, every client may be connected at once (and the fresh one after).
        engine: at_least(engine, limit.unwrap_or(MAX_CLIENTS + 1)),
    })
}

fn plan(mode: Mode) -> impl Strategy<Value = Plan> {
    let most = if mode == Mode::Greet { 1 } else { 5 };
    let writes = prop_oneof![
        Just(Writes::Whole),
        Just(Writes::PerMessage),
        (1..=7usize, 1..=4u64).prop_map(|(size, pause_ms)| Writes::Chunks { size, pause_ms }),
    ];
    let end = select(vec![
        End::HalfClose,
        End::Close,
        End::Silent,
        End::Reset,
        End::StopReading,
    ]);
    (0..=20u64, vec(msg(), 0..=most), writes, end).prop_map(|(delay_ms, msgs, writes, end)| Plan {
        delay_ms,
        msgs,
        writes,
        end,
    })
}

/// Non-ASCII text; U+3000 and U+00A0 are Unicode white space that `trim` removes, U+200B is not.
const UNICODE: [&str; 5] = ["héllo", "日本", "\u{3000}x\u{a0}", "\u{200b}", "🦀 ok"];
/// A `\r` that is not part of a line ending (but becomes one before a `\n`).
const WITH_CR: [&str; 4] = ["a\rb", "\r", "x\r", "\r\r"];
/// Not UTF-8: a lone byte, a truncated character, a stray continuation byte.
const NOT_UTF8: [&[u8]; 4] = [b"\xff", b"ok\xc3", b"\xe6\x97", b"a\x80b"];

fn msg() -> impl Strategy<Value = Msg> {
    let str = |s: &str| Text::Str(s.into());
    let text = prop_oneof![
        4 => "[a-z ]{1,6}".prop_map(Text::Str),
        1 => Just(Text::Str(String::new())),
        1 => select(&UNICODE[..]).prop_map(str),
        1 => select(&WITH_CR[..]).prop_map(str),
        1 => select(&NOT_UTF8[..]).prop_map(Text::Bytes),
        2 => (-2i8..=2).prop_map(Text::Long),
    ];
    let eol = prop_oneof![4 => Just(Eol::Lf), 1 => Just(Eol::CrLf), 1 => Just(Eol::None)];
    (text, eol).prop_map(|(text, eol)| Msg { text, eol })
}
