//! Drives one [`Conn`] over one [`Stream`]: read, hand the bytes to the
//! state machine, carry out what it says. All protocol decisions live in
//! `conn`; this loop only moves bytes and turns deadlines into socket
//! timeouts. It is the same code for TCP and for the in-memory pipes loom
//! runs.

use super::observe::{Event, Observer};
use super::transport::Stream;
use crate::conn::{Action, Clock, Conn, Report, printable};
use std::io::{self, ErrorKind};
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
}

/// What the driver needs from the server around it.
pub struct Context<'a> {
    /// Polled before every read: once true, the connection is told to shut down.
    pub shutting_down: &'a dyn Fn() -> bool,
    /// Where events go, if anywhere.
    pub observer: Option<&'a dyn Observer>,
    /// For a connection shutdown cannot wake (no waker could be made, e.g.
    /// out of file descriptors): the longest a read may block before the
    /// shutdown flag is polled again. `None` when shutdown wakes it.
    pub poll_shutdown: Option<Duration>,
}

/// Runs `conn` over `stream` until the connection closes.
pub fn drive<S: Stream, C: Clock + ?Sized>(
    stream: &mut S,
    conn: &mut Conn,
    clock: &C,
    cx: &Context<'_>,
) -> Ending {
    let mut buf = vec![0; conn.read_buf_len()];
    let mut told_shutdown = false;
    // The read timeout currently set on the socket, to skip a syscall per
    // read: deadlines only move later, so a timeout that is too short just
    // wakes us early to re-arm it.
    let mut armed: Option<Duration> = None;
    loop {
        while let Some(action) = conn.poll_action() {
            match action {
                Action::Send(bytes) => {
                    if stream.write_all(&bytes).is_err() {
                        return Ending::WriteFailed;
                    }
                    if let Some(o) = cx.observer {
                        let len = bytes.len();
                        o.event(&Event::Replied { id: conn.id(), len });
                    }
                }
                // The peer may be gone already; reading will tell.
                Action::ShutdownWrite => drop(stream.shutdown_write()),
                Action::Close => return Ending::Closed,
                Action::Report(report) => note(conn, &report, cx),
            }
        }
        let now = clock.now();
        if !told_shutdown && (cx.shutting_down)() {
            told_shutdown = true;
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
            let wait = cx.poll_shutdown.map_or(left, |poll| left.min(poll));
            if armed.is_none_or(|a| a > wait) {
                // A zero timeout is an error for sockets; `wait` is non-zero.
                if stream.set_read_timeout(Some(wait)).is_err() {
                    return Ending::ReadFailed;
                }
                armed = Some(wait);
            }
        }
        match stream.read(&mut buf) {
            Ok(0) if (cx.shutting_down)() && !told_shutdown => {
                // Woken by shutdown (the registry shut our read side down).
                told_shutdown = true;
                conn.handle_shutdown(clock.now());
            }
            Ok(0) => conn.handle_eof(clock.now()),
            Ok(n) => conn.handle_data(&buf[..n], clock.now()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                armed = None;
                conn.handle_timeout(clock.now());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return read_failed(e),
        }
    }
}

fn read_failed(e: io::Error) -> Ending {
    tracing::debug!("read failed: {e}");
    Ending::ReadFailed
}

/// Logs a report: the greet "says" line at info, bad input as warnings.
fn note(conn: &Conn, report: &Report, cx: &Context<'_>) {
    let id = conn.id();
    match report {
        Report::Greeting(message) => {
            tracing::info!("Client {id} says: {}", printable(message));
        }
        Report::Line { .. } | Report::Busy => {}
        Report::LineTooLong => tracing::warn!("client {id}: line too long, closing"),
        Report::InvalidUtf8 => tracing::warn!("client {id}: message is not valid UTF-8"),
        Report::IdleTimeout => tracing::warn!("client {id}: idle timeout, closing"),
        Report::ShuttingDown => tracing::debug!("client {id}: told the server is shutting down"),
    }
    if let Some(o) = cx.observer {
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
