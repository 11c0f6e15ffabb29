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
//!
//! It also checks cheap proxies of what a reader sees, with every include expanded the way
//! mdBook expands it (`book/tools/render_check.py` renders the real pages in Chromium; this runs
//! on every `cargo test` without one):
//!
//! * no code line is wider than the code column shows at 1280 px (`MAX_CODE_COLUMNS`);
//! * every `<text>` of every committed SVG lies inside the image's `viewBox`;
//!
//! and claims the prose makes that can drift from the code:
//!
//! * every file, type, function or test name the prose puts in backticks exists, and every
//!   `--example`, `--test` and `--bench` target a command names has its file;
//! * every default the prose states (`` `--grace` (default 5 s) ``) is the code's;
//! * every test count it states (`` `tests/x.rs` has 7 tests ``, and the generated table of test
//!   runs) matches the file;
//! * every generated table says which command made it, and is included by a chapter;
//! * every chapter ends with a `## Summary`.
//!
//! Each of these checks has a test that feeds it a wrong input and watches it fail.
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

/// The tables of measured numbers, written by `book/tools/gen_tables.py`, never by hand.
fn generated_dir() -> PathBuf {
    book_src().join("generated")
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
    // `generated/` holds tables that chapters include; they are checked as part of the chapters
    // that include them.
    out.retain(|p| !p.starts_with(generated_dir()));
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

// ---------------------------------------------------------------------------------------------
// What the reader sees: the chapters with every include expanded, the way mdBook does it.
// ---------------------------------------------------------------------------------------------

/// The text an `{{#include arg}}` stands for, resolved as mdBook resolves it: `file`,
/// `file:anchor`, or 1-based inclusive line ranges `file:a`, `file:a:b`, `file::b`, `file:a:`.
fn included_text(dir: &Path, arg: &str) -> Result<String, String> {
    let (file, selector) = arg.split_once(':').unwrap_or((arg, ""));
    let source = fs::read_to_string(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    let parts: Vec<&str> = selector.split(':').collect();
    if selector.is_empty() {
        return Ok(source);
    }
    if !parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())) {
        return anchor_body(&source, selector);
    }
    let number = |p: &str| p.parse::<usize>().ok();
    let (from, to) = match parts[..] {
        [a] => (number(a), None),
        [a, b] => (number(a), number(b)),
        _ => return Err(format!("{arg}: a line range has at most two numbers")),
    };
    let lines: Vec<&str> = source.lines().collect();
    let from = from.unwrap_or(1).max(1) - 1;
    let to = to.unwrap_or(lines.len()).min(lines.len());
    Ok(lines.get(from..to).unwrap_or_default().join("\n"))
}

/// `text` with every include replaced by what it includes, recursively (a chapter includes a
/// generated table, which could include more), as mdBook's link preprocessor does.
fn expand(text: &str, dir: &Path, depth: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{#") {
        let end = rest[start..].find("}}").ok_or("an unclosed {{#")? + start;
        let directive = &rest[start + 3..end];
        out.push_str(&rest[..start]);
        let arg = directive
            .strip_prefix("include ")
            .or_else(|| directive.strip_prefix("rustdoc_include "));
        match arg {
            Some(arg) => {
                let arg = arg.trim();
                let body = included_text(dir, arg)?;
                let file = arg.split(':').next().unwrap_or(arg);
                let inner = dir.join(file);
                let inner_dir = inner.parent().unwrap_or(dir);
                if depth < 3 && file.ends_with(".md") {
                    out.push_str(&expand(&body, inner_dir, depth + 1)?);
                } else {
                    out.push_str(&body);
                }
            }
            None => out.push_str(&rest[start..end + 2]),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every chapter as its reader sees it: (file name, expanded text).
fn rendered_chapters() -> Vec<(String, String)> {
    chapters()
        .into_iter()
        .filter(|c| name(c) != "SUMMARY.md")
        .map(|c| {
            let text = expand(&read(&c), c.parent().unwrap(), 0)
                .unwrap_or_else(|e| panic!("{}: {e}", name(&c)));
            (name(&c), text)
        })
        .collect()
}

/// The lines of a code block as mdBook shows them: in a Rust block, lines starting with `# `
/// (or a lone `#`) are hidden until the reader asks for them.
fn shown_lines(block: &Block) -> Vec<&str> {
    let rust = rust_attributes(&block.info).is_some();
    block
        .body
        .lines()
        .filter(|line| {
            let t = line.trim_start();
            !(rust && (t == "#" || t.starts_with("# ")))
        })
        .collect()
}

// ---- Code fits the column ----

/// The widest code line the book's column shows without a scroll bar at 1280 px: code blocks
/// are 900 px wide there (`book/css/wide-code.css`), and mdBook's code font (Source Code Pro,
/// 14 px, bundled with the book so every reader gets it) is 8.4 px a column, after 16 px of
/// padding. `book/tools/render_check.py` measures the real thing; this is its cheap proxy.
const MAX_CODE_COLUMNS: usize = 104;

/// Lines of `lines` wider than `max` columns, as (1-based index, width). A column is a `char`:
/// the book's code has no tabs and no double-width characters (box-drawing characters are one
/// column in a monospace font).
fn too_wide<'a>(lines: impl IntoIterator<Item = &'a str>, max: usize) -> Vec<(usize, usize)> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| (i + 1, line.chars().count()))
        .filter(|&(_, width)| width > max)
        .collect()
}

