//! A [`Trace`] as text, in the shape of Lincheck's report:
//!
//! 1. what each thread's model-level operations returned, one column per
//!    thread;
//! 2. the interleaving: one column per thread, one row per step on shared
//!    state in the order the checker ran them, each with the line of code
//!    that did it, a `switch` row where the running thread changes (and
//!    why: the thread had to wait, was done, or was preempted);
//! 3. the failure: the broken assertion, or the checker's deadlock report
//!    with what each stuck thread waits for.
//!
//! Operations on nothing shared (arithmetic, a local `Vec`) never reach the
//! recorder, so they are left out by construction.

use super::{Event, Failure, ObjId, Op, Site, Trace, Value, names::names};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How thread columns are titled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// loom's numbering: `main`, `T1`, `T2` (as in its deadlock reports).
    Main,
    /// From one: `T1` is the checker's thread 0 (the linearizability
    /// programs, whose first thread runs on loom's main thread).
    FromOne,
}

impl Labels {
    /// The title of thread `t`.
    pub fn of(self, t: usize) -> String {
        match (self, t) {
            (Labels::Main, 0) => "main".to_string(),
            (Labels::Main, t) => format!("T{t}"),
            (Labels::FromOne, t) => format!("T{}", t + 1),
        }
    }
}

/// One row of the interleaving table.
pub(super) struct Row {
    pub thread: usize,
    pub text: String,
    pub at: String,
    /// A `switch` row (drawn differently in the SVG).
    pub switch: bool,
    /// The heading of a model-level operation.
    pub heading: bool,
    /// How many model-level operations it is nested in.
    pub depth: usize,
}

/// What the interleaving and results tables are built from.
pub(super) struct Layout {
    pub threads: Vec<usize>,
    pub rows: Vec<Row>,
    /// Per thread: its operations with their results.
    pub results: BTreeMap<usize, Vec<String>>,
    /// Per thread still waiting at the end: what for, and where.
    pub stuck: BTreeMap<usize, (String, String)>,
}

pub(super) fn render(trace: &Trace, labels: &Labels) -> String {
    let layout = layout(trace, *labels);
    let mut out = String::new();
    if !layout.results.is_empty() {
        out += "What each thread's operations returned:\n";
        let columns: Vec<usize> = layout.results.keys().copied().collect();
        let depth = layout.results.values().map(Vec::len).max().unwrap_or(0);
        let mut table = vec![columns.iter().map(|&t| labels.of(t)).collect::<Vec<_>>()];
        for i in 0..depth {
            table.push(
                columns
                    .iter()
                    .map(|t| layout.results[t].get(i).cloned().unwrap_or_default())
                    .collect(),
            );
        }
        out += &draw(&table);
        out += "\n";
    }
    out += &interleaving_of(&layout, *labels);
    if let Some(failure) = &trace.failure {
        out += &describe_failure(failure, &layout, *labels);
    }
    out
}

/// The interleaving table alone, with its heading.
pub(super) fn interleaving(trace: &Trace, labels: &Labels) -> String {
    interleaving_of(&layout(trace, *labels), *labels)
}

fn interleaving_of(layout: &Layout, labels: Labels) -> String {
    let mut out = "The interleaving (steps on shared state, in the order they ran):\n".to_string();
    let mut table = vec![
        layout
            .threads
            .iter()
            .map(|&t| labels.of(t))
            .chain(["at".to_string()])
            .collect::<Vec<_>>(),
    ];
    let files = ShortNames::of(layout.rows.iter().map(|r| r.at.as_str()));
    for row in &layout.rows {
        let mut cells = vec![String::new(); layout.threads.len() + 1];
        let column = layout.threads.iter().position(|&t| t == row.thread);
        cells[column.unwrap_or(0)] = compact(&row.text);
        cells[layout.threads.len()] = files.shorten(&row.at);
        table.push(cells);
    }
    out += &draw(&table);
    out += &files.legend();
    out
}

/// A load that returned an older value than the last store is marked
/// `(stale)` in the table (the picture says which value was newer): the
/// store is a few rows up, and a book's column has no room for both.
fn compact(text: &str) -> String {
    match text.find(" (last store wrote ") {
        Some(i) if text.ends_with(')') => format!("{} (stale)", &text[..i]),
        _ => text.to_string(),
    }
}

