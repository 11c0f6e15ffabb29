//! The console of PROTOCOL.md, built from the library's `tracing` events:
//! `info` events are the per-client lines and go to stdout as bare
//! messages (no time, level, colour or span); everything else goes to stderr
//! with its level and the connection's span (`conn{peer=… engine=… id=…}`),
//! so `RUST_LOG=debug` narrates each connection's life there while stdout
//! keeps exactly the protocol's lines. `RUST_LOG` overrides the default
//! filter; `--quiet` means `warn`. Shared by the `server` and `demo`
//! examples, and by `tests/watch.rs`, which checks the narration.

#![allow(dead_code)]

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// Installs the console subscriber for the whole process.
pub fn init(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Rust's stdout is line-buffered even into a pipe, so each line is
    // flushed as it is printed, as PROTOCOL.md asks.
    subscriber(filter, std::io::stdout, std::io::stderr).init();
}

/// The console with its own filter and writers (tests capture both).
pub fn subscriber<Out, Err>(
    filter: EnvFilter,
    stdout: Out,
    stderr: Err,
) -> impl Subscriber + Send + Sync + 'static
where
    Out: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    Err: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(stdout)
        .event_format(MessageOnly)
        .with_filter(filter_fn(|meta| *meta.level() == Level::INFO));
    let detail = tracing_subscriber::fmt::layer()
        .with_writer(stderr)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_filter(filter_fn(|meta| *meta.level() != Level::INFO));
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(detail)
}

/// Formats an event as its message alone: the protocol's console lines have
/// nothing before or after them — not even the span they were logged in.
struct MessageOnly;

impl<S, N> FormatEvent<S, N> for MessageOnly
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
