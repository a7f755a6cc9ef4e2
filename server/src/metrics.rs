//! Operational counters exposed at `GET /metrics` in the Prometheus text
//! format (version 0.0.4): a small registry of atomics, so recording is a
//! lock-free add on the hot path and the output is exactly what was counted.
//!
//! Authentication failures are counted and logged in one place
//! ([`Metrics::auth_failed`], [`LoginAttempt`]), so the counter and the log
//! line cannot disagree; the line says the kind of failure, never who.
//!
//! Must never: use a label derived from user data (account ids, usernames,
//! addresses, IPs) — that would publish who talks to whom and let label
//! cardinality grow without bound; or put an identity in a log line.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why an authentication failed, as the log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// A `LoginStart` that never became a successful `LoginFinish`: a wrong
    /// password (the client finds out from the relay's answer and sends
    /// nothing more), an unknown username, or an abandoned attempt. The relay
    /// cannot tell these apart, by design of OPAQUE.
    LoginUnfinished,
    /// A `LoginFinish` whose proof did not verify.
    LoginRejected,
    /// `Authenticate` with a token the relay does not hold (never issued,
    /// revoked, purged) or for another device.
    TokenUnknown,
    /// `Authenticate` with a known token past its expiry.
    TokenExpired,
    /// A blob request with a missing or invalid token.
    BlobToken,
}

impl AuthFailure {
    /// The name used in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::LoginUnfinished => "login_unfinished",
            AuthFailure::LoginRejected => "login_rejected",
            AuthFailure::TokenUnknown => "token_unknown",
            AuthFailure::TokenExpired => "token_expired",
            AuthFailure::BlobToken => "blob_token",
        }
    }
}

/// How a WebSocket read that failed is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFailure {
    /// The peer went away without a close handshake (TCP reset or end of
    /// stream): what every client does when it exits or is killed, and what
    /// a rate-limited client does next. Not a bad frame.
    PeerGone,
    /// The bytes broke the WebSocket protocol or its size cap: a bad frame.
    BadFrame,
}

impl ReadFailure {
    /// Classifies a read error by its cause chain: an I/O error, or
    /// tungstenite's "reset without closing handshake", is the peer leaving.
    pub fn classify(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if e.is::<std::io::Error>() || e.to_string().contains("without closing handshake") {
                return ReadFailure::PeerGone;
            }
            cause = e.source();
        }
        ReadFailure::BadFrame
    }
}

fn record_auth_failure(counter: &AtomicU64, kind: AuthFailure) {
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::info!(kind = kind.as_str(), "authentication failed");
}

/// One login between `LoginStart` and its outcome. Dropped without
/// [`LoginAttempt::succeeded`] (connection closed, attempt replaced or timed
/// out, proof rejected) it counts as a failed authentication: with OPAQUE a
/// wrong password never reaches `LoginFinish`, so the drop is the only place
/// the relay can see it.
#[derive(Debug)]
pub struct LoginAttempt {
    failures: Option<Arc<AtomicU64>>,
}

impl LoginAttempt {
    /// Starts counting one login.
    pub fn start(metrics: &Metrics) -> Self {
        LoginAttempt {
            failures: Some(metrics.auth_failures.clone()),
        }
    }

    /// The login succeeded: nothing is counted as a failure.
    pub fn succeeded(mut self) {
        self.failures = None;
    }

    /// The login failed for a known reason.
    pub fn failed(mut self, kind: AuthFailure) {
        if let Some(counter) = self.failures.take() {
            record_auth_failure(&counter, kind);
        }
    }
}