/// The `at` column names a file by its last component (`racy.rs:35`), so the
/// table fits a book's column; a legend under it gives the whole paths. Two
/// files with the same last component keep their paths.
struct ShortNames {
    /// (whole path, short name), in the order first seen.
    files: Vec<(String, String)>,
}

impl ShortNames {
    fn of<'a>(sites: impl Iterator<Item = &'a str>) -> Self {
        let mut paths: Vec<String> = Vec::new();
        for site in sites {
            if let Some((file, _)) = site.rsplit_once(':')
                && !paths.iter().any(|p| p == file)
            {
                paths.push(file.to_string());
            }
        }
        let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
        let files = paths
            .iter()
            .map(|p| {
                let clash = paths.iter().filter(|q| base(q) == base(p)).count() > 1;
                let short = if clash { p.clone() } else { base(p) };
                (p.clone(), short)
            })
            .collect();
        ShortNames { files }
    }

    fn shorten(&self, site: &str) -> String {
        let Some((file, line)) = site.rsplit_once(':') else {
            return site.to_string();
        };
        match self.files.iter().find(|(path, _)| path == file) {
            Some((_, short)) => format!("{short}:{line}"),
            None => site.to_string(),
        }
    }

    /// `Files: racy.rs is src/counter/racy.rs, …`, wrapped to 100 columns.
    fn legend(&self) -> String {
        let named: Vec<String> = self
            .files
            .iter()
            .filter(|(path, short)| path != short)
            .map(|(path, short)| format!("{short} is {path}"))
            .collect();
        if named.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        let mut line = "Files:".to_string();
        for (i, item) in named.iter().enumerate() {
            let item = if i + 1 < named.len() {
                format!("{item},")
            } else {
                format!("{item}.")
            };
            if line.chars().count() + 1 + item.chars().count() > 100 {
                out += &line;
                out += "\n";
                line = format!("      {item}");
            } else {
                line += " ";
                line += &item;
            }
        }
        out += &line;
        out += "\n";
        out
    }
}

/// The failure, last: where a thread panicked and why, or the checker's
/// report and what each stuck thread waits for.
fn describe_failure(failure: &Failure, layout: &Layout, labels: Labels) -> String {
    let mut out = String::new();
    let mut message = failure.message.lines();
    match &failure.at {
        Some((file, line)) => {
            let who = labels.of(failure.thread);
            let _ = writeln!(out, "✗ {who} panicked at {file}:{line}:");
        }
        None => out += "✗ the model checker stopped:\n",
    }
    for line in message.by_ref() {
        for part in wrap(line, 98) {
            let _ = writeln!(out, "  {part}");
        }
    }
    // After a panic the others were only cut short; after a deadlock
    // nothing can ever wake them.
    let stuck = failure
        .at
        .is_none()
        .then_some(&layout.stuck)
        .into_iter()
        .flatten();
    for (t, (what, at)) in stuck {
        let at = if at.is_empty() {
            String::new()
        } else {
            format!(" ({at})")
        };
        let _ = writeln!(out, "  {} waits forever: {what}{at}", labels.of(*t));
    }
    out
}

