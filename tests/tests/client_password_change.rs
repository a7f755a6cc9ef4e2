//! `umbra password change` over real `umbra` and `umbra-relay` processes
//! (docs/CLI.md, docs/PROTOCOL.md 11.3 "Password change" and 12.8 "Key
//! slots"): after the change the old password neither logs in from another
//! data directory nor opens the changed one, the new one does both, the
//! sessions with a contact keep carrying messages both ways, and a login
//! with the new password on an empty data directory restores the account
//! from the backup re-sealed under it. A weak new password is refused
//! before anything reaches the relay; through a running daemon the change
//! works the same and the daemon keeps serving.
//!
//! Must never: accept any exit-6 failure as "the old password fails" (the
//! message is checked), or pass without proving the old password worked
//! right before the change.

mod client_daemon_support;
mod client_support;

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use client_daemon_support::{run, without_password, Daemon};
use client_support::{exit, start_relay, User};

const OLD: &str = "alice's first password 9Tq";
const NEW: &str = "a second, longer passphrase 4Rw";
const BOB: &str = "bob's password 2Kp";

/// A 0600 file holding `password`, in a directory that lives as long as
/// the returned guard.
fn password_file(password: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("new-password");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("new password file");
    std::io::Write::write_all(&mut file, format!("{password}\n").as_bytes()).expect("write");
    (dir, path)
}

fn bodies(user: &User) -> Vec<String> {
    user.receive()
        .messages
        .into_iter()
        .map(|m| m.body)
        .collect()
}

#[test]
fn after_a_change_only_the_new_password_logs_in_and_opens_the_store_and_messages_still_flow() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", OLD);
    let bob = User::register(&relay, "bob", BOB);
    alice.send("bob", "before the change");
    assert_eq!(bodies(&bob), ["before the change"]);
    bob.send("alice", "hello alice");
    assert_eq!(bodies(&alice), ["hello alice"]);

    // A new password `register` would refuse never reaches the relay.
    let (_weak_dir, weak) = password_file("password");
    let args = [
        "password",
        "change",
        "--new-password-file",
        weak.to_str().unwrap(),
    ];
    let line = alice.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(line.contains("too easy to guess"), "{line}");
    // Nor does one for a wrong current password.
    let wrong = User::unregistered(&relay, "alice", "not alice's password");
    assert_eq!(
        wrong.run(&["login", "alice"]).code,
        Some(exit::AUTH),
        "control: a wrong password must not log in"
    );
    alice.json_ok(&["whoami"]);

    let (_new_dir, new) = password_file(NEW);
    let args = [
        "password",
        "change",
        "--new-password-file",
        new.to_str().unwrap(),
    ];
    let records = alice.json_ok(&args);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "password change"),
        "{records:?}"
    );

    // The old password no longer opens the changed data dir...
    let args = ["whoami"];
    let line = alice.run(&args).assert_failure(exit::AUTH, &args);
    assert!(line.contains("wrong password"), "{line}");
    // ...nor logs in from another one.
    let elsewhere = User::unregistered(&relay, "alice", OLD);
    let args = ["login", "alice"];
    let line = elsewhere.run(&args).assert_failure(exit::AUTH, &args);
    assert!(
        line.contains("wrong username or password") || line.contains("authentication failed"),
        "{line}"
    );

    // The new one opens the store, and the sessions carry messages both ways.
    alice.cli.set_password(NEW);
    alice.json_ok(&["whoami"]);
    alice.send("bob", "after the change");
    assert_eq!(bodies(&bob), ["after the change"]);
    bob.send("alice", "still here");
    assert_eq!(bodies(&alice), ["still here"]);

    // And it logs in on an empty data dir: the backup opens under it.
    let restored = User::unregistered(&relay, "alice", NEW);
    restored.json_ok(&["login", "alice"]);
    let contacts = restored.contacts();
    assert!(
        contacts.iter().any(|(name, _)| name == "bob"),
        "the backup re-sealed under the new password must bring bob back: {contacts:?}"
    );
}

#[test]
fn a_change_through_the_daemon_needs_no_restart() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", OLD);
    let bob = User::register(&relay, "bob", BOB);
    let daemon = Daemon::start(&alice);

    let (_new_dir, new) = password_file(NEW);
    // Through the daemon the current password still comes from the usual
    // sources (OPAQUE proves it to the relay): the harness's password file.
    let mut command = alice.cli.command(&[
        "--json",
        "password",
        "change",
        "--new-password-file",
        new.to_str().unwrap(),
    ]);
    command.stdin(std::process::Stdio::null());
    let out = run(command);
    assert_eq!(
        out.code,
        Some(0),
        "password change through the daemon: {out:?}"
    );
    assert!(out.stdout.contains("password change"), "{out:?}");

    // The daemon keeps serving on the unchanged store keys.
    let out = run(without_password(
        &alice.cli,
        &["send", "bob", "via the daemon", "--timeout", "10"],
    ));
    assert_eq!(
        out.code,
        Some(0),
        "send through the daemon after the change: {out:?}"
    );
    assert_eq!(bodies(&bob), ["via the daemon"]);

    // Once it stops, the store opens with the new password only.
    assert_eq!(daemon.terminate(), Some(0));
    let args = ["whoami"];
    alice.run(&args).assert_failure(exit::AUTH, &args);
    alice.cli.set_password(NEW);
    alice.json_ok(&["whoami"]);
    let elsewhere = User::unregistered(&relay, "alice", OLD);
    let args = ["login", "alice"];
    elsewhere.run(&args).assert_failure(exit::AUTH, &args);
}
