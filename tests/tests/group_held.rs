//! A member whose copy of an Add was lost, over the real `umbra` and
//! `umbra-relay` binaries (docs/PROTOCOL.md §8.15, "Held for membership"):
//! bob is offline while alice adds dave, and bob's queued copy of the Add
//! is deleted from the relay's database. dave's sender key and first
//! message then reach bob from an account bob's state does not list: bob
//! must hold them (not acknowledge them), ask a member for what he missed,
//! and show dave's message once alice's answer brings the Add.
//!
//! Must never: pass because bob got the Add some other way (the relay's
//! copy is deleted and checked gone), or sleep in place of waiting for a
//! record.

mod client_support;
mod group_support;

use std::path::PathBuf;
use std::time::Duration;

use client_support::{start_relay, User};
use group_support::{converge, group_id, has_group_message, receive_until, roster, GroupCli};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// Deletes every envelope queued for `username` on the relay's SQLite
/// store; returns how many there were.
fn delete_queue_of(relay: &umbra_e2e::Relay, username: &str) -> u64 {
    let path: PathBuf = relay.data_dir().join("umbra.db");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("the relay's database opens");
        let deleted = sqlx::query(
            "DELETE FROM messages WHERE account_id = \
             (SELECT account_id FROM accounts WHERE username = ?)",
        )
        .bind(username)
        .execute(&pool)
        .await
        .expect("delete")
        .rows_affected();
        pool.close().await;
        deleted
    })
}

#[test]
fn a_new_member_whose_add_a_member_missed_is_read_once_the_add_is_caught_up() {
    let relay = start_relay();
    let users: Vec<User> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| User::register(&relay, n, &format!("{n}'s group password")))
        .collect();
    let [alice, bob, carol, dave] = [&users[0], &users[1], &users[2], &users[3]];

    alice.group_create("crew", &["bob", "carol"]);
    converge(
        &[alice, bob, carol],
        "the new group",
        |u| u.members("crew"),
        &Some(roster(&["alice"], &["bob", "carol"])),
    );
    let id = group_id(alice, "crew");

    // Bob is offline; alice adds dave; bob's copy of the Add is lost.
    alice.group_ok(&["add", "crew", "dave"]);
    assert!(
        delete_queue_of(&relay, "bob") >= 1,
        "bob's copy of the Add was queued"
    );
    let with_dave = Some(roster(&["alice"], &["bob", "carol", "dave"]));
    converge(
        &[carol, dave],
        "dave added",
        |u| u.members("crew"),
        &with_dave,
    );
    assert_eq!(
        bob.members("crew"),
        Some(roster(&["alice"], &["bob", "carol"]))
    );

    dave.group_send("crew", "hello from dave");
    // Bob holds dave's key and message and asks; alice answers; bob
    // catches up on the Add ...
    let seen = converge(
        &[bob, alice],
        "bob catches up on dave's Add",
        |u| u.members("crew"),
        &with_dave,
    );
    let held = |records: &[serde_json::Value]| {
        records.iter().any(|r| {
            r["type"] == "decryption_failed"
                && r["outcome"] == "kept"
                && r["reason_code"] == "group_sender_key_from_non_member"
        })
    };
    assert!(held(&seen[0]), "bob held dave's sender key: {:?}", seen[0]);
    // ... and reads dave's message when the relay delivers it again.
    if !has_group_message(&seen[0], "dave", "hello from dave", &id) {
        receive_until(&[bob], "dave's message on bob", |_, records| {
            has_group_message(records, "dave", "hello from dave", &id)
        });
    }
}
