//! The console of PROTOCOL.md, built from the library's `tracing` events:
//! `info` events are the per-client lines and go to stdout as bare
//! messages (no time, level or colour); everything else goes to stderr with
//! its level. `RUST_LOG` overrides the default filter; `--quiet` means
//! `warn`. Shared by the `server` and `demo` examples.

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// Installs the console subscriber for the whole process.
pub fn init(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Rust's stdout is line-buffered even into a pipe, so each line is
    // flushed as it is printed, as PROTOCOL.md asks.
    let lines = fmt::layer()
        .with_writer(std::io::stdout)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .with_filter(filter_fn(|meta| *meta.level() == Level::INFO));
    let problems = fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_filter(filter_fn(|meta| *meta.level() != Level::INFO));
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(problems)
        .init();
}
