//! The book's step servers (`examples/step0*.rs`) against real clients on loopback.
//!
//! Each example's `serve` function is compiled into this test through `#[path]`, so the code the
//! book shows is the code tested here. Every test binds `127.0.0.1:0`, gives the server a client
//! limit so it returns by itself, and waits only on events (a log line, a reply, a join) — with a
//! deadline, so a broken server fails the test instead of hanging it. No test uses a sleep or a
//! timing threshold: where a test shows that one client waits for another, it shows it by the
//! order in which things happen, an order the server's design fixes.
#![cfg(not(any(loom, shuttle)))]

#[path = "../examples/step02_single_thread.rs"]
#[allow(dead_code)] // the example's `main` and `Args` are not used here
mod step02;

#[path = "../examples/step03_thread_per_client.rs"]
#[allow(dead_code)]
mod step03;

#[path = "../examples/step04_shared_counter.rs"]
#[allow(dead_code)]
mod step04;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use many_clients::counter::{Counter, CounterKind, Stats};
use many_clients::sync::Std;

/// How long any single wait may take before the test gives up. Generous: it only matters when
/// something is broken, and a loaded CI machine must not turn into a false failure.
const PATIENCE: Duration = Duration::from_secs(20);

/// A step server running on its own thread, and the console lines it logs.
struct Running<T> {
    addr: SocketAddr,
    log: Receiver<String>,
    /// Every line received so far, in order, for assertions at the end.
    seen: Vec<String>,
    server: JoinHandle<T>,
}

/// Binds a free loopback port and runs `serve` on it. `serve` gets the sending end of the log
/// channel and turns it into the server's log with [`log_to`].
fn start<T, F>(serve: F) -> Running<T>
where
    T: Send + 'static,
    F: FnOnce(TcpListener, Sender<String>) -> T + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    let addr = listener.local_addr().expect("local address");
    let (tx, log) = mpsc::channel();
    let server = thread::spawn(move || serve(listener, tx));
    Running {
        addr,
        log,
        seen: Vec::new(),
        server,
    }
}

/// A log for the step servers (`Fn(String) + Clone + Send + 'static`) that sends each line to the
/// test. A send fails only once the test has stopped listening; the line is not needed then.
fn log_to(tx: Sender<String>) -> impl Fn(String) + Clone + Send + 'static {
    move |line| {
        let _ = tx.send(line);
    }
}

impl<T> Running<T> {
    /// Waits until the server logs a line starting with `prefix`, and returns it.
    fn wait_for(&mut self, prefix: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.starts_with(prefix)) {
            return line.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no log line {prefix:?} within {PATIENCE:?}; saw {:?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "server ended without logging {prefix:?}; saw {:?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Joins the server (it has a client limit, so it returns) and every line it logged.
    fn finish(mut self) -> (T, Vec<String>) {
        let result = self.server.join().expect("server thread panicked");
        // The server and every log closure are gone now, so this drains and ends.
        self.seen.extend(self.log.iter());
        (result, self.seen)
    }
}

/// Where `line` first appears in `lines`.
fn position(lines: &[String], line: &str) -> usize {
    lines
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("{line:?} not logged; log: {lines:?}"))
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    // So a server that never answers fails the test instead of hanging it.
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads the reply: everything until the server closes the connection.
fn reply(mut stream: TcpStream) -> String {
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read the reply");
    reply
}

fn hello(id: u64) -> String {
    format!("Hello Client {id}, server received your message!")
}

/// The id in a greet reply.
fn id_in(reply: &str) -> u64 {
    let id = reply
        .strip_prefix("Hello Client ")
        .and_then(|rest| rest.split(',').next());
    id.and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected reply {reply:?}"))
}

#[test]
fn step02_serves_a_client_like_the_seed() {
    let mut server = start(|listener, log| step02::serve(listener, Some(1), log_to(log)));
    let mut stream = connect(server.addr);
    stream.write_all(b"Hello, Server!").unwrap();
    assert_eq!(reply(stream), hello(1));
    server.wait_for("Client 1 disconnected.");
    let ((), log) = server.finish();
    assert!(
        log[0].starts_with("Client 1 connected from 127.0.0.1:"),
        "{log:?}"
    );
    assert_eq!(
        log[1..],
        ["Client 1 says: Hello, Server!", "Client 1 disconnected."]
    );
}

// ANCHOR: second_client_waits
#[test]
fn step02_second_client_waits_for_the_first() {
    let mut server = start(|listener, log| step02::serve(listener, Some(2), log_to(log)));
    let a = connect(server.addr);
    server.wait_for("Client 1 connected");
    // B connects (the kernel completes the handshake and queues it) and sends at once...
    let mut b = connect(server.addr);
    b.write_all(b"from B").unwrap();
    // ...and waits for its reply on another thread, while A has not sent anything yet.
    let events = Arc::new(Mutex::new(Vec::new()));
    let b_events = events.clone();
    let b_waits = thread::spawn(move || {
        let reply = reply(b);
        b_events.lock().unwrap().push("B has its reply");
        reply
    });
    events.lock().unwrap().push("A sends");
    let mut a = a;
    a.write_all(b"from A").unwrap();
    assert_eq!(reply(a), hello(1));
    assert_eq!(b_waits.join().unwrap(), hello(2));
    // B sent first, yet its reply came only after A sent: the one thread was busy with A.
    assert_eq!(*events.lock().unwrap(), ["A sends", "B has its reply"]);
    // The log says why: B was not even accepted before A's conversation ended.
    let ((), log) = server.finish();
    assert!(position(&log, "Client 1 disconnected.") < position_prefix(&log, "Client 2 connected"));
}
// ANCHOR_END: second_client_waits

#[test]
fn step02_a_client_that_sends_nothing_gets_no_reply() {
    let server = start(|listener, log| step02::serve(listener, Some(1), log_to(log)));
    let stream = connect(server.addr);
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(reply(stream), "");
    let ((), log) = server.finish();
    assert_eq!(log[1..], ["Client 1 disconnected."]);
}

fn position_prefix(lines: &[String], prefix: &str) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}; log: {lines:?}"))
}

