//! Shared by the hostile-client suites (`tests/hostile.rs`, `tests/hostile_fds.rs`) through
//! `#[path]`: a server with a watching [`Spy`], well-behaved clients that check every reply while
//! a fault runs ([`Good`]), raw sockets for the hostile side ([`Raw`]), and the end-of-test checks
//! (counters back to zero, `join` within the grace period, no server thread left).
//!
//! Every socket here has read and write timeouts, and every wait polls a condition against a
//! deadline, so a server bug fails a test instead of hanging it.

#![allow(dead_code)]

use many_clients::client::{EchoClient, check_echo_reply, greet, parse_greet_id};
use many_clients::conn::Mode;
use many_clients::server::{
    Event, LiveStats, Observer, Server, ServerConfig, ServerHandle, Summary,
};
use socket2::SockRef;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What any one client wait (connect, send, reply) is allowed.
pub const T: Duration = Duration::from_secs(10);
/// How long a condition may take to come true before the test fails.
pub const SETTLE: Duration = Duration::from_secs(10);
/// How much later than the grace period `join` may return when it had to cut someone.
pub const CUT_SLACK: Duration = Duration::from_millis(750);

pub const BUSY: &[u8] = b"error: server busy, try again later\n";
pub const NOT_UTF8: &[u8] = b"error: message is not valid UTF-8\n";
pub const IDLE: &[u8] = b"error: idle timeout\n";
pub const SHUTTING_DOWN: &[u8] = b"error: server shutting down\n";

/// The answer to a line longer than `limit`.
pub fn too_long(limit: usize) -> Vec<u8> {
    format!("error: line too long (limit {limit} bytes)\n").into_bytes()
}

/// The greet reply for `id`.
pub fn hello(id: u64) -> Vec<u8> {
    format!("Hello Client {id}, server received your message!").into_bytes()
}

/// A lock that a panicking test does not poison for the tests after it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the tests of one binary one at a time: each counts server threads by name and takes
/// many file descriptors, so two at once would see each other's.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    lock(&SERIAL)
}

/// Polls `cond` until it holds or `within` passes; panics with `what` then.
pub fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Bytes for a failure message.
pub fn show(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(300)
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    if bytes.len() > 300 {
        format!("{shown}… ({} bytes)", bytes.len())
    } else {
        shown
    }
}

// ---------------------------------------------------------------------------------------------
// Threads and memory of this process, from /proc.

/// Whether a thread name is one the server gives its threads.
pub fn is_server_thread(name: &str) -> bool {
    name == "accept" || name == "busy" || name.starts_with("client-") || name.starts_with("worker-")
}

/// `(tid, name)` of every thread of this process.
pub fn threads() -> Vec<(u64, String)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            Some((tid, comm.trim_end().to_string()))
        })
        .collect()
}

/// Names of the server threads alive now.
pub fn server_threads() -> Vec<String> {
    let mut names: Vec<String> = threads()
        .into_iter()
        .map(|(_, n)| n)
        .filter(|n| is_server_thread(n))
        .collect();
    names.sort();
    names
}

/// Whether a thread with exactly this name is alive.
pub fn thread_alive(name: &str) -> bool {
    threads().iter().any(|(_, n)| n == name)
}

