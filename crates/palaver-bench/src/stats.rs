//! Latency histograms and the summaries the commands print.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency tracked exactly; larger values are recorded as this.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds, three significant figures.
#[derive(Debug, Clone)]
pub struct Recorder {
    histogram: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            // Bounds are constants that hdrhistogram accepts (low >= 1,
            // high >= 2 * low, sigfig <= 5), so this cannot fail.
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("valid histogram bounds"),
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.record_micros(u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS));
    }

    pub fn record_micros(&mut self, micros: u64) {
        self.histogram
            .saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    pub fn summary(&self) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if self.histogram.is_empty() {
            return Latency::default();
        }
        Latency {
            count: self.histogram.len(),
            mean_ms: round3(self.histogram.mean() / 1000.0),
            p50_ms: ms(self.histogram.value_at_quantile(0.50)),
            p90_ms: ms(self.histogram.value_at_quantile(0.90)),
            p95_ms: ms(self.histogram.value_at_quantile(0.95)),
            p99_ms: ms(self.histogram.value_at_quantile(0.99)),
            max_ms: ms(self.histogram.max()),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Request outcomes of a load run.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub ok: u64,
    /// By HTTP status, or `transport` for requests that got no answer.
    pub errors: BTreeMap<String, u64>,
    pub latency: Recorder,
    pub bytes: u64,
}

impl Tally {
    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        self.ok += other.ok;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        self.latency.merge(&other.latency);
        self.bytes += other.bytes;
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The JSON summary of a `send` or `read` run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    pub command: &'static str,
    pub target: String,
    pub clients: usize,
    /// Requests per second asked for (open loop), or null (closed loop).
    pub rate: Option<f64>,
    pub duration_s: f64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// Successful requests per second over the measured window.
    pub throughput_per_s: f64,
    pub latency: Latency,
    /// Mean body bytes per successful response (reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_body_bytes: Option<u64>,
}

impl LoadSummary {
    pub fn new(
        command: &'static str,
        target: String,
        clients: usize,
        rate: Option<f64>,
        elapsed: Duration,
        tally: &Tally,
    ) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Self {
            command,
            target,
            clients,
            rate,
            duration_s: round3(secs),
            ok: tally.ok,
            errors: tally.errors.clone(),
            throughput_per_s: (tally.ok as f64 / secs).round(),
            latency: tally.latency.summary(),
            mean_body_bytes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_values() {
        let mut recorder = Recorder::new();
        for ms in 1..=100 {
            recorder.record(Duration::from_millis(ms));
        }
        let summary = recorder.summary();
        assert_eq!(summary.count, 100);
        assert!((summary.p50_ms - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99_ms - 99.0).abs() < 0.1, "{summary:?}");
        assert!((summary.max_ms - 100.0).abs() < 0.1, "{summary:?}");
    }

    #[test]
    fn an_empty_recorder_summarises_to_zeros_and_merging_adds_counts() {
        let mut a = Recorder::new();
        assert_eq!(a.summary(), Latency::default());
        let mut b = Recorder::new();
        b.record(Duration::from_secs(7200)); // beyond the bound: clamped
        a.merge(&b);
        assert_eq!(a.len(), 1);
        assert!((a.summary().max_ms - 3_600_000.0).abs() / 3_600_000.0 < 0.001);
    }

    #[test]
    fn tallies_merge_errors_by_kind() {
        let mut a = Tally::default();
        a.error("503");
        let mut b = Tally::default();
        b.error("503");
        b.error("transport");
        b.ok = 3;
        a.merge(&b);
        assert_eq!(a.ok, 3);
        assert_eq!(a.errors["503"], 2);
        assert_eq!(a.error_count(), 3);
    }
}
