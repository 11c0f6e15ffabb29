//! many-clients
pub mod client;
pub mod conn;
pub mod counter;
pub mod limit;
pub mod registry;
pub mod server;
pub mod shutdown;
pub mod stress;
pub mod sync;
pub mod timeline;

/// The book's chapters as doc-tests: every Rust block written in a chapter is compiled against
/// this crate, and run, by `cargo test` (PyO3's pattern; `mdbook test` cannot link the crate).
/// Blocks that show included source are `rust,ignore`, because rustdoc does not expand mdBook's
/// `{{#include}}`; the included files are compiled by cargo anyway. `tests/book.rs` checks that
/// every chapter in `book/src/SUMMARY.md` is listed here.
///
/// Under `RUSTFLAGS="--cfg loom"` (or `"--cfg shuttle"`) these doc-tests are compiled without
/// the `cfg` but linked against the library built with it. They still run on real primitives
/// because the public types default to the `Std` backend; a chapter snippet must never name
/// `sync::Model`, `sync::Loom` or `sync::Shuttle`.
#[cfg(doctest)]
mod book {
    macro_rules! chapters {
        ($($name:ident => $file:literal,)*) => {
            $(
                #[doc = include_str!(concat!("../book/src/", $file))]
                mod $name {}
            )*
        };
    }

    chapters! {
        ch01 => "ch01-introduction.md",
        ch02 => "ch02-one-client-at-a-time.md",
        ch03 => "ch03-a-thread-per-client.md",
        ch04 => "ch04-sharing-a-counter.md",
        ch05 => "ch05-swappable-primitives.md",
        ch06 => "ch06-proving-it-with-loom.md",
        ch06b => "ch06b-when-loom-runs-out.md",
        ch07 => "ch07-the-connection-as-a-state-machine.md",
        ch08 => "ch08-random-schedules.md",
        ch08b => "ch08b-random-programs-every-interleaving.md",
        ch09 => "ch09-limits.md",
        ch10 => "ch10-graceful-shutdown.md",
        ch11 => "ch11-measuring.md",
        ch12 => "ch12-the-same-state-machine-on-an-event-loop.md",
        ch13 => "ch13-where-to-go-next.md",
    }
}
