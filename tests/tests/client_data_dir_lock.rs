//! One writer per data directory, over real `umbra` processes: commands
//! started at once on the same directory take turns (docs/CLI.md, "One
//! process per data directory") instead of reading the same ratchet state
//! and encrypting under the same message key, and a command that cannot get
//! its turn in time fails with exit 7 instead of touching the store.
//!
//! Must never: pass because the commands happened to run one after another
//! (the four sends are started together, on threads, and the lock test
//! holds the lock itself for the whole run), or accept a decryption failure.

mod client_support;

use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client_support::{json_records, start_relay, Outcome, User, SEND_TIMEOUT};

/// Exit status for an unusable data directory (docs/CLI.md).
const LOCAL_DATA: i32 = 7;

/// The lock file `umbra` takes in its data directory (docs/CLI.md).
const LOCK_FILE: &str = "umbra-client.lock";

/// Long enough that four sends queued behind each other never give up on a
/// loaded machine; the point of the test is that they queue.
const PATIENT: &str = "100";

#[test]
fn four_parallel_sends_from_one_data_dir_all_arrive_and_the_session_survives() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    let bodies: Vec<String> = (1..=4).map(|i| format!("parallel {i}")).collect();
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|body| {
                let cli = &alice.cli;
                scope.spawn(move || {
                    Outcome::from(cli.run_with_env(
                        &["--json", "send", "bob", body, "--timeout", SEND_TIMEOUT],
                        None,
                        &[("UMBRA_LOCK_WAIT_SECS", PATIENT)],
                    ))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (body, out) in bodies.iter().zip(&outcomes) {
        out.assert_success(&["send", "bob", body]);
        let records = json_records(&out.stdout, &["send", "bob", body]);
        assert!(
            records.iter().any(|r| r["type"] == "sent"),
            "send {body:?} printed no sent record: {records:?}"
        );
    }

    let inbox = bob.receive();
    assert!(
        inbox.of_type("decryption_failed").is_empty(),
        "bob could not open some of the parallel messages: {:?}",
        inbox.records
    );
    let mut got: Vec<String> = inbox.messages.iter().map(|m| m.body.clone()).collect();
    got.sort();
    assert_eq!(got, bodies, "bob did not get each parallel message once");

    // The session still works both ways.
    bob.send("alice", "all four arrived");
    let back = alice.receive();
    assert!(
        back.of_type("decryption_failed").is_empty(),
        "{:?}",
        back.records
    );
    assert_eq!(
        back.messages
            .iter()
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>(),
        vec!["all four arrived"]
    );
    alice.send("bob", "and afterwards");
    let later = bob.receive();
    assert!(
        later.of_type("decryption_failed").is_empty(),
        "{:?}",
        later.records
    );
    assert_eq!(
        later
            .messages
            .iter()
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>(),
        vec!["and afterwards"]
    );
}

#[test]
fn a_second_umbra_waits_for_the_data_dir_then_fails_with_exit_7() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");

    // Another program holding the directory's lock, for longer than the wait.
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .open(alice.cli.data_dir().join(LOCK_FILE))
        .expect("umbra created its lock file");
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .expect("the lock is free before the test takes it");

    let args = ["whoami"];
    let out = Outcome::from(
        alice
            .cli
            .run_with_env(&args, None, &[("UMBRA_LOCK_WAIT_SECS", "2")]),
    );
    assert_eq!(
        out.code,
        Some(LOCAL_DATA),
        "expected exit 7 while the data dir is locked; stdout {:?}, stderr {:?}",
        out.stdout,
        out.stderr
    );
    assert_eq!(out.stdout, "", "a locked-out command printed on stdout");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("umbra: waiting for another umbra using this data dir"),
        "no waiting notice: {:?}",
        out.stderr
    );
    assert!(
        lines.len() == 2
            && lines[1].starts_with("umbra: ")
            && lines[1].contains("another umbra is using the data directory"),
        "expected the notice then one error line: {:?}",
        out.stderr
    );

    // Once the other holder lets go, the same command works.
    drop(held);
    alice.cli.ok(&["whoami"]);
}

#[test]
fn a_running_umbra_holds_the_data_dir_until_it_exits() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let dir = alice.cli.data_dir();

    // A real umbra that takes the lock and then sits waiting for its
    // password (the command never answers): it holds the directory.
    let mut first = Command::new(umbra_e2e::binary("umbra-cli", "umbra"))
        .arg("--server")
        .arg(&alice.cli.server)
        .arg("--data-dir")
        .arg(dir)
        .args(["--password-command", "sleep 30", "whoami"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn umbra");
    let started = Instant::now();
    loop {
        let probe = std::fs::File::open(dir.join(LOCK_FILE)).expect("lock file");
        let free =
            rustix::fs::flock(&probe, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok();
        // Dropping the probe releases it at once if it got the lock.
        drop(probe);
        if !free {
            break;
        }
        assert!(
            first.try_wait().expect("poll umbra").is_none(),
            "the first umbra exited before it was seen holding the lock"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first umbra never took the data dir lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let out = Outcome::from(alice.cli.run_with_env(
        &["whoami"],
        None,
        &[("UMBRA_LOCK_WAIT_SECS", "1")],
    ));
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(
        out.code,
        Some(LOCAL_DATA),
        "a second umbra ran while the first held the data dir: {out:?}"
    );
    assert!(
        out.stderr
            .contains("another umbra is using the data directory"),
        "{:?}",
        out.stderr
    );
    // The kernel dropped the killed process's lock.
    alice.cli.ok(&["whoami"]);
}
