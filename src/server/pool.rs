//! The optional worker pool (`--workers N`): N threads started up front take
//! accepted connections from a queue — the Rust Book's next step after a
//! thread per connection. It trades a thread start per connection for a
//! cap on threads: with every worker busy on a slow client, the next
//! connection waits in the queue (still counted live and against the limit).
//!
//! The queue is a `Mutex<VecDeque>` and a `Condvar` from the backend, like
//! the rest of the core, so it runs under loom too.

use crate::sync::{Arc, Backend, Condvar, Lock};
use std::collections::VecDeque;

/// A closable FIFO of work, shared by the accept loop and the workers.
pub struct WorkQueue<T: Send, B: Backend> {
    state: B::Mutex<Queue<T>>,
    /// Signalled when work arrives or the queue closes; idle workers wait on it.
    ready: B::Condvar,
}

struct Queue<T> {
    items: VecDeque<T>,
    closed: bool,
    /// Workers blocked in `pop`. Under load every worker is busy and a
    /// notify would be a system call that wakes nobody, so `push` notifies
    /// only when a worker is idle (counted under this lock, see
    /// [`crate::limit::Limit`] for why that cannot lose a wake-up).
    idle: usize,
}

impl<T: Send, B: Backend> WorkQueue<T, B> {
    /// An open, empty queue.
    pub fn new() -> Arc<Self> {
        Arc::new(WorkQueue {
            state: B::Mutex::new(Queue {
                items: VecDeque::new(),
                closed: false,
                idle: 0,
            }),
            ready: B::Condvar::new(),
        })
    }

    /// Adds work for one worker; gives it back if the queue is closed.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut queue = self.state.lock();
        if queue.closed {
            return Err(item);
        }
        queue.items.push_back(item);
        let someone_idle = queue.idle > 0;
        drop(queue);
        if someone_idle {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Takes the next item, waiting for one; `None` once the queue is closed
    /// *and* empty — closing lets the workers finish what was queued.
    pub fn pop(&self) -> Option<T> {
        let mut queue = self.state.lock();
        loop {
            if let Some(item) = queue.items.pop_front() {
                return Some(item);
            }
            if queue.closed {
                return None;
            }
            queue.idle += 1;
            queue = self.ready.wait(queue);
            queue.idle -= 1;
        }
    }

    /// No more pushes; wakes every idle worker so it can see that.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }
}

/// Starts `n` workers named `worker-{i}`, each running `serve` on items
/// until the queue is closed and empty. A worker survives a panic in
/// `serve` (otherwise every handler panic would shrink the pool, and after
/// `n` of them nobody would be served); its handle returns how many panics
/// it contained.
pub fn start_workers<T, B>(
    n: usize,
    stack_size: Option<usize>,
    queue: &Arc<WorkQueue<T, B>>,
    serve: impl Fn(T) + Send + Sync + 'static,
) -> std::io::Result<Vec<B::JoinHandle<usize>>>
where
    T: Send + 'static,
    B: Backend,
{
    let serve = Arc::new(serve);
    (1..=n)
        .map(|i| {
            let (queue, serve) = (queue.clone(), serve.clone());
            B::spawn(format!("worker-{i}"), stack_size, move || {
                let mut panics = 0;
                while let Some(item) = queue.pop() {
                    if !survived(|| serve(item)) {
                        panics += 1;
                    }
                }
                panics
            })
        })
        .collect()
}

/// Runs `work`; `false` if it panicked (the panic hook has reported it, and
/// the item's guards were released by the unwinding).
#[cfg(not(loom))]
fn survived(work: impl FnOnce()) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_ok()
}

/// Under loom a panic is a failed model: it must reach loom, not be counted.
#[cfg(loom)]
fn survived(work: impl FnOnce()) -> bool {
    work();
    true
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::Std;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_worker_survives_a_panicking_item_and_counts_it() {
        let queue = WorkQueue::<u32, Std>::new();
        let served = Arc::new(AtomicUsize::new(0));
        let counted = served.clone();
        let workers = start_workers(1, None, &queue, move |item| {
            assert_ne!(item, 2, "injected panic");
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        for item in 1..=4 {
            queue.push(item).unwrap();
        }
        queue.close();
        let panics: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(panics, [1], "one worker, one contained panic");
        assert_eq!(
            served.load(Ordering::SeqCst),
            3,
            "the items after it were served"
        );
    }
}
