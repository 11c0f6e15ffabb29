//! What the connection lifecycle needs from a network, as two small traits,
//! so the same lifecycle runs over `std::net` for real and over in-memory
//! pipes ([`super::pipe`]) inside loom models.

use socket2::{Domain, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, PoisonError};
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
    /// Makes a [`Stream::Waker`] for this connection.
    fn waker(&self) -> io::Result<Self::Waker>;
    /// Bounds the next reads; `None` blocks forever. `Ok(n)`-less reads then
    /// fail with `WouldBlock` or `TimedOut`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Bounds each write's wait for progress.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sends EOF to the peer and keeps reading possible.
    fn shutdown_write(&self) -> io::Result<()>;
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
    type Stream = TcpStream;

    fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self)?;
        // Every reply is one write; don't let Nagle hold it back waiting for
        // an ACK (measured here: ~40 ms per exchange with it on).
        stream.set_nodelay(true)?;
        Ok((stream, peer))
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

impl Stream for TcpStream {
    type Waker = TcpStream;

    fn waker(&self) -> io::Result<TcpStream> {
        self.try_clone()
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Wake for TcpStream {
    fn wake(&self) {
        // Errors mean the peer already went away; the handler will notice.
        let _ = self.shutdown(Shutdown::Read);
    }

    fn cut(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}
