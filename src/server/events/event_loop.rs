//! One event loop: a thread that owns a `Poll`, a listening socket, its
//! connections and their timers, and serves all of them by waiting for
//! whichever is ready. Nothing here is shared with another thread but the
//! server's core (counter, limit, drain) and the [`Control`] orders.
//!
//! ```text
//! loop:
//!   poll (until an event, the next deadline, or a nudge)
//!   each ready socket: write what is queued, read what came, carry out the actions
//!   connections with more to read (readiness is edge-triggered: read until WouldBlock)
//!   the listener: accept, admit (lifecycle), register
//!   deadlines that passed: Conn::handle_timeout, or cut a client that stopped reading
//!   orders: shutdown → stop accepting, tell every connection; cut → close them all
//! until shutdown has come and the last connection is gone
//! ```

use super::connection::{Connection, Status};
use super::control::{Control, Orders};
use super::timers::Timers;
use crate::conn::{Clock, ECHO_READ_LEN, Now};
use crate::server::accept::AcceptErrors;
use crate::server::driver::Ending;
use crate::server::lifecycle::{self, Admission, Shared};
use crate::sync::{Arc, Std};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// The listening socket's token.
pub const LISTENER: Token = Token(0);
/// The nudge's token ([`Control`] wakes the loop through it).
pub const NUDGE: Token = Token(1);
/// Connection `i` has token `FIRST + i`.
const FIRST: usize = 2;

/// Reads one connection may make before the loop turns to the others: one,
/// so connections with input take turns read by read. A read of 8 KiB can
/// hold thousands of short lines, each answered before the next read; with
/// more reads per turn, one client flooding lines made the others on its
/// loop wait so long (most of a second, in a debug build) that their own
/// idle timeouts fired (`tests/hostile.rs`, the never-reader).
const READ_BUDGET: usize = 1;
/// Connections accepted in one go before the loop turns to the others, from
/// a listener of its own.
pub const ACCEPT_BUDGET: usize = 64;
/// The same from a listener every loop shares: one a turn. Whichever loop
/// comes to the listener first takes what waits there, and a loop that
/// took a burst would keep it all, to serve in turns, while another loop
/// sat idle (measured: the slowest connections then waited in the loop
/// that took them; `gen_tables.py tail`).
pub const SHARED_ACCEPT_BUDGET: usize = 1;

/// What one poll said of a connection's socket.
#[derive(Clone, Copy, Debug)]
struct Ready {
    /// It may have input, or an end of input or an error to read.
    readable: bool,
    /// It may take more bytes.
    writable: bool,
    /// The client closed its end or reset the connection.
    input_end: bool,
}

impl Ready {
    fn of(event: &mio::event::Event) -> Ready {
        let input_end = event.is_read_closed() || event.is_error();
        Ready {
            readable: event.is_readable() || input_end,
            writable: event.is_writable() || event.is_write_closed(),
            input_end,
        }
    }
}

/// One event loop and everything it owns.
pub struct EventLoop<C: Clock> {
    poll: Poll,
    events: Events,
    /// `None` once shutdown has begun: the backlog is not served.
    listener: Option<TcpListener>,
    /// The listener may have connections waiting (edge-triggered: until
    /// `accept` says `WouldBlock`).
    listener_ready: bool,
    /// Connections to accept in one go: [`ACCEPT_BUDGET`] or
    /// [`SHARED_ACCEPT_BUDGET`].
    accept_budget: usize,
    /// Accepting pauses after an error such as `EMFILE`, until this time or
    /// until one of our connections closes and gives a descriptor back.
    accept_paused_until: Option<Instant>,
    accept_errors: AcceptErrors,
    /// Connections by token; a freed slot is reused.
    slots: Vec<Option<Connection>>,
    free: Vec<usize>,
    live: usize,
    timers: Timers,
    /// Connections that may have more to read without a new event.
    ready: VecDeque<Token>,
    /// One read buffer for every connection of this loop: what a read
    /// returns is handed to the connection's `Conn` at once, so no
    /// connection keeps a buffer of its own while idle.
    buf: Vec<u8>,
    /// Events of the last poll, copied out so handling them can borrow the loop.
    scratch: Vec<(Token, Ready)>,
    orders: Orders,
    shared: Arc<Shared<Std>>,
    control: Arc<Control>,
    clock: Arc<C>,
    /// Connections whose handling panicked (an observer's panic): closed,
    /// their guards released, counted.
    panicked: usize,
}

