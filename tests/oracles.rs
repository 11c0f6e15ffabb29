//! The linearizability checker's oracles, shown wrong answers.
//!
//! `tests/loom_linearizable.rs` judges every history loom produces by a sequential
//! specification (`support/lin_specs.rs`) and the search in `support/linearizable.rs`. A spec
//! that accepts too much would let every sound type pass and would still catch some bugs by
//! luck, so passing the loom suite says little about the oracle itself. Here each spec is fed
//! small histories written by hand — the calls and returns of a run, in the order a run would
//! log them — and must reject the wrong one and accept its sound twin, which differs in one
//! returned value or in one overlap. No loom and no threads: the checker is pure, and these
//! tests run in the normal `cargo test`.
//!
//! (`Stats::is_consistent`, the oracle of the atomic counter's snapshots, has its own test in
//! `src/counter/tests.rs`; the schedules' reference model has its own in
//! `support/schedule_model.rs`.)
#![cfg(not(loom))]

// The specs' program generators and the checker's printing are not used here: they serve
// `tests/loom_linearizable.rs`, which includes these same files.
#[allow(dead_code)]
#[path = "support/lin_programs.rs"]
mod lin_programs;
#[allow(dead_code)]
#[path = "support/lin_specs.rs"]
mod lin_specs;
#[allow(dead_code)]
#[path = "support/linearizable.rs"]
mod linearizable;

use lin_specs::Reads;
use lin_specs::{CounterOp, CounterSpec, DrainOp, DrainSpec, LimitOp, LimitSpec, Max, NoParams};
use linearizable::{Event, History, Outcome, Ret, Spec, linearize};
use many_clients::counter::Stats;

/// A history written as a run logs it: `call(t, op)` when thread `t` calls, `ret(t, r)` when
/// its operation returns `r`. Operations of different threads overlap when one's call comes
/// between the other's call and return.
enum Step<O> {
    Call(usize, O),
    Ret(usize, Ret),
}
use Step::{Call, Ret as Returns};

fn history<O: Clone>(steps: Vec<Step<O>>) -> History<O> {
    History::from_events(
        steps
            .into_iter()
            .map(|step| match step {
                Call(thread, op) => Event::Call { thread, op },
                Returns(thread, ret) => Event::Return {
                    thread,
                    outcome: Outcome::Returned(ret),
                },
            })
            .collect(),
    )
}

/// Whether `spec` finds an order of the history's operations that it would have produced.
fn accepts<S: Spec>(spec: &S, params: &S::Params, steps: Vec<Step<S::Op>>) -> bool {
    linearize(spec, params, &history(steps)).is_some()
}

fn stats(active: u64, peak: u64, served: u64, issued: u64) -> Ret {
    Ret::Stats(Stats {
        active,
        peak,
        served,
        issued,
    })
}

const SNAPSHOT: CounterSpec = CounterSpec {
    reads: Reads::Snapshot,
};
const CONSISTENT: CounterSpec = CounterSpec {
    reads: Reads::Consistent,
};

// ---------------------------------------------------------------------------------------------
// The counter

#[test]
fn counter_spec_rejects_a_duplicate_id_even_from_overlapping_connects() {
    use CounterOp::Connect;
    // The lost update: two connects at once, both handed id 1. No order of them gives 1 twice.
    let lost_update = |second| {
        vec![
            Call(0, Connect),
            Call(1, Connect),
            Returns(0, Ret::Id(1)),
            Returns(1, Ret::Id(second)),
        ]
    };
    for spec in [SNAPSHOT, CONSISTENT] {
        assert!(!accepts(&spec, &NoParams, lost_update(1)), "{spec:?}");
        assert!(accepts(&spec, &NoParams, lost_update(2)), "{spec:?}");
    }
}

#[test]
fn counter_spec_orders_operations_by_real_time() {
    use CounterOp::Connect;
    // Thread 1's connect returned before thread 0's began, so it must have the smaller id:
    // 2 then 1 is only possible if the checker ignored real time.
    let one_after_the_other = |first, second| {
        vec![
            Call(1, Connect),
            Returns(1, Ret::Id(first)),
            Call(0, Connect),
            Returns(0, Ret::Id(second)),
        ]
    };
    assert!(!accepts(&SNAPSHOT, &NoParams, one_after_the_other(2, 1)));
    assert!(accepts(&SNAPSHOT, &NoParams, one_after_the_other(1, 2)));
}

#[test]
fn counter_spec_rejects_a_disconnect_nobody_connected_for_and_a_wrong_snapshot() {
    use CounterOp::{Connect, Disconnect, Stats};
    // One client connects and leaves; a later read must see exactly that.
    let read_after = |seen| {
        vec![
            Call(0, Connect),
            Returns(0, Ret::Id(1)),
            Call(0, Disconnect),
            Returns(0, Ret::Done),
            Call(1, Stats),
            Returns(1, seen),
        ]
    };
    assert!(accepts(&SNAPSHOT, &NoParams, read_after(stats(0, 1, 1, 1))));
    for wrong in [
        stats(1, 1, 1, 1), // still active after leaving: consistent, but not what happened
        stats(0, 1, 0, 1), // the leave not counted served
        stats(0, 0, 1, 1), // the peak forgotten
        stats(0, 1, 1, 2), // an id issued nobody took
    ] {
        assert!(
            !accepts(&SNAPSHOT, &NoParams, read_after(wrong)),
            "{wrong:?}"
        );
    }
    // A disconnect with nobody connected cannot happen in the sequential counter.
    let orphan = vec![Call(0, Disconnect), Returns(0, Ret::Done)];
    assert!(!accepts(&SNAPSHOT, &NoParams, orphan));
}

