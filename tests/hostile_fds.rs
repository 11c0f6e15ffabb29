#![cfg(not(any(loom, shuttle)))]
//! The file-descriptor games, in a binary of their own because they change this process's
//! `RLIMIT_NOFILE` and, for a while, leave it no free descriptor at all; against every engine:
//!
//! * out of descriptors (`EMFILE`): the accept loop must neither spin nor die. It backs off,
//!   logs once per burst, the connected clients go on being served, and the clients that waited
//!   in the backlog are served as soon as descriptors are free again. Measured: the `accept`
//!   thread's CPU time (`/proc/self/task/<tid>/stat`) over the window.
//! * shutdown while out of descriptors, with a connection that got the last descriptor and so
//!   no second handle for shutdown to wake it by: `join()` still returns within the grace period.
//! * 5,000 idle connections held at once (64 KiB thread stacks), while others are served; the
//!   RSS each costs is printed; then shutdown with all of them open.
//!
//! The limit is read and changed with `getrlimit`/`setrlimit` from the `libc` crate, which the
//! crate depends on anyway (for `MSG_DONTWAIT` and `MSG_NOSIGNAL`). Where the hard limit is too
//! low for a test, it says so and skips.

#[path = "support/good.rs"]
mod good;
#[path = "support/log.rs"]
mod log;
mod support;

use good::{Good, GoodPlan, Tally, figures};
use many_clients::conn::Mode;
use many_clients::server::{Engine, ServerConfig};
use socket2::{Domain, Socket, Type};
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::threads::{thread_cpu_ticks, vm_rss_kib};
use support::*;

support::engine_tests!(
    running_out_of_fds_neither_spins_nor_kills_the_accept_loop,
    five_thousand_idle_connections_are_held_while_others_are_served,
);

/// `EMFILE` on Linux.
const EMFILE: i32 = 24;

/// `(soft, hard)` `RLIMIT_NOFILE` of this process.
fn nofile() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0, "getrlimit: {}", std::io::Error::last_os_error());
    (limit.rlim_cur, limit.rlim_max)
}

/// Sets this process's soft `RLIMIT_NOFILE` (for every thread: it is the process's).
fn set_soft_nofile(soft: u64) -> Result<(), String> {
    let (_, hard) = nofile();
    if soft > hard {
        return Err(format!("the hard limit is {hard}"));
    }
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Puts the soft limit back when dropped.
struct SoftLimit {
    old: u64,
}

impl SoftLimit {
    fn set(soft: u64) -> Result<SoftLimit, String> {
        let (old, _) = nofile();
        set_soft_nofile(soft)?;
        Ok(SoftLimit { old })
    }
}

impl Drop for SoftLimit {
    fn drop(&mut self) {
        let _ = set_soft_nofile(self.old);
    }
}

/// Descriptors open in this process now.
fn open_fds() -> usize {
    // The directory handle itself is one of the entries.
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1))
}

/// Opens `/dev/null` until the process is out of descriptors; dropping the result frees them.
fn exhaust() -> Vec<File> {
    let mut hog = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(e) if e.raw_os_error() == Some(EMFILE) => return hog,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
        assert!(hog.len() < 1 << 20, "no descriptor limit in sight");
    }
}

/// The threads that accept connections (polled for: a new thread names itself): the blocking
/// engines' one `accept` thread, or every event loop (each accepts on a listener of its own).
fn acceptors(engine: Engine) -> Vec<u64> {
    let (count, accepts): (usize, fn(&str) -> bool) = match engine {
        Engine::Events { loops } => (loops, |n| n.starts_with("events-")),
        _ => (1, |n| n == "accept"),
    };
    let mut tids = Vec::new();
    eventually(&format!("{count} accepting threads"), SETTLE, || {
        tids = threads()
            .into_iter()
            .filter(|(_, n)| accepts(n))
            .map(|(t, _)| t)
            .collect();
        tids.len() == count
    });
    tids
}

/// CPU ticks the threads `tids` have used.
fn cpu_ticks(tids: &[u64]) -> u64 {
    tids.iter().map(|&t| thread_cpu_ticks(t)).sum()
}

