//! The I/O shell: a `std::net` server with a thread per connection (or a
//! worker pool), connection limit, timeouts and graceful shutdown.
//!
//! ```no_run
//! use many_clients::server::{Server, ServerConfig};
//! use many_clients::conn::Mode;
//!
//! let mut config = ServerConfig::new(Mode::Echo);
//! config.addr = "127.0.0.1:0".parse().unwrap(); // port 0: any free port
//! let server = Server::bind(config)?;
//! println!("listening on {}", server.local_addr());
//! let handle = server.start()?;
//! // … later, from any thread:
//! handle.shutdown();
//! let summary = handle.join();
//! println!("{} clients served", summary.served);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Everything that decides *what* to say lives in [`crate::conn`];
//! everything shared between threads lives in the core modules. This shell
//! moves bytes and owns threads. Files:
//! [`transport`] (the two traits TCP and pipes implement), [`driver`] (one
//! connection's read/write loop, the one interpreter of its actions),
//! [`lifecycle`] (admission and release, shared by every engine),
//! [`accept`] (the blocking engines' accept loop),
//! [`running`] (start, shutdown, join), [`pool`] (the worker pool),
//! [`pipe`] (in-memory connections for loom), [`observe`] (event hooks).
//!
//! The library prints nothing: per-client lines go through `tracing` at
//! `info`, problems at `warn`. The `server` example turns them into the
//! console lines of PROTOCOL.md.

pub mod accept;
pub mod driver;
pub mod events;
pub mod lifecycle;
pub mod observe;
pub mod pipe;
pub mod pool;
pub mod running;
pub mod transport;

pub use observe::{Event, Observer};
pub use running::{LiveStats, Running, Summary};

use crate::conn::{ConnConfig, Mode, SystemClock};
use crate::counter::CounterKind;
use crate::limit::Limit;
use crate::shutdown::Shutdown;
use crate::sync::{Arc, AtomicU64, Std};
use lifecycle::Shared;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// How a server serves its connections: PROTOCOL.md's `--engine`. What a
/// client sees and what the console prints are the same for every engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// A thread per connection (`--engine thread`, the default).
    Thread,
    /// A fixed set of worker threads taking connections from a queue
    /// (`--engine pool --workers N`). It serves at most `workers`
    /// connections at once; the rest wait in the queue.
    Pool {
        /// How many worker threads.
        workers: usize,
    },
    /// Readiness event loops on `mio` (`--engine events --workers N`): each
    /// loop thread serves any number of connections, waiting for whichever
    /// is ready.
    Events {
        /// How many loop threads.
        loops: usize,
    },
}

impl Engine {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Thread => "thread",
            Engine::Pool { .. } => "pool",
            Engine::Events { .. } => "events",
        }
    }

    /// One thread (pool worker or event loop) per core: PROTOCOL.md's default size.
    pub fn per_core() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Everything `server` takes on its command line, and a few knobs more.
#[derive(Clone)]
pub struct ServerConfig {
    /// Greet (seed 000) or echo (seed 001).
    pub mode: Mode,
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// `--max-connections`: accepted connections open at once; more get the busy answer.
    pub max_connections: usize,
    /// `--idle-timeout`: no complete message for this long, and the connection is cut.
    pub idle_timeout: Duration,
    /// `--max-line`: the longest echo line, in bytes.
    pub max_line: usize,
    /// `--grace`: how long shutdown waits for busy connections before cutting them.
    pub grace: Duration,
    /// How long a closing connection keeps reading so its last reply is not reset.
    pub drain_timeout: Duration,
    /// `--engine`: how connections are served (a thread each, or a pool of workers).
    pub engine: Engine,
    /// Refused connections answered on threads of their own at once (each sends the busy line
    /// and drains like any other close). Past this many, the busy line is sent without
    /// waiting and the socket closed at once, so a flood at the limit cannot make the server
    /// start a thread per refused connection.
    pub busy_responders: usize,
    /// Stack size of connection threads: address space reserved, not memory
    /// used. Only the pages a thread touches are resident (two, 8 KiB, for an
    /// idle connection, whatever this size), so it is not a memory knob; see
    /// [`ServerConfig::DEFAULT_STACK_SIZE`] for why it is not tiny either.
    pub stack_size: usize,
    /// Which counter implementation counts clients.
    pub counter: CounterKind,
    /// The listen backlog: connections the kernel queues before `accept`.
    /// The seed's 5 is why its bursts hang; bursts need hundreds.
    pub backlog: i32,
    /// An event hook (the demo's timeline, tests).
    pub observer: Option<Arc<dyn Observer>>,
    /// How connections reach the event loops (`Engine::Events` only); by
    /// default [`events::Listeners::for_mode`] of the mode given to `new`.
    pub listeners: events::Listeners,
}

