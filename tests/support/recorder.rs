//! The observer every test server gets ([`super::start`] installs it): it records every event
//! the server reports, keeps what tests ask about indexed (who is who, who has closed, lines read
//! and answered, which thread serves whom), lets a test wait for an event, and panics on the
//! event a test chooses, which is how the tests make a handler panic — or stops on it until the
//! test lets it go, which is how a test keeps a server thread busy at a chosen point.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use many_clients::server::{Event, Observer};

use super::wait::{SETTLE, lock};

/// Which events a rule picks: the one to panic at (`panic_when`) or to hold (`hold_when`).
type EventRule = Box<dyn Fn(&Event) -> bool + Send + Sync>;

/// What the server did with a connection, as it reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Admitted { id: u64 },
    Refused,
}

/// Records the server's events; see the module docs.
#[derive(Default)]
pub struct Recorder {
    seen: Mutex<Seen>,
    changed: Condvar,
    panic_when: Mutex<Option<EventRule>>,
    hold_when: Mutex<Option<EventRule>>,
}

/// Where the hold set by [`Recorder::hold_when`] stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Hold {
    #[default]
    Off,
    /// Set: the next event the rule picks stops its thread.
    Armed,
    /// A server thread is stopped in the observer.
    Holding,
    /// Let go (and never taken again).
    Released,
}

/// Every event, and indexes over them: a test with thousands of connections asks about one
/// of them many times a second, and must not scan them all each time.
#[derive(Default)]
struct Seen {
    events: Vec<Event>,
    /// When each of `events` was reported (on the server thread, as it happened).
    at: Vec<Instant>,
    /// By the client's address (its end of the connection): admitted with an id, or refused.
    peers: HashMap<SocketAddr, Outcome>,
    connected: u64,
    refused: u64,
    closed: HashSet<u64>,
    /// Connections whose handler the recorder made panic.
    panicked: HashSet<u64>,
    panics: u64,
    /// Per connection: lines reported (`Message`) and replies written (`Replied`). A handler
    /// blocked writing a reply has reported one line more than it has replied to.
    lines: HashMap<u64, (u64, u64)>,
    /// Per connection: the name of the thread that reported its first message, reply or close.
    /// Those events come from the thread serving it (`client-{id}`, a pool's `worker-{i}`, an
    /// event loop's `events-{i}`).
    handlers: HashMap<u64, String>,
    hold: Hold,
}

impl Seen {
    fn has_closed(&self, id: u64) -> bool {
        self.closed.contains(&id) || self.panicked.contains(&id)
    }

    fn record(&mut self, event: &Event) {
        self.events.push(event.clone());
        self.at.push(Instant::now());
        match *event {
            Event::Connected { id, peer } => {
                self.peers.insert(peer, Outcome::Admitted { id });
                self.connected += 1;
            }
            Event::Refused { peer } => {
                self.peers.insert(peer, Outcome::Refused);
                self.refused += 1;
            }
            Event::Message { id, .. } => self.lines.entry(id).or_default().0 += 1,
            Event::Replied { id, .. } => self.lines.entry(id).or_default().1 += 1,
            Event::Closed { id } => {
                self.closed.insert(id);
            }
            Event::ShutdownBegan { .. } | Event::Drained => {}
        }
        if let Some(id) = served_by_handler(event) {
            self.handlers.entry(id).or_insert_with(|| {
                let current = std::thread::current();
                current.name().unwrap_or("?").to_string()
            });
        }
    }
}

