//! C10K here: 10,000 clients connected at once, held idle, then each answered — for the thread
//! engine, the events engine and tokio.
//!
//! ```text
//! cargo bench --bench c10k                       # 10,000 clients, about a minute
//! C10K_CLIENTS=2000 cargo bench --bench c10k     # a smaller crowd
//! ```
//!
//! The descriptor limit here is 20,000 per process (soft = hard), so the clients and a server
//! holding 10,000 connections cannot share one process: each server runs in a child process (this
//! same binary, re-run with `C10K_SERVER` set), the clients in this one. All on 127.0.0.1.
//!
//! For each server: the time to open every connection (one `connect` after another; each returns
//! once the kernel has queued it, so a server slow to accept makes later ones wait for room in the
//! backlog), the server's resident memory and threads while it holds them idle (read from
//! `/proc/<pid>/status` once it stops moving, i.e. the server has taken them all), and the time
//! until every client, each sending its greeting at once, has its reply.
#![cfg_attr(loom, allow(unused))]

#[cfg(not(loom))]
#[path = "support/process.rs"]
mod process;
#[cfg(not(loom))]
#[path = "baselines/tokio_server.rs"]
mod tokio_server;

#[cfg(not(loom))]
mod c10k {
    use super::process::{raise_fd_limit, status};
    use super::tokio_server;
    use many_clients::client::parse_greet_id;
    use many_clients::conn::Mode;
    use many_clients::server::{Engine, Server, ServerConfig};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const SERVER_VAR: &str = "C10K_SERVER";
    const SERVERS: [&str; 3] = ["thread", "events", "tokio"];

