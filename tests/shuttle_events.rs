//! The event-loop engine's cross-thread protocol under Shuttle, with four
//! loops — more threads than loom can take (five, main included, and each
//! loop polls in a loop, so loom's search runs out long before). The model
//! is `tests/support/events_model.rs`, the one `tests/loom_events.rs` runs
//! with two loops and every interleaving within a bound; here PCT and random
//! schedules sample it, and the lossy nudge must be caught by both.
//!
//! Run: `RUSTFLAGS="--cfg shuttle" cargo test --release --test shuttle_events -- --nocapture`
#![cfg(shuttle)]

#[path = "support/shuttle_check.rs"]
mod shuttle_check;

#[path = "support/events_model.rs"]
mod events_model;

use events_model::{Lossy, Sticky, shutdown_reaches_every_loop};
use shuttle_check::{Budget, Scheduler};
use std::sync::Arc;

/// Four loops and main: about 0.05 ms a schedule in release, ten times that in debug, so a few
/// seconds of the literal debug `cargo test` (a release build runs ten times as many).
const BUDGET: Budget = Budget {
    nondeterminism: 100,
    pct: 5_000,
    depth: 3,
    random: 5_000,
};

#[test]
fn shutdown_reaches_four_loops() {
    shuttle_check::explore("events: 4 loops vs shutdown", BUDGET, || {
        shutdown_reaches_every_loop::<Sticky>(4, false, false)
    });
}

#[test]
fn the_cut_reaches_four_loops_whose_connections_never_end() {
    shuttle_check::explore(
        "events: 4 loops, stuck clients, shutdown then cut",
        BUDGET,
        || shutdown_reaches_every_loop::<Sticky>(4, true, true),
    );
}

/// BUGGY VARIANT: the nudge that leaves no mark, found by both schedulers.
#[test]
fn a_nudge_that_is_not_sticky_is_caught_with_four_loops() {
    let model: Arc<dyn Fn() + Send + Sync> =
        Arc::new(|| shutdown_reaches_every_loop::<Lossy>(4, false, false));
    for scheduler in [Scheduler::Pct, Scheduler::Random] {
        let found = shuttle_check::schedules_to_find(scheduler, 1, 20_000, &model)
            .unwrap_or_else(|| panic!("{scheduler:?} missed the lost nudge in 20,000 schedules"));
        eprintln!(
            "shuttle model events: lossy nudge, 4 loops: {scheduler:?} found it after {} schedules",
            found.schedules
        );
        assert!(
            found.message.contains("deadlock"),
            "unexpected failure: {}",
            found.message
        );
    }
}
