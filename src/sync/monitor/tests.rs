//! The monitor's counting, checked with real threads and with a condition
//! variable that counts its notifies (the loom model in
//! `tests/loom_monitor.rs` checks the race between a waiter and a notifier).

use super::*;
use crate::sync::Arc;
use crate::sync::std::StdCondvar;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

/// [`Std`], except that its condition variable counts the notifies that
/// reach it: a notify the monitor skips never gets here.
#[derive(Debug, Clone, Copy, Default)]
struct Counting;

impl Backend for Counting {
    type Mutex<T: Send> = <Std as Backend>::Mutex<T>;
    type Condvar = CountingCondvar;
    type AtomicU64 = <Std as Backend>::AtomicU64;
    type AtomicBool = <Std as Backend>::AtomicBool;
    type JoinHandle<T: Send + 'static> = <Std as Backend>::JoinHandle<T>;

    fn spawn<F, T>(
        name: String,
        stack_size: Option<usize>,
        f: F,
    ) -> std::io::Result<Self::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Std::spawn(name, stack_size, f)
    }

    fn yield_now() {
        Std::yield_now();
    }

    fn catch_unwind<R>(work: impl FnOnce() -> R) -> std::thread::Result<R> {
        Std::catch_unwind(work)
    }
}

#[derive(Debug)]
struct CountingCondvar {
    inner: StdCondvar,
    notifies: AtomicUsize,
}

impl Condvar<Counting> for CountingCondvar {
    fn new() -> Self {
        CountingCondvar {
            inner: Condvar::<Std>::new(),
            notifies: AtomicUsize::new(0),
        }
    }

    fn wait<'a, T: Send + 'a>(&self, guard: Guard<'a, Counting, T>) -> Guard<'a, Counting, T> {
        self.inner.wait(guard)
    }

    fn wait_timeout<'a, T: Send + 'a>(
        &self,
        guard: Guard<'a, Counting, T>,
        timeout: Duration,
    ) -> (Guard<'a, Counting, T>, bool) {
        self.inner.wait_timeout(guard, timeout)
    }

    fn notify_one(&self) {
        self.notifies.fetch_add(1, Ordering::SeqCst);
        Condvar::<Std>::notify_one(&self.inner);
    }

    fn notify_all(&self) {
        self.notifies.fetch_add(1, Ordering::SeqCst);
        Condvar::<Std>::notify_all(&self.inner);
    }
}

fn notifies(monitor: &Monitor<bool, Counting>) -> usize {
    monitor.changed.notifies.load(Ordering::SeqCst)
}

/// Polls `cond` for up to five seconds; panics with `what` if it never holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        thread::yield_now();
    }
}

/// A thread that waits until the monitor's flag is set.
fn waiter(monitor: &Arc<Monitor<bool, Counting>>) -> thread::JoinHandle<()> {
    let monitor = monitor.clone();
    thread::spawn(move || {
        let mut ready = monitor.lock();
        while !*ready {
            ready = ready.wait();
        }
    })
}

#[test]
fn a_notify_with_nobody_waiting_is_skipped() {
    let monitor = Monitor::<bool, Counting>::new(false);
    monitor.lock().notify_one();
    let mut state = monitor.lock();
    *state = true;
    state.notify_all();
    assert_eq!(notifies(&monitor), 0, "no waiter, so no notify");
    assert!(*monitor.lock(), "the change was made");
}

#[test]
fn a_counted_waiter_is_woken_and_uncounted() {
    let monitor = Arc::new(Monitor::<bool, Counting>::new(false));
    let waiting = waiter(&monitor);
    eventually("the waiter to be counted", || monitor.lock().waiters() == 1);
    let mut state = monitor.lock();
    *state = true;
    state.notify_one();
    eventually("the waiter to wake and finish", || waiting.is_finished());
    waiting.join().unwrap();
    assert_eq!(notifies(&monitor), 1, "one waiter, one notify");
    assert_eq!(
        monitor.lock().waiters(),
        0,
        "a woken waiter uncounts itself"
    );
}

#[test]
fn notify_all_wakes_every_waiter() {
    let monitor = Arc::new(Monitor::<bool, Counting>::new(false));
    let waiting: Vec<_> = (0..3).map(|_| waiter(&monitor)).collect();
    eventually("three waiters", || monitor.lock().waiters() == 3);
    let mut state = monitor.lock();
    *state = true;
    state.notify_all();
    eventually("every waiter to finish", || {
        waiting.iter().all(|w| w.is_finished())
    });
    assert_eq!(monitor.lock().waiters(), 0);
    assert_eq!(notifies(&monitor), 1, "one notify_all for all three");
}

#[test]
fn a_timed_out_wait_is_uncounted() {
    let monitor = Monitor::<bool, Counting>::new(false);
    let (state, timed_out) = monitor.lock().wait_timeout(Duration::from_millis(10));
    assert!(timed_out, "nobody notified");
    assert_eq!(state.waiters(), 0);
    drop(state);
    monitor.lock().notify_all();
    assert_eq!(notifies(&monitor), 0, "the timed-out waiter is not counted");
}

#[test]
fn a_timed_wait_that_is_notified_says_so() {
    let monitor = Arc::new(Monitor::<bool, Counting>::new(false));
    let m = monitor.clone();
    let waiting = thread::spawn(move || {
        let mut state = m.lock();
        loop {
            if *state {
                return false;
            }
            let (next, timed_out) = state.wait_timeout(Duration::from_secs(60));
            if timed_out {
                return true;
            }
            state = next;
        }
    });
    eventually("the timed waiter to be counted", || {
        monitor.lock().waiters() == 1
    });
    let mut state = monitor.lock();
    *state = true;
    state.notify_all();
    assert!(
        !waiting.join().unwrap(),
        "woken by the notify, not the timeout"
    );
    assert_eq!(notifies(&monitor), 1);
}

#[test]
fn debug_shows_the_state_and_the_waiters() {
    let monitor = Monitor::<u32, Std>::new(7);
    assert_eq!(format!("{monitor:?}"), "Monitor { value: 7, waiters: 0 }");
}
