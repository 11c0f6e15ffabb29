//! What the connection lifecycle needs from a network, as two small traits,
//! so the same lifecycle runs over `std::net` for real and over in-memory
//! pipes ([`super::pipe`]) inside loom models.

use socket2::{Domain, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

/// A source of connections: `accept` blocks until one arrives.
pub trait Listener: Send + 'static {
    /// The connections it hands out.
    type Stream: Stream;
    /// Blocks for the next connection and its peer address.
    fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)>;
    /// Something that makes a blocked `accept` return, for shutdown.
    fn unblocker(&self) -> io::Result<Box<dyn Fn() + Send + Sync>>;
}

/// One connection's byte stream.
pub trait Stream: Read + Write + Send + 'static {
    /// A second handle on the same connection that can wake or cut it from
    /// another thread; the registry keeps one per live connection.
    type Waker: Wake;
    /// Makes a [`Stream::Waker`] for this connection. Infallible on purpose:
    /// a connection shutdown cannot reach would need a second, polling way
    /// to notice it, so a waker must not need a resource that can run out
    /// (a `dup`ed descriptor can: `EMFILE`).
    fn waker(&self) -> Self::Waker;
    /// Bounds the next reads; `None` blocks forever. `Ok(n)`-less reads then
    /// fail with `WouldBlock` or `TimedOut`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Bounds each write's wait for progress.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sends EOF to the peer and keeps reading possible.
    fn shutdown_write(&self) -> io::Result<()>;
    /// Writes what fits *now* and never waits: `WouldBlock` if nothing fits.
    /// The driver tries it before arming a write timeout, because almost
    /// every reply fits in the socket's send buffer at once, and then the
    /// timeout's `setsockopt` is a system call for nothing. The default
    /// always says `WouldBlock`, which sends every write the timed way.
    fn write_now(&mut self, _bytes: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    /// Sends small writes at once instead of coalescing them (`TCP_NODELAY`).
    /// Only a connection that answers many times needs it; a greet
    /// connection writes once and shuts down, which flushes anyway.
    fn set_nodelay(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Wakes a connection's thread from another thread.
pub trait Wake: Send + 'static {
    /// Makes a blocked or later `read` return end-of-file; writing still
    /// works, so the handler can send its last line.
    fn wake(&self);
    /// Cuts the connection both ways: blocked reads *and* writes fail. Used
    /// when the shutdown grace period runs out.
    fn cut(&self);
}

impl Listener for TcpListener {
    type Stream = TcpConn;

    fn accept(&self) -> io::Result<(TcpConn, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self)?;
        Ok((TcpConn(Arc::new(stream)), peer))
    }

    fn unblocker(&self) -> io::Result<Box<dyn Fn() + Send + Sync>> {
        // std cannot interrupt a blocked accept; connecting to ourselves
        // can. The accept loop checks the shutdown flag before serving what
        // it accepted, so this connection is dropped unserved.
        let mut addr = self.local_addr()?;
        if addr.ip().is_unspecified() {
            let loopback = match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            };
            addr.set_ip(loopback);
        }
        // The socket is made now, not at shutdown: a server out of file
        // descriptors (EMFILE) must still be able to stop, and connecting a
        // socket that exists takes no new descriptor.
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        let socket = Mutex::new(Some(socket));
        Ok(Box::new(move || {
            let socket = socket.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(socket) = socket {
                // Failure is fine: it means accept is not blocked on a live listener.
                let _ = socket.connect_timeout(&addr.into(), Duration::from_secs(1));
            }
        }))
    }
}

/// A TCP connection: the thread serving it owns it, the registry's waker
/// only refers to it ([`TcpWaker`]).
///
/// Not `TcpStream::try_clone` for the waker: that `dup`s the descriptor,
/// one more system call per connection and one more `close`, and a second
/// descriptor per connection counts against the process's limit.
#[derive(Debug)]
pub struct TcpConn(Arc<TcpStream>);

/// Wakes or cuts a [`TcpConn`] while it lives. Weak, so a waker that
/// outlives its connection (shutdown keeps the wakers it took until the
/// grace period ends) neither keeps the socket open nor touches a
/// descriptor number the kernel has since handed to someone else: once the
/// connection is dropped, waking it does nothing.
#[derive(Debug)]
pub struct TcpWaker(Weak<TcpStream>);

impl TcpWaker {
    fn shutdown(&self, how: Shutdown) {
        if let Some(stream) = self.0.upgrade() {
            // Errors mean the peer already went away; the handler will notice.
            let _ = stream.shutdown(how);
        }
    }
}

impl Read for TcpConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for TcpConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

impl Stream for TcpConn {
    type Waker = TcpWaker;

    fn waker(&self) -> TcpWaker {
        TcpWaker(Arc::downgrade(&self.0))
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Write)
    }

    #[cfg(target_os = "linux")]
    fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // NOSIGNAL as std's own writes: a closed peer is an error, not SIGPIPE.
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        socket2::SockRef::from(&*self.0).send_with_flags(bytes, flags)
    }

    fn set_nodelay(&self) -> io::Result<()> {
        // Don't let Nagle hold a reply back waiting for the ACK of the last
        // one (measured here: ~40 ms per echo exchange with it on).
        self.0.set_nodelay(true)
    }
}

impl Wake for TcpWaker {
    fn wake(&self) {
        self.shutdown(Shutdown::Read);
    }

    fn cut(&self) {
        self.shutdown(Shutdown::Both);
    }
}
