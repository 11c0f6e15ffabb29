//! The printer shown known executions, built by hand: the rendering is
//! checked in full, so a change to the format is a change to this file too.

use super::names::assigned_name;
use super::record::RECORDER;
use super::*;

fn at(file: &'static str, line: u32) -> Option<Site> {
    Some(Site {
        file,
        line,
        column: 1,
    })
}

fn step(thread: usize, event: Event, site: Option<Site>) -> Step {
    Step {
        thread,
        event,
        at: site,
    }
}

fn did(thread: usize, op: Op, site: Option<Site>) -> Step {
    step(thread, Event::Did(op), site)
}

/// An object whose creating line cannot be read: named by kind and number.
fn object(kind: Kind, init: Option<Value>) -> Object {
    Object {
        kind,
        at: Site {
            file: "/nowhere.rs",
            line: 1,
            column: 1,
        },
        init,
    }
}

/// The lost update: T1 connects, then T2 loads the old value — the shape
/// of the racy counter's failing run, on one atomic.
fn lost_update() -> Trace {
    let a = ObjId(0);
    let (load, store) = (
        |v| Op::Load {
            obj: a,
            value: Value::U64(v),
        },
        |v| Op::Store {
            obj: a,
            value: Value::U64(v),
        },
    );
    let racy = |line| at("src/counter/racy.rs", line);
    let model = |line| at("tests/loom_counter.rs", line);
    Trace {
        objects: vec![object(Kind::Atomic, Some(Value::U64(0)))],
        steps: vec![
            did(0, Op::Spawn { thread: 1 }, model(20)),
            did(0, Op::Spawn { thread: 2 }, model(20)),
            step(0, Event::Waits(Op::Join { thread: 1 }), model(22)),
            step(1, Event::Begin("connect()".into()), None),
            did(1, load(0), racy(35)),
            did(1, store(1), racy(36)),
            step(1, Event::End(Some("1".into())), None),
            did(1, Op::Finish, None),
            did(0, Op::Join { thread: 1 }, model(22)),
            step(0, Event::Waits(Op::Join { thread: 2 }), model(22)),
            step(2, Event::Begin("connect()".into()), None),
            did(2, load(0), racy(35)),
            did(2, store(1), racy(36)),
            step(2, Event::End(Some("1".into())), None),
            did(2, Op::Finish, None),
            did(0, Op::Join { thread: 2 }, model(22)),
        ],
        failure: Some(Failure {
            thread: 0,
            message: "duplicate or missing id: [1, 1]\n  left: [1, 1]".into(),
            at: Some(("tests/loom_counter.rs".into(), 26)),
        }),
    }
}

#[test]
fn renders_results_interleaving_and_failure() {
    let text = lost_update().render(&Labels::Main);
    let expected = "\
What each thread's operations returned:
| T1            | T2            |
|---------------|---------------|
| connect() → 1 | connect() → 1 |

The interleaving (steps on shared state, in the order they ran):
| main             | T1                   | T2                           | at                 |
|------------------|----------------------|------------------------------|--------------------|
| spawn T1         |                      |                              | loom_counter.rs:20 |
| spawn T2         |                      |                              | loom_counter.rs:20 |
| join T1 — waits  |                      |                              | loom_counter.rs:22 |
| switch (waits)   |                      |                              |                    |
|                  | connect() → 1        |                              |                    |
|                  |   atomic1.load() → 0 |                              | racy.rs:35         |
|                  |   atomic1.store(1)   |                              | racy.rs:36         |
|                  | switch (done)        |                              |                    |
| join T1 (waited) |                      |                              | loom_counter.rs:22 |
| join T2 — waits  |                      |                              | loom_counter.rs:22 |
| switch (waits)   |                      |                              |                    |
|                  |                      | connect() → 1                |                    |
|                  |                      |   atomic1.load() → 0 (stale) | racy.rs:35         |
|                  |                      |   atomic1.store(1)           | racy.rs:36         |
|                  |                      | switch (done)                |                    |
| join T2 (waited) |                      |                              | loom_counter.rs:22 |
Files: loom_counter.rs is tests/loom_counter.rs, racy.rs is src/counter/racy.rs.
✗ main panicked at tests/loom_counter.rs:26:
  duplicate or missing id: [1, 1]
    left: [1, 1]
";
    assert_eq!(text, expected, "\n{text}");
}

