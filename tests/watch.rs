//! "Watch one connection" (book chapter 10): the console a user sees with
//! `RUST_LOG=debug`, for one greet and one echo connection, through the same
//! console the `server` example installs. The book includes the files this
//! test compares with, so a chapter cannot drift from what the server prints:
//! when the narration changes on purpose, run
//! `MANY_CLIENTS_BLESS=1 cargo test --test watch` and commit the new files.
//!
//! It also checks what the narration must never break: stdout carries only
//! PROTOCOL.md's lines, and every detail line names the connection.
#![cfg(not(any(loom, shuttle)))]

#[path = "support/bless.rs"]
mod bless;
#[path = "../examples/support/console.rs"]
mod console;

use many_clients::client::EchoClient;
use many_clients::conn::Mode;
use many_clients::server::{Engine, Server, ServerConfig};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;
use tracing_subscriber::EnvFilter;

const TIMEOUT: Duration = Duration::from_secs(10);
/// What regenerates the files this test compares with.
const WATCH: &str = "cargo test --test watch";

/// What the console wrote, line by line, tagged with the stream it went to.
#[derive(Default)]
struct Console {
    lines: Vec<(Stream, String)>,
    partial: [Vec<u8>; 2],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stream {
    Out,
    Err,
}

/// One writer of the captured console.
struct Capture(Stream, Arc<Mutex<Console>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut console = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        let console = &mut *console;
        let partial = &mut console.partial[self.0 as usize];
        partial.extend_from_slice(bytes);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            console.lines.push((self.0, line));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The process-wide console at `debug`, installed once; tests take turns.
fn console() -> (MutexGuard<'static, ()>, Arc<Mutex<Console>>) {
    static CONSOLE: OnceLock<Arc<Mutex<Console>>> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let captured = CONSOLE.get_or_init(|| {
        let captured = Arc::new(Mutex::new(Console::default()));
        let (out, err) = (captured.clone(), captured.clone());
        let subscriber = console::subscriber(
            EnvFilter::new("debug"),
            move || Capture(Stream::Out, out.clone()),
            move || Capture(Stream::Err, err.clone()),
        );
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        captured
    });
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    *captured.lock().unwrap() = Console::default();
    (turn, captured.clone())
}

/// Runs one connection against a fresh server and returns the console, with
/// the client's port (different every run) replaced by `PORT`.
fn watch(mode: Mode, client: impl FnOnce(SocketAddr) -> SocketAddr) -> Vec<(Stream, String)> {
    watch_on(Engine::Thread, mode, client)
}

/// [`watch`] on any engine.
fn watch_on(
    engine: Engine,
    mode: Mode,
    client: impl FnOnce(SocketAddr) -> SocketAddr,
) -> Vec<(Stream, String)> {
    let (_turn, captured) = console();
    let mut config = ServerConfig::new(mode);
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.engine = engine;
    let server = Server::bind(config).expect("bind");
    let addr = server.local_addr();
    let handle = server.start().expect("start");
    let peer = client(addr);
    // Let the connection end on its own before shutdown, or shutdown could be part of its story.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while handle.stats().live > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection never ended"
        );
        std::thread::yield_now();
    }
    handle.shutdown();
    // After `join` every thread of the server has ended, so it has logged everything.
    let summary = handle.join();
    assert_eq!(summary.served, 1, "one connection, served");
    let lines = std::mem::take(&mut captured.lock().unwrap().lines);
    let peer = peer.to_string();
    lines
        .into_iter()
        .map(|(stream, line)| (stream, line.replace(&peer, "127.0.0.1:PORT")))
        .collect()
}

/// The text the book shows: stdout lines as they are, stderr lines too (the
/// user sees both in one terminal).
fn render(lines: &[(Stream, String)]) -> String {
    lines.iter().map(|(_, line)| format!("{line}\n")).collect()
}

