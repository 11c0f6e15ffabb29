//! The reference model: what PROTOCOL.md promises each client of a schedule, and the check of
//! what the client actually saw.
//!
//! [`expect`] reads the protocol and nothing else: from the bytes a client sends and how it ends,
//! it computes the replies it is owed, in order, and whether the server then closes. It never
//! looks at the server's code, and it does not care how the bytes were cut into writes — which is
//! exactly the protocol's promise (lines, not reads, are answered). [`check`] then compares,
//! byte for byte except the echo timestamps, which must only have the right form.
//!
//! **Why the expectation does not depend on thread scheduling** (so that a failure replays, and
//! proptest can shrink it deterministically):
//! * the bytes a client sends, and the order of its lines, are fixed by its plan;
//! * every wait is far from every deadline: a well-behaved client sends everything within a few
//!   tens of milliseconds, while the idle timeout is hundreds; "go silent" waits for the server's
//!   own idle timeout instead of racing it, and "stop reading" waits until the server has ended
//!   the connection (it watches the server's observer) instead of sleeping a guessed time;
//! * timestamps are checked for their form, never their value;
//! * whether a client is refused at the connection limit *does* depend on timing, so the model
//!   does not guess: the server reports each accept (with the id) and each refusal to an
//!   observer, and the client is held to the exact expectation for what happened to it — the
//!   busy line, or full service, with the id it was given in its greet reply;
//! * where the kernel's buffer sizes decide how far the server gets (a client that stops reading
//!   while megabytes of replies are due), only a prefix of the replies is owed, and nothing else.

use std::fmt;
use std::sync::Arc;

use many_clients::client::check_echo_reply;
use many_clients::conn::Mode;

use super::client_side::{Ended, Observation};
use super::schedule::{End, Plan, Settings, filler};
// The error lines, as the harness has them (with their `\n`: `text` drops it), and how
// failure messages show bytes.
use crate::support::{BUSY, IDLE, NOT_UTF8, Outcome, show, text};

/// One reply line the protocol promises.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    /// `[{timestamp}] Server got '{this}'` — already trimmed.
    Echo(Arc<str>),
    /// `Hello Client {id}, server received your message!` (no newline; the server then closes).
    Hello,
    /// An `error: ` line, exactly (without its `\n`).
    Error(String),
}

/// What an admitted client is owed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub replies: Vec<Reply>,
    /// The server closes (the client reads EOF) after the replies; otherwise it waits for more.
    pub then_eof: bool,
}

// ANCHOR: expect
/// PROTOCOL.md for one admitted client that sends `stream` and then ends with `end`.
pub fn expect(server: &Settings, stream: &[u8], end: End) -> Expect {
    match server.mode {
        Mode::Greet => expect_greet(stream, end),
        Mode::Echo => expect_echo(server.max_line, stream, end),
    }
}
// ANCHOR_END: expect

/// Greet: the first read is the message, whatever it holds; only "no bytes at all" differs.
fn expect_greet(stream: &[u8], end: End) -> Expect {
    let (replies, then_eof) = match end {
        _ if !stream.is_empty() => (vec![Reply::Hello], true),
        End::Silent | End::StopReading => (vec![Reply::Error(text(IDLE).into())], true),
        End::HalfClose => (vec![], true), // closes without sending: no reply
        End::Close | End::Reset => (vec![], false),
    };
    Expect { replies, then_eof }
}

/// Echo: cut the stream at every `\n`, answer each line in order, stop at the first line longer
/// than the limit; then the ending decides what happens to an unterminated tail.
fn expect_echo(max_line: usize, stream: &[u8], end: End) -> Expect {
    let too_long = |replies: &mut Vec<Reply>| {
        replies.push(Reply::Error(format!(
            "error: line too long (limit {max_line} bytes)"
        )));
        Expect {
            replies: std::mem::take(replies),
            then_eof: true,
        }
    };
    let mut replies = Vec::new();
    let mut rest = stream;
    while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..newline]; // the limit counts a `\r` before the `\n`
        if line.len() > max_line {
            return too_long(&mut replies);
        }
        replies.push(echo_of(line.strip_suffix(b"\r").unwrap_or(line)));
        rest = &rest[newline + 1..];
    }
    if rest.len() > max_line {
        return too_long(&mut replies); // fires before any `\n` arrives
    }
    let then_eof = match end {
        End::HalfClose if !rest.is_empty() => {
            replies.push(echo_of(rest)); // a final line without `\n` is still answered
            true
        }
        End::HalfClose => true,
        End::Silent | End::StopReading => {
            replies.push(Reply::Error(text(IDLE).into())); // a partial line does not reset the timer
            true
        }
        End::Close | End::Reset => false,
    };
    Expect { replies, then_eof }
}

