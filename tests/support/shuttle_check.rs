//! Runs Shuttle models and reports what they cost; shared by the `shuttle_*`
//! tests through `#[path]`, as `loom_check.rs` is by the loom ones.
//!
//! * [`explore`] runs a model that must pass, three ways: Shuttle's
//!   uncontrolled-nondeterminism check (each schedule run twice, and the
//!   second run must offer the scheduler the same choices — a model that
//!   iterates a `HashMap` or reads the clock to decide fails it), then PCT,
//!   then the uniformly random scheduler. It prints how many schedules each
//!   ran and how long they took (`--nocapture` shows it).
//! * [`schedules_to_find`] runs a model that must FAIL under one scheduler
//!   and one seed, and says after how many schedules it failed and why.
//! * [`measure`] does that over [`SEEDS`] seeds for PCT and for random, and
//!   prints the median: the numbers `book/tools/gen_tables.py shuttle` puts in
//!   the book beside loom's.
//!
//! The schedulers run one after the other, not side by side in Shuttle's
//! `PortfolioRunner`: on a shared 2-core machine parallel runs only fight
//! for the cores, and one at a time each count and time is its own.
//!
//! A failing schedule is printed by Shuttle itself, as
//! `failing schedule: "…"`; `shuttle::replay(model, "…")` runs exactly that
//! schedule again (`tests/shuttle_replay.rs` does).
//!
//! Seeds: [`explore`] draws a fresh one per run, so every CI run samples new
//! schedules, and prints it; `SHUTTLE_RANDOM_SEED=n` fixes every scheduler's
//! seed (Shuttle reads it), for repeating a run. [`measure`] uses the fixed
//! seeds `1..=SEEDS`, so the book's table is the same on every machine.
//! `SHUTTLE_SCALE=k` runs k times the schedules [`explore`] is given, for a
//! deeper search when there is time (a release build runs ten times them
//! anyway: see [`scale`]).

#![allow(dead_code)]

use many_clients::sync::Shuttle;
use many_clients::sync::trace::{self, Labels};
use shuttle::scheduler::{PctScheduler, RandomScheduler, UncontrolledNondeterminismCheckScheduler};
use shuttle::{Config, Runner};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How many schedules a passing model gets from each scheduler.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Schedules checked for uncontrolled nondeterminism (each runs twice).
    pub nondeterminism: usize,
    /// PCT schedules.
    pub pct: usize,
    /// PCT's depth `d`: it inserts `d - 1` priority change points per run.
    pub depth: usize,
    /// Uniformly random schedules.
    pub random: usize,
}

/// The seeds [`measure`] runs: an odd number, so the median is one run.
pub const SEEDS: u64 = 21;

/// Each seed's search in [`measure`] stops here; a bug not found by then
/// fails the test. The medians are far below it (chapter 6.1's table).
pub const CAP: usize = 20_000;

/// PCT's depth in every measurement: two priority change points per run,
/// enough for each bug below (none needs more than two forced switches).
pub const MEASURE_DEPTH: usize = 3;

/// Shuttle's default configuration: failures print their schedule.
fn config() -> Config {
    Config::new()
}

/// How many times its budget a model runs: `SHUTTLE_SCALE` (default 1),
/// times 10 in a release build. A schedule of the whole server costs a few
/// milliseconds in debug and a few hundred microseconds in release, so the
/// literal debug `cargo test` stays at about a minute of Shuttle while
/// `cargo shuttle` searches ten times deeper in a few seconds.
fn scale() -> usize {
    let asked = std::env::var("SHUTTLE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    if cfg!(debug_assertions) {
        asked
    } else {
        asked * 10
    }
}