// ANCHOR: second_client_served
#[test]
fn step03_second_client_is_served_while_the_first_is_silent() {
    let mut server = start(|listener, log| step03::serve(listener, Some(2), log_to(log)));
    let mut a = connect(server.addr);
    server.wait_for("Client 1 connected");
    // A holds its connection and sends nothing. B is served all the same, start to finish:
    let mut b = connect(server.addr);
    b.write_all(b"from B").unwrap();
    assert_eq!(reply(b), hello(2));
    // Only now does A speak.
    a.write_all(b"from A").unwrap();
    assert_eq!(reply(a), hello(1));
    // `serve` returns only after joining both client threads.
    let ((), log) = server.finish();
    assert!(position(&log, "Client 2 says: from B") < position(&log, "Client 1 says: from A"));
    assert!(
        log.contains(&"Client 1 disconnected.".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"Client 2 disconnected.".to_string()),
        "{log:?}"
    );
}
// ANCHOR_END: second_client_served

/// `n` clients that all connect, then all send once every one of them is being served.
fn concurrent_clients<T>(server: &mut Running<T>, n: u64) -> Vec<u64> {
    let streams: Vec<TcpStream> = (0..n).map(|_| connect(server.addr)).collect();
    for id in 1..=n {
        server.wait_for(&format!("Client {id} connected"));
    }
    let clients: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut stream)| {
            thread::spawn(move || {
                stream.write_all(format!("client {i}").as_bytes()).unwrap();
                reply(stream)
            })
        })
        .collect();
    let mut ids: Vec<u64> = clients
        .into_iter()
        .map(|client| id_in(&client.join().unwrap()))
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn step04_seed_counter_gives_unique_ids() {
    const N: u64 = 6;
    let mut server =
        start(|listener, log| step04::serve_seed_counter(listener, Some(N as usize), log_to(log)));
    let ids = concurrent_clients(&mut server, N);
    assert_eq!(ids, (1..=N).collect::<Vec<_>>(), "ids unique and dense");
    let (issued, _) = server.finish();
    assert_eq!(issued, N);
}

#[test]
fn step04_guard_counts_clients_in_and_out() {
    const N: u64 = 4;
    for kind in [
        CounterKind::Mutex,
        CounterKind::ParkingLot,
        CounterKind::Atomic,
    ] {
        let counter: Arc<dyn Counter> = kind.build::<Std>();
        let shared_counter = counter.clone();
        let mut server = start(move |listener, log| {
            step04::serve(listener, Some(N as usize), shared_counter, log_to(log))
        });
        // All N are connected and blocked reading at once, so the peak is exactly N.
        let ids = concurrent_clients(&mut server, N);
        assert_eq!(
            ids,
            (1..=N).collect::<Vec<_>>(),
            "{kind:?}: ids unique and dense"
        );
        server.finish();
        let want = Stats {
            active: 0,
            peak: N,
            served: N,
            issued: N,
        };
        assert_eq!(counter.stats(), want, "{kind:?}");
    }
}
