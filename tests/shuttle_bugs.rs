//! Every buggy variant the book shows, caught by Shuttle too — in the very
//! models the loom suite runs (`tests/support/bug_models.rs`, shared with
//! `tests/loom_counter.rs`, `loom_limit.rs`, `loom_shutdown.rs` and
//! `loom_registry.rs`), on Shuttle's primitives instead of loom's. Each bug is searched for with 21 seeds under PCT and under
//! the random scheduler; the test fails if any seed misses it, and prints
//! the median number of schedules it took, which chapter 6.1's table sets
//! beside loom's interleaving counts (`book/tools/gen_tables.py shuttle`).
//! Each sound version runs through the same model and must pass, so every
//! oracle here is shown both a right and a wrong implementation.
//!
//! Run: `RUSTFLAGS="--cfg shuttle" cargo test --release --test shuttle_bugs -- --nocapture`
#![cfg(shuttle)]

#[path = "support/bless.rs"]
mod bless;
#[path = "support/bug_models.rs"]
mod bug_models;
#[path = "support/shuttle_check.rs"]
mod shuttle_check;

use bug_models::{
    concurrent_connects, drain_one_leaving, drain_two_leaving, every_connection_woken,
    never_exceeded,
};
use many_clients::counter::AtomicCounter;
use many_clients::counter::racy::RacyCounter;
use many_clients::limit::Limit;
use many_clients::limit::buggy::CheckThenActLimit;
use many_clients::registry::buggy::ForgetfulRegistry;
use many_clients::registry::{Registry, Roster};
use many_clients::server::pipe::PipeWaker;
use many_clients::shutdown::Shutdown;
use many_clients::shutdown::buggy::{IfDrain, UnlockedCheckDrain};
use many_clients::sync::{Arc, Backend, Lock, Model};
use shuttle_check::Budget;
use std::collections::HashMap;

/// For the sound versions: the same models are small, so a few thousand
/// schedules each cost well under a second in release.
const SOUND: Budget = Budget {
    nondeterminism: 100,
    pct: 2_000,
    depth: 3,
    random: 2_000,
};

fn assert_all_contain(messages: &[String], expected: &str) {
    for m in messages {
        assert!(m.contains(expected), "unexpected failure: {m}");
    }
}

#[test]
fn atomic_counter_ids_unique() {
    shuttle_check::explore(
        "atomic: 2 concurrent connects",
        SOUND,
        concurrent_connects::<AtomicCounter<Model>>,
    );
}

#[test]
fn racy_counter_lost_update_is_caught() {
    let messages = shuttle_check::measure(
        "racy",
        "racy: 2 concurrent connects",
        &shuttle_check::BOTH,
        concurrent_connects::<RacyCounter<Model>>,
    );
    // Which lost update a schedule shows first varies: two clients with one
    // id (the loom model's first find), or distinct ids and a count that
    // forgot one `active` or `served` update. Both are the same bug.
    for m in &messages {
        assert!(
            m.contains("duplicate or missing id") || m.contains("lost update in the counts"),
            "unexpected failure: {m}"
        );
    }
}

// ANCHOR: replay
/// A failing schedule Shuttle printed, recorded from a real run: the first
/// `failing schedule: "…"` of
/// `cargo test --test shuttle_bugs racy -- --nocapture` (PCT, seed 1, its
/// second schedule). It encodes the seed and every thread switch; replaying
/// it runs exactly that interleaving again, however many times.
const RACY_SCHEDULE: &str = "9102199c8df3f3e5b1a0f42200249224494992249000";

#[test]
fn a_recorded_schedule_replays_the_lost_update() {
    for _ in 0..3 {
        let failure = shuttle_check::replay_must_fail(
            concurrent_connects::<RacyCounter<Model>>,
            RACY_SCHEDULE,
        );
        assert!(
            failure.contains("duplicate or missing id: [1, 1]"),
            "the replay failed differently: {failure}"
        );
    }
}
// ANCHOR_END: replay

#[test]
fn limit_never_exceeded() {
    shuttle_check::explore("limit: try/try/blocking, max 1", SOUND, || {
        never_exceeded(Limit::<Model>::new)
    });
}

#[test]
fn check_then_act_overshoot_is_caught() {
    let messages = shuttle_check::measure(
        "check-then-act",
        "check-then-act limit, max 1",
        &shuttle_check::BOTH,
        || never_exceeded(CheckThenActLimit::<Model>::new),
    );
    assert_all_contain(&messages, "limit exceeded");
}

#[test]
fn drain_never_hangs_or_returns_early() {
    shuttle_check::explore(
        "drain: 1 leaving vs wait",
        SOUND,
        drain_one_leaving::<Shutdown<Model>>,
    );
    shuttle_check::explore(
        "drain: 2 leaving vs wait",
        SOUND,
        drain_two_leaving::<Shutdown<Model>>,
    );
}

