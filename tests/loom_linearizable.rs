#![cfg(loom)]
//! proptest writes small concurrent programs, loom runs every interleaving of each, and a
//! sequential reference model judges every outcome: a linearizability check in the spirit of
//! Jepsen's Knossos or Porcupine, but exhaustive over schedules.
//!
//! For each generated program (say `T1: connect, stats | T2: connect`), `loom::model` runs it
//! once per interleaving. Each run logs when every operation was called and when it returned
//! with what; that history is checked against a sequential model (`support/linearizable.rs`
//! explains the algorithm). A run that is not linearizable panics with its history, loom
//! stops there, and proptest shrinks the program. The sound types must pass; every buggy
//! variant must be caught with a small program, asserted, so a test fails if a bug stops
//! being found.
//!
//! | file | what |
//! |---|---|
//! | `support/linearizable.rs` | histories, the checker, printing |
//! | `support/lin_specs.rs` | operations as data, sequential models, their generators |
//! | `support/lin_programs.rs` | well-formed programs: sizes, normalizing, shrinking |
//! | `support/lin_objects.rs` | the real types driven by those operations |
//! | `support/lin_traced.rs` | the loom backend that reports each operation's first touch |
//! | `support/lin_run.rs` | one program under loom: recording and checking each run |
//! | `support/lin_explain.rs` | a failing history explained: real time, and why no order works |
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_linearizable -- --nocapture`
//! prints what each test cost. Knobs: `LIN_CASES` (programs per sound type, default 128),
//! `LIN_SEED` (fix the programs), `LIN_THREADS` / `LIN_OPS` / `LIN_BOUND` (see [`Budget`]),
//! `LIN_VERBOSE=1` (every program and its interleavings). Soak: `LIN_CASES=2000` (about 15x
//! the default time); deeper: `LIN_BOUND=none` (3-thread programs exhaustive, slow).

#[path = "support/lin_explain.rs"]
mod lin_explain;
#[path = "support/lin_objects.rs"]
mod lin_objects;
#[path = "support/lin_programs.rs"]
mod lin_programs;
#[path = "support/lin_run.rs"]
mod lin_run;
#[path = "support/lin_specs.rs"]
mod lin_specs;
#[path = "support/lin_traced.rs"]
mod lin_traced;
#[path = "support/linearizable.rs"]
mod linearizable;
#[path = "support/loom_check.rs"]
mod loom_check;

use std::cell::Cell;
use std::time::Instant;

use lin_objects::*;
use lin_programs::{Alphabet, Sizes, smaller};
use lin_run::explore;
use lin_specs::*;
use lin_traced::Traced;
use linearizable::Program;
use many_clients::counter::racy::RacyCounter;
use many_clients::counter::{AtomicCounter, LockedCounter};
use many_clients::limit::Limit;
use many_clients::limit::buggy::CheckThenActLimit;
use many_clients::shutdown::Shutdown;
use many_clients::shutdown::buggy::{IfDrain, UnlockedCheckDrain};
use proptest::strategy::{BoxedStrategy, Strategy};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

// ---------------------------------------------------------------------------------------------
// What to explore, and what it cost

/// How a test explores: the sizes of its programs, and the preemption bound for programs of
/// 3 threads (2-thread programs are always exhaustive).
#[derive(Clone, Copy)]
struct Budget {
    sizes: Sizes,
    bound: Option<usize>,
}

impl Budget {
    /// With `LIN_THREADS`, `LIN_OPS` and `LIN_BOUND` (a number, or `none`) applied.
    fn with_env(self) -> Self {
        let bound = match std::env::var("LIN_BOUND") {
            Ok(v) if v == "none" => None,
            Ok(v) => Some(v.parse().expect("LIN_BOUND is a number or `none`")),
            Err(_) => self.bound,
        };
        Budget {
            sizes: Sizes::from_env(self.sizes),
            bound,
        }
    }
}

// What one interleaving costs loom differs a lot. A locked operation is one scheduling point;
// an atomic `connect` is three read-modify-writes and a `stats` four loads, each of which may
// return any of several recent stores. Interleavings per program, measured here, 3 threads:
//
// | object        | ops/thread | exhaustive: mean, max     | bound 3: mean, max |
// |---------------|------------|---------------------------|--------------------|
// | LockedCounter | 3          | ~800, 42 000              | ~70, 400           |
// | AtomicCounter | 1          | ~7 000, 64 000            |                    |
// | AtomicCounter | 2          | one at 414 000 (30 s), one > 5 min | ~1 300, 35 000 |
// | Limit         | 3          | ~30 000, 495 000          | ~300, 3 500        |
// | Shutdown      | 3          | ~7 000, 254 000           | ~200, 11 000       |
//
// So 3-thread programs get loom's recommended bound ("2 or 3 is enough to catch most bugs"),
// except the cheap locked counter; 2-thread programs are always exhaustive. The bug hunts
// below find every bug within these budgets. `LIN_BOUND=none` lifts the bound (slow).

const LOCKED_COUNTER: Budget = Budget {
    sizes: Sizes { threads: 3, ops: 3 },
    bound: None,
};
const ATOMIC_COUNTER: Budget = Budget {
    sizes: Sizes { threads: 3, ops: 2 },
    bound: Some(3),
};
const LIMIT: Budget = Budget {
    sizes: Sizes { threads: 3, ops: 3 },
    bound: Some(3),
};
const DRAIN: Budget = Budget {
    sizes: Sizes { threads: 3, ops: 3 },
    bound: Some(3),
};

/// Explores programs under one budget and counts the cost, printed with `--nocapture`.
struct Explorer {
    name: &'static str,
    bound: Option<usize>,
    start: Instant,
    programs: Cell<usize>,
    interleavings: Cell<usize>,
    max: Cell<usize>,
}

impl Explorer {
    fn new(name: &'static str, budget: Budget) -> Self {
        let (programs, interleavings, max) = Default::default();
        Explorer {
            name,
            bound: budget.bound,
            start: Instant::now(),
            programs,
            interleavings,
            max,
        }
    }

    /// Explores `program`, counting the cost; `LIN_VERBOSE` prints each one.
    fn explore<O: Object>(&self, spec: &O::Spec, program: &ProgramOf<O>) -> Result<(), String> {
        let at = Instant::now();
        let (interleavings, outcome) = explore::<O>(spec, program, self.bound);
        self.programs.set(self.programs.get() + 1);
        self.interleavings
            .set(self.interleavings.get() + interleavings);
        self.max.set(self.max.get().max(interleavings));
        if std::env::var_os("LIN_VERBOSE").is_some() {
            let (name, secs) = (self.name, at.elapsed().as_secs_f64());
            eprintln!("{name}: {interleavings:>7} interleavings {secs:>7.3} s  {program}");
        }
        outcome
    }

    fn report(&self) {
        let (n, secs) = (self.programs.get(), self.start.elapsed().as_secs_f64());
        eprintln!(
            "{}: {n} programs in {secs:.2} s = {:.1} programs/s; interleavings per program: \
             mean {:.0}, max {}",
            self.name,
            n as f64 / secs,
            self.interleavings.get() as f64 / n.max(1) as f64,
            self.max.get()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// proptest: generate, explore, shrink

/// Runs proptest over `programs`, exploring each with loom. `Err` holds the shrunk program.
fn hunt<O: Object>(
    explorer: &Explorer,
    spec: &O::Spec,
    programs: impl Strategy<Value = ProgramOf<O>>,
    config: Config,
) -> Result<(), TestError<ProgramOf<O>>> {
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..config
    });
    runner.run(&programs, |program| {
        explorer
            .explore::<O>(spec, &program)
            .map_err(TestCaseError::fail)
    })
}

/// `LIN_CASES` programs (default 128; `LIN_SEED` fixes them) must be linearizable in every
/// interleaving.
fn must_pass<O: Object>(
    name: &'static str,
    spec: O::Spec,
    budget: Budget,
    programs: impl Fn(Sizes) -> BoxedStrategy<ProgramOf<O>>,
) {
    let var = |name| std::env::var(name).ok().and_then(|v| v.parse().ok());
    let cases = var("LIN_CASES").map_or(128, |n| n as u32);
    let rng_seed = var("LIN_SEED").map_or(RngSeed::Random, RngSeed::Fixed);
    let config = Config {
        cases,
        max_shrink_iters: 100,
        rng_seed,
        ..Config::default()
    };
    let budget = budget.with_env();
    let explorer = Explorer::new(name, budget);
    let result = hunt::<O>(&explorer, &spec, programs(budget.sizes), config);
    explorer.report();
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Some program must fail. Returns the shrunk program and its report: proptest's shrinking,
/// then [`polish`]. The budget is the sound sibling's default (the environment is ignored) and
/// the seed is fixed, so the printed counterexample is the same from run to run — and is
/// compared with `book/src/generated/{book}`, which chapter 8.1 includes.
fn must_catch<O: Object>(
    name: &'static str,
    spec: O::Spec,
    budget: Budget,
    programs: impl Fn(Sizes) -> BoxedStrategy<ProgramOf<O>>,
    book: &str,
) -> (ProgramOf<O>, String)
where
    OpOf<O>: Alphabet,
{
    let config = Config {
        cases: 256, // the hunt stops at the first failure
        max_shrink_iters: 100,
        rng_seed: RngSeed::Fixed(2026),
        ..Config::default()
    };
    let explorer = Explorer::new(name, budget);
    let shrunk = match hunt::<O>(&explorer, &spec, programs(budget.sizes), config) {
        Err(TestError::Fail(_, shrunk)) => shrunk,
        Ok(()) => panic!("{name}: no generated program failed: the bug is no longer caught"),
        Err(e) => panic!("{name}: {e}"),
    };
    let (minimal, report) = polish::<O>(&explorer, &spec, shrunk);
    explorer.report();
    let printed = format!("{name}: caught; minimal program: {minimal}\n{report}");
    eprintln!("{printed}");
    loom_check::check_against_book(book, &printed);
    (minimal, report)
}

/// proptest's shrinker makes one greedy pass (drop threads, then ops, then simplify ops), so
/// it can stop at, say, six operations where four fail too. Finish the job: while some
/// [`smaller`] program still fails, take it. The result is 1-minimal: removing any single
/// operation or thread, or simplifying one, makes it pass.
fn polish<O: Object>(
    explorer: &Explorer,
    spec: &O::Spec,
    mut program: ProgramOf<O>,
) -> (ProgramOf<O>, String)
where
    OpOf<O>: Alphabet,
{
    let mut report = explorer
        .explore::<O>(spec, &program)
        .expect_err("the shrunk program fails");
    'smaller: loop {
        for candidate in smaller(&program) {
            if let Err(why) = explorer.explore::<O>(spec, &candidate) {
                (program, report) = (candidate, why);
                continue 'smaller;
            }
        }
        return (program, report);
    }
}

/// Operations per thread: `[1, 1]` is two threads of one operation.
fn shape<P, O>(program: &Program<P, O>) -> Vec<usize> {
    program.threads.iter().map(Vec::len).collect()
}

// ---------------------------------------------------------------------------------------------
// The sound types pass

const SNAPSHOT: CounterSpec = CounterSpec {
    reads: Reads::Snapshot,
};
const CONSISTENT: CounterSpec = CounterSpec {
    reads: Reads::Consistent,
};

#[test]
fn locked_counter_is_linearizable() {
    must_pass::<Counting<LockedCounter<Traced>>>(
        "LockedCounter",
        SNAPSHOT,
        LOCKED_COUNTER,
        counter_programs,
    );
}

#[test]
fn atomic_counter_is_linearizable_with_consistent_reads() {
    must_pass::<Counting<AtomicCounter<Traced>>>(
        "AtomicCounter",
        CONSISTENT,
        ATOMIC_COUNTER,
        counter_programs,
    );
}

#[test]
fn limit_is_linearizable() {
    must_pass::<Limiting<Limit<Traced>>>("Limit", LimitSpec, LIMIT, limit_programs);
}

#[test]
fn shutdown_is_linearizable() {
    must_pass::<Draining<Shutdown<Traced>>>("Shutdown", DrainSpec, DRAIN, drain_programs);
}

// ---------------------------------------------------------------------------------------------
// Every buggy variant is caught, by the generator and budget of its sound sibling

// ANCHOR: racy_caught
#[test]
fn racy_counter_lost_update_is_caught() {
    let (program, report) = must_catch::<Counting<RacyCounter<Traced>>>(
        "RacyCounter",
        CONSISTENT,
        ATOMIC_COUNTER,
        counter_programs,
        "lin-racy-counter.txt",
    );
    assert_eq!(shape(&program), [1, 1], "{report}");
    assert!(
        report.contains("history:  T1: connect→1 | T2: connect→1"),
        "{report}"
    );
    // Why: both orders real time allows, and where each one fails.
    for order in ["T1 connect → 1, then T2", "T2 connect → 1, then T1"] {
        let why = format!("{order} connect → 1: the model returns 2");
        assert!(report.contains(&why), "{report}");
    }
}
// ANCHOR_END: racy_caught

/// Why the atomic counter is judged with `Reads::Consistent`: its snapshot is four loads, so
/// a read overlapping a `connect` can see the new id but not yet the new client.
#[test]
fn atomic_counter_snapshots_are_not_linearizable() {
    let (program, report) = must_catch::<Counting<AtomicCounter<Traced>>>(
        "AtomicCounter, snapshot reads",
        SNAPSHOT,
        ATOMIC_COUNTER,
        counter_programs,
        "lin-atomic-snapshot.txt",
    );
    assert_eq!(shape(&program), [1, 1], "{report}");
    assert!(
        report.starts_with("not linearizable") && report.contains("stats→"),
        "{report}"
    );
}

#[test]
fn check_then_act_limit_overshoot_is_caught() {
    let (program, report) = must_catch::<Limiting<CheckThenActLimit<Traced>>>(
        "CheckThenActLimit",
        LimitSpec,
        LIMIT,
        limit_programs,
        "lin-check-then-act.txt",
    );
    assert_eq!(shape(&program), [1, 1], "{report}");
    assert!(
        report.contains("history:  max=1; T1: try_acquire→true | T2: try_acquire→true"),
        "{report}"
    );
}

#[test]
fn unlocked_check_drain_lost_wakeup_is_caught() {
    let (program, report) = must_catch::<Draining<UnlockedCheckDrain<Traced>>>(
        "UnlockedCheckDrain",
        DrainSpec,
        DRAIN,
        drain_programs,
        "lin-unlocked-check.txt",
    );
    assert!(report.starts_with("deadlock"), "{report}");
    assert!(report.contains("wait_drained→blocked"), "{report}");
    assert!(shape(&program).iter().sum::<usize>() <= 3, "{report}");
}

#[test]
fn if_drain_early_return_is_caught() {
    let (program, report) = must_catch::<Draining<IfDrain<Traced>>>(
        "IfDrain",
        DrainSpec,
        DRAIN,
        drain_programs,
        "lin-if-drain.txt",
    );
    assert!(report.starts_with("not linearizable"), "{report}");
    assert!(shape(&program).iter().sum::<usize>() <= 5, "{report}");
    assert!(
        report.contains("T1 wait_drained: cannot return here, the model would block"),
        "{report}"
    );
}
