//! Connect/disconnect throughput of the three sound client counters, side by side:
//! `LockedCounter<Std>` (the seed's design: one `std::sync::Mutex`), `LockedCounter<ParkingLot>`
//! (the one-line swap) and `AtomicCounter<Std>` (four atomics, no lock), each with 1, 2 and 4
//! threads hammering one shared counter.
//!
//! ```text
//! cargo bench --bench counters                 # the full run
//! cargo bench --bench counters -- --quick      # a few seconds
//! ```
//!
//! One element is one client: `enter` (take an id, count it active, raise the peak) and `leave`
//! (count it served) — what `ClientGuard::new` and the guard's drop call. The guard's own cost, an
//! `Arc` clone and drop, is left out: it is the same for every counter, and with several threads
//! its shared reference count would be a second contended cache line that blurs the comparison. This machine has 2 cores, so 4 threads measure
//! oversubscription (a thread preempted while holding the lock), not more parallelism.
#![cfg_attr(loom, allow(unused))]

#[cfg(not(loom))]
mod bench {
    use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
    use many_clients::counter::{AtomicCounter, ClientGuard, Counter, LockedCounter};
    use many_clients::sync::{Arc, ParkingLot, Std};
    use std::hint::black_box;
    use std::sync::Barrier;
    use std::time::{Duration, Instant};

    /// Clients each thread connects and disconnects per criterion iteration, so one iteration is
    /// long enough (tens of µs) for the thread start-up and the barrier to vanish in the noise.
    const CLIENTS_PER_THREAD: u64 = 1_000;
    const THREADS: [usize; 3] = [1, 2, 4];

    /// `iters` iterations of `CLIENTS_PER_THREAD` clients on each of `threads` threads sharing one
    /// counter; the wall time from the moment all threads are ready to the moment all are done.
    fn hammer<C: Counter + Default>(threads: usize, iters: u64) -> Duration {
        let counter = Arc::new(C::default());
        let ready = Barrier::new(threads + 1);
        let done = Barrier::new(threads + 1);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let counter = counter.clone();
                let (ready, done) = (&ready, &done);
                scope.spawn(move || {
                    ready.wait();
                    for _ in 0..iters * CLIENTS_PER_THREAD {
                        black_box(counter.enter());
                        counter.leave();
                    }
                    done.wait();
                });
            }
            ready.wait();
            let start = Instant::now();
            done.wait();
            start.elapsed()
        })
    }

    fn variant<C: Counter + Default>(c: &mut Criterion, name: &str) {
        let mut group = c.benchmark_group("counter");
        for threads in THREADS {
            let elements = threads as u64 * CLIENTS_PER_THREAD;
            group.throughput(Throughput::Elements(elements));
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| hammer::<C>(threads, iters))
            });
        }
        group.finish();
        // Sanity: a counter that lost an update would not be worth timing.
        let counter = Arc::new(C::default());
        drop(ClientGuard::new(counter.clone()));
        let stats = counter.stats();
        assert_eq!((stats.issued, stats.served, stats.active), (1, 1, 0));
    }

    pub fn counters(c: &mut Criterion) {
        variant::<LockedCounter<Std>>(c, "mutex");
        variant::<LockedCounter<ParkingLot>>(c, "parking_lot");
        variant::<AtomicCounter<Std>>(c, "atomic");
    }

    fn config() -> Criterion {
        Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(30)
    }

    criterion_group! {
        name = benches;
        config = config();
        targets = counters
    }
}

fn main() {
    #[cfg(not(loom))]
    {
        bench::benches();
        criterion::Criterion::default()
            .configure_from_args()
            .final_summary();
    }
}
