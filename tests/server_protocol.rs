#![cfg(not(loom))]
//! One client at a time against the real TCP server: every reply and every error line of
//! PROTOCOL.md, byte for byte, and the close that follows it.

#[path = "support/server.rs"]
mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use many_clients::conn::Mode;
use many_clients::server::Event;
use support::{
    IDLE, Lines, NOT_UTF8, Recorder, connect, expect_then_eof, greet_raw, greet_reply, observed,
    start,
};

// ---- greet (seed 000) ----

#[test]
fn greet_replies_to_each_kind_of_message() {
    let recorder = Recorder::new();
    let server = start(Mode::Greet, |c| c.observer = observed(&recorder));
    // Each message, and its length once one trailing `\n` or `\r\n` is stripped.
    let messages: [(&[u8], usize); 6] = [
        (b"Hello, Server!", 14),
        (b"\n", 0),
        (b"with crlf\r\n", 9),
        (b"two newlines\n\n", 13),
        (b"\xff\xfe not utf-8 \xc3", 14),
        (b"x", 1),
    ];
    for (i, (message, len)) in messages.into_iter().enumerate() {
        let id = i as u64 + 1;
        let reply = greet_raw(server.addr, message);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            greet_reply(id),
            "{message:?}"
        );
        let events = recorder.events();
        assert!(
            events.contains(&Event::Message { id, len }),
            "{message:?}: {events:?}"
        );
    }
    let summary = server.stop();
    assert_eq!((summary.served, summary.refused, summary.cut), (6, 0, 0));
}

#[test]
fn greet_reply_survives_a_client_that_sent_far_more_than_it_reads() {
    // The server reads 1024 bytes, answers, and closes; the other 63 KiB are still unread. A
    // plain close would reset the connection and destroy the reply: the drain keeps it.
    let server = start(Mode::Greet, |_| {});
    let mut stream = connect(server.addr);
    stream.write_all(&vec![b'a'; 64 * 1024]).unwrap();
    expect_then_eof(&mut stream, greet_reply(1).as_bytes());
    // Linux keeps bytes it has already received even when a reset follows, so the reply alone
    // does not prove the drain over loopback; the reset itself would still be recorded here.
    let error = stream.take_error().unwrap();
    assert!(
        error.is_none(),
        "the server reset the connection: {error:?}"
    );
    drop(stream);
    server.wait_idle();
    assert_eq!(server.stop().served, 1);
}

#[test]
fn greet_client_that_closes_without_sending_gets_nothing() {
    let server = start(Mode::Greet, |_| {});
    let mut stream = connect(server.addr);
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    expect_then_eof(&mut stream, b"");
    drop(stream);
    let stats = server.wait_idle();
    assert_eq!((stats.clients.served, stats.clients.issued), (1, 1));
}

// ---- echo (seed 001) ----

#[test]
fn echo_answers_every_kind_of_line_in_order() {
    let server = start(Mode::Echo, |_| {});
    let mut c = Lines::connect(server.addr);
    c.exchange("Hello, Server!");
    // Several lines in one write: one reply each, in order.
    c.send(b"one\ntwo\r\n\n   \n\t three \t\n");
    for sent in ["one", "two", "", "   ", "\t three \t"] {
        c.expect_echo(sent);
    }
    // Unicode whitespace is trimmed as `str::trim` does; other Unicode is kept.
    c.send("\u{3000}\u{a0}ünïcödé ✓\u{2003}\n".as_bytes());
    c.expect_echo("ünïcödé ✓");
    c.send(" \u{3000} \n".as_bytes());
    c.expect_echo("");
    // A line split across writes is answered once, when complete. The pause is the scenario:
    // it makes the server see the halves in separate reads.
    for part in [&b"spl"[..], b"it li", b"ne\r", b"\n"] {
        c.send(part);
        thread::sleep(Duration::from_millis(30));
    }
    c.expect_echo("split line");
    // A final line without `\n`, then the client's half-close: answered, then EOF.
    c.send(b"last words");
    c.finish();
    c.expect_echo("last words");
    c.expect_then_eof(b"");
    server.wait_idle();
}

#[test]
fn echo_keeps_order_over_many_lines_in_one_write() {
    let server = start(Mode::Echo, |_| {});
    let mut c = Lines::connect(server.addr);
    let batch: String = (0..500).map(|i| format!("line {i}\n")).collect();
    c.send(batch.as_bytes());
    for i in 0..500 {
        c.expect_echo(&format!("line {i}"));
    }
    c.finish();
    c.expect_then_eof(b"");
}

#[test]
fn echo_client_that_closes_at_once_gets_nothing() {
    let server = start(Mode::Echo, |_| {});
    let c = Lines::connect(server.addr);
    c.finish();
    c.expect_then_eof(b"");
    assert_eq!(server.wait_idle().clients.served, 1);
}

// ---- limits and bad input ----