/// Polls until no server thread is left.
pub fn assert_no_server_threads(within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = server_threads();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server threads still alive after {within:?}: {left:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// `VmRSS` of this process, in KiB.
pub fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a thread has used, in clock ticks (Linux reports 100 per second).
pub fn thread_cpu_ticks(tid: u64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // The name field is in parentheses and may hold spaces: count fields after its `)`.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state(3) … utime is field 14, stime 15 (1-based in proc(5)).
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

// ---------------------------------------------------------------------------------------------
// The watching observer, with a panic to inject.

type PanicRule = Box<dyn Fn(&Event) -> bool + Send + Sync>;

/// Records who is who (peer address → client id), who has closed, and panics on the event the
/// test chooses: the way to make a handler thread panic.
#[derive(Default)]
pub struct Spy {
    ids: Mutex<HashMap<SocketAddr, u64>>,
    closed: Mutex<HashSet<u64>>,
    /// Per connection: lines reported (`Message`) and replies written (`Replied`). A handler
    /// blocked writing a reply has reported one line more than it has replied to.
    lines: Mutex<HashMap<u64, (u64, u64)>>,
    /// Connections whose thread the observer made panic.
    panicked: Mutex<HashSet<u64>>,
    panic_when: Mutex<Option<PanicRule>>,
    /// Panics injected so far.
    pub panics: AtomicU64,
    /// `Connected` events.
    pub connected: AtomicU64,
    /// `Refused` events.
    pub refused: AtomicU64,
}

impl Observer for Spy {
    fn event(&self, event: &Event) {
        match event {
            Event::Connected { id, peer } => {
                lock(&self.ids).insert(*peer, *id);
                self.connected.fetch_add(1, Ordering::SeqCst);
            }
            Event::Closed { id } => {
                lock(&self.closed).insert(*id);
            }
            Event::Refused { .. } => {
                self.refused.fetch_add(1, Ordering::SeqCst);
            }
            Event::Message { id, .. } => lock(&self.lines).entry(*id).or_default().0 += 1,
            Event::Replied { id, .. } => lock(&self.lines).entry(*id).or_default().1 += 1,
            _ => {}
        }
        let fire = lock(&self.panic_when)
            .as_ref()
            .is_some_and(|rule| rule(event));
        if fire {
            let id = match event {
                Event::Connected { id, .. }
                | Event::Message { id, .. }
                | Event::Replied { id, .. }
                | Event::Closed { id } => Some(*id),
                _ => None,
            };
            if let Some(id) = id {
                lock(&self.panicked).insert(id);
            }
            self.panics.fetch_add(1, Ordering::SeqCst);
            panic!("injected panic on {event:?} (expected by the test)");
        }
    }
}

impl Spy {
    /// Makes the observer panic on every event `rule` picks.
    pub fn panic_when(&self, rule: impl Fn(&Event) -> bool + Send + Sync + 'static) {
        *lock(&self.panic_when) = Some(Box::new(rule));
    }

    /// The client id of the connection whose client end is `local`, once the server took it.
    pub fn id_of(&self, local: SocketAddr) -> u64 {
        let mut id = None;
        eventually(&format!("the server gives {local} an id"), SETTLE, || {
            id = lock(&self.ids).get(&local).copied();
            id.is_some()
        });
        id.unwrap_or_default()
    }

    /// `(lines reported, replies written)` for connection `id`.
    pub fn lines(&self, id: u64) -> (u64, u64) {
        lock(&self.lines).get(&id).copied().unwrap_or_default()
    }

    /// Whether connection `id` has ended (or its handler was made to panic).
    pub fn has_closed(&self, id: u64) -> bool {
        lock(&self.closed).contains(&id) || lock(&self.panicked).contains(&id)
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test.

/// A running server, its spy and its config.
pub struct Harness {
    /// `None` once stopped; a test that fails before stopping stops it on drop, so the next
    /// test starts clean.
    handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    pub spy: Arc<Spy>,
    pub mode: Mode,
    pub grace: Duration,
}

/// Starts a server on a free loopback port: `mode`, a spy, a 3 s grace period, then `tweak`.
pub fn start(mode: Mode, tweak: impl FnOnce(&mut ServerConfig)) -> Harness {
    assert_no_server_threads(SETTLE);
    let spy = Arc::new(Spy::default());
    let mut config = ServerConfig::new(mode);
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.grace = Duration::from_secs(3);
    config.observer = Some(spy.clone());
    tweak(&mut config);
    let grace = config.grace;
    let server = Server::bind(config).expect("bind a loopback port");
    let addr = server.local_addr();
    let handle = server.start().expect("start the server");
    Harness {
        handle: Some(handle),
        addr,
        spy,
        mode,
        grace,
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            handle.join();
        }
    }
}

/// What stopping a server showed.
#[derive(Debug)]
pub struct Stopped {
    pub summary: Summary,
    /// From `shutdown()` to `join()` returning.
    pub took: Duration,
}

impl Harness {
    fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("the server is running")
    }

    pub fn stats(&self) -> LiveStats {
        self.handle().stats()
    }

    /// Polls until `live` accepted connections are open and `active` clients counted.
    pub fn wait_live(&self, live: usize) {
        let mut last = self.stats();
        eventually(
            &format!("live == active == {live} (last {last:?})"),
            SETTLE,
            || {
                last = self.stats();
                last.live == live && last.clients.active == live as u64
            },
        );
    }

    /// Polls until connection `id` has ended and its thread `client-{id}` is gone.
    pub fn wait_gone(&self, id: u64) {
        let name = format!("client-{id}");
        eventually(
            &format!("connection {id} ends and its thread goes"),
            SETTLE,
            || self.spy.has_closed(id) && !thread_alive(&name),
        );
    }

    /// A hostile raw connection.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.addr)
    }

    /// Shuts the server down and joins it; checks `join` came back within the grace period
    /// (plus [`CUT_SLACK`] when someone had to be cut) and that no server thread is left.
    pub fn stop(mut self) -> Stopped {
        let grace = self.grace;
        let handle = self.handle.take().expect("the server is running");
        let began = Instant::now();
        handle.shutdown();
        let summary = handle.join();
        let took = began.elapsed();
        let limit = if summary.cut > 0 {
            grace + CUT_SLACK
        } else {
            grace
        };
        assert!(
            took <= limit,
            "join took {took:?}, grace {grace:?} ({summary:?})"
        );
        assert_no_server_threads(Duration::from_secs(2));
        let connected = self.spy.connected.load(Ordering::SeqCst);
        assert_eq!(
            summary.served, connected,
            "every accepted connection counted served"
        );
        Stopped { summary, took }
    }

    /// [`Harness::stop`] on another thread, so the test can play the client side meanwhile.
    pub fn stop_in_background(self) -> JoinHandle<Stopped> {
        thread::Builder::new()
            .name("stopper".to_string())
            .spawn(move || self.stop())
            .expect("spawn the stopper")
    }

    /// Waits until every connection has gone (`live == active == 0`), then [`Harness::stop`]s.
    pub fn stop_when_idle(self) -> Stopped {
        self.wait_live(0);
        let stopped = self.stop();
        assert_eq!(stopped.summary.cut, 0, "nobody to cut on an idle server");
        stopped
    }
}

// ---------------------------------------------------------------------------------------------
// The hostile side: a raw socket.

/// How a read of everything ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Eof,
    Reset,
    TimedOut,
}

/// A raw client connection with timeouts; reads go through a buffer so lines can be taken one
/// at a time.
pub struct Raw {
    pub reader: BufReader<TcpStream>,
    pub local: SocketAddr,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, T).expect("connect");
        Raw::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Raw {
        stream.set_nodelay(true).expect("nodelay");
        stream.set_read_timeout(Some(T)).expect("read timeout");
        stream.set_write_timeout(Some(T)).expect("write timeout");
        let local = stream.local_addr().expect("local address");
        Raw {
            reader: BufReader::new(stream),
            local,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends `bytes` with one write.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// One line, `\n` included; what came before EOF if the server closed mid-line.
    pub fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(_) => line,
            Err(e) => panic!("reading a line: {e} (got {:?})", show(&line)),
        }
    }

    /// One line, which must be the echo of `sent`.
    pub fn echo_of(&mut self, sent: &[u8]) {
        let line = self.line();
        let text = String::from_utf8(line.clone()).unwrap_or_else(|_| show(&line));
        let sent = std::str::from_utf8(sent).expect("an echoable message is UTF-8");
        if let Err(why) = check_echo_reply(&text, sent) {
            panic!("echo of {sent:?}: {why}");
        }
    }

    /// Everything until the server closes (or resets, or `within` passes).
    pub fn rest(&mut self, within: Duration) -> (Vec<u8>, End) {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (got, End::TimedOut);
            }
            let _ = self.reader.get_ref().set_read_timeout(Some(left));
            let mut buf = [0; 16 * 1024];
            match self.reader.read(&mut buf) {
                Ok(0) => return (got, End::Eof),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return (got, End::Reset),
            }
        }
    }

    /// The rest must be exactly `want`, then a clean end of stream.
    pub fn expect_rest(&mut self, want: &[u8]) {
        let (got, end) = self.rest(T);
        assert_eq!(show(&got), show(want), "answer to {}", self.local);
        assert_eq!(
            end,
            End::Eof,
            "the server closes cleanly after {:?}",
            show(want)
        );
    }

    /// No more writing from us (the server sees EOF).
    pub fn half_close(&self) {
        let _ = self.stream().shutdown(Shutdown::Write);
    }

    /// Sends `bytes` one at a time, `every` apart (reading in between: the wait for a reply *is*
    /// the pause), like a slowloris. Stops sending and half-closes once an `error: ` line has
    /// come, or when `bytes` run out. Returns each line received with when it came (from the
    /// call), and how the connection ended.
    pub fn trickle(
        &mut self,
        bytes: impl IntoIterator<Item = u8>,
        every: Duration,
        within: Duration,
    ) -> (Vec<(Duration, Vec<u8>)>, End) {
        let started = Instant::now();
        let deadline = started + within;
        let mut bytes = bytes.into_iter();
        let mut writing = true;
        let mut partial = Vec::new();
        let mut lines = Vec::new();
        loop {
            if Instant::now() >= deadline {
                return (lines, End::TimedOut);
            }
            if writing {
                match bytes.next() {
                    Some(byte) => {
                        if self.reader.get_mut().write_all(&[byte]).is_err() {
                            writing = false;
                        }
                    }
                    None => {
                        writing = false;
                        self.half_close();
                    }
                }
            }
            let _ = self.stream().set_read_timeout(Some(every));
            let mut buf = [0; 4096];
            match self.reader.read(&mut buf) {
                Ok(0) => return (lines, End::Eof),
                Ok(n) => {
                    partial.extend_from_slice(&buf[..n]);
                    while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=end).collect();
                        if line.starts_with(b"error: ") && writing {
                            writing = false;
                            self.half_close();
                        }
                        lines.push((started.elapsed(), line));
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return (lines, End::Reset),
            }
        }
    }

    /// An abortive close: `SO_LINGER` 0, so the kernel sends a reset instead of a FIN.
    pub fn reset(self) {
        let stream = self.reader.into_inner();
        SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
        drop(stream);
    }
}

