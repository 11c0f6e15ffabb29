//! A real server under test: [`start`] one on a free loopback port with a [`Recorder`]
//! watching it, stop it with the checks every test ends with, and stop it on drop when an
//! assertion failed first, so the next test starts clean.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use many_clients::conn::Mode;
use many_clients::server::{Engine, LiveStats, Server, ServerConfig, ServerHandle, Summary};

use super::client::Client;
use super::lines::{SHUTTING_DOWN, show};
use super::recorder::Recorder;
use super::threads::{assert_no_server_threads, holds_serial, thread_alive};
use super::wait::{CUT_SLACK, SETTLE, eventually, poll};

/// The grace period a test server gets unless the test sets one: shorter than the default,
/// because [`TestServer::join`] checks `join` returns within it.
pub const GRACE: Duration = Duration::from_secs(3);

/// A running server, its recorder and what it was started with.
pub struct TestServer {
    /// `None` once joined.
    handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    /// Installed as the server's observer: every event it reported.
    pub recorder: Arc<Recorder>,
    pub mode: Mode,
    pub engine: Engine,
    pub grace: Duration,
    /// When [`TestServer::shutdown`] was first called.
    shutdown_at: Cell<Option<Instant>>,
}

/// What stopping a server showed.
#[derive(Debug)]
pub struct Stopped {
    pub summary: Summary,
    /// From `shutdown()` to `join()` returning.
    pub took: Duration,
}

/// Starts a `mode` server with `engine` on `127.0.0.1:0`, with a [`Recorder`] as its observer
/// and a grace period of [`GRACE`], after `configure` has adjusted its config. The caller holds
/// [`super::serial`] (every `engine_tests!` test does), and no other server's threads are
/// left.
pub fn start(mode: Mode, engine: Engine, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
    assert!(
        holds_serial(),
        "a test that runs a server holds serial(): the end-of-test checks count its threads"
    );
    assert_no_server_threads(SETTLE);
    let recorder = Recorder::new();
    let mut config = ServerConfig::new(mode);
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.engine = engine;
    config.grace = GRACE;
    configure(&mut config);
    assert!(config.addr.ip().is_loopback(), "tests stay on loopback");
    assert!(
        config.observer.is_none(),
        "the recorder is the observer; inject a panic with recorder.panic_when"
    );
    config.observer = Some(recorder.clone());
    let (engine, grace) = (config.engine, config.grace);
    let server = Server::bind(config).expect("bind a loopback port");
    let addr = server.local_addr();
    let handle = server.start().expect("start the server");
    TestServer {
        handle: Some(handle),
        addr,
        recorder,
        mode,
        engine,
        grace,
        shutdown_at: Cell::new(None),
    }
}