fn echo_of(line: &[u8]) -> Reply {
    match std::str::from_utf8(line) {
        Ok(text) => Reply::Echo(text.trim().into()),
        Err(_) => Reply::Error(text(NOT_UTF8).into()),
    }
}

/// How a [`End::Close`] client reads before closing (the others read until EOF, or not at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseRead {
    Nothing,
    /// This many lines (or until EOF if the first is the busy line).
    Lines(usize),
    ToEof,
}

pub fn close_read(admitted: &Expect) -> CloseRead {
    match admitted.replies.len() {
        _ if admitted.then_eof => CloseRead::ToEof,
        0 => CloseRead::Nothing,
        n => CloseRead::Lines(n),
    }
}

// ---------------------------------------------------------------------------------------------
// Checking what a client saw.

/// What a client is owed, given what the server did with it: the replies and the ending, and the
/// id a greet reply must carry.
pub fn owed(server: &Settings, plan: &Plan, outcome: Outcome, sent_filler: bool) -> (Expect, u64) {
    let mut stream = plan.stream(server);
    match outcome {
        // A refused client gets the busy line, then EOF — if it reads at all.
        Outcome::Refused => {
            let reads = plan.end != End::Close
                || close_read(&expect(server, &stream, End::Close)) != CloseRead::Nothing;
            let replies = if reads {
                vec![Reply::Error(text(BUSY).into())]
            } else {
                vec![]
            };
            (
                Expect {
                    replies,
                    then_eof: reads,
                },
                0,
            )
        }
        Outcome::Admitted { id } => {
            if sent_filler {
                stream.extend(filler(server).unwrap_or_default());
            }
            (expect(server, &stream, plan.end), id)
        }
    }
}

/// Checks one client's observation against what it is owed; `Ok` if they agree.
pub fn check(
    server: &Settings,
    plan: &Plan,
    outcome: Outcome,
    seen: &Observation,
) -> Result<(), String> {
    if plan.end == End::Reset {
        return Ok(()); // it reset the connection: nothing is owed
    }
    let (want, id) = owed(server, plan, outcome, seen.sent_filler);
    // After the filler, the server may cut the client anywhere: only a prefix is owed.
    let prefix = seen.sent_filler;
    if let (Some(e), false) = (&seen.write_error, prefix) {
        return Err(format!("a write failed: {e}"));
    }
    let ending_ok = match (&seen.ended, want.then_eof, want.replies.is_empty()) {
        (Ended::Eof, true, _) => true,
        (Ended::Failed(_), true, _) => prefix, // reset by a server that gave up writing
        (Ended::Stopped, false, false) | (Ended::NotRead, false, true) => true,
        _ => false,
    };
    if !ending_ok {
        let what = if want.then_eof {
            "EOF"
        } else {
            "the connection left open"
        };
        let (replies, ended, got) = (list(&want.replies), &seen.ended, show(&seen.received));
        return Err(format!(
            "expected {what} after {replies}, but reading ended {ended:?}; got {got}"
        ));
    }
    check_replies(&want.replies, &seen.received, id, prefix)
}

/// Compares the bytes received with the replies owed, one line at a time.
fn check_replies(owed: &[Reply], received: &[u8], id: u64, prefix: bool) -> Result<(), String> {
    let mut rest = received;
    for (k, reply) in owed.iter().enumerate() {
        if prefix && rest.is_empty() {
            return Ok(());
        }
        if *reply == Reply::Hello {
            let hello = format!("Hello Client {id}, server received your message!");
            if rest != hello.as_bytes() {
                return Err(format!("expected {hello:?} then EOF, got {}", show(rest)));
            }
            return Ok(()); // the last reply, by the protocol
        }
        let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
            if prefix {
                return Ok(()); // cut in the middle of a line
            }
            return Err(format!("reply {k} ({reply:?}) missing: got {}", show(rest)));
        };
        let line = &rest[..newline];
        let ok = match (reply, std::str::from_utf8(line)) {
            (Reply::Echo(text), Ok(got)) => check_echo_reply(got, text),
            (Reply::Error(e), _) if line == e.as_bytes() => Ok(()),
            _ => Err("a different line".into()),
        };
        if let Err(why) = ok {
            return Err(format!(
                "reply {k}: expected {reply:?}, got {} ({why})",
                show(line)
            ));
        }
        rest = &rest[newline + 1..];
    }
    if !rest.is_empty() {
        let n = owed.len();
        return Err(format!(
            "after the {n} replies owed, more arrived: {}",
            show(rest)
        ));
    }
    Ok(())
}

