//! Drives one [`Conn`] over one [`Stream`]: read, hand the bytes to the
//! state machine, carry out what it says. All protocol decisions live in
//! `conn`; this loop only moves bytes and turns deadlines into socket
//! timeouts. It is the same code for TCP and for the in-memory pipes loom
//! runs, and the one place a blocking engine interprets a [`Conn`]'s
//! [`Action`]s: [`drive`] for a connection served to its end,
//! [`answer_without_waiting`] for one that must not make its thread wait.

use super::observe::{Event, Observer};
use super::transport::Stream;
use crate::conn::{Action, Clock, Conn, Now, Report, printable};
use std::io::{self, ErrorKind, Read};
use std::time::Duration;

/// How a connection ended, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The protocol finished (reply sent, client closed, error line sent…).
    Closed,
    /// The client reset the connection or a read failed.
    ReadFailed,
    /// A write failed or made no progress for the write timeout.
    WriteFailed,
    /// Still open when the shutdown grace period ran out, and cut.
    Cut,
}

/// What the driver needs from the server around it.
pub struct Context<'a> {
    /// Polled before every read: once true, the connection is told to shut down.
    pub shutting_down: &'a dyn Fn() -> bool,
    /// A write that makes no progress for this long fails: the client stopped reading.
    pub write_timeout: Duration,
    /// Where events go, if anywhere.
    pub observer: Option<&'a dyn Observer>,
}

/// Runs `conn` over `stream` until the connection closes.
pub fn drive<S: Stream, C: Clock + ?Sized>(
    stream: &mut S,
    conn: &mut Conn,
    clock: &C,
    cx: &Context<'_>,
) -> Ending {
    // Start small and grow to the connection's full read size (8 KiB in echo mode) only once
    // a read fills the buffer (see `Conn::first_read_len`).
    let mut buf = vec![0; conn.first_read_len()];
    // From here on, the connection's deadlines run on the wait clock (see `WaitClock`).
    let mut clock = WaitClock {
        clock,
        writing: Duration::ZERO,
    };
    let mut told_shutdown = false;
    // Writing is shut down and the client's input is being read away (for the log).
    let mut draining = false;
    // The read timeout currently set on the socket, to skip a syscall per
    // read: deadlines only move later, so a timeout that is too short just
    // wakes us early to re-arm it.
    let mut armed: Option<Duration> = None;
    // The same for the write timeout.
    let mut write_armed: Option<Duration> = None;
    // The time on the wait clock, read once each time `read` returns — not again after the
    // replies are written: writing does not move the wait clock, and a clock reading is two
    // system-clock calls (monotonic and wall). Per echo message that is one reading, not five.
    let mut now = clock.now();
    loop {
        while let Some(action) = conn.poll_action() {
            match action {
                Action::Send(bytes) => {
                    let (timeout, real) = (cx.write_timeout, clock.clock);
                    match write_all_within(stream, &bytes, timeout, real, &mut write_armed) {
                        Ok(blocked) => clock.writing += blocked,
                        Err(e) => {
                            tracing::debug!("write failed: {e}");
                            return Ending::WriteFailed;
                        }
                    }
                    tracing::debug!(bytes = bytes.len(), "reply written");
                    if let Some(o) = cx.observer {
                        let len = bytes.len();
                        o.event(&Event::Replied { id: conn.id(), len });
                    }
                }
                Action::ShutdownWrite => {
                    // The peer may be gone already; reading will tell.
                    drop(stream.shutdown_write());
                    draining = true;
                    tracing::debug!("writing shut down; draining the client's input");
                }
                Action::Close => {
                    if draining {
                        tracing::debug!(discarded = conn.discarded(), "drain ended");
                    }
                    return Ending::Closed;
                }
                Action::Report(report) => note(conn, &report, cx.observer),
            }
        }
        // ANCHOR: told_shutdown
        if !told_shutdown && (cx.shutting_down)() {
            told_shutdown = true;
            tracing::debug!("shutdown seen");
            conn.handle_shutdown(now);
            continue;
        }
        if let Some(deadline) = conn.poll_timeout() {
            let Some(left) = deadline
                .checked_duration_since(now.instant)
                .filter(|d| !d.is_zero())
            else {
                conn.handle_timeout(now);
                continue;
            };
            if armed.is_none_or(|a| a > left) {
                // A zero timeout is an error for sockets; `left` is non-zero.
                if stream.set_read_timeout(Some(left)).is_err() {
                    return Ending::ReadFailed;
                }
                armed = Some(left);
            }
        }
        let read = stream.read(&mut buf);
        now = clock.now();
        match read {
            Ok(0) if (cx.shutting_down)() && !told_shutdown => {
                // Woken by shutdown (the registry shut our read side down).
                told_shutdown = true;
                tracing::debug!("shutdown seen (woken)");
                conn.handle_shutdown(now);
            }
            // ANCHOR_END: told_shutdown
            Ok(0) => {
                tracing::debug!("end of input");
                conn.handle_eof(now);
            }
            Ok(n) => {
                tracing::trace!(bytes = n, "read");
                conn.handle_data(&buf[..n], now);
                buf.resize(grown(buf.len(), n, conn.read_buf_len()), 0);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                armed = None;
                conn.handle_timeout(now);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return read_failed(e),
        }
    }
}

/// The clock the connection's deadlines run on: the server's clock, stopped while we are
/// blocked writing to this client.
///
/// The idle timeout measures how long the client leaves us waiting for a complete line. While a
/// write is blocked it is the other way round — we wait for the client to read — and the write
/// timeout bounds that. Counting it as idleness as well would cut a client that sends many lines
/// at once and reads the replies back slowly: its next lines sit unread in the socket while we
/// write, and [`Conn::handle_data`] (rightly) refuses data handed in after the deadline. The
/// echo timestamps still show the real time.
struct WaitClock<'a, C: ?Sized> {
    clock: &'a C,
    /// Time spent writing so far.
    writing: Duration,
}

