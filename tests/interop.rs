#![cfg(not(any(loom, shuttle)))]
//! Our client against the seeds' own Python servers.
//!
//! `tests/interop/seed000_server.py` and `seed001_server.py` are the seeds' server programs,
//! copied verbatim. Each test rewrites the hard-coded port to a free loopback port, writes the
//! script to a temporary file, starts it with `python3 -u` (unbuffered, so its console lines
//! arrive as they are printed), waits for its listening line, and talks to it through the library.
//! A guard kills the Python process and removes the file even when an assertion fails.
//!
//! Without `python3` on the PATH the tests print why and pass without checking anything.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use many_clients::client::{self, DEFAULT_MESSAGE, EchoClient, Mode, check_echo_reply};
use many_clients::stress::{self, StressConfig};

const SEED000: &str = include_str!("interop/seed000_server.py");
const SEED001: &str = include_str!("interop/seed001_server.py");
/// How long a Python server may take to print its listening line.
const START_LIMIT: Duration = Duration::from_secs(10);
/// The time each exchange is allowed.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A running seed server; dropping it kills the process and removes the script.
struct SeedServer {
    child: Child,
    script: PathBuf,
    addr: SocketAddr,
    /// The server's stdout, line by line, drained by a thread so the pipe never fills up.
    stdout: Receiver<String>,
}

impl Drop for SeedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.script);
    }
}

impl SeedServer {
    /// Starts `script` after `rewrite` has put a free port into it; `None` without python3.
    /// A free port can be taken by someone else between our probe and Python's bind, so a start
    /// that fails is retried on a new port a few times.
    fn start(name: &str, script: &str, rewrite: impl Fn(&str, u16) -> String) -> Option<Self> {
        if Command::new("python3").arg("--version").output().is_err() {
            eprintln!("skipped: python3 is not installed, so the seed servers cannot run");
            return None;
        }
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let text = rewrite(script, port);
            assert!(
                text.contains(&port.to_string()),
                "the port rewrite did not apply"
            );
            let path = std::env::temp_dir().join(format!(
                "many-clients-{name}-{}-{port}.py",
                std::process::id()
            ));
            std::fs::write(&path, text).unwrap();
            match Self::spawn(path, port) {
                Ok(server) => return Some(server),
                Err(why) => failures.push(why),
            }
        }
        panic!("the {name} server did not start:\n{}", failures.join("\n"));
    }

    fn spawn(script: PathBuf, port: u16) -> Result<Self, String> {
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Keep draining after the test stops listening, until the process dies.
                let _ = tx.send(line);
            }
        });
        // Stderr is only read if the start fails (a traceback such as "Address already in use").
        let (err_tx, err_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let server = SeedServer {
            child,
            script,
            addr,
            stdout: rx,
        };
        match server.wait_for_line(|line| line.contains("istening")) {
            Ok(_) => Ok(server),
            Err(why) => {
                drop(server); // kills Python, which ends the stderr thread's read
                let stderr = err_rx
                    .recv_timeout(Duration::from_secs(2))
                    .unwrap_or_default();
                Err(format!("{why}; stderr: {stderr}"))
            }
        }
    }

    /// Waits (bounded by `START_LIMIT`) for a stdout line matching `wanted`.
    fn wait_for_line(&self, wanted: impl Fn(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + START_LIMIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout) => return Err(format!("no such line in {seen:?}")),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("the server exited after printing {seen:?}"));
                }
            }
        }
    }
}

fn seed000() -> Option<SeedServer> {
    // The port appears in `bind` and in the listening line; `localhost` becomes the loopback
    // address itself so the test never depends on name resolution.
    SeedServer::start("seed000", SEED000, |text, port| {
        text.replace("65434", &port.to_string())
            .replace("'localhost'", "'127.0.0.1'")
    })
}

fn seed001() -> Option<SeedServer> {
    SeedServer::start("seed001", SEED001, |text, port| {
        text.replace("PORT = 5000", &format!("PORT = {port}"))
    })
}

#[test]
fn seed000_server_greets_our_client() {
    let Some(server) = seed000() else { return };
    let reply = client::greet(server.addr, DEFAULT_MESSAGE, TIMEOUT).unwrap();
    let id = client::parse_greet_id(&reply).unwrap_or_else(|| panic!("wrong reply {reply:?}"));
    // Our message arrived as the seed's client sends it: no newline, nothing else.
    let says = format!("Client {id} says: {DEFAULT_MESSAGE}");
    server.wait_for_line(|line| line == says).unwrap();

    let reply = client::greet(server.addr, "second", TIMEOUT).unwrap();
    assert_eq!(client::parse_greet_id(&reply), Some(id + 1));
}

#[test]
fn seed000_server_passes_our_stress_run() {
    let Some(server) = seed000() else { return };
    let mut config = StressConfig::new(server.addr, Mode::Greet);
    config.messages = 2;
    // The seed calls `listen(5)`. When more connections arrive at once than that backlog holds,
    // Linux drops them and the clients retry after exponential back-off (1 s, 3 s, 7 s, ...), so
    // a burst of 20 is slow and flaky against it. Five at a time fits the backlog.
    config.concurrency = 5;
    config.timeout = TIMEOUT;
    config.deadline = Some(Duration::from_secs(30));
    let report = stress::run(&config, &|_| {});
    let failures: Vec<_> = report.failures().collect();
    assert!(report.all_ok(), "{failures:?}");
    assert_eq!(report.ids_unique, Some(true));
    assert_eq!((report.connections(), report.replies()), (40, 40));
    // This server saw no other client, so the ids are exactly 1..=40.
    let ids: BTreeSet<u64> = report
        .outcomes
        .iter()
        .flat_map(|o| o.ids.iter().copied())
        .collect();
    assert_eq!(ids, (1..=40).collect());
}

#[test]
fn seed001_server_echoes_our_lines() {
    let Some(server) = seed001() else { return };
    let mut conn = EchoClient::connect(server.addr, TIMEOUT).unwrap();
    let port = conn.stream().local_addr().unwrap().port();
    let connected = format!("[+] Connected: ('127.0.0.1', {port})");
    server.wait_for_line(|line| line == connected).unwrap();
    for message in [DEFAULT_MESSAGE, "  padded\t", "", "ünïcödé ✓"] {
        let reply = conn.exchange(message).unwrap();
        check_echo_reply(&reply, message).unwrap_or_else(|e| panic!("{message:?}: {e}"));
    }
    conn.stream().shutdown(std::net::Shutdown::Write).unwrap();
    let disconnected = format!("[-] Disconnected: ('127.0.0.1', {port})");
    server.wait_for_line(|line| line == disconnected).unwrap();
}

#[test]
fn seed001_server_passes_our_stress_run() {
    let Some(server) = seed001() else { return };
    let mut config = StressConfig::new(server.addr, Mode::Echo);
    config.messages = 5;
    config.timeout = TIMEOUT;
    config.deadline = Some(Duration::from_secs(30));
    let report = stress::run(&config, &|_| {});
    let failures: Vec<_> = report.failures().collect();
    assert!(report.all_ok(), "{failures:?}");
    assert_eq!(report.ids_unique, None);
    assert_eq!(
        (report.clients(), report.connections(), report.replies()),
        (20, 20, 100)
    );
}
