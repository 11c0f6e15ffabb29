//! The third engine: the same [`Conn`](crate::conn::Conn) and the same core
//! (counter, limit, drain) on readiness event loops built on `mio`.
//!
//! A thread per connection waits in `read`; a thousand idle clients are a
//! thousand sleeping threads, each with its stack. An event loop waits for
//! *any* of its sockets to be ready and then does the little work there is,
//! so a few threads serve them all, and an idle connection costs what its
//! state costs: a `Conn`, a few guards, a slot — no stack, no read buffer.
//!
//! Each loop is one thread (`events-{i}`) that owns its `Poll`, its
//! listening socket, its connections and their deadlines
//! ([`event_loop`]); one connection's shell is [`connection`]. Only the core
//! and the [`control`] orders cross threads. Connections reach a loop
//! through a listening socket of its own: `SO_REUSEPORT` lets every loop
//! bind the same port and the kernel spreads new connections over them
//! ([`Listeners::PerLoop`], echo's default), or every loop watches one
//! shared socket ([`Listeners::Shared`], greet's); chapter 12 measures both.

pub mod connection;
pub mod control;
pub mod event_loop;
pub mod outgoing;
pub mod timers;

use super::lifecycle::Shared;
use super::running::{self, LiveStats, Summary};
use crate::conn::{Clock, Mode};
use crate::sync::{Arc, Std};
use control::{Control, Nudge};
use event_loop::{EventLoop, NUDGE};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

/// How connections reach the event loops. Measured (book chapter 12): each
/// way meets a target the other misses, so the default follows the mode
/// ([`Listeners::for_mode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listeners {
    /// Each loop has its own listening socket on the same port
    /// (`SO_REUSEPORT`); the kernel hands each new connection to one of
    /// them by a hash of its addresses. No hand-off between threads, no loop
    /// woken for nothing, and long-lived connections spread evenly; but a
    /// new connection waits for its loop even while another is idle.
    PerLoop,
    /// One listening socket, watched by every loop: each new connection
    /// wakes every loop, and one of them gets it. Each loop takes one
    /// connection a turn, so none takes a burst the others could serve:
    /// whichever loop is free first takes the next connection.
    Shared,
}

impl Listeners {
    /// The default for a server in `mode`: greet connections live for one
    /// message, so the slowest of them are the ones that waited for a busy
    /// loop, and sharing the listener cuts that wait; echo connections live
    /// for many, so an even spread over the loops matters more, and a loop
    /// that happened to be free at the wrong moments would keep more of them.
    pub fn for_mode(mode: Mode) -> Listeners {
        match mode {
            Mode::Greet => Listeners::Shared,
            Mode::Echo => Listeners::PerLoop,
        }
    }

    /// Connections a loop accepts in one go: many from a listener of its
    /// own, one from a shared one (see [`event_loop::SHARED_ACCEPT_BUDGET`]).
    fn accept_budget(self) -> usize {
        match self {
            Listeners::PerLoop => event_loop::ACCEPT_BUDGET,
            Listeners::Shared => event_loop::SHARED_ACCEPT_BUDGET,
        }
    }
}

/// Sets the socket options a listener needs before `bind` for `listeners`.
pub fn prepare(socket: &Socket, listeners: Listeners) -> io::Result<()> {
    if listeners == Listeners::PerLoop {
        socket.set_reuse_port(true)?;
    }
    Ok(())
}

/// The listening socket of each of `loops` loops, from the one `Server::bind` made.
fn listeners(
    first: TcpListener,
    loops: usize,
    how: Listeners,
    backlog: i32,
) -> io::Result<Vec<TcpListener>> {
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..loops {
        let next = match how {
            Listeners::Shared => all[0].try_clone()?,
            Listeners::PerLoop => bind_reuse_port(addr, backlog)?,
        };
        all.push(next);
    }
    for listener in &all {
        listener.set_nonblocking(true)?;
    }
    Ok(all)
}

fn bind_reuse_port(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// A running event-loop server.
pub struct Running {
    shared: Arc<Shared<Std>>,
    control: Arc<Control>,
    loops: Vec<JoinHandle<usize>>,
    grace: Duration,
}

impl Running {
    /// Starts `loops` event loops serving `listener`'s port.
    pub fn start<C: Clock>(
        listener: TcpListener,
        shared: Shared<Std>,
        clock: C,
        loops: usize,
        how: Listeners,
        backlog: i32,
        grace: Duration,
    ) -> io::Result<Self> {
        let loops = loops.max(1);
        let listeners = listeners(listener, loops, how, backlog)?;
        let shared = Arc::new(shared);
        let clock = Arc::new(clock);
        // The polls and their nudges first: the control needs every nudge before any loop runs.
        let mut polls = Vec::with_capacity(loops);
        let mut nudges: Vec<Box<dyn Nudge>> = Vec::with_capacity(loops);
        for _ in 0..loops {
            let poll = mio::Poll::new()?;
            nudges.push(Box::new(mio::Waker::new(poll.registry(), NUDGE)?));
            polls.push(poll);
        }
        let control = Arc::new(Control::new(nudges));
        let mut threads = Vec::with_capacity(loops);
        for (i, (poll, listener)) in polls.into_iter().zip(listeners).enumerate() {
            let listener = mio::net::TcpListener::from_std(listener);
            let event_loop = EventLoop::new(
                poll,
                listener,
                how.accept_budget(),
                shared.clone(),
                control.clone(),
                clock.clone(),
            );
            let started = event_loop.and_then(|event_loop| {
                std::thread::Builder::new()
                    .name(format!("events-{}", i + 1))
                    .spawn(move || event_loop.run())
            });
            match started {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    // Stop the loops already running before reporting the failure.
                    let started = Running {
                        shared,
                        control,
                        loops: threads,
                        grace: Duration::ZERO,
                    };
                    started.shutdown();
                    started.join();
                    return Err(e);
                }
            }
        }
        Ok(Running {
            shared,
            control,
            loops: threads,
            grace,
        })
    }

    /// Counts right now.
    pub fn stats(&self) -> LiveStats {
        running::stats(&self.shared)
    }

    // ANCHOR: shutdown
    /// Begins graceful shutdown; returns the live connections at that
    /// moment. Every loop is woken at once: it stops accepting and tells
    /// each of its connections.
    pub fn shutdown(&self) -> usize {
        let live = running::begin_shutdown(&self.shared);
        self.control.wake_all();
        live
    }
    // ANCHOR_END: shutdown

    /// Waits for every loop to finish (after [`Running::shutdown`]); cuts
    /// what is left after the grace period.
    pub fn join(self) -> Summary {
        let control = &self.control;
        let cut = running::drain_within_grace(&self.shared, self.grace, || control.cut());
        let mut panicked = 0;
        for event_loop in self.loops {
            panicked += event_loop.join().unwrap_or_else(|_| {
                tracing::error!("an event loop panicked");
                1
            });
        }
        running::summary(&self.shared, cut, panicked)
    }
}
