//! What a phase measured, one line per phase, and the closing table of
//! ratios against the bare forwarder of the same round.
//!
//! Must never: print a ratio whose two sides come from different rounds
//! (each round measures both under the same machine load).

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::drive::{histogram, Sample};
use crate::procfs;

/// The figures of one phase.
pub struct PhaseReport {
    /// Envelopes the relay answered `Accepted` (durably queued), or logins done.
    pub accepted: u64,
    /// Envelopes answered `Rejected`, or logins that failed.
    pub rejected: u64,
    /// Requests answered `Error`, undecodable frames, broken connections.
    pub errors: u64,
    /// `Deliver` frames received.
    pub delivered: u64,
    /// Send-to-`SendResult` latency, µs.
    pub ack: Histogram<u64>,
    /// Send-to-`Deliver` latency, µs.
    pub delivery: Histogram<u64>,
    /// CPU, memory and load over the window.
    pub sample: Sample,
    /// Logins rather than messages.
    pub logins: bool,
    /// Instructions callgrind counted in the target over the window.
    pub instructions: Option<u64>,
}

impl PhaseReport {
    /// A message phase.
    pub fn messages(
        accepted: u64,
        rejected: u64,
        errors: u64,
        delivered: u64,
        ack: Histogram<u64>,
        delivery: Histogram<u64>,
        sample: Sample,
    ) -> Self {
        PhaseReport {
            accepted,
            rejected,
            errors,
            delivered,
            ack,
            delivery,
            sample,
            logins: false,
            instructions: None,
        }
    }

    /// A login phase.
    pub fn logins(done: u64, failed: u64, sample: Sample) -> Self {
        PhaseReport {
            accepted: done,
            rejected: failed,
            errors: 0,
            delivered: 0,
            ack: histogram(),
            delivery: histogram(),
            sample,
            logins: true,
            instructions: None,
        }
    }

    /// Accepted envelopes (or logins) per second of the window.
    pub fn acked_per_sec(&self) -> f64 {
        self.accepted as f64 / self.sample.elapsed.as_secs_f64().max(1e-9)
    }

    /// Microseconds of the target's CPU per accepted envelope (or login).
    pub fn cpu_us_per_op(&self) -> f64 {
        self.sample.target_cpu.as_secs_f64() * 1e6 / self.accepted.max(1) as f64
    }

    /// The phase as one line.
    pub fn line(&self, round: usize, label: &str) -> String {
        let s = &self.sample;
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let mut out = String::new();
        if self.logins {
            let _ = write!(
                out,
                "[{round}] {label} logins: {:.0}/s, failed {}, relay CPU {:.0} us/login = {:.0} logins/s per core",
                self.acked_per_sec(),
                self.rejected,
                self.cpu_us_per_op(),
                1e6 / self.cpu_us_per_op().max(1e-9),
            );
        } else {
            let _ = write!(
                out,
                "[{round}] {label}: acked {:.0}/s, delivered {:.0}/s, rejected {}, errors {}; \
                 ack p50/p99/p99.9 {}/{}/{} ms; delivery p50/p99/p99.9 {}/{}/{} ms; \
                 CPU {:.1} us/msg",
                self.acked_per_sec(),
                self.delivered as f64 / secs,
                self.rejected,
                self.errors,
                ms(&self.ack, 50.0),
                ms(&self.ack, 99.0),
                ms(&self.ack, 99.9),
                ms(&self.delivery, 50.0),
                ms(&self.delivery, 99.0),
                ms(&self.delivery, 99.9),
                self.cpu_us_per_op(),
            );
        }
        let _ = write!(
            out,
            " ({:.0} % of a core; generator {:.0} %); RSS {} MiB (peak {}); load {:.2}->{:.2}",
            s.target_cpu.as_secs_f64() * 100.0 / secs,
            s.own_cpu.as_secs_f64() * 100.0 / secs,
            s.rss_kib.0 / 1024,
            s.rss_kib.1 / 1024,
            s.load.0,
            s.load.1,
        );
        out
    }
}

fn ms(hist: &Histogram<u64>, percentile: f64) -> String {
    if hist.is_empty() {
        return "-".into();
    }
    format!(
        "{:.2}",
        hist.value_at_percentile(percentile) as f64 / 1000.0
    )
}

/// The machine, for the report's first line.
pub fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "machine: {cpu}, {cores} CPUs, load average {:.2}",
        procfs::load_average()
    )
}

