//! Loom model of the worker pool (`src/server/pool.rs`): every submitted item
//! is served exactly once, closing lets the workers finish what was queued,
//! and no worker is left waiting — with the pool's real queue on loom's
//! primitives.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_pool -- --nocapture`
#![cfg(loom)]

#[path = "support/loom_check.rs"]
mod loom_check;

use many_clients::server::pool::Pool;
use many_clients::sync::{Arc, Model, Monitor};

// ANCHOR: pool_model
/// Two workers, two items, then `join` (which closes the queue) racing with
/// the workers taking them. Each item is served once; `join` returns only
/// after both were served, and no panic was counted.
fn two_workers_two_items() {
    let served = Arc::new(Monitor::<Vec<u32>, Model>::new(Vec::new()));
    let s = served.clone();
    let pool = Pool::<u32, Model>::start(2, None, move |item| s.lock().push(item)).unwrap();
    let submitter = pool.submitter();
    submitter.submit(1).unwrap();
    submitter.submit(2).unwrap();
    assert_eq!(pool.join(), 0, "no item panicked");
    let mut served = served.lock().clone();
    served.sort();
    assert_eq!(served, [1, 2], "every queued item served exactly once");
    assert_eq!(
        submitter.submit(3),
        Err(3),
        "a joined pool takes no more work"
    );
}
// ANCHOR_END: pool_model

/// Bounded at 4 preemptions: exhaustive is 977,307 interleavings and about
/// 100 s in release here (measured once with `None`), too slow for every
/// `cargo test`; bound 4 is 9,121 and under a second, and covers every
/// order of the two pops, the close and the submits with up to four forced
/// switches — more than any of the pool's races needs (each is between two
/// threads at one lock).
const BOUND: Option<usize> = Some(4);

#[test]
fn every_queued_item_is_served_once_before_join_returns() {
    loom_check::explore(
        "pool: 2 workers, 2 items, join",
        BOUND,
        two_workers_two_items,
    );
}
