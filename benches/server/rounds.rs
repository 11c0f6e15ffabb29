//! Interleaved rounds for `benches/server.rs`: the probe (`SERVER_BENCH_PROBE`) and the paired
//! ratios that decide the targets. Each round runs the same load once against every server in
//! turn, so a slow stretch of a noisy machine hits every server alike — criterion measures one
//! server after another, and its ratios move with the machine's mood between them.

use super::bench::{Kind, LOADS, Latency, load_timed, mode_name, start};
use many_clients::conn::Mode;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// This process's CPU time (user + system, all threads, ended ones included) and context
/// switches (voluntary + involuntary) so far.
fn usage() -> (Duration, u64) {
    // SAFETY: getrusage only writes the struct we pass; an all-zero rusage is valid.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let switches = usage.ru_nvcsw as u64 + usage.ru_nivcsw as u64;
    (time(usage.ru_utime) + time(usage.ru_stime), switches)
}

/// The probe, for profiling and A/B runs without criterion:
/// `SERVER_BENCH_PROBE=KINDS,MODE,CLIENTS,ITERS,ROUNDS cargo bench --bench server`, e.g.
/// `thread+bare,greet,100,60,3`. Each round runs the load once against each server and
/// prints wall time, CPU time and context switches per exchange (and, for greet, where each
/// connection's time went: `connect`, then the answer). CPU time per exchange
/// (server and clients together) hardly depends on what else the machine is doing, which
/// makes it the steadier number on a busy box.
///
/// `SERVER_BENCH_DRAIN=0` starts our engines with a zero drain timeout: they close
/// right after shutting down writing, as the baselines do. That is *not* PROTOCOL.md's
/// behaviour; it is there to measure what the drain costs (`thread+bare,greet,20,500,3`
/// with and without it).
pub fn probe(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let number = |i: usize| -> u64 {
        let part = parts.get(i).copied().unwrap_or("");
        part.parse()
            .unwrap_or_else(|_| panic!("SERVER_BENCH_PROBE field {i} ({part:?}) is not a number"))
    };
    let mode = if parts.get(1) == Some(&"echo") {
        Mode::Echo
    } else {
        Mode::Greet
    };
    let (clients, iters, rounds) = (number(2) as usize, number(3), number(4));
    let kinds: Vec<Kind> = parts[0]
        .split('+')
        .map(|name| {
            Kind::ALL
                .into_iter()
                .chain([Kind::EventsShared, Kind::EventsPerLoop])
                .find(|k| k.name() == name)
                .unwrap_or_else(|| panic!("SERVER_BENCH_PROBE: no server named {name:?}"))
        })
        .collect();
    let n = (clients as u64 * iters) as f64;
    interleaved(
        &kinds,
        mode,
        clients,
        iters,
        rounds as usize,
        |kind, batch| {
            println!(
                "{:6} wall {:7.2} us  cpu {:7.2} us  switches {:5.2}  rate {:8.0}/s{}",
                kind.name(),
                batch.wall.as_secs_f64() * 1e6 / n,
                batch.cpu.as_secs_f64() * 1e6 / n,
                batch.switches as f64 / n,
                n / batch.wall.as_secs_f64(),
                phases(&batch.latencies)
            );
        },
    );
}

/// One batch of an interleaved run: its wall time, and the process's CPU time and context
/// switches during it.
struct Batch {
    wall: Duration,
    cpu: Duration,
    switches: u64,
    /// Greet: each connection's latency.
    latencies: Vec<Latency>,
}

/// Starts `kinds`, then runs `rounds` rounds; each round runs the load once against every
/// server in turn. A slow stretch of a noisy machine then hits every server alike, which
/// criterion's one-server-after-another order cannot promise.
fn interleaved(
    kinds: &[Kind],
    mode: Mode,
    clients: usize,
    iters: u64,
    rounds: usize,
    mut each: impl FnMut(Kind, Batch),
) {
    let targets: Vec<_> = kinds
        .iter()
        .map(|&kind| (kind, start(kind, mode)))
        .collect();
    for round in 0..rounds {
        // Each round starts with the next server, so none is always first (or always right
        // after the same neighbour, whose ending connections still cost CPU).
        let order = (0..targets.len()).map(|i| &targets[(i + round) % targets.len()]);
        for (kind, target) in order {
            let (cpu, switches) = usage();
            let stamps = target.stamps.as_deref();
            let (wall, latencies) = load_timed(target.addr, mode, clients, iters, stamps);
            let (cpu_after, switches_after) = usage();
            let (cpu, switches) = (cpu_after - cpu, switches_after - switches);
            each(
                *kind,
                Batch {
                    wall,
                    cpu,
                    switches,
                    latencies,
                },
            );
        }
    }
    for (_, target) in targets {
        (target.stop)();
    }
}

