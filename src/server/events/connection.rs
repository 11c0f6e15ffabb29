//! One connection on an event loop: the same [`Conn`] as the thread engines
//! run, behind a shell that never blocks. Where the blocking driver waits in
//! `read` or `write`, this one returns to the loop and is called again when
//! the socket is ready.
//!
//! Three things a blocking thread gets for free must be done by hand here:
//! * **Replies queue up.** A write takes what fits in the socket's buffer;
//!   the rest waits in [`Outgoing`] until the socket is writable again.
//! * **A client that never reads is not allowed to make the queue grow.**
//!   Past [`OUT_LIMIT`](super::outgoing::OUT_LIMIT) queued bytes the connection stops reading — the
//!   client's later lines wait in the kernel — and a write that makes no
//!   progress for the write timeout closes it (PROTOCOL.md: "a write that
//!   makes no progress for `--idle-timeout` seconds").
//! * **Time spent waiting for the client to read is not idleness.** As in the
//!   blocking driver (`WaitClock`), the connection's deadlines run on a
//!   clock that stops while replies are stuck in the queue.

use super::outgoing::Outgoing;
use crate::conn::{Action, Clock, Conn, Now};
use crate::server::driver::{self, Ending};
use crate::server::lifecycle::{Held, Shared};
use crate::server::observe::Event;
use crate::sync::Std;
use mio::net::TcpStream;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};
use tracing::Span;

/// Whether a connection is still open after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Still open.
    Open,
    /// Finished; the loop closes it and releases it.
    Done(Ending),
}

/// One connection served by an event loop.
pub struct Connection {
    stream: TcpStream,
    conn: Conn,
    /// The guards of an admitted connection; `None` for a busy answer.
    held: Option<Held<Std>>,
    span: Span,
    out: Outgoing,
    /// `ShutdownWrite` came while replies were queued: do it once they are out.
    shutdown_write_pending: bool,
    /// `Close` came while replies were queued: close once they are out.
    close_pending: bool,
    /// Writing is shut down and the client's input is being read away (for the log).
    draining: bool,
    /// Reading stopped because too much is queued for this client.
    paused: bool,
    /// Readiness is edge-triggered: once the socket was reported readable, it
    /// stays so for us until a read says `WouldBlock` or comes back short.
    readable: bool,
    /// The input has an end to be read (the client closed or reset, or
    /// shutdown shut our reading side): no new event will come for it, so
    /// reading goes on until a read says so.
    input_end_seen: bool,
    /// Time the connection has spent with replies stuck in the queue, and
    /// since when it is stuck now: the wait clock's offset.
    stalled_for: Duration,
    stalled_since: Option<Instant>,
    /// The last time a write made progress while replies were queued.
    last_progress: Instant,
    /// Where the loop's timers have this connection filed.
    pub filed: Option<Instant>,
}

impl Connection {
    /// A connection to serve: admitted (with its guards) or busy (without).
    pub fn new(
        stream: TcpStream,
        conn: Conn,
        held: Option<Held<Std>>,
        span: Span,
        now: Instant,
    ) -> Self {
        Connection {
            stream,
            conn,
            held,
            span,
            out: Outgoing::default(),
            shutdown_write_pending: false,
            close_pending: false,
            draining: false,
            paused: false,
            // Not until the poll says so: registering a socket that already has input raises
            // an event at once, and reading before that would often just say `WouldBlock`.
            readable: false,
            input_end_seen: false,
            stalled_for: Duration::ZERO,
            stalled_since: None,
            last_progress: now,
            filed: None,
        }
    }

    /// The socket, for (de)registering with the loop's `Poll`.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The connection's span, entered around everything done for it.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Whether the loop should read again without waiting for an event.
    pub fn wants_read(&self) -> bool {
        self.readable && !self.paused && !self.conn.is_closed() && !self.close_pending
    }

    /// When the loop must call [`Connection::on_timer`], in real time.
    pub fn deadline(&self, write_timeout: Duration) -> Option<Instant> {
        if self.stalled_since.is_some() {
            // The wait clock is stopped: only the write timeout can fire.
            return self.last_progress.checked_add(write_timeout);
        }
        self.conn.poll_timeout().map(|d| d + self.stalled_for)
    }

    /// `now` on the connection's wait clock.
    fn wait_clock(&self, now: Now) -> Now {
        let stopped = self
            .stalled_since
            .map_or(Duration::ZERO, |s| now.instant - s);
        let offset = self.stalled_for + stopped;
        Now {
            instant: now.instant.checked_sub(offset).unwrap_or(now.instant),
            wall: now.wall,
        }
    }

