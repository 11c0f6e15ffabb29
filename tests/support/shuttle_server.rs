//! A whole server in a Shuttle model: the real `Running::start` over
//! in-memory pipes, clients on threads of their own, shutdown from the
//! model's main thread — and the oracle that judges what every client read.
//! Used by `tests/shuttle_server.rs`, kept apart so each file stays small.

use many_clients::conn::{Clock, Mode, Now, echo};
use many_clients::counter::racy::RacyCounter;
use many_clients::limit::Limiter;
use many_clients::server::pipe::{PipeListener, PipeStream};
use many_clients::server::transport::{Listener, Stream};
use many_clients::server::{Event, Observer, Running, ServerConfig};
use many_clients::shutdown::Drain;
use many_clients::sync::{Arc, Backend, JoinHandle, Lock, Model};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One scenario: which protocol, how many clients, the limit, the engine,
/// and whether shutdown waits for the first client to finish.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub mode: Mode,
    pub clients: usize,
    pub max_connections: usize,
    /// `None`: a thread per connection; `Some(n)`: a pool of `n`.
    pub workers: Option<usize>,
    /// Join client 0 before shutting down: a server that serves nobody then
    /// fails, because client 0 must have had its full answer.
    pub serve_one_first: bool,
    /// BUGGY VARIANT: count clients with the racy counter (the server
    /// cannot choose it; the model swaps it into the shared state).
    pub racy_counter: bool,
}

impl Scenario {
    /// The sound server, shutdown arriving whenever the schedule puts it.
    pub fn new(mode: Mode, clients: usize, max_connections: usize, workers: Option<usize>) -> Self {
        Scenario {
            mode,
            clients,
            max_connections,
            workers,
            serve_one_first: false,
            racy_counter: false,
        }
    }
}

/// What the schedules of one model covered, summed over all of them: the
/// model asserts at the end that each interesting case happened at least
/// once, so a scenario that never reaches the limit or never shuts down
/// mid-flight cannot pass unnoticed.
#[derive(Debug, Default)]
pub struct Coverage {
    pub schedules: std::sync::atomic::AtomicUsize,
    pub busy: std::sync::atomic::AtomicUsize,
    pub cut_short: std::sync::atomic::AtomicUsize,
    pub unserved: std::sync::atomic::AtomicUsize,
    pub all_answered: std::sync::atomic::AtomicUsize,
}

/// The message a greet client sends; the lines an echo client sends.
const GREETING: &[u8] = b"hi";
const LINES: [&[u8]; 2] = [b"one\n", b"two\n"];
const BUSY: &str = "error: server busy, try again later\n";
const SHUTTING_DOWN: &str = "error: server shutting down\n";

/// Time stands still inside a model: no deadline ever passes (Shuttle does
/// not model time), and every echo timestamp is the same known one.
struct Frozen(Now);

impl Clock for Frozen {
    fn now(&self) -> Now {
        self.0
    }
}

/// The moment every model's clock is stuck at. The instant is read once
/// per schedule; it decides nothing, since no deadline is ever near.
pub fn frozen_now() -> Now {
    Now {
        instant: Instant::now(),
        wall: chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
            .and_then(|d| d.and_hms_micro_opt(22, 33, 51, 123_456))
            .expect("a valid date"),
    }
}

/// The listening end, shared: the server accepts through one handle while
/// the client threads connect through theirs (a `PipeListener` moves into
/// the server, so the clients need another way in).
struct Door(Arc<PipeListener<Model>>);

impl Listener for Door {
    type Stream = PipeStream<Model>;

    fn accept(&self) -> io::Result<(PipeStream<Model>, SocketAddr)> {
        self.0.accept()
    }

    fn unblocker(&self) -> io::Result<Box<dyn Fn() + Send + Sync>> {
        self.0.unblocker()
    }
}

/// The accept loop's decisions, in the order it made them: `Some(id)` for
/// an admitted connection, `None` for a busy one.
///
/// A `std` mutex, not a model one, and that is safe: Shuttle runs every
/// thread of a model on one OS thread and switches only inside its own
/// primitives, and nothing here calls one while holding the lock.
#[derive(Default)]
struct Decisions {
    seen: std::sync::Mutex<Vec<Option<u64>>>,
    shutdowns: std::sync::atomic::AtomicUsize,
}

