#![cfg(not(any(loom, shuttle)))]
//! The client against small scripted servers that misbehave on purpose: replies in pieces, two
//! replies in one write, silence, closing or resetting without a reply, endless output, and a
//! greet server that hands out the same id twice. Every case must end in a clear result, never a
//! panic or a hang. Each scripted server serves a fixed number of connections on its own threads.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use many_clients::client::{self, ClientError, EchoClient, MAX_REPLY, Mode};
use many_clients::stress::{self, StressConfig};

const TIMEOUT: Duration = Duration::from_secs(5);
const STAMP: &str = "2026-11-21 22:33:51.123456";

/// Serves `connections` connections, each on its own thread, with `handler`.
fn serve(connections: usize, handler: fn(TcpStream)) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let handlers: Vec<_> = (0..connections)
            .map(|_| {
                let (stream, _) = listener.accept().unwrap();
                stream.set_nodelay(true).unwrap();
                thread::spawn(move || handler(stream))
            })
            .collect();
        handlers.into_iter().for_each(|h| h.join().unwrap());
    });
    (addr, server)
}

/// Reads one chunk, as the seed servers do; the content does not matter to these servers.
fn read_some(stream: &mut TcpStream) {
    let _ = stream.read(&mut [0; 1024]);
}

/// Ends a connection the way the protocol says: no more writes, then read until the client closes.
fn finish(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.read_to_end(&mut Vec::new());
}

#[test]
fn a_greet_reply_sent_byte_by_byte_is_read_whole() {
    let (addr, server) = serve(1, |mut s| {
        read_some(&mut s);
        for byte in b"Hello Client 7, server received your message!" {
            s.write_all(&[*byte]).unwrap();
        }
        finish(s);
    });
    let reply = client::greet(addr, "hi", TIMEOUT).unwrap();
    assert_eq!(client::parse_greet_id(&reply), Some(7));
    server.join().unwrap();
}

#[test]
fn two_echo_replies_in_one_write_are_two_lines() {
    let (addr, server) = serve(1, |mut s| {
        read_some(&mut s);
        let two = format!("[{STAMP}] Server got 'a'\n[{STAMP}] Server got 'b'\n");
        s.write_all(two.as_bytes()).unwrap();
        finish(s);
    });
    let mut conn = EchoClient::connect(addr, TIMEOUT).unwrap();
    let first = conn.exchange("a").unwrap();
    client::check_echo_reply(&first, "a").unwrap();
    let second = conn.read_line().unwrap();
    client::check_echo_reply(&second, "b").unwrap();
    assert!(matches!(conn.read_line(), Err(ClientError::Closed)));
    drop(conn);
    server.join().unwrap();
}

#[test]
fn a_silent_server_times_out_on_time() {
    let (addr, server) = serve(2, |mut s| {
        // Never answer; hold the connection until the client gives up and closes.
        let _ = s.read_to_end(&mut Vec::new());
    });
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let greet = client::greet(addr, "hi", timeout);
    assert!(
        matches!(greet, Err(ClientError::TimedOut { .. })),
        "{greet:?}"
    );
    let mut conn = EchoClient::connect(addr, timeout).unwrap();
    let echo = conn.exchange("hi");
    assert!(
        matches!(echo, Err(ClientError::TimedOut { .. })),
        "{echo:?}"
    );
    drop(conn);
    // Two timeouts of 0.2 s, each allowed a quarter of a second of lateness.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    server.join().unwrap();
}