/// A lost wake-up: main waits on a monitor nobody will notify again.
#[test]
fn a_deadlock_names_what_each_stuck_thread_waits_for() {
    let (m, cv) = (ObjId(0), ObjId(1));
    let site = |line| at("src/shutdown/buggy.rs", line);
    let trace = Trace {
        objects: vec![object(Kind::Mutex, None), object(Kind::Condvar, None)],
        steps: vec![
            step(0, Event::Begin("wait_drained()".into()), None),
            did(0, Op::Lock { obj: m }, site(45)),
            did(0, Op::Unlock { obj: m }, None),
            did(1, Op::Lock { obj: m }, site(70)),
            did(1, Op::Notify { cv, all: true }, site(71)),
            did(1, Op::Unlock { obj: m }, None),
            did(1, Op::Finish, None),
            did(0, Op::Lock { obj: m }, site(49)),
            did(0, Op::Wait { cv, lock: m }, site(50)),
        ],
        failure: Some(Failure {
            thread: 0,
            message: "deadlock; threads = [...]".into(),
            at: None,
        }),
    };
    let text = trace.render(&Labels::FromOne);
    assert!(text.contains("| wait_drained() → blocked |\n"), "{text}");
    assert!(
        text.contains("|   lock mutex1   "),
        "nested under its operation: {text}"
    );
    assert!(text.contains("| switch (preempted)"), "{text}");
    assert!(
        text.contains("notify_all condvar1 (nobody waits)"),
        "{text}"
    );
    assert!(text.contains("wait condvar1 (unlocks mutex1)"), "{text}");
    assert!(
        text.ends_with(
            "✗ the model checker stopped:\n  deadlock; threads = [...]\n  \
             T1 waits forever: a notify on condvar1 (src/shutdown/buggy.rs:50)\n"
        ),
        "{text}"
    );
}

#[test]
fn a_lock_that_must_wait_shows_the_wait_only_then() {
    let m = ObjId(0);
    let site = |line| at("src/limit.rs", line);
    let trace = Trace {
        objects: vec![object(Kind::Mutex, None)],
        steps: vec![
            did(1, Op::Lock { obj: m }, site(1)),
            step(2, Event::Waits(Op::Lock { obj: m }), site(2)),
            did(1, Op::Unlock { obj: m }, None),
            did(2, Op::Lock { obj: m }, site(2)),
        ],
        failure: None,
    };
    let text = trace.render(&Labels::Main);
    let rows: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(
        rows,
        [
            "| lock mutex1        |                      | limit.rs:1 |",
            "| switch (preempted) |                      |            |",
            "|                    | lock mutex1 — waits  | limit.rs:2 |",
            "|                    | switch (waits)       |            |",
            "| unlock mutex1      |                      |            |",
            "| switch (preempted) |                      |            |",
            "|                    | lock mutex1 (waited) | limit.rs:2 |",
            "Files: limit.rs is src/limit.rs.",
        ],
        "{text}"
    );
}

/// A lock taken at once is one row, even though the recorder was told
/// `before` it.
#[test]
fn a_free_lock_is_one_row() {
    begin(|| 1);
    let m = created(Kind::Mutex, None, Site::caller());
    before(Op::Lock { obj: m }, None);
    record(Op::Lock { obj: m }, None);
    begin_again_as(2);
    before(Op::Lock { obj: m }, None);
    let trace = take().expect("recording");
    assert_eq!(trace.steps.len(), 2, "{:?}", trace.steps);
    assert_eq!(trace.steps[1].event, Event::Waits(Op::Lock { obj: m }));
}

/// Switches the running thread of the current recording (what the checker's
/// `current` function would report next).
fn begin_again_as(thread: usize) {
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        let rec = r.as_mut().expect("recording");
        rec.current = match thread {
            2 => || 2,
            _ => || 1,
        };
    });
}