#[test]
fn every_code_line_fits_the_column() {
    let mut problems = Vec::new();
    let mut blocks = 0;
    for (chapter, text) in rendered_chapters() {
        for block in code_blocks(&text) {
            blocks += 1;
            let lines = shown_lines(&block);
            for (i, width) in too_wide(lines.iter().copied(), MAX_CODE_COLUMNS) {
                problems.push(format!(
                    "{chapter}: the code block at expanded line {}, its line {i}, is {width} \
                     columns: {}",
                    block.line,
                    lines[i - 1].trim()
                ));
            }
        }
    }
    assert!(
        blocks > 50,
        "only {blocks} code blocks found: is the scanner broken?"
    );
    assert!(
        problems.is_empty(),
        "code wider than {MAX_CODE_COLUMNS} columns hides behind a scroll bar (wrap it, or \
         shorten the line in its source file):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_width_check_rejects_a_line_one_column_too_wide() {
    let fits = "x".repeat(MAX_CODE_COLUMNS);
    let wide = "y".repeat(MAX_CODE_COLUMNS + 1);
    assert_eq!(too_wide([fits.as_str()], MAX_CODE_COLUMNS), []);
    assert_eq!(
        too_wide([fits.as_str(), wide.as_str()], MAX_CODE_COLUMNS),
        [(2, MAX_CODE_COLUMNS + 1)]
    );
    // Characters, not bytes: 104 box-drawing characters are 312 bytes and still fit.
    let boxes = "─".repeat(MAX_CODE_COLUMNS);
    assert_eq!(too_wide([boxes.as_str()], MAX_CODE_COLUMNS), []);
    // An included region is measured as mdBook includes it, indentation and all.
    let dir = std::env::temp_dir().join(format!("book-width-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("wide.rs"),
        format!(
            "fn a() {{\n    // ANCHOR: here\n    {}\n    // ANCHOR_END: here\n}}\n",
            "z".repeat(101)
        ),
    )
    .unwrap();
    let chapter = "```rust,ignore\n{{#include wide.rs:here}}\n```\n";
    let text = expand(chapter, &dir, 0).unwrap();
    let block = &code_blocks(&text)[0];
    assert_eq!(too_wide(shown_lines(block), MAX_CODE_COLUMNS), [(1, 105)]);
    fs::remove_dir_all(&dir).unwrap();
}

// ---- SVG text stays inside its picture ----

/// An element of an SVG file: its name and attributes.
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Element {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_tag(tag: &str) -> Element {
    let tag = tag.trim_end_matches('/').trim();
    let (name, mut rest) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
    let mut attrs = Vec::new();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let quote = after.chars().next().unwrap_or('"');
        let value_end = after[1..].find(quote).map_or(after.len(), |e| e + 1);
        attrs.push((key, after[1..value_end].to_string()));
        rest = after.get(value_end + 1..).unwrap_or("");
    }
    Element {
        name: name.to_string(),
        attrs,
    }
}

fn number(text: &str) -> Option<f64> {
    text.trim().trim_end_matches("px").parse().ok()
}

/// Every `<text>` of an SVG document whose approximate box leaves the `viewBox`, or why the
/// document cannot be checked.
///
/// A browser measures text with the font it has; this test has no fonts, so it approximates.
/// A text's width is its number of characters × 0.6 × its font size: 0.6 em is the advance
/// of every character in DejaVu Sans Mono, and wider than the average character of the sans
/// fonts the diagrams use (DejaVu Sans averages about 0.55 em on English text), so the box
/// errs on the wide side. Its height runs from 0.8 em above the baseline to 0.25 em below.
/// `text-anchor` and `font-size` are inherited from enclosing elements, as in SVG, and a
/// `rotate(a cx cy)` transform on the text itself is applied to the box's corners. Any other
/// transform is refused rather than guessed at.
fn svg_text_outside(svg: &str) -> Result<Vec<String>, String> {
    let mut stack: Vec<Element> = Vec::new();
    let mut view_box = None;
    let mut problems = Vec::new();
    let mut text: Option<(Element, String)> = None;
    let mut rest = svg;
    while let Some(lt) = rest.find('<') {
        if let Some((_, content)) = text.as_mut() {
            content.push_str(&rest[..lt]);
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").ok_or("an unclosed comment")?;
            rest = &after[end + 3..];
            continue;
        }
        let gt = rest.find('>').ok_or("an unclosed tag")?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(closing) = tag.strip_prefix('/') {
            if closing.trim() == "text"
                && let Some((element, content)) = text.take()
            {
                check_text(&stack, &element, &content, view_box, &mut problems)?;
            }
            // <text> and <tspan> are never on the stack (see below).
            if !matches!(closing.trim(), "text" | "tspan") {
                stack.pop();
            }
            continue;
        }
        let element = parse_tag(tag);
        let self_closing = tag.trim_end().ends_with('/');
        if element.name == "svg" && stack.is_empty() {
            let vb = element
                .attr("viewBox")
                .ok_or("the root <svg> has no viewBox, so it cannot scale to the column")?;
            let v: Vec<f64> = vb.split([' ', ',']).filter_map(number).collect();
            let [x, y, w, h] = v[..] else {
                return Err(format!("viewBox=\"{vb}\" is not four numbers"));
            };
            view_box = Some((x, y, w, h));
        }
        if element.name == "g" && element.attr("transform").is_some() {
            return Err("a <g transform> moves its text: this checker does not follow it".into());
        }
        if element.name == "tspan" {
            continue; // part of its <text>; its characters are counted there
        }
        if element.name == "text" && !self_closing {
            text = Some((element, String::new()));
            continue;
        }
        if !self_closing {
            stack.push(element);
        }
    }
    Ok(problems)
}

fn check_text(
    ancestors: &[Element],
    text: &Element,
    content: &str,
    view_box: Option<(f64, f64, f64, f64)>,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    let (vx, vy, vw, vh) = view_box.ok_or("<text> outside an <svg>")?;
    let inherited = |key: &str| {
        text.attr(key)
            .or_else(|| ancestors.iter().rev().find_map(|e| e.attr(key)))
    };
    let size = inherited("font-size").and_then(number).unwrap_or(16.0);
    let anchor = inherited("text-anchor").unwrap_or("start");
    let x = text.attr("x").and_then(number).unwrap_or(0.0);
    let y = text.attr("y").and_then(number).unwrap_or(0.0);
    // An entity such as `&amp;` is one character on screen and several here: a safe overcount.
    let chars = content.replace(['\n', '\r'], "").trim().chars().count();
    let width = chars as f64 * 0.6 * size;
    let left = match anchor {
        "middle" => x - width / 2.0,
        "end" => x - width,
        _ => x,
    };
    let mut corners = [
        (left, y - 0.8 * size),
        (left + width, y - 0.8 * size),
        (left, y + 0.25 * size),
        (left + width, y + 0.25 * size),
    ];
    if let Some(transform) = text.attr("transform") {
        let args = transform
            .strip_prefix("rotate(")
            .and_then(|t| t.strip_suffix(')'))
            .ok_or_else(|| {
                format!("transform=\"{transform}\": only rotate(a cx cy) is followed")
            })?;
        let v: Vec<f64> = args.split([' ', ',']).filter_map(number).collect();
        let (angle, cx, cy) = match v[..] {
            [a] => (a, 0.0, 0.0),
            [a, cx, cy] => (a, cx, cy),
            _ => return Err(format!("transform=\"{transform}\" is not rotate(a cx cy)")),
        };
        let (sin, cos) = angle.to_radians().sin_cos();
        for (px, py) in &mut corners {
            let (dx, dy) = (*px - cx, *py - cy);
            (*px, *py) = (cx + dx * cos - dy * sin, cy + dx * sin + dy * cos);
        }
    }
    let (min_x, max_x, min_y, max_y) = corners.iter().fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(a, b, c, d), &(px, py)| (a.min(px), b.max(px), c.min(py), d.max(py)),
    );
    if min_x < vx || min_y < vy || max_x > vx + vw || max_y > vy + vh {
        problems.push(format!(
            "\"{}\" ({chars} characters at {size} px) spans x {min_x:.0}..{max_x:.0}, \
             y {min_y:.0}..{max_y:.0}; the viewBox is x {vx}..{}, y {vy}..{}",
            content.trim(),
            vx + vw,
            vy + vh
        ));
    }
    Ok(())
}

#[test]
fn every_svg_text_is_inside_its_view_box() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for entry in fs::read_dir(book_src().join("img")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "svg") {
            continue;
        }
        checked += 1;
        let file = name(&path);
        match svg_text_outside(&read(&path)) {
            Ok(outside) => problems.extend(outside.into_iter().map(|p| format!("{file}: {p}"))),
            Err(e) => problems.push(format!("{file}: {e}")),
        }
    }
    assert!(checked > 0, "no SVG files found in book/src/img");
    assert!(
        problems.is_empty(),
        "SVG text that the picture cuts off:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_svg_check_rejects_text_outside_the_view_box() {
    let svg = |body: &str| {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 100" font-size="10">{body}</svg>"#
        )
    };
    // 20 characters at 10 px: 120 units wide by the approximation.
    let inside = svg(r#"<text x="10" y="20">twenty characters!!!</text>"#);
    assert_eq!(svg_text_outside(&inside), Ok(vec![]));
    // The same text pushed right runs past x = 200, like the timeline legend used to.
    let right = svg(r#"<text x="100" y="20">twenty characters!!!</text>"#);
    assert_eq!(svg_text_outside(&right).unwrap().len(), 1);
    // Anchored at its end, it reaches left of 0.
    let left = svg(r#"<g text-anchor="end"><text x="50" y="20">twenty characters!!!</text></g>"#);
    assert_eq!(svg_text_outside(&left).unwrap().len(), 1);
    // Below the bottom edge.
    let low = svg(r#"<text x="10" y="105">low</text>"#);
    assert_eq!(svg_text_outside(&low).unwrap().len(), 1);
    // Rotated a quarter turn about its own anchor, the text runs up past the top edge.
    let rotated =
        svg(r#"<text x="20" y="50" transform="rotate(-90 20 50)">twenty characters!!!</text>"#);
    assert_eq!(svg_text_outside(&rotated).unwrap().len(), 1);
    // A picture without a viewBox cannot scale to the column at all.
    let fixed =
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="200"><text x="1" y="20">a</text></svg>"#;
    assert!(svg_text_outside(fixed).is_err());
}

// ---------------------------------------------------------------------------------------------
// Claims the prose makes that are cheap to check on every run
// ---------------------------------------------------------------------------------------------

/// The prose of a chapter: its text without fenced code blocks, which the checks below treat
/// separately.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The inline code spans of `prose`: the text between single backticks.
fn code_spans(prose: &str) -> Vec<String> {
    let mut spans = Vec::new();
    for paragraph in prose.split("\n\n") {
        let mut parts = paragraph.split('`');
        parts.next();
        while let (Some(span), Some(_)) = (parts.next(), parts.next()) {
            spans.push(span.replace('\n', " "));
        }
    }
    spans
}

/// Every identifier in the crate's Rust files (src, tests, examples, benches).
fn crate_words() -> BTreeSet<String> {
    fn walk(dir: &Path, words: &mut BTreeSet<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            // This file names things that do not exist, to show its checks rejecting them.
            if path.is_dir() {
                walk(&path, words);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.ends_with("tests/book.rs")
            {
                let text = read(&path);
                words.extend(
                    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .filter(|w| !w.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    let mut words = BTreeSet::new();
    for dir in ["src", "tests", "examples", "benches"] {
        walk(&root().join(dir), &mut words);
    }
    words
}

/// Does `pattern`, a path relative to the repository that may contain `*` in its file name,
/// name at least one file or directory?
fn path_exists(pattern: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if !pattern.contains('*') {
        return root().join(pattern).exists();
    }
    let (dir, file) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let (before, after) = file.split_once('*').unwrap_or((file, ""));
    fs::read_dir(root().join(dir)).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.len() >= before.len() + after.len()
                && name.starts_with(before)
                && name.ends_with(after)
        })
    })
}

/// The repository's top-level directories whose paths the book names.
const PATH_ROOTS: [&str; 7] = [
    "src/",
    "tests/",
    "examples/",
    "benches/",
    "book/",
    ".ci/",
    ".cargo/",
];

/// Words the book puts in backticks that are not this crate's, and that the crate's code never
/// spells out: the standard library's and other crates' names, shell words, protocol text.
#[rustfmt::skip]
const NOT_CRATE_NAMES: &[&str] = &[
    "std", "core", "loom", "parking_lot", "tokio", "proptest", "socket2", "libc", "chrono",
    "tracing", "signal_hook", "criterion", "quinn_proto", "mini_redis", "select",
    "catch_unwind", "incoming", "daemon", "recv", "sendall", "threading", "listen", "accept",
    "epoll_wait", "clone3", "mmap", "munmap", "mprotect", "madvise", "prctl", "futex",
    "setsockopt", "rwsem_down_write_slowpath", "clock_gettime", "malloc", "openat", "statx",
    "fcntl", "getrusage", "setrlimit", "dup", "wait_timeout", "scope", "BufReader",
    "UnicodeDecodeError", "RwLock", "DbDropGuard", "thread_start", "start_thread",
    "OwnedSemaphorePermit", "Semaphore", "ThreadPool", "SO_LINGER", "SO_SNDTIMEO",
    "TCP_NODELAY", "EMFILE", "MSG_DONTWAIT", "MSG_NOSIGNAL", "VmRSS", "somaxconn",
    "Recv", "Send", "Sync", "drain", "into_inner", "PoisonError", "Notify", "CARGO_TARGET_DIR",
    "RUSTFLAGS", "RUSTDOCFLAGS", "RUST_BACKTRACE",
];

/// Backticked names in `prose` that look like this crate's paths or identifiers, and that
/// do not exist: files under the repository's directories, `Type::method` paths and
/// snake_case names (functions, tests, fields), each of whose parts must appear in the crate's
/// Rust code. The check is cheap and loose: it cannot tell *where* a name is defined, only that
/// a name the book sends the reader to look for is there to be found.
fn missing_names(prose: &str, words: &BTreeSet<String>) -> Vec<String> {
    let mut missing = Vec::new();
    for span in code_spans(prose) {
        let span = span.trim();
        if PATH_ROOTS.iter().any(|r| span.starts_with(r)) && !span.contains(' ') {
            let path = span.split(['#', ':']).next().unwrap_or(span);
            if !path_exists(path) {
                missing.push(format!("`{span}`: no such file"));
            }
            continue;
        }
        let name = span.trim_end_matches("()").trim_start_matches('&');
        let is_path = name
            .split("::")
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_');
        if !is_path {
            continue;
        }
        let parts: Vec<&str> = name.split("::").collect();
        // A single lowercase word (`enter`, `move`) is too common to check; a snake_case name,
        // a CamelCase name or a `path::to::it` is specific enough.
        let specific = parts.len() > 1
            || name.contains('_')
            || name.chars().next().is_some_and(char::is_uppercase) && name.len() > 3;
        if !specific || name.chars().all(|c| c.is_uppercase() || c == '_') && !name.contains('_') {
            continue;
        }
        if NOT_CRATE_NAMES.contains(&parts[0]) {
            continue;
        }
        let absent: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !words.contains(*p) && !NOT_CRATE_NAMES.contains(p))
            .collect();
        if !absent.is_empty() {
            missing.push(format!(
                "`{span}`: {} not found in the crate",
                absent.join(", ")
            ));
        }
    }
    missing
}

/// Targets named in commands (`cargo run --example X`, `--test X`, `--bench X`) that have no
/// file: `examples/X.rs`, `tests/X.rs`, `benches/X.rs` (or a directory with a `main.rs`).
fn missing_targets(text: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for (flag, dir) in [
        ("--example ", "examples"),
        ("--test ", "tests"),
        ("--bench ", "benches"),
    ] {
        let mut rest = text;
        while let Some(at) = rest.find(flag) {
            rest = &rest[at + flag.len()..];
            let target: String = rest
                .trim_start_matches(['\'', '"'])
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '*')
                .collect();
            // Placeholders in a command's description (`--test loom_X`, `--test FILE`).
            if target.is_empty() || target.chars().any(|c| c.is_ascii_uppercase()) {
                continue;
            }
            let exists = path_exists(&format!("{dir}/{target}.rs"))
                || root().join(dir).join(&target).join("main.rs").is_file();
            if !exists {
                missing.push(format!("{flag}{target}: no {dir}/{target}.rs"));
            }
        }
    }
    missing
}

#[test]
fn every_name_the_book_sends_the_reader_to_exists() {
    let words = crate_words();
    let mut problems = Vec::new();
    for (chapter, text) in rendered_chapters() {
        for p in missing_names(&prose(&text), &words) {
            problems.push(format!("{chapter}: {p}"));
        }
        for p in missing_targets(&text) {
            problems.push(format!("{chapter}: {p}"));
        }
    }
    assert!(
        problems.is_empty(),
        "the book names things that do not exist (if a name is not this crate's, add it to \
         NOT_CRATE_NAMES):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_name_check_rejects_names_that_do_not_exist() {
    let words = crate_words();
    // Chapter 4 once named an example that was never written.
    let wrong = "This is `step04_unshared_counter`, and it does not compile.";
    assert_eq!(missing_names(wrong, &words).len(), 1);
    let right = "This is `step04_shared_counter`, in `examples/step04_shared_counter.rs`.";
    assert_eq!(missing_names(right, &words), Vec::<String>::new());
    assert_eq!(missing_names("See `src/nowhere.rs`.", &words).len(), 1);
    assert_eq!(
        missing_names("`tests/loom_*.rs`", &words),
        Vec::<String>::new()
    );
    assert_eq!(missing_names("`tests/nothing_*.rs`", &words).len(), 1);
    assert_eq!(missing_names("`Limit::try_take_twice`", &words).len(), 1);
    assert_eq!(
        missing_names("`Limit::try_acquire`", &words),
        Vec::<String>::new()
    );
    // Not this crate's, and not checked: std paths, plain words.
    assert_eq!(
        missing_names("`std::thread::spawn`, `move`", &words),
        Vec::<String>::new()
    );

    assert_eq!(
        missing_targets("$ cargo run --example demo"),
        Vec::<String>::new()
    );
    assert_eq!(
        missing_targets("$ cargo run --example step04_unshared_counter").len(),
        1
    );
    assert_eq!(
        missing_targets("cargo test --test 'loom_*'"),
        Vec::<String>::new()
    );
    assert_eq!(missing_targets("cargo test --test loom_nothing").len(), 1);
    assert_eq!(
        missing_targets("cargo bench --bench idle_memory"),
        Vec::<String>::new()
    );
}

// ---- Default values the prose states ----

/// What the code says each default is, in the form the prose writes it: `` `KEY` (default
/// VALUE) ``, the value a number and, for times and sizes, a unit.
fn actual_defaults() -> Vec<(&'static str, String)> {
    use many_clients::conn::Mode;
    use many_clients::server::ServerConfig;
    let config = ServerConfig::new(Mode::Echo);
    let secs = |d: std::time::Duration| format!("{} s", d.as_secs_f64());
    vec![
        ("--max-connections", config.max_connections.to_string()),
        ("--idle-timeout", secs(config.idle_timeout)),
        ("--grace", secs(config.grace)),
        ("--max-line", config.max_line.to_string()),
        ("drain_timeout", secs(config.drain_timeout)),
        (
            "ServerConfig::busy_responders",
            config.busy_responders.to_string(),
        ),
        ("ServerConfig::backlog", config.backlog.to_string()),
        (
            "ServerConfig::stack_size",
            format!("{} MiB", config.stack_size / (1024 * 1024)),
        ),
    ]
}

/// Every `` `KEY` (default VALUE) `` in `prose` whose value is not what the code says, or whose
/// key this check does not know (so a new default cannot slip past it).
fn wrong_defaults(prose: &str, actual: &[(&str, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut rest = prose;
    while let Some(at) = rest.find("` (default ") {
        let key_start = rest[..at].rfind('`').map_or(0, |k| k + 1);
        let key = &rest[key_start..at];
        let after = &rest[at + "` (default ".len()..];
        let value = after.split([')', ',', ';']).next().unwrap_or("").trim();
        match actual.iter().find(|(k, _)| *k == key) {
            None => problems.push(format!(
                "`{key}` (default {value}): not a default this test knows; add it to \
                 actual_defaults"
            )),
            Some((_, want)) if value != want => {
                problems.push(format!("`{key}` (default {value}): the code says {want}"))
            }
            Some(_) => {}
        }
        rest = after;
    }
    problems
}

#[test]
fn every_default_the_prose_states_is_the_codes() {
    let actual = actual_defaults();
    let mut problems = Vec::new();
    let mut stated = 0;
    for (chapter, text) in rendered_chapters() {
        let prose = prose(&text);
        stated += prose.matches("` (default ").count();
        for p in wrong_defaults(&prose, &actual) {
            problems.push(format!("{chapter}: {p}"));
        }
    }
    assert!(
        stated >= 4,
        "only {stated} defaults found: is the scanner broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_default_check_rejects_a_wrong_value_and_an_unknown_key() {
    let actual = actual_defaults();
    let right = "`--max-connections` (default 1024) and `--grace` (default 5 s).";
    assert_eq!(wrong_defaults(right, &actual), Vec::<String>::new());
    let wrong = "`--idle-timeout` (default 30 s) cuts a silent client.";
    assert_eq!(wrong_defaults(wrong, &actual).len(), 1);
    let unknown = "`--max-per-ip` (default 8) is exercise 1.";
    assert_eq!(wrong_defaults(unknown, &actual).len(), 1);
}

// ---- Test counts ----

/// How many tests `source` declares: its `#[test]` attribute lines, and one test per engine for
/// each name listed in `engine_tests!(…)` (see `tests/support/engines.rs`). rustfmt puts an
/// attribute on a line of its own, so a line that is exactly `#[test]` is one; the text `#[test]`
/// in a comment or a string is not. Tests in modules the file pulls in with `#[path]` are counted
/// with [`test_count_of`].
fn test_count(source: &str) -> usize {
    let plain = source.lines().filter(|l| l.trim() == "#[test]").count();
    plain + engine_test_names(source) * engines()
}

/// The names listed in a test file's `engine_tests!(…)` invocation: a line of code (not a
/// comment) that starts with it.
fn engine_test_names(source: &str) -> usize {
    let Some(at) = source.lines().position(|line| {
        let line = line.trim_start();
        line.starts_with("support::engine_tests!(") || line.starts_with("engine_tests!(")
    }) else {
        return 0;
    };
    let from: String = source.lines().skip(at).collect::<Vec<_>>().join("\n");
    let list = &from[from.find('(').map_or(0, |i| i + 1)..];
    let list = &list[..list.find(')').unwrap_or(list.len())];
    list.split(',')
        .filter(|name| !name.trim().is_empty())
        .count()
}

/// How many engines `engine_tests!` runs each test against: one `engine_tests!(@in …)` line each
/// in `tests/support/engines.rs`.
fn engines() -> usize {
    let source = read(&root().join("tests/support/engines.rs"));
    source.matches("engine_tests!(@in ").count()
}

/// How many tests the test file at `path` declares, with those of every module it includes
/// through `#[path = "…"] mod name;` (as `tests/schedules.rs` includes its reference model), so
/// the count is what libtest runs.
fn test_count_of(path: &Path, depth: usize) -> Option<usize> {
    let source = fs::read_to_string(path).ok()?;
    let mut count = test_count(&source);
    let lines: Vec<&str> = source.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("#[path = \"") else {
            continue;
        };
        let included = rest.trim_end_matches("\"]");
        let is_mod = lines[i + 1..]
            .iter()
            .take(3)
            .any(|l| l.trim_start().starts_with("mod ") && l.trim_end().ends_with(';'));
        if is_mod && depth < 4 {
            count += test_count_of(&path.parent()?.join(included), depth + 1)?;
        }
    }
    Some(count)
}

/// Test counts the text states that differ from the files: `` `tests/X.rs` has N tests `` in
/// prose, and `` | `tests/X.rs` | N | `` rows in tables (the generated test-runs table).
fn wrong_test_counts(text: &str, count: &dyn Fn(&str) -> Option<usize>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |file: &str, stated: &str| {
        let Ok(stated) = stated.parse::<usize>() else {
            return;
        };
        match count(file) {
            None => problems.push(format!("`{file}`: no such file")),
            Some(n) if n != stated => {
                problems.push(format!("`{file}` has {n} tests, the text says {stated}"))
            }
            Some(_) => {}
        }
    };
    for line in text.lines() {
        // A table row: | `tests/x.rs` | 7 | ...
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3
            && let Some(file) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`'))
            && file.starts_with("tests/")
        {
            check(file, cells[2]);
        }
    }
    let mut rest = text;
    while let Some(at) = rest.find("` has ") {
        let file = &rest[rest[..at].rfind('`').map_or(0, |k| k + 1)..at];
        let after = &rest[at + "` has ".len()..];
        let mut words = after.split_whitespace();
        if let (Some(n), Some(unit)) = (words.next(), words.next())
            && unit.starts_with("test")
            && file.starts_with("tests/")
        {
            check(file, n);
        }
        rest = after;
    }
    problems
}

fn count_in_repo(file: &str) -> Option<usize> {
    test_count_of(&root().join(file), 0)
}

#[test]
fn every_test_count_the_book_states_is_right() {
    let mut problems = Vec::new();
    for (chapter, text) in rendered_chapters() {
        for p in wrong_test_counts(&text, &count_in_repo) {
            problems.push(format!("{chapter}: {p}"));
        }
    }
    assert!(
        problems.is_empty(),
        "test counts that drifted (re-run `python3 book/tools/gen_tables.py tests`, or fix \
         the prose):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_test_count_check_rejects_a_wrong_count() {
    let seven = |file: &str| (file == "tests/server_concurrency.rs").then_some(7);
    // Chapter 9 once said `6 passed` for a file with 7 tests.
    let wrong = "`tests/server_concurrency.rs` has 6 tests.";
    assert_eq!(wrong_test_counts(wrong, &seven).len(), 1);
    let right = "`tests/server_concurrency.rs` has 7 tests.";
    assert_eq!(wrong_test_counts(right, &seven), Vec::<String>::new());
    // Two names in `engine_tests!`, and a plain test: 2 × engines + 1.
    let per_engine = "#[test]\nfn a() {}\nsupport::engine_tests!(b, c,\n);\n";
    assert_eq!(test_count(per_engine), 2 * engines() + 1);
    assert!(engines() >= 3, "thread, pool and events");
    let row = "| `tests/server_concurrency.rs` | 6 | 6 | 0 | 5.23 s |";
    assert_eq!(wrong_test_counts(row, &seven).len(), 1);
    let missing = "`tests/nothing.rs` has 2 tests.";
    assert_eq!(wrong_test_counts(missing, &seven).len(), 1);
    assert_eq!(
        test_count("#[test]\nfn a() {}\n// #[test]\n    #[test]\nfn b() {}\n"),
        2
    );
    // `tests/schedules.rs` has one property, run per engine, and six tests in the model it
    // includes (four of `expect`, two of `check`).
    assert_eq!(count_in_repo("tests/schedules.rs"), Some(engines() + 6));
}

// ---- Generated tables ----

/// What is wrong with the generated file `file` (its text `text`), given every chapter's text:
/// no chapter includes it, or, for a table, it does not end with the line that says which
/// command made it, when, at which commit and on what machine.
fn generated_problems(file: &str, text: &str, chapters: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !chapters.contains(&format!("generated/{file}")) {
        problems.push(format!("generated/{file}: no chapter includes it"));
    }
    let last = text.trim_end().lines().last().unwrap_or_default();
    let says_where = last.starts_with("*Generated by `python3 book/tools/gen_tables.py")
        && last.contains(" at commit ")
        && last.contains(", from `")
        && last.contains(" on ");
    if file.ends_with(".md") && !says_where {
        problems.push(format!(
            "generated/{file}: does not end with the line saying which command made it, when, \
             at which commit and on what machine"
        ));
    }
    problems
}

#[test]
fn every_generated_table_says_where_it_came_from_and_is_used() {
    let Ok(entries) = fs::read_dir(generated_dir()) else {
        return;
    };
    let chapters: String = chapters().iter().map(|c| read(c)).collect();
    let mut problems = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        problems.extend(generated_problems(&file, &read(&path), &chapters));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_generated_table_check_rejects_a_hand_typed_or_unused_table() {
    let chapter = "{{#include generated/costs.md}}";
    let made = "| a | b |\n\n*Generated by `python3 book/tools/gen_tables.py loom` on 2026-12-06 \
                at commit abc1234, from `cargo test`, on Linux, 2 cores.*\n";
    assert_eq!(
        generated_problems("costs.md", made, chapter),
        Vec::<String>::new()
    );
    // A table typed by hand has no such line.
    let typed = "| a | b |\n|---|---|\n| x | 1 |\n";
    assert_eq!(generated_problems("costs.md", typed, chapter).len(), 1);
    // A table no chapter includes is stale the moment it is written.
    assert_eq!(generated_problems("other.md", made, chapter).len(), 1);
    // A transcript (.txt) sits inside a code block and carries no line of its own.
    assert_eq!(
        generated_problems("run.txt", "$ cargo run\n", "{{#include generated/run.txt}}"),
        Vec::<String>::new()
    );
}

// ---- Every chapter ends with a summary ----

/// The last `## ` heading of a chapter, if any. Headings inside code blocks do not count.
fn last_section(text: &str) -> Option<String> {
    prose(text)
        .lines()
        .rfind(|l| l.starts_with("## "))
        .map(|l| l.trim_start_matches("## ").trim().to_string())
}

#[test]
fn every_chapter_ends_with_a_summary() {
    let missing: Vec<String> = chapters()
        .iter()
        .filter(|c| name(c) != "SUMMARY.md")
        .filter(|c| last_section(&read(c)).as_deref() != Some("Summary"))
        .map(|c| name(c))
        .collect();
    assert!(
        missing.is_empty(),
        "chapters whose last section is not `## Summary` (what it proved, by which test, with \
         the command): {missing:?}"
    );
}

#[test]
fn the_summary_check_rejects_a_chapter_that_ends_elsewhere() {
    let ends_well = "# A\n\n## One\n\ntext\n\n## Summary\n\n### Exercise\n";
    assert_eq!(last_section(ends_well).as_deref(), Some("Summary"));
    let ends_badly = "# A\n\n## Summary\n\n## Appendix added later\n";
    assert_eq!(
        last_section(ends_badly).as_deref(),
        Some("Appendix added later")
    );
    let in_code = "## Summary\n\n```text\n## not a heading\n```\n";
    assert_eq!(last_section(in_code).as_deref(), Some("Summary"));
}
