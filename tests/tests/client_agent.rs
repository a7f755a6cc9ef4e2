//! `--agent-ttl` / `UMBRA_AGENT_TTL` over real processes (docs/CLI.md,
//! "Agent"): the first command that unlocks the store reads the password
//! and leaves a background `umbra daemon --idle-exit` holding the key;
//! later commands with no password source at all go through it; once it
//! has had no client for its idle time it exits, and a command without a
//! password source fails as it always did.
//!
//! Must never: pass because a command quietly found a password (every
//! command after the first has none, so it can only succeed through the
//! agent), assert on how long anything took (the idle exit is waited for,
//! bounded by `HANG_GUARD`), or leave an agent running after the test (the
//! guard stops it by the pid it reports).

mod client_daemon_support;
mod client_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use client_daemon_support::{run, signal, without_password, HANG_GUARD, SOCKET_FILE};
use client_support::{exit, json_records, start_relay, User, SEND_TIMEOUT};
use serde_json::Value;

/// The environment variable the tests set (the flag is the same setting).
const AGENT_TTL: &str = "UMBRA_AGENT_TTL";

/// Stops the agent of a data directory if the test ends while it runs.
struct StopAgent(PathBuf);

impl Drop for StopAgent {
    fn drop(&mut self) {
        // No assertion here: this may run while a failed test unwinds.
        if let Some(pid) = agent_pid(&self.0) {
            signal(pid, "TERM");
            let started = Instant::now();
            while alive(pid) && started.elapsed() < HANG_GUARD {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                signal(pid, "KILL");
            }
        }
    }
}

/// The pid of the daemon serving `data_dir`, from `daemon.info`.
fn agent_pid(data_dir: &Path) -> Option<u32> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(data_dir.join(SOCKET_FILE)).ok()?;
    stream.set_read_timeout(Some(HANG_GUARD)).ok()?;
    stream
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\"}\n")
        .ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    let answer: Value = serde_json::from_str(&line).ok()?;
    answer["result"]["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
}

/// Whether `pid` is a live process (a zombie nobody reaped is not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until the process is gone and its socket file removed.
fn wait_gone(data_dir: &Path, pid: u32) {
    let started = Instant::now();
    while alive(pid) || data_dir.join(SOCKET_FILE).exists() {
        assert!(
            started.elapsed() < HANG_GUARD,
            "the agent (pid {pid}) did not exit, or left its socket behind"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sent_to_bob(stdout: &str, args: &[&str]) -> bool {
    json_records(stdout, args)
        .iter()
        .any(|r| r["type"] == "sent" && r["to"] == "bob")
}

#[test]
fn the_password_is_read_once_then_the_agent_serves_until_idle() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    let data_dir = alice.cli.data_dir().to_path_buf();
    let _stop = StopAgent(data_dir.clone());

    // First: the password from UMBRA_PASSWORD_FILE, and an agent that
    // will not go idle during this part of the test.
    let first = ["--json", "send", "bob", "one", "--timeout", SEND_TIMEOUT];
    let mut command = alice.cli.command(&first);
    command.env(AGENT_TTL, "10m");
    let out = run(command);
    out.assert_success(&first);
    assert!(sent_to_bob(&out.stdout, &first), "{}", out.stdout);
    let pid = agent_pid(&data_dir).expect("the first command left an agent serving");
    // It holds the unlocked key: no core file may ever write it to disk.
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("agent limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("a core size line");
    assert_eq!(
        core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(),
        ["0", "0"],
        "the agent may write core files: {core}"
    );

    // Second: no password source at all, so only the agent can unlock.
    let second = ["--json", "send", "bob", "two", "--timeout", SEND_TIMEOUT];
    let out = run(without_password(&alice.cli, &second));
    out.assert_success(&second);
    assert!(sent_to_bob(&out.stdout, &second), "{}", out.stdout);
    assert_eq!(agent_pid(&data_dir), Some(pid), "the same agent served");
    let bodies: Vec<String> = bob.receive().messages.into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, ["one", "two"]);

    // A short idle time: started by a command with a password, the agent
    // exits on its own once no client is connected for 1 s, taking the
    // key with it.
    signal(pid, "TERM");
    wait_gone(&data_dir, pid);
    let mut command = alice.cli.command(&["--json", "whoami"]);
    command.env(AGENT_TTL, "1s");
    run(command).assert_success(&["whoami"]);
    let short = agent_pid(&data_dir);
    if let Some(short) = short {
        wait_gone(&data_dir, short);
    }
    // (None: it already went idle and exited before we could ask.)
    assert!(!data_dir.join(SOCKET_FILE).exists());

    // Without an agent and without a password source: the usual error.
    let third = ["--json", "send", "bob", "three", "--timeout", SEND_TIMEOUT];
    let mut command = without_password(&alice.cli, &third);
    command.env(AGENT_TTL, "1s");
    let line = run(command).assert_failure(exit::USER_ERROR, &third);
    assert!(line.contains("no password source"), "{line}");
    assert!(!data_dir.join(SOCKET_FILE).exists(), "no agent was started");
}

#[test]
fn a_wrong_password_fails_as_without_an_agent_and_leaves_none() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    User::register(&relay, "bob", "bob's password");
    let data_dir = alice.cli.data_dir().to_path_buf();
    let _stop = StopAgent(data_dir.clone());
    let wrong = data_dir.with_extension("wrong-password");
    std::fs::write(&wrong, "not alice's password\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();

    let args = ["--json", "send", "bob", "hi", "--timeout", SEND_TIMEOUT];
    let mut plain = alice.cli.command(&args);
    plain.env("UMBRA_PASSWORD_FILE", &wrong);
    let without_agent = run(plain);
    let mut agent = alice.cli.command(&args);
    agent
        .env("UMBRA_PASSWORD_FILE", &wrong)
        .env(AGENT_TTL, "10m");
    let with_agent = run(agent);

    let code = without_agent.code.expect("exit status");
    assert_ne!(code, 0);
    let expected = without_agent.assert_failure(code, &args);
    let got = with_agent.assert_failure(code, &args);
    assert!(
        got.contains("the umbra agent did not start")
            && got.contains(expected.trim_start_matches("umbra: ")),
        "with an agent: {got:?}; without: {expected:?}"
    );
    assert!(agent_pid(&data_dir).is_none());
    assert!(!data_dir.join(SOCKET_FILE).exists());
}
