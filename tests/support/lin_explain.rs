//! A failing history, explained: the real-time order of its operations as a table, and why no
//! sequential order explains the results. Pure: no loom. Used by `lin_run.rs`'s report.
//!
//! "Not linearizable" alone asks the reader to redo the search in their head. Lincheck shows
//! the results and the interleaving; for a linearizability failure the missing piece is the
//! *why*: every order of the operations that real time allows, and the first operation in it
//! where the sequential model disagrees with what the thread saw. The histories that fail are
//! tiny once shrunk (two to five operations), so listing those orders is short; a cap keeps a
//! large one readable.

use std::fmt::Display;

use many_clients::sync::trace::draw_table;

use crate::linearizable::{Event, History, Outcome, Ret, Spec};

/// At most this many orders are listed.
const MAX_ORDERS: usize = 8;

/// The log as a table, one column per thread, one row per call or return, in the order loom
/// ran them: an operation spans the rows from its call to its return, so which operations
/// overlap can be read off.
pub fn real_time<O: Display>(history: &History<O>) -> String {
    let threads = history.ops.iter().map(|o| o.thread + 1).max().unwrap_or(0);
    let mut table = vec![(1..=threads).map(|t| format!("T{t}")).collect::<Vec<_>>()];
    // The op a return belongs to: the thread's latest call before it.
    let mut open: Vec<String> = vec![String::new(); threads];
    for event in &history.events {
        let (thread, text) = match event {
            Event::Call { thread, op } => {
                open[*thread] = op.to_string();
                (*thread, format!("{op} called"))
            }
            Event::Return { thread, outcome } => {
                let op = &open[*thread];
                let text = match outcome {
                    Outcome::Returned(Ret::Done) => format!("{op} returns"),
                    Outcome::Returned(r) => format!("{op} returns {r}"),
                    Outcome::Skipped => format!("{op}: nothing held"),
                    Outcome::Pending => unreachable!("never logged"),
                };
                (*thread, text)
            }
        };
        let mut row = vec![String::new(); threads];
        row[thread] = text;
        table.push(row);
    }
    draw_table(&table)
}

/// Every order that real time allows, each up to where the sequential model rejects it: what
/// the model returns instead, or that the operation could not complete there (it would block).
pub fn why_not<S: Spec>(spec: &S, params: &S::Params, history: &History<S::Op>) -> String {
    let todo: Vec<usize> = (0..history.ops.len())
        .filter(|&i| history.ops[i].outcome != Outcome::Skipped)
        .collect();
    let mut search = Orders {
        spec,
        history,
        todo,
        lines: Vec::new(),
        cut: false,
    };
    search.walk(&mut Vec::new(), spec.init(params), &mut Vec::new());
    let mut out =
        String::from("Every order that respects real time fails in the sequential model:\n");
    for line in &search.lines {
        out += &format!("  {line}\n");
    }
    if search.cut {
        out += "  … and more orders, all failing\n";
    }
    out
}

struct Orders<'a, S: Spec> {
    spec: &'a S,
    history: &'a History<S::Op>,
    /// The operations to place, as indices into `history.ops`.
    todo: Vec<usize>,
    lines: Vec<String>,
    cut: bool,
}

impl<S: Spec> Orders<'_, S> {
    /// Extends `path` (placed ops, as text) by every candidate; a dead end becomes a line.
    fn walk(&mut self, placed: &mut Vec<usize>, state: S::State, path: &mut Vec<String>) {
        let ops = &self.history.ops;
        let left: Vec<usize> = self
            .todo
            .iter()
            .copied()
            .filter(|i| !placed.contains(i))
            .collect();
        // Real time: next may only be an op called before every unplaced op returned.
        let deadline = left
            .iter()
            .map(|&i| ops[i].returned)
            .min()
            .unwrap_or(usize::MAX);
        for i in left.into_iter().filter(|&i| ops[i].called < deadline) {
            if self.lines.len() >= MAX_ORDERS {
                self.cut = true;
                return;
            }
            let op = &ops[i];
            let Outcome::Returned(observed) = op.outcome else {
                continue; // pending: not checked
            };
            let seen = match observed {
                Ret::Done => format!("T{} {}", op.thread + 1, op.op),
                r => format!("T{} {} → {r}", op.thread + 1, op.op),
            };
            let verdict = match self.spec.step(&state, &op.op) {
                None => Err(format!("{seen}: cannot return here, the model would block")),
                Some((_, expected)) if !self.spec.accepts(&op.op, &expected, &observed) => {
                    Err(format!("{seen}: the model returns {}", show(&expected)))
                }
                Some((next, _)) => Ok(next),
            };
            match verdict {
                Err(why) => {
                    let mut line = path.clone();
                    line.push(why);
                    self.lines.push(fit(&line));
                }
                Ok(next) => {
                    placed.push(i);
                    path.push(seen);
                    self.walk(placed, next, path);
                    path.pop();
                    placed.pop();
                }
            }
        }
    }
}

/// One order and where it fails, as one line if it fits a book's column
/// (98 characters), else one step per line (`then …`, indented under the
/// order's first line, which the caller indents by two), with a model's long
/// answer on a line of its own.
fn fit(steps: &[String]) -> String {
    const WIDTH: usize = 98;
    let one = steps.join(", then ");
    if one.chars().count() <= WIDTH {
        return one;
    }
    let mut lines = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let step = if i == 0 {
            step.clone()
        } else {
            format!("    then {step}")
        };
        match step.split_once(": the model returns ") {
            Some((what, answer)) if step.chars().count() > WIDTH => {
                lines.push(format!("{what}: the model returns"));
                lines.push(format!("      {answer}"));
            }
            _ => lines.push(step),
        }
    }
    lines.join("\n")
}

fn show(ret: &Ret) -> String {
    match ret {
        Ret::Done => "nothing".to_string(),
        r => r.to_string(),
    }
}