/// Connects each of `sockets` (made while descriptors were free) to `addr`, where it waits in
/// the backlog, and sends `"{label} {i}\n"` on the `i`-th.
fn into_backlog(
    addr: SocketAddr,
    sockets: impl IntoIterator<Item = Socket>,
    label: &str,
) -> Vec<Client> {
    let connect = |(i, s): (usize, Socket)| {
        s.connect_timeout(&addr.into(), T)
            .expect("connect into the backlog");
        let mut c = Client::from_stream(s.into());
        c.send(format!("{label} {i}\n").as_bytes());
        c
    };
    sockets.into_iter().enumerate().map(connect).collect()
}

/// A client socket made now, while descriptors are free, to be connected later.
fn spare_socket() -> Socket {
    Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket")
}

/// Polls until the `accept` thread is blocked in `accept` (its `wchan`): such a call has
/// already reserved the descriptor its connection will get, so the first client to arrive while
/// the process is out of descriptors is still accepted (a Linux detail the test relies on).
fn wait_blocked_in_accept(tid: u64) {
    wait_blocked(tid, "accept", "accept");
}

/// Polls until thread `tid` sleeps in a kernel function whose name contains `wchan`.
fn wait_blocked(tid: u64, what: &str, wchan: &str) {
    let path = format!("/proc/self/task/{tid}/wchan");
    eventually(&format!("the {what} thread blocks"), SETTLE, || {
        std::fs::read_to_string(&path).is_ok_and(|w| w.contains(wchan))
    });
}

/// Waits for `stopping` (a [`TestServer::stop_in_background`]) while this process is out of
/// descriptors (`hog`). If `join()` has not returned within `limit`, frees the descriptors,
/// unsticks the server (`unstick`) and fails.
fn stop_while_out_of_fds(
    stopping: Stopping,
    hog: Vec<File>,
    limit: Duration,
    unstick: impl FnOnce(),
) -> Stopped {
    let stopped_in_time = poll(limit, || stopping.is_finished());
    drop(hog);
    if !stopped_in_time {
        unstick();
        panic!("join() did not return within {limit:?} while the process was out of descriptors");
    }
    // The end-of-test checks, now that descriptors are free again.
    stopping.join()
}

