//! The blocking engines' accept loop: one thread blocked in `accept`,
//! handing each admitted connection to a thread of its own
//! ([`Engine::Thread`](super::Engine)) or to the pool
//! ([`Engine::Pool`](super::Engine)), and answering refused ones on a
//! capped number of `busy` threads.

use super::driver;
use super::lifecycle::{self, Admission, Admitted, Shared};
use super::pool::Submitter;
use super::transport::{Listener, Stream, Wake};
use crate::conn::{Clock, Conn};
use crate::limit::Limiter;
use crate::registry::Roster;
use crate::sync::{Arc, Backend, JoinHandle};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;
use tracing::Span;

/// Where admitted connections go.
pub enum Dispatch<S: Send, B: Backend> {
    /// A new thread per connection, named `client-{id}`.
    ThreadPerConnection,
    /// Into the pool's queue.
    Pool(Submitter<Admitted<S, B>, B>),
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

/// What the accept loop's threads share: the server's state, the roster
/// of wakers shutdown uses to reach connections blocked in `read`, and the
/// clock.
pub struct Context<B: Backend, W: Wake, C> {
    /// The server's shared state.
    pub shared: Arc<Shared<B>>,
    /// Wakers of the connections being served, for shutdown.
    pub roster: Arc<Roster<W, B>>,
    /// Where connections read the time.
    pub clock: Arc<C>,
}

impl<B: Backend, W: Wake, C> Clone for Context<B, W, C> {
    fn clone(&self) -> Self {
        Context {
            shared: self.shared.clone(),
            roster: self.roster.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// The accept loop. Runs until shutdown.
pub fn accept_loop<B, L, C>(
    listener: L,
    cx: Context<B, <L::Stream as Stream>::Waker, C>,
    dispatch: Dispatch<L::Stream, B>,
) -> AcceptEnd<B::JoinHandle<()>>
where
    B: Backend,
    L: Listener,
    C: Clock,
{
    let shared = &cx.shared;
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
                if let Some(pause) = errors.failed(&e) {
                    std::thread::sleep(pause);
                }
                continue;
            }
        };
        if shared.shutting_down() {
            break; // the unblocker's connection, or the backlog: not served
        }
        if let Some(thread) = dispatch_one(stream, peer, &cx, &dispatch) {
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

// ANCHOR: dispatch
/// Admits one accepted connection and hands it on: to a thread, to the pool,
/// or to a busy answer.
fn dispatch_one<B, S, C>(
    stream: S,
    peer: SocketAddr,
    cx: &Context<B, S::Waker, C>,
    dispatch: &Dispatch<S, B>,
) -> Option<B::JoinHandle<()>>
where
    B: Backend,
    S: Stream,
    C: Clock,
{
    match lifecycle::admit(stream, peer, &cx.shared, cx.clock.now()) {
        Admission::Unserved => None,
        Admission::Busy(stream, conn, span) => busy(stream, conn, span, cx),
        Admission::Admitted(admitted) => match dispatch {
            Dispatch::ThreadPerConnection => {
                let name = format!("client-{}", admitted.held.id());
                spawn(cx, name, move |cx| {
                    lifecycle::serve(admitted, &cx.shared, &cx.roster, &*cx.clock);
                })
            }
            Dispatch::Pool(pool) => {
                // Refused only once the pool is closed, which happens after this loop ends;
                // dropping it releases its guards.
                drop(pool.submit(admitted));
                None
            }
        },
    }
}
// ANCHOR_END: dispatch

/// Answers a refused connection on a `busy` thread of its own, or — past
/// `busy_responders` such threads — at once on this thread: the busy line if
/// it fits in the socket's buffer now (it does, on a fresh socket), shut
/// down writing, close, no drain. A client whose bytes are still unread when
/// we close may get a reset instead of the line; that is the price of not
/// starting a thread per refused connection in a flood.
fn busy<B, S, C>(
    stream: S,
    mut conn: Conn,
    span: Span,
    cx: &Context<B, S::Waker, C>,
) -> Option<B::JoinHandle<()>>
where
    B: Backend,
    S: Stream,
    C: Clock,
{
    let shared = &cx.shared;
    let Some(responder) = shared.busy.try_acquire() else {
        let _entered = span.enter();
        let shutting_down = || shared.shutting_down();
        let driver_cx = shared.context(&shutting_down);
        driver::answer_without_waiting(stream, &mut conn, &*cx.clock, &driver_cx);
        return None;
    };
    spawn(cx, "busy".to_string(), move |cx| {
        lifecycle::answer_busy(stream, conn, &span, &cx.shared, &*cx.clock);
        drop(responder);
    })
}

/// Spawns a named thread with the server's stack size; a failure (out of
/// threads or memory) is logged and the closure's captures are dropped,
/// which releases any guards they hold.
fn spawn<B, W, C>(
    cx: &Context<B, W, C>,
    name: String,
    work: impl FnOnce(Context<B, W, C>) + Send + 'static,
) -> Option<B::JoinHandle<()>>
where
    B: Backend,
    W: Wake,
    C: Clock,
{
    let cx = cx.clone();
    match B::spawn(name, cx.shared.stack_size, move || work(cx)) {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::error!("cannot start a connection thread: {e}");
            None
        }
    }
}

/// Keeps accept errors from spinning or killing an accept loop. Out of file
/// descriptors (`EMFILE`/`ENFILE`) is the classic: `accept` fails at once,
/// forever, until a connection closes. The caller pauses accepting for what
/// [`AcceptErrors::failed`] says (10 ms doubling to 320 ms) — a thread by
/// sleeping, an event loop with a timer — and it is logged once per burst.
#[derive(Default)]
pub struct AcceptErrors {
    in_a_row: u32,
}

impl AcceptErrors {
    /// `accept` failed with `e`: how long to pause before the next try, or
    /// `None` to try again at once.
    pub fn failed(&mut self, e: &io::Error) -> Option<Duration> {
        if matches!(
            e.kind(),
            ErrorKind::Interrupted | ErrorKind::ConnectionAborted
        ) {
            return None; // the peer gave up before we accepted: nothing to wait for
        }
        if self.in_a_row == 0 {
            tracing::warn!("accept failed: {e}; backing off until it recovers");
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        Some(Duration::from_millis(10 << self.in_a_row.min(5)))
    }

    /// `accept` worked: the next failure is logged again.
    pub fn recovered(&mut self) {
        if self.in_a_row > 0 {
            tracing::warn!("accept recovered after {} failures", self.in_a_row);
            self.in_a_row = 0;
        }
    }
}
