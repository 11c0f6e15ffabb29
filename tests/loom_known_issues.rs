//! A loom trap this project fell into, reduced to a program with none of the
//! crate's code: loom fails a correct program whose behaviour depends on
//! something loom cannot see.
//!
//! loom explores a model by running it again and again. To try a new
//! interleaving it starts the model from scratch and replays the thread
//! choices it recorded, up to the one it wants to change (loom 0.7.2,
//! `rt/path.rs`, `branch_thread`). It trusts the replay to reach the same
//! states: loom's docs require a model to be "fully deterministic". If the
//! program itself decides differently this time, the thread the recording
//! says to run may now be unable to run, and loom resumes it anyway
//! (`rt/execution.rs:209`). What follows depends on where that thread is
//! stuck: waiting for a mutex, it trips loom's own assertion "expected to be
//! able to acquire lock" (`rt/mutex.rs:46`); parked in `Condvar::wait`, its
//! wait returns with no notify; already finished, loom's scheduler resumes it
//! forever and the test hangs. loom checks replays only for a branch of the
//! wrong kind ("Is the model fully deterministic?"), which this is not.
//! Detecting a diverged replay is upstream's open PR tokio-rs/loom#184.
//!
//! The registry model in `tests/loom_registry.rs` hit this through a
//! `HashMap`: every new map hashes with fresh keys (std's `RandomState`), so
//! two entries came back in a different order from one execution to the next
//! (rust-lang/libs-team#523 asks for a deterministic `RandomState` for loom
//! and Shuttle for this reason). Below, the changing order comes from a
//! counter of executions instead, so loom's verdict is the same every run.
//!
//! The program is not loom's Condvar bug tokio-rs/loom#422 (a leftover
//! `thread::unpark` token): it never calls `park`/`unpark`, and with only
//! mutexes and condition variables a thread in a condvar's waiter list is
//! always parked in that condvar. Shuttle agrees with this reading: its
//! random and PCT schedulers pass the same program, and its
//! `check_uncontrolled_nondeterminism` names the cause ("possible
//! nondeterminism: set of runnable tasks is different than expected").
//!
//! Under `--cfg loom` this file asks loom; without it, the same program runs
//! on real threads.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_known_issues -- --nocapture`
//! (at `LOOM_MAX_PREEMPTIONS` 0 or 1 loom never reaches the diverging replay),
//! and `cargo test --test loom_known_issues`.

// `Arc` is std's in both modes: loom's aborts the binary when a model deadlocks
// (loom#291), and the sharing is not what is under test.
use std::sync::Arc;

// The program's primitives: loom's under `--cfg loom`, std's otherwise.
#[cfg(loom)]
use loom::{
    sync::{Condvar, Mutex},
    thread,
};
#[cfg(not(loom))]
use std::{
    sync::{Condvar, Mutex},
    thread,
};

#[cfg(loom)]
#[path = "support/loom_check.rs"]
mod loom_check;

/// One sleeping thread's flag and the condition variable it waits on.
struct Sleeper {
    woken: Mutex<bool>,
    changed: Condvar,
}

/// Two threads each sleep until their own flag is set; main sets the flags,
/// one after the other in `order`, and joins both. Correct in either order.
fn wake_both(order: [usize; 2]) {
    let sleepers: Vec<Arc<Sleeper>> = (0..2)
        .map(|_| {
            Arc::new(Sleeper {
                woken: Mutex::new(false),
                changed: Condvar::new(),
            })
        })
        .collect();
    let threads: Vec<_> = sleepers
        .iter()
        .map(|sleeper| {
            let sleeper = sleeper.clone();
            thread::spawn(move || {
                let mut woken = sleeper.woken.lock().unwrap();
                while !*woken {
                    woken = sleeper.changed.wait(woken).unwrap();
                }
            })
        })
        .collect();
    for i in order {
        *sleepers[i].woken.lock().unwrap() = true;
        sleepers[i].changed.notify_all();
    }
    for t in threads {
        t.join().unwrap();
    }
}

/// The wake order of the `n`-th run: it flips every run, as a new two-entry
/// `HashMap` may, but the same way every time the test runs.
fn nth_order(n: usize) -> [usize; 2] {
    if n.is_multiple_of(2) { [0, 1] } else { [1, 0] }
}

#[cfg(loom)]
mod model {
    use super::{loom_check, nth_order, wake_both};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The counter is a std atomic: loom neither sees nor resets it, which
    /// is the whole point.
    #[test]
    fn a_wake_order_that_changes_between_runs_trips_loom() {
        let runs = Arc::new(AtomicUsize::new(0));
        let failure = loom_check::expect_bug(
            "known issue: wake order changes between runs",
            Some(2),
            move || wake_both(nth_order(runs.fetch_add(1, Ordering::Relaxed))),
        );
        assert!(
            failure
                .message
                .contains("expected to be able to acquire lock"),
            "loom 0.7.2 failed this correct but nondeterministic model on its own internal \
             assertion; this loom says `{}` instead. If it now names the nondeterminism \
             (tokio-rs/loom#184), update this test, tests/loom_registry.rs and chapter 6.",
            failure.message
        );
    }

    /// The control: the same program, one order every run, passes
    /// exhaustively. The primitives are fine; the changing order is not.
    #[test]
    fn the_same_program_in_a_fixed_order_passes() {
        loom_check::explore("known issue control: fixed wake order", None, || {
            wake_both([1, 0])
        });
    }
}

#[cfg(not(loom))]
mod real_threads {
    use super::{nth_order, wake_both};
    use std::collections::{BTreeSet, HashMap};
    use std::sync::mpsc;
    use std::time::Duration;

    /// Real threads finish in both orders. The runs go on a helper thread so
    /// that a hang fails the test after a minute instead of stalling it.
    #[test]
    fn real_threads_finish_in_either_order() {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            for n in 0..4_000 {
                wake_both(nth_order(n));
            }
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("wake_both did not finish 4 000 runs on real threads within a minute");
    }

    /// The hidden state behind the registry's failure: maps of the same two
    /// keys do not all iterate alike. (Each map's order is a coin toss, so
    /// 64 maps all agreeing would be a 1 in 2^63 fluke.)
    #[test]
    fn new_hash_maps_iterate_in_different_orders() {
        let orders: BTreeSet<Vec<u64>> = (0..64)
            .map(|_| HashMap::from([(1u64, ()), (2, ())]).into_keys().collect())
            .collect();
        assert_eq!(orders.len(), 2, "64 maps all iterated alike: {orders:?}");
    }
}