/// A client that sends echo lines as fast as the server takes them and never reads a reply.
/// Returns once the server is blocked writing to it: the client's own writes have stopped
/// making progress *and* the server has been stuck on the same reply for a while (it has
/// reported a line it has not finished answering), or once the server has given up on it.
/// Also returns the bytes it got in.
///
/// A blocked write need not stay blocked: with replies this small, the kernel now and then
/// compacts the full receive queue of the client and opens its window a little, so the
/// server's writes may crawl forward instead of stalling.
pub fn never_reader(h: &Harness) -> (Raw, u64) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    // A small receive window, so the server's writes block sooner.
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect_timeout(&h.addr.into(), T).expect("connect");
    let mut stream: TcpStream = socket.into();
    let id = h.spy.id_of(stream.local_addr().expect("local address"));
    // Each write that times out is a look at the server, this long after the last one.
    stream
        .set_write_timeout(Some(Duration::from_millis(300)))
        .expect("write timeout");
    let chunk = b"s\n".repeat(8192);
    let mut sent = 0u64;
    let mut last_look = None;
    let began = Instant::now();
    loop {
        match stream.write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let (reported, replied) = h.spy.lines(id);
                // Stuck on one reply since the last look; or it has already given up on us
                // (an error line is a reply to no line) and is draining what we send.
                if reported > replied && last_look == Some((reported, replied))
                    || replied > reported
                {
                    break;
                }
                last_look = Some((reported, replied));
            }
            Err(e) => panic!("the never-reader's write failed after {sent} bytes: {e}"),
        }
        assert!(
            sent < 256 << 20,
            "the server kept reading 256 MiB without a reply read"
        );
        assert!(
            began.elapsed() < SETTLE,
            "the server never blocked writing ({sent} bytes sent)"
        );
    }
    (Raw::from_stream(stream), sent)
}

