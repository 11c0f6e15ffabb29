//! Resident memory per idle connection: 5,000 clients connect and say nothing, and we read how
//! much the process's `VmRSS` (from `/proc/self/status`) grew, divided by 5,000.
//!
//! ```text
//! cargo bench --bench idle_memory
//! IDLE_CLIENTS=1000 cargo bench --bench idle_memory     # a smaller crowd
//! IDLE_SMAPS=1 IDLE_MEMORY_CASE=thread-greet cargo bench --bench idle_memory   # one case, and
//!                                                   # where its memory is (/proc/self/smaps)
//! ```
//!
//! Each server and mode is measured in a fresh child process (this same binary, re-run with
//! `IDLE_MEMORY_CASE` set), so one measurement's freed-but-cached memory cannot hide in the next
//! one's baseline. The clients live in the same process as the server; on the client side an idle
//! connection is one file descriptor and four bytes of `Vec`, so the delta is the server's. Kernel
//! socket buffers are not in `VmRSS` (an idle connection has none queued anyway).
//!
//! Needs two file descriptors per client: the soft limit is raised to the hard limit if needed,
//! and the measurement is skipped, saying why, if that is not enough or the OS refuses threads.
#![cfg_attr(loom, allow(unused))]

#[cfg(not(loom))]
#[path = "baselines/bare.rs"]
mod bare;
#[cfg(not(loom))]
#[path = "support/process.rs"]
mod process;
#[cfg(not(loom))]
#[path = "baselines/tokio_server.rs"]
mod tokio_server;

#[cfg(not(loom))]
mod measure {
    use super::process::{raise_fd_limit, status};
    use super::{bare, tokio_server};
    use many_clients::client::parse_greet_id;
    use many_clients::conn::Mode;
    use many_clients::server::{Engine, Server, ServerConfig};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::process::Command;
    use std::time::{Duration, Instant};

    const CASE_VAR: &str = "IDLE_MEMORY_CASE";
    const SERVERS: [&str; 4] = ["thread", "events", "bare", "tokio"];
    const MODES: [&str; 2] = ["greet", "echo"];

    /// One round trip on a fresh connection. Connections are accepted in order, so once this one
    /// is answered every earlier one has been accepted.
    fn probe(addr: SocketAddr, mode: Mode) {
        let mut stream = TcpStream::connect(addr).expect("probe connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        match mode {
            Mode::Greet => {
                stream.write_all(b"probe").expect("probe send");
                let mut reply = String::new();
                stream.read_to_string(&mut reply).expect("probe reply");
                assert!(parse_greet_id(&reply).is_some(), "probe got {reply:?}");
            }
            Mode::Echo => {
                stream.write_all(b"probe\n").expect("probe send");
                let mut reply = String::new();
                BufReader::new(stream)
                    .read_line(&mut reply)
                    .expect("probe reply");
                assert!(reply.contains("Server got 'probe'"), "probe got {reply:?}");
            }
        }
    }

