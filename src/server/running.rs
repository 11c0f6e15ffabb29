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

use super::lifecycle::{self, AcceptEnd, Admitted, Dispatch, Shared};
use super::observe::Event;
use super::pool::{self, WorkQueue};
use super::transport::{Listener, Stream, Wake};
use crate::conn::Clock;
use crate::counter::Stats;
use crate::limit::Limiter;
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

/// The pool's queue of admitted connections.
type Queue<B, L> = Arc<WorkQueue<Admitted<<L as Listener>::Stream, B>, B>>;

/// A started server: its accept loop, its workers and what they share.
pub struct Running<B: Backend, L: Listener> {
    shared: Arc<Shared<B, <L::Stream as Stream>::Waker>>,
    acceptor: Option<B::JoinHandle<AcceptEnd<B::JoinHandle<()>>>>,
    /// Pool workers; each returns how many connections panicked on it.
    workers: Vec<B::JoinHandle<usize>>,
    queue: Option<Queue<B, L>>,
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
        shared: Shared<B, <L::Stream as Stream>::Waker>,
        clock: C,
        workers: Option<usize>,
        grace: Duration,
    ) -> io::Result<Self> {
        let shared = Arc::new(shared);
        let clock = Arc::new(clock);
        let unblock_accept = listener.unblocker()?;
        let (dispatch, queue, worker_threads) = match workers {
            None => (Dispatch::ThreadPerConnection, None, Vec::new()),
            Some(n) => {
                let queue = WorkQueue::new();
                let (s, c) = (shared.clone(), clock.clone());
                let serve = move |admitted| lifecycle::serve(admitted, &s, &*c);
                let threads = pool::start_workers(n, shared.stack_size, &queue, serve)?;
                (Dispatch::Pool(queue.clone()), Some(queue), threads)
            }
        };
        let s = shared.clone();
        let acceptor = B::spawn("accept".to_string(), None, move || {
            lifecycle::accept_loop(listener, s, clock, dispatch)
        })?;
        Ok(Running {
            shared,
            acceptor: Some(acceptor),
            workers: worker_threads,
            queue,
            unblock_accept,
            woken: B::Mutex::new(Vec::new()),
            grace,
        })
    }

    /// Counts right now.
    pub fn stats(&self) -> LiveStats {
        LiveStats {
            clients: self.shared.counter.stats(),
            refused: self.shared.refused.load(Ordering::Relaxed),
            live: self.shared.shutdown.live(),
        }
    }

    // ANCHOR: shutdown
    /// Begins graceful shutdown and returns how many connections were live
    /// when it began. Returns at once; [`Running::join`] waits. Calling it
    /// again is harmless.
    pub fn shutdown(&self) -> usize {
        let live = self.shared.shutdown.begin();
        self.shared.observe(Event::ShutdownBegan { live });
        self.shared.limit.close();
        (self.unblock_accept)();
        let woken = lifecycle::wake_all(&self.shared);
        self.woken.lock().extend(woken);
        live
    }
    // ANCHOR_END: shutdown

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
        if let Some(queue) = &self.queue {
            // The accept loop is gone: nothing more can be queued, and
            // workers finish what is there, then stop.
            queue.close();
        }
        let cut = self.drain_within_grace();
        let in_workers: usize = self.workers.drain(..).map(|w| w.join().unwrap_or(1)).sum();
        let panicked = panicked_early
            + in_workers
            + threads
                .into_iter()
                .map(|t| t.join())
                .filter(Result::is_err)
                .count();
        self.shared.observe(Event::Drained);
        let clients = self.shared.counter.stats();
        Summary {
            served: clients.served,
            peak: clients.peak,
            refused: self.shared.refused.load(Ordering::Relaxed),
            cut,
            panicked,
        }
    }

    /// Waits for the drain; cuts stragglers once the grace period is over.
    /// Returns how many were cut.
    fn drain_within_grace(&self) -> usize {
        let drain = &self.shared.shutdown;
        let deadline = Instant::now() + self.grace;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if drain.wait_drained_for(left) {
                return 0;
            }
            if left.is_zero() {
                break;
            }
        }
        let cut = drain.live();
        tracing::warn!("grace period over: cutting {cut} connections");
        for waker in self.woken.lock().iter() {
            waker.cut();
        }
        drain.wait_drained();
        cut
    }
    // ANCHOR_END: join
}
