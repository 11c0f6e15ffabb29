//! Loom models of the client counter: every interleaving of a few clients
//! connecting, leaving and reading the counts, for the mutex and atomic
//! counters — and the racy one, which must be caught.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_counter -- --nocapture`
#![cfg(loom)]

#[path = "support/bug_models.rs"]
mod bug_models;
#[path = "support/loom_check.rs"]
mod loom_check;

use bug_models::concurrent_connects;
use loom_check::thread;
use many_clients::counter::racy::RacyCounter;
use many_clients::counter::{AtomicCounter, ClientGuard, Counter, LockedCounter};
use many_clients::sync::trace::Labels;
use many_clients::sync::{Arc, Model};

/// Two clients connect and leave while main reads the counts: every
/// snapshot is consistent (nobody counted twice, never above the clients
/// that exist, never "negative"), and the end state is exact.
fn connect_disconnect_with_reader<C: Counter + Default>() {
    let counter = Arc::new(C::default());
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || drop(ClientGuard::new(counter)))
        })
        .collect();
    let s = counter.stats();
    assert!(s.is_consistent(), "inconsistent snapshot {s:?}");
    assert!(s.active <= 2 && s.issued <= 2, "{s:?}");
    for c in clients {
        c.join().unwrap();
    }
    let s = counter.stats();
    assert_eq!(s.active, 0, "{s:?}");
    assert_eq!(s.served, 2, "{s:?}");
}

#[test]
fn mutex_counter_ids_unique_and_dense() {
    loom_check::explore(
        "mutex: 2 concurrent connects",
        None,
        concurrent_connects::<LockedCounter<Model>>,
    );
}

#[test]
fn atomic_counter_ids_unique_and_dense() {
    loom_check::explore(
        "atomic: 2 concurrent connects",
        None,
        concurrent_connects::<AtomicCounter<Model>>,
    );
}

#[test]
fn mutex_counter_snapshots_consistent() {
    loom_check::explore(
        "mutex: connect/leave vs reader",
        None,
        connect_disconnect_with_reader::<LockedCounter<Model>>,
    );
}

#[test]
fn atomic_counter_snapshots_consistent() {
    // Bounded: exhaustive is 3.7 million interleavings, 231 s in release
    // here (14 atomic operations on 3 threads). Three preemptions still cover
    // every race between any two of the operations, and more.
    loom_check::explore(
        "atomic: connect/leave vs reader",
        Some(3),
        connect_disconnect_with_reader::<AtomicCounter<Model>>,
    );
}

// ANCHOR: racy_caught
/// BUGGY VARIANT: the load-then-store counter must be caught handing the
/// same id to two clients.
#[test]
fn racy_counter_lost_update_is_caught() {
    let failure = loom_check::expect_bug(
        "racy: 2 concurrent connects",
        None,
        concurrent_connects::<RacyCounter<Model>>,
    );
    assert!(
        failure.message.contains("duplicate or missing id"),
        "unexpected failure: {failure:?}"
    );
    // What the book shows in chapter 6, compared line by line, and drawn.
    loom_check::check_against_book("trace-racy-counter.txt", &failure.trace);
    let title = "The racy counter's failing execution";
    let picture = failure.steps.svg(&Labels::Main, title);
    loom_check::check_against_book("trace-racy-counter.svg", &picture);
}
// ANCHOR_END: racy_caught