impl TestServer {
    fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("the server is running")
    }

    pub fn stats(&self) -> LiveStats {
        self.handle().stats()
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A new echo client is served: one line, its echo, then a clean close after the client's.
    pub fn serves_a_new_client(&self, line: &str) {
        let mut c = self.client();
        c.exchange(line);
        c.half_close();
        c.expect_rest(b"");
    }

    /// Begins shutdown; returns the connections live then.
    pub fn shutdown(&self) -> usize {
        if self.shutdown_at.get().is_none() {
            self.shutdown_at.set(Some(Instant::now()));
        }
        self.handle().shutdown()
    }

    /// After [`TestServer::shutdown`]: waits for the server to stop, and checks what every
    /// test checks at the end: `join` returned within the grace period (plus [`CUT_SLACK`] when
    /// it had to cut someone) of `shutdown`, no server thread is left, and every accepted
    /// connection was counted served.
    pub fn join(mut self) -> Stopped {
        let (summary, took) = self.timed_join();
        checked(summary, took, self.grace, &self.recorder)
    }

    /// `join`, given up on (and failed) well after the grace period; and how long it took from
    /// `shutdown`.
    fn timed_join(&mut self) -> (Summary, Duration) {
        let began = self.shutdown_at.get().expect("join() after shutdown()");
        let handle = self.handle.take().expect("the server is running");
        let limit = self.grace + CUT_SLACK + SETTLE;
        // On another thread, so a `join` that never returns fails the test instead of hanging
        // it (the joining thread is left behind then).
        let summary = join_within(handle, limit)
            .unwrap_or_else(|| panic!("join did not return within {limit:?}"));
        (summary, began.elapsed())
    }

    /// Shutdown, then [`TestServer::join`].
    pub fn stop(self) -> Stopped {
        self.shutdown();
        self.join()
    }

    /// Shutdown and `join` on another thread, so the test can play the client side meanwhile;
    /// [`Stopping::join`] then makes [`TestServer::join`]'s checks on the test's thread.
    pub fn stop_in_background(mut self) -> Stopping {
        let (grace, recorder) = (self.grace, self.recorder.clone());
        let thread = thread::Builder::new()
            .name("stopper".to_string())
            .spawn(move || {
                self.shutdown();
                self.timed_join()
            })
            .expect("spawn the stopper");
        Stopping {
            thread,
            grace,
            recorder,
        }
    }

    /// Stops the server (on another thread) while `c` is connected and waiting: `c` is told
    /// the shutdown line and, once it half-closes, sees the end; nobody is cut.
    pub fn stop_telling(self, c: &mut Client) -> Stopped {
        let stopping = self.stop_in_background();
        assert_eq!(show(&c.line()), show(SHUTTING_DOWN));
        c.half_close();
        c.expect_rest(b"");
        let stopped = stopping.join();
        assert_eq!(
            stopped.summary.cut, 0,
            "nobody to cut: {:?}",
            stopped.summary
        );
        stopped
    }

    /// Waits until every connection has gone, then [`TestServer::stop`]s: nobody to cut.
    pub fn stop_when_idle(self) -> Stopped {
        self.wait_live(0);
        let stopped = self.stop();
        assert_eq!(stopped.summary.cut, 0, "nobody to cut on an idle server");
        stopped
    }

    /// Polls until `live` accepted connections are open and as many clients counted active;
    /// returns the stats that showed it.
    pub fn wait_live(&self, live: usize) -> LiveStats {
        let mut last = self.stats();
        let settled = poll(SETTLE, || {
            last = self.stats();
            last.live == live && last.clients.active == live as u64
        });
        assert!(settled, "not live == active == {live}: {last:?}");
        last
    }

    /// Polls until connection `id` has ended, and with a thread per connection, its thread
    /// `client-{id}` is gone too.
    pub fn wait_gone(&self, id: u64) {
        let name = format!("client-{id}");
        eventually(
            &format!("connection {id} ends and its thread goes"),
            SETTLE,
            || self.recorder.has_closed(id) && !thread_alive(&name),
        );
    }
}

/// A server being stopped on another thread ([`TestServer::stop_in_background`]).
pub struct Stopping {
    thread: JoinHandle<(Summary, Duration)>,
    grace: Duration,
    recorder: Arc<Recorder>,
}

impl Stopping {
    /// Whether the server's `join` has returned.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the stop, then checks as [`TestServer::join`] does. (The checks run here, not
    /// on the stopping thread: a test may have left the process without a free descriptor
    /// while it stopped, and listing threads needs one.)
    pub fn join(self) -> Stopped {
        let (summary, took) = self
            .thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        checked(summary, took, self.grace, &self.recorder)
    }
}

/// [`TestServer::join`]'s checks on a server that has stopped.
fn checked(summary: Summary, took: Duration, grace: Duration, recorder: &Recorder) -> Stopped {
    let limit = if summary.cut > 0 {
        grace + CUT_SLACK
    } else {
        grace
    };
    assert!(
        took <= limit,
        "join took {took:?}, grace {grace:?} ({summary:?})"
    );
    assert_no_server_threads(Duration::from_secs(2));
    assert_eq!(
        summary.served,
        recorder.connected(),
        "every accepted connection counted served ({summary:?})"
    );
    Stopped { summary, took }
}

/// `handle.join()`, given up on after `within`.
fn join_within(handle: ServerHandle, within: Duration) -> Option<Summary> {
    let (done, joined) = mpsc::channel();
    thread::Builder::new()
        .name("joiner".to_string())
        .spawn(move || done.send(handle.join()))
        .expect("spawn the joiner");
    joined.recv_timeout(within).ok()
}

impl Drop for TestServer {
    /// Only after a failure (or a test that never stopped its server): stop the server and give
    /// it a while to join, so one failed test does not leave threads behind to fail the next.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            let _ = join_within(handle, self.grace + CUT_SLACK + SETTLE);
        }
    }
}