/// What must hold whatever the narration says.
fn check_console(lines: &[(Stream, String)], protocol_lines: &[&str]) {
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| *s == Stream::Out)
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(
        stdout, protocol_lines,
        "stdout must carry PROTOCOL.md's lines only"
    );
    let detail: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| *s == Stream::Err)
        .map(|(_, l)| l.as_str())
        .collect();
    assert!(
        detail.len() >= 5,
        "at least five lines of narration: {detail:#?}"
    );
    for line in &detail {
        assert!(
            line.starts_with("DEBUG conn{peer=127.0.0.1:PORT engine=thread"),
            "every detail line names the connection: {line}"
        );
    }
}

#[test]
fn one_greet_connection_narrated() {
    let lines = watch(Mode::Greet, |addr| {
        let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.write_all(b"Hello, Server!").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "Hello Client 1, server received your message!");
        stream.local_addr().unwrap()
    });
    check_console(
        &lines,
        &[
            "Client 1 connected from 127.0.0.1:PORT",
            "Client 1 says: Hello, Server!",
            "Client 1 disconnected.",
        ],
    );
    bless::check_against_book("watch-greet.txt", &render(&lines), WATCH);
}

#[test]
fn one_echo_connection_narrated() {
    let lines = watch(Mode::Echo, |addr| {
        let mut client = EchoClient::connect(addr, TIMEOUT).unwrap();
        let local = client.stream().local_addr().unwrap();
        for line in ["hello", "bye"] {
            let reply = client.exchange(line).unwrap();
            assert!(reply.ends_with(&format!("Server got '{line}'")), "{reply}");
        }
        // Close our side and wait for the server's EOF: the server has seen ours by then.
        client.stream().shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let mut stream = client.stream();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "nothing after the replies");
        local
    });
    check_console(
        &lines,
        &[
            "[+] Connected: 127.0.0.1:PORT",
            "[-] Disconnected: 127.0.0.1:PORT",
        ],
    );
    bless::check_against_book("watch-echo.txt", &render(&lines), WATCH);
}