    /// Sets up the socket and carries out whatever the connection already
    /// has to say (a busy answer).
    pub fn start(&mut self, now: Now, shared: &Shared<Std>) -> Status {
        let echo = matches!(self.conn.mode(), crate::conn::Mode::Echo);
        if self.held.is_some()
            && echo
            && let Err(e) = self.stream.set_nodelay(true)
        {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        self.carry_out(now, shared)
    }

    /// The input has an end waiting to be read: the poll reported that the
    /// client closed or reset its end, or shutdown shut our reading side.
    pub fn saw_input_end(&mut self) {
        self.input_end_seen = true;
    }

    /// The socket may have input: read until it has none, at most `budget`
    /// reads (the loop comes back for the rest, so one busy client cannot
    /// hold the loop up). The clock is read after each read, as the blocking
    /// driver does: a line's time is when it was read, never before it came.
    pub fn on_readable<C: Clock + ?Sized>(
        &mut self,
        buf: &mut [u8],
        budget: usize,
        clock: &C,
        shared: &Shared<Std>,
    ) -> Status {
        self.readable = true;
        for _ in 0..budget {
            if !self.wants_read() {
                break;
            }
            let len = self.conn.read_buf_len().min(buf.len());
            let read = self.stream.read(&mut buf[..len]);
            let now = clock.now();
            match read {
                Ok(0) => {
                    self.readable = false;
                    tracing::debug!("end of input");
                    let at = self.wait_clock(now);
                    self.conn.handle_eof(at);
                }
                Ok(n) => {
                    tracing::trace!(bytes = n, "read");
                    // A read that did not fill what it offered emptied the socket: with
                    // edge-triggered readiness, bytes that come later raise a new event
                    // (epoll(7), question 9; tokio's `PollEvented` relies on the same).
                    // Reading again now would only say `WouldBlock`: one system call
                    // per message saved.
                    // Not so once the client closed or reset: the end came with the bytes, its
                    // one event is spent, and only reading on finds it (`saw_input_end`).
                    if n < len && !self.input_end_seen {
                        self.readable = false;
                    }
                    let at = self.wait_clock(now);
                    self.conn.handle_data(&buf[..n], at);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!("read failed: {e}");
                    return Status::Done(Ending::ReadFailed);
                }
            }
            if let Status::Done(ending) = self.carry_out(now, shared) {
                return Status::Done(ending);
            }
        }
        Status::Open
    }

    /// The socket may take more bytes. Most such events come with nothing
    /// queued (every socket is writable when registered): the clock is read
    /// only when there is something to write.
    pub fn on_writable<C: Clock + ?Sized>(&mut self, clock: &C, shared: &Shared<Std>) -> Status {
        if self.out.is_empty() {
            return Status::Open;
        }
        let now = clock.now();
        match self.flush(now, shared) {
            Ok(()) => self.after_flush(now, shared),
            Err(ending) => Status::Done(ending),
        }
    }

    /// A deadline may have passed.
    pub fn on_timer(&mut self, now: Now, write_timeout: Duration, shared: &Shared<Std>) -> Status {
        if self.stalled_since.is_some() {
            if now.instant >= self.last_progress + write_timeout {
                tracing::debug!(
                    "no write progress for {write_timeout:?}: the client stopped reading"
                );
                return Status::Done(Ending::WriteFailed);
            }
            return Status::Open;
        }
        let at = self.wait_clock(now);
        self.conn.handle_timeout(at);
        self.carry_out(now, shared)
    }

    /// Shutdown has begun: the connection is told, then its reading side is
    /// shut down — what the blocking engines' waker does to a thread blocked
    /// in `read` — so a connection that is draining ends at its next read
    /// instead of waiting out its drain, whichever engine serves it.
    pub fn on_shutdown(&mut self, now: Now, shared: &Shared<Std>) -> Status {
        tracing::debug!("shutdown seen");
        let at = self.wait_clock(now);
        self.conn.handle_shutdown(at);
        if let Status::Done(ending) = self.carry_out(now, shared) {
            return Status::Done(ending);
        }
        // Errors mean the peer went away already; reading will tell.
        drop(self.stream.shutdown(Shutdown::Read));
        // Reads now end at once with end-of-file; the loop comes back to read it. The end is
        // ours, not the client's: no event need report it, so a short read of what was still
        // buffered must not stop the reading before it (the short-read rule in `on_readable`).
        self.readable = true;
        self.saw_input_end();
        Status::Open
    }

    /// Takes the connection's actions and does what it can of them now.
    fn carry_out(&mut self, now: Now, shared: &Shared<Std>) -> Status {
        while let Some(action) = self.conn.poll_action() {
            match action {
                Action::Send(bytes) => {
                    let len = bytes.len();
                    if self.out.is_empty() {
                        match self.write_now(&bytes, now) {
                            Ok(n) if n == len => {
                                tracing::debug!(bytes = len, "reply written");
                                self.replied(shared, len);
                            }
                            Ok(n) => {
                                tracing::debug!(bytes = len, queued = len - n, "reply queued");
                                self.out.push(&bytes[n..], len);
                            }
                            Err(ending) => return Status::Done(ending),
                        }
                    } else {
                        tracing::debug!(bytes = len, queued = len, "reply queued");
                        self.out.push(&bytes, len);
                    }
                    if self.out.is_over_limit() && !self.paused {
                        self.paused = true;
                        tracing::debug!(
                            queued = self.out.len(),
                            "client not reading: reading paused"
                        );
                    }
                }
                Action::ShutdownWrite => {
                    if self.out.is_empty() {
                        self.shutdown_write();
                    } else {
                        self.shutdown_write_pending = true;
                    }
                }
                Action::Close => {
                    if self.out.is_empty() {
                        return self.closed();
                    }
                    self.close_pending = true;
                }
                Action::Report(report) => {
                    driver::note(&self.conn, &report, shared.observer.as_deref())
                }
            }
        }
        Status::Open
    }

    /// Writes what the socket takes now; a stall starts the stall clock.
    fn write_now(&mut self, bytes: &[u8], now: Now) -> Result<usize, Ending> {
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) => return Err(Ending::WriteFailed),
                Ok(n) => {
                    tracing::trace!(bytes = n, "wrote");
                    written += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!("write failed: {e}");
                    return Err(Ending::WriteFailed);
                }
            }
        }
        if written < bytes.len() && self.stalled_since.is_none() {
            // The clock now, not the loop's reading from before this turn's work: the write
            // timeout counts from the write that could not finish.
            let stalled = Instant::now().max(now.instant);
            self.stalled_since = Some(stalled);
            self.last_progress = stalled;
        }
        Ok(written)
    }

    /// Writes queued bytes until the socket takes no more.
    fn flush(&mut self, now: Now, shared: &Shared<Std>) -> Result<(), Ending> {
        while !self.out.is_empty() {
            let pending = self.out.pending();
            match self.stream.write(pending) {
                Ok(0) => return Err(Ending::WriteFailed),
                Ok(n) => {
                    tracing::trace!(bytes = n, "wrote");
                    self.last_progress = Instant::now().max(now.instant);
                    for len in self.out.advance(n) {
                        tracing::debug!(bytes = len, "reply written");
                        self.replied(shared, len);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!("write failed: {e}");
                    return Err(Ending::WriteFailed);
                }
            }
        }
        Ok(())
    }

    /// After queued bytes went out: stop the stall clock, resume reading,
    /// and do what waited for the queue to empty.
    fn after_flush(&mut self, now: Now, shared: &Shared<Std>) -> Status {
        if self.paused && self.out.has_room_to_read() {
            self.paused = false;
            tracing::debug!(queued = self.out.len(), "reading resumed");
        }
        if !self.out.is_empty() {
            return Status::Open;
        }
        if let Some(since) = self.stalled_since.take() {
            self.stalled_for += now.instant - since;
        }
        if self.shutdown_write_pending {
            self.shutdown_write_pending = false;
            self.shutdown_write();
        }
        if self.close_pending {
            return self.closed();
        }
        // Replies queued while paused may have made the connection want more input.
        self.carry_out(now, shared)
    }

    fn shutdown_write(&mut self) {
        // The peer may be gone already; reading will tell.
        drop(self.stream.shutdown(Shutdown::Write));
        self.draining = true;
        tracing::debug!("writing shut down; draining the client's input");
    }

    fn closed(&mut self) -> Status {
        if self.draining {
            tracing::debug!(discarded = self.conn.discarded(), "drain ended");
        }
        Status::Done(Ending::Closed)
    }

    fn replied(&self, shared: &Shared<Std>, len: usize) {
        if let Some(o) = &shared.observer {
            o.event(&Event::Replied {
                id: self.conn.id(),
                len,
            });
        }
    }

    /// The connection has ended: close the socket, then release the guards
    /// (an admitted connection logs its disconnect there).
    pub fn finish(self, ending: Ending, shared: &Shared<Std>) {
        let Connection {
            stream, held, span, ..
        } = self;
        let _entered = span.enter();
        drop(stream);
        if let Some(held) = held {
            held.release(ending, shared);
        }
    }

    /// Bytes queued for this client (for tests).
    pub fn queued(&self) -> usize {
        self.out.len()
    }
}

#[cfg(test)]
mod tests;
