//! The client side of a schedule: one [`Plan`] played over a real socket, watching the server's
//! [`Recorder`] so that each client can be judged by what actually happened to it (admitted
//! with an id, or refused) rather than by a guess.
//!
//! Every blocking call has a deadline, so a server bug fails the case instead of hanging it.
//! Sleeps happen only where they *are* the scenario: the start delay and the pauses between
//! chunks. Everywhere else the client waits for an event (the server's observer, EOF).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::model::{CloseRead, close_read, expect};
use super::schedule::{DRAIN_MS, End, Plan, Settings, Writes, filler};
use crate::support::{BUSY, Outcome, Recorder};

/// Time allowed beyond the protocol's own timeouts before a client gives up waiting.
pub const SLACK: Duration = Duration::from_secs(5);
/// Bounds each connect and each write.
const IO_LIMIT: Duration = Duration::from_secs(5);
/// More than any server may send one client here (the filler's replies are about 6 MiB).
const MAX_RECEIVED: usize = 16 << 20;

/// How a client's reading ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    Eof,
    /// A read failed (usually a reset).
    Failed(String),
    TimedOut,
    /// It read what it was owed and stopped (`CloseRead::Lines`).
    Stopped,
    /// It did not read at all.
    NotRead,
}

/// What one client saw.
#[derive(Clone, Debug)]
pub struct Observation {
    pub received: Vec<u8>,
    pub ended: Ended,
    pub write_error: Option<String>,
    /// It sent the [`filler`]: the server may cut it anywhere, so only a prefix is owed.
    pub sent_filler: bool,
}

/// Plays `plan` against the server at `addr`; returns the client's address and what it saw.
/// `fills`: this is the schedule's [`filler`] client.
pub fn play(
    addr: SocketAddr,
    server: &Settings,
    plan: &Plan,
    fills: bool,
    recorder: &Recorder,
) -> Result<(SocketAddr, Observation), String> {
    thread::sleep(Duration::from_millis(plan.delay_ms)); // the scenario: a late start
    let mut stream =
        TcpStream::connect_timeout(&addr, IO_LIMIT).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_LIMIT))
        .map_err(|e| e.to_string())?;
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_millis(server.idle_ms + DRAIN_MS) + SLACK;
    let mut pieces = plan.pieces(server);
    let mut sent_filler = false;
    if fills {
        // The filler is only for a connection that is served; a refused one is just drained.
        let admitted = matches!(
            recorder.outcome(local, deadline),
            Some(Outcome::Admitted { .. })
        );
        if let (true, Some(filler)) = (admitted, filler(server)) {
            pieces.push(filler);
            sent_filler = true;
        }
    }
    let write_error = write_pieces(&mut stream, &pieces, plan.writes);
    let mut received = Vec::new();
    let ended = match plan.end {
        End::Reset => {
            SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .map_err(|e| e.to_string())?;
            drop(stream); // with linger 0, close sends RST
            Ended::NotRead
        }
        End::HalfClose => {
            // The server may already have closed (greet replied, line too long); that is fine.
            let _ = stream.shutdown(Shutdown::Write);
            read_until(&mut stream, deadline, &mut received, |_| false)
        }
        End::Silent => read_until(&mut stream, deadline, &mut received, |_| false),
        End::StopReading => {
            // Not reading is the scenario; wait (without sleeping blindly) until the server has
            // given up on us, then read whatever is left. A refused client is closed after
            // the drain, so it simply reads to EOF.
            if let Some(Outcome::Admitted { id }) = recorder.outcome(local, deadline)
                && !recorder.wait_closed(id, deadline)
            {
                let gone = "whose client stopped reading";
                return Err(format!("the server never ended connection {id}, {gone}"));
            }
            read_until(&mut stream, deadline, &mut received, |_| false)
        }
        End::Close => match close_read(&expect(server, &plan.stream(server), End::Close)) {
            CloseRead::Nothing => Ended::NotRead,
            CloseRead::ToEof => read_until(&mut stream, deadline, &mut received, |_| false),
            CloseRead::Lines(n) => read_until(&mut stream, deadline, &mut received, |got| {
                !got.starts_with(BUSY) && got.iter().filter(|&&b| b == b'\n').count() >= n
            }),
        },
    };
    let write_error = write_error.map(|e| e.to_string());
    Ok((
        local,
        Observation {
            received,
            ended,
            write_error,
            sent_filler,
        },
    ))
}

/// Writes each piece with one `write_all`, pausing between pieces if the plan says so.
fn write_pieces(
    stream: &mut TcpStream,
    pieces: &[Vec<u8>],
    writes: Writes,
) -> Option<std::io::Error> {
    for (i, piece) in pieces.iter().enumerate() {
        if let (Writes::Chunks { pause_ms, .. }, true) = (writes, i > 0) {
            thread::sleep(Duration::from_millis(pause_ms)); // the scenario: a slow writer
        }
        if let Err(e) = stream.write_all(piece) {
            return Some(e);
        }
    }
    None
}

/// Reads into `got` until EOF, a failed read, the deadline, or `done(got)`.
fn read_until(
    stream: &mut TcpStream,
    deadline: Instant,
    got: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> bool,
) -> Ended {
    let mut buf = vec![0; 64 * 1024];
    loop {
        if done(got) {
            return Ended::Stopped;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero()
            || got.len() > MAX_RECEIVED
            || stream.set_read_timeout(Some(left)).is_err()
        {
            return Ended::TimedOut;
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ended::Eof,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ended::TimedOut;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Ended::Failed(e.kind().to_string()),
        }
    }
}
