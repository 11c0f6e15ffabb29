//! The optional worker pool (`--workers N`): N threads started up front take
//! accepted connections from a queue — the Rust Book's next step after a
//! thread per connection. It trades a thread start per connection for a
//! cap on threads: with every worker busy on a slow client, the next
//! connection waits in the queue (still counted live and against the limit).
//!
//! The queue is a `VecDeque` in a [`Monitor`], like the rest of the core, so
//! it runs under loom too (`tests/loom_pool.rs`). The pool owns its whole
//! life: [`Pool::start`] starts the workers, [`Submitter::submit`] queues
//! work, [`Pool::join`] closes the queue and joins them.

use crate::sync::{Arc, Backend, JoinHandle, Monitor};
use std::collections::VecDeque;
use std::io;

/// A closable FIFO of work, shared by whoever submits and the workers.
struct WorkQueue<T: Send, B: Backend> {
    /// The items and the closed flag; idle workers wait on it for work to
    /// arrive or the queue to close.
    state: Monitor<Queue<T>, B>,
}

struct Queue<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T: Send, B: Backend> WorkQueue<T, B> {
    /// Adds work for one worker; gives it back if the queue is closed.
    fn push(&self, item: T) -> Result<(), T> {
        let mut queue = self.state.lock();
        if queue.closed {
            return Err(item);
        }
        queue.items.push_back(item);
        // One item, so one idle worker can take it.
        queue.notify_one();
        Ok(())
    }

    /// Takes the next item, waiting for one; `None` once the queue is closed
    /// *and* empty — closing lets the workers finish what was queued.
    fn pop(&self) -> Option<T> {
        let mut queue = self.state.lock();
        loop {
            if let Some(item) = queue.items.pop_front() {
                return Some(item);
            }
            if queue.closed {
                return None;
            }
            queue = queue.wait();
        }
    }

    /// No more pushes; wakes every idle worker so it can see that.
    fn close(&self) {
        let mut queue = self.state.lock();
        queue.closed = true;
        queue.notify_all();
    }
}

// ANCHOR: pool
/// A fixed set of worker threads serving items from one queue.
pub struct Pool<T: Send, B: Backend> {
    /// Shared with every worker and with each [`Submitter`]; the last of
    /// them to go frees it.
    queue: Arc<WorkQueue<T, B>>,
    /// One per worker; each returns how many panics it contained.
    workers: Vec<B::JoinHandle<usize>>,
}

/// Hands items to a [`Pool`]'s workers, from any thread.
pub struct Submitter<T: Send, B: Backend> {
    queue: Arc<WorkQueue<T, B>>,
}

impl<T: Send + 'static, B: Backend> Pool<T, B> {
    /// Starts `n` workers named `worker-{i}`, each running `serve` on items
    /// until the pool is closed and its queue empty. A worker survives a
    /// panic in `serve` (otherwise every handler panic would shrink the
    /// pool, and after `n` of them nobody would be served), and counts it.
    pub fn start(
        n: usize,
        stack_size: Option<usize>,
        serve: impl Fn(T) + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let queue = Arc::new(WorkQueue {
            state: Monitor::new(Queue {
                items: VecDeque::new(),
                closed: false,
            }),
        });
        let serve = Arc::new(serve);
        let mut workers = Vec::with_capacity(n);
        for i in 1..=n {
            let (shared, serve) = (queue.clone(), serve.clone());
            let worker = B::spawn(format!("worker-{i}"), stack_size, move || {
                let mut panics = 0;
                while let Some(item) = shared.pop() {
                    // The panic hook has reported it, and unwinding released
                    // the item's guards.
                    if B::catch_unwind(|| serve(item)).is_err() {
                        panics += 1;
                    }
                }
                panics
            });
            match worker {
                Ok(worker) => workers.push(worker),
                Err(e) => {
                    // Do not leave the workers already started waiting forever.
                    Pool { queue, workers }.join();
                    return Err(e);
                }
            }
        }
        Ok(Pool { queue, workers })
    }

    /// Something that submits work to this pool from another thread.
    pub fn submitter(&self) -> Submitter<T, B> {
        Submitter {
            queue: self.queue.clone(),
        }
    }

    /// Closes the queue — the workers finish what is queued, then stop —
    /// and waits for them. Returns how many items panicked (a worker that
    /// died some other way counts as one).
    pub fn join(self) -> usize {
        self.queue.close();
        self.workers
            .into_iter()
            .map(|w| w.join().unwrap_or(1))
            .sum()
    }
}

impl<T: Send, B: Backend> Submitter<T, B> {
    /// Queues `item` for the next free worker; gives it back once the pool
    /// is closed.
    pub fn submit(&self, item: T) -> Result<(), T> {
        self.queue.push(item)
    }
}
// ANCHOR_END: pool

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Std;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_worker_survives_a_panicking_item_and_counts_it() {
        let served = Arc::new(AtomicUsize::new(0));
        let counted = served.clone();
        let pool = Pool::<u32, Std>::start(1, None, move |item| {
            assert_ne!(item, 2, "injected panic");
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let submitter = pool.submitter();
        for item in 1..=4 {
            submitter.submit(item).unwrap();
        }
        assert_eq!(pool.join(), 1, "one worker, one contained panic");
        assert_eq!(
            submitter.submit(5),
            Err(5),
            "a joined pool takes no more work"
        );
        assert_eq!(
            served.load(Ordering::SeqCst),
            3,
            "the items after it were served"
        );
    }
}