// ---------------------------------------------------------------------------------------------
// The well-behaved clients.

/// How the well-behaved clients behave.
#[derive(Clone, Copy, Debug)]
pub struct GoodPlan {
    /// Clients running at once.
    pub clients: usize,
    /// Echo clients reconnect after this many lines (`None`: one connection for the whole
    /// test). Greet clients make a new connection per message anyway.
    pub reconnect_every: Option<u64>,
    /// The pause between two messages of one client: the pace of a client that is not in a
    /// hurry, so that the fault under test gets the CPU too.
    pub pause: Duration,
}

impl GoodPlan {
    pub fn new(clients: usize) -> Self {
        GoodPlan {
            clients,
            reconnect_every: Some(40),
            pause: Duration::from_millis(2),
        }
    }

    pub fn persistent(clients: usize) -> Self {
        GoodPlan {
            reconnect_every: None,
            ..GoodPlan::new(clients)
        }
    }
}

/// What the well-behaved clients saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages that got their right reply.
    pub answered: u64,
    /// Every message that did not: what happened instead. Must stay empty.
    pub lost: Vec<String>,
    /// Greet ids received (must be unique).
    pub ids: Vec<u64>,
    /// `error: server shutting down` answers, after shutdown began.
    pub told_shutdown: u64,
}

