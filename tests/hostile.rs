#![cfg(not(any(loom, shuttle)))]
//! Hostile clients and faults, each run *while well-behaved clients are being served*: the server
//! keeps serving, answers the hostile client as PROTOCOL.md says, and loses nothing. Against
//! every engine; a pool is given a worker for every connection a test holds open at once (the
//! good clients' and the hostile ones'), except where the test is about the pool's size.
//!
//! Every test: a server on a free loopback port with its [`support::Recorder`]; a few
//! well-behaved clients on threads that check every reply (`check_echo_reply` /
//! `parse_greet_id`); the hostile clients; then the checks: no well-behaved reply lost, the
//! hostile client got the protocol's exact bytes, its connection (and with a thread per
//! connection, its thread) is gone, `stats()` back to `live == 0`, `active == 0`. Each test ends
//! with the same fault again *during shutdown*: `join()` returns within the grace period and no
//! server thread (`accept`, `client-{id}`, `worker-{i}`, `busy`, `events-{i}`) is left. The tests take turns
//! (`engine_tests!` holds `serial()`) because they count server threads by name.
//!
//! The fd-limit games (`EMFILE` in the accept loop, 5,000 idle connections) are in
//! `tests/hostile_fds.rs`, a binary of their own.

#[path = "support/good.rs"]
mod good;
#[path = "support/log.rs"]
mod log;
#[path = "support/stall.rs"]
mod stall;
mod support;

use good::{Good, GoodPlan, Tally, figures};
use many_clients::conn::Mode;
use many_clients::server::{Engine, ServerConfig};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

support::engine_tests!(
    oversize_lines_get_the_limit_answer_and_nothing_else_is_disturbed,
    invalid_utf8_nul_and_lone_carriage_returns_get_their_answers,
    slowloris_and_silent_clients_are_cut_at_the_idle_timeout,
    a_client_that_never_reads_is_cut_and_leaves_no_thread_behind,
    resets_at_every_point_of_the_conversation_leave_nothing_behind,
    a_flood_of_2000_connects_gets_service_or_busy_and_the_server_recovers,
);

/// `--max-line` for the tests that send long lines.
const MAX_LINE: usize = 1024;
/// Well-behaved clients running beside each fault.
const GOOD: usize = 3;
/// A pool's worker more than the connections a test holds: a good client that reconnects may
/// still hold its old worker for a moment while its new connection waits.
const SPARE: usize = 1;

fn oversize_lines_get_the_limit_answer_and_nothing_else_is_disturbed(engine: Engine) {
    // One hostile connection at a time.
    let engine = at_least(engine, GOOD + 1 + SPARE);
    let h = start(Mode::Echo, engine, |c| c.max_line = MAX_LINE);
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let mut hostile = 0;

    // One byte over the limit, with its newline.
    let mut c = h.client();
    c.send(format!("{}\n", "x".repeat(MAX_LINE + 1)).as_bytes());
    c.half_close();
    c.expect_rest(&too_long(MAX_LINE));
    // A `\r` counts: N bytes of text and `\r\n` is one over.
    let mut c = h.client();
    c.send(format!("{}\r\n", "w".repeat(MAX_LINE)).as_bytes());
    c.half_close();
    c.expect_rest(&too_long(MAX_LINE));
    // Exactly the limit is a line, and the lines before a bad one in the same write are
    // answered first; what follows the bad one is not.
    let mut c = h.client();
    let exact = "y".repeat(MAX_LINE);
    let almost = "v".repeat(MAX_LINE - 1);
    let long = "z".repeat(MAX_LINE * 3);
    c.send(format!("first\n{exact}\n{almost}\r\n{long}\nnever\n").as_bytes());
    c.half_close();
    c.expect_echo("first");
    c.expect_echo(&exact);
    c.expect_echo(&almost);
    c.expect_rest(&too_long(MAX_LINE));
    hostile += 3;

    // Four megabytes with no newline at all, written on one thread while another reads: the
    // answer comes, the rest is drained (not stored), the connection closes cleanly.
    let before = good.answered();
    let mut c = h.client();
    let id = h.recorder.id_of(c.local);
    let mut writer = c.stream().try_clone().expect("clone");
    let flood = thread::spawn(move || {
        let sent = writer.write_all(&vec![b'a'; 4 << 20]);
        let _ = writer.shutdown(std::net::Shutdown::Write);
        sent.is_ok()
    });
    c.expect_rest(&too_long(MAX_LINE));
    assert!(
        flood.join().expect("writer"),
        "the server drained all 4 MiB"
    );
    h.wait_gone(id);
    hostile += 1;
    good.wait_answers(3);
    assert!(
        good.answered() > before,
        "well-behaved clients were served during the fault"
    );
    let phase1 = good.stop();
    h.wait_live(0);

    // Shutdown while a client is half-way through a long line.
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let mut c = h.client();
    c.send(&vec![b'b'; MAX_LINE - 1]);
    h.recorder.id_of(c.local);
    good.shutting_down();
    let stopped = h.stop_telling(&mut c);
    hostile += 1;
    let all = Tally::merged([phase1, good.stop()]);
    figures(
        engine,
        "oversize",
        &[
            "line over --max-line",
            "4 MiB without newline",
            "shutdown mid-line",
        ],
        hostile,
        &all,
        &format!(", join took {:?}", stopped.took),
    );
}

