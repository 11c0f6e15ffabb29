//! The real backends, [`Std`] and [`ParkingLot`], through the traits the core uses: a notify
//! wakes a thread that is really waiting, `is_finished` says whether a thread has ended, and
//! `is_poisoned` whether a panic poisoned a lock.
//!
//! Each backend method only forwards to `std` or `parking_lot`, but a forwarding that does
//! nothing compiles just as well, and the core's own tests rarely catch it: a notify is needed
//! only when the waiter is already asleep, which a test with real threads hits by chance. So
//! these tests first wait until the monitor counts the waiter (it counts under its lock, in
//! the same step that starts the wait), and only then notify. Every wait has a deadline, so a
//! lost wake-up fails the test instead of hanging it.
#![cfg(not(loom))]

use many_clients::sync::{Backend, JoinHandle, Lock, Monitor, ParkingLot, Std};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Generous: only a lost wake-up or a broken backend should ever reach it.
const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `cond` until it holds; panics with `what` at the deadline.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        std::thread::yield_now();
    }
}

/// `waiters` threads of backend `B`, each waiting until the flag is set.
fn waiting<B: Backend>(flag: &Arc<Monitor<bool, B>>, waiters: usize) -> Vec<B::JoinHandle<()>> {
    let threads: Vec<_> = (0..waiters)
        .map(|i| {
            let flag = flag.clone();
            B::spawn(format!("waiter-{i}"), None, move || {
                let mut set = flag.lock();
                while !*set {
                    set = set.wait();
                }
            })
            .unwrap()
        })
        .collect();
    eventually("every waiter to be asleep", || {
        flag.lock().waiters() == waiters
    });
    threads
}

fn notify_one_wakes_a_sleeping_waiter<B: Backend>() {
    let flag = Arc::new(Monitor::<bool, B>::new(false));
    let threads = waiting(&flag, 1);
    let mut set = flag.lock();
    *set = true;
    set.notify_one();
    eventually("the waiter to wake", || threads[0].is_finished());
}

fn notify_all_wakes_every_sleeping_waiter<B: Backend>() {
    let flag = Arc::new(Monitor::<bool, B>::new(false));
    let threads = waiting(&flag, 2);
    let mut set = flag.lock();
    *set = true;
    set.notify_all();
    eventually("both waiters to wake", || {
        threads.iter().all(|t| t.is_finished())
    });
}

/// `is_finished` is what the accept loop sweeps ended connection threads by: `true` too early
/// would block the loop joining a live connection, never `true` would keep every handle.
fn is_finished_once_the_thread_has_ended<B: Backend>() {
    let (go, wait) = mpsc::channel::<()>();
    let thread = B::spawn("blocked".into(), None, move || wait.recv().is_ok()).unwrap();
    assert!(!thread.is_finished(), "still blocked on the channel");
    go.send(()).unwrap();
    eventually("the thread to end", || thread.is_finished());
    assert!(thread.join().unwrap(), "it got the message");
}

#[test]
fn std_notify_one_wakes_a_sleeping_waiter() {
    notify_one_wakes_a_sleeping_waiter::<Std>();
}

#[test]
fn std_notify_all_wakes_every_sleeping_waiter() {
    notify_all_wakes_every_sleeping_waiter::<Std>();
}

#[test]
fn parking_lot_notify_one_wakes_a_sleeping_waiter() {
    notify_one_wakes_a_sleeping_waiter::<ParkingLot>();
}

#[test]
fn parking_lot_notify_all_wakes_every_sleeping_waiter() {
    notify_all_wakes_every_sleeping_waiter::<ParkingLot>();
}

#[test]
fn std_is_finished_once_the_thread_has_ended() {
    is_finished_once_the_thread_has_ended::<Std>();
}

#[test]
fn parking_lot_is_finished_once_the_thread_has_ended() {
    is_finished_once_the_thread_has_ended::<ParkingLot>();
}

#[test]
fn a_std_lock_is_poisoned_only_by_a_panic_while_held() {
    let lock = Arc::new(<Std as Backend>::Mutex::new(0u32));
    assert!(!lock.is_poisoned(), "a fresh lock");
    *lock.lock() += 1;
    assert!(!lock.is_poisoned(), "locked and unlocked without a panic");
    let held = lock.clone();
    let panicked = std::thread::spawn(move || {
        let _guard = held.lock();
        panic!("panic while holding the lock");
    })
    .join();
    assert!(panicked.is_err());
    assert!(lock.is_poisoned());
    assert_eq!(*lock.lock(), 1, "lock() recovers the value all the same");
}
