//! Running one program under loom: every interleaving, each run's history recorded and
//! checked. Used by `loom_linearizable.rs`.
//!
//! # Recording "real time" inside loom
//!
//! The log is a `std::sync::Mutex`, invisible to loom. That is fine: loom runs its threads one
//! at a time on one OS thread, so the order of appends *is* loom's execution order, and an
//! invisible log adds no scheduling points, so no interleavings.
//!
//! Three details make the log tell the truth:
//!
//! * **When a call happens.** Between one operation's return and the next one's call a
//!   thread runs no loom operation, so loom never switches threads there; a call logged
//!   there would always follow the thread's previous return at once. So the call is logged at
//!   the operation's *first touch* of shared state instead, which the [`Traced`] backend
//!   reports (see `lin_traced.rs`).
//! * **What "before" means to loom.** loom models weak memory: a load may return an older
//!   value unless something orders it after the store. If T1's `try_acquire` returned before
//!   T2's was called, the log says "T1 first", yet nothing in the program orders the threads,
//!   so loom would let T2 read the count from before T1's increment — a violation that exists
//!   only because the observer (the log) is invisible. So every operation is followed by a
//!   `fence(SeqCst)`, and preceded by one and by another right after its first touch. loom
//!   orders SeqCst fences by execution order, so an operation that returned before another
//!   was called happens-before it, while overlapping operations keep all of loom's
//!   weak-memory freedom. Fences are not scheduling points: they cost no interleavings.
//! * **Guards left at the end** are dropped after the check, so their drops are not in the
//!   history.
//!
//! # The report
//!
//! A failing run says why in four parts: the verdict and the history per thread (one line),
//! the real-time order as a table, every order real time allows and where the sequential model
//! rejects it (`lin_explain.rs`), and the interleaving of steps on shared state that produced
//! it — the trace the `Traced` backend's loom primitives record (`many_clients::sync::trace`).
//!
//! [`Traced`]: crate::lin_traced::Traced

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt::Display;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use loom::sync::atomic::fence;
use many_clients::sync::trace::{self, Labels};
use many_clients::sync::{Backend, JoinHandle as _, Loom};

use crate::lin_explain::{real_time, why_not};
use crate::lin_objects::{Object, OpOf, ProgramOf};
use crate::lin_traced::{expect_call, touched};
use crate::linearizable::{Event, Events, History, Outcome, Ret, linearize, show_history};

type Log<O> = Mutex<Events<OpOf<O>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One program thread: each operation between its call and return events.
fn run_thread<O: Object>(
    t: usize,
    ops: &[OpOf<O>],
    object: &O,
    log: &Arc<Log<O>>,
) -> VecDeque<O::Held> {
    let mut held = VecDeque::new();
    for op in ops {
        // Returns logged so far happen-before this operation (see "Recording real time").
        fence(Ordering::SeqCst);
        // The call is logged at the operation's first touch of shared state (lin_traced.rs):
        // there if that touch cannot have read a stale value, else here, at `before`.
        let before = lock(log).mark();
        let call = Event::Call {
            thread: t,
            op: op.clone(),
        };
        let call_log = log.clone();
        expect_call(move |fresh| match fresh {
            true => lock(&call_log).push(call),
            false => lock(&call_log).push_at(before, call),
        });
        // The operation is also a heading in the trace of steps.
        let show = |outcome: &Outcome| match outcome {
            Outcome::Returned(Ret::Done) => None,
            Outcome::Returned(r) => Some(r.to_string()),
            Outcome::Skipped => Some("skipped".to_string()),
            Outcome::Pending => None,
        };
        let outcome = trace::op_shown(&op.to_string(), || object.call(op, &mut held), show);
        touched(true); // an operation that touched nothing (a skipped release) is logged now
        fence(Ordering::SeqCst); // this operation happens-before every later call
        lock(log).push(Event::Return { thread: t, outcome });
    }
    held
}

const NOT_LINEARIZABLE: &str = "not linearizable: no order that respects real time gives these results in the sequential model";