fn invalid_utf8_nul_and_lone_carriage_returns_get_their_answers(engine: Engine) {
    // One hostile connection at a time.
    let engine = at_least(engine, GOOD + 1 + SPARE);
    let h = start(Mode::Echo, engine, |c| c.max_line = MAX_LINE);
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let mut hostile = 0;

    let mut c = h.client();
    // Not UTF-8: the error line, and the connection stays open.
    let bad: [&[u8]; 6] = [
        b"bad \xff\xfe",
        b"\xc3",
        b"\xed\xa0\x80 an encoded surrogate",
        b"\xf8\x88\x80\x80\x80",
        b"\xc0\xaf overlong",
        b"fine until \x80",
    ];
    for line in bad {
        c.send(&[line, b"\n"].concat());
        assert_eq!(show(&c.line()), show(NOT_UTF8), "{}", show(line));
    }
    // NUL is valid UTF-8 and not white space: echoed as it is.
    for line in ["nul\0in\0the middle", "\0", "\0\0\0 "] {
        c.send(format!("{line}\n").as_bytes());
        c.expect_echo(line);
    }
    // Only carriage returns: one is the line ending's, the rest is white space.
    for line in ["\r", "\r\r\r", &"\r".repeat(100)] {
        c.send(format!("{line}\n").as_bytes());
        c.expect_echo("");
    }
    // In one write, in order: good, bad, good.
    c.send(b"one\nbad \xff\ntwo\n");
    c.expect_echo("one");
    assert_eq!(show(&c.line()), show(NOT_UTF8));
    c.expect_echo("two");
    // A final line of lone `\r`s without its `\n` is still answered at EOF.
    c.send(b"\r\r");
    c.half_close();
    c.expect_echo("\r\r");
    c.expect_rest(b"");
    hostile += 1;
    // Lone `\r`s, or NULs, past the limit with no newline: too long.
    for byte in [b'\r', b'\0'] {
        let mut c = h.client();
        c.send(&vec![byte; MAX_LINE + 1]);
        c.half_close();
        c.expect_rest(&too_long(MAX_LINE));
        hostile += 1;
    }
    good.wait_answers(3);
    let echo1 = good.stop();
    h.wait_live(0);

    // Shutdown while such a client is connected: the open connection gets the shutdown line.
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let mut c = h.client();
    c.send(b"\xff\0\r\n");
    assert_eq!(show(&c.line()), show(NOT_UTF8));
    good.shutting_down();
    h.stop_telling(&mut c);
    hostile += 1;
    let echo2 = good.stop();

    // Greet mode: the message is the first read, whatever its bytes; the seed's thread died on
    // these, ours answers each with its id.
    let h = start(Mode::Greet, engine, |_| {});
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let messages: [&[u8]; 7] = [
        b"\xff\xfe bad",
        b"\xc3",
        b"\0",
        b"\0\0\0\n",
        b"\r",
        b"\r\r\r\r",
        b"\r\n",
    ];
    for message in messages {
        let mut c = h.client();
        c.send(message);
        let id = h.recorder.id_of(c.local);
        c.half_close();
        c.expect_rest(&hello(id));
        hostile += 1;
    }
    good.wait_answers(3);
    let greet1 = good.stop();
    h.wait_live(0);
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let mut c = h.client();
    h.recorder.id_of(c.local);
    good.shutting_down();
    h.stop_telling(&mut c);
    hostile += 1;
    let all = Tally::merged([echo1, echo2, greet1, good.stop()]);
    figures(
        engine,
        "bad bytes",
        &[
            "invalid UTF-8",
            "NUL bytes",
            "only \\r",
            "greet: non-UTF-8/NUL/\\r",
            "shutdown with them open",
        ],
        hostile,
        &all,
        "",
    );
}

