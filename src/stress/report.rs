//! What a stress run found: per-client outcomes, the greet-id check and the summary lines.
//!
//! Kept apart from the run loop so it can be tested with made-up outcomes, without a server.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::Mode;

/// What happened to one client.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientOutcome {
    /// The client's number, `0..clients`; its messages read `client {index} message {j}`.
    pub index: usize,
    /// Greet ids received, one per connection.
    pub ids: Vec<u64>,
    /// Per received reply: from sending (greet: from starting to connect) to the whole reply.
    pub latencies: Vec<Duration>,
    /// Connections that were opened.
    pub connections: usize,
    /// Replies received, right or wrong.
    pub replies: usize,
    /// Why the client failed; `None` if every reply was right.
    pub error: Option<String>,
}

impl ClientOutcome {
    /// A client that has not done anything yet.
    pub fn new(index: usize) -> Self {
        ClientOutcome {
            index,
            ..ClientOutcome::default()
        }
    }
}

/// Latency percentiles in milliseconds, computed by the caller from [`StressReport::latencies`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The result of a run: every client's outcome, in client order, after the id check.
#[derive(Clone, Debug)]
pub struct StressReport {
    pub mode: Mode,
    pub outcomes: Vec<ClientOutcome>,
    /// `Some(all greet ids distinct)` in greet mode, `None` in echo mode.
    pub ids_unique: Option<bool>,
    /// Wall-clock time of the whole run, the denominator of the rates.
    pub elapsed: Duration,
}

impl StressReport {
    /// Builds the report, running the id check in greet mode (which may fail more clients).
    pub fn from_outcomes(mode: Mode, mut outcomes: Vec<ClientOutcome>, elapsed: Duration) -> Self {
        let ids_unique = match mode {
            Mode::Greet => Some(check_ids_unique(&mut outcomes)),
            Mode::Echo => None,
        };
        StressReport {
            mode,
            outcomes,
            ids_unique,
            elapsed,
        }
    }

    pub fn clients(&self) -> usize {
        self.outcomes.len()
    }

    pub fn ok(&self) -> usize {
        self.outcomes.iter().filter(|o| o.error.is_none()).count()
    }

    pub fn failed(&self) -> usize {
        self.clients() - self.ok()
    }

    /// True when every client and every reply was right: the stress client's exit code 0.
    pub fn all_ok(&self) -> bool {
        self.failed() == 0
    }

