//! The driver against fake sockets and a manual clock: write deadlines, slow readers, lines
//! longer than the first read buffer.

use super::*;
use crate::conn::{ConnConfig, ManualClock, Mode, Now};
use crate::server::transport::Wake;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A clock the fake socket moves on while a write waits.
struct SharedClock(Mutex<ManualClock>);

impl Clock for SharedClock {
    fn now(&self) -> Now {
        self.0.lock().unwrap().now()
    }
}

/// A fake client for the driver. It sends `input`, one read per chunk, then ends its input —
/// or, if `keeps_quiet`, never sends more (`WouldBlock`). It takes `room` more bytes of
/// replies, then none. Every write costs `per_write` on the clock, and a write that cannot put
/// everything out waits out the armed write timeout, as a blocking socket does, and returns what
/// did go out (or `WouldBlock`). `Stream::write_now` takes what fits if `writes_now`, else says
/// `WouldBlock`, as the trait's default. It records what went out and whether writing was shut
/// down.
struct FakeClient {
    input: VecDeque<Vec<u8>>,
    keeps_quiet: bool,
    room: usize,
    per_write: Duration,
    writes_now: bool,
    write_timeout: Mutex<Option<Duration>>,
    clock: Arc<SharedClock>,
    seen: Arc<Mutex<(Vec<u8>, bool)>>,
}

impl FakeClient {
    /// A client that sends `input` and reads everything at once, on `clock`.
    fn new(input: &[&[u8]], clock: &Arc<SharedClock>) -> Self {
        FakeClient {
            input: input.iter().map(|chunk| chunk.to_vec()).collect(),
            keeps_quiet: false,
            room: usize::MAX,
            per_write: Duration::ZERO,
            writes_now: false,
            write_timeout: Mutex::new(None),
            clock: clock.clone(),
            seen: Arc::default(),
        }
    }

    fn output(&self) -> String {
        String::from_utf8(self.seen.lock().unwrap().0.clone()).unwrap()
    }

    /// Takes what fits in `room`.
    fn take(&mut self, buf: &[u8]) -> usize {
        let n = buf.len().min(self.room);
        self.room -= n;
        self.seen.lock().unwrap().0.extend_from_slice(&buf[..n]);
        n
    }
}

struct NoWaker;

impl Wake for NoWaker {
    fn wake(&self) {}
    fn cut(&self) {}
}

impl Read for FakeClient {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(mut chunk) = self.input.pop_front() else {
            return match self.keeps_quiet {
                true => Err(ErrorKind::WouldBlock.into()),
                false => Ok(0),
            };
        };
        let n = buf.len().min(chunk.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            self.input.push_front(chunk.split_off(n));
        }
        Ok(n)
    }
}

impl io::Write for FakeClient {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.clock.0.lock().unwrap().advance(self.per_write);
        let n = self.take(buf);
        if n < buf.len() {
            let waited = self.write_timeout.lock().unwrap().expect("a write timeout");
            self.clock.0.lock().unwrap().advance(waited);
            if n == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for FakeClient {
    type Waker = NoWaker;

    fn waker(&self) -> NoWaker {
        NoWaker
    }

    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        *self.write_timeout.lock().unwrap() = timeout;
        Ok(())
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.seen.lock().unwrap().1 = true;
        Ok(())
    }

    fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.writes_now {
            true if self.room > 0 => Ok(self.take(bytes)),
            _ => Err(ErrorKind::WouldBlock.into()),
        }
    }
}

fn new_clock() -> Arc<SharedClock> {
    Arc::new(SharedClock(Mutex::new(ManualClock::new())))
}

#[test]
fn a_stalled_write_fails_within_a_quarter_second_of_its_deadline() {
    let timeout = Duration::from_secs(10);
    let clock = new_clock();
    let start = clock.now().instant;
    let mut config = ConnConfig::new(Mode::Echo);
    config.idle_timeout = timeout;
    let mut conn = Conn::new(&config, 1, start);
    // The reply is ~45 bytes; 10 go out at once, then the peer's window stays shut.
    let mut stream = FakeClient {
        room: 10,
        ..FakeClient::new(&[b"hello\n"], &clock)
    };
    let running = || false;
    let cx = Context {
        shutting_down: &running,
        write_timeout: timeout,
        observer: None,
    };
    assert_eq!(
        drive(&mut stream, &mut conn, &*clock, &cx),
        Ending::WriteFailed
    );
    let waited = clock.now().instant - start;
    assert!(
        waited >= timeout && waited <= timeout + WRITE_SLICE,
        "gave up {waited:?} after the last byte went out; the timeout is {timeout:?}"
    );
}