fn slowloris_and_silent_clients_are_cut_at_the_idle_timeout(engine: Engine) {
    let idle = Duration::from_millis(800);
    // PROTOCOL.md: a timeout fires within a quarter of a second of its deadline. This box is
    // shared with other builds, so the assertion allows more; the figure printed is the real one.
    let late_ok = Duration::from_millis(750);
    let every = Duration::from_millis(40);
    // Three hostile connections at once, and none of them may wait in a pool's queue: its idle
    // time would not be counted from the connect.
    let engine = at_least(engine, GOOD + 3 + SPARE);
    let h = start(Mode::Echo, engine, |c| c.idle_timeout = idle);
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let addr = h.addr;

    // Three at once: bytes without a newline; a whole line byte by byte, then bytes again;
    // nothing at all.
    let no_newline =
        thread::spawn(move || Client::connect(addr).trickle(std::iter::repeat(b'x'), every, T));
    let one_line = thread::spawn(move || {
        let bytes = b"slow\n".iter().copied().chain(std::iter::repeat(b'y'));
        let mut c = Client::connect(addr);
        let trickled = c.trickle(bytes, every, T);
        let newline_at = c.newline_sent.expect("the newline was sent") - c.connecting;
        (trickled, newline_at)
    });
    let silent = thread::spawn(move || {
        let mut c = Client::connect(addr);
        let line = c.line();
        let at = c.connecting.elapsed();
        c.half_close();
        c.expect_rest(b"");
        (line, at)
    });

    let (lines, end) = no_newline.join().expect("slowloris");
    assert_eq!(end, End::Eof);
    let [(at, line)] = &lines[..] else {
        panic!("one line, not {lines:?}")
    };
    assert_eq!(show(line), show(IDLE));
    assert!(
        *at >= idle && *at <= idle + late_ok,
        "cut after {at:?}, idle timeout {idle:?}"
    );
    let mut latest = *at - idle;

    let ((lines, end), newline_at) = one_line.join().expect("slow line");
    assert_eq!(end, End::Eof);
    let [(echoed_at, echo), (cut_at, line)] = &lines[..] else {
        panic!("two lines, not {lines:?}")
    };
    let text = String::from_utf8_lossy(echo);
    many_clients::client::check_echo_reply(&text, "slow").expect("the slow line is echoed");
    assert_eq!(show(line), show(IDLE));
    // Counted from the complete line: no earlier than from its newline's sending (before the
    // server could read it), no later than from its echo's arrival (after).
    let (since_sent, since_line) = (*cut_at - newline_at, *cut_at - *echoed_at);
    assert!(
        since_sent >= idle && since_line <= idle + late_ok,
        "cut {since_sent:?} after the newline was sent, {since_line:?} after its echo came"
    );
    latest = latest.max(since_line.saturating_sub(idle));

    let (line, at) = silent.join().expect("silent");
    assert_eq!(show(&line), show(IDLE));
    assert!(
        at >= idle && at <= idle + late_ok,
        "silent client cut after {at:?}"
    );
    latest = latest.max(at - idle);
    good.wait_answers(3);
    let echo1 = good.stop();
    h.wait_live(0);
    h.stop_when_idle();

    // Greet mode: a client that never sends its message.
    let h = start(Mode::Greet, engine, |c| c.idle_timeout = idle);
    let good = Good::start(&h, GoodPlan::new(2));
    let mut c = h.client();
    assert_eq!(show(&c.line()), show(IDLE));
    let at = c.connecting.elapsed();
    assert!(
        at >= idle && at <= idle + late_ok,
        "silent greet client cut after {at:?}"
    );
    latest = latest.max(at - idle);
    c.half_close();
    c.expect_rest(b"");
    good.wait_answers(3);
    let greet1 = good.stop();
    h.stop_when_idle();

    // Shutdown during a slowloris (with a long idle timeout): it gets the shutdown line at once.
    let h = start(Mode::Echo, engine, |c| {
        c.idle_timeout = Duration::from_secs(30)
    });
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let addr = h.addr;
    let (local, connected) = std::sync::mpsc::channel();
    let slow = thread::spawn(move || {
        let mut c = Client::connect(addr);
        local.send(c.local).expect("the test waits for it");
        c.trickle(std::iter::repeat(b'z'), every, T)
    });
    let local = connected.recv_timeout(T).expect("the slowloris connects");
    // Accepted before shutdown begins (its `Connected`, not just any good client's).
    h.recorder.id_of(local);
    good.shutting_down();
    let stopped = h.stop();
    let (lines, end) = slow.join().expect("slowloris");
    assert_eq!(end, End::Eof);
    let [(_, line)] = &lines[..] else {
        panic!("one line, not {lines:?}")
    };
    assert_eq!(show(line), show(SHUTTING_DOWN));
    assert_eq!(stopped.summary.cut, 0);
    let all = Tally::merged([echo1, greet1, good.stop()]);
    figures(
        engine,
        "slowloris",
        &[
            "1 byte at a time, no newline",
            "a line byte by byte",
            "silent (echo, greet)",
            "shutdown mid-trickle",
        ],
        5,
        &all,
        &format!(", latest idle cut {latest:?} after its deadline"),
    );
}

