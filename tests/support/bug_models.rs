//! The models that catch chapter 6's buggy variants, written once and run by
//! both model checkers: `tests/loom_counter.rs`, `loom_limit.rs`,
//! `loom_shutdown.rs` and `loom_registry.rs` run them under loom (every
//! interleaving within a bound), `tests/shuttle_bugs.rs` under Shuttle
//! (PCT and random schedules). Each takes the implementation as a type
//! parameter, so the sound version and its buggy twin go through the same
//! model. Everything is on [`Model`], the backend `--cfg loom` or
//! `--cfg shuttle` selects, and `trace::op` names each model-level step in
//! the failing execution's table.

#![allow(dead_code)]

use many_clients::counter::{ClientGuard, Counter};
use many_clients::limit::Limiter;
use many_clients::registry::Registry;
use many_clients::server::pipe::{PipeWaker, pipe};
use many_clients::server::transport::{Stream, Wake};
use many_clients::shutdown::Drain;
use many_clients::sync::{Arc, AtomicU64, Backend, JoinHandle, Model, Ordering, trace};
use std::io::Read;
use std::mem::ManuallyDrop;

/// A model thread, through the backend, so its spawn and join are in the
/// trace (numbered 1, 2, … in spawn order).
#[track_caller]
fn spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> <Model as Backend>::JoinHandle<T> {
    Model::spawn(String::new(), None, f).expect("a model thread spawns")
}

/// A witness count kept apart from the code under test. It must be a model
/// atomic: a model checker switches threads only at operations it can see,
/// so an invisible witness could never observe two holders at once. (The
/// backend's, so its steps are in the trace too.)
type Witness = <Model as Backend>::AtomicU64;

// ANCHOR: concurrent_connects
/// Two clients connect and leave at once: the ids must be exactly {1, 2},
/// and afterwards every count is exact. (`trace::op` names each client's
/// operations in the trace printed if the model fails.)
pub fn concurrent_connects<C: Counter + Default>() {
    let counter = Arc::new(C::default());
    let spawn_client = |counter: Arc<C>| {
        spawn(move || {
            let client = trace::op_with("connect()", || ClientGuard::new(counter), |c| c.id());
            let id = client.id();
            trace::op("leave()", || drop(client));
            id
        })
    };
    let a = spawn_client(counter.clone());
    let b = spawn_client(counter.clone());
    let mut ids = vec![a.join().unwrap(), b.join().unwrap()];
    ids.sort_unstable();
    assert_eq!(ids, [1, 2], "duplicate or missing id: {ids:?}");
    let s = counter.stats();
    let counts = (s.active, s.served, s.issued);
    assert_eq!(counts, (0, 2, 2), "lost update in the counts: {s:?}");
    assert!((1..=2).contains(&s.peak), "{s:?}");
}
// ANCHOR_END: concurrent_connects

/// Holds a permit long enough for others to try, counting holders with a
/// separate witness so the check does not trust the limit's own count.
fn hold<L: Limiter>(limit: &Arc<L>, holders: &Witness, blocking: bool) {
    let got = |p: &Option<_>| p.is_some();
    let permit = if blocking {
        trace::op_with("acquire()", || limit.acquire(), got)
    } else {
        trace::op_with("try_acquire()", || limit.try_acquire(), got)
    };
    if let Some(permit) = permit {
        let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(
            now <= limit.max() as u64,
            "limit exceeded: {now} holders, max {}",
            limit.max()
        );
        holders.fetch_sub(1, Ordering::SeqCst);
        trace::op("release()", || drop(permit));
    }
}

/// Max 1, three contenders: two `try_acquire`, one blocking `acquire`.
pub fn never_exceeded<L: Limiter>(make: fn(usize) -> L) {
    let limit = Arc::new(make(1));
    let holders = Arc::new(Witness::new(0));
    let contender = |blocking: bool| {
        let (limit, holders) = (limit.clone(), holders.clone());
        spawn(move || hold(&limit, &holders, blocking))
    };
    let t1 = contender(false);
    let t2 = contender(true);
    hold(&limit, &holders, false);
    t1.join().unwrap();
    t2.join().unwrap();
    assert_eq!(limit.in_use(), 0, "a slot leaked");
}