#[test]
fn names_come_from_the_line_that_made_the_object() {
    assert_eq!(
        assigned_name("            issued: ").as_deref(),
        Some("issued")
    );
    assert_eq!(
        assigned_name("    let holders = Arc::new(").as_deref(),
        Some("holders")
    );
    assert_eq!(assigned_name("let mut x = ").as_deref(), Some("x"));
    assert_eq!(assigned_name("let (a, b) = (").as_deref(), None);
    assert_eq!(assigned_name("f(").as_deref(), None);
    assert_eq!(assigned_name("if a == ").as_deref(), None);
    assert_eq!(assigned_name("x::").as_deref(), None);
}

#[test]
fn recording_is_off_outside_begin_and_per_execution_inside() {
    assert_eq!(take(), None);
    let obj = created(Kind::Atomic, Some(Value::U64(0)), Site::caller());
    assert_eq!(obj, ObjId::UNKNOWN, "nothing records before `begin`");
    record(Op::Yield, None);
    assert_eq!(take(), None);

    begin(|| 7);
    record(Op::Yield, None);
    begin(|| 3); // a new execution drops the last one
    let obj = created(Kind::Atomic, Some(Value::U64(5)), Site::caller());
    let v = op_with("get()", || 5, |v| *v);
    record(
        Op::Load {
            obj,
            value: Value::U64(v),
        },
        Some(Site::caller()),
    );
    let trace = take().expect("recording");
    assert_eq!(trace.objects.len(), 1);
    assert_eq!(trace.objects[0].at.file, "src/sync/trace/tests.rs");
    let events: Vec<(usize, &Event)> = trace.steps.iter().map(|s| (s.thread, &s.event)).collect();
    assert_eq!(
        events,
        [
            (3, &Event::Begin("get()".into())),
            (3, &Event::End(Some("5".into()))),
            (
                3,
                &Event::Did(Op::Load {
                    obj,
                    value: Value::U64(5)
                })
            ),
        ]
    );
    assert_eq!(take(), None, "take ends the recording");
}

/// The picture of the lost update: one dot per step, every text inside the
/// 400-unit view box (a monospace character is at most 0.6 of its size
/// wide), and the note on a line of its own.
#[test]
fn the_picture_keeps_its_text_inside_the_view_box() {
    let svg = lost_update().svg(&Labels::Main, "The lost update");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\""));
    assert_eq!(svg.matches("<circle").count(), 12, "{svg}");
    assert!(svg.contains(">↳ last store wrote 1</text>"), "{svg}");
    for line in svg.lines().filter(|l| l.contains("<text")) {
        let attr = |name: &str| -> f64 {
            let start = line.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
            line[start..].split('"').next().unwrap().parse().unwrap()
        };
        let size = if line.contains("font-size=\"10\"") {
            10.0
        } else {
            13.0
        };
        let text = line.split('>').nth(1).unwrap().split('<').next().unwrap();
        let width = 0.6 * size * text.chars().count() as f64;
        let (left, right) = match line.contains("text-anchor=\"end\"") {
            true => (attr("x") - width, attr("x")),
            false if line.contains("text-anchor=\"middle\"") => {
                (attr("x") - width / 2.0, attr("x") + width / 2.0)
            }
            false => (attr("x"), attr("x") + width),
        };
        assert!(
            left >= 0.0 && right <= 400.0,
            "outside the view box: {line}"
        );
    }
}

/// Two files with the same last component (`buggy.rs`) keep their paths in
/// the `at` column, and only shortened names get a line in the legend.
#[test]
fn short_file_names_never_clash() {
    let (a, b) = (ObjId(0), ObjId(1));
    let trace = Trace {
        objects: vec![object(Kind::Mutex, None), object(Kind::Mutex, None)],
        steps: vec![
            did(1, Op::Lock { obj: a }, at("src/limit/buggy.rs", 5)),
            did(1, Op::Lock { obj: b }, at("src/shutdown/buggy.rs", 7)),
            did(1, Op::Lock { obj: b }, at("src/shutdown.rs", 9)),
        ],
        failure: None,
    };
    let text = trace.render(&Labels::Main);
    assert!(text.contains("| src/limit/buggy.rs:5 "), "{text}");
    assert!(text.contains("| src/shutdown/buggy.rs:7 "), "{text}");
    assert!(text.contains("| shutdown.rs:9 "), "{text}");
    assert!(
        text.contains("Files: shutdown.rs is src/shutdown.rs.\n"),
        "{text}"
    );
}

