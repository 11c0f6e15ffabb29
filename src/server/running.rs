//! Starting and stopping a server, generic like the lifecycle: the TCP
//! [`ServerHandle`](super::ServerHandle) and the loom model both drive a
//! [`Running`].
//!
//! Shutdown, in order (PROTOCOL.md, "Graceful shutdown"):
//! 1. `begin` the drain: the flag flips and later connections are refused;
//! 2. close the limit and unblock `accept`, so the accept loop ends;
//! 3. close the registry and wake every registered connection: a blocked
//!    `read` returns EOF, the connection sees the flag, sends
//!    `error: server shutting down` if it was waiting for input, and ends;
//! 4. (in `join`) wait for the drain up to the grace period, cut whoever is
//!    left, then join every thread.

use super::accept::{self, AcceptEnd, Context, Dispatch};
use super::lifecycle::{self, Admitted, Shared};
use super::observe::Event;
use super::pool::Pool;
use super::transport::{Listener, Stream, Wake};
use crate::conn::Clock;
use crate::counter::Stats;
use crate::limit::Limiter;
use crate::registry::{Registry, Roster};
use crate::shutdown::Drain;
use crate::sync::{Arc, AtomicU64, Backend, JoinHandle, Lock, Ordering};
use std::io;
use std::time::{Duration, Instant};

/// The final counts, returned by `join`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Accepted connections that have ended, including those cut at shutdown.
    pub served: u64,
    /// The most accepted connections open at the same moment.
    pub peak: u64,
    /// Busy answers sent.
    pub refused: u64,
    /// Connections still busy when the grace period ran out, and cut.
    pub cut: usize,
    /// Connection handlers that panicked (their guards still released): a
    /// connection thread that ended in a panic, or a panic a pool worker
    /// contained.
    pub panicked: usize,
}

/// Counts while running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveStats {
    /// The counter's snapshot: active, peak, served, ids issued.
    pub clients: Stats,
    /// Busy answers sent so far.
    pub refused: u64,
    /// Accepted connections not yet ended (including any draining).
    pub live: usize,
}

/// A started server: its accept loop, its workers and what they share.
pub struct Running<B: Backend, L: Listener> {
    shared: Arc<Shared<B>>,
    /// Wakers of the connections being served; shutdown takes them all.
    roster: Arc<Roster<<L::Stream as Stream>::Waker, B>>,
    acceptor: Option<B::JoinHandle<AcceptEnd<B::JoinHandle<()>>>>,
    /// The worker pool, with `--engine pool`.
    pool: Option<Pool<Admitted<L::Stream, B>, B>>,
    unblock_accept: Box<dyn Fn() + Send + Sync>,
    /// Wakers taken from the registry at shutdown, kept to cut stragglers
    /// after the grace period.
    woken: B::Mutex<Vec<<L::Stream as Stream>::Waker>>,
    grace: Duration,
}

impl<B: Backend, L: Listener> Running<B, L> {
    /// Starts the accept loop (and `workers` pool threads, if any).
    pub fn start<C: Clock>(
        listener: L,
        shared: Shared<B>,
        clock: C,
        workers: Option<usize>,
        grace: Duration,
    ) -> io::Result<Self> {
        let shared = Arc::new(shared);
        let clock = Arc::new(clock);
        let unblock_accept = listener.unblocker()?;
        let cx = Context {
            shared: shared.clone(),
            roster: Arc::new(Roster::new()),
            clock,
        };
        let pool = match workers {
            None => None,
            Some(n) => {
                let c = cx.clone();
                let serve =
                    move |admitted| lifecycle::serve(admitted, &c.shared, &c.roster, &*c.clock);
                Some(Pool::start(n, shared.stack_size, serve)?)
            }
        };
        let dispatch = match &pool {
            None => Dispatch::ThreadPerConnection,
            Some(pool) => Dispatch::Pool(pool.submitter()),
        };
        let roster = cx.roster.clone();
        let acceptor = B::spawn("accept".to_string(), None, move || {
            accept::accept_loop(listener, cx, dispatch)
        });
        let acceptor = match acceptor {
            Ok(acceptor) => acceptor,
            Err(e) => {
                if let Some(pool) = pool {
                    pool.join();
                }
                return Err(e);
            }
        };
        Ok(Running {
            shared,
            roster,
            acceptor: Some(acceptor),
            pool,
            unblock_accept,
            woken: B::Mutex::new(Vec::new()),
            grace,
        })
    }