    /// Polls `VmRSS` until it has not moved for a few rounds (the last threads reaching `read`).
    fn settled_rss() -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut last, mut still) = (status("self", "VmRSS:").unwrap_or(0), 0);
        while still < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50)); // sampling interval, not synchronisation
            let now = status("self", "VmRSS:").unwrap_or(0);
            still = if now.abs_diff(last) <= 16 {
                still + 1
            } else {
                0
            };
            last = now;
        }
        last
    }

    /// `IDLE_SMAPS=1`: where the resident memory is, from `/proc/self/smaps`, grouped by mapping
    /// size (thread stacks are thousands of mappings of one size), biggest first, on stderr.
    fn biggest_mappings() {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        let kb = |line: &str| -> u64 {
            let value = line.split_whitespace().nth(1);
            value.and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let mut by_size: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
        let mut size = 0;
        for line in smaps.lines() {
            if line.starts_with("Size:") {
                size = kb(line);
            } else if line.starts_with("Rss:") {
                let entry = by_size.entry(size).or_default();
                entry.0 += 1;
                entry.1 += kb(line);
            }
        }
        let mut groups: Vec<_> = by_size.into_iter().collect();
        groups.sort_by_key(|&(_, (_, rss))| std::cmp::Reverse(rss));
        for (size, (count, rss)) in groups.into_iter().take(8) {
            eprintln!("{count:6} mappings of {size:6} kB: {rss:8} kB resident");
        }
    }

    /// Runs one case in this process and prints `case clients rss_before rss_after threads`.
    fn child(case: &str, clients: usize) {
        let (server, mode) = case.split_once('-').expect("case is SERVER-MODE");
        let mode = if mode == "echo" {
            Mode::Echo
        } else {
            Mode::Greet
        };
        if !raise_fd_limit(2 * clients as u64 + 64) {
            println!(
                "skip {case}: cannot raise the open-file limit to {}",
                2 * clients + 64
            );
            return;
        }
        let mut keep = None;
        let mut tokio = None;
        let addr = match server {
            "thread" | "events" => {
                let mut config = ServerConfig::new(mode);
                config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
                config.max_connections = clients + 16;
                if server == "events" {
                    config.engine = Engine::Events {
                        loops: Engine::per_core(),
                    };
                }
                let handle = Server::bind(config).and_then(Server::start).expect("start");
                let addr = handle.local_addr();
                keep = Some(handle);
                addr
            }
            "bare" => bare::start(mode == Mode::Echo).expect("start bare"),
            _ => {
                let server = tokio_server::start(mode == Mode::Echo).expect("start tokio");
                let addr = server.addr;
                tokio = Some(server);
                addr
            }
        };
        // Warm up: the allocator's arenas and thread caches, the runtime's workers.
        for _ in 0..64 {
            probe(addr, mode);
        }
        let before = settled_rss();
        let threads_before = status("self", "Threads:").unwrap_or(0);
        let mut idle = Vec::with_capacity(clients);
        for _ in 0..clients {
            match TcpStream::connect(addr) {
                Ok(stream) => idle.push(stream),
                Err(e) => {
                    println!("skip {case}: connection {} failed: {e}", idle.len() + 1);
                    return;
                }
            }
        }
        probe(addr, mode);
        if let Some(handle) = &keep {
            let deadline = Instant::now() + Duration::from_secs(30);
            while handle.stats().live < clients && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let after = settled_rss();
        let threads = status("self", "Threads:")
            .unwrap_or(0)
            .saturating_sub(threads_before);
        if std::env::var_os("IDLE_SMAPS").is_some() {
            biggest_mappings();
        }
        println!("{case} {clients} {before} {after} {threads}");
        drop(idle);
        if let Some(handle) = keep {
            handle.shutdown();
            handle.join();
        }
        drop(tokio);
    }

    pub fn run() {
        // `cargo bench` passes `--bench`; `cargo test --benches` does not, and gets a smoke
        // test with a small crowd instead of a minute of measuring.
        let benching = std::env::args().any(|a| a == "--bench");
        let clients: usize = std::env::var("IDLE_CLIENTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(if benching { 5_000 } else { 100 });
        if let Ok(case) = std::env::var(CASE_VAR) {
            child(&case, clients);
            return;
        }
        let exe = std::env::current_exe().expect("own path");
        println!("Resident memory per idle connection, {clients} idle clients (VmRSS delta):");
        println!();
        println!("| server | mode | kB per connection | threads added |");
        println!("|---|---|---:|---:|");
        for server in SERVERS {
            for mode in MODES {
                let case = format!("{server}-{mode}");
                let output = Command::new(&exe)
                    .env(CASE_VAR, &case)
                    .env("IDLE_CLIENTS", clients.to_string())
                    .output();
                let stdout = match output {
                    Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
                    Err(e) => format!("skip {case}: {e}"),
                };
                let line = stdout.lines().last().unwrap_or("skip: no output");
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields[..] {
                    [_, n, before, after, threads] => {
                        let n: f64 = n.parse().unwrap_or(f64::NAN);
                        let before: f64 = before.parse().unwrap_or(f64::NAN);
                        let after: f64 = after.parse().unwrap_or(f64::NAN);
                        let per = (after - before) / n;
                        println!("| {server} | {mode} | {per:.2} | {threads} |");
                    }
                    _ => println!("| {server} | {mode} | {line} | |"),
                }
            }
        }
    }
}

fn main() {
    #[cfg(not(loom))]
    measure::run();
}
