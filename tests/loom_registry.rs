//! Loom model of the live-connection registry: shutdown's wake-up reaches
//! every connection, even one registering while shutdown runs — and the
//! forgetful registry, which must be caught leaving one asleep.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_registry -- --nocapture`
#![cfg(loom)]

#[path = "support/bug_models.rs"]
mod bug_models;
#[path = "support/loom_check.rs"]
mod loom_check;

use bug_models::every_connection_woken;
use many_clients::registry::Roster;
use many_clients::registry::buggy::ForgetfulRegistry;
use many_clients::server::pipe::PipeWaker;
use many_clients::sync::Model;

/// No preemption bound: the whole search is 13 958 interleavings, about a
/// second in release here.
const BOUND: Option<usize> = None;

#[test]
fn shutdown_wakes_every_registered_connection() {
    // This model was once held at 2 preemptions: at 3 loom stopped on its
    // own assertion "expected to be able to acquire lock" (loom 0.7.2,
    // rt/mutex.rs:46) in a pipe's lock, and unbounded it reported a deadlock
    // in which a `Condvar::wait` returned again and again with no notify.
    // Neither loom's Condvar nor the registry was at fault: the model was
    // not deterministic. The registry kept its entries in a `HashMap`, each
    // new map iterates in its own order (std's `RandomState`), so from one
    // execution to the next `close` handed main the two wakers in a
    // different order. loom replays a recorded schedule to reach each new
    // interleaving and trusts the replay to repeat itself; LOOM_LOG=trace
    // showed two executions with the same schedule up to main's first wake,
    // which took connection 2's pipe lock in one and connection 1's (held by
    // connection 1, about to wait) in the next, where loom resumed main as
    // the recording said and main found the lock taken. On real threads the
    // order cannot matter: every woken pipe stays closed. The registry now
    // keeps a `BTreeMap` (entries come back in id order) and the search is
    // exhaustive. tests/loom_known_issues.rs shows the same trap with no
    // crate code.
    loom_check::explore(
        "registry: 2 registering vs close",
        BOUND,
        every_connection_woken::<Roster<PipeWaker<Model>, Model>, 2>,
    );
}

// ANCHOR: forgetful_caught
/// BUGGY VARIANT: a registration after `close` is kept and never woken; loom
/// reports that connection blocked forever.
#[test]
fn forgetful_registry_missed_wakeup_is_caught() {
    let failure = loom_check::expect_bug(
        "forgetful registry: 2 registering vs close",
        BOUND,
        every_connection_woken::<ForgetfulRegistry<PipeWaker<Model>, Model>, 2>,
    );
    assert!(
        failure.message.contains("deadlock"),
        "unexpected failure: {failure:?}"
    );
    loom_check::check_against_book("trace-forgetful-registry.txt", &failure.trace);
}
// ANCHOR_END: forgetful_caught