// The only test of a client that never reads while its replies pile up (the one that stalls
// a single reply larger than any buffer is in `tests/server_concurrency.rs`).
fn a_client_that_never_reads_is_cut_and_leaves_no_thread_behind(engine: Engine) {
    let log = log::log();
    let idle = Duration::from_secs(1);
    // The never-reader and one more client at a time.
    let engine = at_least(engine, GOOD + 2 + SPARE);
    let h = start(Mode::Echo, engine, |c| c.idle_timeout = idle);
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let before = good.answered();
    let (mut c, sent) = stall::never_reader(&h);
    let id = h.recorder.id_of(c.local);
    let blocked = Instant::now();
    assert!(sent >= 2 * 1000, "only {sent} bytes went out");
    let handler = h
        .recorder
        .handler_of(id)
        .expect("its handler reported a line");
    assert!(thread_alive(&handler) || h.recorder.has_closed(id));
    // Other clients are served all the while, a new one too.
    h.serves_a_new_client("not stuck");
    h.wait_gone(id);
    let gave_up = blocked.elapsed();
    // The write times out; or, should replies creep out after all and the batch take longer
    // than the idle timeout, the next read gets the idle timeout, and the drain (at most 1 s)
    // ends the connection.
    assert!(
        gave_up <= 2 * idle + Duration::from_secs(2),
        "gave up after {gave_up:?}"
    );
    assert!(good.answered() > before, "others were served meanwhile");
    log.wait_for_line(&format!("[-] Disconnected: {}", c.local));
    // What did arrive is a run of right echoes. If the writes crept forward (a byte of window
    // now and then) instead of stalling, the idle timeout came first and its line is last.
    let (got, end) = c.rest(T);
    assert_ne!(end, End::TimedOut, "the connection is closed");
    let complete: Vec<&[u8]> = got
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| l.ends_with(b"\n"))
        .collect();
    let idle_line = complete.last() == Some(&IDLE);
    let echoes = &complete[..complete.len() - usize::from(idle_line)];
    for line in echoes {
        let text = String::from_utf8_lossy(line);
        many_clients::client::check_echo_reply(&text, "s").unwrap_or_else(|why| panic!("{why}"));
    }
    h.serves_a_new_client("still served");
    let replies = echoes.len();
    good.wait_answers(3);
    let phase1 = good.stop();
    drop(c);
    let stopped = h.stop_when_idle();
    assert_eq!(stopped.summary.panicked, 0);

    // Shutdown while the server is blocked writing to it: the grace period runs out and the
    // connection is cut; nobody else is.
    let grace = Duration::from_secs(1);
    let h = start(Mode::Echo, engine, |c| {
        c.idle_timeout = Duration::from_secs(30);
        c.grace = grace;
    });
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let (c2, _) = stall::never_reader(&h);
    let id = h.recorder.id_of(c2.local);
    let (reported, replied) = h.recorder.lines(id);
    assert!(reported > replied, "its thread is stuck in a write");
    good.shutting_down();
    let stopped = h.stop();
    // Cut once the grace period is over, or (if its writes crept forward to the end of its
    // replies) told and closed within it; nobody else is cut.
    assert!(
        stopped.summary.cut <= 1,
        "only the never-reader may be cut: {stopped:?}"
    );
    if stopped.summary.cut == 1 {
        assert!(
            stopped.took >= grace,
            "cut only after the grace period: {:?}",
            stopped.took
        );
    }
    let all = Tally::merged([phase1, good.stop()]);
    drop(c2);
    figures(
        engine,
        "never reads",
        &[
            "never reads while replies pile up",
            "shutdown while blocked in write",
        ],
        2,
        &all,
        &format!(
            ", sent {sent} bytes, read {replies} replies after{}; cut after {gave_up:?}; \
             join took {:?} (cut {})",
            if idle_line { " and the idle line" } else { "" },
            stopped.took,
            stopped.summary.cut
        ),
    );
}

