//! CPU time and memory of a process, read from /proc (Linux only), and the
//! machine's load average: what the report puts beside every throughput.
//!
//! Must never: read anything but the named process's own counters.

use std::time::Duration;

/// User plus system CPU time of `pid` (all its threads), or of this
/// process for `None`.
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // The command name (field 2) may contain spaces: count from after it.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let total = ticks(11) + ticks(12);
    Duration::from_secs_f64(total as f64 / clock_ticks_per_sec())
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions and only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Resident set size and its peak (`VmRSS`, `VmHWM`), KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let before = cpu_time(None);
        // Spin until the tick-granular counter moves (bounded: a busy
        // machine may give this thread little of a core).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while cpu_time(None) <= before && std::time::Instant::now() < until {
            std::hint::black_box((0..10_000u64).sum::<u64>());
        }
        assert!(cpu_time(None) > before, "CPU time advanced");
        assert!(cpu_time(Some(std::process::id())) > before);
        let (rss, peak) = rss_kib(std::process::id());
        assert!(rss > 0 && peak >= rss);
        assert!(load_average() >= 0.0);
    }
}