/// Greet: where the time went, as p50/p99 in ms of `connect` and of what came after it (the
/// answer, to the reply read to EOF), and of the total. With the server's stamps
/// (`stamps.rs`), the answer split three ways for the slowest 1% of connections: how many ms
/// of it, on average, went to each part. Empty for echo.
fn phases(latencies: &[Latency]) -> String {
    if latencies.is_empty() {
        return String::new();
    }
    let ms = |part: &dyn Fn(&Latency) -> Duration| {
        let samples: Vec<Duration> = latencies.iter().map(part).collect();
        let at = |q| percentile(samples.clone(), q).map_or(0.0, |d| d.as_secs_f64() * 1e3);
        format!("{:.2}/{:.2}", at(0.5), at(0.99))
    };
    let mut line = format!(
        "  p50/p99 ms: connect {}, answer {}, total {}",
        ms(&|l| l.connected - l.began),
        ms(&|l| l.done - l.connected),
        ms(&Latency::total)
    );
    let cut = percentile(latencies.iter().map(Latency::total).collect(), 0.99);
    let slowest: Vec<_> = latencies
        .iter()
        .filter(|l| Some(l.total()) >= cut)
        .filter_map(|l| l.server.map(|(accepted, replied)| (l, accepted, replied)))
        .collect();
    if !slowest.is_empty() {
        let mean = |part: &dyn Fn(&Latency, Instant, Instant) -> Duration| {
            let sum: Duration = slowest.iter().map(|&(l, a, r)| part(l, a, r)).sum();
            sum.as_secs_f64() * 1e3 / slowest.len() as f64
        };
        line += &format!(
            "; slowest 1% ({}): backlog {:.2}, service {:.2}, delivery {:.2}",
            slowest.len(),
            mean(&|l, accepted, _| accepted.saturating_duration_since(l.connected)),
            mean(&|_, accepted, replied| replied - accepted),
            mean(&|l, _, replied| l.done.saturating_duration_since(replied))
        );
    }
    line
}

/// The `q` quantile of `samples` (nearest rank), or `None` if there are none.
fn percentile(mut samples: Vec<Duration>, q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    Some(samples[rank - 1])
}

/// The ratios again, from interleaved rounds: per round, each ratio of two servers' wall
/// times; then the median over the rounds. These decide the targets.
pub fn paired_ratios(rounds: usize) -> Vec<(String, f64)> {
    println!();
    println!(
        "Paired: {rounds} rounds, every server in turn in each; median of the per-round ratios:"
    );
    println!();
    println!("| load | thread/bare | pool/tokio | events/tokio | thread/tokio |");
    println!("|---|---:|---:|---:|---:|");
    let mut verdicts = Vec::new();
    // Printed after the table, which is printed row by row.
    let mut latency = None;
    for (mode, clients) in LOADS {
        // About 4,000 greet connections or 40,000 echo messages per batch.
        let exchanges = if mode == Mode::Greet { 4_000 } else { 40_000 };
        let iters = (exchanges / clients) as u64;
        let mut walls: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
        let mut p99s: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
        interleaved(&Kind::ALL, mode, clients, iters, rounds, |kind, batch| {
            walls
                .entry(kind)
                .or_default()
                .push(batch.wall.as_secs_f64());
            let totals = batch.latencies.iter().map(Latency::total).collect();
            if let Some(p99) = percentile(totals, 0.99) {
                p99s.entry(kind).or_default().push(p99.as_secs_f64());
            }
        });
        // A rate ratio is the inverse ratio of wall times for the same work.
        let ratio = |a: Kind, b: Kind| {
            let mut per_round: Vec<f64> = walls[&b]
                .iter()
                .zip(&walls[&a])
                .map(|(b, a)| b / a)
                .collect();
            per_round.sort_by(f64::total_cmp);
            per_round[per_round.len() / 2]
        };
        let (tb, pk, ek, tk) = (
            ratio(Kind::Thread, Kind::Bare),
            ratio(Kind::Pool, Kind::Tokio),
            ratio(Kind::Events, Kind::Tokio),
            ratio(Kind::Thread, Kind::Tokio),
        );
        let name = mode_name(mode);
        println!("| {name} {clients} | {tb:.2} | {pk:.2} | {ek:.2} | {tk:.2} |");
        verdicts.push((format!("thread >= bare, {name} {clients}"), tb));
        verdicts.push((format!("events >= tokio, {name} {clients}"), ek));
        if mode == Mode::Greet {
            verdicts.push((format!("pool >= tokio, {name} {clients}"), pk));
        }
        if mode == Mode::Echo && clients == 100 {
            verdicts.push((format!("thread >= tokio, {name} {clients}"), tk));
        }
        if mode == Mode::Greet && clients == 100 {
            // Per round, tokio's p99 over ours: at least 1 when ours is no slower.
            let mut per_round: Vec<f64> = p99s[&Kind::Tokio]
                .iter()
                .zip(&p99s[&Kind::Events])
                .map(|(tokio, events)| tokio / events)
                .collect();
            per_round.sort_by(f64::total_cmp);
            let ratio = per_round[per_round.len() / 2];
            let ms = |kind: Kind| {
                let mut v = p99s[&kind].clone();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2] * 1e3
            };
            latency = Some(format!(
                "greet {clients} p99 latency (median over rounds): events {:.2} ms, tokio {:.2} ms",
                ms(Kind::Events),
                ms(Kind::Tokio)
            ));
            verdicts.push((
                format!("events p99 <= tokio p99, {name} {clients} (tokio/events)"),
                ratio,
            ));
        }
    }
    if let Some(line) = latency {
        println!();
        println!("{line}");
    }
    verdicts
}
