//! The one harness for every test that runs the real server (`tests/server_*.rs`,
//! `tests/hostile*.rs`, `tests/schedules.rs`): each of those binaries says `mod support;` and
//! gets this module. By concept, one file each:
//!
//! * [`engines`]: the engines every suite runs against, and `engine_tests!`, which turns one
//!   `fn name(engine: Engine)` into one `#[test]` per engine (`thread::name`, `pool::name`);
//! * [`server`]: [`start`] a server on a free loopback port, stop it with every end-of-test check
//!   (`join` within the grace period, no server thread left, every accepted connection counted
//!   served), and stop it on drop after a failed assertion;
//! * [`recorder`]: the observer every test server gets: every event, who is who, lines read and
//!   answered, waiting for an event, and a panic to inject;
//! * [`threads`]: this process's threads from `/proc`, which of them are the server's, and
//!   [`serial`], which keeps the tests of one binary from seeing each other's threads;
//! * [`client`]: one client socket with timeouts, for every test (lines, raw bytes, resets,
//!   trickles);
//! * [`lines`]: the protocol's error lines and replies, byte for byte, and [`show`] for messages;
//! * [`wait`]: the time limits and the one polling helper, [`eventually`].
//!
//! A few binaries need more, and include it next to this module with `#[path]`, so the others
//! do not compile it: `good.rs` (well-behaved clients running while a fault does), `stall.rs`
//! (clients that stop reading), `log.rs` (the server's log, captured).

// Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod engines;
pub mod lines;
pub mod recorder;
pub mod server;
pub mod threads;
pub mod wait;

pub use client::{Client, End};
pub(crate) use engines::engine_tests;
pub use engines::{at_least, pool_of};
pub use lines::*;
pub use recorder::{Outcome, Recorder};
pub use server::{Stopped, Stopping, TestServer, start};
pub use threads::{
    assert_no_server_threads, serial, server_cpu_ticks, server_threads, thread_alive, threads,
};
pub use wait::*;
