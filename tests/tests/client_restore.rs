//! Password-only restore as a user meets it (docs/CLI.md `login`,
//! docs/PROTOCOL.md §12.15): alice loses her data directory and logs in
//! on an empty one with nothing but her password, which makes it a new
//! device of her account; she then removes the lost one. Her account backup on the
//! relay brings back her identity, her contacts with their trust and her
//! groups; her contact bob sees no key change, his verification of her
//! holds, and messages go both ways on the fresh sessions the restore
//! started. The relay's store never holds her contact list or group name
//! readable.
//!
//! Must never: give the restored client anything but the password (no
//! file of the old data directory survives), or accept a key-change record
//! anywhere in bob's output.

mod client_support;
mod group_support;
mod relay_support;

use client_support::{start_relay, User};
use group_support::GroupCli;
use relay_support::Backend;
use serde_json::Value;

const ALICE_PASSWORD: &str = "alice's restore password 7Qx";
/// bob's username is the contact name alice's backup holds: the relay has
/// it in its account table (the positive control) and nowhere else.
const BOB: &str = "bobcanary5e1d";
const GROUP: &str = "grpcanary8b2f";

fn key_changes(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["type"] == "key_changed" || r.to_string().contains("key_changed"))
        .collect()
}

#[test]
fn login_on_an_empty_data_dir_restores_identity_contacts_trust_and_groups() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", ALICE_PASSWORD);
    let bob = User::register(&relay, BOB, "bob's password 4Lw");
    alice.send(BOB, "before");
    assert_eq!(bob.receive().messages.len(), 1);
    bob.send("alice", "before, back");
    assert_eq!(alice.receive().messages.len(), 1);

    // Both verify each other; alice makes a group with bob.
    let (number, _) = bob.safety_number("alice");
    let compact: String = number.split(' ').collect();
    bob.json_ok(&["verify", "alice", "--mark-verified", &compact]);
    alice.json_ok(&["verify", BOB, "--mark-verified", &compact]);
    assert_eq!(alice.trust_in(BOB).as_deref(), Some("verified"));
    alice.group_create(GROUP, &[BOB]);
    bob.receive_records();

    // alice's device is gone: only the password is left.
    let old_dir = alice.cli.data_dir().to_path_buf();
    drop(alice);
    if old_dir.exists() {
        std::fs::remove_dir_all(&old_dir).expect("deleting alice's data dir");
    }
    // bob writes meanwhile, on the session the lost device held.
    bob.send("alice", "while you were away");
    let alice = User::unregistered(&relay, "alice", ALICE_PASSWORD);
    let login = alice.json_ok(&["login", "alice"]);
    assert!(
        login
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "login"),
        "login printed no done record: {login:?}"
    );

    // Restored: the same identity (the safety number did not change), bob
    // still verified on her side, the group listed.
    assert_eq!(
        alice.safety_number(BOB),
        (number.clone(), "verified".into())
    );
    assert!(
        alice.groups().iter().any(|g| g.name == GROUP),
        "the group is not listed after restore: {:?}",
        alice.groups()
    );

    // bob's client takes alice's session reset with his next receive, and
    // sees no key change: his verification of her holds.
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

    // Both ways, on the fresh sessions.
    bob.send("alice", "after restore, from bob");
    let got = alice.receive();
    // What bob sent to the lost device waits in that device's queue on
    // the relay, not here: the restore is a new device (PROTOCOL.md
    // §12.15), and the lost one stays listed until alice removes it.
    assert!(
        login
            .iter()
            .any(|r| r["type"] == "device" && r["device_id"] == 1 && r["this_device"] == false),
        "the login did not list the lost device: {login:?}"
    );
    assert!(
        !got.messages.iter().any(|m| m.body == "while you were away"),
        "{:?}",
        got.records
    );
    assert!(
        got.messages
            .iter()
            .any(|m| m.from == BOB && m.body == "after restore, from bob"),
        "bob's message after the restore did not arrive: {:?}",
        got.records
    );
    alice.send(BOB, "after restore, from alice");
    let got = bob.receive();
    assert!(
        got.messages
            .iter()
            .any(|m| m.from == "alice" && m.body == "after restore, from alice"),
        "alice's reply after the restore did not arrive: {:?}",
        got.records
    );
    assert!(key_changes(&got.records).is_empty(), "{:?}", got.records);
    assert_eq!(bob.trust_in("alice").as_deref(), Some("verified"));

    // The lost device is removed from the restored one, as the login said.
    alice.json_ok(&["devices", "remove", "1"]);
    let listed = alice.json_ok(&["devices"]);
    let ids: Vec<u64> = listed
        .iter()
        .filter(|r| r["type"] == "device")
        .filter_map(|r| r["device_id"].as_u64())
        .collect();
    assert_eq!(ids, vec![2], "{listed:?}");
    bob.send("alice", "after the removal");
    let got = alice.receive();
    assert!(
        got.messages.iter().any(|m| m.body == "after the removal"),
        "{:?}",
        got.records
    );

    nothing_readable_at_rest(&relay);
}

/// The group's name is nowhere in the relay's files; bob's name is in the
/// account table (so the search can hit) and in no other column of any
/// table, the backup's above all.
fn nothing_readable_at_rest(relay: &umbra_e2e::Relay) {
    assert!(
        umbra_e2e::any_file_contains(relay.data_dir(), BOB.as_bytes()).is_some(),
        "positive control: bob's username must be in the relay's files"
    );
    if let Some(file) = umbra_e2e::any_file_contains(relay.data_dir(), GROUP.as_bytes()) {
        panic!(
            "the group name is readable in the relay's {}",
            file.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store = Backend::sqlite()
            .store(relay)
            .await
            .expect("the relay's store");
        let mut backups = 0;
        let mut in_accounts = 0;
        for table in store.tables().await.expect("tables") {
            if table == "account_backups" {
                backups = store.count(&table).await.expect("count");
            }
            for column in store.columns(&table).await.expect("columns") {
                if !(column.is_bytes() || column.is_text()) {
                    continue;
                }
                let hits = store
                    .rows_with_bytes(&column, BOB.as_bytes())
                    .await
                    .expect("search");
                if table == "accounts" && column.name == "username" {
                    in_accounts = hits;
                } else {
                    assert_eq!(hits, 0, "bob's name is readable in {table}.{}", column.name);
                }
            }
        }
        assert_eq!(in_accounts, 1, "positive control: bob's account row");
        assert!(backups >= 1, "the relay holds no backup");
        store.close().await;
    });
}
