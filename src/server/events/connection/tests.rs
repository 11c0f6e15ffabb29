//! One connection's shell over a real loopback socket whose send buffer the test makes tiny, so
//! the queue drains a little at a time: on loopback a server's send buffer grows to megabytes,
//! and the socket suites see the queue empty in one go whatever its bounds.

use super::super::outgoing::OUT_LIMIT;
use super::*;
use crate::conn::{ConnConfig, ECHO_READ_LEN, Mode, SystemClock};
use crate::server::ServerConfig;
use socket2::SockRef;
use std::io::Read;
use std::net::{TcpListener, TcpStream as StdStream};

/// A connected pair: the server's end as the loop holds it (non-blocking, a send buffer of a
/// few KiB), and the client's (blocking, a receive buffer of a few KiB).
fn pair() -> (TcpStream, StdStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    client.set_recv_buffer_size(4096).unwrap();
    client
        .connect(&listener.local_addr().unwrap().into())
        .unwrap();
    let (server, _) = listener.accept().unwrap();
    SockRef::from(&server).set_send_buffer_size(4096).unwrap();
    server.set_nonblocking(true).unwrap();
    let client: StdStream = client.into();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (TcpStream::from_std(server), client)
}

/// An echo connection over `pair()` as a loop holds it, with what the loop lends it (the read
/// buffer, the server's core), and the client's end.
struct Echo {
    c: Connection,
    buf: Vec<u8>,
    shared: Shared<Std>,
    client: StdStream,
}

impl Echo {
    fn new() -> Echo {
        let (server, client) = pair();
        let now = SystemClock.now().instant;
        let conn = Conn::new(&ConnConfig::new(Mode::Echo), 1, now);
        Echo {
            c: Connection::new(server, conn, None, Span::none(), now),
            buf: vec![0; ECHO_READ_LEN],
            shared: ServerConfig::new(Mode::Echo).shared::<Std>(),
            client,
        }
    }

    /// One read, as a turn of the loop makes it.
    fn read(&mut self) -> Status {
        self.c
            .on_readable(&mut self.buf, 1, &SystemClock, &self.shared)
    }

    /// The socket reported writable.
    fn writable(&mut self) -> Status {
        self.c.on_writable(&SystemClock, &self.shared)
    }
}

#[test]
fn reading_stops_past_the_bound_and_resumes_only_at_half_of_it() {
    let mut e = Echo::new();
    // Lines whose echoes overflow the tiny send buffer at once, more than the bound in all.
    let lines = 8;
    for i in 0..lines {
        e.client
            .write_all(format!("{i} {}\n", "x".repeat(30_000)).as_bytes())
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !e.c.paused {
        assert!(
            Instant::now() < deadline,
            "never paused: {} queued",
            e.c.out.len()
        );
        assert_eq!(e.read(), Status::Open);
    }
    assert!(e.c.out.is_over_limit());
    // The client takes a little: the queue shrinks, but stays over half the bound, and the
    // connection must not read yet.
    let mut got = vec![0; 8192];
    let mut taken = 0;
    while e.c.out.len() > OUT_LIMIT / 2 + 8192 && taken < 64 * 1024 {
        taken += e.client.read(&mut got).unwrap();
        assert_eq!(e.writable(), Status::Open);
        assert!(
            e.c.paused || e.c.out.has_room_to_read(),
            "resumed at {}",
            e.c.out.len()
        );
    }
    assert!(taken > 0 && e.c.paused, "still paused over half the bound");
    // The client reads on: once half the bound is left, reading resumes.
    while e.c.paused {
        assert!(
            Instant::now() < deadline,
            "never resumed: {} queued",
            e.c.out.len()
        );
        let _ = e.client.read(&mut got).unwrap();
        assert_eq!(e.writable(), Status::Open);
    }
    assert!(e.c.out.has_room_to_read(), "resumed at {}", e.c.out.len());
}

/// Polls until the server's socket holds `len` bytes of input.
fn wait_buffered(server: &TcpStream, len: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut peeked = vec![0; len];
    while !matches!(server.peek(&mut peeked), Ok(n) if n >= len) {
        assert!(Instant::now() < deadline, "{len} bytes never arrived");
        std::thread::yield_now();
    }
}

#[test]
fn a_read_that_comes_back_short_has_emptied_the_socket_and_a_full_one_has_not() {
    let mut e = Echo::new();
    e.client.write_all(b"hi\n").unwrap();
    wait_buffered(e.c.stream(), 3);
    assert_eq!(e.read(), Status::Open);
    assert!(
        !e.c.wants_read(),
        "a short read leaves nothing: wait for the next event"
    );
    // More than one read takes: the first read fills what it offered, and there is more.
    let long = vec![b'x'; ECHO_READ_LEN + 100];
    e.client.write_all(&long).unwrap();
    wait_buffered(e.c.stream(), long.len());
    assert_eq!(e.read(), Status::Open);
    assert!(e.c.wants_read(), "a full read may have left more behind");
    assert_eq!(e.read(), Status::Open);
    assert!(!e.c.wants_read(), "the last 100 bytes came back short");
}

#[test]
fn an_end_of_input_that_came_with_the_last_bytes_is_read_without_another_event() {
    let mut e = Echo::new();
    let mut poll = mio::Poll::new().unwrap();
    let token = mio::Token(7);
    poll.registry()
        .register(e.c.stream(), token, mio::Interest::READABLE)
        .unwrap();
    // The bytes and the end arrive before the server looks: one event says both.
    e.client.write_all(b"last words").unwrap();
    e.client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut events = mio::Events::with_capacity(8);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        if events
            .iter()
            .any(|e| e.token() == token && e.is_read_closed())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the end of input was never reported"
        );
    }
    e.c.saw_input_end();
    assert_eq!(e.read(), Status::Open);
    assert!(
        e.c.wants_read(),
        "the read came back short, but the end behind it raises no new event"
    );
    // The end of input: the unfinished line is answered, then the connection closes.
    assert_eq!(e.read(), Status::Done(Ending::Closed));
    drop(e.c); // what the loop does with a connection that is done
    let mut reply = String::new();
    e.client.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("Server got 'last words'"), "{reply:?}");
}

#[test]
fn after_shutdown_reading_goes_on_past_a_short_read_to_the_end_it_made() {
    let mut e = Echo::new();
    // Bytes the loop has not read yet when shutdown comes.
    e.client.write_all(b"unfinished").unwrap();
    wait_buffered(e.c.stream(), 10);
    assert_eq!(e.c.on_shutdown(SystemClock.now(), &e.shared), Status::Open);
    // No poll here: the end of input is the server's own, and no event is needed to find it.
    let mut reads = 0;
    let ended = loop {
        assert!(
            e.c.wants_read(),
            "reading stopped before the end, after {reads} reads"
        );
        reads += 1;
        if let Status::Done(ending) = e.read() {
            break ending;
        }
        assert!(reads < 10, "no end after {reads} reads");
    };
    assert_eq!(ended, Ending::Closed);
}
