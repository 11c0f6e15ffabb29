//! Loom models of what crosses threads in the event-loop engine
//! (`src/server/events/control.rs`): shutdown and the grace cut reach every
//! loop, and the drain waits for every loop's connections. The model itself
//! is `tests/support/events_model.rs`, shared with `tests/shuttle_events.rs`,
//! which runs it with four loops.
//!
//! A buggy nudge that is *not* sticky (a bare notify) must be caught: a loop
//! that reads the orders just before shutdown begins, then polls, sleeps
//! forever.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_events -- --nocapture`
#![cfg(loom)]

#[path = "support/loom_check.rs"]
mod loom_check;

#[path = "support/events_model.rs"]
mod events_model;

use events_model::{Lossy, Sticky, shutdown_reaches_every_loop};

/// Bounded at 3 preemptions: exhaustive ran for more than six minutes here
/// without finishing (two loops, each polling in a loop, and main). Every
/// race this model is about — a loop reading its orders just before, during
/// or after shutdown begins and the cut is ordered — needs at most two forced
/// switches; bound 3 is 1,473 and 4,520 interleavings, bound 4 is 7,617 and
/// 41,432 (measured in release).
const BOUND: Option<usize> = Some(3);

#[test]
fn shutdown_wakes_every_loop_and_the_drain_waits_for_them() {
    loom_check::explore("events: 2 loops vs shutdown", BOUND, || {
        shutdown_reaches_every_loop::<Sticky>(2, false, false)
    });
}

#[test]
fn the_cut_reaches_a_loop_whose_connection_never_ends() {
    loom_check::explore(
        "events: 2 loops, stuck clients, shutdown then cut",
        BOUND,
        || shutdown_reaches_every_loop::<Sticky>(2, true, true),
    );
}

// ANCHOR: lossy_caught
/// BUGGY VARIANT: a nudge that leaves no mark; loom finds the loop that read
/// its orders just before shutdown began and then sleeps forever.
#[test]
fn a_nudge_that_is_not_sticky_is_caught() {
    let failure = loom_check::expect_bug("events: lossy nudge vs shutdown", BOUND, || {
        shutdown_reaches_every_loop::<Lossy>(2, false, false)
    });
    assert!(
        failure.message.contains("deadlock"),
        "unexpected failure: {}",
        failure.message
    );
}
// ANCHOR_END: lossy_caught
