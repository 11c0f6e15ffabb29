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

    /// The timeline as a standalone SVG image.
    pub fn render_svg(&self) -> String {
        let (rows, end) = self.rows();
        let (left, width, row_h) = (170.0, 640.0, 22.0);
        let height = row_h * (rows.len() as f64 + 2.0);
        let x = |at: Duration| left + width * at.as_secs_f64() / end.as_secs_f64().max(1e-6);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="monospace" font-size="12">"#,
            w = left + width + 30.0
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        for (i, row) in rows.iter().enumerate() {
            let y = row_h * (i as f64 + 1.0);
            let _ = writeln!(
                svg,
                r#"<text x="5" y="{}">{}</text>"#,
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
                let color = match mark {
                    '+' => "#2a7",
                    'm' => "#27c",
                    'r' => "#a5c",
                    '-' => "#555",
                    'B' => "#d33",
                    _ => "#e80",
                };
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{y}" r="4" fill="{color}"><title>{mark} at {:.2} ms</title></circle>"#,
                    x(*at),
                    at.as_secs_f64() * 1e3
                );
            }
        }
        let y = height - 8.0;
        let _ = writeln!(
            svg,
            r#"<text x="{left}" y="{y}">0 ms … {:.1} ms   green connected · blue message · purple reply · grey closed · red busy · orange shutdown/drained</text>"#,
            end.as_secs_f64() * 1e3
        );
        svg.push_str("</svg>\n");
        svg
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
        assert_eq!(svg.matches("<circle").count(), 6);
    }
}
