//! Loom models of the connection limit: `try_acquire` and blocking `acquire`
//! racing, `close` waking a blocked acquirer — and the check-then-act limit,
//! which must be caught letting too many in.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_limit -- --nocapture`
#![cfg(loom)]

#[path = "support/loom_check.rs"]
mod loom_check;

use loom_check::thread;
use many_clients::limit::buggy::CheckThenActLimit;
use many_clients::limit::{Limit, Limiter};
use many_clients::sync::{Arc, AtomicU64, Backend, Model, Ordering, trace};

/// The holder count is a witness kept apart from the limit's own count. It
/// must be a model atomic: loom only switches threads at operations it can
/// see, so an invisible witness could never observe two holders at once.
/// (The backend's, so its steps are in the trace too.)
type Witness = <Model as Backend>::AtomicU64;

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
fn never_exceeded<L: Limiter>(make: fn(usize) -> L) {
    let limit = Arc::new(make(1));
    let holders = Arc::new(Witness::new(0));
    let contender = |blocking: bool| {
        let (limit, holders) = (limit.clone(), holders.clone());
        thread::spawn(move || hold(&limit, &holders, blocking))
    };
    let t1 = contender(false);
    let t2 = contender(true);
    hold(&limit, &holders, false);
    t1.join().unwrap();
    t2.join().unwrap();
    assert_eq!(limit.in_use(), 0, "a slot leaked");
}

#[test]
fn limit_never_exceeded_with_try_and_blocking_acquire() {
    loom_check::explore("limit: try/try/blocking, max 1", None, || {
        never_exceeded(Limit::<Model>::new)
    });
}

#[test]
fn close_wakes_a_blocked_acquire() {
    loom_check::explore("limit: close vs blocked acquire", None, || {
        let limit = Arc::new(Limit::<Model>::new(1));
        let held = limit.try_acquire().expect("free at start");
        let l = limit.clone();
        let waiter = thread::spawn(move || l.acquire().is_some());
        limit.close();
        // Whether the waiter got the slot depends on the interleaving; that
        // it returns at all (no lost wake-up) is what loom checks here.
        drop(held);
        let _got_it = waiter.join().unwrap();
        assert_eq!(limit.in_use(), 0);
    });
}

// ANCHOR: check_then_act_caught
/// BUGGY VARIANT: check-then-act lets two holders in at max 1.
#[test]
fn check_then_act_overshoot_is_caught() {
    let failure = loom_check::expect_bug("check-then-act limit, max 1", None, || {
        never_exceeded(CheckThenActLimit::<Model>::new)
    });
    assert!(
        failure.message.contains("limit exceeded"),
        "unexpected failure: {failure:?}"
    );
    loom_check::check_against_book("trace-check-then-act.txt", &failure.trace);
}
// ANCHOR_END: check_then_act_caught