    /// `(client index, reason)` for every failed client, in client order.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &str)> {
        self.outcomes
            .iter()
            .filter_map(|o| Some((o.index, o.error.as_deref()?)))
    }

    /// Every recorded per-message latency.
    pub fn latencies(&self) -> impl Iterator<Item = Duration> + '_ {
        self.outcomes
            .iter()
            .flat_map(|o| o.latencies.iter().copied())
    }

    pub fn connections(&self) -> usize {
        self.outcomes.iter().map(|o| o.connections).sum()
    }

    pub fn replies(&self) -> usize {
        self.outcomes.iter().map(|o| o.replies).sum()
    }

    pub fn conn_per_s(&self) -> f64 {
        per_second(self.connections(), self.elapsed)
    }

    pub fn msg_per_s(&self) -> f64 {
        per_second(self.replies(), self.elapsed)
    }

    /// The human summary, the stress client's last line.
    pub fn summary_line(&self, latency: &Latency) -> String {
        let unique = match self.ids_unique {
            Some(true) => "yes",
            Some(false) => "no",
            None => "n/a",
        };
        format!(
            "{}/{} clients ok, {} failed, ids unique: {unique}, {:.1} conn/s, {:.1} msg/s, \
             p50 {:.3} ms, p99 {:.3} ms",
            self.ok(),
            self.clients(),
            self.failed(),
            self.conn_per_s(),
            self.msg_per_s(),
            latency.p50_ms,
            latency.p99_ms,
        )
    }

    /// The same as one JSON object on one line (`--json`). Every value is a number, a boolean or
    /// `null` except `mode`, so it is written by hand rather than pulling a JSON crate into the
    /// library.
    pub fn json_line(&self, latency: &Latency) -> String {
        let unique = self
            .ids_unique
            .map_or("null", |u| if u { "true" } else { "false" });
        format!(
            "{{\"clients\":{},\"ok\":{},\"failed\":{},\"ids_unique\":{unique},\
             \"conn_per_s\":{:.1},\"msg_per_s\":{:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\
             \"p99_ms\":{:.3},\"max_ms\":{:.3},\"mode\":\"{}\",\"connections\":{},\
             \"replies\":{},\"elapsed_s\":{:.3}}}",
            self.clients(),
            self.ok(),
            self.failed(),
            self.conn_per_s(),
            self.msg_per_s(),
            latency.p50_ms,
            latency.p90_ms,
            latency.p99_ms,
            latency.max_ms,
            self.mode.name(),
            self.connections(),
            self.replies(),
            self.elapsed.as_secs_f64(),
        )
    }
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Fails every client that holds a greet id also held by another connection; true if none does.
///
/// Ids are compared across all connections of all clients, so a client that got the same id on
/// two of its own connections fails too. Every holder fails, not just the later ones: from the
/// outside nobody can tell which of two clients the server "meant".
pub fn check_ids_unique(outcomes: &mut [ClientOutcome]) -> bool {
    // A BTreeMap keeps the failure messages in a reproducible order.
    let mut holders: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (pos, outcome) in outcomes.iter().enumerate() {
        for &id in &outcome.ids {
            holders.entry(id).or_default().push(pos);
        }
    }
    let mut unique = true;
    for (id, positions) in holders.into_iter().filter(|(_, p)| p.len() > 1) {
        unique = false;
        for &pos in &positions {
            let error = &mut outcomes[pos].error;
            if error.is_none() {
                *error = Some(format!(
                    "greet id {id} was given to {} connections",
                    positions.len()
                ));
            }
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeted(index: usize, ids: &[u64]) -> ClientOutcome {
        ClientOutcome {
            ids: ids.to_vec(),
            connections: ids.len(),
            replies: ids.len(),
            latencies: vec![Duration::from_millis(1); ids.len()],
            ..ClientOutcome::new(index)
        }
    }

    #[test]
    fn a_shared_id_fails_every_holder() {
        let outcomes = vec![
            greeted(0, &[1]),
            greeted(1, &[2]),
            greeted(2, &[1]),
            greeted(3, &[3]),
        ];
        let report = StressReport::from_outcomes(Mode::Greet, outcomes, Duration::from_secs(1));
        assert_eq!(report.ids_unique, Some(false));
        let failed: Vec<_> = report.failures().collect();
        assert_eq!(
            failed,
            [
                (0, "greet id 1 was given to 2 connections"),
                (2, "greet id 1 was given to 2 connections")
            ]
        );
        assert_eq!((report.ok(), report.failed()), (2, 2));
        assert!(!report.all_ok());
    }

    #[test]
    fn an_id_repeated_within_one_client_fails_it_and_earlier_errors_are_kept() {
        let mut outcomes = vec![greeted(0, &[5, 5]), greeted(1, &[6]), greeted(2, &[6])];
        outcomes[2].error = Some("connection 1: timed out".into());
        assert!(!check_ids_unique(&mut outcomes));
        assert!(outcomes[0].error.as_deref().unwrap().contains("id 5"));
        assert!(outcomes[1].error.as_deref().unwrap().contains("id 6"));
        assert_eq!(
            outcomes[2].error.as_deref(),
            Some("connection 1: timed out")
        );
    }

    #[test]
    fn the_summary_line_has_the_protocol_shape() {
        let outcomes = (0..4)
            .map(|i| greeted(i, &[i as u64 + 1, i as u64 + 11]))
            .collect();
        let report = StressReport::from_outcomes(Mode::Greet, outcomes, Duration::from_secs(2));
        let latency = Latency {
            p50_ms: 1.25,
            p90_ms: 2.0,
            p99_ms: 3.5,
            max_ms: 4.0,
        };
        assert_eq!(
            report.summary_line(&latency),
            "4/4 clients ok, 0 failed, ids unique: yes, 4.0 conn/s, 4.0 msg/s, p50 1.250 ms, \
             p99 3.500 ms"
        );
        assert_eq!(report.latencies().count(), 8);

        let echo = vec![ClientOutcome {
            error: Some("x".into()),
            ..ClientOutcome::new(0)
        }];
        let report = StressReport::from_outcomes(Mode::Echo, echo, Duration::ZERO);
        assert!(
            report
                .summary_line(&Latency::default())
                .starts_with("0/1 clients ok, 1 failed, ids unique: n/a, 0.0 conn/s, 0.0 msg/s")
        );
    }

    #[test]
    fn the_json_line_is_one_object_with_the_protocol_keys() {
        let outcomes = vec![greeted(0, &[7]), greeted(1, &[7])];
        let report = StressReport::from_outcomes(Mode::Greet, outcomes, Duration::from_millis(500));
        let latency = Latency {
            p50_ms: 1.0,
            p90_ms: 2.0,
            p99_ms: 3.0,
            max_ms: 4.5,
        };
        let line = report.json_line(&latency);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["clients"], 2);
        assert_eq!(v["ok"], 0);
        assert_eq!(v["failed"], 2);
        assert_eq!(v["ids_unique"], false);
        assert_eq!(v["conn_per_s"], 4.0);
        assert_eq!(v["msg_per_s"], 4.0);
        assert_eq!(v["p90_ms"], 2.0);
        assert_eq!(v["max_ms"], 4.5);
        let echo = StressReport::from_outcomes(Mode::Echo, vec![], Duration::ZERO);
        let v: serde_json::Value = serde_json::from_str(&echo.json_line(&latency)).unwrap();
        assert!(v["ids_unique"].is_null());
        assert_eq!(v["mode"], "echo");
    }
}