/// Splits a long line (loom's deadlock report is one) at spaces, so no part
/// is wider than `width`; the parts after the first are indented.
pub(super) fn wrap(line: &str, width: usize) -> Vec<String> {
    if line.chars().count() <= width {
        return vec![line.to_string()];
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let extra = usize::from(!current.is_empty());
        if !current.is_empty() && current.chars().count() + extra + word.chars().count() > width {
            parts.push(std::mem::take(&mut current));
            current.push_str("  ");
        } else if extra == 1 && !current.trim().is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    parts.push(current);
    parts
}

/// Draws a table with a header row, columns padded to their widest cell
/// (counted in characters: `→` is one).
pub fn draw(table: &[Vec<String>]) -> String {
    let width = |c: usize| {
        table
            .iter()
            .map(|r| r[c].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..table[0].len()).map(width).collect();
    let line = |row: &[String]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(&table[0]);
    let rules: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out += &format!("|-{}-|\n", rules.join("-|-"));
    for row in &table[1..] {
        out += &line(row);
    }
    out
}

/// Where a step ran, shortened to the crate's own files.
fn site(at: Option<Site>) -> String {
    match at {
        Some(s) if !s.file.starts_with('/') => format!("{}:{}", s.file, s.line),
        _ => String::new(),
    }
}

/// Replays the trace: the rows, the results, who is stuck.
pub(super) fn layout(trace: &Trace, labels: Labels) -> Layout {
    let used: Vec<ObjId> = trace
        .steps
        .iter()
        .flat_map(|s| objects_of(&s.event))
        .collect();
    let names = names(&trace.objects, &used);
    let name = |o: ObjId| names.get(o.0).cloned().unwrap_or_else(|| "?".to_string());
    let mut latest: Vec<Option<Value>> = trace.objects.iter().map(|o| o.init).collect();
    let mut waiting: BTreeMap<usize, Vec<usize>> = BTreeMap::new(); // condvar → threads
    let mut pending: BTreeMap<usize, (String, String)> = BTreeMap::new(); // thread → waits for
    let mut in_op: BTreeMap<usize, usize> = BTreeMap::new(); // thread → depth of `op`s
    let mut last: BTreeMap<usize, &Event> = BTreeMap::new();
    let mut results: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut threads: Vec<usize> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut running: Option<usize> = None;
    let stuck = stuck_threads(trace);
    for (i, step) in trace.steps.iter().enumerate() {
        let t = step.thread;
        // A spawned thread gets its column even if it never ran: that it
        // did not is part of the story.
        let spawned = match step.event {
            Event::Did(Op::Spawn { thread }) => Some(thread),
            _ => None,
        };
        for thread in [Some(t), spawned].into_iter().flatten() {
            if !threads.contains(&thread) {
                threads.push(thread);
            }
        }
        let text = match &step.event {
            Event::Begin(op) => {
                let result = op_result(trace, i, &stuck);
                results.entry(t).or_default().push(format!("{op}{result}"));
                Some(format!("{op}{result}"))
            }
            Event::End(_) => None,
            Event::Waits(op) => {
                let text = format!("{} — waits", describe(op, &name, labels));
                pending.insert(t, (describe(op, &name, labels), site(step.at)));
                Some(text)
            }
            Event::Did(op) => {
                let waited =
                    pending.remove(&t).is_some() && matches!(op, Op::Lock { .. } | Op::Join { .. });
                let mut text = describe(op, &name, labels);
                match *op {
                    Op::Load { obj, value } => {
                        if let Some(newer) = latest.get(obj.0).copied().flatten()
                            && newer != value
                        {
                            text += &format!(" (last store wrote {newer})");
                        }
                    }
                    Op::Store { obj, value }
                    | Op::Rmw {
                        obj, new: value, ..
                    } => {
                        if let Some(slot) = latest.get_mut(obj.0) {
                            *slot = Some(value);
                        }
                    }
                    Op::Wait { cv, .. } => {
                        waiting.entry(cv.0).or_default().push(t);
                        let what = format!("a notify on {}", name(cv));
                        pending.insert(t, (what, site(step.at)));
                    }
                    Op::Woken { cv, .. } => {
                        waiting.entry(cv.0).or_default().retain(|&w| w != t);
                    }
                    Op::Notify { cv, .. } => {
                        let who = waiting.get(&cv.0).cloned().unwrap_or_default();
                        let who: Vec<String> = who.iter().map(|&w| labels.of(w)).collect();
                        text += &match who.len() {
                            0 => " (nobody waits)".to_string(),
                            _ => format!(" (wakes {})", who.join(", ")),
                        };
                    }
                    _ => {}
                }
                let shown = !matches!(op, Op::Finish);
                shown.then(|| match waited {
                    true => format!("{text} (waited)"),
                    false => text,
                })
            }
        };
        match &step.event {
            Event::End(_) => {
                in_op.entry(t).and_modify(|d| *d = d.saturating_sub(1));
            }
            _ => {
                last.insert(t, &step.event);
            }
        }
        let Some(text) = text else { continue };
        if let Some(prev) = running.filter(|&p| p != t) {
            rows.push(Row {
                thread: prev,
                text: format!("switch ({})", why_switch(last.get(&prev).copied())),
                at: String::new(),
                switch: true,
                heading: false,
                depth: 0,
            });
        }
        running = Some(t);
        let depth = in_op.get(&t).copied().unwrap_or(0);
        rows.push(Row {
            thread: t,
            text: format!("{}{text}", "  ".repeat(depth)),
            at: site(step.at),
            switch: false,
            heading: matches!(step.event, Event::Begin(_)),
            depth,
        });
        if let Event::Begin(_) = step.event {
            *in_op.entry(t).or_default() += 1;
        }
    }
    threads.sort_unstable();
    Layout {
        threads,
        rows,
        results,
        stuck: pending,
    }
}

/// The threads waiting when the trace ends: their last blocking step never
/// completed.
fn stuck_threads(trace: &Trace) -> Vec<usize> {
    let mut stuck = Vec::new();
    for step in &trace.steps {
        match step.event {
            Event::Waits(_) | Event::Did(Op::Wait { .. }) => stuck.push(step.thread),
            Event::Did(_) => stuck.retain(|&t| t != step.thread),
            _ => {}
        }
    }
    stuck
}

/// Why the running thread changed after `last`, the left thread's last event.
fn why_switch(last: Option<&Event>) -> &'static str {
    match last {
        Some(Event::Waits(_)) | Some(Event::Did(Op::Wait { .. })) => "waits",
        Some(Event::Did(Op::Finish)) => "done",
        Some(Event::Did(Op::Yield)) => "yields",
        _ => "preempted",
    }
}

/// ` → result` for the operation beginning at `steps[i]`: what its end says,
/// or that it never returned.
fn op_result(trace: &Trace, i: usize, stuck: &[usize]) -> String {
    let t = trace.steps[i].thread;
    let mut depth = 0;
    for step in trace.steps[i + 1..].iter().filter(|s| s.thread == t) {
        match &step.event {
            Event::Begin(_) => depth += 1,
            Event::End(_) if depth > 0 => depth -= 1,
            Event::End(Some(result)) => return format!(" → {result}"),
            Event::End(None) => return String::new(),
            _ => {}
        }
    }
    match &trace.failure {
        _ if stuck.contains(&t) => " → blocked".to_string(),
        Some(f) if f.thread == t && f.at.is_some() => " → panicked".to_string(),
        _ => " (unfinished)".to_string(),
    }
}

/// The objects a step touches (to name only those).
fn objects_of(event: &Event) -> Vec<ObjId> {
    let op = match event {
        Event::Did(op) | Event::Waits(op) => op,
        _ => return Vec::new(),
    };
    match *op {
        Op::Load { obj, .. }
        | Op::Store { obj, .. }
        | Op::Rmw { obj, .. }
        | Op::Lock { obj }
        | Op::Unlock { obj } => vec![obj],
        Op::Wait { cv, lock } | Op::Woken { cv, lock } => vec![cv, lock],
        Op::Notify { cv, .. } => vec![cv],
        _ => Vec::new(),
    }
}

/// One operation as a cell: `issued.load() → 0`, `lock state`.
fn describe(op: &Op, name: &impl Fn(ObjId) -> String, labels: Labels) -> String {
    match *op {
        Op::Load { obj, value } => format!("{}.load() → {value}", name(obj)),
        Op::Store { obj, value } => format!("{}.store({value})", name(obj)),
        Op::Rmw {
            obj,
            name: method,
            arg,
            old,
            new,
        } => match method {
            // The idea in its shortest form (the line in the last column is the code):
            // three threads of `fetch_add` rows must still fit a book's column.
            "fetch_add" => format!("{} += {arg}: {old} → {new}", name(obj)),
            "fetch_sub" => format!("{} -= {arg}: {old} → {new}", name(obj)),
            _ => format!("{}.{method}({arg}): {old} → {new}", name(obj)),
        },
        Op::Lock { obj } => format!("lock {}", name(obj)),
        Op::Unlock { obj } => format!("unlock {}", name(obj)),
        // A monitor's mutex and condition variable share its name.
        Op::Wait { cv, lock } if name(cv) == name(lock) => format!("wait {} (unlocks)", name(cv)),
        Op::Wait { cv, lock } => format!("wait {} (unlocks {})", name(cv), name(lock)),
        Op::Woken { cv, lock } if name(cv) == name(lock) => {
            format!("woken on {} (relocked)", name(cv))
        }
        Op::Woken { cv, lock } => format!("woken on {} (relocked {})", name(cv), name(lock)),
        Op::Notify { cv, all: true } => format!("notify_all {}", name(cv)),
        Op::Notify { cv, all: false } => format!("notify_one {}", name(cv)),
        Op::Spawn { thread } => format!("spawn {}", labels.of(thread)),
        Op::Join { thread } => format!("join {}", labels.of(thread)),
        Op::Yield => "yield".to_string(),
        Op::Finish => "finished".to_string(),
    }
}
