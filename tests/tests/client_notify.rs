//! Desktop notifications through the real `umbra` binary and a real relay
//! (issue 13): `receive --follow` with `UMBRA_NOTIFY=command` runs the
//! user's notifier for a message that arrives, with the title and body as
//! plain arguments, showing no sender and no text unless
//! `UMBRA_NOTIFY_CONTENT` asks for them; a mistyped setting is refused
//! before anything runs; and a running daemon, which has no terminal,
//! runs the notifier for what it receives, 1:1 and in groups.

mod client_daemon_support;
mod client_support;
mod group_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use client_support::{start_relay, User};
use group_support::GroupCli;

const SETTLE: Duration = Duration::from_secs(60);

/// A notifier that writes each argument it got on a line of `out`.
fn notifier(dir: &Path, out: &Path) -> PathBuf {
    let script = dir.join("notifier");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {0}.tmp && mv {0}.tmp {0}\n",
            out.display()
        ),
    )
    .expect("write the notifier");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    script
}

/// `receive --follow` with `env`, once its first batch is printed.
fn follow(user: &User, env: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut command = user.cli.command(&["--json", "receive", "--follow"]);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn receive --follow");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    wait_line(&lines, "drained");
    (child, lines)
}

fn wait_line(lines: &mpsc::Receiver<String>, containing: &str) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("receive --follow printed no {containing:?}"));
        if line.contains(containing) {
            return line;
        }
    }
}

/// The arguments the notifier got, once it ran (within a bound).
fn notified(out: &Path) -> Vec<String> {
    let deadline = Instant::now() + SETTLE;
    while !out.exists() {
        assert!(Instant::now() < deadline, "the notifier never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(out).expect("read what the notifier got");
    std::fs::remove_file(out).expect("reset");
    text.lines().map(str::to_owned).collect()
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}

#[test]
fn follow_runs_the_users_notifier_and_shows_text_only_when_asked() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    bob.send("alice", "hello");
    alice.receive();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("argv");
    let script = notifier(dir.path(), &out);
    let command = format!("{} --urgency low", script.display());

    let env = [
        ("UMBRA_NOTIFY", "command"),
        ("UMBRA_NOTIFY_COMMAND", &command),
    ];
    let (child, lines) = follow(&alice, &env);
    bob.send("alice", "the code is 4321");
    wait_line(&lines, "4321");
    assert_eq!(
        notified(&out),
        ["--urgency", "low", "umbra", "new message"],
        "by default neither sender nor text"
    );
    stop(child);

    let mut env = env.to_vec();
    env.push(("UMBRA_NOTIFY_CONTENT", "message"));
    let (child, lines) = follow(&alice, &env);
    let hostile = "$(touch pwned); `id` \u{202e}evil\nsecond line";
    bob.send("alice", hostile);
    wait_line(&lines, "pwned");
    let got = notified(&out);
    assert_eq!(got[..3], ["--urgency", "low", "umbra: bob"]);
    // The text, as a plain argument on one line, hidden characters
    // dropped; nothing of it run.
    assert_eq!(got[3], "$(touch pwned); `id` evil second line");
    assert!(!dir.path().join("pwned").exists() && !Path::new("pwned").exists());
    stop(child);

    // A typo is refused before anything is received.
    let output = alice
        .cli
        .command(&["receive", "--follow"])
        .env("UMBRA_NOTIFY", "osc99")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("UMBRA_NOTIFY"), "{stderr}");
}

#[test]
fn a_daemon_runs_the_notifier_for_what_it_receives() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    bob.group_create("team", &["alice"]);
    alice.receive_records();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("argv");
    let script = notifier(dir.path(), &out);
    let child = alice
        .cli
        .command(&["daemon"])
        .env("UMBRA_NOTIFY", "command")
        .env("UMBRA_NOTIFY_COMMAND", script.to_str().unwrap())
        .env("UMBRA_NOTIFY_CONTENT", "sender")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn umbra daemon");
    let mut daemon = client_daemon_support::KillOnDrop(child);
    let stderr = daemon.0.stderr.take().expect("stderr");
    let lines = client_daemon_support::lines_of(stderr);
    wait_line(&lines, "serving on");

    bob.send("alice", "the code is 4321");
    assert_eq!(notified(&out), ["umbra", "new message from bob"]);
    bob.group_send("team", "lunch at 1?");
    assert_eq!(notified(&out), ["umbra", "new message from bob in team"]);
    client_daemon_support::signal(daemon.0.id(), "TERM");
    assert_eq!(daemon.0.wait().expect("wait").code(), Some(0));
}
