//! Runs loom models and reports what they cost; shared by the `loom_*` tests
//! through `#[path]`, so each test file stays a single small binary.
//!
//! * [`explore`] runs a model that must pass and prints how many
//!   interleavings loom tried and how long it took (`--nocapture` shows it).
//! * [`expect_bug`] runs a model that must FAIL and returns loom's panic
//!   message; the calling test asserts on it, so it fails if loom ever stops
//!   finding the bug.
//!
//! Both honour `LOOM_LOG` (e.g. `LOOM_LOG=trace` prints the failing
//! interleaving step by step) and `LOOM_MAX_PREEMPTIONS`, which overrides the
//! bound a model sets in code.

#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    let start = Instant::now();
    tracing::subscriber::with_default(subscriber, || {
        builder.check(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            model();
        })
    });
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
/// any) and panics with loom's report if one of them fails.
pub fn explore(name: &str, bound: Option<usize>, model: impl Fn() + Sync + Send + 'static) -> Cost {
    run(name, bound, &Arc::new(AtomicUsize::new(0)), model)
}

/// Explores `model`, which must fail in some interleaving, and returns the
/// failure message. Panics if loom finds no failure.
pub fn expect_bug(
    name: &str,
    bound: Option<usize>,
    model: impl Fn() + Sync + Send + 'static,
) -> String {
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
            eprintln!("loom model {name}: bug found as expected: {message}");
            // How far the search got: chapter 6.1 sets it beside Shuttle's
            // schedules to the same bug (book/tools/gen_tables.py shuttle).
            eprintln!(
                "loom model {name}: failed in interleaving {}",
                count.load(Ordering::Relaxed)
            );
            message
        }
    }
}