// The only test of resets: a client that resets mid-conversation disturbs nobody, and the
// console says it disconnected.
fn resets_at_every_point_of_the_conversation_leave_nothing_behind(engine: Engine) {
    let log = log::log();
    // Fifteen hostile connections at once at shutdown, beside the good clients and the steady
    // one; a pool that queued them would never be mid-reply when they reset.
    let engine = at_least(engine, GOOD + 1 + 15 + SPARE);
    let h = start(Mode::Echo, engine, |_| {});
    // One connection for the whole first phase: the resets all around it must not disturb it.
    let mut steady = h.client();
    steady.exchange("before");
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let before = good.answered();
    let mut gone = Vec::new();
    let mut watch = |c: &Client| gone.push((h.recorder.id_of(c.local), c.local));
    for _ in 0..10 {
        // Before sending anything.
        let c = h.client();
        watch(&c);
        c.reset();
        // Mid-line.
        let mut c = h.client();
        watch(&c);
        c.send(b"half a li");
        c.reset();
        // Mid-conversation: a line answered, then half a line sits in the server's buffer when
        // the reset comes.
        let mut c = h.client();
        watch(&c);
        c.exchange("hello");
        c.send(b"never fini");
        c.reset();
        // A whole line, reset before its reply is read.
        let mut c = h.client();
        watch(&c);
        c.send(b"whole line\n");
        c.reset();
        // Mid-reply: the server has a lot to write when the reset comes.
        let mut c = h.client();
        watch(&c);
        c.send(&b"m\n".repeat(20_000));
        let first = c.line();
        many_clients::client::check_echo_reply(&String::from_utf8_lossy(&first), "m")
            .expect("first reply");
        c.reset();
    }
    for &(id, peer) in &gone {
        h.wait_gone(id);
        log.wait_for_line(&format!("[-] Disconnected: {peer}"));
    }
    steady.exchange("after");
    assert!(good.answered() > before);
    good.wait_answers(3);
    let echo1 = good.stop();
    // Only the steady client is left, and every other connection is counted served.
    let stats = h.wait_live(1);
    assert_eq!(stats.clients.served + 1, stats.clients.issued, "{stats:?}");
    steady.half_close();
    steady.expect_rest(b"");
    h.serves_a_new_client("new");
    h.wait_live(0);

    // Shutdown while connections reset: ten mid-line and five mid-reply reset just as the
    // server tells them it is shutting down.
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let mut hostiles = Vec::new();
    for i in 0..15 {
        let mut c = h.client();
        h.recorder.id_of(c.local);
        if i < 10 {
            c.send(b"half");
        } else {
            c.send(&b"m\n".repeat(20_000));
        }
        hostiles.push(c);
    }
    good.shutting_down();
    let stopping = h.stop_in_background();
    for c in hostiles {
        c.reset();
    }
    let stopped = stopping.join();
    assert_eq!((stopped.summary.cut, stopped.summary.panicked), (0, 0));
    let echo2 = good.stop();
    let mut hostile = gone.len() as u64 + 15;

    // Greet mode: reset before sending, and after sending before reading the reply.
    let h = start(Mode::Greet, engine, |_| {});
    let good = Good::start(&h, GoodPlan::new(GOOD));
    let mut ids = Vec::new();
    for _ in 0..10 {
        let c = h.client();
        ids.push(h.recorder.id_of(c.local));
        c.reset();
        let mut c = h.client();
        c.send(b"hello, then gone");
        ids.push(h.recorder.id_of(c.local));
        c.reset();
    }
    for &id in &ids {
        h.wait_gone(id);
    }
    good.wait_answers(3);
    let greet1 = good.stop();
    h.wait_live(0);
    hostile += ids.len() as u64;
    let good = Good::start(&h, GoodPlan::new(2));
    let silent: Vec<Client> = (0..10).map(|_| h.client()).collect();
    for c in &silent {
        h.recorder.id_of(c.local);
    }
    good.shutting_down();
    let stopping = h.stop_in_background();
    for c in silent {
        c.reset();
    }
    let stopped = stopping.join();
    assert_eq!((stopped.summary.cut, stopped.summary.panicked), (0, 0));
    hostile += 10;
    let all = Tally::merged([echo1, echo2, greet1, good.stop()]);
    figures(
        engine,
        "resets",
        &[
            "RST before sending",
            "RST mid-line",
            "RST mid-conversation",
            "RST before reading the reply",
            "RST mid-reply",
            "RST during shutdown",
        ],
        hostile,
        &all,
        "",
    );
}

