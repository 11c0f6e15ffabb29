#![cfg(not(any(loom, shuttle)))]
//! A client that stops reading while replies are owed to it, and how PROTOCOL.md's two clocks
//! count meanwhile, on every engine: the write timeout runs from the server's *last* write
//! progress, not from when the stall began; and time spent blocked writing is not idle time —
//! the idle timeout that follows counts as if the stall had not happened, and waiting it out
//! costs no CPU. (One reply larger than any buffer: `tests/server_concurrency.rs`; many small
//! ones, beside well-behaved clients: `tests/hostile.rs`.)

#[path = "support/stall.rs"]
mod stall;
mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use many_clients::conn::Mode;
use many_clients::server::{Engine, Event};
use support::{IDLE, SETTLE, server_cpu_ticks, show, start};

support::engine_tests!(
    a_stalled_write_is_cut_a_whole_timeout_after_its_last_progress,
    time_blocked_writing_is_not_idle_time,
);

/// The idle timeout, which is also the write timeout.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// How long the client keeps the server blocked before it reads: the scenario, well under
/// [`TIMEOUT`].
const PAUSE: Duration = Duration::from_millis(600);

/// Sends 60,000-byte echo lines until a write makes no progress for 200 ms: the server has
/// stopped reading us, its replies held up (an event loop's queue past its bound, a thread
/// blocked in `write`). Returns how many lines went out whole, and when the write of the last
/// whole one began: the server cannot have read that line earlier.
fn fill(stream: &mut TcpStream) -> (usize, Instant) {
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .expect("write timeout");
    let line = format!("{}\n", "x".repeat(59_999));
    let (mut whole, mut last) = (0, None);
    let began = Instant::now();
    loop {
        let before = Instant::now();
        match stream.write_all(line.as_bytes()) {
            Ok(()) => (whole, last) = (whole + 1, Some(before)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("writing line {whole}: {e}"),
        }
        assert!(began.elapsed() < SETTLE, "the server never stopped reading");
    }
    (whole, last.expect("at least one line went out"))
}

fn a_stalled_write_is_cut_a_whole_timeout_after_its_last_progress(engine: Engine) {
    let server = start(Mode::Echo, engine, |c| c.idle_timeout = TIMEOUT);
    let mut stream = stall::small_window(server.addr);
    let id = server
        .recorder
        .id_of(stream.local_addr().expect("local address"));
    fill(&mut stream);
    let replied = |server: &support::TestServer| server.recorder.lines(id).1;
    let before = replied(&server);
    thread::sleep(PAUSE); // the client's pause: the scenario, not a synchronisation
    // Then it reads, as fast as it can, until one more reply has gone out whole (the server's
    // write moved on), and stops reading again.
    let mut buf = [0; 4096];
    let deadline = Instant::now() + SETTLE;
    while replied(&server) == before {
        assert!(
            Instant::now() < deadline,
            "no reply went out while the client read"
        );
        let n = stream.read(&mut buf).expect("read a reply");
        assert!(n > 0, "the server closed while replies were owed");
    }
    let ours = |e: &Event| matches!(*e, Event::Replied { id: i, .. } if i == id);
    let progressed = server
        .recorder
        .last_time(ours)
        .expect("a reply was reported");
    server
        .recorder
        .wait_for("the stalled client's disconnect", |events| {
            events.contains(&Event::Closed { id })
        });
    let closed = server
        .recorder
        .last_time(|e| *e == Event::Closed { id })
        .expect("its close was reported");
    let after = closed - progressed;
    // The reply is reported just after the write that finished it: allow that moment.
    assert!(
        after + Duration::from_millis(50) >= TIMEOUT,
        "{}: cut {after:?} after its last progress, the write timeout is {TIMEOUT:?}",
        engine.name()
    );
    assert!(
        after < TIMEOUT + Duration::from_secs(1),
        "{}: cut {after:?} after its last progress",
        engine.name()
    );
    drop(stream);
    server.stop_when_idle();
}

fn time_blocked_writing_is_not_idle_time(engine: Engine) {
    let server = start(Mode::Echo, engine, |c| c.idle_timeout = TIMEOUT);
    let mut stream = stall::small_window(server.addr);
    let (whole, last_line) = fill(&mut stream);
    thread::sleep(PAUSE); // the client keeps the server blocked: the scenario
    // Then it reads every reply it is owed, and says nothing more.
    let mut replies = std::io::BufReader::new(stream.try_clone().expect("clone"));
    for i in 0..whole {
        let mut reply = String::new();
        std::io::BufRead::read_line(&mut replies, &mut reply).expect("read a reply");
        assert!(
            reply.ends_with("'\n"),
            "reply {i} of {whole}: {}",
            show(reply.as_bytes())
        );
    }
    // Waiting out the idle timeout costs no CPU: the server waits for a deadline, it does not
    // poll for it.
    let cpu = server_cpu_ticks();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut replies, &mut line).expect("read the idle line");
    let (cut, used) = (last_line.elapsed(), server_cpu_ticks() - cpu);
    assert_eq!(show(line.as_bytes()), show(IDLE), "{}", engine.name());
    // Counted from the last whole line, with the time blocked writing left out: no earlier
    // than the timeout after it (the line cannot have been read before it was sent).
    assert!(
        cut >= TIMEOUT,
        "{}: cut {cut:?} after its last line; the idle timeout is {TIMEOUT:?}",
        engine.name()
    );
    assert!(
        cut < TIMEOUT + PAUSE + Duration::from_secs(2),
        "{}: cut {cut:?} after its last line",
        engine.name()
    );
    assert!(
        used <= 10,
        "{}: {used} ticks of CPU while it waited out the idle timeout",
        engine.name()
    );
    let mut rest = Vec::new();
    replies.read_to_end(&mut rest).expect("the close");
    assert!(rest.is_empty(), "nothing after the idle line");
    server.stop_when_idle();
}
