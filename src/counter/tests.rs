//! Native tests with real threads. They cannot prove the absence of races —
//! that is loom's job in `tests/loom_counter.rs` — but they check the
//! counters do what they say under real contention and across panics.

use super::*;
use std::thread;

const THREADS: u64 = 4;
const ROUNDS: u64 = 500;

fn hammer(counter: Arc<dyn Counter>) {
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || {
                let mut ids = Vec::new();
                for _ in 0..ROUNDS {
                    let guard = ClientGuard::new(counter.clone());
                    ids.push(guard.id());
                    assert!(counter.stats().is_consistent());
                }
                ids
            })
        })
        .collect();
    let mut ids: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    ids.sort_unstable();
    let expected: Vec<u64> = (1..=THREADS * ROUNDS).collect();
    assert_eq!(ids, expected, "ids must be 1..=n, each once");
    let s = counter.stats();
    assert_eq!(s.active, 0);
    assert_eq!(s.served, THREADS * ROUNDS);
    assert_eq!(s.issued, THREADS * ROUNDS);
    assert!(s.peak >= 1 && s.peak <= THREADS);
}

#[test]
fn every_sound_kind_hands_out_dense_unique_ids() {
    for kind in [
        CounterKind::Mutex,
        CounterKind::ParkingLot,
        CounterKind::Atomic,
    ] {
        hammer(kind.build::<Std>());
    }
}

#[test]
fn guard_counts_peak_and_release() {
    let counter: Arc<dyn Counter> = Arc::new(AtomicCounter::<Std>::new());
    let a = ClientGuard::new(counter.clone());
    let b = ClientGuard::new(counter.clone());
    assert_eq!((a.id(), b.id()), (1, 2));
    drop(a);
    let c = ClientGuard::new(counter.clone());
    assert_eq!(c.id(), 3, "ids are never reused");
    let s = counter.stats();
    assert_eq!(
        s,
        Stats {
            active: 2,
            peak: 2,
            served: 1,
            issued: 3
        }
    );
}

// ANCHOR: panicking_handler
#[test]
fn a_panicking_handler_still_counts_its_client_gone() {
    let counter: Arc<dyn Counter> = Arc::new(LockedCounter::<Std>::new());
    let c = counter.clone();
    let result = thread::spawn(move || {
        let _guard = ClientGuard::new(c);
        panic!("handler bug");
    })
    .join();
    assert!(result.is_err());
    let s = counter.stats();
    assert_eq!((s.active, s.served), (0, 1));
}
// ANCHOR_END: panicking_handler

// ANCHOR: poisoned
#[test]
fn a_poisoned_std_lock_keeps_counting() {
    let counter = Arc::new(LockedCounter::<Std>::new());
    let c = counter.clone();
    // Panic while holding the counter's own lock: the one way to poison it.
    let result = thread::spawn(move || {
        let _held = c.stats.lock();
        panic!("panic while holding the lock");
    })
    .join();
    assert!(result.is_err());
    assert!(
        counter.stats.is_poisoned(),
        "the std lock really is poisoned"
    );
    let guard = ClientGuard::new(counter.clone());
    assert_eq!(guard.id(), 1);
    drop(guard);
    assert_eq!(
        counter.stats(),
        Stats {
            active: 0,
            peak: 1,
            served: 1,
            issued: 1
        }
    );
}
// ANCHOR_END: poisoned

#[test]
fn parking_lot_has_no_poisoning_to_recover_from() {
    let counter = Arc::new(ParkingLotCounter::new());
    let c = counter.clone();
    let result = thread::spawn(move || {
        let _held = c.stats.lock();
        panic!("panic while holding the lock");
    })
    .join();
    assert!(result.is_err());
    // parking_lot simply unlocks during unwinding.
    assert_eq!(ClientGuard::new(counter.clone()).id(), 1);
}

// ANCHOR: oracle
/// `is_consistent` is the oracle every loom model and the linearizability check use to judge
/// a snapshot taken mid-flight; an oracle that accepts everything would pass them all. So it is
/// shown one snapshot breaking each of its three clauses alone (the other two hold) and must
/// reject each, and snapshots on the edge of each clause, which it must accept.
#[test]
fn is_consistent_rejects_each_broken_invariant_alone() {
    let snapshot = |active, peak, served, issued| Stats {
        active,
        peak,
        served,
        issued,
    };
    let broken = [
        // One client counted twice, active and served: 1 + 3 > 3 ids handed out.
        (snapshot(1, 1, 3, 3), "active + served <= issued"),
        // Two connected now, but the most ever connected at once is one.
        (snapshot(2, 1, 0, 2), "active <= peak"),
        // Three at once, with only two ids ever handed out.
        (snapshot(2, 3, 0, 2), "peak <= issued"),
    ];
    for (stats, clause) in broken {
        assert!(!stats.is_consistent(), "{stats:?} breaks {clause}");
    }
    let sound = [
        Stats::default(),
        // Each clause at equality: active + served = issued and active = peak, then all three.
        snapshot(1, 1, 2, 3),
        snapshot(3, 3, 0, 3),
        // Every clause strict.
        snapshot(1, 2, 1, 3),
    ];
    for stats in sound {
        assert!(stats.is_consistent(), "{stats:?} keeps every clause");
    }
}
// ANCHOR_END: oracle