/// Replies as a list, the middle left out if long.
fn list(replies: &[Reply]) -> String {
    if replies.len() <= 8 {
        return format!("{replies:?}");
    }
    let (head, tail) = (&replies[..4], &replies[replies.len() - 2..]);
    format!("{head:?} … {} more … {tail:?}", replies.len() - 6)
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Echo(text) if text.len() > 40 => write!(f, "Echo(<{} bytes>)", text.len()),
            Reply::Echo(text) => write!(f, "Echo({text:?})"),
            Reply::Hello => f.write_str("Hello"),
            Reply::Error(e) => write!(f, "{e:?}"),
        }
    }
}

/// The reference model on its own, on examples worked out by hand from PROTOCOL.md: so that a
/// failure of the property is a server bug, not a model bug.
#[cfg(test)]
mod examples {
    use super::{BUSY, Expect, IDLE, NOT_UTF8, Outcome, Reply, check, expect, text};
    use crate::client_side::{Ended, Observation};
    use crate::schedule::{End, Eol, Msg, Plan, Settings, Text, Writes};
    use many_clients::conn::Mode;
    use many_clients::server::Engine;

    fn echo(stream: &[u8], end: End) -> Expect {
        let server = Settings {
            mode: Mode::Echo,
            max_line: 4,
            idle_ms: 300,
            limit: None,
            engine: Engine::Thread,
        };
        expect(&server, stream, end)
    }

    fn said(text: &str) -> Reply {
        Reply::Echo(text.into())
    }

    #[test]
    fn lines_are_answered_in_order_trimmed_with_errors_in_place() {
        let want = vec![
            said("a"),
            said(""),
            Reply::Error(text(NOT_UTF8).into()),
            said("日"),
        ];
        let got = echo(b" a \n\r\n\xff\n\xe6\x97\xa5\n", End::Close); // 日 in UTF-8
        assert_eq!(
            got,
            Expect {
                replies: want,
                then_eof: false
            }
        );
    }

    #[test]
    fn the_limit_counts_the_cr_and_applies_to_an_unterminated_tail() {
        let too_long = Reply::Error("error: line too long (limit 4 bytes)".into());
        assert_eq!(echo(b"abcd\n", End::Close).replies, vec![said("abcd")]);
        assert_eq!(
            echo(b"abcd\r\nz\n", End::Close).replies,
            vec![too_long.clone()]
        );
        let tail = echo(b"ok\nabcde", End::Close);
        assert_eq!(
            tail,
            Expect {
                replies: vec![said("ok"), too_long],
                then_eof: true
            }
        );
    }

    #[test]
    fn the_ending_decides_the_fate_of_an_unterminated_tail() {
        let half_close = echo(b"a\nb\r", End::HalfClose);
        assert_eq!(half_close.replies, vec![said("a"), said("b")]);
        let silent = echo(b"a\nb\r", End::Silent);
        assert_eq!(
            silent.replies,
            vec![said("a"), Reply::Error(text(IDLE).into())]
        );
        assert_eq!(echo(b"a\nb", End::Close).replies, vec![said("a")]);
    }

    #[test]
    fn greet_answers_any_first_bytes_and_nothing_else() {
        let server = Settings {
            mode: Mode::Greet,
            max_line: 4,
            idle_ms: 300,
            limit: None,
            engine: Engine::Thread,
        };
        let hello = Expect {
            replies: vec![Reply::Hello],
            then_eof: true,
        };
        assert_eq!(expect(&server, b"\n", End::Close), hello);
        assert_eq!(
            expect(&server, b"", End::HalfClose),
            Expect {
                replies: vec![],
                then_eof: true
            }
        );
        let silent = expect(&server, b"", End::Silent);
        assert_eq!(silent.replies, vec![Reply::Error(text(IDLE).into())]);
    }

