//! One client connection for every test: well-behaved (send a line, check its echo), raw (any
//! bytes, read everything to the end), or hostile (trickle bytes, reset). Every read and write
//! has a timeout, so a server that never answers fails the test instead of hanging it.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use many_clients::client::check_echo_reply;
use socket2::SockRef;

use super::lines::show;
use super::wait::T;

/// How a read of everything ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Eof,
    Reset,
    TimedOut,
}

/// A client connection with `TCP_NODELAY` and timeouts; reads go through a buffer so lines can
/// be taken one at a time.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    /// The client's end of the connection: the `peer` of the server's events about it.
    pub local: SocketAddr,
    /// When `connect` began: before the server could accept the connection, so a time counted
    /// from it is never shorter than the server's own (an idle cut measured from after
    /// `connect` returned could come "early" by however late this thread ran; seen in CI).
    pub connecting: Instant,
    /// When [`Client::trickle`] began to send its last `\n`: the server cannot have read the
    /// line before, so an idle time counted from it is never shorter than the server's.
    pub newline_sent: Option<Instant>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let connecting = Instant::now();
        let stream = TcpStream::connect_timeout(&addr, T).expect("connect");
        Client {
            connecting,
            ..Client::from_stream(stream)
        }
    }

    /// A client on a stream connected elsewhere: its `connecting` is now.
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_nodelay(true).expect("nodelay");
        stream.set_read_timeout(Some(T)).expect("read timeout");
        stream.set_write_timeout(Some(T)).expect("write timeout");
        let local = stream.local_addr().expect("local address");
        Client {
            reader: BufReader::new(stream),
            local,
            connecting: Instant::now(),
            newline_sent: None,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends `bytes` with one write (a line in two writes meets Nagle and delayed ACKs).
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// One line, `\n` included; what came before EOF if the server closed mid-line (nothing at
    /// EOF).
    pub fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(_) => line,
            Err(e) => panic!("reading a line: {e} (got {})", show(&line)),
        }
    }

    /// One line, which must be the echo of `sent`, with its `\n`.
    pub fn expect_echo(&mut self, sent: &str) {
        let line = self.line();
        assert!(line.ends_with(b"\n"), "no newline in {}", show(&line));
        let text = String::from_utf8(line.clone()).unwrap_or_else(|_| show(&line));
        if let Err(why) = check_echo_reply(&text, sent) {
            panic!("echo of {sent:?}: {why}");
        }
    }

    /// Sends `line` with `\n` and checks its echo.
    pub fn exchange(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
        self.expect_echo(line);
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
            "the server closes cleanly after {}",
            show(want)
        );
    }

    /// No more writing from us: the server reads EOF. (It may have closed already, after a
    /// greet reply or an error line; that is no failure.)
    pub fn half_close(&self) {
        let _ = self.stream().shutdown(Shutdown::Write);
    }

    /// Sends `bytes` one at a time, `every` apart (reading in between: the wait for a reply *is*
    /// the pause), like a slowloris. Stops sending and half-closes once an `error: ` line has
    /// come, or when `bytes` run out. Returns each line received with when it came (counted
    /// from [`Client::connecting`]), and how the connection ended.
    pub fn trickle(
        &mut self,
        bytes: impl IntoIterator<Item = u8>,
        every: Duration,
        within: Duration,
    ) -> (Vec<(Duration, Vec<u8>)>, End) {
        let started = self.connecting;
        let deadline = Instant::now() + within;
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
                        if byte == b'\n' {
                            self.newline_sent = Some(Instant::now());
                        }
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
