//! In-memory connections built on the backend's primitives (a [`Monitor`] per direction), so a
//! loom model can run the server's real lifecycle without sockets (loom
//! cannot see real I/O). They behave like TCP where the lifecycle cares:
//! reads block until bytes or EOF arrive, `shutdown_write` gives the peer
//! EOF, a waker makes a blocked read return EOF. Timeouts never fire —
//! exactly like loom's own `wait_timeout`.

use super::transport::{Listener, Stream, Wake};
use crate::sync::{Arc, Backend, Monitor};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// One direction of a connection: the bytes in flight and who closed what,
/// in a monitor that a blocked reader waits on. Every change notifies.
struct Channel<B: Backend> {
    state: Monitor<Bytes, B>,
}

#[derive(Default)]
struct Bytes {
    queued: VecDeque<u8>,
    /// The writer sent EOF (or went away).
    write_closed: bool,
    /// The reader was woken or cut: reads return EOF, writes fail.
    read_closed: bool,
}

impl<B: Backend> Channel<B> {
    fn new() -> Arc<Self> {
        Arc::new(Channel {
            state: Monitor::new(Bytes::default()),
        })
    }

    fn update(&self, f: impl FnOnce(&mut Bytes)) {
        let mut bytes = self.state.lock();
        f(&mut bytes);
        bytes.notify_all();
    }
}

/// One end of an in-memory connection.
pub struct PipeStream<B: Backend> {
    incoming: Arc<Channel<B>>,
    outgoing: Arc<Channel<B>>,
}

/// A connected pair: `(client end, server end)`.
pub fn pipe<B: Backend>() -> (PipeStream<B>, PipeStream<B>) {
    let (a, b) = (Channel::new(), Channel::new());
    let client = PipeStream {
        incoming: a.clone(),
        outgoing: b.clone(),
    };
    let server = PipeStream {
        incoming: b,
        outgoing: a,
    };
    (client, server)
}

impl<B: Backend> PipeStream<B> {
    /// Reads everything until EOF (a test helper for the client end).
    pub fn read_all(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        // Reading a pipe cannot fail; an `Err` would only cut the text short.
        let _ = self.read_to_end(&mut all);
        all
    }
}

impl<B: Backend> Read for PipeStream<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut bytes = self.incoming.state.lock();
        while bytes.queued.is_empty() && !bytes.write_closed && !bytes.read_closed {
            bytes = bytes.wait();
        }
        let n = buf.len().min(bytes.queued.len());
        for (slot, byte) in buf.iter_mut().zip(bytes.queued.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl<B: Backend> Write for PipeStream<B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = self.outgoing.state.lock();
        if bytes.write_closed || bytes.read_closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        bytes.queued.extend(buf);
        bytes.notify_all();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<B: Backend> Drop for PipeStream<B> {
    fn drop(&mut self) {
        self.outgoing.update(|b| b.write_closed = true);
        self.incoming.update(|b| b.read_closed = true);
    }
}

impl<B: Backend> Stream for PipeStream<B> {
    type Waker = PipeWaker<B>;

    fn waker(&self) -> PipeWaker<B> {
        PipeWaker {
            incoming: self.incoming.clone(),
            outgoing: self.outgoing.clone(),
        }
    }

    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn set_write_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.outgoing.update(|b| b.write_closed = true);
        Ok(())
    }
}

/// Wakes or cuts a [`PipeStream`] from another thread.
pub struct PipeWaker<B: Backend> {
    incoming: Arc<Channel<B>>,
    outgoing: Arc<Channel<B>>,
}

impl<B: Backend> Wake for PipeWaker<B> {
    fn wake(&self) {
        self.incoming.update(|b| b.read_closed = true);
    }

    fn cut(&self) {
        self.wake();
        self.outgoing.update(|b| b.read_closed = true);
    }
}

/// A listener whose connections come from [`PipeListener::connect`].
pub struct PipeListener<B: Backend> {
    shared: Arc<Backlog<B>>,
}

/// Connections not yet accepted; `accept` waits on it for one to arrive.
struct Backlog<B: Backend> {
    queue: Monitor<VecDeque<(PipeStream<B>, SocketAddr)>, B>,
}

impl<B: Backend> PipeListener<B> {
    /// A listener with an empty backlog.
    pub fn new() -> Self {
        PipeListener {
            shared: Arc::new(Backlog {
                queue: Monitor::new(VecDeque::new()),
            }),
        }
    }

    /// Opens a connection; returns the client's end. The peer address is
    /// 127.0.0.1 with a made-up port, so logs read like TCP's.
    pub fn connect(&self) -> PipeStream<B> {
        self.shared.connect()
    }
}

impl<B: Backend> Backlog<B> {
    fn connect(&self) -> PipeStream<B> {
        let (client, server) = pipe();
        let mut queue = self.queue.lock();
        let port = 40000 + queue.len() as u16;
        queue.push_back((server, SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
        queue.notify_one();
        client
    }
}

impl<B: Backend> Default for PipeListener<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> Listener for PipeListener<B> {
    type Stream = PipeStream<B>;

    fn accept(&self) -> io::Result<(PipeStream<B>, SocketAddr)> {
        let mut queue = self.shared.queue.lock();
        loop {
            if let Some(next) = queue.pop_front() {
                return Ok(next);
            }
            queue = queue.wait();
        }
    }

    fn unblocker(&self) -> io::Result<Box<dyn Fn() + Send + Sync>> {
        // Like TCP's: a connection to ourselves, dropped unserved.
        let shared = self.shared.clone();
        Ok(Box::new(move || drop(shared.connect())))
    }
}
