//! Password-only restore as a new device of the account (docs/CLI.md
//! `login`, docs/PROTOCOL.md §12.15, §15.6), over the real binaries: alice
//! logs in on a second, empty data directory with nothing but her password
//! while her first one still works. The login says which other devices the
//! account has and how to remove a lost one; `umbra devices` on the
//! restored directory lists two devices, the new one as this device; her
//! contact bob sees no key change, his next message reaches both of her
//! devices, and the restored one's reply reaches him.
//!
//! Must never: give the restored client anything but the password, take
//! the first device's place (its later receives must still work), or
//! accept a key-change record anywhere in bob's output.

mod client_support;
mod relay_support;

use client_support::{start_relay, User};
use serde_json::Value;

const ALICE_PASSWORD: &str = "alice's second-device password 9Kp";

fn key_changes(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["type"] == "key_changed" || r.to_string().contains("key_changed"))
        .collect()
}

fn devices(records: &[Value]) -> Vec<(u64, bool, bool)> {
    records
        .iter()
        .filter(|r| r["type"] == "device")
        .map(|r| {
            (
                r["device_id"].as_u64().expect("a device id"),
                r["this_device"].as_bool().expect("this_device"),
                r["listed"].as_bool().expect("listed"),
            )
        })
        .collect()
}

#[test]
fn a_password_login_on_an_empty_dir_is_a_new_device_beside_the_old_one() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", ALICE_PASSWORD);
    let bob = User::register(&relay, "bob", "bob's password 4Lw");
    alice.send("bob", "before");
    assert_eq!(bob.receive().messages.len(), 1);
    bob.send("alice", "before, back");
    assert_eq!(alice.receive().messages.len(), 1);
    let (number, _) = bob.safety_number("alice");
    let compact: String = number.split(' ').collect();
    bob.json_ok(&["verify", "alice", "--mark-verified", &compact]);
    alice.json_ok(&["verify", "bob", "--mark-verified", &compact]);

    // A second machine, with only the password; the first one stays.
    let restored = User::unregistered(&relay, "alice", ALICE_PASSWORD);
    let login = restored.json_ok(&["login", "alice"]);
    let done = login
        .iter()
        .find(|r| r["type"] == "done" && r["action"] == "login")
        .unwrap_or_else(|| panic!("login printed no done record: {login:?}"));
    let detail = done["detail"].as_str().expect("a detail");
    assert!(
        detail.contains("this is device 2") && detail.contains("other devices: 1"),
        "the login does not say which devices remain: {detail}"
    );
    assert!(
        detail.contains("umbra devices remove"),
        "the login does not say how to remove a lost device: {detail}"
    );
    assert_eq!(
        devices(&login),
        vec![(1, false, true), (2, true, true)],
        "{login:?}"
    );

    // `umbra devices` on the restored directory: two, the new one this.
    let listed = restored.json_ok(&["devices"]);
    assert_eq!(
        devices(&listed),
        vec![(1, false, true), (2, true, true)],
        "{listed:?}"
    );
    // The first directory sees the same two, itself as device 1.
    let listed = alice.json_ok(&["devices"]);
    assert_eq!(
        devices(&listed),
        vec![(1, true, true), (2, false, true)],
        "{listed:?}"
    );

    // Restored: the same identity and trust (the safety number did not change).
    assert_eq!(
        restored.safety_number("bob"),
        (number.clone(), "verified".into())
    );

    // bob takes the new device's session reset and sees no key change.
    let inbox = bob.receive();
    assert!(
        key_changes(&inbox.records).is_empty(),
        "{:?}",
        inbox.records
    );
    assert_eq!(
        bob.safety_number("alice"),
        (number.clone(), "verified".into())
    );

    // bob's next message reaches both of alice's devices.
    bob.send("alice", "to both of you");
    let got = restored.receive();
    assert!(
        got.messages
            .iter()
            .any(|m| m.from == "bob" && m.body == "to both of you"),
        "the restored device did not get bob's message: {:?}",
        got.records
    );
    let got = alice.receive();
    assert!(
        got.messages
            .iter()
            .any(|m| m.from == "bob" && m.body == "to both of you"),
        "the first device no longer gets bob's messages: {:?}",
        got.records
    );

    // The restored device's reply reaches bob, with no key change.
    restored.send("bob", "from the new device");
    let got = bob.receive();
    assert!(
        got.messages
            .iter()
            .any(|m| m.from == "alice" && m.body == "from the new device"),
        "the restored device's reply did not arrive: {:?}",
        got.records
    );
    assert!(key_changes(&got.records).is_empty(), "{:?}", got.records);
    assert_eq!(bob.trust_in("alice").as_deref(), Some("verified"));

    // A password login in the restored directory logs in again as device
    // 2 (15.6 `LoginDevice`): no device is logged out or enrolled.
    restored.json_ok(&["login", "alice"]);
    assert_eq!(
        devices(&restored.json_ok(&["devices"])),
        vec![(1, false, true), (2, true, true)]
    );

    // And the first device still sends as before.
    alice.send("bob", "from the first device");
    let got = bob.receive();
    assert!(
        got.messages
            .iter()
            .any(|m| m.from == "alice" && m.body == "from the first device"),
        "{:?}",
        got.records
    );
    assert!(key_changes(&got.records).is_empty(), "{:?}", got.records);
}
