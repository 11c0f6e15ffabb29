//! The engines every socket suite runs against, as a parameter: a test is one
//! `fn name(engine: Engine)`, and [`engine_tests!`] makes one `#[test]` of it per engine, in a
//! module named after the engine:
//!
//! ```text
//! fn busy_answer_at_the_limit_takes_no_id(engine: Engine) { … }
//! support::engine_tests!(busy_answer_at_the_limit_takes_no_id, …);
//! // → engine::thread::busy_answer_at_the_limit_takes_no_id,
//! //   engine::pool::busy_answer_at_the_limit_takes_no_id,
//! //   engine::events::busy_answer_at_the_limit_takes_no_id
//! ```
//!
//! The list of engines is the macro's first arm, one line each: adding an engine is one line
//! there (and its thread names in [`super::threads::is_server_thread`]). A pool serves at most
//! its `workers` connections at once by design, the rest wait in its queue; a test whose
//! premise is more long-lived connections than that sizes the pool for them with [`at_least`],
//! and a test about the queue itself chooses the size with [`pool_of`]. Event loops serve any
//! number; a test that depends on how an engine accepts or wakes says so where it does.
//!
//! For a quick local run, `ENGINES=thread` (a comma-separated list of [`Engine::name`]s) runs
//! only those engines' tests; the others print that they were skipped. Unset, as in CI, every
//! engine runs. (`cargo test --test hostile -- engine::thread::` does the same with libtest's
//! filter.)

use many_clients::server::Engine;

/// The pool's size where a test does not need another: fewer workers than most tests have
/// clients at some point, so the queue is in play.
pub const POOL_WORKERS: usize = 4;

/// The event loops where a test does not need another number: one per core here, and more
/// than one, so connections are spread over loops.
pub const EVENT_LOOPS: usize = 2;

/// `#[test]`s for each listed `fn name(engine: Engine)`, one per engine, as
/// `engine::{thread,pool}::name` (see the module docs; one invocation per test file). Each
/// holds [`super::serial`] for its whole run.
macro_rules! engine_tests {
    ($($test:ident),+ $(,)?) => {
        mod engine {
            // The engines, one line each: the module their tests go in, and the engine.
            $crate::support::engine_tests!(@in thread, ::many_clients::server::Engine::Thread; $($test),+);
            $crate::support::engine_tests!(@in pool, ::many_clients::server::Engine::Pool {
                workers: $crate::support::engines::POOL_WORKERS,
            }; $($test),+);
            $crate::support::engine_tests!(@in events, ::many_clients::server::Engine::Events {
                loops: $crate::support::engines::EVENT_LOOPS,
            }; $($test),+);
        }
    };
    (@in $module:ident, $engine:expr; $($test:ident),+) => {
        mod $module {
            $(
                #[test]
                fn $test() {
                    let engine = $engine;
                    if $crate::support::engines::selected(engine) {
                        let _serial = $crate::support::serial();
                        super::super::$test(engine);
                    }
                }
            )+
        }
    };
}
pub(crate) use engine_tests;

/// Whether `ENGINES` (unset: every engine) asks for `engine`'s tests; says so when not.
pub fn selected(engine: Engine) -> bool {
    let Ok(wanted) = std::env::var("ENGINES") else {
        return true;
    };
    let chosen = wanted.split(',').any(|name| name.trim() == engine.name());
    if !chosen {
        eprintln!("skipped: ENGINES={wanted} does not name {}", engine.name());
    }
    chosen
}

/// `engine`, with at least `n` workers if it is a pool: for a test that holds `n` connections
/// open at once and needs each of them served while it does. Other engines serve any number.
pub fn at_least(engine: Engine, n: usize) -> Engine {
    match engine {
        Engine::Pool { workers } => Engine::Pool {
            workers: workers.max(n),
        },
        other => other,
    }
}

/// `engine`, with exactly `n` workers if it is a pool: for a test whose premise is the pool's
/// size (more panics than workers, connections waiting in the queue).
pub fn pool_of(engine: Engine, n: usize) -> Engine {
    match engine {
        Engine::Pool { .. } => Engine::Pool { workers: n },
        other => other,
    }
}