#[test]
fn closing_or_resetting_without_a_reply_is_reported_as_closed() {
    let (addr, server) = serve(2, finish);
    let greet = client::greet(addr, "hi", TIMEOUT).unwrap_err();
    assert!(greet.is_closed(), "{greet:?}");
    let echo = EchoClient::connect(addr, TIMEOUT)
        .unwrap()
        .exchange("hi")
        .unwrap_err();
    assert!(echo.is_closed(), "{echo:?}");
    server.join().unwrap();

    let (addr, server) = serve(1, |mut s| {
        read_some(&mut s);
        // SO_LINGER 0: close sends a reset instead of a FIN.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let reset = client::greet(addr, "hi", TIMEOUT).unwrap_err();
    assert!(reset.is_closed(), "{reset:?}");
    server.join().unwrap();
}

#[test]
fn a_busy_answer_is_a_reply_and_the_connection_then_counts_as_closed() {
    let busy = |s: TcpStream| {
        // The busy answer goes out before the client's message is read.
        (&s).write_all(b"error: server busy, try again later\n")
            .unwrap();
        finish(s);
    };
    let (addr, server) = serve(2, busy);
    let reply = client::greet(addr, "hi", TIMEOUT).unwrap();
    assert_eq!(reply, "error: server busy, try again later");
    assert!(client::is_error_line(&reply));
    let mut conn = EchoClient::connect(addr, TIMEOUT).unwrap();
    assert_eq!(
        conn.exchange("hi").unwrap(),
        "error: server busy, try again later"
    );
    let after = conn.exchange("again").unwrap_err();
    assert!(after.is_closed(), "{after:?}");
    drop(conn);
    server.join().unwrap();
}

#[test]
fn endless_output_is_cut_off_as_a_wrong_reply() {
    let (addr, server) = serve(1, |mut s| {
        read_some(&mut s);
        let block = [b'x'; 64 * 1024];
        // Stops as soon as the client gives up and closes.
        while s.write_all(&block).is_ok() {}
    });
    let mut conn = EchoClient::connect(addr, TIMEOUT).unwrap();
    match conn.exchange("hi") {
        Err(ClientError::WrongReply { reply, .. }) => assert!(reply.len() > MAX_REPLY),
        other => panic!("{other:?}"),
    }
    drop(conn);
    server.join().unwrap();
}

#[test]
fn bad_input_is_refused_before_the_network() {
    let refused = client::greet("127.0.0.1:1".parse().unwrap(), "hi", TIMEOUT).unwrap_err();
    assert!(
        matches!(refused, ClientError::Connect { .. }),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .starts_with("cannot connect to 127.0.0.1:1: ")
    );
    assert!(client::resolve("no port here").is_err());

    let (addr, server) = serve(1, finish);
    let mut conn = EchoClient::connect(addr, TIMEOUT).unwrap();
    let two_lines = conn.send_line("a\nb").unwrap_err();
    assert!(
        two_lines.to_string().contains("may not contain"),
        "{two_lines}"
    );
    drop(conn);
    server.join().unwrap();
}

#[test]
fn stress_fails_every_holder_of_a_duplicated_greet_id() {
    // Ids 1, 2, 3, 1, 2, 3, ... — a server whose counter is shared without care.
    const CLIENTS: usize = 6;
    let (addr, server) = serve(CLIENTS, |mut s| {
        read_some(&mut s);
        let port = s.peer_addr().unwrap().port();
        let id = u64::from(port) % 3 + 1;
        s.write_all(format!("Hello Client {id}, server received your message!").as_bytes())
            .unwrap();
        finish(s);
    });
    let mut config = StressConfig::new(addr, Mode::Greet);
    config.clients = CLIENTS;
    config.concurrency = 2;
    config.timeout = TIMEOUT;
    let report = stress::run(&config, &|_| {});
    server.join().unwrap();
    // Six clients, at most three distinct ids: at least one id is shared, and its holders fail.
    assert_eq!(report.ids_unique, Some(false));
    assert!(report.failed() >= 2, "{:?}", report.outcomes);
    let mut counts = std::collections::HashMap::new();
    for outcome in &report.outcomes {
        *counts.entry(outcome.ids[0]).or_insert(0) += 1;
    }
    for outcome in &report.outcomes {
        assert_eq!(
            outcome.error.is_some(),
            counts[&outcome.ids[0]] > 1,
            "{outcome:?}"
        );
    }
}

#[test]
fn stress_counts_refused_and_unstarted_clients_as_failed() {
    let mut config = StressConfig::new("127.0.0.1:1".parse().unwrap(), Mode::Echo);
    config.clients = 5;
    config.concurrency = 2;
    let report = stress::run(&config, &|_| {});
    assert_eq!(report.failed(), 5);
    assert!(
        report
            .failures()
            .all(|(_, why)| why.starts_with("cannot connect"))
    );

    config.deadline = Some(Duration::from_nanos(1));
    let report = stress::run(&config, &|_| {});
    assert_eq!(report.failed(), 5);
    assert!(
        report
            .failures()
            .all(|(_, why)| why == "not started before the deadline")
    );
}