/// What the connections of a flood got.
#[derive(Debug, Default)]
struct FloodTally {
    served: u64,
    busy: u64,
    /// After shutdown began: the shutdown line, a refused connect, or a close without reply.
    unserved_at_shutdown: u64,
    /// Anything else: must stay empty.
    wrong: Vec<String>,
    /// The longest any one connection waited for its answer.
    slowest: Duration,
}

/// `threads` × `batches` × `batch` connections, as fast as they go: each thread opens a batch
/// (connect, send a line), then reads each answer, then closes them all. Once `shutting` is set
/// a connection may also go unanswered.
fn flood(
    addr: SocketAddr,
    threads: usize,
    batches: usize,
    batch: usize,
    shutting: Arc<AtomicBool>,
) -> FloodTally {
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let shutting = shutting.clone();
            thread::Builder::new()
                .name(format!("flood-{t}"))
                .spawn(move || {
                    let mut tally = FloodTally::default();
                    for b in 0..batches {
                        let mut open = Vec::new();
                        for i in 0..batch {
                            let msg = format!("flood {t}.{b}.{i}");
                            let began = Instant::now();
                            let connected =
                                TcpStream::connect_timeout(&addr, T).and_then(|mut s| {
                                    s.set_nodelay(true)?;
                                    s.set_read_timeout(Some(T))?;
                                    s.set_write_timeout(Some(T))?;
                                    s.write_all(format!("{msg}\n").as_bytes())?;
                                    Ok(s)
                                });
                            match connected {
                                Ok(s) => open.push((BufReader::new(s), msg, began)),
                                Err(_) if shutting.load(Ordering::SeqCst) => {
                                    tally.unserved_at_shutdown += 1
                                }
                                Err(e) => tally.wrong.push(format!("{msg}: connect: {e}")),
                            }
                        }
                        // Read through the batch without closing any of it: the whole
                        // batch stays connected until every answer is in, so a batch larger
                        // than the limit is over it whatever the timing.
                        for (reader, msg, began) in open.iter_mut() {
                            let (msg, began) = (&*msg, *began);
                            let mut line = Vec::new();
                            let read = reader.read_until(b'\n', &mut line);
                            tally.slowest = tally.slowest.max(began.elapsed());
                            let shut = shutting.load(Ordering::SeqCst);
                            match read {
                                Ok(_) if line == BUSY => tally.busy += 1,
                                Ok(_) if line.starts_with(b"[") => {
                                    match many_clients::client::check_echo_reply(
                                        &String::from_utf8_lossy(&line),
                                        msg,
                                    ) {
                                        Ok(()) => tally.served += 1,
                                        Err(why) => tally.wrong.push(format!("{msg}: {why}")),
                                    }
                                }
                                Ok(_) if shut && (line == SHUTTING_DOWN || line.is_empty()) => {
                                    tally.unserved_at_shutdown += 1
                                }
                                Err(e)
                                    if shut
                                        && !matches!(
                                            e.kind(),
                                            ErrorKind::WouldBlock | ErrorKind::TimedOut
                                        ) =>
                                {
                                    tally.unserved_at_shutdown += 1
                                }
                                Ok(_) => tally.wrong.push(format!("{msg}: got {:?}", show(&line))),
                                Err(e) => tally
                                    .wrong
                                    .push(format!("{msg}: {e} after {:?}", began.elapsed())),
                            }
                        }
                    }
                    tally
                })
                .expect("spawn a flood thread")
        })
        .collect();
    let mut all = FloodTally::default();
    for w in workers {
        let t = w.join().expect("flood thread");
        all.served += t.served;
        all.busy += t.busy;
        all.unserved_at_shutdown += t.unserved_at_shutdown;
        all.wrong.extend(t.wrong);
        all.slowest = all.slowest.max(t.slowest);
    }
    all
}

