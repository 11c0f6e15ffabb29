//! The recorder: one execution's steps, kept in a thread-local of the OS
//! thread that runs the model (see the module docs of `trace`).

use super::{Event, Failure, Kind, ObjId, Object, Op, Site, Step, Trace, Value};
use std::cell::RefCell;
use std::fmt;

/// The recorder of the execution running on this OS thread.
pub(super) struct Recorder {
    trace: Trace,
    /// The running thread's index, asked of the checker at each step.
    pub(super) current: fn() -> usize,
    /// Who holds each mutex now (to tell a lock that will wait).
    holder: Vec<Option<usize>>,
    /// Threads whose closure has returned (to tell a join that will wait).
    finished: Vec<usize>,
}

thread_local! {
    pub(super) static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Starts recording a new execution on this OS thread, dropping the last
/// one. `current` tells the running thread's index (0 for the model's main
/// thread); a checker calls this at the start of every execution.
pub fn begin(current: fn() -> usize) {
    RECORDER.with(|r| {
        *r.borrow_mut() = Some(Recorder {
            trace: Trace::default(),
            current,
            holder: Vec::new(),
            finished: Vec::new(),
        })
    });
}

/// Stops recording and returns the last execution, if one was recording.
pub fn take() -> Option<Trace> {
    RECORDER.with(|r| r.borrow_mut().take().map(|rec| rec.trace))
}

/// Runs `f` on the recorder, if recording and the execution has not failed:
/// after a failure the checker unwinds the other threads, and what their
/// destructors do is not part of the execution.
fn with_recorder<R>(f: impl FnOnce(&mut Recorder) -> R) -> Option<R> {
    RECORDER.with(|r| {
        let mut r = r.try_borrow_mut().ok()?;
        let rec = r.as_mut()?;
        match rec.trace.failure {
            Some(_) => None,
            None => Some(f(rec)),
        }
    })
}

/// A backend created an object at `at`, holding `value` if it is an atomic.
/// Returns its id for later [`record`]s.
pub fn created(kind: Kind, value: Option<Value>, at: Site) -> ObjId {
    with_recorder(|rec| {
        let id = rec.trace.objects.len();
        let init = value;
        rec.trace.objects.push(Object { kind, at, init });
        rec.holder.push(None);
        ObjId(id)
    })
    .unwrap_or(ObjId::UNKNOWN)
}

/// A backend did `op` at `at` (the caller's site; `None` where there is no
/// caller to name, as in a guard's drop).
pub fn record(op: Op, at: Option<Site>) {
    with_recorder(|rec| {
        let thread = (rec.current)();
        rec.note(thread, &op);
        push(rec, thread, Event::Did(op), at);
    });
}

/// A backend is about to do `op`, which may have to wait for another thread
/// (`Lock`, `Join`). Recorded only if it will wait — the mutex is held by
/// another thread, the joined thread still runs — so that a lock taken at
/// once stays one row; the [`record`] of the same op completes it.
pub fn before(op: Op, at: Option<Site>) {
    with_recorder(|rec| {
        let thread = (rec.current)();
        let waits = match op {
            Op::Lock { obj } => rec
                .holder
                .get(obj.0)
                .copied()
                .flatten()
                .is_some_and(|t| t != thread),
            Op::Join { thread: joined } => !rec.finished.contains(&joined),
            _ => false,
        };
        if waits {
            push(rec, thread, Event::Waits(op), at);
        }
    });
}

fn push(rec: &mut Recorder, thread: usize, event: Event, at: Option<Site>) {
    rec.trace.steps.push(Step { thread, event, at });
}

impl Recorder {
    /// Keeps what the recorder must know to tell whether an op will wait.
    fn note(&mut self, thread: usize, op: &Op) {
        match *op {
            Op::Lock { obj } | Op::Woken { lock: obj, .. } => self.hold(obj, Some(thread)),
            Op::Unlock { obj } | Op::Wait { lock: obj, .. } => self.hold(obj, None),
            Op::Finish => self.finished.push(thread),
            _ => {}
        }
    }

    fn hold(&mut self, obj: ObjId, who: Option<usize>) {
        if let Some(h) = self.holder.get_mut(obj.0) {
            *h = who;
        }
    }
}

/// Runs `f` as one model-level operation called `name` (`"connect()"`): the
/// trace shows it as a heading over the steps it took, and in the table of
/// results. [`op_with`] also shows what it returned.
pub fn op<R>(name: &str, f: impl FnOnce() -> R) -> R {
    op_shown(name, f, |_| None)
}

/// Like [`op`], and shows `show(result)` as what it returned
/// (`"connect() → 1"`).
pub fn op_with<R, S: fmt::Display>(
    name: &str,
    f: impl FnOnce() -> R,
    show: impl FnOnce(&R) -> S,
) -> R {
    op_shown(name, f, |r| Some(show(r).to_string()))
}

/// Like [`op_with`], for results that show only sometimes: `show` returns
/// `None` for a result with nothing to show (`"leave()"`).
pub fn op_shown<R>(
    name: &str,
    f: impl FnOnce() -> R,
    show: impl FnOnce(&R) -> Option<String>,
) -> R {
    mark(Event::Begin(name.to_string()));
    let result = f();
    mark(Event::End(show(&result)));
    result
}

fn mark(event: Event) {
    with_recorder(|rec| {
        let thread = (rec.current)();
        push(rec, thread, event, None);
    });
}

/// Chains a panic hook (once per process) that records the first panic of
/// the execution recording on this OS thread as its [`Failure`]: the broken
/// assertion, or the checker's deadlock report. The hooks already installed
/// still run after it.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.payload_as_str().unwrap_or("(a panic)").to_string();
            // A relative path is this crate's file; a dependency's is
            // absolute, and the checker's own reports come from there.
            let at = info
                .location()
                .filter(|l| !l.file().starts_with('/'))
                .map(|l| (l.file().to_string(), l.line()));
            // The hook must not call into the checker: the panic may have
            // come from inside it. The running thread is the last to record.
            with_recorder(|rec| {
                let thread = rec.trace.steps.last().map_or(0, |s| s.thread);
                rec.trace.failure = Some(Failure {
                    thread,
                    message,
                    at,
                });
            });
            previous(info);
        }));
    });
}
