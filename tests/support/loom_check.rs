//! Runs loom models and reports what they cost; shared by the `loom_*` tests
//! through `#[path]`, so each test file stays a single small binary.
//!
//! * [`explore`] runs a model that must pass and prints how many
//!   interleavings loom tried and how long it took (`--nocapture` shows it).
//! * [`expect_bug`] runs a model that must FAIL and returns loom's panic
//!   message and the failing execution's trace; the calling test asserts on
//!   them, so it fails if loom ever stops finding the bug.
//!
//! Both record every execution's steps on shared state (`trace::begin` at
//! the start of each, so only the last — the failing one — is kept) and
//! print the failing one as a table: what each thread's operations returned,
//! the interleaving with values and source lines, the broken assertion. That
//! is what to read first. `LOOM_LOG=trace` still narrates loom's internals,
//! and `LOOM_MAX_PREEMPTIONS` overrides the bound a model sets in code.
//!
//! [`thread`] is `loom::thread` through the backend, so that the models'
//! spawns and joins are in the trace too.

#![allow(dead_code)]

#[path = "bless.rs"]
mod bless;

use many_clients::sync::Loom;
use many_clients::sync::trace::{self, Labels};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `loom::thread::spawn` and `join`, through [`Model`]'s backend, which
/// reports them to the trace.
pub mod thread {
    use many_clients::sync::{Backend, JoinHandle as _, Model};

    /// A spawned model thread.
    pub struct JoinHandle<T: Send + 'static>(<Model as Backend>::JoinHandle<T>);

    /// Spawns a model thread (numbered 1, 2, … in spawn order, as loom does).
    #[track_caller]
    pub fn spawn<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        JoinHandle(Model::spawn(String::new(), None, f).expect("loom spawns"))
    }

    impl<T: Send + 'static> JoinHandle<T> {
        /// Waits for the thread; `Err` carries its panic.
        #[track_caller]
        pub fn join(self) -> std::thread::Result<T> {
            self.0.join()
        }
    }
}

/// What one exploration cost.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub interleavings: usize,
    pub elapsed: Duration,
}

/// Explores `model`, counting every interleaving started in `count` (which
/// the caller still has if loom panics).
fn run(
    name: &str,
    bound: Option<usize>,
    count: &Arc<AtomicUsize>,
    model: impl Fn() + Sync + Send + 'static,
) -> Cost {
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = bound;
    }
    let counted = count.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("LOOM_LOG"))
        .with_test_writer()
        .without_time()
        .finish();
    trace::install_panic_hook();
    let start = Instant::now();
    tracing::subscriber::with_default(subscriber, || {
        builder.check(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            // A new execution: the last one's steps are dropped.
            trace::begin(Loom::thread_index);
            model();
        })
    });
    trace::take(); // every execution passed: nothing to show
    let cost = Cost {
        interleavings: count.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    };
    let bound = match builder.preemption_bound {
        Some(b) => format!("preemption bound {b}"),
        None => "exhaustive".to_string(),
    };
    eprintln!(
        "loom model {name}: {} interleavings, {:.3} s, {bound}",
        cost.interleavings,
        cost.elapsed.as_secs_f64()
    );
    cost
}

/// Explores every interleaving of `model` (within `bound` preemptions, if
/// any) and panics with loom's report if one of them fails, after printing
/// the failing execution.
pub fn explore(name: &str, bound: Option<usize>, model: impl Fn() + Sync + Send + 'static) -> Cost {
    let count = Arc::new(AtomicUsize::new(0));
    match panic::catch_unwind(AssertUnwindSafe(|| run(name, bound, &count, model))) {
        Ok(cost) => cost,
        Err(payload) => {
            if let Some(trace) = trace::take() {
                eprintln!("loom model {name} failed:\n{}", show(&trace));
            }
            panic::resume_unwind(payload)
        }
    }
}

/// What a model that must fail did: loom's panic message and the failing
/// execution, rendered.
#[derive(Debug)]
pub struct Caught {
    pub message: String,
    /// The failing execution as printed.
    pub trace: String,
    /// …and as data (for the book's picture).
    pub steps: trace::Trace,
}

/// The failing execution as text, or a note that it recorded nothing (a
/// model on loom's own types, which do not report to the trace).
fn show(trace: &trace::Trace) -> String {
    if trace.steps.is_empty() {
        return "(no steps recorded: the model uses no backend primitives)\n".to_string();
    }
    trace.render(&Labels::Main)
}

/// Explores `model`, which must fail in some interleaving, and returns the
/// failure message and the failing execution. Panics if loom finds no
/// failure.
pub fn expect_bug(
    name: &str,
    bound: Option<usize>,
    model: impl Fn() + Sync + Send + 'static,
) -> Caught {
    // Loom reports the failure by panicking, so the panic message printed
    // above this test's result is the bug being found — expected. (Swapping
    // the panic hook to hide it would also remove the one loom's coroutine
    // library installs, and flood the output with its internal panics.)
    let count = Arc::new(AtomicUsize::new(0));
    let result = panic::catch_unwind(AssertUnwindSafe(|| run(name, bound, &count, model)));
    match result {
        Ok(cost) => panic!(
            "loom explored {} interleavings of {name} and found no failure: the bug is no longer caught",
            cost.interleavings
        ),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let steps = trace::take().expect("the failing execution was recorded");
            let trace = show(&steps);
            // The first line: the whole message ends the trace below.
            let first = message.lines().next().unwrap_or_default();
            eprintln!("loom model {name}: bug found as expected: {first}");
            // How far the search got: chapter 6.1 sets it beside Shuttle's
            // schedules to the same bug (book/tools/gen_tables.py shuttle).
            eprintln!(
                "loom model {name}: failed in interleaving {}",
                count.load(Ordering::Relaxed)
            );
            eprintln!("The failing execution (LOOM_LOG=trace narrates loom's internals):\n{trace}");
            Caught {
                message,
                trace,
                steps,
            }
        }
    }
}

/// Compares `text` with the committed `book/src/generated/{file}` that the
/// book includes, so a chapter cannot drift from what the tool prints; with
/// `MANY_CLIENTS_BLESS=1`, writes it instead (then commit the file). Under a
/// `LOOM_MAX_PREEMPTIONS` other than the model's own bound loom may stop on
/// another failing execution, so then there is nothing to compare.
pub fn check_against_book(file: &str, text: &str) {
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_some() {
        eprintln!("LOOM_MAX_PREEMPTIONS is set: not comparing with {file}");
        return;
    }
    bless::check_against_book(
        file,
        text,
        "RUSTFLAGS=\"--cfg loom\" cargo test --release --test 'loom_*'",
    );
}
