//! The event-loop engine's cross-thread protocol as a model, shared by
//! `tests/loom_events.rs` (two loops, every interleaving within a bound) and
//! `tests/shuttle_events.rs` (four loops, randomized schedules): the real
//! `Control` orders, the real `Orders` a loop reads after each poll, the real
//! drain, and a loop's poll reduced to what matters here — it blocks until
//! nudged, and a nudge is sticky (mio's waker is an `eventfd`: a nudge sent
//! while the loop is busy makes its next poll return). What a loop does with
//! its sockets stays on its thread and is covered by the sans-IO tests of
//! `Conn` and the socket suites.

#![allow(dead_code)]

use many_clients::server::events::control::{Control, Nudge, Orders};
use many_clients::shutdown::{Drain, Live, Shutdown};
use many_clients::sync::{Arc, Backend, Model, Monitor};

/// A loop's poll, reduced to its waiting: blocks until nudged.
pub trait Poll: Nudge {
    fn poll(&self);
}

// ANCHOR: sticky
/// mio's waker as the model sees it: a nudge leaves a mark that the next
/// poll consumes, whether the loop was waiting or busy when it came.
pub struct Sticky(Monitor<bool, Model>);

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
pub struct Lossy(Monitor<u64, Model>);

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

/// `loops` loops; main begins shutdown, wakes them, (with `cut`) orders the
/// cut as the grace period's end would, and waits for the drain.
pub fn shutdown_reaches_every_loop<P: Poll + Default>(loops: usize, stuck: bool, cut: bool) {
    let drain = Arc::new(Shutdown::<Model>::new());
    let polls: Vec<Arc<P>> = (0..loops).map(|_| Arc::new(P::default())).collect();
    let nudges = polls
        .iter()
        .map(|p| Box::new(Shared(p.clone())) as Box<dyn Nudge>)
        .collect();
    let control = Arc::new(Control::<Model>::new(nudges));
    let loops: Vec<_> = polls
        .into_iter()
        .enumerate()
        .map(|(i, poll)| {
            let (drain, control) = (drain.clone(), control.clone());
            let run = move || event_loop(drain, control, poll, stuck);
            Model::spawn(format!("events-{i}"), None, run).expect("spawn a loop")
        })
        .collect();
    drain.begin();
    control.wake_all();
    if cut {
        control.cut();
    }
    drain.wait_drained();
    for l in loops {
        many_clients::sync::JoinHandle::join(l).unwrap();
    }
    assert_eq!(drain.live(), 0, "a loop ended with a live connection");
}