    /// Counts right now.
    pub fn stats(&self) -> LiveStats {
        stats(&self.shared)
    }

    // ANCHOR: shutdown
    /// Begins graceful shutdown and returns how many connections were live
    /// when it began. Returns at once; [`Running::join`] waits. Calling it
    /// again is harmless.
    pub fn shutdown(&self) -> usize {
        let live = begin_shutdown(&self.shared);
        (self.unblock_accept)();
        let woken = self.wake_all();
        self.woken.lock().extend(woken);
        live
    }
    // ANCHOR_END: shutdown

    // ANCHOR: wake_all
    /// Tells every live connection to finish, at the start of shutdown;
    /// returns the wakers so `join` can cut whoever is still there after the
    /// grace period.
    fn wake_all(&self) -> Vec<<L::Stream as Stream>::Waker> {
        let woken: Vec<_> = self.roster.close().into_iter().map(|(_, w)| w).collect();
        for waker in &woken {
            waker.wake();
        }
        woken
    }
    // ANCHOR_END: wake_all

    // ANCHOR: join
    /// Waits for the server to stop — after [`Running::shutdown`], from this
    /// or another thread — and returns the final counts. Connections still
    /// busy after the grace period are cut.
    pub fn join(mut self) -> Summary {
        let (threads, panicked_early) = match self.acceptor.take().map(|a| a.join()) {
            Some(Ok(end)) => (end.threads, end.panicked),
            Some(Err(_)) | None => {
                tracing::error!("the accept loop panicked");
                (Vec::new(), 0)
            }
        };
        // The accept loop is gone: nothing more can be queued. The workers
        // serve what is queued (each sees shutdown and says so), then stop;
        // the pool is joined after the drain, which may have to cut them.
        let pool = self.pool.take();
        let cut = drain_within_grace(&self.shared, self.grace, || {
            for waker in self.woken.lock().iter() {
                waker.cut();
            }
        });
        let in_workers = pool.map_or(0, Pool::join);
        let panicked = panicked_early
            + in_workers
            + threads
                .into_iter()
                .map(|t| t.join())
                .filter(Result::is_err)
                .count();
        summary(&self.shared, cut, panicked)
    }
    // ANCHOR_END: join
}

// The steps of shutdown every engine takes the same way.

/// Counts right now.
pub(super) fn stats<B: Backend>(shared: &Shared<B>) -> LiveStats {
    LiveStats {
        clients: shared.counter.stats(),
        refused: shared.refused.load(Ordering::Relaxed),
        live: shared.shutdown.live(),
    }
}

// ANCHOR: begin_shutdown
/// Begins shutdown: later connections are refused, the limit closes, the
/// observer hears of it. Returns the live connections at that moment. The
/// engine then wakes its connections its own way.
pub(super) fn begin_shutdown<B: Backend>(shared: &Shared<B>) -> usize {
    let live = shared.shutdown.begin();
    shared.observe(Event::ShutdownBegan { live });
    shared.limit.close();
    live
}
// ANCHOR_END: begin_shutdown

// ANCHOR: drain_within_grace
/// Waits for the drain; once the grace period is over, `cut`s whoever is
/// left and waits for them. Returns how many were cut.
pub(super) fn drain_within_grace<B: Backend>(
    shared: &Shared<B>,
    grace: Duration,
    cut: impl FnOnce(),
) -> usize {
    let drain = &shared.shutdown;
    let deadline = Instant::now() + grace;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if drain.wait_drained_for(left) {
            return 0;
        }
        if left.is_zero() {
            break;
        }
    }
    let left = drain.live();
    tracing::warn!("grace period over: cutting {left} connections");
    cut();
    drain.wait_drained();
    left
}
// ANCHOR_END: drain_within_grace

/// The final counts, once every connection has ended.
pub(super) fn summary<B: Backend>(shared: &Shared<B>, cut: usize, panicked: usize) -> Summary {
    shared.observe(Event::Drained);
    let clients = shared.counter.stats();
    Summary {
        served: clients.served,
        peak: clients.peak,
        refused: shared.refused.load(Ordering::Relaxed),
        cut,
        panicked,
    }
}
