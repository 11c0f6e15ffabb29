//! Where a greet connection's time goes, for the probe (`SERVER_BENCH_STAMPS=1`): our server's
//! observer stamps each connection's accept (`Connected`) and its reply (`Replied`), keyed by
//! the client's address, and the client stamps `connect` returning and its read reaching EOF.
//! Server and clients run in one process, on one clock, so the stamps split the time after
//! `connect` into three parts:
//!
//! * **backlog**: `connect` returned → the server accepted (the connection waited in the
//!   listener's queue for its loop or acceptor to call `accept`);
//! * **service**: accepted → reply written (the message read, the reply made and sent);
//! * **delivery**: reply written → the client had read it to EOF (the client thread woke up and
//!   ran).
//!
//! Only our engines have the observer; tokio's connections get no split.

use many_clients::server::{Event, Observer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

/// The server's stamps per connection, until its client takes them.
#[derive(Default)]
pub struct Stamps {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    peers: HashMap<u64, SocketAddr>,
    /// By client address: (accepted, replied).
    at: HashMap<SocketAddr, (Option<Instant>, Option<Instant>)>,
}

impl Observer for Stamps {
    fn event(&self, event: &Event) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match *event {
            Event::Connected { id, peer } => {
                inner.peers.insert(id, peer);
                inner.at.insert(peer, (Some(now), None));
            }
            Event::Replied { id, .. } => {
                if let Some(peer) = inner.peers.remove(&id) {
                    inner.at.entry(peer).or_default().1 = Some(now);
                }
            }
            _ => {}
        }
    }
}

impl Stamps {
    /// The stamps of the connection from `local`, taken (its client calls this after reading
    /// the reply to EOF, before closing: the address is not reused before then).
    pub fn take(&self, local: SocketAddr) -> Option<(Instant, Instant)> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.at.remove(&local)? {
            (Some(accepted), Some(replied)) => Some((accepted, replied)),
            _ => None,
        }
    }
}
