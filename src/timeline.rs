//! A picture of a real run: records every connection event with its time
//! and the name of the thread it happened on, and draws them — as text for
//! the terminal (`cargo run --example demo -- --timeline`) or as SVG for the
//! book. A reader *sees* clients overlap on their own threads, the limit
//! turning clients away, and shutdown draining.
//!
//! Recording is an [`Observer`]; a server without one pays a single `None`
//! check per event.

use crate::server::{Event, Observer};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One recorded event.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Time since the recorder was made.
    pub at: Duration,
    /// The thread it happened on (`accept`, `client-3`, `worker-1`, …).
    pub thread: String,
    /// What happened.
    pub event: Event,
}

/// Records events in arrival order.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    /// A plain std mutex: this is a diagnostic, not core state, and an event
    /// costs one short critical section.
    entries: Mutex<Vec<Entry>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            start: Instant::now(),
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl Observer for Timeline {
    fn event(&self, event: &Event) {
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        let entry = Entry {
            at: self.start.elapsed(),
            thread,
            event: event.clone(),
        };
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(entry);
    }
}

/// A row of the picture: one connection (or the server itself).
struct Row {
    label: String,
    marks: Vec<(Duration, char)>,
}

impl Timeline {
    /// A copy of what has been recorded so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn rows(&self) -> (Vec<Row>, Duration) {
        let mut entries = self.entries();
        // Time starts at the first event, not when the recorder was made.
        let origin = entries.first().map_or(Duration::ZERO, |e| e.at);
        for e in &mut entries {
            e.at -= origin;
        }
        let end = entries.last().map_or(Duration::ZERO, |e| e.at);
        let mut server = Row {
            label: "server".into(),
            marks: Vec::new(),
        };
        let mut clients: Vec<(u64, Row)> = Vec::new();
        let mut refused = 0;
        for e in &entries {
            let (key, mark) = match &e.event {
                Event::Connected { id, .. } => (Some(*id), '+'),
                Event::Message { id, .. } => (Some(*id), 'm'),
                Event::Replied { id: 0, .. } => continue,
                Event::Replied { id, .. } => (Some(*id), 'r'),
                Event::Closed { id } => (Some(*id), '-'),
                Event::Refused { .. } => {
                    refused += 1;
                    (None, 'B')
                }
                Event::ShutdownBegan { .. } => (None, 'S'),
                Event::Drained => (None, 'D'),
            };
            match key {
                None => server.marks.push((e.at, mark)),
                Some(id) => {
                    let pos = match clients.iter().position(|(k, _)| *k == id) {
                        Some(pos) => pos,
                        None => {
                            let label = format!("client {id}");
                            clients.push((
                                id,
                                Row {
                                    label,
                                    marks: Vec::new(),
                                },
                            ));
                            clients.len() - 1
                        }
                    };
                    let row = &mut clients[pos].1;
                    if matches!(e.event, Event::Message { .. }) && !row.label.contains('@') {
                        row.label = format!("client {id} @ {}", e.thread);
                    }
                    row.marks.push((e.at, mark));
                }
            }
        }
        if refused > 0 {
            server.label = format!("server ({refused} busy)");
        }
        let mut rows = vec![server];
        rows.extend(clients.into_iter().map(|(_, row)| row));
        (rows, end)
    }

    /// The timeline as text, `width` columns of time. Marks: `+` connected,
    /// `m` message received, `r` reply written, `-` closed, `=` open between
    /// them; on the server row `B` busy answer, `S` shutdown, `D` drained.
    pub fn render_text(&self, width: usize) -> String {
        let (rows, end) = self.rows();
        let width = width.max(10);
        let scale = end.as_secs_f64().max(1e-6) / (width - 1) as f64;
        let col = |at: Duration| ((at.as_secs_f64() / scale) as usize).min(width - 1);
        let label_width = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:label_width$}  0 ms{:>w$}",
            "",
            format!("{:.1} ms", end.as_secs_f64() * 1e3),
            w = width - 4
        );
        for row in rows {
            let mut line = vec![' '; width];
            if let (Some(first), Some(last), true) = (
                row.marks.first(),
                row.marks.last(),
                row.label.starts_with("client"),
            ) {
                for c in &mut line[col(first.0)..=col(last.0)] {
                    *c = '=';
                }
            }
            for (at, mark) in &row.marks {
                line[col(*at)] = *mark;
            }
            let _ = writeln!(
                out,
                "{:label_width$} |{}|",
                row.label,
                line.iter().collect::<String>()
            );
        }
        out.push_str("+ connected  m message  r reply  - closed  B busy  S shutdown  D drained\n");
        out
    }

    /// The timeline as a standalone SVG image: one row per client, the time axis, and a legend,
    /// all inside the image's `viewBox` so that it scales to any column width as one picture.
    pub fn render_svg(&self) -> String {
        let (rows, end) = self.rows();
        // Monospace at 12 px is about 7.2 px a character (0.6 em); the label column is as wide
        // as the longest label, so no label runs into the plot whatever the thread names are.
        let (font, char_w) = (12.0, 7.2);
        let longest = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
        let left = 10.0 + char_w * longest as f64 + 15.0;
        let (plot, row_h) = (520.0, 22.0);
        let width = left + plot + 20.0;
        // Rows, then a line for the time axis, then one for the legend.
        let axis_y = row_h * (rows.len() as f64 + 1.0);
        let legend_y = axis_y + row_h;
        let height = legend_y + 12.0;
        let x = |at: Duration| left + plot * at.as_secs_f64() / end.as_secs_f64().max(1e-6);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="{font}">"#,
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        for (i, row) in rows.iter().enumerate() {
            let y = row_h * (i as f64 + 1.0);
            let _ = writeln!(
                svg,
                r#"<text x="10" y="{}">{}</text>"#,
                y + 4.0,
                xml(&row.label)
            );
            if let (Some(first), Some(last), true) = (
                row.marks.first(),
                row.marks.last(),
                row.label.starts_with("client"),
            ) {
                let _ = writeln!(
                    svg,
                    r##"<line x1="{:.1}" y1="{y}" x2="{:.1}" y2="{y}" stroke="#9ab" stroke-width="6"/>"##,
                    x(first.0),
                    x(last.0)
                );
            }
            for (at, mark) in &row.marks {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{y}" r="4" fill="{}"><title>{mark} at {:.2} ms</title></circle>"#,
                    x(*at),
                    colour(*mark),
                    at.as_secs_f64() * 1e3
                );
            }
        }
        // The time axis: its two ends, under the plot.
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#999"/>"##,
            y = axis_y - 14.0,
            right = left + plot
        );
        let _ = writeln!(svg, r#"<text x="{left}" y="{axis_y}">0 ms</text>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{axis_y}" text-anchor="end">{:.1} ms</text>"#,
            left + plot,
            end.as_secs_f64() * 1e3
        );
        // The legend: a dot and a word per mark, left to right from the label column's edge.
        let mut at = 10.0;
        for (mark, word) in LEGEND {
            let _ = writeln!(
                svg,
                r#"<circle cx="{}" cy="{}" r="4" fill="{}"/>"#,
                at + 4.0,
                legend_y - 4.0,
                colour(mark)
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{legend_y}">{word}</text>"#,
                at + 12.0
            );
            at += 12.0 + char_w * word.len() as f64 + 18.0;
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// The legend's entries, in the order they are drawn.
const LEGEND: [(char, &str); 6] = [
    ('+', "connected"),
    ('m', "message"),
    ('r', "reply"),
    ('-', "closed"),
    ('B', "busy"),
    ('S', "shutdown, drained"),
];

/// The colour of a mark in the SVG picture.
fn colour(mark: char) -> &'static str {
    match mark {
        '+' => "#2a7",
        'm' => "#27c",
        'r' => "#a5c",
        '-' => "#555",
        'B' => "#d33",
        _ => "#e80",
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn renders_each_connection_on_its_own_row() {
        let t = Timeline::default();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        t.event(&Event::Connected { id: 1, peer });
        t.event(&Event::Refused { peer });
        t.event(&Event::Message { id: 1, len: 5 });
        t.event(&Event::Replied { id: 1, len: 40 });
        t.event(&Event::Closed { id: 1 });
        t.event(&Event::ShutdownBegan { live: 0 });
        let text = t.render_text(40);
        assert!(text.contains("server (1 busy)"), "{text}");
        let client_row = text
            .lines()
            .find(|l| l.starts_with("client 1"))
            .expect(&text);
        for mark in ['+', 'm', 'r', '-'] {
            assert!(client_row.contains(mark), "missing {mark}: {text}");
        }
        let svg = t.render_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("viewBox="), "the image must scale: {svg}");
        // Six events, and six legend dots.
        assert_eq!(svg.matches("<circle").count(), 6 + LEGEND.len());
    }
}
