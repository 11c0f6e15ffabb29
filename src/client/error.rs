//! The client's one error type: what went wrong, in words a user can act on.

use std::fmt;
use std::io::{self, ErrorKind};
use std::time::Duration;

/// Everything that can go wrong in one exchange with a server.
#[derive(Debug)]
pub enum ClientError {
    /// The connection could not be opened (refused, unreachable, unknown host, connect timeout).
    Connect {
        /// The address as we tried it.
        addr: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The whole reply did not arrive (or the message could not be sent) before the deadline.
    TimedOut {
        /// The time the exchange was allowed.
        after: Duration,
    },
    /// The server closed the connection without sending a single byte of reply.
    Closed,
    /// Any other I/O failure, for example a reset before any reply arrived.
    Io {
        /// `"sending"` or `"receiving"`.
        during: &'static str,
        /// What the operating system said.
        source: io::Error,
    },
    /// Something arrived, but it is not a reply this client can use.
    WrongReply {
        /// The reply, decoded lossily.
        reply: String,
        /// Why it was rejected.
        reason: String,
    },
}

impl ClientError {
    /// True when the error means "the server has gone": closed, reset or broken pipe.
    ///
    /// After an `error: ` line most servers close the connection; the echo client uses this to
    /// tell "the server hung up after its error" from a real failure.
    pub fn is_closed(&self) -> bool {
        match self {
            ClientError::Closed => true,
            ClientError::Io { source, .. } => matches!(
                source.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { addr, source } => {
                write!(f, "cannot connect to {addr}: {source}")
            }
            ClientError::TimedOut { after } => {
                write!(
                    f,
                    "timed out after {} s waiting for the server",
                    after.as_secs_f64()
                )
            }
            ClientError::Closed => write!(f, "the server closed the connection without replying"),
            ClientError::Io { during, source } => write!(f, "{during} failed: {source}"),
            ClientError::WrongReply { reply, reason } => {
                write!(f, "wrong reply {reply:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { source, .. } | ClientError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