fn running_out_of_fds_neither_spins_nor_kills_the_accept_loop(engine: Engine) {
    let log = log::log();
    let fds_at_start = open_fds();
    // Lower the soft limit to a little above what is open, so running out is quick. (Lowering
    // it is always allowed.)
    let _limit = SoftLimit::set((fds_at_start + 256) as u64).expect("lower the soft limit");
    let grace = Duration::from_secs(2);
    let config = |c: &mut ServerConfig| {
        c.idle_timeout = Duration::from_secs(30);
        c.grace = grace;
    };
    // Two good clients and the six that arrive out of descriptors, all served at once.
    let engine = at_least(engine, 2 + 6);
    // The blocking engines accept on a thread blocked in `accept`, which has already reserved
    // the descriptor its next connection gets (a Linux detail the test relies on); an event
    // loop only calls `accept` when the listener is ready, so it has none in hand.
    let blocking = !matches!(engine, Engine::Events { .. });
    let h = start(Mode::Echo, engine, config);
    // On one connection each: a new connection would need a descriptor in this process too.
    let good = Good::start(&h, GoodPlan::persistent(2));
    let tids = acceptors(engine);
    // Client sockets made while descriptors are free: connecting one later takes no new one.
    let first = spare_socket();
    let waiting: Vec<Socket> = (0..5).map(|_| spare_socket()).collect();
    let last = spare_socket();
    let failed_before = log.count("accept failed");
    let recovered_before = log.count("accept recovered");
    // What the accepting threads use with nothing wrong, over as long as the fault will last:
    // nothing for an `accept` thread, but event loops serve the good clients too.
    let window = Duration::from_millis(1500);
    let (began, cpu_before) = (Instant::now(), cpu_ticks(&tids));
    while began.elapsed() < window {
        good.wait_answers(1);
    }
    let serving = cpu_ticks(&tids) - cpu_before;

    // 1. Out of descriptors, six clients arrive. With a blocking engine the first gets the
    //    descriptor the blocked `accept` had reserved (its shutdown waker needs no descriptor
    //    of its own); for the others `accept` fails with EMFILE, again and again, until
    //    descriptors are back.
    if blocking {
        wait_blocked_in_accept(tids[0]);
    }
    let reserved = usize::from(blocking);
    let cpu_before = cpu_ticks(&tids);
    let connected_before = h.recorder.connected();
    let hog = exhaust();
    let began = Instant::now();
    let mut clients = into_backlog(h.addr, std::iter::once(first).chain(waiting), "waited");
    // Hold it for a second and a half (the length of the fault is the scenario); the clients
    // already connected keep being served all along, and so is a newcomer that got in.
    let before = good.answered();
    for (i, c) in clients.iter_mut().enumerate().take(reserved) {
        c.expect_echo(&format!("waited {i}"));
    }
    while began.elapsed() < window {
        good.wait_answers(1);
    }
    let served_meanwhile = good.answered() - before;
    let connected_meanwhile = h.recorder.connected() - connected_before;
    drop(hog);
    let out_for = began.elapsed();
    // Descriptors are back: the ones from the backlog are served.
    for (i, c) in clients.iter_mut().enumerate() {
        if i >= reserved {
            c.expect_echo(&format!("waited {i}"));
        }
        c.half_close();
        c.expect_rest(b"");
    }
    let cpu = cpu_ticks(&tids) - cpu_before;
    assert_eq!(
        connected_meanwhile, reserved as u64,
        "only a descriptor reserved by a blocked accept could be used"
    );
    assert!(served_meanwhile > 0);
    // 100 ticks a second: a spinning loop would have used about 150 more in this window.
    assert!(
        cpu <= serving + 15,
        "the accepting threads used {cpu} ticks of CPU in {out_for:?} ({serving} serving alone)"
    );
    // Each accepting thread warns once per burst (an event loop that found its listener
    // empty has nothing to warn about).
    let warned = log.count("accept failed") - failed_before;
    let recovered = log.count("accept recovered") - recovered_before;
    assert!(
        (1..=tids.len()).contains(&warned),
        "{warned} warnings from {} accepting threads: one per burst each",
        tids.len()
    );
    assert_eq!(recovered, warned, "and one when each recovered");
    good.wait_answers(3);
    let tally1 = good.stop();
    h.wait_live(0);

    // 1b. The same with nothing else going on: no client wakes the accepting thread, only its
    //     own pause ending does. It must sleep through the fault, and still serve the client
    //     that waited when descriptors are back.
    let quiet: Vec<Socket> = (0..1 + reserved).map(|_| spare_socket()).collect();
    if blocking {
        wait_blocked_in_accept(tids[0]);
    }
    let cpu_before = cpu_ticks(&tids);
    let hog = exhaust();
    let mut quiet = into_backlog(h.addr, quiet, "quiet");
    for (i, c) in quiet.iter_mut().enumerate().take(reserved) {
        c.expect_echo(&format!("quiet {i}"));
    }
    std::thread::sleep(window); // the length of the fault: the scenario, not a synchronisation
    drop(hog); // (reading a thread's CPU time takes a descriptor too)
    let cpu = cpu_ticks(&tids) - cpu_before;
    assert!(
        cpu <= 10,
        "the accepting threads used {cpu} ticks of CPU in {window:?} out of descriptors, idle"
    );
    for (i, c) in quiet.iter_mut().enumerate().skip(reserved) {
        c.expect_echo(&format!("quiet {i}"));
    }
    for c in &mut quiet {
        c.half_close();
        c.expect_rest(b"");
    }
    drop(quiet);
    h.wait_live(0);

    // 2. Shutdown while out of descriptors (with `accept` blocked, for a blocking engine): the
    //    server cannot connect to itself to wake it then (that needs a descriptor), and must
    //    stop all the same.
    let good = Good::start(&h, GoodPlan::persistent(2));
    if blocking {
        wait_blocked_in_accept(tids[0]);
    }
    let addr = h.addr;
    let hog = exhaust();
    good.shutting_down();
    let stopping = h.stop_in_background();
    let stopped1 = stop_while_out_of_fds(stopping, hog, grace, || {
        drop(TcpStream::connect_timeout(&addr, T));
    });
    let mut tallies = vec![tally1, good.stop()];

    // 3. Shutdown while out of descriptors, with a client that got in on the descriptor the
    //    blocked `accept` had reserved. Its waker shares that descriptor (an earlier version
    //    `dup`ed it, failed here, and had to fall back to polling): shutdown must reach it.
    //    Only the blocking engines have such a client, or a waker per connection; an event
    //    loop reaches its connections itself, as in 2.
    let stopped2 = if blocking {
        let (stopped, tally) = shutdown_reaches_the_last_one_in(engine, config, grace, last);
        tallies.push(tally);
        Some(stopped)
    } else {
        drop(last);
        None
    };
    drop(clients);
    let mut open = 0;
    eventually(
        &format!("no descriptor leaked ({fds_at_start} at the start)"),
        SETTLE,
        || {
            open = open_fds();
            open <= fds_at_start
        },
    );
    let all = Tally::merged(tallies);
    let mut classes = vec![
        "out of fds with clients in the backlog",
        "shutdown out of fds",
    ];
    if blocking {
        classes.push("shutdown out of fds, client without waker");
    }
    figures(
        engine,
        "EMFILE",
        &classes,
        6 + u64::from(blocking),
        &all,
        &format!(
            ", accepting threads' CPU {cpu} ticks in {out_for:?} out of fds ({serving} in as \
             long serving alone); {served_meanwhile} replies served meanwhile; joins took {:?} \
             and {:?}",
            stopped1.took,
            stopped2.map(|s| s.took)
        ),
    );
}