// ANCHOR: run_once
/// One loom execution of `program`; panics (which stops loom) if its history fails.
fn run_once<O: Object>(
    spec: &O::Spec,
    program: &ProgramOf<O>,
    log: &Arc<Log<O>>,
    runs: &AtomicUsize,
) {
    runs.fetch_add(1, Ordering::Relaxed);
    *lock(log) = Events::default();
    trace::begin(Loom::thread_index); // a new execution: the last one's steps go
    let object = O::new(&program.params);
    // Thread 1 runs on loom's main thread: one loom thread fewer to explore.
    let spawned: Vec<_> = (program.threads.iter().enumerate().skip(1))
        .map(|(t, ops)| {
            let (ops, object, log) = (ops.clone(), object.clone(), log.clone());
            // Through the backend, so the trace shows the spawn, the join and the thread's end.
            let run = move || run_thread(t, &ops, &object, &log);
            Loom::spawn(String::new(), None, run).expect("loom spawns")
        })
        .collect();
    let first = program.threads.first().map_or(&[][..], Vec::as_slice);
    let mut held = vec![run_thread(0, first, &object, log)];
    held.extend(spawned.into_iter().map(|t| t.join().unwrap()));
    // Quiescent: every thread joined, every guard still held.
    let history = lock(log).history();
    let verdict = match linearize(spec, &program.params, &history) {
        None => Err(format!(
            "{NOT_LINEARIZABLE}\n{}\n{}",
            describe(&program.params, &history),
            why_not(spec, &program.params, &history)
        )),
        Some(_) => object
            .at_rest(&history)
            .map_err(|why| format!("{why}\n{}", describe(&program.params, &history))),
    };
    if let Err(why) = verdict {
        let steps = trace::take().map(|t| t.interleaving(&Labels::FromOne));
        panic!("{why}\n{}", steps.unwrap_or_default());
    }
    // The leftover guards go only now, after the check: their drops are not in the history.
    drop(held);
}
// ANCHOR_END: run_once

/// The history two ways: per thread with results, and in the order loom ran it.
fn describe<P: Display, O: Display + Clone>(params: &P, h: &History<O>) -> String {
    format!(
        "  history:  {}\n\nReal time (calls and returns in the order loom ran them):\n{}",
        show_history(params, h),
        real_time(h)
    )
}

/// Every interleaving of `program` — within `bound` preemptions if it has 3 or more threads
/// (`LOOM_MAX_PREEMPTIONS` overrides). Returns how many interleavings ran, and the first
/// failure's report.
pub fn explore<O: Object>(
    spec: &O::Spec,
    program: &ProgramOf<O>,
    bound: Option<usize>,
) -> (usize, Result<(), String>) {
    // Outside the model, so that after a deadlock the last run's history is still here.
    let log: Arc<Log<O>> = Arc::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut builder = loom::model::Builder::new();
    if program.threads.len() > 2 && builder.preemption_bound.is_none() {
        builder.preemption_bound = bound;
    }
    let (spec2, program2, log2, runs2) = (spec.clone(), program.clone(), log.clone(), runs.clone());
    let outcome =
        quietly(|| builder.check(move || run_once::<O>(&spec2, &program2, &log2, &runs2)));
    let outcome = outcome.map_err(|message| {
        if message.contains("\n  history:") {
            message // our own check's report
        } else {
            // loom's (a deadlock: some operation never returns) or another panic: add the
            // history as far as it got
            let history = lock(&log).history();
            let steps = trace::take().map(|t| t.interleaving(&Labels::FromOne));
            let history = describe(&program.params, &history);
            format!("{message}\n{history}\n{}", steps.unwrap_or_default())
        }
    });
    trace::take(); // stop recording (the failure's steps were taken above)
    (runs.load(Ordering::Relaxed), outcome)
}

thread_local! {
    /// Set while this OS thread runs models whose panics are expected.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` and returns its panic message, if any, without printing the panic. loom reports a
/// failure by panicking, and shrinking provokes dozens of them; the report travels in the
/// message instead. Only this OS thread is silenced — loom runs its threads as coroutines on
/// it — so panics in tests running in parallel still print.
fn quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
    // Outermost, so that it records the failure even while this hook keeps it quiet.
    trace::install_panic_hook();
    QUIET.with(|q| q.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|payload| {
        let text = payload.downcast_ref::<&str>().map(|s| s.to_string());
        payload
            .downcast_ref::<String>()
            .cloned()
            .or(text)
            .unwrap_or_default()
    })
}