fn a_flood_of_2000_connects_gets_service_or_busy_and_the_server_recovers(engine: Engine) {
    let max = 100;
    // Every admitted connection of a batch is held open until the whole batch is answered, so
    // a pool needs a worker for each place, or the batch waits on itself until the idle timeout.
    let h = start(Mode::Echo, at_least(engine, max), |c| {
        c.max_connections = max;
        c.idle_timeout = Duration::from_secs(10);
    });
    // On one connection each for the whole test, so they hold 3 of the 100 places.
    let good = Good::start(&h, GoodPlan::persistent(GOOD));
    let before = good.answered();
    let began = Instant::now();
    // A batch is held open until its answers are read, and one batch is over the limit on its
    // own: some of every batch must be answered busy.
    let (threads, batches, batch) = (8, 2, 125);
    let total = (threads * batches * batch) as u64;
    // Watch the threads answering busy: an earlier version started one per refused connection
    // (hundreds here); now at most `busy_responders` at once, the rest answered at once.
    let flooding = Arc::new(AtomicBool::new(true));
    let watcher = {
        let flooding = flooding.clone();
        thread::spawn(move || {
            let mut most = 0;
            while flooding.load(Ordering::SeqCst) {
                let busy = server_threads().iter().filter(|n| *n == "busy").count();
                most = most.max(busy);
                thread::sleep(Duration::from_millis(2)); // a sampling pause, not a sync
            }
            most
        })
    };
    let f = flood(
        h.addr,
        threads,
        batches,
        batch,
        Arc::new(AtomicBool::new(false)),
    );
    let took = began.elapsed();
    flooding.store(false, Ordering::SeqCst);
    let most_busy_threads = watcher.join().expect("the thread watcher");
    // The cap counts permits. A busy thread gives its permit back as the last act of its
    // closure and then still exists for the moment std and glibc need to end it, so the accept
    // loop may start the next one before the last is gone: a few more than the cap can be
    // seen (65 was, once). Hundreds, as before the cap, cannot.
    const ON_THEIR_WAY_OUT: usize = 8;
    assert!(
        most_busy_threads <= ServerConfig::DEFAULT_BUSY_RESPONDERS + ON_THEIR_WAY_OUT,
        "{most_busy_threads} busy threads at once, more than the cap"
    );
    assert!(
        f.wrong.is_empty(),
        "{} of {total} connections went wrong: {:#?}",
        f.wrong.len(),
        f.wrong
    );
    assert_eq!(f.served + f.busy, total, "{f:?}");
    assert!(f.busy > 0, "the flood went past the limit: {f:?}");
    assert!(
        f.slowest < Duration::from_secs(5),
        "a connection waited {:?}",
        f.slowest
    );
    let stats = h.stats();
    assert_eq!(
        stats.refused, f.busy,
        "every busy answer is counted refused"
    );
    assert_eq!(h.recorder.refused(), f.busy);
    assert!(
        stats.clients.peak <= max as u64,
        "never more than the limit at once: {stats:?}"
    );
    assert!(
        good.answered() > before,
        "the well-behaved clients were served during the flood"
    );
    // Recovered: back to the three well-behaved connections, and a new client is served.
    h.wait_live(3);
    h.serves_a_new_client("after the flood");
    let phase1 = good.stop();
    h.wait_live(0);

    // The same flood, and shutdown in the middle of it: every connection still ends at once.
    let good = Good::start(&h, GoodPlan::persistent(GOOD));
    let shutting = Arc::new(AtomicBool::new(false));
    let (addr, flag) = (h.addr, shutting.clone());
    let second = thread::spawn(move || flood(addr, threads, batches, batch, flag));
    let spy = h.recorder.clone();
    let seen = || spy.connected() + spy.refused();
    let mark = seen();
    eventually("the second flood is under way", SETTLE, || {
        seen() >= mark + 300
    });
    shutting.store(true, Ordering::SeqCst);
    good.shutting_down();
    let stopped = h.stop();
    let f2 = second.join().expect("second flood");
    assert!(f2.wrong.is_empty(), "{:#?}", f2.wrong);
    assert_eq!(
        f2.served + f2.busy + f2.unserved_at_shutdown,
        total,
        "{f2:?}"
    );
    assert!(
        f2.slowest < Duration::from_secs(5),
        "a connection waited {:?}",
        f2.slowest
    );
    assert_eq!(stopped.summary.cut, 0);
    let all = Tally::merged([phase1, good.stop()]);
    figures(
        engine,
        "flood",
        &[
            "2,000 connects against --max-connections 100",
            "the same flood with shutdown mid-way",
        ],
        2 * total,
        &all,
        &format!(
            ", flood 1: {} served + {} busy in {took:?} (slowest {:?}, at most {most_busy_threads} busy \
             threads at once); flood 2: {} served, {} busy, {} unserved at shutdown; join took {:?}",
            f.served, f.busy, f.slowest, f2.served, f2.busy, f2.unserved_at_shutdown, stopped.took
        ),
    );
}
