//! Replies, reactions, edits and deletes for everyone through the real
//! binary and a real relay (docs/CLI.md, PROTOCOL 10.6): `send --reply-to`,
//! `react`, `edit`, `delete --for-everyone`, 1:1 and with `--group`, each
//! seen on the other side as a `message` with `reply_to` or a
//! `message_changed` record; a deleted text is gone from the other side's
//! search; a change the rule refuses (someone else's message, an unknown
//! id) exits 1 with nothing sent; and the commands go through a daemon.
//!
//! Must never: pass because nothing arrived (each step checks the record
//! the other side printed), or reach into the store.

mod client_daemon_support;
mod client_support;
mod group_support;

use client_daemon_support::{run, without_password, Daemon};
use client_support::{json_records, start_relay, User};
use group_support::GroupCli;
use serde_json::Value;

fn changed<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == "message_changed" && r["change"] == kind)
        .collect()
}

fn sent(records: &[Value]) -> bool {
    records.iter().any(|r| r["type"] == "sent")
}

#[test]
fn replies_reactions_edits_and_deletes_reach_the_other_side() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    let hello = alice.send("bob", "hello bob");
    bob.receive();

    // A reply names the message it quotes.
    let records = bob.json_ok(&["send", "alice", "hi!", "--reply-to", &hello]);
    assert!(sent(&records), "{records:?}");
    let inbox = alice.receive();
    let reply = inbox
        .records
        .iter()
        .find(|r| r["type"] == "message" && r["body"] == "hi!")
        .expect("the reply arrived");
    assert_eq!(reply["reply_to"], hello.as_str(), "{reply}");

    // A reaction, and taking it back.
    assert!(sent(&bob.json_ok(&["react", "alice", &hello, "👍"])));
    assert!(sent(
        &bob.json_ok(&["react", "alice", &hello, "👍", "--remove"])
    ));
    let records = alice.receive().records;
    let added = changed(&records, "reacted");
    assert_eq!(added.len(), 1, "{records:?}");
    assert_eq!(added[0]["emoji"], "👍");
    assert_eq!(added[0]["target"], hello.as_str());
    assert_eq!(added[0]["from"], "bob");
    assert_eq!(changed(&records, "unreacted").len(), 1, "{records:?}");

    // An edit, then a delete for everyone, by the author.
    assert!(sent(&alice.json_ok(&["edit", "bob", &hello, "hello, bob"])));
    let records = bob.receive().records;
    let edits = changed(&records, "edited");
    assert_eq!(edits.len(), 1, "{records:?}");
    assert_eq!(edits[0]["body"], "hello, bob");
    assert!(sent(&alice.json_ok(&[
        "delete",
        "bob",
        &hello,
        "--for-everyone"
    ])));
    let records = bob.receive().records;
    assert_eq!(changed(&records, "deleted").len(), 1, "{records:?}");
    assert!(bob.json_ok(&["search", "hello"]).is_empty());

    // A deleted message takes no reaction.
    let out = bob.run(&["react", "alice", &hello, "🎉"]);
    let line = out.assert_failure(1, &["react"]);
    assert!(line.contains("deleted target"), "{line}");

    // Refused before anything is sent: someone else's message, an id that
    // is not one, an unknown one; and delete needs --for-everyone.
    let reply_id = reply["id"].as_str().expect("an id").to_owned();
    let line = alice
        .run(&["edit", "bob", &reply_id, "mine"])
        .assert_failure(1, &["edit"]);
    assert!(line.contains("not the author"), "{line}");
    let line = alice
        .run(&["react", "bob", "xyz", "👍"])
        .assert_failure(1, &["react"]);
    assert!(line.contains("not a message id"), "{line}");
    let unknown = "00".repeat(16);
    let line = alice
        .run(&["send", "bob", "?", "--reply-to", &unknown])
        .assert_failure(1, &["send"]);
    assert!(line.contains("unknown target"), "{line}");
    let out = alice.run(&["delete", "bob", &reply_id]);
    assert_eq!(
        out.code,
        Some(2),
        "delete without --for-everyone: {}",
        out.stderr
    );
    assert!(bob.receive().records.iter().all(|r| r["type"] == "drained"));
}

#[test]
fn group_changes_and_the_daemon_route() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.group_create("team", &["bob"]);
    bob.receive_records();
    let records = alice.group_send("team", "hello team");
    let hello = records
        .iter()
        .find(|r| r["type"] == "sent")
        .and_then(|r| r["id"].as_str())
        .expect("an id")
        .to_owned();
    bob.receive_records();

    let records = bob.group_ok(&["send", "team", "hi", "--reply-to", &hello]);
    assert!(sent(&records), "{records:?}");
    assert!(sent(
        &bob.json_ok(&["react", "--group", "team", &hello, "👀"])
    ));
    let records = alice.receive_records();
    let reply = records
        .iter()
        .find(|r| r["type"] == "message" && r["body"] == "hi")
        .expect("the reply arrived");
    assert_eq!(reply["reply_to"], hello.as_str());
    assert_eq!(reply["group"]["name"], "team");
    let reacted = changed(&records, "reacted");
    assert_eq!(reacted.len(), 1, "{records:?}");
    assert_eq!(reacted[0]["group"]["name"], "team");
    // Only the author edits a group message.
    let line = bob
        .run(&["edit", "--group", "team", &hello, "bob's"])
        .assert_failure(1, &["edit"]);
    assert!(line.contains("not the author"), "{line}");

    // Through a daemon (no password source: only the daemon can serve it).
    let daemon = Daemon::start(&alice);
    let args = ["--json", "edit", "--group", "team", &hello, "hello, team"];
    let out = run(without_password(&alice.cli, &args));
    out.assert_success(&args);
    assert!(sent(&json_records(&out.stdout, &args)));
    drop(daemon);
    let records = bob.receive_records();
    let edits = changed(&records, "edited");
    assert_eq!(edits.len(), 1, "{records:?}");
    assert_eq!(edits[0]["body"], "hello, team");
}