    /// The child: start `server`, print its port, hold until stdin closes.
    fn serve(server: &str, clients: usize) {
        if !raise_fd_limit(clients as u64 + 256) {
            println!(
                "skip: cannot raise the open-file limit to {}",
                clients + 256
            );
            return;
        }
        // `C10K_MODE=echo`: the same child serving echo (`benches/syscalls.py` counts what each
        // server asks of the kernel in both modes).
        let mode = match std::env::var("C10K_MODE").as_deref() {
            Ok("echo") => Mode::Echo,
            _ => Mode::Greet,
        };
        let mut handle = None;
        let mut tokio = None;
        let addr = match server {
            "tokio" => {
                // `C10K_DRAIN=1`: tokio with PROTOCOL.md's graceful close (`benches/server_cpu.py`).
                let graceful = std::env::var("C10K_DRAIN").is_ok_and(|v| v == "1");
                let echo = mode == Mode::Echo;
                let server = if graceful {
                    tokio_server::start_with(echo, true)
                } else {
                    tokio_server::start(echo)
                }
                .expect("start tokio");
                let addr = server.addr;
                tokio = Some(server);
                addr
            }
            engine => {
                let mut config = ServerConfig::new(mode);
                config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
                config.max_connections = clients + 64;
                // `C10K_DRAIN=0`: no drain, so no graceful close (`benches/server_cpu.py`
                // measures what the protocol's close costs; tokio's baseline has none).
                if std::env::var("C10K_DRAIN").is_ok_and(|v| v == "0") {
                    config.drain_timeout = Duration::ZERO;
                }
                config.engine = if engine == "events" {
                    Engine::Events {
                        loops: Engine::per_core(),
                    }
                } else {
                    Engine::Thread
                };
                let started = Server::bind(config).and_then(Server::start).expect("start");
                let addr = started.local_addr();
                handle = Some(started);
                addr
            }
        };
        println!("port {}", addr.port());
        // Hold until the parent closes our stdin.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        if let Some(handle) = handle {
            handle.shutdown();
            handle.join();
        }
        drop(tokio);
    }

    /// Polls the child's `VmRSS` until it has not moved for a while: it has taken every
    /// connection (a thread engine starts a thread per connection; memory grows until then).
    fn settled(pid: u32) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut last, mut still) = (status(&pid.to_string(), "VmRSS:").unwrap_or(0), 0);
        while still < 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50)); // sampling interval, not synchronisation
            let now = status(&pid.to_string(), "VmRSS:").unwrap_or(0);
            still = if now.abs_diff(last) <= 32 {
                still + 1
            } else {
                0
            };
            last = now;
        }
        last
    }

    struct Row {
        open: Duration,
        /// Connects that took half a second or more: a dropped handshake, retried.
        retried: usize,
        rss_kb: u64,
        threads: u64,
        answer: Duration,
    }

    fn measure(exe: &std::path::Path, server: &str, clients: usize) -> Result<Row, String> {
        let mut child: Child = Command::new(exe)
            .env(SERVER_VAR, server)
            .env("C10K_CLIENTS", clients.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let pid = child.id();
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .map_err(|e| e.to_string())?;
        let Some(port) = first.trim().strip_prefix("port ") else {
            return Err(first.trim().to_string());
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let rss_before = settled(pid);
        let started = Instant::now();
        let mut idle = Vec::with_capacity(clients);
        let mut retried = 0;
        for i in 0..clients {
            let began = Instant::now();
            let stream = TcpStream::connect(addr).map_err(|e| format!("connection {i}: {e}"))?;
            // The kernel answers a connect at once unless the server's accept queue was full and
            // the handshake was dropped; the client then retries after a second.
            if began.elapsed() >= Duration::from_millis(500) {
                retried += 1;
            }
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .map_err(|e| e.to_string())?;
            idle.push(stream);
        }
        // `connect` returns once the kernel has queued the connection; a server that accepts
        // slowly makes later connects wait for room in the backlog, so this is the server's pace.
        let open = started.elapsed();
        let rss = settled(pid);
        let threads = status(&pid.to_string(), "Threads:").unwrap_or(0);
        let started = Instant::now();
        for stream in &mut idle {
            stream
                .write_all(b"Hello, Server!")
                .map_err(|e| e.to_string())?;
        }
        let mut reply = String::new();
        for stream in &mut idle {
            reply.clear();
            stream
                .read_to_string(&mut reply)
                .map_err(|e| e.to_string())?;
            if parse_greet_id(&reply).is_none() {
                return Err(format!("wrong reply {reply:?}"));
            }
        }
        let answer = started.elapsed();
        drop(idle);
        drop(child.stdin.take());
        let _ = child.wait();
        Ok(Row {
            open,
            retried,
            rss_kb: rss.saturating_sub(rss_before),
            threads,
            answer,
        })
    }

    pub fn run() {
        let benching = std::env::args().any(|a| a == "--bench");
        let clients: usize = std::env::var("C10K_CLIENTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(if benching { 10_000 } else { 200 });
        if let Ok(server) = std::env::var(SERVER_VAR) {
            serve(&server, clients);
            return;
        }
        if !raise_fd_limit(clients as u64 + 256) {
            println!(
                "skip: cannot raise the open-file limit to {}",
                clients + 256
            );
            return;
        }
        let exe = std::env::current_exe().expect("own path");
        println!("C10K: {clients} greet clients connected at once, held idle, then each answered");
        println!();
        println!(
            "| server | open all (s) | retried | memory held (MB) | kB per connection | threads \
             | answer all (s) |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for server in SERVERS {
            match measure(&exe, server, clients) {
                Ok(row) => println!(
                    "| {server} | {:.2} | {} | {:.1} | {:.2} | {} | {:.2} |",
                    row.open.as_secs_f64(),
                    row.retried,
                    row.rss_kb as f64 / 1024.0,
                    row.rss_kb as f64 / clients as f64,
                    row.threads,
                    row.answer.as_secs_f64()
                ),
                Err(e) => println!("| {server} | failed: {e} | | | | | |"),
            }
        }
    }
}

fn main() {
    #[cfg(not(loom))]
    c10k::run();
}
