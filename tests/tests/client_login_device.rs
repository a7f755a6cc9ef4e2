//! Logging in again as an existing device (docs/CLI.md `login`,
//! docs/PROTOCOL.md §15.6 `LoginDevice`), over the real binaries: alice
//! links a second data directory (device 2), which talks with bob; it runs
//! `umbra logout`, so its token is gone and it cannot receive; `umbra
//! login alice` there with the password makes it device 2 again (not a new
//! device, not device 1): `devices` still lists 1 and 2 with this one as
//! 2, its history and its session with bob still work (bob's next message
//! reaches it with no reset), and device 1 was not logged out. After device
//! 1 removes it, its login is refused with exit 1 saying it was removed,
//! and device 1 still lists itself alone. A linked device whose store has a
//! password of its own logs in again with `--store-password-file`, and
//! without it is refused before anything is sent.
//!
//! Must never: reach into a store, pass if the re-login enrolled a new id
//! or took device 1's place, or accept a key-change record in bob's output.

mod client_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use client_support::{exit, start_relay, User};
use serde_json::Value;

/// alice's account password; the linked directory's store uses it too, as
/// `login` unlocks the store with the password it logs in with.
const ALICE_PASSWORD: &str = "alice's linked-device password 7Qm";

/// A running `umbra link`, killed if the test fails before it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Links a new data directory to `user`'s account (`umbra link`, then
/// `link-accept` with the code `link` printed), its store sealed under
/// `store_password`.
fn link(relay: &umbra_e2e::Relay, user: &User, store_password: &str) -> User {
    let mut child = user
        .cli
        .command(&["link"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn umbra link");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut child = Running(child);
    let mut code = String::new();
    out.read_line(&mut code).expect("the link code");
    let joined = User::unregistered(relay, &user.name, store_password);
    let args = ["link-accept", code.trim_end()];
    joined.run(&args).assert_success(&args);
    let status = child.0.wait().expect("wait for link");
    assert!(status.success(), "umbra link failed");
    joined
}

/// `(device_id, this_device)` of each `device` record.
fn devices(records: &[Value]) -> Vec<(u64, bool)> {
    records
        .iter()
        .filter(|r| r["type"] == "device")
        .map(|r| {
            (
                r["device_id"].as_u64().expect("a device id"),
                r["this_device"].as_bool().expect("this_device"),
            )
        })
        .collect()
}

fn key_changes(records: &[Value]) -> usize {
    records
        .iter()
        .filter(|r| r.to_string().contains("key_changed"))
        .count()
}

#[test]
fn a_linked_device_logs_out_and_in_again_as_itself() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", ALICE_PASSWORD);
    let bob = User::register(&relay, "bob", "bob's password 4Lw");
    alice.send("bob", "hello from device 1");
    assert_eq!(bob.receive().messages.len(), 1);
    let second = link(&relay, &alice, ALICE_PASSWORD);
    assert_eq!(
        devices(&second.json_ok(&["devices"])),
        vec![(1, false), (2, true)]
    );

    // Device 2 talks with bob, so it holds a session of its own.
    second.send("bob", "from device 2");
    let got = bob.receive();
    assert!(
        got.messages
            .iter()
            .any(|m| m.from == "alice" && m.body == "from device 2"),
        "{:?}",
        got.records
    );
    bob.send("alice", "to both, before");
    assert!(second
        .receive()
        .messages
        .iter()
        .any(|m| m.body == "to both, before"));
    alice.receive();

    // Logged out: its token is gone, and it cannot receive.
    second.run(&["logout"]).assert_success(&["logout"]);
    let refused = second.run(&["receive", "--timeout", "2"]);
    assert_eq!(refused.code, Some(exit::AUTH), "{refused:?}");

    // Logged in again with the password: still device 2, nothing new.
    let login = second.json_ok(&["login", "alice"]);
    assert!(
        login
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "login"),
        "{login:?}"
    );
    assert_eq!(
        devices(&second.json_ok(&["devices"])),
        vec![(1, false), (2, true)],
        "device 2 kept its id, and no device was enrolled"
    );
    assert_eq!(
        devices(&alice.json_ok(&["devices"])),
        vec![(1, true), (2, false)],
        "device 1 was not logged out and sees the same two"
    );
    // Its history stayed.
    let history = second.json_ok(&["search", "before"]);
    assert!(
        history
            .iter()
            .any(|r| r.to_string().contains("to both, before")),
        "{history:?}"
    );

    // It still receives, on the sessions it had, and still sends.
    bob.send("alice", "to both, after");
    assert!(
        second
            .receive()
            .messages
            .iter()
            .any(|m| m.from == "bob" && m.body == "to both, after"),
        "device 2 no longer receives"
    );
    assert!(alice
        .receive()
        .messages
        .iter()
        .any(|m| m.body == "to both, after"));
    second.send("bob", "device 2 is back");
    let got = bob.receive();
    assert!(
        got.messages
            .iter()
            .any(|m| m.from == "alice" && m.body == "device 2 is back"),
        "{:?}",
        got.records
    );
    assert_eq!(key_changes(&got.records), 0, "{:?}", got.records);

    // Removed by device 1, it cannot log in again as itself.
    alice
        .run(&["devices", "remove", "2"])
        .assert_success(&["devices", "remove", "2"]);
    let refused = second.run(&["login", "alice"]);
    let text = refused.assert_failure(exit::USER_ERROR, &["login", "alice"]);
    assert!(
        text.contains("device 2") && text.contains("removed"),
        "the refusal says the device was removed: {text}"
    );
    assert_eq!(devices(&alice.json_ok(&["devices"])), vec![(1, true)]);
}

#[test]
fn a_linked_device_with_its_own_store_password_logs_in_again_with_it() {
    const OWN: &str = "the second machine's own store password 3Vx";
    let relay = start_relay();
    let alice = User::register(&relay, "alice", ALICE_PASSWORD);
    let second = link(&relay, &alice, OWN);
    second.run(&["logout"]).assert_success(&["logout"]);

    // The account's password alone does not open this store.
    second.cli.set_password(ALICE_PASSWORD);
    let refused = second.run(&["login", "alice"]);
    assert_eq!(refused.code, Some(exit::AUTH), "{refused:?}");

    // With the store's own password from a file: device 2 again.
    let file = tempfile::NamedTempFile::new().expect("a password file");
    std::fs::write(file.path(), format!("{OWN}\n")).expect("write it");
    let path = file.path().to_str().expect("a UTF-8 path");
    let args = ["login", "alice", "--store-password-file", path];
    second.json_ok(&args);
    second.cli.set_password(OWN);
    assert_eq!(
        devices(&second.json_ok(&["devices"])),
        vec![(1, false), (2, true)]
    );
    let bob = User::register(&relay, "bob", "bob's password 4Lw");
    bob.send("alice", "to both");
    assert!(
        second
            .receive()
            .messages
            .iter()
            .any(|m| m.from == "bob" && m.body == "to both"),
        "device 2 no longer receives"
    );
}
