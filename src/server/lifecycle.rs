//! A connection's life at the edges where it touches shared state: admission
//! (shutting down? → permit or busy → id → live) and release, written once
//! for every engine and generic over the backend (`B`) and the stream. The
//! TCP server runs it with `Std`; the loom model in `tests/loom_lifecycle.rs`
//! runs it with `Loom` and in-memory pipes.
//!
//! ```text
//! accept ─▶ shutting down? ─yes─▶ drop (the backlog is not served)
//!             │ no
//!             ▼
//!          limit permit? ─no─▶ Busy: the engine answers the busy line, no id, counted refused
//!             │ yes
//!             ▼
//!          live in the drain ─▶ client id ─▶ Admitted ─▶ the engine serves it
//!                                                          │
//!                     release: client (served), live (drain), permit (limit)
//! ```
//!
//! What happens between admission and release — a thread, a pool worker or
//! an event loop, blocking reads or readiness — is the engine's business:
//! [`serve`] here is the blocking engines' way (register a waker, drive,
//! deregister).

use super::driver::{self, Context, Ending};
use super::observe::{Event, Observer};
use super::transport::Stream;
use crate::conn::{Clock, Conn, ConnConfig, Mode, Now};
use crate::counter::{ClientGuard, Counter};
use crate::limit::{Limit, Limiter, Permit};
use crate::registry::{Registry, Roster};
use crate::shutdown::{Drain, Live, Shutdown};
use crate::sync::{Arc, AtomicU64, Backend, Ordering};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use tracing::Span;

/// Everything the threads of one server share. Each field is an `Arc` (or
/// inside one) because threads come and go in any order; the last one out
/// frees it.
pub struct Shared<B: Backend> {
    /// Protocol settings every connection copies.
    pub conn: ConnConfig,
    /// Ids and active/peak/served counts; chosen at run time
    /// ([`CounterKind`](crate::counter::CounterKind)), shared by every
    /// connection's [`ClientGuard`].
    pub counter: Arc<dyn Counter>,
    /// `--max-connections`: each accepted connection holds a permit until
    /// it is released; at the limit the connection is answered busy.
    pub limit: Arc<Limit<B>>,
    /// Threads answering refused connections right now; each holds a permit
    /// until it has drained and closed. Past the cap the accept loop answers
    /// without a thread ([`driver::answer_without_waiting`]). Only the
    /// blocking engines start such threads.
    pub busy: Arc<Limit<B>>,
    /// The shutdown flag and the drain; each accepted connection holds a
    /// [`Live`] guard until it is released.
    pub shutdown: Arc<Shutdown<B>>,
    /// Busy answers sent. Only the thread that admits writes it; `Relaxed`
    /// because it is read after `join`, which orders everything before it.
    pub refused: B::AtomicU64,
    /// Stack size of connection threads.
    pub stack_size: Option<usize>,
    /// The engine's name, for the connection spans.
    pub engine: &'static str,
    /// Event hook (the demo's timeline, tests).
    pub observer: Option<Arc<dyn Observer>>,
}

impl<B: Backend> Shared<B> {
    /// Whether shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_shutting_down()
    }

    /// Tells the observer, if any, from the thread that admits or the
    /// shutdown path. A panicking observer is caught here: on the accept
    /// thread it would otherwise end the accept loop, and with it the
    /// server. (Events on a connection's thread do not come through here: a
    /// panic there is a handler panic, contained and counted like any other.)
    pub fn observe(&self, event: Event) {
        if let Some(o) = &self.observer {
            let told = std::panic::catch_unwind(AssertUnwindSafe(|| o.event(&event)));
            if told.is_err() {
                tracing::error!("the observer panicked on {event:?}; going on without it");
            }
        }
    }

    /// The driver's view of this server.
    pub fn context<'a>(&'a self, shutting_down: &'a dyn Fn() -> bool) -> Context<'a> {
        Context {
            shutting_down,
            // A write that makes no progress for the idle timeout means the client
            // stopped reading: give up on it (PROTOCOL.md, limits table).
            write_timeout: self.conn.idle_timeout,
            observer: self.observer.as_deref(),
        }
    }
}

// ANCHOR: admitted
/// A connection that passed the limit and the shutdown check and has an id:
/// what an engine needs to serve it. Dropping it anywhere — served, failed
/// to start, panicked — releases all three guards.
pub struct Admitted<S: Send, B: Backend> {
    /// The connection's byte stream.
    pub stream: S,
    /// The protocol state machine, created at admission.
    pub conn: Conn,
    /// The guards and the log context, released in order by [`Held::release`].
    pub held: Held<B>,
}

/// What an admitted connection holds until it ends.
pub struct Held<B: Backend> {
    peer: SocketAddr,
    /// The connection's span (`conn{peer engine id}`), entered by whichever
    /// thread serves it, for its whole life.
    span: Span,
    // Field order is drop order: counted served before the drain sees it go.
    client: ClientGuard,
    live: Live<Shutdown<B>>,
    permit: Permit<Limit<B>>,
}
// ANCHOR_END: admitted

/// What [`admit`] decided.
pub enum Admission<S: Send, B: Backend> {
    /// Serve it.
    Admitted(Admitted<S, B>),
    /// At the connection limit: send the busy line (the `Conn` says it),
    /// drain and close. No id, counted refused.
    Busy(S, Conn, Span),
    /// Shutdown has begun: close it unserved, like the rest of the backlog.
    Unserved,
}

