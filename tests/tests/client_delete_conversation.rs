//! Deleting a conversation for everyone through the real `umbra` binary and
//! a real relay (docs/PROTOCOL.md 12.19, docs/CLI.md `delete-conversation`):
//! after alice deletes, neither client shows or stores anything of it (the
//! history, index and summary records are counted in each client's SQLite
//! file by kind), the relay's queue holds no envelope once bob received,
//! and a message sent afterwards shows normally on both sides. A local
//! delete sends nothing: bob keeps his copy.
//!
//! Must never: pass without first seeing the records and the queued
//! envelope it then expects gone (each count is positive before).

mod client_support;

use std::path::Path;
use std::time::Duration;

use client_support::{start_relay, User};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// The client store's record kinds that hold a 1:1 conversation
/// (client-core/src/store/mod.rs `RecordKind`): `Conversation`, `History`,
/// `MessageIndex`.
const CONVERSATION_KINDS: &str = "11, 12, 16";

fn count(db: &Path, sql: &str) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(db)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", db.display()));
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql} on {}: {e}", db.display()));
        pool.close().await;
        n
    })
}

/// Records of a 1:1 conversation in `user`'s store (no command runs then).
fn conversation_records(user: &User) -> i64 {
    let db = user.cli.data_dir().join("umbra-client.db");
    count(
        &db,
        &format!("SELECT COUNT(*) FROM records WHERE kind IN ({CONVERSATION_KINDS})"),
    )
}

/// Envelopes queued at the relay, for anyone.
fn queued_envelopes(relay: &umbra_e2e::Relay) -> i64 {
    count(
        &relay.data_dir().join("umbra.db"),
        "SELECT COUNT(*) FROM messages",
    )
}

/// What `search` finds for `text` on `user`'s device: (conversation, body).
fn found(user: &User, text: &str) -> Vec<(String, String)> {
    user.json_ok(&["search", text])
        .iter()
        .filter(|r| r["type"] == "found")
        .map(|r| {
            (
                r["conversation"].as_str().unwrap_or_default().to_owned(),
                r["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

#[test]
fn deleted_for_everyone_nothing_of_it_stays_on_either_client_or_the_relay() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "secret plan one");
    bob.receive();
    bob.send("alice", "secret plan two");
    alice.receive();
    // bob gets alice's receipt for "two": both queues drained.
    bob.receive();
    for user in [&alice, &bob] {
        assert_eq!(found(user, "secret plan").len(), 2, "{}", user.name);
        assert!(conversation_records(user) > 0, "{}", user.name);
    }

    let records = alice.json_ok(&["delete-conversation", "bob", "--everyone"]);
    let done = of_type(&records, "done");
    assert_eq!(done.len(), 1, "{records:?}");
    assert_eq!(done[0]["action"], "delete_conversation");
    assert_eq!(found(&alice, "secret plan"), []);
    assert_eq!(conversation_records(&alice), 0);
    // The delete waits at the relay for bob...
    assert!(queued_envelopes(&relay) > 0);

    let inbox = bob.receive();
    let deleted = of_type(&inbox.records, "conversation_deleted");
    assert_eq!(deleted.len(), 1, "{:?}", inbox.records);
    assert_eq!(deleted[0]["with"], "alice");
    assert_eq!(deleted[0]["by_peer"], true);
    assert_eq!(deleted[0]["erased"], 2);
    assert_eq!(found(&bob, "secret plan"), []);
    assert_eq!(conversation_records(&bob), 0);
    // ...and is gone from it once bob acknowledged it: nothing is left.
    assert_eq!(queued_envelopes(&relay), 0);

    // The contact and its session stay: the next message just works.
    assert_eq!(alice.contacts().len(), 1);
    let later = bob.send("alice", "a fresh start");
    let inbox = alice.receive();
    assert_eq!(inbox.messages.len(), 1, "{:?}", inbox.records);
    assert_eq!(inbox.messages[0].id, later);
    assert_eq!(
        found(&alice, "fresh"),
        [("bob".to_owned(), "a fresh start".to_owned())]
    );
    assert_eq!(
        found(&bob, "fresh"),
        [("alice".to_owned(), "a fresh start".to_owned())]
    );
}

#[test]
fn a_local_delete_leaves_the_contacts_copy() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "only mine to forget");
    bob.receive();

    let records = alice.json_ok(&["delete-conversation", "bob"]);
    assert_eq!(of_type(&records, "done").len(), 1, "{records:?}");
    assert_eq!(found(&alice, "forget"), []);
    assert_eq!(conversation_records(&alice), 0);
    let inbox = bob.receive();
    assert!(
        of_type(&inbox.records, "conversation_deleted").is_empty(),
        "{:?}",
        inbox.records
    );
    assert_eq!(found(&bob, "forget").len(), 1);

    // No such contact: a usage error, nothing changes.
    let args = ["delete-conversation", "carol"];
    alice.run(&args).assert_failure(1, &args);
}