impl Observer for Decisions {
    fn event(&self, event: &Event) {
        let mut seen = self.seen.lock().unwrap();
        match event {
            Event::Connected { id, .. } => seen.push(Some(*id)),
            Event::Refused { .. } => seen.push(None),
            Event::ShutdownBegan { .. } => {
                self.shutdowns
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Connects, under the witness lock that records the order connections
/// entered the backlog (so the k-th admission decision is this client's
/// when it is k-th in `order`).
fn connect(
    door: &PipeListener<Model>,
    order: &<Model as Backend>::Mutex<Vec<usize>>,
    me: usize,
) -> PipeStream<Model> {
    let mut order = order.lock();
    let stream = door.connect();
    order.push(me);
    stream
}

/// A greet client: one message, then everything the server sends.
fn greet_client(mut stream: PipeStream<Model>) -> String {
    // A server already closing may have cut the pipe: the write fails, and
    // what was sent (maybe nothing) is still there to read.
    let _ = stream.write_all(GREETING);
    String::from_utf8(stream.read_all()).expect("the server sends text")
}

/// An echo client: each line, waiting for its reply before the next; then
/// EOF and everything left. Stops sending after an error line or EOF.
fn echo_client(mut stream: PipeStream<Model>) -> String {
    let mut got = Vec::new();
    for (sent, line) in LINES.iter().enumerate() {
        if stream.write_all(line).is_err() {
            break;
        }
        let mut buf = [0; 128];
        let mut open = true;
        while open && got.iter().filter(|&&b| b == b'\n').count() <= sent {
            let n = stream.read(&mut buf).unwrap_or(0);
            got.extend_from_slice(&buf[..n]);
            open = n > 0;
        }
        if !open || String::from_utf8_lossy(&got).contains("error: ") {
            break;
        }
    }
    let _ = stream.shutdown_write();
    got.extend(stream.read_all());
    String::from_utf8(got).expect("the server sends text")
}

/// What one client read is allowed, given the decision the accept loop made
/// for its connection (`None` if it was never accepted: still in the
/// backlog at shutdown). Returns what to count it as, or panics.
pub fn judge(mode: Mode, decision: Option<Option<u64>>, read: &str, wall: Now) -> Kind {
    let echoes: Vec<String> = LINES
        .iter()
        .map(|l| String::from_utf8(echo::reply(&l[..l.len() - 1], wall.wall).unwrap()).unwrap())
        .collect();
    match decision {
        None => {
            assert_eq!(read, "", "a connection never accepted was answered");
            Kind::Unserved
        }
        Some(None) => {
            assert_eq!(
                read, BUSY,
                "a refused connection did not read the busy line"
            );
            Kind::Busy
        }
        Some(Some(id)) => {
            let full = match mode {
                Mode::Greet => format!("Hello Client {id}, server received your message!"),
                Mode::Echo => echoes.concat(),
            };
            if read == full {
                return Kind::Answered;
            }
            // Shutdown came first: the answers already due, then the error line.
            let cut_short = match mode {
                Mode::Greet => read == SHUTTING_DOWN,
                Mode::Echo => (0..=echoes.len())
                    .any(|k| read == format!("{}{SHUTTING_DOWN}", echoes[..k].concat())),
            };
            assert!(
                cut_short,
                "client {id} read a reply the protocol does not allow: {read:?}"
            );
            Kind::CutShort
        }
    }
}

/// What a client's answer counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Answered,
    CutShort,
    Busy,
    Unserved,
}

/// Runs `scenario` once: start the server, start the clients, shut down
/// (after client 0 is done, if asked), join — then judge everything.
pub fn run(scenario: Scenario, coverage: &Coverage) {
    let door = Arc::new(PipeListener::<Model>::new());
    let order = Arc::new(<Model as Backend>::Mutex::new(Vec::new()));
    let decisions = Arc::new(Decisions::default());
    let mut config = ServerConfig::new(scenario.mode);
    config.max_connections = scenario.max_connections;
    config.observer = Some(decisions.clone());
    let mut shared = config.shared::<Model>();
    if scenario.racy_counter {
        shared.counter = Arc::new(RacyCounter::<Model>::new());
    }
    let (counter, limit, drain) = (
        shared.counter.clone(),
        shared.limit.clone(),
        shared.shutdown.clone(),
    );
    let wall = frozen_now();
    // An hour of grace: no schedule may need the cut, and it never comes
    // from the clock (Shuttle does not model time; an execution is far
    // shorter than an hour).
    // ANCHOR: whole_server
    let running = Running::start(
        Door(door.clone()),
        shared,
        Frozen(wall),
        scenario.workers,
        Duration::from_secs(3600),
    )
    .unwrap();

    let mut clients: Vec<_> = (0..scenario.clients)
        .map(|me| {
            let (door, order, mode) = (door.clone(), order.clone(), scenario.mode);
            <Model as Backend>::spawn(format!("client-{me}"), None, move || {
                let stream = connect(&door, &order, me);
                // Let go of the listener at once: connections still in its
                // backlog are closed (EOF, unserved) only when the last
                // handle on it is gone, as a closed TCP listener resets them.
                drop(door);
                match mode {
                    Mode::Greet => greet_client(stream),
                    Mode::Echo => echo_client(stream),
                }
            })
            .unwrap()
        })
        .collect();
    drop(door);
    let mut reads = vec![None; scenario.clients];
    if scenario.serve_one_first {
        let first = clients.remove(0);
        reads[0] = Some(first.join().unwrap());
    }
    running.shutdown();
    let summary = running.join();
    let offset = usize::from(scenario.serve_one_first);
    for (i, client) in clients.into_iter().enumerate() {
        reads[i + offset] = Some(client.join().unwrap());
    }
    // ANCHOR_END: whole_server

    // Judge: the k-th decision is the k-th connection's.
    let order = order.lock().clone();
    let decided = decisions.seen.lock().unwrap().clone();
    assert!(
        decided.len() <= order.len(),
        "more decisions than connections: {decided:?}"
    );
    let ids: Vec<u64> = decided.iter().flatten().copied().collect();
    let dense: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(
        ids, dense,
        "ids not unique, dense and in admission order: {decided:?}"
    );
    let mut kinds = Vec::new();
    for (position, &client) in order.iter().enumerate() {
        let read = reads[client].as_deref().expect("every client was joined");
        kinds.push(judge(
            scenario.mode,
            decided.get(position).copied(),
            read,
            wall,
        ));
    }
    if scenario.serve_one_first {
        let first = order.iter().position(|&c| c == 0).unwrap();
        assert!(
            matches!(kinds[first], Kind::Answered | Kind::Busy),
            "client 0 finished before shutdown but was not answered: {:?}",
            reads[0]
        );
    }

    // The summary is exact, and everything was given back.
    let count = |k: Kind| kinds.iter().filter(|&&x| x == k).count() as u64;
    let admitted = count(Kind::Answered) + count(Kind::CutShort);
    assert_eq!(
        summary.served, admitted,
        "served != admitted: {summary:?} {kinds:?}"
    );
    assert_eq!(
        summary.refused,
        count(Kind::Busy),
        "refused != busy answers: {summary:?}"
    );
    assert!(
        summary.peak as usize <= scenario.max_connections,
        "limit exceeded: {summary:?}"
    );
    assert_eq!((summary.cut, summary.panicked), (0, 0), "{summary:?}");
    if scenario.clients <= scenario.max_connections {
        assert_eq!(count(Kind::Busy), 0, "busy with room to spare: {kinds:?}");
    }
    let after = counter.stats();
    assert_eq!(
        (after.active, after.issued),
        (0, admitted),
        "counts not back to zero after the drain: {after:?}"
    );
    assert_eq!(limit.in_use(), 0, "a limit slot leaked");
    assert_eq!(drain.live(), 0, "a connection is still counted live");
    assert_eq!(
        decisions
            .shutdowns
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "shutdown must begin exactly once"
    );

    use std::sync::atomic::Ordering::Relaxed;
    coverage.schedules.fetch_add(1, Relaxed);
    let seen = |k: Kind| usize::from(kinds.contains(&k));
    coverage.busy.fetch_add(seen(Kind::Busy), Relaxed);
    coverage.cut_short.fetch_add(seen(Kind::CutShort), Relaxed);
    coverage.unserved.fetch_add(seen(Kind::Unserved), Relaxed);
    coverage.all_answered.fetch_add(
        usize::from(kinds.iter().all(|&k| k == Kind::Answered)),
        Relaxed,
    );
}