/// Part 3 of the EMFILE test, for a blocking engine: `last` connects on the descriptor the
/// blocked `accept` had reserved, then shutdown must reach it while the process is out of
/// descriptors.
fn shutdown_reaches_the_last_one_in(
    engine: Engine,
    config: impl FnOnce(&mut ServerConfig),
    grace: Duration,
    last: Socket,
) -> (Stopped, Tally) {
    let h = start(Mode::Echo, engine, config);
    let good = Good::start(&h, GoodPlan::persistent(2));
    wait_blocked_in_accept(acceptors(engine)[0]);
    let addr = h.addr;
    let mut hog = exhaust();
    last.connect_timeout(&addr.into(), T).expect("connect");
    let mut last = Client::from_stream(last.into());
    last.send(b"last one in\n");
    last.expect_echo("last one in");
    // Wait until its handler is back in `read` (`wait_woken`), where only a wake-up or a
    // timeout reaches it. Looking needs two descriptors for a moment; then take them back.
    let id = h.recorder.id_of(last.local);
    hog.truncate(hog.len() - 2);
    let name = h
        .recorder
        .handler_of(id)
        .expect("its handler reported a line");
    let handler = threads().into_iter().find(|(_, n)| *n == name);
    wait_blocked(
        handler.expect("the handler thread").0,
        "handler",
        "wait_woken",
    );
    hog.extend(exhaust());
    good.shutting_down();
    let stopping = h.stop_in_background();
    // The shutdown line, read while still out of descriptors (reading needs none).
    let _ = last.stream().set_read_timeout(Some(grace));
    let mut told = Vec::new();
    let _ = last.reader.read_until(b'\n', &mut told);
    last.half_close();
    let stopped2 = stop_while_out_of_fds(stopping, hog, grace + CUT_SLACK, || {
        let _ = last.stream().shutdown(std::net::Shutdown::Both);
        drop(TcpStream::connect_timeout(&addr, T));
    });
    assert_eq!(
        show(&told),
        show(SHUTTING_DOWN),
        "the client that came in out of descriptors is told too"
    );
    (stopped2, good.stop())
}

