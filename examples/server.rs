//! The server from PROTOCOL.md: greet (seed 000) or echo (seed 001) mode.
//!
//! ```text
//! cargo run --example server -- --mode echo --addr 127.0.0.1:0
//! ```
//! Ctrl-C or SIGTERM shuts it down gracefully and prints the summary.
//! Everything interesting is in the library; this file parses the command
//! line, sets up the console, and waits for a signal.

#[path = "support/console.rs"]
mod console;

use clap::{Parser, ValueEnum};
use many_clients::conn::Mode;
use many_clients::counter::CounterKind;
use many_clients::server::{Engine, Server, ServerConfig};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "A TCP server for many clients at once (PROTOCOL.md)")]
struct Args {
    /// Which seed's protocol to speak.
    #[arg(long, value_enum, default_value_t = ModeArg::Greet)]
    mode: ModeArg,
    /// Where to listen [default: 127.0.0.1:65434 in greet mode, 127.0.0.1:5000 in echo mode].
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Connections served at once; more get `error: server busy`.
    #[arg(long, default_value_t = ServerConfig::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Seconds without a complete message before a connection is cut.
    #[arg(long, default_value = "60", value_parser = seconds)]
    idle_timeout: Duration,
    /// Longest echo line in bytes.
    #[arg(long, default_value_t = 65536)]
    max_line: usize,
    /// Seconds shutdown waits for busy connections before cutting them.
    #[arg(long, default_value = "5", value_parser = seconds)]
    grace: Duration,
    /// How connections are served: a thread each, a pool of worker threads,
    /// or event loops [default: thread].
    #[arg(long, value_enum)]
    engine: Option<EngineArg>,
    /// The pool's size, or the number of event loops [default: one per core].
    /// Given without --engine it means --engine pool.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    workers: Option<u64>,
    /// Which client counter to use.
    #[arg(long, value_enum, default_value_t = CounterArg::Mutex)]
    counter: CounterArg,
    /// Connection-thread stack size in KiB.
    #[arg(long, default_value_t = ServerConfig::DEFAULT_STACK_SIZE / 1024)]
    stack_kib: usize,
    /// Drop the per-client lines (same as RUST_LOG=warn).
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Greet,
    Echo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EngineArg {
    Thread,
    Pool,
    Events,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CounterArg {
    Mutex,
    ParkingLot,
    Atomic,
}

/// PROTOCOL.md: `--workers N` is the pool's size or the number of event
/// loops; given alone it means the pool.
fn engine(engine: Option<EngineArg>, workers: Option<u64>) -> Result<Engine, String> {
    let workers = workers.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    match (engine, workers) {
        (None | Some(EngineArg::Thread), None) => Ok(Engine::Thread),
        (Some(EngineArg::Thread), Some(_)) => {
            Err("--workers does not apply to --engine thread (a thread per connection)".into())
        }
        (None | Some(EngineArg::Pool), workers) => Ok(Engine::Pool {
            workers: workers.unwrap_or_else(Engine::per_core),
        }),
        (Some(EngineArg::Events), loops) => Ok(Engine::Events {
            loops: loops.unwrap_or_else(Engine::per_core),
        }),
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("`{s}` is not a number of seconds"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    console::init(args.quiet);
    let mode = match args.mode {
        ModeArg::Greet => Mode::Greet,
        ModeArg::Echo => Mode::Echo,
    };
    let mut config = ServerConfig::new(mode);
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    config.max_connections = args.max_connections;
    config.idle_timeout = args.idle_timeout;
    config.max_line = args.max_line;
    config.grace = args.grace;
    config.engine = match engine(args.engine, args.workers) {
        Ok(engine) => engine,
        Err(e) => return fail(e),
    };
    config.stack_size = args.stack_kib * 1024;
    config.counter = match args.counter {
        CounterArg::Mutex => CounterKind::Mutex,
        CounterArg::ParkingLot => CounterKind::ParkingLot,
        CounterArg::Atomic => CounterKind::Atomic,
    };
    // ANCHOR: signals
    // Register before binding, so a signal can never arrive unhandled.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => return fail(format!("cannot handle signals: {e}")),
    };
    // ANCHOR_END: signals
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            return fail(format!(
                "cannot listen on {}: {e}",
                args.addr
                    .map_or("the default address".into(), |a| a.to_string())
            ));
        }
    };
    let addr = server.local_addr();
    match mode {
        Mode::Greet => println!("Server is listening on port {}...", addr.port()),
        Mode::Echo => println!("Server listening on {addr}"),
    }
    let handle = match server.start() {
        Ok(handle) => handle,
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    // ANCHOR: stop
    signals.forever().next();
    let live = handle.shutdown();
    println!("Shutting down: waiting for {live} clients...");
    let summary = handle.join();
    if summary.cut > 0 {
        eprintln!(
            "warning: {} connections were still busy after the grace period and were cut",
            summary.cut
        );
    }
    println!(
        "Server stopped: {} clients served, peak {} at once, {} refused",
        summary.served, summary.peak, summary.refused
    );
    // ANCHOR_END: stop
    ExitCode::SUCCESS
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
