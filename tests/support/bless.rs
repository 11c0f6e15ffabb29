//! Compares what a test prints with the committed file under
//! `book/src/generated/` that a chapter includes, so a chapter cannot drift
//! from what the tool prints. With `MANY_CLIENTS_BLESS=1` it writes the file
//! instead (then commit it). Shared through `#[path]` by `tests/watch.rs`,
//! `tests/support/loom_check.rs` and the Shuttle tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// Checks (or, blessed, writes) `book/src/generated/{file}`; `rerun` is the
/// command that regenerates it, for the failure message.
pub fn check_against_book(file: &str, text: &str, rerun: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("book/src/generated")
        .join(file);
    if std::env::var_os("MANY_CLIENTS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} no longer matches what the test prints; if the change is meant, run \
         MANY_CLIENTS_BLESS=1 {rerun} and commit it.\n--- committed\n{committed}\n\
         --- printed now\n{text}",
        path.display()
    );
}
