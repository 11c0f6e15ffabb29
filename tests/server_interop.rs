#![cfg(not(any(loom, shuttle)))]
//! The seeds' Python clients against OUR server (`tests/interop.rs` does the other direction).
//!
//! `tests/interop/seed000_client.py` is seed 000's `client.py`, copied verbatim;
//! `tests/interop/line_client.py` is seed 001's stress client with its elided parts written out
//! (20 threads, each sends `Hello` as a line and prints the reply). Each test rewrites the
//! hard-coded port in the script text to our server's free port, runs it with `python3`, and
//! checks what it printed, against every engine. Without `python3` on the PATH the tests say so
//! and pass.

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use many_clients::client::check_echo_reply;
use many_clients::conn::Mode;
use many_clients::server::Engine;
use support::{hello, start};

support::engine_tests!(
    seed000_client_is_greeted_by_our_server,
    line_client_gets_an_echo_per_thread_from_our_server,
);

const SEED000_CLIENT: &str = include_str!("interop/seed000_client.py");
const LINE_CLIENT: &str = include_str!("interop/line_client.py");
/// How long one run of a Python client may take.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Runs `script` with `python3`; `None` (with a message) when python3 is not installed.
/// Returns the exit status, stdout and stderr. The process is killed if it overruns.
fn run_python(name: &str, script: &str) -> Option<(ExitStatus, String, String)> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed, so the seeds' clients cannot run");
        return None;
    }
    let path = std::env::temp_dir().join(format!(
        "many-clients-{name}-{}-{:?}.py",
        std::process::id(),
        thread::current().id()
    ));
    std::fs::write(&path, script).unwrap();
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let reader = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&path);
            panic!("{name} ran for more than {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = std::fs::remove_file(&path);
    Some((status, stdout.join().unwrap(), stderr.join().unwrap()))
}

fn seed000_client_is_greeted_by_our_server(engine: Engine) {
    let server = start(Mode::Greet, engine, |_| {});
    let port = server.addr.port().to_string();
    let script = SEED000_CLIENT
        .replace("65434", &port)
        .replace("'localhost'", "'127.0.0.1'");
    assert!(script.contains(&port), "the port rewrite did not apply");
    for id in 1..=3 {
        let Some((status, stdout, stderr)) = run_python("seed000-client", &script) else {
            return;
        };
        assert!(status.success(), "{status}; stderr: {stderr}");
        let hello = String::from_utf8(hello(id)).unwrap();
        assert_eq!(stdout, format!("Server replied: {hello}\n"));
    }
    let stats = server.wait_live(0);
    assert_eq!((stats.clients.served, stats.refused), (3, 0));
    assert_eq!(server.stop().summary.served, 3);
}

fn line_client_gets_an_echo_per_thread_from_our_server(engine: Engine) {
    // 20 clients at once, each leaving after its reply: a pool serves them a few at a time.
    let server = start(Mode::Echo, engine, |_| {});
    let script = LINE_CLIENT.replace("PORT = 5000", &format!("PORT = {}", server.addr.port()));
    assert!(script != LINE_CLIENT, "the port rewrite did not apply");
    let Some((status, stdout, stderr)) = run_python("line-client", &script) else {
        return;
    };
    assert!(status.success(), "{status}; stderr: {stderr}");
    let mut seen = BTreeSet::new();
    for line in stdout.lines() {
        let (client, reply) = line
            .strip_prefix("Client ")
            .and_then(|rest| rest.split_once(": "))
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        check_echo_reply(reply, "Hello").unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(
            seen.insert(client.parse::<u32>().unwrap()),
            "twice: {line:?}"
        );
    }
    assert_eq!(seen, (0..20).collect(), "{stdout}");
    let stats = server.wait_live(0);
    assert_eq!((stats.clients.served, stats.clients.issued), (20, 20));
    assert_eq!(server.stop().summary.served, 20);
}