impl ServerConfig {
    /// Default `--max-connections`.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// Default `--grace`.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
    /// Default [`ServerConfig::busy_responders`].
    pub const DEFAULT_BUSY_RESPONDERS: usize = 64;
    /// Default connection-thread stack size, 1 MiB. It used to be 128 KiB, to
    /// save memory, but it saved none (resident memory is the touched pages
    /// only, `benches/idle_memory.rs`) and cost speed: with stacks that small,
    /// starting and ending threads contended on the kernel's memory-map lock
    /// (perf: a quarter of the CPU in `rwsem_down_write_slowpath` under the
    /// `mmap` each new thread makes), and greet connections/s with 100
    /// clients were about half of 1 MiB stacks' (`benches/server.rs`).
    pub const DEFAULT_STACK_SIZE: usize = 1024 * 1024;

    /// PROTOCOL.md's defaults for `mode`, on the seed's address for it.
    pub fn new(mode: Mode) -> Self {
        let conn = ConnConfig::new(mode);
        ServerConfig {
            mode,
            // A constant that parses; the fallback only keeps this infallible.
            addr: mode
                .default_addr()
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            idle_timeout: conn.idle_timeout,
            max_line: conn.max_line,
            grace: Self::DEFAULT_GRACE,
            drain_timeout: conn.drain_timeout,
            engine: Engine::Thread,
            busy_responders: Self::DEFAULT_BUSY_RESPONDERS,
            stack_size: Self::DEFAULT_STACK_SIZE,
            counter: CounterKind::default(),
            backlog: 1024,
            observer: None,
            listeners: events::Listeners::for_mode(mode),
        }
    }

    /// The per-connection part of the config.
    pub fn conn_config(&self) -> ConnConfig {
        ConnConfig {
            mode: self.mode,
            max_line: self.max_line,
            idle_timeout: self.idle_timeout,
            drain_timeout: self.drain_timeout,
        }
    }

    /// The shared state a server with this config starts with, on backend `B`.
    pub fn shared<B: crate::sync::Backend>(&self) -> Shared<B> {
        Shared {
            conn: self.conn_config(),
            counter: self.counter.build::<B>(),
            limit: Arc::new(Limit::new(self.max_connections)),
            busy: Arc::new(Limit::new(self.busy_responders)),
            shutdown: Arc::new(Shutdown::new()),
            refused: <B::AtomicU64 as AtomicU64>::new(0),
            stack_size: Some(self.stack_size),
            engine: self.engine.name(),
            observer: self.observer.clone(),
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("mode", &self.mode)
            .field("addr", &self.addr)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_line", &self.max_line)
            .field("grace", &self.grace)
            .field("engine", &self.engine)
            .field("busy_responders", &self.busy_responders)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// A bound, not yet running, TCP server.
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds the listening socket (port 0 picks a free port).
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        let socket = Socket::new(
            Domain::for_address(config.addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        if let Engine::Events { .. } = config.engine {
            events::prepare(&socket, config.listeners)?;
        }
        // Restarting right after a shutdown must not fail on TIME_WAIT.
        // ANCHOR: backlog
        socket.set_reuse_address(true)?;
        socket.bind(&config.addr.into())?;
        socket.listen(config.backlog)?;
        // ANCHOR_END: backlog
        Ok(Server {
            listener: socket.into(),
            config,
        })
    }

    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        // A bound socket always has one; fall back to the request otherwise.
        self.listener.local_addr().unwrap_or(self.config.addr)
    }

    /// Starts serving (an accept thread, a pool or event loops, by the
    /// config's engine) and returns at once.
    pub fn start(self) -> io::Result<ServerHandle> {
        let addr = self.local_addr();
        let config = self.config;
        let (listener, shared) = (self.listener, config.shared::<Std>());
        let workers = match config.engine {
            Engine::Thread | Engine::Events { .. } => None,
            Engine::Pool { workers } => Some(workers),
        };
        let engine = match config.engine {
            Engine::Thread | Engine::Pool { .. } => Engines::Blocking(Running::start(
                listener,
                shared,
                SystemClock,
                workers,
                config.grace,
            )?),
            Engine::Events { loops } => Engines::Events(events::Running::start(
                listener,
                shared,
                SystemClock,
                loops,
                config.listeners,
                config.backlog,
                config.grace,
            )?),
        };
        Ok(ServerHandle { engine, addr })
    }
}

/// A running TCP server: ask it to stop, wait for it, read its counts.
pub struct ServerHandle {
    engine: Engines,
    addr: SocketAddr,
}

/// The running engine: the two blocking ones share their shell.
enum Engines {
    Blocking(Running<Std, TcpListener>),
    Events(events::Running),
}

impl ServerHandle {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counts right now.
    pub fn stats(&self) -> LiveStats {
        match &self.engine {
            Engines::Blocking(running) => running.stats(),
            Engines::Events(running) => running.stats(),
        }
    }

    /// Begins graceful shutdown; returns the live connections at that
    /// moment (the `Shutting down: waiting for {n} clients...` number).
    pub fn shutdown(&self) -> usize {
        match &self.engine {
            Engines::Blocking(running) => running.shutdown(),
            Engines::Events(running) => running.shutdown(),
        }
    }

    /// Waits until the server has stopped (someone must call
    /// [`ServerHandle::shutdown`]) and returns the final counts.
    pub fn join(self) -> Summary {
        match self.engine {
            Engines::Blocking(running) => running.join(),
            Engines::Events(running) => running.join(),
        }
    }
}
