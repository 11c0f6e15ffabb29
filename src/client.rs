//! The client side of both protocols, as small blocking helpers.
//!
//! The examples (`client`, `stress_client`) and the tests all talk to a server through these
//! functions, so the rules below are written down once:
//!
//! - **One write per message.** A line is built in memory and sent with a single `write_all`, and
//!   `TCP_NODELAY` is on. Writing `msg` and then `"\n"` separately lets Nagle's algorithm hold the
//!   second small segment back until the first is acknowledged, and the receiver may delay that
//!   acknowledgement by tens of milliseconds: a test suite became hundreds of times slower that way.
//! - **Every wait has a deadline.** A server may reply late, never, or only half; each exchange
//!   gets one deadline, and every blocking read or write is given only the time that is left.
//! - **Replies come in pieces.** TCP is a byte stream: one reply may arrive in several reads, and
//!   two replies may arrive in one. A greet reply is read until the server closes; an echo reply
//!   is read up to its `\n` through a buffered reader that keeps any bytes that come after it.
//! - **No panics on server behaviour.** Whatever the server does (refuses, resets, stays silent,
//!   sends garbage) ends in a [`ClientError`] or in a reply that [`parse_greet_id`] or
//!   [`check_echo_reply`] rejects.
//!
//! The seed 001 server answers per `recv`, not per line, so an echo client waits for each reply
//! before sending the next line; [`EchoClient::exchange`] does exactly that.

mod error;
mod reply;

pub use error::ClientError;
pub use reply::{ERROR_PREFIX, check_echo_reply, is_error_line, parse_greet_id};

use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The message both seeds' clients send.
pub const DEFAULT_MESSAGE: &str = "Hello, Server!";
/// The longest reply we accept, so a server that never stops talking cannot exhaust our memory.
pub const MAX_REPLY: usize = 1 << 20;

pub use crate::conn::Mode;

/// Parses a command-line duration in seconds; fractions are allowed (`0.2`, `1.5`).
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{s:?} must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is too long"))
}

/// Resolves `HOST:PORT` once, so that a load test does not ask the resolver per connection.
pub fn resolve(addr: &str) -> Result<SocketAddr, ClientError> {
    let not_found = || io::Error::new(ErrorKind::NotFound, "the name resolved to no address");
    let first = addr
        .to_socket_addrs()
        .and_then(|mut all| all.next().ok_or_else(not_found));
    first.map_err(|source| ClientError::Connect {
        addr: addr.to_owned(),
        source,
    })
}

/// Opens a connection within `timeout`, with `TCP_NODELAY` on (see the module docs for why).
pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ClientError> {
    if timeout.is_zero() {
        // `connect_timeout` rejects a zero timeout; for us it simply means "too late".
        return Err(ClientError::TimedOut { after: timeout });
    }
    let connect_err = |source| ClientError::Connect {
        addr: addr.to_string(),
        source,
    };
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(connect_err)?;
    stream.set_nodelay(true).map_err(connect_err)?;
    Ok(stream)
}

/// Greet exchange (seed 000): connect, send `message`, read the reply until the server closes.
///
/// The message goes out as is, without a newline, as the seed's client sends it; an empty message
/// is sent as `"\n"`, which the protocol defines as the empty message (zero bytes would look like a
/// client that never speaks). `timeout` bounds the whole exchange, connect included. The reply is
/// decoded lossily and one trailing `\n` is removed (greet replies have none, `error: ` lines do).
/// It is returned as it came; check it with [`parse_greet_id`] or [`is_error_line`].
pub fn greet(
    addr: SocketAddr,
    message: impl AsRef<[u8]>,
    timeout: Duration,
) -> Result<String, ClientError> {
    let deadline = Deadline::new(timeout);
    let stream = connect(addr, timeout)?;
    let message = message.as_ref();
    let payload: &[u8] = if message.is_empty() { b"\n" } else { message };
    let sent = send(&stream, payload, &deadline);
    let mut reader = BufReader::new(stream);
    recover_reply(sent, || read_reply(&mut reader, &deadline, false))
}

/// An echo-mode connection (seed 001): send a line, read exactly one reply line.
pub struct EchoClient {
    /// The buffer matters: a read may return the end of one reply line and the start of the next,
    /// and the bytes after the first `\n` must wait in the buffer for the next `read_line`.
    reader: BufReader<TcpStream>,
    /// Reused for every outgoing line, so `message + "\n"` is one buffer and one `write_all`.
    out: Vec<u8>,
    timeout: Duration,
}

