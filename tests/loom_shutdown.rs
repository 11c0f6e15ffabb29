//! Loom models of shutdown and drain: the drain returns only after the last
//! connection is gone and never hangs, even when connections enter while
//! shutdown begins — and two classic condition-variable bugs, which must be
//! caught.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_shutdown -- --nocapture`
#![cfg(loom)]

#[path = "support/bug_models.rs"]
mod bug_models;
#[path = "support/loom_check.rs"]
mod loom_check;

use bug_models::{drain_one_leaving, drain_two_leaving};
use loom_check::thread;
use many_clients::shutdown::buggy::{IfDrain, UnlockedCheckDrain};
use many_clients::shutdown::{Drain, Shutdown};
use many_clients::sync::{Arc, AtomicU64, Backend, Model, Ordering};

/// A witness must be a model atomic: loom only switches threads at
/// operations it can see. (The backend's, so its steps are in the trace.)
type Witness = <Model as Backend>::AtomicU64;

/// Two connections try to enter while main begins shutdown and drains. Each
/// one either is refused, or is counted and finishes before the drain
/// returns.
fn drain_waits_for_racing_connections<D: Drain + Default>() {
    let drain = Arc::new(D::default());
    // Connections between entering and their last act.
    let running = Arc::new(Witness::new(0));
    let connections: Vec<_> = (0..2)
        .map(|_| {
            let (drain, running) = (drain.clone(), running.clone());
            thread::spawn(move || {
                if let Some(live) = drain.try_enter() {
                    running.fetch_add(1, Ordering::SeqCst);
                    running.fetch_sub(1, Ordering::SeqCst); // the connection's last act
                    drop(live);
                }
            })
        })
        .collect();
    drain.begin();
    drain.wait_drained();
    assert_eq!(drain.live(), 0, "drain returned with live connections");
    assert_eq!(
        running.load(Ordering::SeqCst),
        0,
        "drain returned before a counted connection finished"
    );
    for c in connections {
        c.join().unwrap();
    }
}

#[test]
fn drain_returns_only_after_the_last_connection() {
    loom_check::explore(
        "drain: 2 connections entering vs shutdown",
        None,
        drain_waits_for_racing_connections::<Shutdown<Model>>,
    );
}

#[test]
fn drain_with_two_leaving_never_hangs() {
    loom_check::explore(
        "drain: 2 leaving vs wait",
        None,
        drain_two_leaving::<Shutdown<Model>>,
    );
}

// ANCHOR: unlocked_check_caught
/// BUGGY VARIANT: the check outside the lock loses the last wake-up; loom
/// reports the waiter blocked forever.
#[test]
fn unlocked_check_lost_wakeup_is_caught() {
    let failure = loom_check::expect_bug(
        "unlocked-check drain: 1 leaving vs wait",
        None,
        drain_one_leaving::<UnlockedCheckDrain<Model>>,
    );
    assert!(
        failure.message.contains("deadlock"),
        "unexpected failure: {failure:?}"
    );
    loom_check::check_against_book("trace-unlocked-check.txt", &failure.trace);
}
// ANCHOR_END: unlocked_check_caught

// ANCHOR: drain_vs_second_begin
/// One connection leaves while another thread begins shutdown too (a second
/// Ctrl-C, or `ServerHandle::shutdown` racing the signal): `begin` notifies
/// the waiter while the connection may still be live.
fn drain_vs_second_begin<D: Drain + Default>() {
    let drain = Arc::new(D::default());
    let live = drain.try_enter().unwrap();
    let leaving = thread::spawn(move || drop(live));
    let other = drain.clone();
    let second = thread::spawn(move || {
        other.begin();
    });
    drain.wait_drained();
    assert_eq!(drain.live(), 0, "drain returned with live connections");
    leaving.join().unwrap();
    second.join().unwrap();
}
// ANCHOR_END: drain_vs_second_begin

#[test]
fn drain_ignores_a_wakeup_that_is_not_the_last_leave() {
    loom_check::explore(
        "drain: 1 leaving + a second begin vs wait",
        None,
        drain_vs_second_begin::<Shutdown<Model>>,
    );
}

// ANCHOR: if_caught
/// BUGGY VARIANT: `if` instead of `while` returns on the first wake-up —
/// the first of two connections leaving — with the other still live.
#[test]
fn if_instead_of_while_is_caught() {
    let failure = loom_check::expect_bug(
        "if-drain: 2 leaving vs wait",
        None,
        drain_two_leaving::<IfDrain<Model>>,
    );
    assert!(
        failure
            .message
            .contains("drain returned with live connections"),
        "unexpected failure: {failure:?}"
    );
    loom_check::check_against_book("trace-if-not-while.txt", &failure.trace);
}
// ANCHOR_END: if_caught
