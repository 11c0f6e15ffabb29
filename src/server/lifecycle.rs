//! A connection's life, from `accept` to the last join — the part of the
//! server that touches shared state, written once and generic over the
//! backend (`B`), the network (`L`) and the clock (`C`). The TCP server is
//! this code with `Std`, `TcpListener` and the system clock; the loom model
//! in `tests/loom_lifecycle.rs` is this code with `Loom`, in-memory pipes
//! and a fixed clock.
//!
//! ```text
//! accept ─▶ shutting down? ─yes─▶ drop (the backlog is not served)
//!             │ no
//!             ▼
//!          limit permit? ─no─▶ busy line, drain, close (no id, counted refused)
//!             │ yes
//!             ▼
//!          live in the drain ─▶ client id ─▶ thread `client-{id}` (or the pool's queue)
//!                                              │
//!                        register waker ─▶ serve (driver) ─▶ deregister
//!                                              │
//!                     drop guards: client (served), live (drain), permit (limit)
//! ```

use super::driver::{self, Context, Ending};
use super::observe::{Event, Observer};
use super::pool::WorkQueue;
use super::transport::{Listener, Stream, Wake};
use crate::conn::{Action, Clock, Conn, ConnConfig, Mode};
use crate::counter::{ClientGuard, Counter};
use crate::limit::{Limit, Limiter, Permit};
use crate::registry::{self, Registry};
use crate::shutdown::{Drain, Live, Shutdown};
use crate::sync::{Arc, AtomicU64, Backend, JoinHandle, Ordering};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// Everything the threads of one server share. Each field is an `Arc` (or
/// inside one) because threads come and go in any order; the last one out
/// frees it.
pub struct Shared<B: Backend, W: Wake> {
    /// Protocol settings every connection copies.
    pub conn: ConnConfig,
    /// Ids and active/peak/served counts; chosen at run time
    /// ([`CounterKind`](crate::counter::CounterKind)), shared by every
    /// connection's [`ClientGuard`].
    pub counter: Arc<dyn Counter>,
    /// `--max-connections`: each accepted connection holds a permit until
    /// its thread ends; at the limit the accept loop answers busy.
    pub limit: Arc<Limit<B>>,
    /// Threads answering refused connections right now; each holds a permit
    /// until it has drained and closed. Past the cap the accept loop answers
    /// without a thread ([`answer_busy_at_once`]).
    pub busy: Arc<Limit<B>>,
    /// The shutdown flag and the drain; each accepted connection holds a
    /// [`Live`] guard until its thread ends.
    pub shutdown: Arc<Shutdown<B>>,
    /// Wakers of connections blocked in `read`, so shutdown can reach them.
    /// Entries are removed by the connection's `Registration` guard.
    pub registry: Arc<registry::Live<W, B>>,
    /// Busy answers sent. Only the accept loop writes it; `Relaxed` because
    /// it is read after `join`, which orders everything before it.
    pub refused: B::AtomicU64,
    /// Stack size of connection threads.
    pub stack_size: Option<usize>,
    /// Event hook (the demo's timeline, tests).
    pub observer: Option<Arc<dyn Observer>>,
}

/// A connection that passed the limit and the shutdown check and has an id:
/// what a connection thread (or pool worker) needs to serve it. Dropping it
/// anywhere — served, failed to spawn, panicked — releases all three guards.
pub struct Admitted<S: Send, B: Backend> {
    stream: S,
    peer: SocketAddr,
    conn: Conn,
    // Field order is drop order: counted served before the drain sees it go.
    client: ClientGuard,
    _live: Live<Shutdown<B>>,
    _permit: Permit<Limit<B>>,
}

/// Where admitted connections go.
pub enum Dispatch<S: Send, B: Backend> {
    /// A new thread per connection, named `client-{id}`.
    ThreadPerConnection,
    /// Into the queue a fixed set of worker threads serves.
    Pool(Arc<WorkQueue<Admitted<S, B>, B>>),
}

impl<B: Backend, W: Wake> Shared<B, W> {
    fn shutting_down(&self) -> bool {
        self.shutdown.is_shutting_down()
    }

    /// Tells the observer, if any, from the accept thread or the shutdown
    /// path. A panicking observer is caught here: on the accept thread it
    /// would otherwise end the accept loop, and with it the server. (Events
    /// on a connection's thread do not come through here: a panic there is a
    /// handler panic, contained and counted like any other.)
    pub(super) fn observe(&self, event: Event) {
        if let Some(o) = &self.observer {
            let told = std::panic::catch_unwind(AssertUnwindSafe(|| o.event(&event)));
            if told.is_err() {
                tracing::error!("the observer panicked on {event:?}; going on without it");
            }
        }
    }
}

/// What the accept loop leaves behind when it ends.
pub struct AcceptEnd<H> {
    /// Every thread it started that may still be running, for the caller to
    /// join after the drain.
    pub threads: Vec<H>,
    /// Threads it already joined on the way (finished ones, tidied up) that
    /// had panicked.
    pub panicked: usize,
}

