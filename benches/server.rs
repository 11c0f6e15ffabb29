//! The server under load, against two baselines measured in the same run with the same load.
//!
//! ```text
//! cargo bench --bench server                  # about three minutes
//! cargo bench --bench server -- --quick       # about a minute
//! SERVER_BENCH_PAIRED=9 cargo bench --bench server   # only the paired rounds, under a minute
//! ```
//!
//! Four servers, each started in this process on `127.0.0.1:0` with logging off (no tracing
//! subscriber is installed, so the server's `info!` lines cost one relaxed load each):
//!
//! | name | what |
//! |---|---|
//! | `thread` | our server, a thread per connection (the default) |
//! | `pool` | our server with `--workers` ([`POOL_WORKERS`] threads started up front) |
//! | `bare` | `baselines/bare.rs`: thirty lines of thread-per-connection, no limits, no drain |
//! | `tokio` | `baselines/tokio_server.rs`: a task per connection on tokio's multi-threaded runtime |
//!
//! Four loads, each run against every server: greet and echo with 20 and with 100 clients. A
//! client is a thread of this process running a lean blocking loop (below), so the load costs the
//! same CPU whichever server answers. One criterion *iteration* is one exchange per client — a
//! whole greet connection (connect, send, read the reply to EOF, close) or one echo line and its
//! reply on a connection opened, and answered once, before the clock starts — so the throughput is in connections/s
//! (greet) or messages/s (echo). Every reply is checked; a wrong one aborts the bench. Before the
//! timed runs each server also passes the library's own load tool, `stress::run`, with every
//! reply and every greet id checked.
//!
//! At the end the bench prints the ratio table (median time per iteration, the same statistic as
//! `median` in criterion's `estimates.json`), then measures the ratios again in paired rounds
//! (`server/rounds.rs`), which decide the targets. `benches/plot.py` draws the plots and
//! the same table from criterion's JSON output.
#![cfg_attr(loom, allow(unused))]

#[cfg(not(loom))]
#[path = "baselines/bare.rs"]
mod bare;
#[cfg(not(loom))]
#[path = "baselines/tokio_server.rs"]
mod tokio_server;

#[cfg(not(loom))]
#[path = "server/rounds.rs"]
mod rounds;

#[cfg(not(loom))]
#[path = "server/stamps.rs"]
mod stamps;

#[cfg(not(loom))]
mod bench {
    use super::rounds::{paired_ratios, probe};
    use super::stamps::Stamps;
    use super::{bare, tokio_server};
    use criterion::{BenchmarkId, Criterion, Throughput};
    use many_clients::client::{self, check_echo_reply, parse_greet_id};
    use many_clients::conn::Mode;
    use many_clients::server::events::Listeners;
    use many_clients::server::{Engine, Server, ServerConfig};
    use many_clients::stress::{self, StressConfig};
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::{Arc, Barrier, Mutex};
    use std::time::{Duration, Instant};

    /// Worker threads of the `pool` server: enough for every echo client of the biggest load to
    /// hold one (an echo connection keeps its worker until it closes), so no client waits for a
    /// worker and the pool is measured, not the queue.
    pub const POOL_WORKERS: usize = 128;
    /// Criterion samples per benchmark (the ratio statistic is the median over them).
    const SAMPLE_SIZE: usize = 20;
    /// Rounds of the paired measurement that decides the targets (3 with `--quick`).
    const PAIRED_ROUNDS: usize = 9;
    /// Every client socket gets this read timeout: a server bug fails the bench, it cannot hang it.
    const TIMEOUT: Duration = Duration::from_secs(10);

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Kind {
        Thread,
        Pool,
        Events,
        /// The events engine with one listening socket shared by its loops, and with one per
        /// loop, whatever the mode's default (`SERVER_BENCH_PROBE=events-per-loop+events-shared,…`;
        /// `gen_tables.py tail`).
        EventsShared,
        EventsPerLoop,
        Bare,
        Tokio,
    }

    impl Kind {
        pub const ALL: [Kind; 5] = [
            Kind::Thread,
            Kind::Pool,
            Kind::Events,
            Kind::Bare,
            Kind::Tokio,
        ];

