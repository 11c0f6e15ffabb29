//! Short, stable names for the objects of a trace: `issued`, `state`, not
//! addresses.
//!
//! A learner reads `issued.load() → 0` at once and has to look up
//! `atomic1.load() → 0`. The backends make their constructors
//! `#[track_caller]`, so each object remembers the line that created it —
//! in the core, a line such as `issued: B::AtomicU64::new(0),` or
//! `state: Monitor::new(State::default()),` — and the name is the field or
//! variable that line assigns to, read from the source file. (Only at render
//! time, after a failure; the crate's sources are where the tests run.)
//! Where that does not work — a line of another shape, a file not at hand —
//! the object is named by kind and number (`atomic1`). Two objects of one
//! kind with one name (two pipes' `state`) are numbered in creation order
//! (`state1`, `state2`). Nothing depends on addresses or hashing, so the
//! names repeat from run to run.

use super::{Kind, ObjId, Object, Site};
use std::collections::BTreeMap;
use std::path::Path;

/// The name of every object in `objects` that `used` mentions, indexed like
/// `objects` (unused ones get an empty name).
pub(super) fn names(objects: &[Object], used: &[ObjId]) -> Vec<String> {
    let mut sources = Sources::default();
    let mut base: Vec<Option<String>> = vec![None; objects.len()];
    for &id in used {
        if let Some(object) = objects.get(id.0) {
            base[id.0] = Some(sources.name_at(object.at).unwrap_or_default());
        }
    }
    // How many used objects of each kind share each base name ("" = none).
    let mut count: BTreeMap<(u8, String), usize> = BTreeMap::new();
    for (object, name) in objects.iter().zip(&base) {
        if let Some(name) = name {
            *count
                .entry((kind_key(object.kind), name.clone()))
                .or_default() += 1;
        }
    }
    let mut seen: BTreeMap<(u8, String), usize> = BTreeMap::new();
    let mut out = vec![String::new(); objects.len()];
    for (i, (object, name)) in objects.iter().zip(&base).enumerate() {
        let Some(name) = name else { continue };
        let key = (kind_key(object.kind), name.clone());
        let n = seen.entry(key.clone()).or_default();
        *n += 1;
        out[i] = match (name.is_empty(), count[&key]) {
            (true, _) => format!("{}{n}", kind_word(object.kind)),
            (false, 1) => name.clone(),
            (false, _) => format!("{name}{n}"),
        };
    }
    out
}

fn kind_key(kind: Kind) -> u8 {
    kind as u8
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Atomic => "atomic",
        Kind::Mutex => "mutex",
        Kind::Condvar => "condvar",
    }
}

/// Source files read so far, by path as the compiler wrote it.
#[derive(Default)]
struct Sources {
    files: BTreeMap<&'static str, Option<Vec<String>>>,
}

impl Sources {
    /// The name the line at `at` gives the value created there.
    fn name_at(&mut self, at: Site) -> Option<String> {
        let lines = self.files.entry(at.file).or_insert_with(|| {
            // Relative paths are this crate's files; a dependency's are
            // absolute and never name the crate's objects.
            if at.file.starts_with('/') {
                return None;
            }
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(at.file);
            let text = std::fs::read_to_string(path).ok()?;
            Some(text.lines().map(str::to_string).collect())
        });
        let line = lines.as_ref()?.get((at.line as usize).checked_sub(1)?)?;
        let before: String = line
            .chars()
            .take((at.column as usize).saturating_sub(1))
            .collect();
        assigned_name(&before)
    }
}

/// The field or variable that the text before a constructor call assigns
/// to: `issued: ` → `issued`, `let mut holders = Arc::new(` → `holders`.
pub(super) fn assigned_name(before: &str) -> Option<String> {
    let mut text = before.trim_end();
    // Look through wrappers: `Arc::new(`, `Box::new(`.
    while let Some(rest) = text.strip_suffix('(') {
        let path_start = rest
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |i| i + 1);
        text = rest[..path_start].trim_end();
    }
    let rest = if let Some(rest) = text.strip_suffix('=') {
        if rest.ends_with(['=', '!', '<', '>']) {
            return None;
        }
        rest
    } else if let Some(rest) = text.strip_suffix(':') {
        if rest.ends_with(':') {
            return None;
        }
        rest
    } else {
        return None;
    };
    let rest = rest.trim_end();
    // A type annotation (`let x: T =`) names nothing we can read simply.
    let start = rest
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = &rest[start..];
    let is_ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_');
    (is_ident && name != "mut").then(|| name.to_string())
}
