//! Helpers for the tests that talk to a real TCP server (`tests/server_*.rs`), included with
//! `#[path]`: start a server on a free loopback port, open sockets that cannot hang a test, read
//! until the server closes, poll a condition with a deadline, record the server's events, and list
//! the server's own threads by name.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use many_clients::conn::Mode;
use many_clients::server::{
    Engine, Event, LiveStats, Observer, Server, ServerConfig, ServerHandle, Summary,
};

/// The longest any single socket read or write in a test may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a polled condition may take to come true.
pub const POLL_LIMIT: Duration = Duration::from_secs(10);

// The error lines, as the server sends them.
pub const BUSY: &[u8] = b"error: server busy, try again later\n";
pub const SHUTTING_DOWN: &[u8] = b"error: server shutting down\n";
pub const IDLE: &[u8] = b"error: idle timeout\n";
pub const NOT_UTF8: &[u8] = b"error: message is not valid UTF-8\n";

/// A pool of `n` workers, or a thread per connection for `None` (the old `--workers` shape).
pub fn engine(workers: Option<usize>) -> Engine {
    workers.map_or(Engine::Thread, |workers| Engine::Pool { workers })
}

/// The greet reply for client `id`.
pub fn greet_reply(id: u64) -> String {
    format!("Hello Client {id}, server received your message!")
}

/// A running server on `127.0.0.1:0`. Dropping it without [`TestServer::stop`] (a failed
/// assertion) still begins shutdown, so its threads end instead of serving nobody forever.
pub struct TestServer {
    handle: Option<ServerHandle>,
    pub addr: SocketAddr,
}

/// Starts a `mode` server on a free loopback port after `configure` has adjusted its config.
pub fn start(mode: Mode, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let mut config = ServerConfig::new(mode);
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    configure(&mut config);
    let server = Server::bind(config).expect("bind");
    let addr = server.local_addr();
    let handle = server.start().expect("start");
    TestServer {
        handle: Some(handle),
        addr,
    }
}

impl TestServer {
    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("running")
    }

    pub fn stats(&self) -> LiveStats {
        self.handle().stats()
    }

    pub fn shutdown(&self) -> usize {
        self.handle().shutdown()
    }

    /// Waits for the server to stop (after [`TestServer::shutdown`]).
    pub fn join(mut self) -> Summary {
        self.handle.take().expect("running").join()
    }

    /// Shutdown, then join.
    pub fn stop(self) -> Summary {
        self.shutdown();
        self.join()
    }

    /// Polls until no accepted connection is left (all ended, all guards released).
    pub fn wait_idle(&self) -> LiveStats {
        poll_until("the server to have no live connection", || {
            let s = self.stats();
            (s.live == 0 && s.clients.active == 0).then_some(s)
        })
    }
}

impl Drop for TestServer {
    /// Only after a failure: stop the server and give it a few seconds to join, so one failed
    /// test does not leave threads behind to fail the next one's thread check.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            let (done, joined) = std::sync::mpsc::channel();
            thread::spawn(move || done.send(handle.join()));
            let _ = joined.recv_timeout(Duration::from_secs(10));
        }
    }
}

/// A socket to `addr` with `TCP_NODELAY` and read/write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Reads until the server closes. An error (a reset, a timeout) is returned as such, with
/// whatever came before it: tests want exactly "these bytes, then EOF".
pub fn read_to_eof(stream: &mut impl Read) -> Result<Vec<u8>, (io::Error, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err((e, got)),
        }
    }
}

/// Asserts that the rest of the stream is exactly `expected`, then a clean EOF.
pub fn expect_then_eof(stream: &mut impl Read, expected: &[u8]) {
    match read_to_eof(stream) {
        Ok(got) => assert_eq!(
            got.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        ),
        Err((e, got)) => panic!(
            "expected {:?} then EOF, got {:?} then {e}",
            expected.escape_ascii().to_string(),
            got.escape_ascii().to_string()
        ),
    }
}