    // `check` itself: a server's wrong answer must fail the property, or the random schedules
    // would pass any server. Each test shows it the right bytes (accepted) and wrong ones.

    fn settings(mode: Mode) -> Settings {
        Settings {
            mode,
            max_line: 8,
            idle_ms: 300,
            limit: None,
            engine: Engine::Thread,
        }
    }

    /// A client that sends `lines` (each with `\n`) in one write and ends with `end`.
    fn plan(lines: &[&str], end: End) -> Plan {
        let msgs = lines
            .iter()
            .map(|line| Msg {
                text: Text::Str(line.to_string()),
                eol: Eol::Lf,
            })
            .collect();
        Plan {
            delay_ms: 0,
            msgs,
            writes: Writes::Whole,
            end,
        }
    }

    fn saw(received: &[u8], ended: Ended) -> Observation {
        Observation {
            received: received.to_vec(),
            ended,
            write_error: None,
            sent_filler: false,
        }
    }

    const HELLO_7: &[u8] = b"Hello Client 7, server received your message!";

    #[test]
    fn check_rejects_a_wrong_greet() {
        let (server, plan) = (settings(Mode::Greet), plan(&["hi"], End::HalfClose));
        let judge = |outcome, seen: Observation| check(&server, &plan, outcome, &seen);
        let admitted = Outcome::Admitted { id: 7 };
        assert_eq!(judge(admitted, saw(HELLO_7, Ended::Eof)), Ok(()));
        let wrong = [
            (
                saw(b"Hello Client 8, server received your message!", Ended::Eof),
                "another id",
            ),
            (saw(HELLO_7, Ended::TimedOut), "left open after the greet"),
            (saw(b"", Ended::Eof), "closed without a word"),
            (saw(BUSY, Ended::Eof), "busy, though admitted"),
            (
                saw(&[HELLO_7, b"\n"].concat(), Ended::Eof),
                "a byte after the greet",
            ),
        ];
        for (seen, what) in wrong {
            assert!(judge(admitted, seen).is_err(), "accepted {what}");
        }
        // A refused client is owed the busy line, then EOF, and nothing else.
        assert_eq!(judge(Outcome::Refused, saw(BUSY, Ended::Eof)), Ok(()));
        assert!(judge(Outcome::Refused, saw(HELLO_7, Ended::Eof)).is_err());
        assert!(judge(Outcome::Refused, saw(BUSY, Ended::TimedOut)).is_err());
    }

    #[test]
    fn check_rejects_a_wrong_echo() {
        let server = settings(Mode::Echo);
        let two_lines = plan(&["a", "b"], End::HalfClose);
        let judge = |received: &str| {
            let seen = saw(received.as_bytes(), Ended::Eof);
            check(&server, &two_lines, Outcome::Admitted { id: 1 }, &seen)
        };
        let echo = |text: &str| format!("[2026-01-02 03:04:05.678901] Server got '{text}'\n");
        let (a, b) = (echo("a"), echo("b"));
        assert_eq!(judge(&format!("{a}{b}")), Ok(()));
        let wrong = [
            (format!("{b}{a}"), "the lines out of order"),
            (a.clone(), "a reply missing"),
            (format!("{a}{b}{b}"), "a line answered twice"),
            (format!("{a}{}", echo("c")), "the wrong text echoed"),
            (
                format!("{a}{}", String::from_utf8_lossy(IDLE)),
                "an error line for a reply",
            ),
            (
                format!("{a}{}", b.replace("2026", "26")),
                "a malformed timestamp",
            ),
        ];
        for (received, what) in wrong {
            assert!(judge(&received).is_err(), "accepted {what}");
        }
        // A line past the limit (8) is owed its own error line, not just any error.
        let too_long = plan(&["a", "123456789"], End::HalfClose);
        let judge = |error: &[u8]| {
            let seen = saw(&[a.as_bytes(), error].concat(), Ended::Eof);
            check(&server, &too_long, Outcome::Admitted { id: 1 }, &seen)
        };
        assert_eq!(judge(b"error: line too long (limit 8 bytes)\n"), Ok(()));
        assert!(judge(NOT_UTF8).is_err(), "accepted another error line");
    }
}