/// A seed for this run: `SHUTTLE_RANDOM_SEED` if set (Shuttle's schedulers
/// would use it anyway), else one made from the clock and the process id.
fn fresh_seed() -> u64 {
    if let Some(seed) = std::env::var("SHUTTLE_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

/// Runs `f` on a thread of its own and hands back its result or its panic.
///
/// Why: Shuttle prints a failing schedule only if it differs in length from
/// the last one it printed *on this OS thread* (a thread-local in
/// `shuttle-engine`'s `persist_failure`), so two failures of equal length in
/// one test thread would leave the second without its replay string. A
/// fresh thread starts with a clean slate, and inherits the test's output
/// capture, so the schedule lands in the test's output.
fn on_fresh_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match std::thread::spawn(f).join() {
        Ok(r) => r,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Runs `run` (a Shuttle runner, on this OS thread) and, if it panicked, hands
/// back the panic and the failing schedule's steps: the recorder keeps them
/// per OS thread, so they must be taken here.
type Failed = (Box<dyn std::any::Any + Send>, Option<Box<trace::Trace>>);

fn traced<R>(run: impl FnOnce() -> R) -> Result<R, Failed> {
    trace::install_panic_hook();
    let result = panic::catch_unwind(AssertUnwindSafe(run));
    let steps = trace::take().map(Box::new);
    result.map_err(|payload| (payload, steps))
}

/// Runs `model` under `scheduler`, counting the schedules it ran.
fn counted<S>(scheduler: S, model: &Arc<dyn Fn() + Send + Sync>) -> (usize, Duration)
where
    S: shuttle::scheduler::Scheduler + Send + 'static,
{
    let count = Arc::new(AtomicUsize::new(0));
    let (counter, model) = (count.clone(), model.clone());
    let start = Instant::now();
    on_fresh_thread(move || {
        traced(|| {
            Runner::new(scheduler, config()).run(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                // A new schedule: the last one's steps are dropped.
                trace::begin(Shuttle::thread_index);
                model();
            })
        })
        .map_err(|(payload, steps)| {
            if let Some(steps) = steps {
                eprintln!("The failing schedule:\n{}", steps.render(&Labels::Main));
            }
            payload
        })
        .unwrap_or_else(|payload| panic::resume_unwind(payload))
    });
    (count.load(Ordering::Relaxed), start.elapsed())
}

// ANCHOR: explore
/// Runs `model` under the nondeterminism check, PCT and random scheduling,
/// and panics with Shuttle's report (and its replayable schedule) if any
/// schedule fails.
pub fn explore(name: &str, budget: Budget, model: impl Fn() + Send + Sync + 'static) {
    let model: Arc<dyn Fn() + Send + Sync> = Arc::new(model);
    let k = scale();
    let seed = fresh_seed();
    eprintln!("shuttle model {name}: seed {seed} (SHUTTLE_RANDOM_SEED={seed} repeats this run)");

    let check = UncontrolledNondeterminismCheckScheduler::new(RandomScheduler::new_from_seed(
        seed,
        budget.nondeterminism * k,
    ));
    let (runs, took) = counted(check, &model);
    report(name, "nondeterminism check", runs / 2, took);

    let pct = PctScheduler::new_from_seed(seed, budget.depth, budget.pct * k);
    let (runs, took) = counted(pct, &model);
    report(name, &format!("PCT depth {}", budget.depth), runs, took);

    let random = RandomScheduler::new_from_seed(seed, budget.random * k);
    let (runs, took) = counted(random, &model);
    report(name, "random", runs, took);
}
// ANCHOR_END: explore

fn report(name: &str, scheduler: &str, schedules: usize, took: Duration) {
    eprintln!(
        "shuttle model {name}: {scheduler}: {schedules} schedules, {:.3} s",
        took.as_secs_f64()
    );
}

/// A scheduler for [`schedules_to_find`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// PCT at [`MEASURE_DEPTH`].
    Pct,
    /// Uniformly random.
    Random,
}

impl Scheduler {
    fn label(self) -> String {
        match self {
            Scheduler::Pct => format!("PCT depth {MEASURE_DEPTH}"),
            Scheduler::Random => "random".to_string(),
        }
    }
}

/// Runs the one schedule `recorded` (a string Shuttle printed as
/// `failing schedule`) with `shuttle::replay`; it must fail. Returns the
/// failure message.
pub fn replay_must_fail(
    model: impl Fn() + Send + Sync + 'static,
    recorded: &'static str,
) -> String {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        on_fresh_thread(move || shuttle::replay(model, recorded))
    }));
    match result {
        Ok(()) => panic!("the recorded schedule {recorded:?} ran to the end without failing"),
        Err(payload) => panic_message(payload.as_ref()),
    }
}

/// Runs `model` under Shuttle's uncontrolled-nondeterminism check with
/// seeds 1, 2, 3, … (`schedules` schedules each) until the check fails; it
/// must fail within `seeds` seeds. Returns the check's message.
pub fn nondeterminism_must_be_found(
    model: impl Fn() + Send + Sync + 'static,
    seeds: u64,
    schedules: usize,
) -> String {
    let model: Arc<dyn Fn() + Send + Sync> = Arc::new(model);
    for seed in 1..=seeds {
        let body = model.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            on_fresh_thread(move || {
                let check = UncontrolledNondeterminismCheckScheduler::new(
                    RandomScheduler::new_from_seed(seed, schedules),
                );
                Runner::new(check, config()).run(move || body())
            })
        }));
        if let Err(payload) = result {
            return panic_message(payload.as_ref());
        }
    }
    panic!("{seeds} seeds of {schedules} schedules each found the model deterministic")
}