/// Sends `message` in one write and returns everything the server says until it closes.
pub fn greet_raw(addr: SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(message).unwrap();
    read_to_eof(&mut stream).unwrap_or_else(|(e, got)| panic!("after {got:?}: {e}"))
}

/// An echo connection read line by line.
pub struct Lines {
    pub reader: BufReader<TcpStream>,
}

impl Lines {
    pub fn connect(addr: SocketAddr) -> Self {
        Lines {
            reader: BufReader::new(connect(addr)),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// One line, with its `\n` (an empty string at EOF).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reading a line");
        line
    }

    /// Reads one line and checks it is the echo of `sent`.
    pub fn expect_echo(&mut self, sent: &str) {
        let line = self.line();
        assert!(line.ends_with('\n'), "no newline in {line:?}");
        many_clients::client::check_echo_reply(&line, sent)
            .unwrap_or_else(|e| panic!("echo of {sent:?}: {e}"));
    }

    /// Sends `line` with `\n` and checks its echo.
    pub fn exchange(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
        self.expect_echo(line);
    }

    /// The rest is exactly `expected`, then EOF; then the client closes too.
    pub fn expect_then_eof(mut self, expected: &[u8]) {
        expect_then_eof(&mut self.reader, expected);
    }

    /// The client's half-close: no more lines.
    pub fn finish(&self) {
        self.stream().shutdown(std::net::Shutdown::Write).unwrap();
    }
}

/// Makes closing `stream` send a reset (SO_LINGER 0) instead of a FIN.
pub fn reset_on_close(stream: &TcpStream) {
    socket2::SockRef::from(stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// Polls `check` every few milliseconds until it returns `Some`, or panics after
/// [`POLL_LIMIT`] saying what it waited for.
pub fn poll_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The names of this process's threads that belong to a server (`accept`, `busy`, `client-{id}`,
/// `worker-{i}`), from `/proc/self/task/*/comm`.
pub fn server_threads() -> Vec<String> {
    let mut names = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let Ok(task) = task else { continue };
        // A thread may exit between the listing and the read.
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        let name = name.trim_end().to_owned();
        let ours = name == "accept"
            || name == "busy"
            || name.starts_with("client-")
            || name.starts_with("worker-");
        if ours {
            names.push(name);
        }
    }
    names.sort();
    names
}

/// Asserts that no server thread is left in the process (polling briefly: a joined thread can
/// stay listed for a moment while the kernel reaps it). Only meaningful while no other server
/// runs in this process: hold [`serial`].
pub fn assert_no_server_threads() {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = server_threads();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "server threads left: {left:?}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Serialises the tests of one binary that must not overlap (thread checks).
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An [`Observer`] that records every event and can wait for one.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
    changed: Condvar,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `wanted` holds for the events so far.
    pub fn wait_for(&self, what: &str, wanted: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + POLL_LIMIT;
        let mut events = self.events.lock().unwrap();
        while !wanted(&events) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}: {events:?}");
            events = self.changed.wait_timeout(events, left).unwrap().0;
        }
    }

    /// Messages (greets or lines) the server has read from client `id`.
    pub fn messages_from(events: &[Event], id: u64) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, Event::Message { id: i, .. } if *i == id))
            .count()
    }

    /// The id given to the connection from `peer`.
    pub fn id_of(&self, peer: SocketAddr) -> u64 {
        let what = format!("{peer} to connect");
        self.wait_for(&what, |events| {
            events
                .iter()
                .any(|e| matches!(e, Event::Connected { peer: p, .. } if *p == peer))
        });
        self.events()
            .iter()
            .find_map(|e| match e {
                Event::Connected { id, peer: p } if *p == peer => Some(*id),
                _ => None,
            })
            .unwrap()
    }
}

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        // Never panic inside the server's threads because a test thread panicked.
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.push(event.clone());
        self.changed.notify_all();
    }
}

/// The config value for a recorder: `c.observer = observed(&recorder)`.
pub fn observed(recorder: &Arc<Recorder>) -> Option<Arc<dyn Observer>> {
    Some(recorder.clone() as Arc<dyn Observer>)
}