/// The connection an event is about, if the thread serving that connection reports it
/// (`Connected` and `Refused` come from the accept loop).
fn served_by_handler(event: &Event) -> Option<u64> {
    match *event {
        Event::Message { id, .. } | Event::Replied { id, .. } | Event::Closed { id } => Some(id),
        _ => None,
    }
}

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        lock(&self.seen).record(event);
        self.changed.notify_all();
        if lock(&self.hold_when)
            .as_ref()
            .is_some_and(|rule| rule(event))
        {
            self.hold_here();
        }
        let fire = lock(&self.panic_when)
            .as_ref()
            .is_some_and(|rule| rule(event));
        if fire {
            let mut seen = lock(&self.seen);
            if let Some(id) = served_by_handler(event) {
                seen.panicked.insert(id);
            }
            seen.panics += 1;
            drop(seen);
            self.changed.notify_all();
            panic!("injected panic on {event:?} (expected by the test)");
        }
    }
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes the observer panic on every event `rule` picks, on whichever server thread
    /// reports it.
    pub fn panic_when(&self, rule: impl Fn(&Event) -> bool + Send + Sync + 'static) {
        *lock(&self.panic_when) = Some(Box::new(rule));
    }

    /// Makes the first event `rule` picks stop the server thread reporting it, inside the
    /// observer, until [`Recorder::release`] (or [`SETTLE`] passes): that thread is then busy,
    /// as if serving something slow, at a point the test chose.
    pub fn hold_when(&self, rule: impl Fn(&Event) -> bool + Send + Sync + 'static) {
        *lock(&self.hold_when) = Some(Box::new(rule));
        lock(&self.seen).hold = Hold::Armed;
    }

    /// Waits (within [`SETTLE`]) until a server thread is held.
    pub fn wait_held(&self) {
        let deadline = Instant::now() + SETTLE;
        let held = |seen: &Seen| (seen.hold != Hold::Armed).then_some(());
        assert!(
            self.wait_until(deadline, held).is_some(),
            "not within {SETTLE:?}: an event the hold picks"
        );
    }

    /// Lets the held thread go on.
    pub fn release(&self) {
        lock(&self.seen).hold = Hold::Released;
        self.changed.notify_all();
    }

    fn hold_here(&self) {
        let mut seen = lock(&self.seen);
        if seen.hold != Hold::Armed {
            return;
        }
        seen.hold = Hold::Holding;
        self.changed.notify_all();
        drop(seen);
        let released = |seen: &Seen| (seen.hold == Hold::Released).then_some(());
        // Never forever: a test that forgets to release fails on its own deadlines instead.
        let _ = self.wait_until(Instant::now() + SETTLE, released);
    }

    /// When the last event `which` picks was reported, if one was.
    pub fn last_time(&self, which: impl Fn(&Event) -> bool) -> Option<Instant> {
        let seen = lock(&self.seen);
        let last = seen.events.iter().rposition(which)?;
        Some(seen.at[last])
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.seen).events.clone()
    }

    /// Waits until `found` finds something in what has been seen, or the deadline passes.
    fn wait_until<T>(&self, deadline: Instant, found: impl Fn(&Seen) -> Option<T>) -> Option<T> {
        let mut seen = lock(&self.seen);
        loop {
            if let Some(t) = found(&seen) {
                return Some(t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            seen = self
                .changed
                .wait_timeout(seen, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits (within [`SETTLE`]) until `wanted` holds for the events so far.
    pub fn wait_for(&self, what: &str, wanted: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + SETTLE;
        let held = self.wait_until(deadline, |seen| wanted(&seen.events).then_some(()));
        if held.is_none() {
            let events = self.events();
            let last = &events[events.len().saturating_sub(12)..];
            panic!("not within {SETTLE:?}: {what}; the last events: {last:?}");
        }
    }

    /// What the server did with the connection from `peer` (the client's local address), once
    /// it has decided, or `None` if it has not by `deadline`.
    pub fn outcome(&self, peer: SocketAddr, deadline: Instant) -> Option<Outcome> {
        self.wait_until(deadline, |seen| seen.peers.get(&peer).copied())
    }

    /// The id the server gave the connection from `peer` (waiting for it, within [`SETTLE`]).
    pub fn id_of(&self, peer: SocketAddr) -> u64 {
        match self.outcome(peer, Instant::now() + SETTLE) {
            Some(Outcome::Admitted { id }) => id,
            Some(Outcome::Refused) => panic!("{peer} was refused, not given an id"),
            None => panic!("not within {SETTLE:?}: the server gives {peer} an id"),
        }
    }

    /// Waits until the server has finished with connection `id` (its `Closed`, or an injected
    /// panic in its handler), or the deadline passes; whether it has.
    pub fn wait_closed(&self, id: u64, deadline: Instant) -> bool {
        let closed = |seen: &Seen| seen.has_closed(id).then_some(());
        self.wait_until(deadline, closed).is_some()
    }

    /// Whether connection `id` has ended (or its handler was made to panic).
    pub fn has_closed(&self, id: u64) -> bool {
        lock(&self.seen).has_closed(id)
    }

    /// `(lines reported, replies written)` for connection `id`.
    pub fn lines(&self, id: u64) -> (u64, u64) {
        lock(&self.seen).lines.get(&id).copied().unwrap_or_default()
    }

    /// The name of the thread serving connection `id`, once it has reported a line, a reply or
    /// its close.
    pub fn handler_of(&self, id: u64) -> Option<String> {
        lock(&self.seen).handlers.get(&id).cloned()
    }

    /// `Connected` events so far.
    pub fn connected(&self) -> u64 {
        lock(&self.seen).connected
    }

    /// `Refused` events so far.
    pub fn refused(&self) -> u64 {
        lock(&self.seen).refused
    }

    /// Panics injected so far.
    pub fn panics(&self) -> u64 {
        lock(&self.seen).panics
    }
}