/// Every phase of the run, for the closing ratios.
#[derive(Default)]
pub struct Table {
    rows: Vec<(usize, String, PhaseReport)>,
}

impl Table {
    /// Adds one phase.
    pub fn add(&mut self, round: usize, label: &str, phase: PhaseReport) {
        self.rows.push((round, label.to_owned(), phase));
    }

    /// The first phase with errors or nothing acked, for `--check`.
    pub fn failed_phase(&self) -> Option<String> {
        self.rows
            .iter()
            .find(|(_, _, p)| p.errors > 0 || p.accepted == 0)
            .map(|(round, label, _)| format!("[{round}] {label}"))
    }

    /// Records callgrind's count for the phase `label` of `round`.
    pub fn instructions(&mut self, round: usize, label: &str, count: Option<u64>) {
        let Some(count) = count else { return };
        if let Some((_, _, phase)) = self
            .rows
            .iter_mut()
            .find(|(r, l, _)| *r == round && l == label)
        {
            println!(
                "[{round}] {label}: {count} instructions in the window = {:.0} per acked message",
                count as f64 / phase.accepted.max(1) as f64
            );
            phase.instructions = Some(count);
        }
    }

    /// Relay against bare, per round and pacing (`bare` with the closed
    /// loop, `bare @f` with the open loop at the fraction `f`).
    pub fn summary(&self) -> String {
        let mut out = String::from("ratios against the bare forwarder of the same round:");
        for (round, label, phase) in &self.rows {
            let Some(rest) = label.strip_prefix("relay ") else {
                continue;
            };
            let pacing = rest.split_once(" @").map(|(_, f)| format!(" @{f}"));
            let bare_label = format!("bare{}", pacing.as_deref().unwrap_or(""));
            let Some((_, _, bare)) = self
                .rows
                .iter()
                .find(|(r, l, _)| r == round && *l == bare_label)
            else {
                continue;
            };
            let _ = write!(
                out,
                "\n[{round}] {label}: throughput {:.1} % of bare ({:.0} vs {:.0} acked/s); \
                 CPU per message {:.2}x bare ({:.1} vs {:.1} us)",
                phase.acked_per_sec() * 100.0 / bare.acked_per_sec().max(1e-9),
                phase.acked_per_sec(),
                bare.acked_per_sec(),
                phase.cpu_us_per_op() / bare.cpu_us_per_op().max(1e-9),
                phase.cpu_us_per_op(),
                bare.cpu_us_per_op(),
            );
            if let (Some(mine), Some(theirs)) = (phase.instructions, bare.instructions) {
                let per = |n: u64, p: &PhaseReport| n as f64 / p.accepted.max(1) as f64;
                let _ = write!(
                    out,
                    "; instructions per message {:.2}x bare ({:.0} vs {:.0})",
                    per(mine, phase) / per(theirs, bare).max(1e-9),
                    per(mine, phase),
                    per(theirs, bare),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn phase(accepted: u64, cpu_ms: u64) -> PhaseReport {
        let sample = Sample {
            elapsed: Duration::from_secs(1),
            target_cpu: Duration::from_millis(cpu_ms),
            ..Sample::default()
        };
        PhaseReport::messages(accepted, 0, 0, accepted, histogram(), histogram(), sample)
    }

    #[test]
    fn ratios_pair_each_relay_phase_with_the_bare_one_of_its_round_and_pacing() {
        let mut table = Table::default();
        table.add(0, "bare", phase(1000, 10));
        table.add(0, "bare @0.5", phase(500, 10));
        // Round 1's baseline comes before round 0's relay rows: pairing
        // must go by round, not by position.
        table.add(1, "bare", phase(2000, 10));
        table.add(0, "relay sqlite-1n", phase(250, 100));
        table.add(0, "relay sqlite-1n @0.5", phase(100, 100));
        table.add(1, "relay sqlite-1n", phase(1000, 100));
        let summary = table.summary();
        let lines: Vec<&str> = summary.lines().skip(1).collect();
        assert_eq!(lines.len(), 3, "{summary}");
        assert!(lines[0].contains("25.0 % of bare"), "{}", lines[0]);
        assert!(lines[0].contains("40.00x bare"), "{}", lines[0]);
        assert!(lines[1].contains("20.0 % of bare"), "{}", lines[1]);
        assert!(lines[2].starts_with("[1]") && lines[2].contains("50.0 % of bare"));
    }
}
