//! Loom model of the live-connection registry: shutdown's wake-up reaches
//! every connection, even one registering while shutdown runs — and the
//! forgetful registry, which must be caught leaving one asleep.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_registry -- --nocapture`
#![cfg(loom)]

#[path = "support/loom_check.rs"]
mod loom_check;

use loom::thread;
use many_clients::registry::buggy::ForgetfulRegistry;
use many_clients::registry::{Registry, Roster};
use many_clients::server::pipe::{PipeWaker, pipe};
use many_clients::server::transport::{Stream, Wake};
use many_clients::sync::{Arc, Model};
use std::io::Read;
use std::mem::ManuallyDrop;

// ANCHOR: every_connection_woken
/// Two connections register and block reading their (in-memory) socket;
/// main closes the registry and wakes every waker it got back — the server's
/// own shutdown step. A connection refused by a closed registry knows
/// shutdown has begun and leaves at once. Every thread must finish.
fn every_connection_woken<R: Registry<PipeWaker<Model>> + Default>() {
    let registry = Arc::new(R::default());
    let connections: Vec<_> = (1..=2)
        .map(|id| {
            let registry = registry.clone();
            thread::spawn(move || {
                // The client end stays open and silent: only a wake-up ends the read.
                // When loom reports a deadlock it unwinds the blocked threads,
                // and any destructor touching a loom lock during that unwind
                // aborts the test binary. So nothing here drops implicitly:
                // `ManuallyDrop` for the pipe ends, `insert`/`remove` rather
                // than the `Registration` guard.
                let (client, server_end) = pipe::<Model>();
                let (client, mut server_end) =
                    (ManuallyDrop::new(client), ManuallyDrop::new(server_end));
                let waker = server_end.waker();
                if registry.insert(id, waker).is_ok() {
                    let n = server_end.read(&mut [0; 8]).unwrap(); // blocked in `read`
                    assert_eq!(n, 0, "woken reads see EOF");
                    registry.remove(id);
                } // else registered too late: shutdown is already on
                drop(ManuallyDrop::into_inner(server_end));
                drop(ManuallyDrop::into_inner(client));
            })
        })
        .collect();
    for (_, waker) in registry.close() {
        waker.wake();
    }
    for c in connections {
        c.join().unwrap();
    }
    assert!(registry.is_empty());
}
// ANCHOR_END: every_connection_woken

const PREEMPTIONS: usize = 2;

#[test]
fn shutdown_wakes_every_registered_connection() {
    // Bounded at 2. Unbounded did not finish in 10 minutes here (every lock
    // of two handlers, their pipes and main's close and wakes permute). Two
    // preemptions cover each handler registering before, during or after the
    // close, the race this model is about. Known gap: at bound 3 and 4 loom
    // 0.7.2 stopped on its own internal assertion "expected to be able to
    // acquire lock" (rt/mutex.rs:46) inside a pipe's lock, and now reports a
    // deadlock in which, by its own trace (LOOM_LOG=trace), a connection's
    // `Condvar::wait` in the pipe's `read` returns again and again with no
    // notify and the mutex is logged as taken by thread 0 while thread 2
    // runs. We read that as loom's bookkeeping going wrong under a
    // preemption bound (tokio-rs/tokio#6515 shows false deadlocks at small
    // bounds too), not as a registry bug; not proven either way.
    loom_check::explore(
        "registry: 2 registering vs close",
        Some(PREEMPTIONS),
        every_connection_woken::<Roster<PipeWaker<Model>, Model>>,
    );
}

// ANCHOR: forgetful_caught
/// BUGGY VARIANT: a registration after `close` is kept and never woken; loom
/// reports that connection blocked forever.
#[test]
fn forgetful_registry_missed_wakeup_is_caught() {
    let failure = loom_check::expect_bug(
        "forgetful registry: 2 registering vs close",
        Some(PREEMPTIONS),
        every_connection_woken::<ForgetfulRegistry<PipeWaker<Model>, Model>>,
    );
    assert!(
        failure.contains("deadlock"),
        "unexpected failure: {failure}"
    );
}
// ANCHOR_END: forgetful_caught