impl<C: Clock + ?Sized> WaitClock<'_, C> {
    fn now(&self) -> Now {
        let mut now = self.clock.now();
        now.instant = now.instant.checked_sub(self.writing).unwrap_or(now.instant);
        now
    }
}

/// The longest one write may block. The write deadline is checked between writes, so it fires
/// at most this late (PROTOCOL.md: "within a quarter of a second of its deadline").
pub const WRITE_SLICE: Duration = Duration::from_millis(250);

/// Writes all of `bytes`; fails with `TimedOut` once none of them has gone out for `timeout`.
/// Returns how long it waited: zero, without reading the clock, when everything went out at
/// once.
///
/// Not `write_all` under a socket timeout of `timeout`: a blocking write that gets some bytes
/// out and then waits out its timeout returns that progress only at the end, and the next write
/// waits the whole timeout again, so a client that stopped reading would be cut up to twice the
/// timeout after its last byte was taken. Here each write waits at most [`WRITE_SLICE`], and a
/// write that made progress moves the deadline to `timeout` after it returned.
fn write_all_within<S: Stream, C: Clock + ?Sized>(
    stream: &mut S,
    mut bytes: &[u8],
    timeout: Duration,
    clock: &C,
    armed: &mut Option<Duration>,
) -> io::Result<Duration> {
    // First without waiting: a reply that fits in the send buffer needs no timeout armed.
    match stream.write_now(bytes) {
        Ok(n) => {
            tracing::trace!(bytes = n, "wrote");
            bytes = &bytes[n..];
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
        Err(e) => return Err(e),
    }
    if bytes.is_empty() {
        return Ok(Duration::ZERO);
    }
    let started = clock.now().instant;
    // `None`: so far away that it cannot be represented, i.e. never.
    let mut deadline = started.checked_add(timeout);
    while !bytes.is_empty() {
        let now = clock.now().instant;
        let left = deadline.map_or(WRITE_SLICE, |d| d.saturating_duration_since(now));
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        let slice = left.min(WRITE_SLICE);
        if *armed != Some(slice) {
            stream.set_write_timeout(Some(slice))?;
            *armed = Some(slice);
        }
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                tracing::trace!(bytes = n, "wrote");
                bytes = &bytes[n..];
                deadline = clock.now().instant.checked_add(timeout);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(clock.now().instant.saturating_duration_since(started))
}

// ANCHOR: answer_without_waiting
/// Carries out a connection's actions without ever blocking its thread:
/// [`drive`] over a `NoWait` stream. For the busy answer past the cap on
/// busy threads (see `accept.rs`): the line goes out if it fits in the
/// socket's buffer now, writing is shut down, and the connection closes
/// without a drain.
pub fn answer_without_waiting<S: Stream, C: Clock + ?Sized>(
    stream: S,
    conn: &mut Conn,
    clock: &C,
    cx: &Context<'_>,
) -> Ending {
    drive(&mut NoWait(stream), conn, clock, cx)
}

/// A stream for a thread that must not wait: it writes only what fits now
/// (a write that would wait fails), and its reads see end-of-file at once,
/// as if the client had closed — so a draining connection closes at once.
struct NoWait<S>(S);

impl<S: Stream> Read for NoWait<S> {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl<S: Stream> io::Write for NoWait<S> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        // Not `WouldBlock`: that would make the caller wait and try again.
        Err(io::Error::other("this answer must not wait"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Stream> Stream for NoWait<S> {
    type Waker = S::Waker;

    fn waker(&self) -> S::Waker {
        self.0.waker()
    }

    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn set_write_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.0.shutdown_write()
    }

    fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write_now(bytes)
    }
}
// ANCHOR_END: answer_without_waiting

/// The read buffer's next length, after a read of `n` bytes into `len`: all of `most` once a
/// read filled it (more is waiting, most likely a long line), else unchanged — so a connection
/// that only ever sends short lines keeps a small buffer for its whole life.
fn grown(len: usize, n: usize, most: usize) -> usize {
    if n == len && len < most { most } else { len }
}

fn read_failed(e: io::Error) -> Ending {
    tracing::debug!("read failed: {e}");
    Ending::ReadFailed
}

/// Logs a report: the greet "says" line at info, bad input as warnings.
/// Shared with the event loops, so a report reads the same whatever the engine.
pub(super) fn note(conn: &Conn, report: &Report, observer: Option<&dyn Observer>) {
    let id = conn.id();
    match report {
        Report::Greeting(message) => {
            tracing::debug!(bytes = message.len(), "message framed");
            tracing::info!("Client {id} says: {}", printable(message));
        }
        Report::Line { len } => tracing::debug!(bytes = len, "line framed"),
        Report::Busy => {}
        Report::LineTooLong => tracing::warn!("client {id}: line too long, closing"),
        Report::InvalidUtf8 => tracing::warn!("client {id}: message is not valid UTF-8"),
        Report::IdleTimeout => tracing::warn!("client {id}: idle timeout, closing"),
        Report::ShuttingDown => tracing::debug!("client {id}: told the server is shutting down"),
    }
    if let Some(o) = observer {
        let len = match report {
            Report::Greeting(message) => Some(message.len()),
            Report::Line { len } => Some(*len),
            _ => None,
        };
        if let Some(len) = len {
            o.event(&Event::Message { id, len });
        }
    }
}

#[cfg(test)]
mod tests;