// ANCHOR: admit
/// Admits one accepted connection: busy, unserved, or guards and an id.
/// Everything it logs, it logs before returning, so a connection's first
/// lines come in order whatever thread serves it next.
pub fn admit<B, S>(stream: S, peer: SocketAddr, shared: &Shared<B>, now: Now) -> Admission<S, B>
where
    B: Backend,
    S: Send,
{
    let span = tracing::debug_span!(
        "conn",
        peer = %peer,
        engine = %shared.engine,
        id = tracing::field::Empty
    );
    let _entered = span.enter();
    tracing::debug!("accepted");
    if shared.shutting_down() {
        tracing::debug!("shutdown has begun: closed unserved");
        return Admission::Unserved;
    }
    // ANCHOR: busy
    let Some(permit) = shared.limit.try_acquire() else {
        if shared.shutting_down() {
            // Shutdown closed the limit after our check: this connection is
            // part of the backlog, not a busy refusal.
            tracing::debug!("shutdown has begun: closed unserved");
            return Admission::Unserved;
        }
        shared.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("connection limit reached: refusing {peer}");
        shared.observe(Event::Refused { peer });
        let conn = Conn::busy(&shared.conn, now.instant);
        drop(_entered);
        return Admission::Busy(stream, conn, span);
    };
    tracing::debug!(
        in_use = shared.limit.in_use(),
        max = shared.limit.max(),
        "permit taken"
    );
    let Some(live) = shared.shutdown.try_enter() else {
        tracing::debug!("shutdown has begun: closed unserved");
        return Admission::Unserved;
    };
    // ANCHOR_END: busy
    let client = ClientGuard::new(shared.counter.clone());
    let id = client.id();
    span.record("id", id);
    tracing::debug!(live = shared.shutdown.live(), "id given");
    match shared.conn.mode {
        Mode::Greet => tracing::info!("Client {id} connected from {peer}"),
        Mode::Echo => tracing::info!("[+] Connected: {peer}"),
    }
    shared.observe(Event::Connected { id, peer });
    drop(_entered);
    Admission::Admitted(Admitted {
        stream,
        conn: Conn::new(&shared.conn, id, now.instant),
        held: Held {
            peer,
            span,
            client,
            live,
            permit,
        },
    })
}
// ANCHOR_END: admit

impl<B: Backend> Held<B> {
    /// The client id.
    pub fn id(&self) -> u64 {
        self.client.id()
    }

    /// The connection's span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The connection has ended: log it, tell the observer, and release the
    /// guards — counted served before the drain sees it go, so the summary
    /// printed after the drain is exact; the slot is freed last. Call it
    /// inside the connection's span.
    pub fn release(self, ending: Ending, shared: &Shared<B>) {
        let Held {
            peer,
            span: _,
            client,
            live,
            permit,
        } = self;
        let id = client.id();
        match shared.conn.mode {
            Mode::Greet => tracing::info!("Client {id} disconnected."),
            Mode::Echo => tracing::info!("[-] Disconnected: {peer}"),
        }
        if ending != Ending::Closed {
            tracing::debug!("ended: {ending:?}");
        }
        if let Some(o) = &shared.observer {
            // Not `Shared::observe`: on a connection's thread an observer's panic is a handler
            // panic like any other, contained by the thread (or pool worker) and counted.
            o.event(&Event::Closed { id });
        }
        drop(client);
        drop(live);
        drop(permit);
        tracing::debug!(
            active = shared.counter.stats().active,
            live = shared.shutdown.live(),
            permits_in_use = shared.limit.in_use(),
            "released"
        );
    }
}

// ANCHOR: serve
/// Serves one admitted connection to the end on the current thread: the
/// blocking engines' way (a thread per connection, or a pool worker). The
/// connection registers a waker in `roster` so shutdown can reach it while
/// it is blocked in `read`.
pub fn serve<B, S, C>(
    admitted: Admitted<S, B>,
    shared: &Shared<B>,
    roster: &Arc<Roster<S::Waker, B>>,
    clock: &C,
) where
    B: Backend,
    S: Stream,
    C: Clock + ?Sized,
{
    let Admitted {
        mut stream,
        mut conn,
        held,
    } = admitted;
    let span = held.span().clone();
    let _entered = span.enter();
    let id = held.id();
    if matches!(shared.conn.mode, Mode::Echo) {
        // Here, not in the accept loop: it is a system call, and the accept
        // loop is the one thread every connection waits for.
        if let Err(e) = stream.set_nodelay() {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    }
    // Register a waker so shutdown can reach us in `read`. Refused means
    // shutdown already took the list: we tell ourselves instead.
    let registration = match roster.register(id, stream.waker()) {
        Ok(registration) => {
            tracing::debug!("registered for shutdown");
            Some(registration)
        }
        Err(_) => {
            tracing::debug!("shutdown has begun: not registered");
            conn.handle_shutdown(clock.now());
            None
        }
    };
    let shutting_down = || shared.shutting_down();
    let ending = driver::drive(
        &mut stream,
        &mut conn,
        clock,
        &shared.context(&shutting_down),
    );
    if registration.is_some() {
        drop(registration);
        tracing::debug!("deregistered");
    }
    drop(stream);
    held.release(ending, shared);
}
// ANCHOR_END: serve

/// Answers a refused connection: the busy line, drain, close. Not
/// registered, but draining ends on its own within `drain_timeout`.
pub fn answer_busy<B, S, C>(
    mut stream: S,
    mut conn: Conn,
    span: &Span,
    shared: &Shared<B>,
    clock: &C,
) where
    B: Backend,
    S: Stream,
    C: Clock + ?Sized,
{
    let _entered = span.enter();
    let shutting_down = || shared.shutting_down();
    driver::drive(
        &mut stream,
        &mut conn,
        clock,
        &shared.context(&shutting_down),
    );
}
