//! Small concurrent programs for proptest to write: their sizes, how raw random ones are made
//! well-formed, and how to shrink them further than proptest does. Pure: no loom.
//!
//! # Which programs are generated (and why they always finish)
//!
//! Operations that return a guard (`connect`, `try_acquire`, `acquire`, `enter`) keep it in the
//! calling thread; the matching release (`disconnect`, `release`, `leave`) drops the oldest one
//! that thread holds. Raw random programs are [`normalize`]d into well-formed ones:
//!
//! * a release is kept only if the thread may hold a guard by then (counting every
//!   guard-taking call as successful; a refused `try_acquire`/`enter` makes a later release
//!   a no-op, logged as skipped);
//! * a blocking operation (`acquire`, `wait_drained`) is kept only where its thread holds no
//!   guard — waiting for a slot while holding one, or for the drain while being live
//!   yourself, can block forever in a correct implementation;
//! * if a blocking operation remains, every thread gets releases appended for whatever it
//!   still holds. Then every guard is eventually dropped by a thread that never blocks while
//!   holding one, so every `acquire` finds a slot and every `wait_drained` sees zero live —
//!   a correct implementation always finishes. (No `begin` is needed before `wait_drained`:
//!   entering again after a drain is allowed, and the last leave wakes the waiter.)
//!   Programs without blocking operations keep their guards to the end of the run, so the
//!   shrunk lost update reads `T1: connect→1 | T2: connect→1`, not four operations.
//!
//! Normalizing inside `prop_map` means shrinking works on the raw program and every shrunk
//! candidate is normalized again, so shrinking never produces an ill-formed program.

use std::fmt::{Debug, Display};

use proptest::collection::vec;
use proptest::prelude::*;

use crate::linearizable::Program;

/// Program sizes: 2..=`threads` threads, each with 1..=`ops` operations.
///
/// What an interleaving costs differs a lot between objects, so each test has its own
/// default (the `Budget`s in `loom_linearizable.rs`); `LIN_THREADS` (2–4) and `LIN_OPS`
/// (1–4) override them all.
/// Thread 1 runs on loom's main thread, so 4 program threads use 4 of loom's 5 slots.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub threads: usize,
    pub ops: usize,
}

impl Sizes {
    /// `default`, unless the environment says otherwise.
    pub fn from_env(default: Sizes) -> Self {
        let var = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Sizes {
            threads: var("LIN_THREADS", default.threads).clamp(2, 4),
            ops: var("LIN_OPS", default.ops).clamp(1, 4),
        }
    }
}

/// Candidates for shrinking further than proptest's single greedy pass: the program without
/// one thread, without one operation, or with one operation replaced by the simplest one —
/// each normalized again.
pub fn smaller<P: Clone + PartialEq, O: Alphabet + PartialEq>(
    p: &Program<P, O>,
) -> Vec<Program<P, O>> {
    let mut raw: Vec<Vec<Vec<O>>> = Vec::new();
    for t in 0..p.threads.len() {
        let mut threads = p.threads.clone();
        threads.remove(t);
        raw.push(threads);
    }
    for (t, ops) in p.threads.iter().enumerate() {
        for k in 0..ops.len() {
            let mut threads = p.threads.clone();
            threads[t].remove(k);
            raw.push(threads);
        }
    }
    for (t, ops) in p.threads.iter().enumerate() {
        for (k, op) in ops.iter().enumerate() {
            if *op != O::simplest() {
                let mut threads = p.threads.clone();
                threads[t][k] = O::simplest();
                raw.push(threads);
            }
        }
    }
    // Normalizing can add releases back, so keep only candidates that are really smaller:
    // fewer operations, or as many but more of them the simplest. That also makes repeated
    // shrinking terminate.
    let measure = |p: &Program<P, O>| {
        let ops = p.threads.iter().flatten();
        (
            ops.clone().count(),
            ops.filter(|op| **op != O::simplest()).count(),
        )
    };
    let candidates = raw.into_iter().map(|threads| Program {
        params: p.params.clone(),
        threads: normalize(threads),
    });
    candidates.filter(|c| measure(c) < measure(p)).collect()
}

/// What an operation does to the guards its thread holds; drives [`normalize`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// May hand the thread a guard.
    Takes,
    /// Drops the thread's oldest guard.
    Gives,
    /// Neither.
    Other,
}

/// An operation alphabet that [`normalize`] understands.
pub trait Alphabet: Clone {
    fn shape(&self) -> Shape;
    /// Waits for other threads (`acquire`, `wait_drained`).
    fn blocks(&self) -> bool;
    /// The release operation, appended where a blocking program needs it.
    fn release() -> Self;
    /// The simplest operation: first in the strategy, so proptest shrinks towards it too.
    fn simplest() -> Self;
}

/// Makes a raw program well-formed; see the module docs.
pub fn normalize<O: Alphabet>(raw: Vec<Vec<O>>) -> Vec<Vec<O>> {
    let mut threads = Vec::new();
    let mut holding = Vec::new();
    for ops in raw {
        let (mut kept, mut held) = (Vec::new(), 0usize);
        for op in ops {
            let keep = match op.shape() {
                Shape::Gives => held > 0,
                _ => !(op.blocks() && held > 0),
            };
            if keep {
                match op.shape() {
                    Shape::Takes => held += 1,
                    Shape::Gives => held -= 1,
                    Shape::Other => {}
                }
                kept.push(op);
            }
        }
        if !kept.is_empty() {
            threads.push(kept);
            holding.push(held);
        }
    }
    if threads.iter().flatten().any(O::blocks) {
        for (ops, held) in threads.iter_mut().zip(holding) {
            ops.extend(std::iter::repeat_with(O::release).take(held));
        }
    }
    threads
}

/// Random programs: `params`, then 2..=threads threads of 1..=ops operations, normalized
/// (appended releases can make a thread longer than `ops`; dropped operations, shorter).
/// `prop_oneof!` shrinks towards its first arm, so list the simplest operation first.
pub fn programs<P: Display + Debug + Clone + 'static, O: Alphabet + Display + Debug + 'static>(
    params: impl Strategy<Value = P>,
    op: impl Strategy<Value = O>,
    sizes: Sizes,
) -> impl Strategy<Value = Program<P, O>> {
    let threads = vec(vec(op, 1..=sizes.ops), 2..=sizes.threads);
    (params, threads).prop_map(|(params, raw)| Program {
        params,
        threads: normalize(raw),
    })
}