/// Found by `tests/schedules.rs`: a client that sent many lines at once and read the replies
/// slowly got `error: idle timeout` for its next line, which had been waiting in the socket
/// while the server was blocked writing. Writing four replies here takes 400 ms, longer than
/// the 300 ms idle timeout; the fifth line must still be answered.
#[test]
fn time_blocked_writing_to_a_slow_reader_is_not_idle_time() {
    let clock = new_clock();
    let mut config = ConnConfig::new(Mode::Echo);
    config.idle_timeout = Duration::from_millis(300);
    let mut conn = Conn::new(&config, 1, clock.now().instant);
    // Reads slowly: every write to it takes 100 ms on the clock.
    let mut stream = FakeClient {
        per_write: Duration::from_millis(100),
        ..FakeClient::new(&[b"a\nb\nc\nd\n", b"e\n"], &clock)
    };
    let running = || false;
    let cx = Context {
        shutting_down: &running,
        write_timeout: config.idle_timeout,
        observer: None,
    };
    assert_eq!(drive(&mut stream, &mut conn, &*clock, &cx), Ending::Closed);
    let output = stream.output();
    let echoed: Vec<_> = output.lines().filter_map(|l| l.split_once("] ")).collect();
    let echoed: Vec<_> = echoed.into_iter().map(|(_, text)| text).collect();
    let want = ["a", "b", "c", "d", "e"].map(|c| format!("Server got '{c}'"));
    assert_eq!(echoed, want, "the whole output: {output:?}");
}

#[test]
fn lines_longer_than_the_first_read_buffer_are_echoed_whole() {
    // The pipe hands out at most what the buffer holds, so the long lines arrive over
    // several reads, first into the small buffer, then into the grown one.
    use crate::conn::SystemClock;
    use crate::server::pipe::pipe;
    use crate::sync::Std;
    use std::io::Write;

    let (mut client, mut server) = pipe::<Std>();
    let long = "x".repeat(crate::conn::ECHO_FIRST_READ_LEN * 5);
    let longer = "y".repeat(20_000);
    let input = format!("{long}\nshort\n{longer}\nlast");
    client.write_all(input.as_bytes()).unwrap();
    client.shutdown_write().unwrap();
    let clock = SystemClock;
    let mut conn = Conn::new(&ConnConfig::new(Mode::Echo), 1, clock.now().instant);
    let never = || false;
    let cx = Context {
        shutting_down: &never,
        write_timeout: Duration::from_secs(10),
        observer: None,
    };
    assert_eq!(drive(&mut server, &mut conn, &clock, &cx), Ending::Closed);
    drop(server);
    let replies = String::from_utf8(client.read_all()).unwrap();
    let echoed: Vec<&str> = replies
        .lines()
        .map(|line| line.split_once("] Server got '").unwrap().1)
        .map(|rest| rest.strip_suffix('\'').unwrap())
        .collect();
    assert_eq!(echoed, [long.as_str(), "short", longer.as_str(), "last"]);
}

#[test]
fn the_read_buffer_grows_only_when_a_read_fills_it() {
    assert_eq!(grown(512, 512, 8192), 8192, "a full read: grow");
    assert_eq!(grown(512, 511, 8192), 512, "room left: keep it small");
    assert_eq!(grown(8192, 8192, 8192), 8192, "already at the most");
    assert_eq!(
        grown(8192, 100, 8192),
        8192,
        "never shrinks while the connection lives"
    );
}

/// The busy answer never waits: the line goes out if the socket takes it now, and writing is
/// shut down; if the socket takes only part of it, the rest is given up, not "written".
#[test]
fn the_busy_answer_sends_what_fits_now_and_nothing_later() {
    let clock = new_clock();
    let running = || false;
    let cx = Context {
        shutting_down: &running,
        write_timeout: Duration::from_secs(10),
        observer: None,
    };
    let config = ConnConfig::new(Mode::Echo);
    let line: &[u8] = b"error: server busy, try again later\n";
    for (room, ending, sent, shut_down) in [
        (1024, Ending::Closed, line, true),
        (5, Ending::WriteFailed, &line[..5], false),
    ] {
        // Says nothing, and has room for `room` bytes now and never more.
        let stream = FakeClient {
            keeps_quiet: true,
            room,
            writes_now: true,
            ..FakeClient::new(&[], &clock)
        };
        let seen = stream.seen.clone();
        let mut conn = Conn::busy(&config, clock.now().instant);
        let ended = answer_without_waiting(stream, &mut conn, &*clock, &cx);
        assert_eq!(ended, ending, "room for {room} bytes");
        assert_eq!(*seen.lock().unwrap(), (sent.to_vec(), shut_down));
    }
}