struct Flags {
    stop: AtomicBool,
    /// Set just before the test calls `shutdown()`: from then on the shutdown line, and a
    /// refused or unanswered *new* connection, are right answers.
    shutting: AtomicBool,
    answered: AtomicU64,
    /// Clients that have had their first reply.
    ready: AtomicU64,
}

/// Well-behaved clients running on their own threads until stopped, checking every reply.
pub struct Good {
    flags: Arc<Flags>,
    threads: Vec<JoinHandle<Tally>>,
}

impl Drop for Good {
    /// A test that fails before [`Good::stop`] still stops its clients.
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::SeqCst);
    }
}

impl Good {
    /// Starts `plan.clients` clients speaking the server's protocol, and waits until each has
    /// had a reply.
    pub fn start(h: &Harness, plan: GoodPlan) -> Good {
        let flags = Arc::new(Flags {
            stop: AtomicBool::new(false),
            shutting: AtomicBool::new(false),
            answered: AtomicU64::new(0),
            ready: AtomicU64::new(0),
        });
        let threads = (0..plan.clients)
            .map(|k| {
                let (addr, mode, flags) = (h.addr, h.mode, flags.clone());
                thread::Builder::new()
                    .name(format!("good-{k}"))
                    .spawn(move || match mode {
                        Mode::Echo => echo_client(addr, k, plan, &flags),
                        Mode::Greet => greet_client(addr, k, plan, &flags),
                    })
                    .expect("spawn a good client")
            })
            .collect();
        let good = Good { flags, threads };
        // Every client connected and answered, so none of them connects later, in the middle
        // of the fault.
        let clients = plan.clients as u64;
        eventually(
            "each well-behaved client gets a first reply",
            SETTLE,
            || {
                good.flags.ready.load(Ordering::SeqCst) == clients
                    || good.threads.iter().any(|t| t.is_finished())
            },
        );
        good.wait_answers(1);
        good
    }

    /// Replies checked so far.
    pub fn answered(&self) -> u64 {
        self.flags.answered.load(Ordering::SeqCst)
    }

    /// Polls until `more` replies have been checked since now: proof the clients are being
    /// served at this moment.
    pub fn wait_answers(&self, more: u64) {
        let target = self.answered() + more;
        eventually("the well-behaved clients get replies", SETTLE, || {
            self.answered() >= target || self.threads.iter().any(|t| t.is_finished())
        });
        assert!(
            self.threads.iter().all(|t| !t.is_finished()),
            "a well-behaved client stopped early"
        );
    }

    /// Tell the clients shutdown is about to begin.
    pub fn shutting_down(&self) {
        self.flags.shutting.store(true, Ordering::SeqCst);
    }

    /// Stops the clients and checks: no reply lost, greet ids unique.
    pub fn stop(mut self) -> Tally {
        self.flags.stop.store(true, Ordering::SeqCst);
        let mut all = Tally::default();
        for t in std::mem::take(&mut self.threads) {
            let tally = t.join().expect("a good client panicked");
            all.answered += tally.answered;
            all.lost.extend(tally.lost);
            all.ids.extend(tally.ids);
            all.told_shutdown += tally.told_shutdown;
        }
        assert!(
            all.lost.is_empty(),
            "well-behaved clients lost replies: {:#?}",
            all.lost
        );
        let unique: HashSet<u64> = all.ids.iter().copied().collect();
        assert_eq!(unique.len(), all.ids.len(), "greet ids are unique");
        all
    }
}

