//! `umbra block`, `unblock` and `blocked` through the real binary and a
//! real relay: a message from a blocked contact is never shown (and not
//! redelivered), the sender gets no delivery receipt, a send to the
//! blocked contact fails with a clear error; after an unblock, made
//! through a running daemon, the contact's next message arrives on the
//! same session and messages flow both ways again.
//!
//! Must never: pass because nothing was sent (the sends succeed, and the
//! message after the unblock does arrive), or reach into the store.

mod client_daemon_support;
mod client_support;

use client_daemon_support::{run, without_password, Daemon};
use client_support::{json_records, start_relay, User};
use serde_json::Value;

fn bodies(user: &User) -> (Vec<String>, Vec<Value>) {
    let inbox = user.receive();
    let bodies = inbox.messages.iter().map(|m| m.body.clone()).collect();
    (bodies, inbox.records)
}

fn delivered(records: &[Value], id: &str) -> bool {
    records
        .iter()
        .any(|r| r["type"] == "receipt" && r["status"] == "delivered" && r["id"] == id)
}

#[test]
fn a_blocked_contact_is_not_shown_and_an_unblock_resumes_the_session() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    bob.send("alice", "hello alice");
    assert_eq!(bodies(&alice).0, ["hello alice"]);
    alice.send("bob", "hello bob");
    assert_eq!(bodies(&bob).0, ["hello bob"]);

    let done = alice.json_ok(&["block", "bob"]);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["type"], "done");
    assert_eq!(done[0]["action"], "block");
    let listed = alice.json_ok(&["blocked"]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["type"], "blocked");
    assert_eq!(listed[0]["username"], "bob");
    assert_eq!(listed[0]["display_name"], "bob");
    let out = alice.run(&["blocked"]);
    out.assert_success(&["blocked"]);
    assert_eq!(out.stdout.trim(), "bob\tblocked", "{}", out.stdout);

    // Bob's send is accepted by the relay, but alice is shown nothing,
    // now or on the next receive, and bob gets no delivery receipt.
    let dropped = bob.send("alice", "are you there?");
    let (shown, records) = bodies(&alice);
    assert!(shown.is_empty(), "{records:?}");
    assert!(
        !records.iter().any(|r| r["type"] == "decryption_failed"),
        "{records:?}"
    );
    assert!(bodies(&alice).0.is_empty());
    assert!(!delivered(&bob.receive().records, &dropped));

    // Alice cannot send to bob, and is told why (exit 1).
    let out = alice.run(&["send", "bob", "hi", "--timeout", "10"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("blocked bob"), "{}", out.stderr);

    // Unblocked through a running daemon, with no password source.
    let daemon = Daemon::start(&alice);
    let args = ["--json", "unblock", "bob"];
    let out = run(without_password(&alice.cli, &args));
    out.assert_success(&args);
    let records = json_records(&out.stdout, &args);
    assert_eq!(records[0]["action"], "unblock", "{records:?}");
    assert_eq!(records[0]["detail"], "unblocked bob", "{records:?}");
    let mut rpc = daemon.connect();
    let answer = rpc.ask(r#"{"jsonrpc":"2.0","id":1,"method":"blocked","params":{}}"#);
    let listed = answer["result"]["records"]
        .as_array()
        .unwrap_or_else(|| panic!("records: {answer}"));
    assert!(listed.is_empty(), "{answer}");
    drop(rpc);
    drop(daemon);

    // Bob's next message arrives on the same session, with its receipt,
    // and alice's reaches bob.
    let kept = bob.send("alice", "back again");
    let (shown, records) = bodies(&alice);
    assert_eq!(shown, ["back again"], "{records:?}");
    assert!(
        !records.iter().any(|r| r["type"] == "decryption_failed"),
        "{records:?}"
    );
    alice.send("bob", "welcome back");
    let inbox = bob.receive();
    let got: Vec<&str> = inbox.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(got, ["welcome back"], "{:?}", inbox.records);
    assert!(delivered(&inbox.records, &kept), "{:?}", inbox.records);
}
