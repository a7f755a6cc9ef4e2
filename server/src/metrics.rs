//! Operational counters exposed at `GET /metrics` in the Prometheus text
//! format (version 0.0.4): a small registry of atomics, so recording is a
//! lock-free add on the hot path and the output is exactly what was counted.
//!
//! Must never: use a label derived from user data (account ids, usernames,
//! addresses, IPs) — that would publish who talks to whom and let label
//! cardinality grow without bound.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the store latency histogram buckets.
pub const STORE_LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A cumulative histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; STORE_LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in STORE_LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, bucket) in STORE_LATENCY_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric the relay exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// WebSocket connections currently open.
    pub connections_open: AtomicI64,
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Frames received from clients.
    pub frames_in: AtomicU64,
    /// Frames sent to clients.
    pub frames_out: AtomicU64,
    /// Envelopes durably queued (one per recipient).
    pub messages_relayed: AtomicU64,
    /// Envelopes pushed to recipients (redeliveries included).
    pub messages_delivered: AtomicU64,
    /// Envelopes acknowledged (and deleted) by recipients.
    pub messages_acked: AtomicU64,
    /// Ephemeral payloads forwarded to a connected recipient.
    pub ephemeral_forwarded: AtomicU64,
    /// Envelopes queued across all recipients, sampled by the expiry task.
    pub queue_depth: AtomicI64,
    /// Successful logins and token authentications.
    pub auth_successes: AtomicU64,
    /// Failed logins and token authentications.
    pub auth_failures: AtomicU64,
    /// Accounts registered.
    pub registrations: AtomicU64,
    /// Requests refused by a rate limit.
    pub rate_limited: AtomicU64,
    /// Frames refused as malformed or oversized.
    pub bad_frames: AtomicU64,
    /// Blobs stored.
    pub blobs_uploaded: AtomicU64,
    /// Rows removed by the expiry task.
    pub expired_rows: AtomicU64,
    /// Latency of store operations.
    pub store_latency: Histogram,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {value}");
        };
        let gauge = |out: &mut String, name: &str, help: &str, value: i64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "umbra_connections_open",
            "WebSocket connections currently open.",
            self.connections_open.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "umbra_connections_total",
            "WebSocket connections accepted.",
            load(&self.connections_total),
        );
        counter(
            &mut out,
            "umbra_frames_in_total",
            "Frames received from clients.",
            load(&self.frames_in),
        );
        counter(
            &mut out,
            "umbra_frames_out_total",
            "Frames sent to clients.",
            load(&self.frames_out),
        );
        counter(
            &mut out,
            "umbra_messages_relayed_total",
            "Envelopes durably queued, one per recipient.",
            load(&self.messages_relayed),
        );
        counter(
            &mut out,
            "umbra_messages_delivered_total",
            "Envelopes pushed to recipients, redeliveries included.",
            load(&self.messages_delivered),
        );
        counter(
            &mut out,
            "umbra_messages_acked_total",
            "Envelopes acknowledged and deleted.",
            load(&self.messages_acked),
        );
        counter(
            &mut out,
            "umbra_ephemeral_forwarded_total",
            "Ephemeral payloads forwarded to connected recipients.",
            load(&self.ephemeral_forwarded),
        );
        gauge(
            &mut out,
            "umbra_queue_depth",
            "Envelopes waiting in all queues (sampled periodically).",
            self.queue_depth.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "umbra_auth_successes_total",
            "Successful logins and token authentications.",
            load(&self.auth_successes),
        );
        counter(
            &mut out,
            "umbra_auth_failures_total",
            "Failed logins and token authentications.",
            load(&self.auth_failures),
        );
        counter(
            &mut out,
            "umbra_registrations_total",
            "Accounts registered.",
            load(&self.registrations),
        );
        counter(
            &mut out,
            "umbra_rate_limited_total",
            "Requests refused by a rate limit.",
            load(&self.rate_limited),
        );
        counter(
            &mut out,
            "umbra_bad_frames_total",
            "Frames refused as malformed or oversized.",
            load(&self.bad_frames),
        );
        counter(
            &mut out,
            "umbra_blobs_uploaded_total",
            "Blobs stored.",
            load(&self.blobs_uploaded),
        );
        counter(
            &mut out,
            "umbra_expired_rows_total",
            "Expired messages, tokens and blobs purged.",
            load(&self.expired_rows),
        );
        self.store_latency.render(
            &mut out,
            "umbra_store_latency_seconds",
            "Latency of store operations.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_reports_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        Metrics::inc(&m.frames_in);
        Metrics::inc(&m.frames_in);
        m.connections_open.fetch_add(3, Ordering::Relaxed);
        m.store_latency.observe(Duration::from_micros(700));
        m.store_latency.observe(Duration::from_millis(30));
        let text = m.render();
        assert!(text.contains("umbra_frames_in_total 2\n"));
        assert!(text.contains("umbra_connections_open 3\n"));
        assert!(text.contains("umbra_store_latency_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(text.contains("umbra_store_latency_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("umbra_store_latency_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(text.contains("umbra_store_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("umbra_store_latency_seconds_count 2\n"));
        assert!(text.contains("umbra_store_latency_seconds_sum 0.0307\n"));
    }

    #[test]
    fn every_sample_line_has_help_and_type() {
        let text = Metrics::default().render();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "missing TYPE for {name}"
            );
        }
    }
}