        pub fn name(self) -> &'static str {
            match self {
                Kind::Thread => "thread",
                Kind::Pool => "pool",
                Kind::Events => "events",
                Kind::EventsShared => "events-shared",
                Kind::EventsPerLoop => "events-per-loop",
                Kind::Bare => "bare",
                Kind::Tokio => "tokio",
            }
        }
    }

    /// A server running in this process; `stop` ends it (or lets it be, for `bare`).
    pub struct Target {
        pub addr: SocketAddr,
        pub stop: Box<dyn FnOnce()>,
        /// Our engines, with `SERVER_BENCH_STAMPS=1`: the server's stamps (`stamps.rs`).
        pub stamps: Option<Arc<Stamps>>,
    }

    pub fn start(kind: Kind, mode: Mode) -> Target {
        let echo = mode == Mode::Echo;
        match kind {
            Kind::Thread | Kind::Pool | Kind::Events | Kind::EventsShared | Kind::EventsPerLoop => {
                let mut config = ServerConfig::new(mode);
                config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
                config.engine = match kind {
                    Kind::Pool => Engine::Pool {
                        workers: POOL_WORKERS,
                    },
                    // `SERVER_BENCH_LOOPS=N`: another number of loops, for the probe.
                    Kind::Events | Kind::EventsShared | Kind::EventsPerLoop => Engine::Events {
                        loops: std::env::var("SERVER_BENCH_LOOPS")
                            .ok()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or_else(Engine::per_core),
                    },
                    _ => Engine::Thread,
                };
                match kind {
                    Kind::EventsShared => config.listeners = Listeners::Shared,
                    Kind::EventsPerLoop => config.listeners = Listeners::PerLoop,
                    _ => {}
                }
                if std::env::var("SERVER_BENCH_DRAIN").is_ok_and(|v| v == "0") {
                    config.drain_timeout = Duration::ZERO;
                }
                let stamps = std::env::var("SERVER_BENCH_STAMPS")
                    .is_ok_and(|v| v == "1")
                    .then(|| Arc::new(Stamps::default()));
                if let Some(stamps) = &stamps {
                    config.observer = Some(stamps.clone());
                }
                let handle = Server::bind(config)
                    .and_then(Server::start)
                    .expect("start the server");
                let addr = handle.local_addr();
                let stop = move || {
                    handle.shutdown();
                    let summary = handle.join();
                    assert_eq!(summary.panicked, 0, "a connection thread panicked");
                    assert_eq!(summary.cut, 0, "connections were cut at shutdown");
                };
                Target {
                    addr,
                    stop: Box::new(stop),
                    stamps,
                }
            }
            Kind::Bare => Target {
                addr: bare::start(echo).expect("start the bare server"),
                stop: Box::new(|| {}),
                stamps: None,
            },
            Kind::Tokio => {
                let server = tokio_server::start(echo).expect("start the tokio server");
                Target {
                    addr: server.addr,
                    stop: Box::new(move || drop(server)),
                    stamps: None,
                }
            }
        }
    }

    /// The library's load tool with every check on: the server must be right before it is timed.
    fn validate(addr: SocketAddr, mode: Mode, kind: Kind) {
        let mode = match mode {
            Mode::Greet => client::Mode::Greet,
            Mode::Echo => client::Mode::Echo,
        };
        let config = StressConfig {
            clients: 100,
            messages: 3,
            concurrency: 20,
            timeout: TIMEOUT,
            ..StressConfig::new(addr, mode)
        };
        let report = stress::run(&config, &|_| {});
        let failures: Vec<_> = report.failures().take(3).collect();
        assert!(
            report.all_ok(),
            "{} server fails the stress check: {failures:?}",
            kind.name()
        );
    }

    /// One greet connection: connect, send, read the reply until the server closes, check it;
    /// when each part ended, and the server's stamps if it keeps them.
    fn greet_once(addr: SocketAddr, reply: &mut Vec<u8>, stamps: Option<&Stamps>) -> Latency {
        let began = Instant::now();
        let mut stream = TcpStream::connect(addr).expect("connect");
        let connected = Instant::now();
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        stream.write_all(b"Hello, Server!").expect("send");
        reply.clear();
        stream.read_to_end(reply).expect("read the greet reply");
        let done = Instant::now();
        let text = std::str::from_utf8(reply).unwrap_or("<not UTF-8>");
        assert!(parse_greet_id(text).is_some(), "wrong greet reply {text:?}");
        let local = stream.local_addr().expect("local address");
        Latency {
            began,
            connected,
            done,
            server: stamps.and_then(|s| s.take(local)),
        }
    }

    /// An echo client: its connection, its line and a buffer for the reply.
    struct Echo {
        out: TcpStream,
        replies: BufReader<TcpStream>,
        line: String,
        reply: String,
    }

    impl Echo {
        fn connect(addr: SocketAddr, index: usize) -> Echo {
            let out = TcpStream::connect(addr).expect("connect");
            out.set_nodelay(true).expect("nodelay");
            out.set_read_timeout(Some(TIMEOUT)).expect("timeout");
            out.set_write_timeout(Some(TIMEOUT)).expect("timeout");
            let replies = BufReader::new(out.try_clone().expect("clone"));
            Echo {
                out,
                replies,
                line: format!("client {index} says hello\n"),
                reply: String::new(),
            }
        }

        fn exchange(&mut self) {
            self.out.write_all(self.line.as_bytes()).expect("send");
            self.reply.clear();
            self.replies.read_line(&mut self.reply).expect("read");
            if let Err(e) = check_echo_reply(&self.reply, &self.line) {
                panic!("wrong echo reply: {e}");
            }
        }
    }

    /// `clients` client threads, each doing `iters` exchanges; the wall time from the moment all
    /// are connected (echo) or started (greet) to the moment the last one is done.
    pub fn load(addr: SocketAddr, mode: Mode, clients: usize, iters: u64) -> Duration {
        load_timed(addr, mode, clients, iters, None).0
    }

    /// One greet connection's times: it began to connect, `connect` returned (the kernel had
    /// the connection in the listener's backlog), the reply was read to EOF; and, on our
    /// engines with `SERVER_BENCH_STAMPS=1`, the server's accept and reply (`stamps.rs`).
    #[derive(Clone, Copy, Debug)]
    pub struct Latency {
        pub began: Instant,
        pub connected: Instant,
        pub done: Instant,
        pub server: Option<(Instant, Instant)>,
    }

    impl Latency {
        pub fn total(&self) -> Duration {
            self.done - self.began
        }
    }

    /// [`load`], and for greet the latency of every connection (from starting to connect to
    /// the reply read to EOF), for the p99 target.
    pub fn load_timed(
        addr: SocketAddr,
        mode: Mode,
        clients: usize,
        iters: u64,
        stamps: Option<&Stamps>,
    ) -> (Duration, Vec<Latency>) {
        let ready = Barrier::new(clients + 1);
        let done = Barrier::new(clients + 1);
        let latencies = Mutex::new(Vec::new());
        let wall = std::thread::scope(|scope| {
            for index in 0..clients {
                let (ready, done, latencies) = (&ready, &done, &latencies);
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn_scoped(scope, move || match mode {
                        Mode::Greet => {
                            let mut reply = Vec::with_capacity(128);
                            let mut mine = Vec::with_capacity(iters as usize);
                            ready.wait();
                            for _ in 0..iters {
                                mine.push(greet_once(addr, &mut reply, stamps));
                            }
                            done.wait();
                            let mut all = latencies.lock().unwrap_or_else(|e| e.into_inner());
                            all.extend(mine);
                        }
                        Mode::Echo => {
                            let mut client = Echo::connect(addr, index);
                            // One exchange before the clock starts: `connect` returns when the
                            // kernel has the connection, before the server has accepted it and
                            // started serving it, and that start-up is not what echo measures.
                            client.exchange();
                            ready.wait();
                            for _ in 0..iters {
                                client.exchange();
                            }
                            done.wait();
                        }
                    })
                    .expect("spawn a client thread");
            }
            ready.wait();
            let start = Instant::now();
            done.wait();
            start.elapsed()
        });
        (
            wall,
            latencies.into_inner().unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Every timed batch, per benchmark, for the ratio table: `(iterations, wall time)`.
    type Batches = BTreeMap<(&'static str, usize, Kind), Vec<(u64, Duration)>>;

    /// The four loads: (mode, clients).
    pub const LOADS: [(Mode, usize); 4] = [
        (Mode::Greet, 20),
        (Mode::Greet, 100),
        (Mode::Echo, 20),
        (Mode::Echo, 100),
    ];

    pub fn mode_name(mode: Mode) -> &'static str {
        match mode {
            Mode::Greet => "greet",
            Mode::Echo => "echo",
        }
    }

    fn bench_load(c: &mut Criterion, batches: &Mutex<Batches>, mode: Mode, clients: usize) {
        let mode_name = mode_name(mode);
        let mut group = c.benchmark_group(format!("server-{mode_name}-{clients}"));
        group.throughput(Throughput::Elements(clients as u64));
        for kind in Kind::ALL {
            let target = start(kind, mode);
            validate(target.addr, mode, kind);
            let addr = target.addr;
            group.bench_function(BenchmarkId::from_parameter(kind.name()), |b| {
                b.iter_custom(|iters| {
                    let took = load(addr, mode, clients, iters);
                    let key = (mode_name, clients, kind);
                    let mut batches = batches.lock().unwrap_or_else(|e| e.into_inner());
                    batches.entry(key).or_default().push((iters, took));
                    took
                })
            });
            (target.stop)();
        }
        group.finish();
    }

    /// The median time per iteration over the batches criterion kept as samples (the last
    /// `SAMPLE_SIZE`, or the last two in `--quick` mode), in seconds.
    fn median_secs(runs: &[(u64, Duration)], quick: bool) -> f64 {
        let keep = if quick { 2 } else { SAMPLE_SIZE };
        let mut per_iter: Vec<f64> = runs[runs.len().saturating_sub(keep)..]
            .iter()
            .map(|&(iters, took)| took.as_secs_f64() / iters as f64)
            .collect();
        per_iter.sort_by(f64::total_cmp);
        let n = per_iter.len();
        match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => per_iter[n / 2],
            _ => (per_iter[n / 2 - 1] + per_iter[n / 2]) / 2.0,
        }
    }

    fn print_ratios(batches: &Batches, quick: bool) {
        let rate = |mode: &'static str, clients: usize, kind: Kind| {
            let runs = batches.get(&(mode, clients, kind))?;
            Some(clients as f64 / median_secs(runs, quick))
        };
        println!();
        println!("Throughput (median; greet: connections/s, echo: messages/s) and ratios:");
        println!();
        println!("| load | thread | pool | events | bare | tokio |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (mode, clients) in LOADS {
            let mode = mode_name(mode);
            let [Some(t), Some(p), Some(e), Some(b), Some(k)] =
                Kind::ALL.map(|kind| rate(mode, clients, kind))
            else {
                continue; // filtered out on the command line
            };
            println!("| {mode} {clients} | {t:.0} | {p:.0} | {e:.0} | {b:.0} | {k:.0} |");
        }
        println!();
        println!("| load | thread/bare | pool/tokio | events/tokio | thread/tokio |");
        println!("|---|---:|---:|---:|---:|");
        for (mode, clients) in LOADS {
            let mode = mode_name(mode);
            let [Some(t), Some(p), Some(e), Some(b), Some(k)] =
                Kind::ALL.map(|kind| rate(mode, clients, kind))
            else {
                continue;
            };
            let (tb, pk, ek, tk) = (t / b, p / k, e / k, t / k);
            println!("| {mode} {clients} | {tb:.2} | {pk:.2} | {ek:.2} | {tk:.2} |");
        }
    }

    pub fn run() {
        if let Ok(spec) = std::env::var("SERVER_BENCH_PROBE") {
            probe(&spec);
            return;
        }
        if let Ok(rounds) = std::env::var("SERVER_BENCH_PAIRED") {
            // Only the paired rounds (and the targets), without criterion: quicker, for A/B runs.
            let rounds = rounds
                .parse()
                .expect("SERVER_BENCH_PAIRED=ROUNDS, a number");
            print_verdicts(paired_ratios(rounds));
            return;
        }
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .sample_size(SAMPLE_SIZE)
            .configure_from_args();
        let quick = std::env::args().any(|a| a == "--quick");
        let batches = Mutex::new(Batches::new());
        for (mode, clients) in LOADS {
            bench_load(&mut c, &batches, mode, clients);
        }
        c.final_summary();
        print_ratios(
            &batches.into_inner().unwrap_or_else(|e| e.into_inner()),
            quick,
        );
        print_verdicts(paired_ratios(if quick { 3 } else { PAIRED_ROUNDS }));
    }

    fn print_verdicts(verdicts: Vec<(String, f64)>) {
        println!();
        for (target, ratio) in verdicts {
            let verdict = if ratio >= 1.0 { "met" } else { "MISSED" };
            println!("target {target}: {ratio:.2}x {verdict}");
        }
    }
}

fn main() {
    #[cfg(not(loom))]
    bench::run();
}
