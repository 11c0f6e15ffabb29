//! Optional hooks into a running server: every connection event, as it
//! happens, on the thread it happens on. The demo's timeline records them;
//! tests use them to watch (or, in fault tests, to inject a panic into a
//! handler thread). With no observer configured the cost is one `None` check
//! per event.

use std::net::SocketAddr;

/// Something that happened to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A connection was accepted and given an id.
    Connected {
        /// The client id.
        id: u64,
        /// The peer.
        peer: SocketAddr,
    },
    /// A connection was refused at the limit (it takes no id).
    Refused {
        /// The peer.
        peer: SocketAddr,
    },
    /// A message (greet) or a line (echo) was received and is being answered.
    Message {
        /// The client id.
        id: u64,
        /// Its length in bytes.
        len: usize,
    },
    /// A reply or error line was written to the client.
    Replied {
        /// The client id (0 for a refused connection).
        id: u64,
        /// Bytes written.
        len: usize,
    },
    /// The connection ended and its thread is about to release it.
    Closed {
        /// The client id.
        id: u64,
    },
    /// Shutdown began with this many live connections.
    ShutdownBegan {
        /// Live connections at that moment.
        live: usize,
    },
    /// Every connection has ended.
    Drained,
}

/// Receives [`Event`]s. Called on the thread where the event happened (the
/// accept loop, a connection's thread, or whoever calls shutdown), so it must
/// be quick and must not block.
pub trait Observer: Send + Sync + 'static {
    /// One event.
    fn event(&self, event: &Event);
}
