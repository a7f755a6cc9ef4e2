//! How `umbra-relay` fails to start: one line, `error: <what>: <cause>`,
//! naming what the operator must fix (the database host, the setting, the
//! key file), exit status 2 for configuration and 1 otherwise; never a
//! backtrace or a Debug dump, even with `RUST_BACKTRACE=1`.
//!
//! Must never: depend on a particular PostgreSQL being down (it uses a port
//! nothing listens on) or on timing.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use umbra_e2e::binary;

fn relay(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(binary("umbra-relay", "umbra-relay"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run umbra-relay")
}

/// The one line the relay printed; fails the test if it printed more.
fn one_error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stderr, got:\n{stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for noise in ["backtrace", "Caused by", "Error {", "Stack"] {
        assert!(!stderr.contains(noise), "{noise:?} in: {stderr}");
    }
    lines[0].to_owned()
}

/// A local port with nothing listening (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

#[test]
fn an_unreachable_postgresql_is_one_line_naming_the_host_and_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = closed_port();
    let url = format!("postgres://umbra:hunter2secret@127.0.0.1:{port}/umbra");
    let out = relay(dir.path(), &["--database-url", &url]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("127.0.0.1:{port}")),
        "names the host and port: {line}"
    );
    assert!(
        line.to_lowercase().contains("refused"),
        "names the cause: {line}"
    );
    assert!(
        !line.contains("hunter2secret"),
        "prints the password: {line}"
    );
    assert!(!line.contains("pool timed out"), "{line}");
}

#[test]
fn an_invalid_setting_is_one_line_and_exit_status_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = relay(dir.path(), &["--max-frame-bytes", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let line = one_error_line(&out);
    assert!(line.contains("max_frame_bytes"), "{line}");
}

#[test]
fn an_invalid_log_filter_is_one_line_and_exit_status_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = relay(dir.path(), &["--log-level", "umbra_relay=loud"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let line = one_error_line(&out);
    assert!(line.contains("umbra_relay=loud"), "{line}");
}