fn five_thousand_idle_connections_are_held_while_others_are_served(engine: Engine) {
    const IDLE: usize = 5000;
    // Per idle connection: our end, the server's end and the server's second handle (its waker).
    let need = (3 * IDLE + open_fds() + 512) as u64;
    let (soft, hard) = nofile();
    let _limit = if soft >= need {
        None
    } else if hard >= need {
        match SoftLimit::set(need) {
            Ok(limit) => Some(limit),
            Err(why) => {
                eprintln!(
                    "[hostile_fds] SKIPPED 5,000 idle: need {need} descriptors, soft limit {soft}: {why}"
                );
                return;
            }
        }
    } else {
        eprintln!(
            "[hostile_fds] SKIPPED 5,000 idle: need {need} descriptors, the hard limit is {hard}"
        );
        return;
    };
    let grace = Duration::from_secs(5);
    // Held at once and each served: a pool gets a worker for every one (a pool of a few
    // workers serves a few of 5,000 idle clients, by design: the rest wait in its queue).
    let engine = at_least(engine, IDLE + 3 + 1);
    let h = start(Mode::Echo, engine, |c| {
        c.max_connections = IDLE + 64;
        c.stack_size = 64 * 1024;
        c.idle_timeout = Duration::from_secs(60);
        c.grace = grace;
    });
    let good = Good::start(&h, GoodPlan::persistent(3));
    let rss_before = vm_rss_kib();
    let began = Instant::now();
    let mut held: Vec<TcpStream> = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let s = TcpStream::connect_timeout(&h.addr, T).expect("connect an idle client");
        s.set_read_timeout(Some(T)).expect("timeout");
        s.set_write_timeout(Some(T)).expect("timeout");
        held.push(s);
    }
    h.wait_live(IDLE + 3);
    let opened = began.elapsed();
    let rss_held = vm_rss_kib();
    let per_conn = rss_held.saturating_sub(rss_before) as f64 / IDLE as f64;
    if let Engine::Events { .. } = engine {
        // An idle connection on an event loop holds its state and no buffer: no stack, no read
        // buffer of its own (the loop has one for all), no line buffer until a line starts.
        // Measured about 0.5 KiB (`cargo bench --bench idle_memory`); an 8 KiB read buffer or a
        // 64 KiB line buffer per connection would be far above this bound.
        assert!(
            per_conn < 4.0,
            "{per_conn:.1} KiB per idle connection on event loops"
        );
    }
    // Served with 5,000 idle connections around: the well-behaved clients, a new client, and
    // any of the idle ones that speaks up.
    good.wait_answers(30);
    h.serves_a_new_client("one more");
    for (i, s) in held.iter_mut().enumerate().step_by(500) {
        s.write_all(format!("idle {i} speaks\n").as_bytes())
            .expect("send");
        let mut reply = [0; 128];
        let n = s.read(&mut reply).expect("reply");
        let text = String::from_utf8_lossy(&reply[..n]);
        many_clients::client::check_echo_reply(&text, &format!("idle {i} speaks")).expect("echo");
    }

    // Shutdown with all of them open: each is told, and join comes back within the grace.
    good.shutting_down();
    let stopping = h.stop_in_background();
    let mut told = 0;
    for s in &mut held {
        let mut line = vec![0; SHUTTING_DOWN.len()];
        s.read_exact(&mut line).expect("the shutdown line");
        assert_eq!(show(&line), show(SHUTTING_DOWN));
        told += 1;
    }
    drop(held);
    let stopped = stopping.join();
    assert_eq!(stopped.summary.cut, 0);
    assert!(stopped.summary.peak >= (IDLE + 3) as u64);
    let tally = good.stop();
    figures(
        engine,
        "5,000 idle",
        &["5,000 idle connections held", "shutdown with 5,000 open"],
        IDLE as u64 + 1,
        &tally,
        &format!(
            ", held {IDLE} (peak {}) opened in {opened:?}; RSS {rss_before} KiB -> {rss_held} KiB = \
             {per_conn:.1} KiB per idle connection (both ends, 64 KiB stacks); {told} told at \
             shutdown; join took {:?}",
            stopped.summary.peak, stopped.took
        ),
    );
}
