//! Checks that the book (`book/src/`) points only at things that exist.
//!
//! mdBook is lenient where it hurts: an `{{#include file:anchor}}` whose anchor is missing renders
//! as an *empty* code block with no warning, and a missing file is only a warning. So this test
//! checks what mdBook does not:
//!
//! * every `{{#include …}}` / `{{#rustdoc_include …}}` names a file that exists (relative to the
//!   chapter), and every `:anchor` is opened and closed in that file around a non-empty body;
//! * every relative link or image (`](ch02-….md)`, `](img/….svg)`) resolves;
//! * the chapters in `SUMMARY.md` and the files in `book/src/` are the same set, and every chapter
//!   is in the doc-test list in `src/lib.rs`, so no chapter's code escapes `cargo test`;
//! * a code block with an include is marked `ignore` (rustdoc cannot expand includes);
//! * every `compile_fail` block names the error codes it must fail with, and does fail with
//!   exactly those: rustdoc on stable checks only *that* a block fails to compile, not why, so
//!   this test compiles those blocks with `rustc` itself and compares the codes.
#![cfg(not(loom))]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn book_src() -> PathBuf {
    root().join("book/src")
}

/// Every `.md` file under `book/src`, recursively, sorted.
fn chapters() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&book_src(), &mut out);
    out.sort();
    assert!(!out.is_empty(), "no chapters found in book/src");
    out
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The name of the chapter file relative to `book/src`, for messages.
fn name(path: &Path) -> String {
    path.strip_prefix(book_src())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The argument of every `{{#include …}}` and `{{#rustdoc_include …}}` in `text`.
fn includes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for directive in ["{{#include ", "{{#rustdoc_include "] {
        let mut rest = text;
        while let Some(start) = rest.find(directive) {
            rest = &rest[start + directive.len()..];
            let end = rest.find("}}").expect("unclosed {{#include");
            out.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// The body between `ANCHOR: name` and `ANCHOR_END: name`, without nested anchor lines, or an
/// error saying what is missing. Names match whole, as mdBook's `ANCHOR:\s*[\w_-]+` does.
fn anchor_body(source: &str, anchor: &str) -> Result<String, String> {
    let marker = |line: &str, tag: &str| -> Option<String> {
        let at = line.find(tag)?;
        let name: String = line[at + tag.len()..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        Some(name)
    };
    let mut body = None::<Vec<&str>>;
    for line in source.lines() {
        if marker(line, "ANCHOR_END:").as_deref() == Some(anchor) {
            let lines = body.ok_or(format!("ANCHOR_END: {anchor} before its ANCHOR"))?;
            return Ok(lines.join("\n"));
        }
        if marker(line, "ANCHOR:").as_deref() == Some(anchor) {
            body = Some(Vec::new());
        } else if let Some(lines) = body.as_mut()
            && !line.contains("ANCHOR:")
            && !line.contains("ANCHOR_END:")
        {
            lines.push(line);
        }
    }
    Err(match body {
        None => format!("no `ANCHOR: {anchor}`"),
        Some(_) => format!("no `ANCHOR_END: {anchor}`"),
    })
}

#[test]
fn every_include_names_an_existing_file_and_a_non_empty_anchor() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for chapter in chapters() {
        let dir = chapter.parent().unwrap();
        for include in includes(&read(&chapter)) {
            checked += 1;
            let (file, selector) = include.split_once(':').unwrap_or((&include, ""));
            let path = dir.join(file);
            let Ok(source) = fs::read_to_string(&path) else {
                problems.push(format!("{}: {file}: no such file", name(&chapter)));
                continue;
            };
            // `file:10`, `file:10:20`, `file::20`, `file:10:` select lines; anything else is an
            // anchor name.
            let is_lines = selector
                .split(':')
                .all(|part| part.chars().all(|c| c.is_ascii_digit()));
            if selector.is_empty() || is_lines {
                continue;
            }
            match anchor_body(&source, selector) {
                Ok(body) if body.trim().is_empty() => problems.push(format!(
                    "{}: {include}: the anchor is empty",
                    name(&chapter)
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("{}: {include}: {e}", name(&chapter))),
            }
        }
    }
    assert!(checked > 0, "no includes found: is the scanner broken?");
    assert!(
        problems.is_empty(),
        "broken includes:\n{}",
        problems.join("\n")
    );
}

/// Targets of inline links and images, `[text](target)` / `![alt](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].trim().to_string());
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut problems = Vec::new();
    for chapter in chapters() {
        let dir = chapter.parent().unwrap();
        for target in link_targets(&read(&chapter)) {
            let external = ["http://", "https://", "mailto:", "#"];
            if external.iter().any(|p| target.starts_with(p)) {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            if !dir.join(file).is_file() {
                problems.push(format!("{}: ]({target}) does not resolve", name(&chapter)));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

/// The chapter files `SUMMARY.md` links to.
fn summary_chapters() -> BTreeSet<String> {
    let summary = read(&book_src().join("SUMMARY.md"));
    link_targets(&summary)
        .into_iter()
        .filter(|t| t.ends_with(".md"))
        .collect()
}

#[test]
fn summary_and_chapter_files_match() {
    let files: BTreeSet<String> = chapters()
        .iter()
        .map(|c| name(c))
        .filter(|n| n != "SUMMARY.md")
        .collect();
    let summary = summary_chapters();
    let unlisted: Vec<_> = files.difference(&summary).collect();
    let missing: Vec<_> = summary.difference(&files).collect();
    assert!(
        unlisted.is_empty(),
        "chapter files not in SUMMARY.md: {unlisted:?}"
    );
    assert!(
        missing.is_empty(),
        "SUMMARY.md entries without a file: {missing:?}"
    );
}

#[test]
fn every_chapter_is_doc_tested() {
    let lib = read(&root().join("src/lib.rs"));
    let missing: Vec<_> = summary_chapters()
        .into_iter()
        .filter(|chapter| !lib.contains(&format!("=> \"{chapter}\",")))
        .collect();
    assert!(
        missing.is_empty(),
        "chapters missing from the `chapters!` doc-test list in src/lib.rs: {missing:?}"
    );
}

/// A fenced code block: its info string (`rust,ignore`), its body, and the line it starts on.
struct Block {
    info: String,
    body: String,
    line: usize,
}

fn code_blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.as_mut() {
            None if trimmed.starts_with("```") => {
                open = Some(Block {
                    info: trimmed.trim_start_matches('`').trim().to_string(),
                    body: String::new(),
                    line: i + 1,
                });
            }
            None => {}
            Some(_) if trimmed.starts_with("```") => out.extend(open.take()),
            Some(block) => {
                block.body.push_str(line);
                block.body.push('\n');
            }
        }
    }
    assert!(open.is_none(), "unclosed code block");
    out
}

/// The attributes of a Rust block (`rust,ignore` → `["rust", "ignore"]`), or `None` for a block
/// that rustdoc does not treat as Rust (`text`, `console`, `python`, …).
fn rust_attributes(info: &str) -> Option<Vec<&str>> {
    let attrs: Vec<&str> = info.split([',', ' ']).filter(|a| !a.is_empty()).collect();
    let rustdoc_words = ["rust", "ignore", "compile_fail", "should_panic", "no_run"];
    let is_rust = attrs.is_empty()
        || attrs
            .iter()
            .any(|a| rustdoc_words.contains(a) || a.starts_with("edition"));
    is_rust.then_some(attrs)
}

#[test]
fn blocks_with_includes_are_ignored_by_rustdoc() {
    let mut problems = Vec::new();
    for chapter in chapters() {
        for block in code_blocks(&read(&chapter)) {
            let Some(attrs) = rust_attributes(&block.info) else {
                continue;
            };
            if block.body.contains("{{#") && !attrs.contains(&"ignore") {
                problems.push(format!("{} line {}", name(&chapter), block.line));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "Rust blocks with an include must be `rust,ignore` (rustdoc cannot expand it):\n{}",
        problems.join("\n")
    );
}

/// The source rustdoc would compile for a block: hidden `# ` lines shown, wrapped in `main`.
fn doctest_source(body: &str) -> String {
    let lines: Vec<&str> = body
        .lines()
        .map(|line| match line.trim_start().strip_prefix('#') {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => rest.trim_start(),
            _ => line,
        })
        .collect();
    let code = lines.join("\n");
    if code.contains("fn main") {
        code
    } else {
        format!("#[allow(unused)]\nfn main() {{\n{code}\n}}\n")
    }
}

/// The distinct error codes (`E0373`) in rustc's output.
fn error_codes(output: &str) -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let mut rest = output;
    while let Some(at) = rest.find("error[E") {
        let code: String = rest[at + 6..].chars().take(5).collect();
        codes.insert(code);
        rest = &rest[at + 6..];
    }
    codes
}

#[test]
fn compile_fail_blocks_fail_for_the_reason_they_name() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let scratch = std::env::temp_dir().join(format!("many-clients-book-{}", std::process::id()));
    fs::create_dir_all(&scratch).unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for chapter in chapters() {
        for block in code_blocks(&read(&chapter)) {
            let Some(attrs) = rust_attributes(&block.info) else {
                continue;
            };
            if !attrs.contains(&"compile_fail") {
                continue;
            }
            let here = format!("{} line {}", name(&chapter), block.line);
            let expected: BTreeSet<String> = attrs
                .iter()
                .filter(|a| a.len() == 5 && a.starts_with('E'))
                .map(|a| a.to_string())
                .collect();
            if expected.is_empty() {
                problems.push(format!(
                    "{here}: compile_fail must name its error codes (E….)"
                ));
                continue;
            }
            if block.body.contains("many_clients") {
                // Compiling against the crate would need cargo's build of it; keep compile_fail
                // examples to the standard library, or extend this test.
                problems.push(format!("{here}: compile_fail blocks must use only std"));
                continue;
            }
            checked += 1;
            let file = scratch.join(format!("block{checked}.rs"));
            fs::write(&file, doctest_source(&block.body)).unwrap();
            let output = Command::new(&rustc)
                .args([
                    "--edition",
                    "2024",
                    "--crate-type",
                    "bin",
                    "--emit",
                    "metadata",
                ])
                .arg("--out-dir")
                .arg(&scratch)
                .arg(&file)
                .output()
                .expect("run rustc");
            let stderr = String::from_utf8_lossy(&output.stderr);
            let got = error_codes(&stderr);
            if output.status.success() {
                problems.push(format!("{here}: compiles, but is marked compile_fail"));
            } else if got != expected {
                problems.push(format!(
                    "{here}: fails with {got:?}, the block names {expected:?}\n{stderr}"
                ));
            }
        }
    }
    let _ = fs::remove_dir_all(&scratch);
    assert!(
        checked > 0,
        "no compile_fail blocks found: is the scanner broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The README and `tests/auto_traits.rs` say a lock guard's not being `Send` is shown by a
/// `compile_fail` doc-test in `src/sync/monitor.rs`: it must be there, with the error code rustdoc
/// then checks (`cargo test --doc` runs it against the crate and fails if it compiles or fails
/// with another error).
#[test]
fn the_guard_is_not_send_doc_test_exists_where_it_is_cited() {
    let monitor = read(&root().join("src/sync/monitor.rs"));
    let doc: String = monitor
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("//!"))
        .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
        .collect();
    let blocks = code_blocks(&doc);
    let cited = blocks
        .iter()
        .find(|b| b.info == "compile_fail,E0277" && b.body.contains("monitor.lock()"));
    assert!(
        cited.is_some_and(|b| b.body.contains("spawn(move || drop(guard))")),
        "src/sync/monitor.rs lost its compile_fail,E0277 block moving a guard to another thread"
    );
    for citing in ["README.md", "tests/auto_traits.rs"] {
        assert!(
            read(&root().join(citing)).contains("src/sync/monitor.rs"),
            "{citing} should point to the doc-test in src/sync/monitor.rs"
        );
    }
}
