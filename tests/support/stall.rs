//! Clients that stop reading, so the server's writes stall: many short lines whose replies pile
//! up ([`never_reader`]), or one line whose echo fits in no buffer ([`stuck_on_huge_line`]).
//! Included with `#[path]` next to `support` by the suites that need one.

#![allow(dead_code)]

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use many_clients::server::Event;
use socket2::{Domain, Socket, Type};

use crate::support::{Client, SETTLE, T, TestServer};

/// A connection whose receive window is tiny (set before connecting, so it is small from the
/// start), so the server's writes to it block soon.
pub fn small_window(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect_timeout(&addr.into(), T).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(T)).expect("read timeout");
    stream.set_write_timeout(Some(T)).expect("write timeout");
    stream
}

/// A client that sends echo lines as fast as the server takes them and never reads a reply.
/// Returns once the server is blocked writing to it: the client's own writes have stopped
/// making progress *and* the server has been stuck on the same reply for a while (it has
/// reported a line it has not finished answering), or once the server has given up on it (an
/// error line, or a reset while we still write).
/// Also returns the bytes it got in.
///
/// A blocked write need not stay blocked: with replies this small, the kernel now and then
/// compacts the full receive queue of the client and opens its window a little, so the
/// server's writes may crawl forward instead of stalling. For a server that is surely stuck,
/// see [`stuck_on_huge_line`].
pub fn never_reader(h: &TestServer) -> (Client, u64) {
    let mut stream = small_window(h.addr);
    let id = h
        .recorder
        .id_of(stream.local_addr().expect("local address"));
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
                let (reported, replied) = h.recorder.lines(id);
                // Stuck on one reply since the last look; or it has already given up on us
                // (an error line is a reply to no line) and is draining what we send.
                if reported > replied && last_look == Some((reported, replied))
                    || replied > reported
                {
                    break;
                }
                last_look = Some((reported, replied));
            }
            // The server gave up on us and closed with our lines unread: its write stalled for
            // the idle timeout while our writes were still filling its receive buffer (an
            // event loop stops reading once replies pile up, and the kernel takes megabytes).
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                break;
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
    (Client::from_stream(stream), sent)
}

/// Length of the line [`stuck_on_huge_line`] sends, `\n` excluded: twice the largest send buffer
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

/// Sends one echo line of [`huge_line`] bytes on a connection with a tiny receive window, never
/// reads, and waits until the server has read the line: from then on it is stuck writing the
/// reply. Returns the client's socket and its connection id.
pub fn stuck_on_huge_line(h: &TestServer) -> (TcpStream, u64) {
    let mut stream = small_window(h.addr);
    let id = h
        .recorder
        .id_of(stream.local_addr().expect("local address"));
    let len = huge_line();
    let mut line = vec![b'x'; len];
    line.push(b'\n');
    stream.write_all(&line).expect("send the huge line");
    h.recorder.wait_for("the huge line to be read", |events| {
        events.contains(&Event::Message { id, len })
    });
    (stream, id)
}
