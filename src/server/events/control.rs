//! What crosses threads in the event-loop engine: the orders other threads
//! give the loops (shut down, cut), and how the loops are woken to read
//! them. Everything else a loop does stays on its own thread.
//!
//! The protocol: whoever gives an order first writes it (the shutdown flag
//! in the drain, or [`Control::cut`]'s flag), then nudges every loop. A loop
//! reads the orders after *every* return from its poll. A nudge is sticky —
//! one that comes while the loop is busy makes its next poll return at once
//! (mio's waker is an `eventfd`) — so a loop that read the flags just before
//! the order was written still polls, returns, and reads them again. The
//! loom model `tests/loom_events.rs` runs this protocol with a model nudge
//! that is sticky in the same way, against the real [`Shutdown`] drain.
//!
//! [`Shutdown`]: crate::shutdown::Shutdown

use crate::shutdown::Drain;
use crate::sync::{AtomicBool, Backend, Ordering, Std};

/// Wakes one loop from its poll, now or at its next poll.
pub trait Nudge: Send + Sync + 'static {
    /// Makes the loop's current or next poll return.
    fn nudge(&self);
}

impl Nudge for mio::Waker {
    fn nudge(&self) {
        if let Err(e) = self.wake() {
            // An eventfd write fails only if the descriptor is gone; the loop
            // is then gone too.
            tracing::warn!("cannot wake an event loop: {e}");
        }
    }
}

/// The orders for every loop of one server, and their wakers.
pub struct Control<B: Backend = Std> {
    /// Set when the grace period is over: close every connection now.
    /// Release/Acquire: a loop that sees it also sees what came before.
    cut: B::AtomicBool,
    nudges: Vec<Box<dyn Nudge>>,
}

impl<B: Backend> Control<B> {
    /// Orders for the loops these nudges wake.
    pub fn new(nudges: Vec<Box<dyn Nudge>>) -> Self {
        Control {
            cut: B::AtomicBool::new(false),
            nudges,
        }
    }

    /// Wakes every loop, so it reads the orders (after shutdown began).
    pub fn wake_all(&self) {
        for nudge in &self.nudges {
            nudge.nudge();
        }
    }

    /// Orders every loop to close what it still has, and wakes it.
    pub fn cut(&self) {
        // Release pairs with the Acquire load in `Orders::read`.
        self.cut.swap(true, Ordering::Release);
        self.wake_all();
    }
}

/// One loop's reading of the orders, so it acts on each exactly once.
#[derive(Debug, Default)]
pub struct Orders {
    told_shutdown: bool,
    cut: bool,
}

/// What is new since a loop last read its orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct New {
    /// Shutdown began: stop accepting, tell every connection.
    pub shutdown: bool,
    /// The grace period is over: close every connection.
    pub cut: bool,
}

impl Orders {
    /// Reads the orders; call it after every poll.
    pub fn read<B: Backend>(&mut self, drain: &impl Drain, control: &Control<B>) -> New {
        let mut new = New::default();
        if !self.told_shutdown && drain.is_shutting_down() {
            self.told_shutdown = true;
            new.shutdown = true;
        }
        // Acquire pairs with the Release swap in `Control::cut`.
        if !self.cut && control.cut.load(Ordering::Acquire) {
            self.cut = true;
            new.cut = true;
        }
        new
    }

    /// Whether shutdown has reached this loop.
    pub fn shutting_down(&self) -> bool {
        self.told_shutdown
    }
}
