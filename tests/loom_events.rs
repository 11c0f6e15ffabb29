//! Loom models of what crosses threads in the event-loop engine
//! (`src/server/events/control.rs`): shutdown and the grace cut reach every
//! loop, and the drain waits for every loop's connections — with the real
//! `Control` orders, the real `Orders` a loop reads after each poll, and the
//! real drain. A loop's poll is modelled by what matters about it here: it
//! blocks until nudged, and a nudge is sticky (mio's waker is an `eventfd`:
//! a nudge sent while the loop is busy makes its next poll return). What a
//! loop does with its sockets stays on its thread and is covered by the
//! sans-IO tests of `Conn` and the socket suites.
//!
//! A buggy nudge that is *not* sticky (a bare notify) must be caught: a loop
//! that reads the orders just before shutdown begins, then polls, sleeps
//! forever.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_events -- --nocapture`
#![cfg(loom)]

#[path = "support/loom_check.rs"]
mod loom_check;

use loom::thread;
use many_clients::server::events::control::{Control, Nudge, Orders};
use many_clients::shutdown::{Drain, Live, Shutdown};
use many_clients::sync::{Arc, Model, Monitor};

/// A loop's poll, reduced to its waiting: blocks until nudged.
trait Poll: Nudge {
    fn poll(&self);
}

// ANCHOR: sticky
/// mio's waker as the model sees it: a nudge leaves a mark that the next
/// poll consumes, whether the loop was waiting or busy when it came.
struct Sticky(Monitor<bool, Model>);

impl Default for Sticky {
    fn default() -> Self {
        Sticky(Monitor::new(false))
    }
}

impl Nudge for Sticky {
    fn nudge(&self) {
        let mut nudged = self.0.lock();
        *nudged = true;
        nudged.notify_all();
    }
}

impl Poll for Sticky {
    fn poll(&self) {
        let mut nudged = self.0.lock();
        while !*nudged {
            nudged = nudged.wait();
        }
        *nudged = false;
    }
}
// ANCHOR_END: sticky

/// **BUGGY ON PURPOSE**: a wake-up that leaves no mark. A nudge that comes
/// while the loop is not yet waiting is lost.
struct Lossy(Monitor<u64, Model>);

impl Default for Lossy {
    fn default() -> Self {
        Lossy(Monitor::new(0))
    }
}

impl Nudge for Lossy {
    fn nudge(&self) {
        let mut nudges = self.0.lock();
        *nudges += 1;
        nudges.notify_all();
    }
}

impl Poll for Lossy {
    fn poll(&self) {
        // BUG: waits for a nudge *after* this point, as a bare condition-variable
        // wait does; one sent between the loop's last check and now is missed.
        let seen = *self.0.lock();
        let mut nudges = self.0.lock();
        while *nudges == seen {
            nudges = nudges.wait();
        }
    }
}

/// The handle a loop keeps to its own nudge while `Control` holds another.
struct Shared<P>(Arc<P>);

impl<P: Nudge> Nudge for Shared<P> {
    fn nudge(&self) {
        self.0.nudge();
    }
}

// ANCHOR: event_loop
/// One loop: it admits a connection (unless shutdown has begun), then polls
/// and reads its orders after every poll, as `EventLoop::run` does. On
/// shutdown its connection finishes — unless `stuck`, a client that never
/// ends, which only the cut closes.
fn event_loop<P: Poll>(
    drain: Arc<Shutdown<Model>>,
    control: Arc<Control<Model>>,
    poll: Arc<P>,
    stuck: bool,
) {
    let mut connections: Vec<Live<Shutdown<Model>>> = drain.try_enter().into_iter().collect();
    let mut orders = Orders::default();
    loop {
        poll.poll();
        let new = orders.read(&*drain, &control);
        if (new.shutdown && !stuck) || new.cut {
            connections.clear(); // told, they finish; or cut
        }
        if orders.shutting_down() && connections.is_empty() {
            return;
        }
    }
}
// ANCHOR_END: event_loop

/// Two loops; main begins shutdown, wakes them, (with `cut`) orders the cut
/// as the grace period's end would, and waits for the drain.
fn shutdown_reaches_every_loop<P: Poll + Default>(stuck: bool, cut: bool) {
    let drain = Arc::new(Shutdown::<Model>::new());
    let polls: Vec<Arc<P>> = (0..2).map(|_| Arc::new(P::default())).collect();
    let nudges = polls
        .iter()
        .map(|p| Box::new(Shared(p.clone())) as Box<dyn Nudge>)
        .collect();
    let control = Arc::new(Control::<Model>::new(nudges));
    let loops: Vec<_> = polls
        .into_iter()
        .map(|poll| {
            let (drain, control) = (drain.clone(), control.clone());
            thread::spawn(move || event_loop(drain, control, poll, stuck))
        })
        .collect();
    drain.begin();
    control.wake_all();
    if cut {
        control.cut();
    }
    drain.wait_drained();
    for l in loops {
        l.join().unwrap();
    }
    assert_eq!(drain.live(), 0, "a loop ended with a live connection");
}

/// Bounded at 3 preemptions: exhaustive ran for more than six minutes here
/// without finishing (two loops, each polling in a loop, and main). Every
/// race this model is about — a loop reading its orders just before, during
/// or after shutdown begins and the cut is ordered — needs at most two forced
/// switches; bound 3 is 1,473 and 4,520 interleavings, bound 4 is 7,617 and
/// 41,432 (measured in release).
const BOUND: Option<usize> = Some(3);

#[test]
fn shutdown_wakes_every_loop_and_the_drain_waits_for_them() {
    loom_check::explore("events: 2 loops vs shutdown", BOUND, || {
        shutdown_reaches_every_loop::<Sticky>(false, false)
    });
}

#[test]
fn the_cut_reaches_a_loop_whose_connection_never_ends() {
    loom_check::explore(
        "events: 2 loops, stuck clients, shutdown then cut",
        BOUND,
        || shutdown_reaches_every_loop::<Sticky>(true, true),
    );
}

// ANCHOR: lossy_caught
/// BUGGY VARIANT: a nudge that leaves no mark; loom finds the loop that read
/// its orders just before shutdown began and then sleeps forever.
#[test]
fn a_nudge_that_is_not_sticky_is_caught() {
    let failure = loom_check::expect_bug("events: lossy nudge vs shutdown", BOUND, || {
        shutdown_reaches_every_loop::<Lossy>(false, false)
    });
    assert!(
        failure.contains("deadlock"),
        "unexpected failure: {failure}"
    );
}
// ANCHOR_END: lossy_caught