impl EchoClient {
    /// Connects within `timeout`; the same `timeout` then bounds each send and each reply.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, ClientError> {
        let stream = connect(addr, timeout)?;
        Ok(EchoClient {
            reader: BufReader::new(stream),
            out: Vec::new(),
            timeout,
        })
    }

    /// Changes the time allowed for each later send, reply or exchange.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The socket, for tests that want to shut down one direction or look at addresses.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends `message` followed by `\n` in one write. A message containing `\n` would be two
    /// lines and get two replies, so it is refused before anything is sent.
    pub fn send_line(&mut self, message: impl AsRef<[u8]>) -> Result<(), ClientError> {
        self.send_line_by(message.as_ref(), &Deadline::new(self.timeout))
    }

    /// Reads one reply line; the returned text has its `\n` removed and is decoded lossily.
    /// If the server closes after part of a line, that part is the reply.
    pub fn read_line(&mut self) -> Result<String, ClientError> {
        let deadline = Deadline::new(self.timeout);
        read_reply(&mut self.reader, &deadline, true).map(reply_text)
    }

    /// Sends one line and waits for its reply, both within one timeout.
    ///
    /// If sending fails (the server may already have closed after an `error: ` line), we still
    /// read: a reply that the server managed to send is more useful than the send error.
    pub fn exchange(&mut self, message: impl AsRef<[u8]>) -> Result<String, ClientError> {
        let deadline = Deadline::new(self.timeout);
        let sent = self.send_line_by(message.as_ref(), &deadline);
        recover_reply(sent, || read_reply(&mut self.reader, &deadline, true))
    }

    fn send_line_by(&mut self, message: &[u8], deadline: &Deadline) -> Result<(), ClientError> {
        if message.contains(&b'\n') {
            let source = io::Error::new(ErrorKind::InvalidInput, "a message may not contain \\n");
            return Err(ClientError::Io {
                during: "sending",
                source,
            });
        }
        self.out.clear();
        self.out.extend_from_slice(message);
        self.out.push(b'\n');
        send(self.reader.get_ref(), &self.out, deadline)
    }
}

/// One deadline for a whole exchange; each blocking call gets only what is left of it.
struct Deadline {
    at: Instant,
    allowed: Duration,
}

impl Deadline {
    fn new(allowed: Duration) -> Self {
        Deadline {
            at: Instant::now() + allowed,
            allowed,
        }
    }

    /// The time left, or `TimedOut` once there is none.
    fn left(&self) -> Result<Duration, ClientError> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(ClientError::TimedOut {
                after: self.allowed,
            })
        } else {
            Ok(left)
        }
    }
}

/// A socket read or write that ran into its timeout reports `WouldBlock` on Unix and `TimedOut`
/// on Windows.
fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn send(mut stream: &TcpStream, bytes: &[u8], deadline: &Deadline) -> Result<(), ClientError> {
    let left = deadline.left()?;
    let io_err = |source| ClientError::Io {
        during: "sending",
        source,
    };
    stream.set_write_timeout(Some(left)).map_err(io_err)?;
    stream.write_all(bytes).map_err(|e| {
        if is_timeout(&e) {
            ClientError::TimedOut {
                after: deadline.allowed,
            }
        } else {
            io_err(e)
        }
    })
}

/// After a failed send, a reply may still be waiting (a busy server writes its error line and
/// closes before reading anything). A timeout while sending is final; otherwise we read, and
/// report the send error only if no reply comes either.
fn recover_reply(
    sent: Result<(), ClientError>,
    read: impl FnOnce() -> Result<Vec<u8>, ClientError>,
) -> Result<String, ClientError> {
    match sent {
        Err(e @ ClientError::TimedOut { .. }) => Err(e),
        Ok(()) => read().map(reply_text),
        Err(send_error) => read().map(reply_text).map_err(|_| send_error),
    }
}

/// Reads until a `\n` (kept) when `line` is true, else until the server closes.
///
/// End of stream, or a reset, after some bytes ends the reply: a server that closes without a
/// final `\n`, or whose close turns into a reset, has still said something worth showing.
fn read_reply(
    reader: &mut BufReader<TcpStream>,
    deadline: &Deadline,
    line: bool,
) -> Result<Vec<u8>, ClientError> {
    let mut reply = Vec::new();
    loop {
        if reader.buffer().is_empty() {
            // Only a read that will really block needs the (re-computed) remaining time.
            let left = deadline.left()?;
            let io_err = |source| ClientError::Io {
                during: "receiving",
                source,
            };
            reader
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(io_err)?;
        }
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            // On a timeout, go round: `deadline.left()` above turns it into `TimedOut`.
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => continue,
            Err(_) if !reply.is_empty() => return Ok(reply),
            Err(source) => {
                return Err(ClientError::Io {
                    during: "receiving",
                    source,
                });
            }
        };
        if chunk.is_empty() {
            return if reply.is_empty() {
                Err(ClientError::Closed)
            } else {
                Ok(reply)
            };
        }
        let newline = if line {
            chunk.iter().position(|&b| b == b'\n')
        } else {
            None
        };
        let take = newline.map_or(chunk.len(), |i| i + 1);
        reply.extend_from_slice(&chunk[..take]);
        reader.consume(take);
        if newline.is_some() {
            return Ok(reply);
        }
        if reply.len() > MAX_REPLY {
            let reason = format!("longer than {MAX_REPLY} bytes");
            return Err(ClientError::WrongReply {
                reply: reply_text(reply),
                reason,
            });
        }
    }
}

/// Lossy text with one trailing `\n` (or `\r\n`) removed.
fn reply_text(bytes: Vec<u8>) -> String {
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_from_their_names() {
        assert_eq!("echo".parse::<Mode>(), Ok(Mode::Echo));
        assert_eq!(Mode::Greet.default_addr(), "127.0.0.1:65434");
        assert!("Greet".parse::<Mode>().is_err());
    }

    #[test]
    fn durations_accept_fractions_only_when_positive() {
        assert_eq!(parse_secs("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_secs("10"), Ok(Duration::from_secs(10)));
        for bad in ["0", "-1", "nan", "inf", "x", ""] {
            assert!(parse_secs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reply_text_drops_one_line_ending() {
        assert_eq!(reply_text(b"a\r\n".to_vec()), "a");
        assert_eq!(reply_text(b"a\n\n".to_vec()), "a\n");
        assert_eq!(reply_text(b"\xffa".to_vec()), "\u{fffd}a");
    }
}
