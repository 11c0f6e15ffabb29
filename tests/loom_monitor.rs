//! Loom models of the monitor (`src/sync/monitor.rs`) on its own: the waiter
//! count that lets a notify skip its system call must never let a wake-up
//! be lost — not when a waiter arrives just as the notifier checks the count,
//! not with several waiters, not when a woken waiter is overtaken.
//!
//! A wrong count shows up here as a loom deadlock (a waiter nobody wakes) or
//! as a count that is not back to zero when everyone has gone.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_monitor -- --nocapture`
#![cfg(loom)]

#[path = "support/loom_check.rs"]
mod loom_check;

use loom_check::thread;
use many_clients::sync::{Arc, Model, Monitor};

// ANCHOR: waiter_meets_notifier
/// One thread waits for a flag; main sets it and notifies. Whatever the
/// order — the waiter counted before the notifier looks, or the flag set
/// before the waiter checks — the waiter returns.
fn waiter_meets_notifier() {
    let ready = Arc::new(Monitor::<bool, Model>::new(false));
    let r = ready.clone();
    let waiter = thread::spawn(move || {
        let mut ready = r.lock();
        while !*ready {
            ready = ready.wait();
        }
    });
    let mut state = ready.lock();
    *state = true;
    state.notify_one();
    waiter.join().unwrap();
    assert_eq!(
        ready.lock().waiters(),
        0,
        "a waiter that left is still counted"
    );
}
// ANCHOR_END: waiter_meets_notifier

#[test]
fn a_waiter_arriving_as_the_notifier_checks_is_not_lost() {
    loom_check::explore(
        "monitor: 1 waiter vs notify_one",
        None,
        waiter_meets_notifier,
    );
}

/// Two threads wait for a flag; one `notify_all` must wake both.
fn notify_all_reaches_every_waiter() {
    let ready = Arc::new(Monitor::<bool, Model>::new(false));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let r = ready.clone();
            thread::spawn(move || {
                let mut ready = r.lock();
                while !*ready {
                    ready = ready.wait();
                }
            })
        })
        .collect();
    let mut state = ready.lock();
    *state = true;
    state.notify_all();
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(
        ready.lock().waiters(),
        0,
        "a waiter that left is still counted"
    );
}

#[test]
fn notify_all_wakes_every_counted_waiter() {
    loom_check::explore(
        "monitor: 2 waiters vs notify_all",
        None,
        notify_all_reaches_every_waiter,
    );
}

/// Two consumers each take one token; main puts two tokens in, one
/// `notify_one` each. A woken consumer can be overtaken by the other one
/// (which then takes its token) and must wait again — and still be woken by
/// the second notify.
fn one_notify_per_token() {
    let tokens = Arc::new(Monitor::<usize, Model>::new(0));
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let t = tokens.clone();
            thread::spawn(move || {
                let mut tokens = t.lock();
                while *tokens == 0 {
                    tokens = tokens.wait();
                }
                *tokens -= 1;
            })
        })
        .collect();
    for _ in 0..2 {
        let mut state = tokens.lock();
        *state += 1;
        state.notify_one();
    }
    for c in consumers {
        c.join().unwrap();
    }
    let left = tokens.lock();
    assert_eq!(
        (*left, left.waiters()),
        (0, 0),
        "tokens left, waiters counted"
    );
}

#[test]
fn notify_one_per_change_wakes_each_consumer() {
    loom_check::explore(
        "monitor: 2 consumers vs 2 notify_one",
        None,
        one_notify_per_token,
    );
}