// ANCHOR: drain_one_leaving
/// One live connection leaves on its own thread while main drains.
pub fn drain_one_leaving<D: Drain + Default>() {
    let drain = Arc::new(D::default());
    let live = trace::op("try_enter()", || drain.try_enter().unwrap());
    let leaving = spawn(move || trace::op("leave()", || drop(live)));
    trace::op_with("begin()", || drain.begin(), |live| *live);
    trace::op("wait_drained()", || drain.wait_drained());
    assert_eq!(drain.live(), 0, "drain returned with live connections");
    leaving.join().unwrap();
}
// ANCHOR_END: drain_one_leaving

// ANCHOR: drain_two_leaving
/// Two live connections leave on their own threads while main drains.
pub fn drain_two_leaving<D: Drain + Default>() {
    let drain = Arc::new(D::default());
    let enter = || trace::op("try_enter()", || drain.try_enter().unwrap());
    let guards = [enter(), enter()];
    let leaving: Vec<_> = guards
        .into_iter()
        .map(|g| spawn(move || trace::op("leave()", || drop(g))))
        .collect();
    trace::op_with("begin()", || drain.begin(), |live| *live);
    trace::op("wait_drained()", || drain.wait_drained());
    let live = trace::op_with("live()", || drain.live(), |live| *live);
    assert_eq!(live, 0, "drain returned with live connections");
    for t in leaving {
        t.join().unwrap();
    }
}
// ANCHOR_END: drain_two_leaving

// ANCHOR: every_connection_woken
/// `N` connections (two for loom, four for Shuttle) register and block reading
/// their (in-memory) socket; main closes the registry and wakes every waker it
/// got back — the server's own shutdown step. A connection refused by a closed
/// registry knows shutdown has begun and leaves at once. All must finish.
pub fn every_connection_woken<R: Registry<PipeWaker<Model>> + Default, const N: u64>() {
    let registry = Arc::new(R::default());
    let connections: Vec<_> = (1..=N)
        .map(|id| {
            let registry = registry.clone();
            spawn(move || {
                // The client end stays open and silent: only a wake-up ends the read.
                // When loom reports a deadlock it unwinds the blocked threads,
                // and any destructor touching a loom lock during that unwind
                // aborts the test binary. So nothing here drops implicitly:
                // `ManuallyDrop` for the pipe ends, `insert`/`remove` rather
                // than the `Registration` guard. (Shuttle leaks the threads of
                // a deadlocked schedule instead; this costs it nothing.)
                let (client, server_end) = pipe::<Model>();
                let (client, mut server_end) =
                    (ManuallyDrop::new(client), ManuallyDrop::new(server_end));
                let waker = server_end.waker();
                let insert = || registry.insert(id, waker).is_ok();
                if trace::op_with(&format!("insert({id})"), insert, |ok| *ok) {
                    let read = || server_end.read(&mut [0; 8]).unwrap();
                    let n = trace::op_with("read()", read, |n| *n); // blocked in `read`
                    assert_eq!(n, 0, "woken reads see EOF");
                    registry.remove(id);
                } // else registered too late: shutdown is already on
                drop(ManuallyDrop::into_inner(server_end));
                drop(ManuallyDrop::into_inner(client));
            })
        })
        .collect();
    let ids =
        |entries: &Vec<(u64, _)>| format!("{:?}", entries.iter().map(|e| e.0).collect::<Vec<_>>());
    for (id, waker) in trace::op_with("close()", || registry.close(), ids) {
        trace::op(&format!("wake({id})"), || waker.wake());
    }
    for c in connections {
        c.join().unwrap();
    }
    assert!(registry.is_empty());
}
// ANCHOR_END: every_connection_woken
