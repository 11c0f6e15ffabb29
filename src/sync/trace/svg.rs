//! A [`Trace`]'s interleaving as an SVG picture, drawn from the same rows as
//! the text table (so the picture cannot say something the trace does not).
//!
//! Shaped for a phone: the text table is one column per thread and gets
//! wide, and an SVG scaled down to a phone's width shrinks its text with it.
//! So the picture keeps one text column and shows the thread as a lane on
//! the left — one narrow lane per thread, a dot on the lane of the thread
//! that took the step, a line between lanes where the running thread
//! switches. 400 units wide with 12-unit text, it stays readable at 360
//! pixels.

use super::render::{Labels, Row, layout};
use super::{Failure, Trace};
use std::fmt::Write as _;

const WIDTH: f64 = 400.0;
const LANE: f64 = 32.0;
const ROW: f64 = 19.0;
const TOP: f64 = 52.0;
const COLORS: [&str; 5] = ["#555555", "#1f5fa8", "#b5441b", "#2b7a3d", "#7a3d8f"];

pub(super) fn svg(trace: &Trace, labels: &Labels, title: &str) -> String {
    let layout = layout(trace, *labels);
    let lanes = &layout.threads;
    let lane_x = |t: usize| {
        let i = lanes.iter().position(|&l| l == t).unwrap_or(0);
        24.0 + LANE * i as f64
    };
    let color = |t: usize| COLORS[lanes.iter().position(|&l| l == t).unwrap_or(0) % COLORS.len()];
    let text_x = 10.0 + LANE * lanes.len() as f64;
    // A row with a note in parentheses — `(stale: 1 was stored)` — puts the
    // note on a line of its own, so no line is wider than the picture.
    let lines: Vec<(&Row, String, Option<String>)> = layout
        .rows
        .iter()
        .map(|row| {
            let text = row.text.trim_start().to_string();
            match (row.switch, text.find(" (")) {
                (false, Some(i)) if text.ends_with(')') && text.len() > 30 => {
                    let note = text[i + 2..text.len() - 1].to_string();
                    (row, text[..i].to_string(), Some(note))
                }
                _ => (row, text, None),
            }
        })
        .collect();
    let failure_lines = trace.failure.as_ref().map_or(0, |f| failure_text(f).len());
    let rows_h: f64 = lines
        .iter()
        .map(|(_, _, note)| if note.is_some() { 2.0 * ROW } else { ROW })
        .sum();
    let height = TOP + rows_h + 14.0 + ROW * failure_lines as f64 + 10.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans Mono, monospace" font-size="12">"#
    );
    let _ = writeln!(svg, "  <title>{}</title>", xml(title));
    let _ = writeln!(
        svg,
        r##"  <rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r##"  <text x="8" y="18" font-family="DejaVu Sans, Arial, sans-serif" font-size="13" font-weight="bold" fill="#111111">{}</text>"##,
        xml(title)
    );
    // Lanes: a title and a dashed line per thread.
    let bottom = TOP + rows_h;
    for &t in lanes {
        let x = lane_x(t);
        let _ = writeln!(
            svg,
            r##"  <text x="{x}" y="40" text-anchor="middle" font-weight="bold" fill="{}">{}</text>"##,
            color(t),
            xml(&labels.of(t))
        );
        let _ = writeln!(
            svg,
            r##"  <line x1="{x}" y1="{:.1}" x2="{x}" y2="{bottom:.1}" stroke="#cccccc" stroke-dasharray="3 3"/>"##,
            TOP - 8.0
        );
    }
    let mut y = TOP;
    let mut previous: Option<(usize, f64)> = None;
    for (row, text, note) in &lines {
        let baseline = y + 4.0;
        if row.switch {
            let _ = writeln!(
                svg,
                r##"  <text x="{text_x}" y="{baseline}" fill="#888888" font-style="italic">{}</text>"##,
                xml(text)
            );
        } else {
            let (x, c) = (lane_x(row.thread), color(row.thread));
            if let Some((pt, py)) = previous.filter(|(pt, _)| *pt != row.thread) {
                let _ = writeln!(
                    svg,
                    r##"  <path d="M {:.1} {py:.1} L {x:.1} {y:.1}" stroke="#999999" stroke-width="1.2" fill="none"/>"##,
                    lane_x(pt)
                );
            }
            previous = Some((row.thread, y));
            let weight = if row.heading {
                r#" font-weight="bold""#
            } else {
                ""
            };
            let indent = 12.0 * row.depth as f64;
            let _ = writeln!(
                svg,
                r##"  <circle cx="{x}" cy="{y}" r="4" fill="{c}"/>
  <text x="{:.1}" y="{baseline}" fill="{c}"{weight}>{}</text>"##,
                text_x + indent,
                xml(text)
            );
            let at = row.at.rsplit('/').next().unwrap_or_default();
            let _ = writeln!(
                svg,
                r##"  <text x="{}" y="{baseline}" text-anchor="end" font-size="10" fill="#888888">{}</text>"##,
                WIDTH - 6.0,
                xml(at)
            );
            if let Some(note) = note {
                y += ROW;
                let _ = writeln!(
                    svg,
                    r##"  <text x="{:.1}" y="{}" fill="#c0392b" font-size="11">↳ {}</text>"##,
                    text_x + indent + 8.0,
                    y + 4.0,
                    xml(note)
                );
            }
        }
        y += ROW;
    }
    if let Some(failure) = &trace.failure {
        y += 14.0;
        for line in failure_text(failure) {
            let _ = writeln!(
                svg,
                r##"  <text x="8" y="{y}" fill="#c0392b">{}</text>"##,
                xml(&line)
            );
            y += ROW;
        }
    }
    svg += "</svg>\n";
    svg
}

/// The failure in lines that fit the picture's width: the first line of the
/// message, cut at ": " into pieces of at most 50 characters.
pub(super) fn failure_text(failure: &Failure) -> Vec<String> {
    let first = failure.message.lines().next().unwrap_or_default();
    let mut lines = vec![String::from("✗ ")];
    for piece in first.split_inclusive(": ") {
        let last = lines.last_mut().expect("one line at least");
        if last.chars().count() + piece.chars().count() > 50 && last.len() > 4 {
            lines.push(format!("  {piece}"));
        } else {
            last.push_str(piece);
        }
    }
    lines
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
