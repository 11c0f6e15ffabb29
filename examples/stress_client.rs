//! Seed 001's `stress_client.py`, grown up: many clients, every reply checked.
//!
//! ```text
//! cargo run --release --example stress_client -- --clients 1000 --concurrency 50
//! cargo run --release --example stress_client -- --mode echo --clients 100 --messages 10 --json
//! ```
//!
//! The run loop, the id check and the report live in `many_clients::stress`; this file reads the
//! command line, shows progress, turns latencies into percentiles and prints the summary. The last
//! stdout line is the summary (or one JSON object with `--json`); failures are listed on stderr.
//! Exit code 0 only if every client and every reply was right.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use many_clients::client::{self, Mode, parse_secs};
use many_clients::stress::{self, Latency, StressConfig, StressReport};

/// How many failed clients are listed on stderr before the rest are only counted.
const SHOWN_FAILURES: usize = 10;

#[derive(Parser)]
#[command(
    name = "stress_client",
    about = "Load a greet or echo server with many clients and check every reply"
)]
struct Cli {
    /// Server address [default: 127.0.0.1:65434 in greet mode, 127.0.0.1:5000 in echo mode]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Protocol: greet (a connection per message) or echo (one connection, a line per message)
    #[arg(long, value_name = "greet|echo", default_value = "greet")]
    mode: Mode,
    /// Number of clients
    #[arg(long, value_name = "N", default_value = "20", value_parser = positive)]
    clients: usize,
    /// Messages per client
    #[arg(long, value_name = "M", default_value = "1", value_parser = positive)]
    messages: usize,
    /// Clients in flight at once [default: N]
    #[arg(long, value_name = "C", value_parser = positive)]
    concurrency: Option<usize>,
    /// Seconds allowed for each message's exchange (fractions allowed)
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    timeout: Duration,
    /// Stop the run after this many seconds; clients not started by then fail
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    deadline: Option<Duration>,
    /// Print the summary as one JSON object instead
    #[arg(long)]
    json: bool,
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number above 0")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let addr = match client::resolve(cli.addr.as_deref().unwrap_or(cli.mode.default_addr())) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("stress_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = StressConfig {
        addr,
        mode: cli.mode,
        clients: cli.clients,
        messages: cli.messages,
        concurrency: cli.concurrency.unwrap_or(cli.clients),
        timeout: cli.timeout,
        deadline: cli.deadline,
    };

    let progress = Progress::new(cli.clients, !cli.json && std::io::stderr().is_terminal());
    let report = stress::run(&config, &|_| progress.client_done());
    progress.finish();

    let shown = report.failures().take(SHOWN_FAILURES);
    for (index, reason) in shown {
        eprintln!("client {index} failed: {reason}");
    }
    if report.failed() > SHOWN_FAILURES {
        eprintln!(
            "... and {} more failed clients",
            report.failed() - SHOWN_FAILURES
        );
    }
    let latency = percentiles(&report);
    if cli.json {
        println!("{}", report.json_line(&latency));
    } else {
        // The whole histogram's shape in one line; the summary (the last line) keeps the
        // protocol's p50 and p99.
        println!(
            "latency over {} messages: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            report.replies(),
            latency.p50_ms,
            latency.p90_ms,
            latency.p99_ms,
            latency.max_ms
        );
        println!("{}", report.summary_line(&latency));
    }
    if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// p50/p90/p99/max in milliseconds. The histogram covers 1 µs to one hour with 3 significant
/// digits: fixed memory however many messages there were, and finer than any latency needs.
fn percentiles(report: &StressReport) -> Latency {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .expect("the bounds and the precision are valid constants");
    for latency in report.latencies() {
        // Whole microseconds, clamped into the histogram's range.
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        histogram.saturating_record(micros);
    }
    if histogram.is_empty() {
        return Latency::default();
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    Latency {
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p90_ms: ms(histogram.value_at_quantile(0.90)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
    }
}

/// A progress bar on stderr, only for interactive runs that last more than a second: a short run
/// would only flicker, and a bar must never reach a pipe or the JSON output.
struct Progress {
    enabled: bool,
    total: u64,
    started: Instant,
    done: AtomicU64,
    bar: OnceLock<ProgressBar>,
}

impl Progress {
    fn new(total: usize, enabled: bool) -> Self {
        let total = total as u64;
        Progress {
            enabled,
            total,
            started: Instant::now(),
            done: AtomicU64::new(0),
            bar: OnceLock::new(),
        }
    }

    /// Called from the worker threads as each client ends.
    fn client_done(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.enabled
            || (self.bar.get().is_none() && self.started.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        let bar = self.bar.get_or_init(|| {
            let style = ProgressStyle::with_template("{bar:40} {pos}/{len} clients, {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(self.total)
                .with_style(style)
                .with_elapsed(self.started.elapsed())
        });
        // Threads may report out of order; the bar only ever moves forward.
        if done > bar.position() {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}
