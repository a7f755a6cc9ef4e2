//! The generator end to end against its own bare forwarder: a short run
//! completes, moves messages both ways and prints its report. No timing is
//! asserted (rates belong in docs/BENCHMARKS.md); the relay side needs the
//! relay binary and is run by CI's loadgen smoke line.

use std::process::Command;

#[test]
fn a_short_bare_run_delivers_and_reports() {
    let out = Command::new(env!("CARGO_BIN_EXE_umbra-loadgen"))
        .args([
            "--targets",
            "bare",
            "--senders",
            "2",
            "--recipients",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0.5",
            "--open-at",
            "0.5",
        ])
        .output()
        .expect("run umbra-loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let closed = stdout
        .lines()
        .find(|l| l.starts_with("[0] bare:"))
        .unwrap_or_else(|| panic!("no closed-loop line in {stdout}"));
    assert!(
        stdout.contains("[0] bare @0.5:"),
        "no open-loop line in {stdout}"
    );
    assert!(closed.contains("errors 0"), "{closed}");
    let acked: f64 = field(closed, "acked ");
    let delivered: f64 = field(closed, "delivered ");
    assert!(acked > 0.0 && delivered > 0.0, "nothing moved: {closed}");
}

/// The number after `name` up to the next `/`.
fn field(line: &str, name: &str) -> f64 {
    line.split(name)
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name:?} in {line}"))
}
