//! Clients that stop reading, so the server's writes stall: included with `#[path]` next to
//! `support/server.rs` by the tests that need one.

#![allow(dead_code)]

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::IO_TIMEOUT;

/// Connects with a tiny receive buffer and sends short echo lines (every 2 bytes ask for a
/// ~45-byte reply) without ever reading, until a write makes no progress for `write_timeout`
/// (the server stopped reading because its own writes are stuck) or fails (the server gave up
/// and closed), or 10 s have passed (a server that never stops reading: the caller says why).
///
/// The server's writes are then stuck, but not for good: the kernel may still find room now and
/// then (it grows a socket's send buffer on some events, and packs the tiny buffers queued at a
/// full receiver into fewer), so replies can creep out. For a server that is surely stuck, see
/// [`send_huge_line`].
pub fn flood_without_reading(addr: SocketAddr, write_timeout: Duration) -> Flood {
    let mut stream = small_window(addr);
    stream.set_write_timeout(Some(write_timeout)).unwrap();
    let chunk = b"x\n".repeat(32 * 1024);
    let started = Instant::now();
    let mut sent = 0usize;
    let ended = loop {
        if started.elapsed() > Duration::from_secs(10) {
            break None;
        }
        match stream.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    let stopped = ended.is_some_and(|e| {
        matches!(
            e.kind(),
            ErrorKind::WouldBlock
                | ErrorKind::TimedOut
                | ErrorKind::ConnectionReset
                | ErrorKind::BrokenPipe
        )
    });
    Flood {
        stream,
        sent,
        stopped,
    }
}

/// What [`flood_without_reading`] left.
pub struct Flood {
    pub stream: TcpStream,
    /// Bytes that went out.
    pub sent: usize,
    /// Whether our writes blocked or failed (rather than everything being taken).
    pub stopped: bool,
}

/// A connection whose receive window is tiny (set before connecting, so it is small from the
/// start), with the usual timeouts.
fn small_window(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect_timeout(&addr.into(), IO_TIMEOUT).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Length of the line [`send_huge_line`] sends, `\n` excluded: twice the largest send buffer
/// the kernel gives a socket (`net.ipv4.tcp_wmem`, 4 MiB by default), and at least 8 MiB. Its
/// echo cannot fit, so a server writing it to a client that does not read is stuck for good.
/// The server needs `max_line` at least this.
pub fn huge_line() -> usize {
    let wmem_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(4 << 20);
    (2 * wmem_max).max(8 << 20)
}

/// Sends one echo line of [`huge_line`] bytes on a connection with a tiny receive window, and
/// never reads. Wait for the server's `Event::Message` for it: from then on the server is stuck
/// writing the reply.
pub fn send_huge_line(addr: SocketAddr) -> TcpStream {
    let mut stream = small_window(addr);
    let mut line = vec![b'x'; huge_line()];
    line.push(b'\n');
    stream.write_all(&line).unwrap();
    stream
}