impl Drop for LoginAttempt {
    fn drop(&mut self) {
        if let Some(counter) = self.failures.take() {
            record_auth_failure(&counter, AuthFailure::LoginUnfinished);
        }
    }
}

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
    /// Failed logins and token authentications. Shared with the
    /// [`LoginAttempt`]s in flight; count through [`Metrics::auth_failed`].
    pub auth_failures: Arc<AtomicU64>,
    /// Accounts registered.
    pub registrations: AtomicU64,
    /// Passwords changed (`PasswordChangeFinish` committed).
    pub password_changes: AtomicU64,
    /// Requests refused by a rate limit.
    pub rate_limited: AtomicU64,
    /// Frames refused as malformed or oversized (not connections that
    /// merely ended without a close handshake, nor refused requests).
    pub bad_frames: AtomicU64,
    /// Control-channel payloads dropped: unauthenticated, malformed,
    /// stale or replayed (a forged NOTIFY shows up here).
    pub control_refused: AtomicU64,
    /// Re-checks of every connection's token after missed control events.
    pub control_resyncs: AtomicU64,
    /// Blobs stored.
    pub blobs_uploaded: AtomicU64,
    /// Rows removed by the expiry task.
    pub expired_rows: AtomicU64,
    /// Latency of store operations.
    pub store_latency: Histogram,
    /// TCP connections admitted and still open (HTTP and WebSocket),
    /// sampled when `/metrics` is read.
    pub connections_admitted: AtomicI64,
    /// Connections refused because the relay-wide cap was reached.
    pub connections_refused_full: AtomicU64,
    /// Connections refused because their address (or IPv6 /64) held its cap.
    pub connections_refused_per_address: AtomicU64,
    /// Refused connections closed without a 503 (too many refusals in flight).
    pub connections_dropped: AtomicU64,
    /// Connections closed because request headers did not arrive in time.
    pub header_timeouts: AtomicU64,
    /// Blob uploads abandoned because the body stalled or was too slow.
    pub body_timeouts: AtomicU64,
    /// Accept calls that failed for want of descriptors or memory.
    pub accept_errors: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts and logs (by kind, never by whom) a failed authentication.
    pub fn auth_failed(&self, kind: AuthFailure) {
        record_auth_failure(&self.auth_failures, kind);
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
            "umbra_password_changes_total",
            "Passwords changed.",
            load(&self.password_changes),
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
            "umbra_control_refused_total",
            "Control-channel payloads dropped as unauthenticated, malformed, stale or replayed.",
            load(&self.control_refused),
        );
        counter(
            &mut out,
            "umbra_control_resyncs_total",
            "Re-checks of every connection's token after possibly missed control events.",
            load(&self.control_resyncs),
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
        gauge(
            &mut out,
            "umbra_connections_admitted",
            "TCP connections admitted and open, HTTP and WebSocket.",
            self.connections_admitted.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP umbra_connections_refused_total Connections answered 503 or closed at a connection cap."
        );
        let _ = writeln!(out, "# TYPE umbra_connections_refused_total counter");
        for (reason, value) in [
            ("full", load(&self.connections_refused_full)),
            ("per_address", load(&self.connections_refused_per_address)),
        ] {
            let _ = writeln!(
                out,
                "umbra_connections_refused_total{{reason=\"{reason}\"}} {value}"
            );
        }
        counter(
            &mut out,
            "umbra_connections_dropped_total",
            "Refused connections closed without an answer (too many refusals in flight).",
            load(&self.connections_dropped),
        );
        counter(
            &mut out,
            "umbra_header_timeouts_total",
            "Connections closed because request headers did not arrive in time.",
            load(&self.header_timeouts),
        );
        counter(
            &mut out,
            "umbra_body_timeouts_total",
            "Blob uploads abandoned because the body stalled or was too slow.",
            load(&self.body_timeouts),
        );
        counter(
            &mut out,
            "umbra_accept_errors_total",
            "Accept calls that failed for want of descriptors or memory.",
            load(&self.accept_errors),
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

    /// Issue 9 item 9: with OPAQUE a wrong password never reaches
    /// `LoginFinish`, so the failure must be counted when the attempt ends.
    #[test]
    fn a_login_attempt_counts_as_failed_unless_it_succeeded() {
        let m = Metrics::default();
        drop(LoginAttempt::start(&m));
        LoginAttempt::start(&m).failed(AuthFailure::LoginRejected);
        LoginAttempt::start(&m).succeeded();
        m.auth_failed(AuthFailure::TokenUnknown);
        assert_eq!(m.auth_failures.load(Ordering::Relaxed), 3);
        assert!(m.render().contains("umbra_auth_failures_total 3\n"));
    }

    /// Issue 9 item 9: a client hanging up without a close frame (as one
    /// that was just rate limited does) was counted as a bad frame.
    #[test]
    fn a_peer_that_leaves_is_not_a_bad_frame() {
        use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
        use tokio_tungstenite::tungstenite::Error as WsError;
        let gone = axum::Error::new(WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake,
        ));
        assert_eq!(ReadFailure::classify(&gone), ReadFailure::PeerGone);
        let reset = axum::Error::new(WsError::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert_eq!(ReadFailure::classify(&reset), ReadFailure::PeerGone);
        let oversized = axum::Error::new(WsError::Capacity(CapacityError::MessageTooLong {
            size: 10,
            max_size: 5,
        }));
        assert_eq!(ReadFailure::classify(&oversized), ReadFailure::BadFrame);
        let broken = axum::Error::new(WsError::Protocol(ProtocolError::NonZeroReservedBits));
        assert_eq!(ReadFailure::classify(&broken), ReadFailure::BadFrame);
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