/// New threads between sweeps for finished ones (see `accept_loop`).
const SWEEP_EVERY: usize = 16;

/// The accept loop. Runs until shutdown.
pub fn accept_loop<B, L, C>(
    listener: L,
    shared: Arc<Shared<B, <L::Stream as Stream>::Waker>>,
    clock: Arc<C>,
    dispatch: Dispatch<L::Stream, B>,
) -> AcceptEnd<B::JoinHandle<()>>
where
    B: Backend,
    L: Listener,
    C: Clock,
{
    let mut threads: Vec<B::JoinHandle<()>> = Vec::new();
    // Handles still running at the last sweep.
    let mut kept = 0;
    let mut panicked = 0;
    let mut errors = AcceptErrors::default();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => {
                errors.recovered();
                accepted
            }
            Err(e) => {
                if shared.shutting_down() {
                    break;
                }
                errors.back_off(e, &*shared.shutdown);
                continue;
            }
        };
        if shared.shutting_down() {
            break; // the unblocker's connection, or the backlog: not served
        }
        if let Some(thread) = admit(stream, peer, &shared, &clock, &dispatch) {
            threads.push(thread);
        }
        // Join threads that have finished, so a long-running server does
        // not keep a handle per connection it ever served; count their panics.
        // Soon, not eventually: a thread's stack goes back to the C library's
        // cache for the next thread only when it is joined, and that cache
        // holds 40 MiB of stacks. Sweeping every few connections costs a
        // load per live thread; sweeping only at powers of two left up to
        // hundreds of ended threads unjoined, and every third new thread
        // mapped a fresh stack (`benches/server.rs`, strace).
        if threads.len() >= kept + SWEEP_EVERY {
            let done = threads.extract_if(.., |t| t.is_finished());
            panicked += done.filter_map(|t| t.join().err()).count();
            kept = threads.len();
        }
    }
    AcceptEnd { threads, panicked }
}

/// Admits one accepted connection: busy answer, or guards, id and a thread.
fn admit<B, S, C>(
    stream: S,
    peer: SocketAddr,
    shared: &Arc<Shared<B, S::Waker>>,
    clock: &Arc<C>,
    dispatch: &Dispatch<S, B>,
) -> Option<B::JoinHandle<()>>
where
    B: Backend,
    S: Stream,
    C: Clock,
{
    let now = clock.now();
    // ANCHOR: busy
    let Some(permit) = shared.limit.try_acquire() else {
        if shared.shutting_down() {
            // Shutdown closed the limit after our check in the accept loop:
            // this connection is part of the backlog, not a busy refusal.
            return None;
        }
        shared.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("connection limit reached: refusing {peer}");
        shared.observe(Event::Refused { peer });
        let conn = Conn::busy(&shared.conn, now.instant);
        let Some(responder) = shared.busy.try_acquire() else {
            answer_busy_at_once(stream, conn);
            return None;
        };
        return spawn(shared, clock, "busy".to_string(), move |shared, clock| {
            finish(stream, conn, &shared, &*clock);
            drop(responder);
        });
    };
    let live = shared.shutdown.try_enter()?; // shutdown began since accept
    // ANCHOR_END: busy
    let client = ClientGuard::new(shared.counter.clone());
    let id = client.id();
    match shared.conn.mode {
        Mode::Greet => tracing::info!("Client {id} connected from {peer}"),
        Mode::Echo => tracing::info!("[+] Connected: {peer}"),
    }
    shared.observe(Event::Connected { id, peer });
    let admitted = Admitted {
        stream,
        peer,
        conn: Conn::new(&shared.conn, id, now.instant),
        client,
        _live: live,
        _permit: permit,
    };
    match dispatch {
        Dispatch::ThreadPerConnection => spawn(
            shared,
            clock,
            format!("client-{id}"),
            move |shared, clock| {
                serve(admitted, &shared, &*clock);
            },
        ),
        Dispatch::Pool(queue) => {
            if let Err(refused) = queue.push(admitted) {
                // Only after the pool closed, which happens after this loop ends.
                drop(refused);
            }
            None
        }
    }
}

/// Spawns a named thread with the server's stack size; a failure (out of
/// threads or memory) is logged and the closure's captures are dropped,
/// which releases any guards they hold.
fn spawn<B, W, C>(
    shared: &Arc<Shared<B, W>>,
    clock: &Arc<C>,
    name: String,
    work: impl FnOnce(Arc<Shared<B, W>>, Arc<C>) + Send + 'static,
) -> Option<B::JoinHandle<()>>
where
    B: Backend,
    W: Wake,
    C: Clock,
{
    let (shared, clock) = (shared.clone(), clock.clone());
    match B::spawn(name, shared.stack_size, move || work(shared, clock)) {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::error!("cannot start a connection thread: {e}");
            None
        }
    }
}