#[test]
fn consistent_reads_accept_any_consistent_snapshot_and_nothing_else() {
    use CounterOp::{Connect, Stats};
    // A read overlapping a connect. With consistent reads (the atomic counter's promise) a
    // snapshot in between two states is fine if it is consistent; strict snapshot reads
    // accept only the states before and after.
    let overlapping = |seen| {
        vec![
            Call(0, Connect),
            Call(1, Stats),
            Returns(1, seen),
            Returns(0, Ret::Id(1)),
        ]
    };
    let in_between = stats(0, 0, 0, 1); // the id taken, the client not counted yet
    assert!(accepts(&CONSISTENT, &NoParams, overlapping(in_between)));
    assert!(!accepts(&SNAPSHOT, &NoParams, overlapping(in_between)));
    assert!(accepts(
        &SNAPSHOT,
        &NoParams,
        overlapping(stats(1, 1, 0, 1))
    ));
    let inconsistent = stats(1, 0, 0, 1); // connected now, yet the peak is 0
    assert!(!accepts(&CONSISTENT, &NoParams, overlapping(inconsistent)));
}

// ---------------------------------------------------------------------------------------------
// The limit

#[test]
fn limit_spec_rejects_the_overshoot() {
    use LimitOp::TryAcquire;
    // Two try_acquires at once on a limit of 1: one of them must be refused.
    let both = |second| {
        vec![
            Call(0, TryAcquire),
            Call(1, TryAcquire),
            Returns(0, Ret::Bool(true)),
            Returns(1, Ret::Bool(second)),
        ]
    };
    assert!(!accepts(&LimitSpec, &Max(1), both(true)));
    assert!(accepts(&LimitSpec, &Max(1), both(false)));
    assert!(accepts(&LimitSpec, &Max(2), both(true)));
    // ... and a refusal with a slot free is wrong too.
    let refused = vec![Call(0, TryAcquire), Returns(0, Ret::Bool(false))];
    assert!(!accepts(&LimitSpec, &Max(1), refused));
}

#[test]
fn limit_spec_lets_acquire_return_only_once_a_slot_is_free() {
    use LimitOp::{Acquire, Release, TryAcquire};
    // Thread 0 holds the only slot; thread 1's acquire returns. Only a release inside the
    // acquire's window can explain that.
    let with_release = |release_overlaps| {
        let mut steps = vec![Call(0, TryAcquire), Returns(0, Ret::Bool(true))];
        let acquire = [Call(1, Acquire), Returns(1, Ret::Bool(true))];
        let release = [Call(0, Release), Returns(0, Ret::Done)];
        if release_overlaps {
            let [call, ret] = acquire;
            steps.extend([call]);
            steps.extend(release);
            steps.push(ret);
        } else {
            steps.extend(acquire);
            steps.extend(release);
        }
        steps
    };
    assert!(accepts(&LimitSpec, &Max(1), with_release(true)));
    assert!(!accepts(&LimitSpec, &Max(1), with_release(false)));
}

// ---------------------------------------------------------------------------------------------
// Shutdown and drain

#[test]
fn drain_spec_rejects_an_entry_after_shutdown_began() {
    use DrainOp::{Begin, Enter};
    let enter_after_begin = |admitted| {
        vec![
            Call(0, Begin),
            Returns(0, Ret::Count(0)),
            Call(1, Enter),
            Returns(1, Ret::Bool(admitted)),
        ]
    };
    assert!(!accepts(&DrainSpec, &NoParams, enter_after_begin(true)));
    assert!(accepts(&DrainSpec, &NoParams, enter_after_begin(false)));
}

#[test]
fn drain_spec_rejects_a_wrong_live_count_and_an_early_drain() {
    use DrainOp::{Begin, Enter, Leave, WaitDrained};
    // One connection live when shutdown begins: `begin` must say 1.
    let begin_says = |live| {
        vec![
            Call(0, Enter),
            Returns(0, Ret::Bool(true)),
            Call(1, Begin),
            Returns(1, Ret::Count(live)),
        ]
    };
    assert!(accepts(&DrainSpec, &NoParams, begin_says(1)));
    assert!(!accepts(&DrainSpec, &NoParams, begin_says(0)));
    // wait_drained returned while the connection was still live (its leave came after):
    // the early return of the `if`-instead-of-`while` drain.
    let drained = |leave_first| {
        let mut steps = vec![Call(0, Enter), Returns(0, Ret::Bool(true))];
        let leave = [Call(0, Leave), Returns(0, Ret::Done)];
        let wait = [Call(1, WaitDrained), Returns(1, Ret::Done)];
        if leave_first {
            steps.extend(leave);
            steps.extend(wait);
        } else {
            steps.extend(wait);
            steps.extend(leave);
        }
        steps
    };
    assert!(accepts(&DrainSpec, &NoParams, drained(true)));
    assert!(!accepts(&DrainSpec, &NoParams, drained(false)));
}