/// loom's deadlock report is one long line; the trace wraps it at spaces,
/// and leaves short lines (and their indentation) alone.
#[test]
fn long_failure_lines_are_wrapped_to_the_column() {
    let report = "deadlock; threads = [(Id(0), Blocked(Location(None))), (Id(1), \
                  Blocked(Location(None))), (Id(2), Blocked(Location(None)))]";
    let trace = Trace {
        objects: vec![],
        steps: vec![],
        failure: Some(Failure {
            thread: 0,
            message: format!("{report}\n    left: [1, 1]"),
            at: None,
        }),
    };
    let text = trace.render(&Labels::Main);
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    assert!(text.contains("\n      left: [1, 1]\n"), "{text}");
    let joined: String = text.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    assert!(
        joined.contains(report),
        "nothing lost in the wrapping: {text}"
    );
}

/// A model-level operation may contain another (`op` inside `op`): each row
/// shows its own result, a yield is named as the reason for the switch, and
/// an operation that neither returned nor was stuck, in a thread that did
/// not panic, is `(unfinished)`. (From cargo-mutants survivors: the book's
/// traces have no nesting, no yield, no unfinished operation.)
#[test]
fn nested_operations_yields_and_unfinished_ones() {
    let a = ObjId(0);
    let load = Op::Load {
        obj: a,
        value: Value::U64(0),
    };
    let trace = Trace {
        objects: vec![object(Kind::Atomic, Some(Value::U64(0)))],
        steps: vec![
            did(0, Op::Spawn { thread: 1 }, at("m.rs", 1)),
            step(1, Event::Begin("outer()".into()), None),
            step(1, Event::Begin("inner()".into()), None),
            did(1, load.clone(), at("m.rs", 2)),
            step(1, Event::End(Some("5".into())), None),
            did(1, Op::Yield, at("m.rs", 3)),
            step(0, Event::Begin("stuck()".into()), None),
            did(0, load, at("m.rs", 4)),
            step(1, Event::End(Some("7".into())), None),
        ],
        failure: Some(Failure {
            thread: 1,
            message: "boom".into(),
            at: Some(("m.rs".into(), 5)),
        }),
    };
    let text = trace.render(&Labels::Main);
    assert!(text.contains("| outer() → 7 "), "{text}");
    assert!(text.contains("|   inner() → 5 "), "{text}");
    assert!(text.contains("switch (yields)"), "{text}");
    assert!(text.contains("stuck() (unfinished)"), "{text}");
    assert!(!text.contains("panicked |"), "{text}");
}

/// Wrapping splits at the last space that keeps a line within the width,
/// never one character past it.
#[test]
fn wrapping_stops_at_the_width_exactly() {
    for width in 10..30 {
        let line = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj";
        for part in super::render::wrap(line, width) {
            assert!(part.chars().count() <= width, "{width}: {part:?}");
        }
    }
}

/// The picture's failure text keeps a first piece longer than a line on the
/// `✗` line, instead of leaving the mark alone on a line of its own.
#[test]
fn the_pictures_failure_text_never_leaves_the_mark_alone() {
    let failure = Failure {
        thread: 0,
        message: format!("{}: and more", "x".repeat(60)),
        at: None,
    };
    let lines = super::svg::failure_text(&failure);
    assert!(lines[0].starts_with("✗ x"), "{lines:?}");
}

/// A wrapper call inside another call is looked through as well.
#[test]
fn names_look_through_nested_calls() {
    assert_eq!(assigned_name("let x = foo(Arc::new(").as_deref(), Some("x"));
}
