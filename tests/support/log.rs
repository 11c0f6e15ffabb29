//! The server's log, captured in memory by a global `tracing` subscriber (one per test binary,
//! installed on first use), so a test can check the console lines PROTOCOL.md promises and the
//! warnings the server gives. Included with `#[path]` next to `support` by the suites that read
//! it.

#![allow(dead_code)]

use std::sync::{Mutex, OnceLock};

use crate::support::{SETTLE, eventually, lock};

/// What the server logged at `info` and above, since the first call in this process.
pub struct Log {
    bytes: Mutex<Vec<u8>>,
}

/// The log, capturing from the first call on.
pub fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    let mut first = false;
    let log = LOG.get_or_init(|| {
        first = true;
        Log {
            bytes: Mutex::new(Vec::new()),
        }
    });
    if first {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| Writer)
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    }
    log
}

/// Appends what the subscriber writes to [`log`]'s buffer.
struct Writer;

impl std::io::Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        lock(&log().bytes).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.bytes)).into_owned()
    }

    /// How many times `needle` occurs in the log.
    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// Whether some line of the log is `line` (after the level and any span context the
    /// subscriber puts before the message).
    pub fn has_line(&self, line: &str) -> bool {
        let bytes = lock(&self.bytes);
        bytes.split(|&b| b == b'\n').any(|l| {
            l.trim_ascii_end()
                .strip_suffix(line.as_bytes())
                .is_some_and(|before| before.is_empty() || before.ends_with(b" "))
        })
    }

    /// Polls until the log has the line `line` (see [`Log::has_line`]).
    pub fn wait_for_line(&self, line: &str) {
        eventually(&format!("the log line {line:?}"), SETTLE, || {
            self.has_line(line)
        });
    }
}