#[test]
fn unlocked_check_lost_wakeup_is_caught() {
    let messages = shuttle_check::measure(
        "unlocked-check",
        "unlocked-check drain: 1 leaving vs wait",
        &shuttle_check::BOTH,
        drain_one_leaving::<UnlockedCheckDrain<Model>>,
    );
    // Shuttle's word for "every thread is blocked".
    assert_all_contain(&messages, "deadlock");
}

#[test]
fn if_instead_of_while_is_caught() {
    let messages = shuttle_check::measure(
        "if-drain",
        "if-drain: 2 leaving vs wait",
        &shuttle_check::BOTH,
        drain_two_leaving::<IfDrain<Model>>,
    );
    assert_all_contain(&messages, "drain returned with live connections");
}

#[test]
fn shutdown_wakes_every_registered_connection() {
    shuttle_check::explore(
        "registry: 2 registering vs close",
        SOUND,
        every_connection_woken::<Roster<PipeWaker<Model>, Model>, 2>,
    );
}

/// Four connections registering while shutdown closes the registry: beyond
/// what loom can exhaust (five threads is loom's limit, and the search grows
/// far too fast before it), sampled here.
#[test]
fn shutdown_wakes_four_registering_connections() {
    shuttle_check::explore(
        "registry: 4 registering vs close",
        SOUND,
        every_connection_woken::<Roster<PipeWaker<Model>, Model>, 4>,
    );
}

#[test]
fn forgetful_registry_missed_wakeup_is_caught() {
    let messages = shuttle_check::measure(
        "forgetful",
        "forgetful registry: 2 registering vs close",
        &shuttle_check::BOTH,
        every_connection_woken::<ForgetfulRegistry<PipeWaker<Model>, Model>, 2>,
    );
    assert_all_contain(&messages, "deadlock");
}

// ANCHOR: hash_roster
/// The registry as it was when loom failed the sound registry model at
/// three preemptions (`tests/loom_known_issues.rs`): sound, but its entries
/// in a `HashMap`, so `close` hands them back in an order that changes from
/// one map to the next.
struct HashRoster {
    state: <Model as Backend>::Mutex<(bool, HashMap<u64, PipeWaker<Model>>)>,
}

impl Default for HashRoster {
    fn default() -> Self {
        HashRoster {
            state: Lock::new((false, HashMap::new())),
        }
    }
}

impl Registry<PipeWaker<Model>> for HashRoster {
    fn insert(&self, id: u64, entry: PipeWaker<Model>) -> Result<(), PipeWaker<Model>> {
        let mut state = self.state.lock();
        if state.0 {
            return Err(entry);
        }
        state.1.insert(id, entry);
        Ok(())
    }
    fn remove(&self, id: u64) -> Option<PipeWaker<Model>> {
        self.state.lock().1.remove(&id)
    }
    fn close(&self) -> Vec<(u64, PipeWaker<Model>)> {
        let mut state = self.state.lock();
        state.0 = true;
        state.1.drain().collect() // in the map's order, which is not the same twice
    }
    fn len(&self) -> usize {
        self.state.lock().1.len()
    }
}

/// Shuttle names what loom could not: replaying a schedule of this model
/// offers the scheduler different choices, because the wake order came
/// from the hash map, not from the schedule.
#[test]
fn a_hash_map_registry_is_caught_being_nondeterministic() {
    let failure = shuttle_check::nondeterminism_must_be_found(
        every_connection_woken::<HashRoster, 2>,
        5,
        100,
    );
    assert!(
        failure.contains("possible nondeterminism"),
        "unexpected failure: {failure}"
    );
}
// ANCHOR_END: hash_roster

// ANCHOR: shuttle_trace
/// A schedule Shuttle found failing prints as the same table as loom's
/// failing executions: the backend reports every step to the same recorder.
#[test]
fn a_failing_schedule_prints_its_interleaving() {
    let model: Arc<dyn Fn() + Send + Sync> = Arc::new(concurrent_connects::<RacyCounter<Model>>);
    let found = shuttle_check::schedules_to_find(shuttle_check::Scheduler::Pct, 1, 20_000, &model)
        .expect("PCT finds the lost update");
    eprintln!("{}", found.trace);
    // PCT with a fixed seed picks the same schedules every run: the book shows this one.
    bless::check_against_book(
        "shuttle-trace-racy-counter.txt",
        &found.trace,
        "RUSTFLAGS=\"--cfg shuttle\" cargo test --release --test shuttle_bugs",
    );
    assert!(
        found.message.contains("duplicate or missing id"),
        "{}",
        found.message
    );
    assert!(found.trace.contains("issued.load() → 0"), "{}", found.trace);
    assert!(
        found.trace.contains("racy.rs is src/counter/racy.rs"),
        "{}",
        found.trace
    );
    assert!(
        found.trace.contains("✗ "),
        "the broken assertion ends it: {}",
        found.trace
    );
}
// ANCHOR_END: shuttle_trace