/// The event loop's queued output, watched: a client sends long lines and reads nothing until
/// the server says (at `debug`) that it stopped reading: the socket took no more — the
/// server's send buffer, which grows here up to 4 MiB, is full — and more than 64 KiB of
/// replies wait in the connection's queue. (Not as soon as a first reply is queued: a client
/// that starts reading then can empty the queue before it reaches the bound, one run in a few
/// dozen.) Then the client reads, and every reply must arrive, in order: what the socket did
/// not take at once goes out when it becomes writable. The socket suites never fill that
/// buffer, so only this test takes the loop's `flush` path.
#[test]
fn the_event_loop_sends_what_it_had_to_queue() {
    const LINES: usize = 128;
    let (_turn, captured) = console();
    let mut config = ServerConfig::new(Mode::Echo);
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.engine = Engine::Events { loops: 1 };
    let handle = Server::bind(config).and_then(Server::start).expect("start");
    let stream = TcpStream::connect_timeout(&handle.local_addr(), TIMEOUT).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // 60,000 bytes a line, under the 64 KiB limit: 128 replies are about 7.7 MB.
    let line = |i: usize| format!("{i:05} {}", "x".repeat(59_994));
    let sender = std::thread::spawn(move || {
        for i in 0..LINES {
            writer
                .write_all(format!("{}\n", line(i)).as_bytes())
                .unwrap();
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let paused = || {
        let console = captured.lock().unwrap();
        console
            .lines
            .iter()
            .any(|(_, l)| l.contains("reading paused"))
    };
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !paused() {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop never stopped reading: the client never filled the server's send buffer"
        );
        std::thread::yield_now();
    }
    let mut replies = io::BufReader::new(stream);
    for i in 0..LINES {
        let mut reply = String::new();
        io::BufRead::read_line(&mut replies, &mut reply).unwrap();
        if let Err(why) = many_clients::client::check_echo_reply(&reply, &line(i)) {
            panic!("reply {i}: {why}");
        }
    }
    let mut rest = Vec::new();
    replies.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the replies");
    sender.join().unwrap();
    handle.shutdown();
    assert_eq!(handle.join().served, 1);
    // It stopped reading past 64 KiB queued, and read again once half of that was left.
    let queued = |what: &str| -> Vec<usize> {
        let console = captured.lock().unwrap();
        let lines = console.lines.iter().filter(|(_, l)| l.contains(what));
        let field = |l: &str| l.split("queued=").nth(1)?.split(' ').next()?.parse().ok();
        lines
            .map(|(_, l)| field(l).expect("a queued= field"))
            .collect()
    };
    let (paused, resumed) = (queued("reading paused"), queued("reading resumed"));
    // Each resume ends a pause: they alternate, a pause first.
    let turns: Vec<bool> = {
        let console = captured.lock().unwrap();
        let turn = |l: &str| l.contains("reading paused") || l.contains("reading resumed");
        let lines = console.lines.iter().filter(|(_, l)| turn(l));
        lines.map(|(_, l)| l.contains("reading paused")).collect()
    };
    assert!(
        turns
            .iter()
            .enumerate()
            .all(|(i, &paused)| paused == (i % 2 == 0)),
        "pauses and resumes out of turn (true: paused): {turns:?}"
    );
    assert!(!paused.is_empty(), "the loop never stopped reading");
    assert!(
        paused.iter().all(|&n| n > 64 * 1024),
        "paused at {paused:?}"
    );
    assert!(
        resumed.iter().all(|&n| n <= 32 * 1024),
        "resumed at {resumed:?}"
    );
}

/// Every engine, for the tests below (one event loop, so the queue test's client has it alone).
const ENGINES: [Engine; 3] = [
    Engine::Thread,
    Engine::Pool { workers: 2 },
    Engine::Events { loops: 1 },
];

/// A connection with a receive window of a few KiB (set before connecting, so it is small from
/// the start): the server's writes to it stall soon, and go out a little at a time.
fn small_window(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect_timeout(&addr.into(), TIMEOUT).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// An abortive close: `SO_LINGER` 0, so the kernel sends a reset instead of a FIN.
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// A reset while the server waits for the next line is a failed read, not the end of input:
/// the log says so on every engine (a reset read as a clean close would hide a broken client).
#[test]
fn a_reset_while_the_server_reads_is_a_failed_read() {
    for engine in ENGINES {
        let lines = watch_on(engine, Mode::Echo, |addr| {
            let mut client = EchoClient::connect(addr, TIMEOUT).unwrap();
            client.exchange("hello").unwrap();
            let stream = client.stream().try_clone().unwrap();
            let local = stream.local_addr().unwrap();
            drop(client);
            reset(stream);
            local
        });
        let text = render(&lines);
        let said = |what: &str| text.contains(what);
        assert!(
            said("read failed: Connection reset by peer") && said("ended: ReadFailed"),
            "{engine:?}: {text}"
        );
        assert!(!said("end of input"), "{engine:?}: {text}");
    }
}

/// A reset while replies wait for the client to read them is a failed write: the server stops
/// writing at once (it must not try again and again), on every engine. The client sends long
/// lines and reads nothing until its own writes stall: the server has stopped reading it, its
/// replies held up (an event loop's queue past its bound, a thread blocked in `write`).
#[test]
fn a_reset_while_replies_wait_is_a_failed_write() {
    for engine in ENGINES {
        let lines = watch_on(engine, Mode::Echo, |addr| {
            let mut stream = small_window(addr);
            let local = stream.local_addr().unwrap();
            stream
                .set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let line = format!("{}\n", "x".repeat(30_000));
            let deadline = std::time::Instant::now() + TIMEOUT;
            // Until a write takes nothing for 200 ms: the server's reading has stopped.
            while stream.write(line.as_bytes()).is_ok() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{engine:?}: never stalled"
                );
            }
            reset(stream);
            local
        });
        let text = render(&lines);
        let said = |what: &str| text.contains(what);
        assert!(
            said("write failed: ") && said("ended: WriteFailed"),
            "{engine:?}: {text}"
        );
    }
}