/// A bug found: after how many schedules, Shuttle's panic message, and the
/// failing schedule as a table of steps (the same format as loom's).
#[derive(Debug, Clone)]
pub struct Found {
    pub schedules: usize,
    pub message: String,
    pub trace: String,
}

/// Runs `model` under `scheduler` seeded with `seed` for at most `cap`
/// schedules; `None` if no schedule failed.
pub fn schedules_to_find(
    scheduler: Scheduler,
    seed: u64,
    cap: usize,
    model: &Arc<dyn Fn() + Send + Sync>,
) -> Option<Found> {
    let count = Arc::new(AtomicUsize::new(0));
    let (counter, body) = (count.clone(), model.clone());
    let counted_model = move || {
        counter.fetch_add(1, Ordering::Relaxed);
        trace::begin(Shuttle::thread_index);
        body();
    };
    // Shuttle reports the failure by panicking (after printing the failing
    // schedule), so the panic output above this test's result is the bug
    // being found — expected.
    let result = on_fresh_thread(move || {
        traced(|| match scheduler {
            Scheduler::Pct => Runner::new(
                PctScheduler::new_from_seed(seed, MEASURE_DEPTH, cap),
                config(),
            )
            .run(counted_model),
            Scheduler::Random => {
                Runner::new(RandomScheduler::new_from_seed(seed, cap), config()).run(counted_model)
            }
        })
        // The panic payload crosses back to the test's thread as its message.
        .map_err(|(payload, steps)| {
            let trace = steps.map_or_else(String::new, |s| s.render(&Labels::Main));
            (panic_message(payload.as_ref()), trace)
        })
    });
    let schedules = count.load(Ordering::Relaxed);
    result.err().map(|(message, trace)| Found {
        schedules,
        message,
        trace,
    })
}

/// The text of a panic payload (a `String` or a `&str`), or "".
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// One search of a [`measure`]: a scheduler, seeds `1..=seeds`, at most
/// `cap` schedules per seed, and whether every seed must find the bug.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    pub scheduler: Scheduler,
    pub seeds: u64,
    pub cap: usize,
    pub required: bool,
}

/// The searches every small model gets: [`SEEDS`] seeds each of PCT and
/// random, both required to find the bug every time.
pub const BOTH: [Search; 2] = [
    Search {
        scheduler: Scheduler::Pct,
        seeds: SEEDS,
        cap: CAP,
        required: true,
    },
    Search {
        scheduler: Scheduler::Random,
        seeds: SEEDS,
        cap: CAP,
        required: true,
    },
];

/// Looks for the bug in `model` with each search, and prints per search the
/// median number of schedules to the failure (a seed that found nothing
/// counts as more than `cap`), in the form `book/tools/gen_tables.py shuttle`
/// reads. Panics if a required search missed with any seed; returns every
/// failure message for the caller to check that it is this bug that was
/// found.
pub fn measure(
    key: &str,
    name: &str,
    searches: &[Search],
    model: impl Fn() + Send + Sync + 'static,
) -> Vec<String> {
    let model: Arc<dyn Fn() + Send + Sync> = Arc::new(model);
    let mut messages = Vec::new();
    for search in searches {
        let start = Instant::now();
        // `None` (not found) sorts first; count it as past the cap instead.
        let mut counts: Vec<Option<usize>> = (1..=search.seeds)
            .map(|seed| {
                let found = schedules_to_find(search.scheduler, seed, search.cap, &model);
                found.map(|f| {
                    messages.push(f.message);
                    f.schedules
                })
            })
            .collect();
        counts.sort_unstable_by_key(|c| c.unwrap_or(usize::MAX));
        let show = |c: Option<usize>| c.map_or(format!(">{}", search.cap), |n| n.to_string());
        let found = counts.iter().flatten().count();
        eprintln!(
            "shuttle bug [{key}] {name}: {}: median {} schedules (min {}, max {}) over {} \
             seeds, found by {found} of {} within {} schedules each, {:.3} s",
            search.scheduler.label(),
            show(counts[counts.len() / 2]),
            show(counts[0]),
            show(counts[counts.len() - 1]),
            search.seeds,
            search.seeds,
            search.cap,
            start.elapsed().as_secs_f64()
        );
        assert!(
            !search.required || found as u64 == search.seeds,
            "{name}: {} missed the bug with {} of {} seeds ({} schedules each): the bug is no \
             longer caught",
            search.scheduler.label(),
            search.seeds - found as u64,
            search.seeds,
            search.cap
        );
    }
    messages
}