impl<C: Clock> EventLoop<C> {
    /// A loop over `listener`, accepting up to `accept_budget` connections
    /// a turn; `poll` already has the nudge registered.
    pub fn new(
        poll: Poll,
        mut listener: TcpListener,
        accept_budget: usize,
        shared: Arc<Shared<Std>>,
        control: Arc<Control>,
        clock: Arc<C>,
    ) -> io::Result<Self> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(1024),
            listener: Some(listener),
            listener_ready: true,
            accept_budget,
            accept_paused_until: None,
            accept_errors: AcceptErrors::default(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            timers: Timers::default(),
            ready: VecDeque::new(),
            buf: vec![0; ECHO_READ_LEN],
            scratch: Vec::new(),
            orders: Orders::default(),
            shared,
            control,
            clock,
            panicked: 0,
        })
    }

    // ANCHOR: run
    /// Serves until shutdown has come and every connection has ended.
    /// Returns how many connections panicked.
    pub fn run(mut self) -> usize {
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut self.events, timeout)
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!("event loop: poll failed: {e}; closing its connections");
                self.close_all(Ending::ReadFailed);
                return self.panicked;
            }
            let now = self.clock.now();
            self.scratch.clear();
            for event in self.events.iter() {
                let ready = Ready::of(event);
                self.scratch.push((event.token(), ready));
            }
            for i in 0..self.scratch.len() {
                let (token, ready) = self.scratch[i];
                match token {
                    LISTENER => self.listener_ready = true,
                    NUDGE => {} // the orders are read below, after every poll
                    token => self.on_event(token, ready),
                }
            }
            self.read_ready();
            self.accept(now);
            self.fire_timers(now);
            let new = self.orders.read(&*self.shared.shutdown, &self.control);
            if new.shutdown {
                self.begin_shutdown(now);
            }
            if new.cut {
                self.close_all(Ending::Cut);
            }
            if self.orders.shutting_down() && self.live == 0 {
                return self.panicked;
            }
        }
    }
    // ANCHOR_END: run

    /// How long the next poll may wait: not at all while something is
    /// ready without an event, else until the next deadline.
    fn poll_timeout(&self) -> Option<Duration> {
        let accepting = self.listener_ready && self.listener.is_some();
        if !self.ready.is_empty() || (accepting && self.accept_paused_until.is_none()) {
            return Some(Duration::ZERO);
        }
        let retry = self.accept_paused_until.filter(|_| accepting);
        let next = match (self.timers.next(), retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }?;
        // Round up: a poll that returns a hair early would find nothing due and spin once more.
        let left = next.saturating_duration_since(Instant::now());
        Some(left + Duration::from_micros(500))
    }

    /// Runs `step` for one connection inside its span, and whatever it
    /// leaves to do (close it, file its timer, come back to read).
    fn with_connection(
        &mut self,
        token: Token,
        step: impl FnOnce(&mut Connection, &mut [u8], &Shared<Std>, &C) -> Status,
    ) {
        let Some(Some(connection)) = self.slots.get_mut(token.0 - FIRST) else {
            return; // closed earlier in this turn
        };
        let span = connection.span().clone();
        let _entered = span.enter();
        let (buf, shared, clock) = (&mut self.buf, &*self.shared, &*self.clock);
        // An observer is user code and may panic; that must cost this connection, not the loop.
        let status =
            std::panic::catch_unwind(AssertUnwindSafe(|| step(connection, buf, shared, clock)));
        match status {
            Ok(Status::Open) => self.after(token),
            Ok(Status::Done(ending)) => self.close(token, ending),
            Err(_) => {
                tracing::error!("a connection's handler panicked; closing it");
                self.panicked += 1;
                self.discard(token);
            }
        }
    }

    /// Each connection's step reads the clock afresh: what it reads now
    /// may have arrived after the turn began, and a deadline counted from
    /// the turn's start would fire early.
    fn on_event(&mut self, token: Token, ready: Ready) {
        self.with_connection(token, |c, buf, shared, clock| {
            if ready.writable
                && let Status::Done(ending) = c.on_writable(clock, shared)
            {
                return Status::Done(ending);
            }
            if ready.input_end {
                c.saw_input_end();
            }
            if ready.readable {
                return c.on_readable(buf, READ_BUDGET, clock, shared);
            }
            Status::Open
        });
    }

    /// Connections left with more to read get another turn.
    fn read_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            let wants = matches!(self.slots.get(token.0 - FIRST), Some(Some(c)) if c.wants_read());
            if wants {
                self.with_connection(token, |c, buf, shared, clock| {
                    c.on_readable(buf, READ_BUDGET, clock, shared)
                });
            }
        }
    }

    /// After a connection's step: come back to read if it has more, and
    /// make sure its deadline is filed.
    fn after(&mut self, token: Token) {
        let write_timeout = self.shared.conn.idle_timeout;
        if let Some(Some(c)) = self.slots.get_mut(token.0 - FIRST) {
            if c.wants_read() {
                self.ready.push_back(token);
            }
            let want = c.deadline(write_timeout);
            c.filed = self.timers.file(token, c.filed, want);
        }
    }

    /// Deadlines that passed.
    fn fire_timers(&mut self, now: Now) {
        let write_timeout = self.shared.conn.idle_timeout;
        while let Some(token) = self.timers.pop_due(now.instant) {
            if let Some(Some(c)) = self.slots.get_mut(token.0 - FIRST) {
                c.filed = None;
                self.with_connection(token, |c, _, shared, _| {
                    c.on_timer(now, write_timeout, shared)
                });
            }
        }
    }

    // ANCHOR: accept
    /// Accepts what is waiting, admits each connection and registers it.
    fn accept(&mut self, now: Now) {
        if !self.listener_ready {
            return;
        }
        if let Some(until) = self.accept_paused_until {
            if now.instant < until {
                return;
            }
            self.accept_paused_until = None;
        }
        for _ in 0..self.accept_budget {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.accept_errors.recovered();
                    // Its idle time counts from now, not from the turn's start: it may have
                    // connected since (the turn served others first), and would be cut early.
                    let accepted = self.clock.now();
                    self.admit(stream, peer, accepted);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.listener_ready = false;
                    return;
                }
                Err(e) => {
                    // Out of descriptors: the waiting connections stay in the backlog and, the
                    // readiness being edge-triggered, will raise no new event. So keep
                    // `listener_ready` and try again after a pause, or as soon as one of our
                    // connections closes — never in a tight loop.
                    if let Some(pause) = self.accept_errors.failed(&e) {
                        self.accept_paused_until = Some(now.instant + pause);
                        return;
                    }
                }
            }
        }
        // The budget ran out with more perhaps waiting: the next poll will not block.
    }
    // ANCHOR_END: accept

    fn admit(&mut self, stream: TcpStream, peer: SocketAddr, now: Now) {
        let connection = match lifecycle::admit(stream, peer, &self.shared, now) {
            Admission::Unserved => return,
            Admission::Busy(stream, conn, span) => {
                Connection::new(stream, conn, None, span, now.instant)
            }
            Admission::Admitted(admitted) => {
                let span = admitted.held.span().clone();
                Connection::new(
                    admitted.stream,
                    admitted.conn,
                    Some(admitted.held),
                    span,
                    now.instant,
                )
            }
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let token = Token(FIRST + index);
        let slot = &mut self.slots[index];
        let connection = slot.insert(connection);
        self.live += 1;
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(connection.stream(), token, interest)
        {
            tracing::error!("cannot register a connection with the event loop: {e}");
            self.close(token, Ending::ReadFailed);
            return;
        }
        self.with_connection(token, |c, _, shared, _| c.start(now, shared));
    }

    /// Shutdown began: stop accepting, tell every connection.
    fn begin_shutdown(&mut self, now: Now) {
        if let Some(mut listener) = self.listener.take() {
            drop(self.poll.registry().deregister(&mut listener));
        }
        for index in 0..self.slots.len() {
            if self.slots[index].is_some() {
                let token = Token(FIRST + index);
                self.with_connection(token, |c, _, shared, _| c.on_shutdown(now, shared));
            }
        }
    }

    /// Closes every connection (the grace period is over, or the loop failed).
    fn close_all(&mut self, ending: Ending) {
        for index in 0..self.slots.len() {
            if self.slots[index].is_some() {
                self.close(Token(FIRST + index), ending);
            }
        }
    }

    /// Closes a connection that ended, and releases it. No `deregister`:
    /// closing the socket's only descriptor takes it out of the poll set,
    /// and the system call would be one more per connection.
    fn close(&mut self, token: Token, ending: Ending) {
        if let Some(connection) = self.take(token) {
            let shared = self.shared.clone();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                connection.finish(ending, &shared);
            }));
            if result.is_err() {
                // The guards were released while unwinding; the observer's panic is counted.
                self.panicked += 1;
            }
        }
    }

    /// Drops a connection whose handling panicked: its guards are released
    /// by their drops, without the usual log lines.
    fn discard(&mut self, token: Token) {
        drop(self.take(token));
    }

    fn take(&mut self, token: Token) -> Option<Connection> {
        let index = token.0 - FIRST;
        let connection = self.slots.get_mut(index)?.take()?;
        self.free.push(index);
        self.live -= 1;
        self.timers.remove(token, connection.filed);
        // A descriptor came back: if accepting was paused for lack of them, try again now.
        if self.accept_paused_until.is_some() {
            self.accept_paused_until = Some(Instant::now());
        }
        Some(connection)
    }
}