#[test]
// ANCHOR: busy_no_id
fn busy_answer_at_the_limit_takes_no_id() {
    let server = start(Mode::Echo, |c| c.max_connections = 2);
    let mut first = Lines::connect(server.addr);
    let mut second = Lines::connect(server.addr);
    first.exchange("one");
    second.exchange("two");
    let mut third = connect(server.addr);
    expect_then_eof(&mut third, support::BUSY);
    drop(third);
    let stats = server.stats();
    assert_eq!((stats.refused, stats.clients.issued, stats.live), (1, 2, 2));
    // ANCHOR_END: busy_no_id

    // Free a slot. `live` drops a moment before the slot itself is released, so a client that
    // comes in that moment may still be told busy: retry those (they take no id either).
    first.finish();
    first.expect_then_eof(b"");
    support::poll_until("the first client to end", || {
        (server.stats().live == 1).then_some(())
    });
    let mut busy_retries = 0;
    let reply = support::poll_until("a free slot", || {
        let reply = echo_once(server.addr);
        if reply.as_bytes() == support::BUSY {
            busy_retries += 1;
            None
        } else {
            Some(reply)
        }
    });
    many_clients::client::check_echo_reply(&reply, "again").unwrap();
    second.exchange("still here");
    let stats = server.stats();
    assert_eq!(stats.clients.issued, 3, "the busy client took no id");
    assert_eq!(stats.refused, 1 + busy_retries);
    let summary = server.stop();
    assert_eq!((summary.served, summary.refused), (3, 1 + busy_retries));
}

/// One echo exchange on a fresh connection: its reply (or busy line), then the client closes.
fn echo_once(addr: std::net::SocketAddr) -> String {
    let mut c = Lines::connect(addr);
    c.send(b"again\n");
    let line = c.line();
    c.finish();
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    line
}

#[test]
fn idle_echo_client_is_cut_after_the_timeout() {
    let timeout = Duration::from_millis(300);
    let server = start(Mode::Echo, |c| c.idle_timeout = timeout);
    let started = Instant::now();
    let mut c = Lines::connect(server.addr);
    let line = c.line();
    let waited = started.elapsed();
    assert_eq!(line.as_bytes(), IDLE);
    c.expect_then_eof(b"");
    assert!(waited >= timeout, "fired early, after {waited:?}");
    assert!(
        waited < timeout + Duration::from_secs(1),
        "fired late, after {waited:?}"
    );
    server.wait_idle();
}

#[test]
fn idle_timeout_counts_from_the_last_complete_line_and_ignores_trickles() {
    let timeout = Duration::from_millis(500);
    let server = start(Mode::Echo, |c| c.idle_timeout = timeout);
    let mut c = Lines::connect(server.addr);
    // Complete lines keep the connection alive past several timeouts.
    for i in 0..6 {
        thread::sleep(Duration::from_millis(150));
        c.exchange(&format!("still here {i}"));
    }
    // ANCHOR: trickle
    // Bytes that never finish a line do not: one every 50 ms, and the cut comes anyway.
    let started = Instant::now();
    c.stream()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(3), "never cut");
        c.send(b"z");
        let mut buf = [0; 64];
        match c.reader.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let waited = started.elapsed();
    // ANCHOR_END: trickle
    c.stream()
        .set_read_timeout(Some(support::IO_TIMEOUT))
        .unwrap();
    let mut rest = got;
    rest.extend(support::read_to_eof(&mut c.reader).unwrap());
    assert_eq!(
        rest.escape_ascii().to_string(),
        IDLE.escape_ascii().to_string()
    );
    assert!(
        waited < timeout + Duration::from_secs(1),
        "cut late, after {waited:?}"
    );
    drop(c);
    server.wait_idle();
}

#[test]
// ANCHOR: max_line
fn line_of_exactly_max_line_bytes_is_answered_and_one_more_is_refused() {
    let server = start(Mode::Echo, |c| c.max_line = 16);
    let mut c = Lines::connect(server.addr);
    c.exchange("0123456789abcdef"); // 16 bytes
    c.exchange("0123456789abcd\r"); // 15 + `\r`: the `\r` counts, still 16
    c.send(b"0123456789abcdef\r\n"); // 16 + `\r` = 17
    c.expect_then_eof(b"error: line too long (limit 16 bytes)\n");
    // ANCHOR_END: max_line

    // Without any newline: it fires as soon as the 17th byte is buffered.
    let mut c = Lines::connect(server.addr);
    c.send(b"0123456789abcdefg");
    c.expect_then_eof(b"error: line too long (limit 16 bytes)\n");

    // A final unterminated line at EOF is held to the limit too; lines before it are answered.
    let mut c = Lines::connect(server.addr);
    c.send(b"ok\n0123456789abcdefXYZ");
    c.finish();
    c.expect_echo("ok");
    c.expect_then_eof(b"error: line too long (limit 16 bytes)\n");
    server.wait_idle();
}

#[test]
fn invalid_utf8_line_gets_an_error_and_the_connection_stays_open() {
    let server = start(Mode::Echo, |_| {});
    let mut c = Lines::connect(server.addr);
    c.send(b"before\n\xff\xfe\nafter\n");
    c.expect_echo("before");
    assert_eq!(c.line().as_bytes(), NOT_UTF8);
    c.expect_echo("after");
    c.send(b"\xc3\n");
    assert_eq!(c.line().as_bytes(), NOT_UTF8);
    c.exchange("still open");
    c.finish();
    c.expect_then_eof(b"");
    server.wait_idle();
}