fn echo_client(addr: SocketAddr, k: usize, plan: GoodPlan, flags: &Flags) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<EchoClient> = None;
    // Lines answered on the current connection: once one has been, the connection is
    // established and must answer every line, even during shutdown (with the shutdown line).
    let mut on_conn = 0u64;
    for i in 0u64.. {
        if flags.stop.load(Ordering::SeqCst) {
            break;
        }
        let shutting = flags.shutting.load(Ordering::SeqCst);
        let c = match &mut conn {
            Some(c) => c,
            None => match EchoClient::connect(addr, T) {
                Ok(c) => {
                    on_conn = 0;
                    conn.insert(c)
                }
                Err(_) if shutting => break,
                Err(e) => {
                    tally.lost.push(format!("echo {k}: connect: {e}"));
                    break;
                }
            },
        };
        let msg = format!(" good {k}.{i} ✓\t");
        match c.exchange(&msg) {
            Ok(line) => match check_echo_reply(&line, &msg) {
                Ok(()) => {
                    tally.answered += 1;
                    on_conn += 1;
                    if tally.answered == 1 {
                        flags.ready.fetch_add(1, Ordering::SeqCst);
                    }
                    flags.answered.fetch_add(1, Ordering::SeqCst);
                }
                Err(_)
                    if flags.shutting.load(Ordering::SeqCst) && is_line(&line, SHUTTING_DOWN) =>
                {
                    tally.told_shutdown += 1;
                    break;
                }
                // Racing shutdown, a new connection may meet the closed limit.
                Err(_)
                    if flags.shutting.load(Ordering::SeqCst)
                        && on_conn == 0
                        && is_line(&line, BUSY) =>
                {
                    break;
                }
                Err(why) => {
                    tally.lost.push(format!("echo {k}: line {i}: {why}"));
                    break;
                }
            },
            // A connection that shutdown caught before it was served: the backlog is not served.
            Err(_) if flags.shutting.load(Ordering::SeqCst) && on_conn == 0 => break,
            Err(e) => {
                tally.lost.push(format!(
                    "echo {k}: line {i} ({on_conn} on this connection): {e}"
                ));
                break;
            }
        }
        if plan.reconnect_every.is_some_and(|n| on_conn >= n) {
            conn = None;
        }
        // The pace of the scenario: a client that sends a line every few milliseconds.
        thread::sleep(plan.pause);
    }
    tally
}

/// Whether a reply as the client library returns it (one `\n` removed) is this error line.
fn is_line(reply: &str, line: &[u8]) -> bool {
    line.strip_suffix(b"\n") == Some(reply.as_bytes())
}

fn greet_client(addr: SocketAddr, k: usize, plan: GoodPlan, flags: &Flags) -> Tally {
    let mut tally = Tally::default();
    for i in 0u64.. {
        if flags.stop.load(Ordering::SeqCst) {
            break;
        }
        let msg = format!("good {k}.{i} ✓");
        match greet(addr, &msg, T) {
            Ok(reply) => match parse_greet_id(&reply) {
                Some(id) => {
                    tally.ids.push(id);
                    tally.answered += 1;
                    if tally.answered == 1 {
                        flags.ready.fetch_add(1, Ordering::SeqCst);
                    }
                    flags.answered.fetch_add(1, Ordering::SeqCst);
                }
                None if flags.shutting.load(Ordering::SeqCst)
                    && (is_line(&reply, SHUTTING_DOWN) || is_line(&reply, BUSY)) =>
                {
                    tally.told_shutdown += 1;
                    break;
                }
                None => {
                    tally
                        .lost
                        .push(format!("greet {k}.{i}: wrong reply {reply:?}"));
                    break;
                }
            },
            Err(_) if flags.shutting.load(Ordering::SeqCst) => break,
            Err(e) => {
                tally.lost.push(format!("greet {k}.{i}: {e}"));
                break;
            }
        }
        thread::sleep(plan.pause);
    }
    tally
}

// ---------------------------------------------------------------------------------------------
// Figures for the closing note.

/// Prints one test's figures (`--nocapture` shows them).
pub fn figures(test: &str, classes: &[&str], hostile: u64, good: &Tally, extra: &str) {
    eprintln!(
        "[hostile] {test}: classes {} ({}), hostile connections {hostile}, good replies checked {}, \
         replies lost {}{extra}",
        classes.len(),
        classes.join(", "),
        good.answered,
        good.lost.len(),
    );
}
