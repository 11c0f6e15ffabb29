//! The newcomer's first command: the seeds' whole scenario in one process.
//!
//! ```text
//! cargo run --example demo                      # both sides' console lines
//! cargo run --example demo -- --timeline        # plus a picture of who ran when
//! cargo run --example demo -- --svg run.svg     # the same picture as SVG
//! ```
//! It starts a greet server (seed 000) and an echo server (seed 001) on free
//! loopback ports, runs greet and echo clients against them at once — one
//! echo client is turned away at the connection limit and one is still
//! connected when the servers shut down — then stops both gracefully.

#[path = "support/console.rs"]
mod console;

use clap::Parser;
use many_clients::client::{self, EchoClient};
use many_clients::conn::Mode;
use many_clients::server::{Engine, Observer, Server, ServerConfig, ServerHandle, Summary};
use many_clients::timeline::Timeline;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(about = "Run a greet server, an echo server and their clients in one process")]
struct Args {
    /// Draw a text timeline of every connection at the end.
    #[arg(long)]
    timeline: bool,
    /// Write the timeline as an SVG image to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// How both servers serve their connections (PROTOCOL.md's `--engine`).
    #[arg(long, value_enum, default_value_t = EngineArg::Thread)]
    engine: EngineArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EngineArg {
    Thread,
    Pool,
    Events,
}

impl EngineArg {
    /// A pool or a set of loops of one thread per core, as the server's default.
    fn engine(self) -> Engine {
        match self {
            EngineArg::Thread => Engine::Thread,
            EngineArg::Pool => Engine::Pool {
                workers: Engine::per_core(),
            },
            EngineArg::Events => Engine::Events {
                loops: Engine::per_core(),
            },
        }
    }
}

fn start(
    mode: Mode,
    engine: Engine,
    max_connections: usize,
    timeline: Option<Arc<Timeline>>,
) -> ServerHandle {
    let mut config = ServerConfig::new(mode);
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.engine = engine;
    config.max_connections = max_connections;
    config.observer = timeline.map(|t| t as Arc<dyn Observer>);
    let server = Server::bind(config).expect("bind a free loopback port");
    let addr = server.local_addr();
    match mode {
        Mode::Greet => println!("Server is listening on port {}...", addr.port()),
        Mode::Echo => println!("Server listening on {addr}"),
    }
    server.start().expect("start the server")
}

fn stop(handle: ServerHandle) -> Summary {
    let live = handle.shutdown();
    println!("Shutting down: waiting for {live} clients...");
    let summary = handle.join();
    println!(
        "Server stopped: {} clients served, peak {} at once, {} refused",
        summary.served, summary.peak, summary.refused
    );
    summary
}

fn replied(result: Result<String, client::ClientError>) {
    match result {
        Ok(reply) => println!("Server replied: {}", reply.trim_end()),
        Err(e) => println!("client error: {e}"),
    }
}

/// Seed 000's clients, five at once.
fn greet_clients(addr: SocketAddr) {
    let clients: Vec<_> = (1..=5)
        .map(|n| {
            thread::spawn(move || {
                replied(client::greet(
                    addr,
                    format!("Hello, Server! (greeter {n})"),
                    TIMEOUT,
                ))
            })
        })
        .collect();
    for c in clients {
        let _ = c.join();
    }
}

/// Seed 001's clients against a server that takes two at a time. Returns the
/// client still connected, for shutdown to reach.
fn echo_clients(addr: SocketAddr) -> Option<EchoClient> {
    let connect = || EchoClient::connect(addr, TIMEOUT).ok();
    let (mut alice, mut bob) = (connect()?, connect()?);
    replied(alice.exchange("Hello from Alice"));
    replied(bob.exchange("  Bob here, with spaces  "));
    // The limit is two, and both are connected: the third is turned away.
    let mut carol = connect()?;
    replied(carol.read_line());
    drop(alice); // frees a slot…
    let mut dave = loop {
        // …once the server has noticed Alice left: retry until it has.
        let mut dave = connect()?;
        match dave.exchange("Dave, after Alice left") {
            Ok(reply) if !client::is_error_line(&reply) => {
                replied(Ok(reply));
                break dave;
            }
            _ => thread::sleep(Duration::from_millis(10)),
        }
    };
    replied(dave.exchange("Dave again"));
    drop(dave);
    Some(bob) // Bob stays, idle, until shutdown tells him to go.
}

fn main() -> ExitCode {
    let args = Args::parse();
    console::init(false);
    // One timeline per server: client ids are per server.
    let record = args.timeline || args.svg.is_some();
    let greet_timeline = record.then(|| Arc::new(Timeline::default()));
    let echo_timeline = record.then(|| Arc::new(Timeline::default()));

    let engine = args.engine.engine();
    let greet = start(
        Mode::Greet,
        engine,
        ServerConfig::DEFAULT_MAX_CONNECTIONS,
        greet_timeline.clone(),
    );
    let echo = start(Mode::Echo, engine, 2, echo_timeline.clone());
    let (greet_addr, echo_addr) = (greet.local_addr(), echo.local_addr());

    let greeters = thread::spawn(move || greet_clients(greet_addr));
    let bob = echo_clients(echo_addr);
    let _ = greeters.join();

    stop(greet);
    // Bob is still connected: the echo server tells him it is going away.
    let bob_hears = bob.map(|mut bob| thread::spawn(move || replied(bob.read_line())));
    stop(echo);
    if let Some(b) = bob_hears {
        let _ = b.join();
    }

    if let (Some(greet), Some(echo)) = (greet_timeline, echo_timeline) {
        if args.timeline {
            println!("\nGreet server, one row per client:");
            print!("{}", greet.render_text(72));
            println!("\nEcho server (limit 2), one row per client:");
            print!("{}", echo.render_text(72));
        }
        if let Some(path) = args.svg {
            // The echo server's run shows the most: the limit and the drain.
            if let Err(e) = std::fs::write(&path, echo.render_svg()) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