/// Serves one admitted connection to the end, on the current thread.
pub fn serve<B, S, C>(admitted: Admitted<S, B>, shared: &Shared<B, S::Waker>, clock: &C)
where
    B: Backend,
    S: Stream,
    C: Clock + ?Sized,
{
    let Admitted {
        mut stream,
        peer,
        mut conn,
        client,
        _live: live,
        _permit: permit,
    } = admitted;
    let id = client.id();
    if matches!(shared.conn.mode, Mode::Echo) {
        // Here, not in the accept loop: it is a system call, and the accept
        // loop is the one thread every connection waits for.
        if let Err(e) = stream.set_nodelay() {
            tracing::debug!("client {id}: cannot set TCP_NODELAY: {e}");
        }
    }
    // Register a waker so shutdown can reach us in `read`. Refused means
    // shutdown already took the list: we tell ourselves instead.
    let registration = match shared.registry.register(id, stream.waker()) {
        Ok(registration) => Some(registration),
        Err(_) => {
            conn.handle_shutdown(clock.now());
            None
        }
    };
    let ending = run(&mut stream, &mut conn, shared, clock);
    drop(registration);
    match shared.conn.mode {
        Mode::Greet => tracing::info!("Client {id} disconnected."),
        Mode::Echo => tracing::info!("[-] Disconnected: {peer}"),
    }
    if ending != Ending::Closed {
        tracing::debug!("client {id}: {ending:?}");
    }
    if let Some(o) = &shared.observer {
        // Not `Shared::observe`: on a connection's thread an observer's panic is a handler
        // panic like any other, contained by the thread (or pool worker) and counted.
        o.event(&Event::Closed { id });
    }
    drop(stream);
    // Counted served before the drain sees us go, so the summary printed
    // after the drain is exact; the slot is freed last.
    drop(client);
    drop(live);
    drop(permit);
}

/// Answers a refused connection on the accept thread when too many busy
/// threads are running already: the busy line if it fits in the socket's
/// buffer now (it does, on a fresh socket), shut down writing, close — no
/// drain. A client whose bytes are still unread when we close may get a
/// reset instead of the line; that is the price of not starting a thread per
/// refused connection in a flood. ([`Stream::write_now`]'s default never
/// writes, so on a stream without it the client just sees the close.)
fn answer_busy_at_once<S: Stream>(mut stream: S, mut conn: Conn) {
    while let Some(action) = conn.poll_action() {
        match action {
            Action::Send(bytes) => drop(stream.write_now(&bytes)),
            Action::ShutdownWrite => {
                drop(stream.shutdown_write());
                return;
            }
            Action::Close | Action::Report(_) => {}
        }
    }
}

/// Answers a refused connection (busy line, drain, close).
fn finish<B, S, C>(mut stream: S, mut conn: Conn, shared: &Shared<B, S::Waker>, clock: &C)
where
    B: Backend,
    S: Stream,
    C: Clock + ?Sized,
{
    // Not registered, but draining ends on its own within `drain_timeout`.
    run(&mut stream, &mut conn, shared, clock);
}

fn run<B, S, C>(stream: &mut S, conn: &mut Conn, shared: &Shared<B, S::Waker>, clock: &C) -> Ending
where
    B: Backend,
    S: Stream,
    C: Clock + ?Sized,
{
    let shutting_down = || shared.shutting_down();
    let cx = Context {
        shutting_down: &shutting_down,
        // A write that makes no progress for the idle timeout means the client
        // stopped reading: give up on it (PROTOCOL.md, limits table).
        write_timeout: shared.conn.idle_timeout,
        observer: shared.observer.as_deref(),
    };
    driver::drive(stream, conn, clock, &cx)
}

/// Keeps accept errors from spinning or killing the loop. Out of file
/// descriptors (`EMFILE`/`ENFILE`) is the classic: `accept` fails at once,
/// forever, until a connection closes. We back off (10 ms doubling to
/// 320 ms), log once per burst, and keep going.
#[derive(Default)]
struct AcceptErrors {
    in_a_row: u32,
}

impl AcceptErrors {
    fn back_off<D: Drain>(&mut self, e: io::Error, shutdown: &D) {
        if matches!(
            e.kind(),
            ErrorKind::Interrupted | ErrorKind::ConnectionAborted
        ) {
            return; // the peer gave up before we accepted: nothing to wait for
        }
        if self.in_a_row == 0 {
            tracing::warn!("accept failed: {e}; backing off until it recovers");
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        let pause = Duration::from_millis(10 << self.in_a_row.min(5));
        if !shutdown.is_shutting_down() {
            std::thread::sleep(pause);
        }
    }

    fn recovered(&mut self) {
        if self.in_a_row > 0 {
            tracing::warn!("accept recovered after {} failures", self.in_a_row);
            self.in_a_row = 0;
        }
    }
}

// ANCHOR: wake_all
/// Tells every live connection to finish, at the start of shutdown; returns
/// the wakers so the caller can cut whoever is still there after the grace.
pub fn wake_all<B: Backend, W: Wake>(shared: &Shared<B, W>) -> Vec<W> {
    let woken: Vec<W> = shared
        .registry
        .close()
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    for waker in &woken {
        waker.wake();
    }
    woken
}
// ANCHOR_END: wake_all
