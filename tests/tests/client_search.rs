//! `umbra search` through the real binary and a real relay: after two users
//! exchange messages, each finds them in its own store, ignoring case,
//! newest first, at most `--limit`; `--json` prints `found` records
//! (docs/CLI.md), and the same records come through a running daemon.
//!
//! Must never: pass because the relay was asked (the messages were all
//! received before the searches, and a search prints only what the store
//! holds), or reach into the store itself.

mod client_daemon_support;
mod client_support;

use client_daemon_support::{run, without_password, Daemon};
use client_support::{json_records, start_relay, User};
use serde_json::Value;

fn bodies(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            assert_eq!(r["type"], "found", "{r}");
            r["body"].as_str().expect("a body").to_owned()
        })
        .collect()
}

#[test]
fn search_finds_exchanged_messages_in_the_local_store() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    let first = alice.send("bob", "Meet at the Café at noon");
    bob.receive();
    let reply = bob.send("alice", "the CAFÉ is closed, say the park");
    bob.send("alice", "unrelated words");
    alice.receive();

    // Newest first, case folded (É matches é), both directions.
    let records = alice.json_ok(&["search", "café"]);
    assert_eq!(
        bodies(&records),
        vec![
            "the CAFÉ is closed, say the park",
            "Meet at the Café at noon"
        ]
    );
    assert_eq!(records[0]["id"], reply.as_str());
    assert_eq!(records[0]["from"], "bob");
    assert_eq!(records[0]["direction"], "incoming");
    assert_eq!(records[0]["conversation"], "bob");
    assert_eq!(records[1]["id"], first.as_str());
    assert_eq!(records[1]["from"], "alice");
    assert_eq!(records[1]["direction"], "outgoing");
    assert_eq!(records[1]["conversation"], "bob");
    for record in &records {
        for field in ["sent_at", "received_at"] {
            let at = record[field].as_str().expect("a time");
            assert!(at.ends_with('Z') && at.contains('T'), "{field}: {at}");
        }
        assert!(record.get("group").is_none(), "{record}");
    }

    // Bob's store has the same conversation from his side.
    let records = bob.json_ok(&["search", "CAFÉ"]);
    assert_eq!(
        bodies(&records),
        vec![
            "the CAFÉ is closed, say the park",
            "Meet at the Café at noon"
        ]
    );
    assert_eq!(records[1]["conversation"], "alice");

    // --limit keeps the newest; no match prints nothing and succeeds.
    let records = alice.json_ok(&["search", "CAFÉ", "--limit", "1"]);
    assert_eq!(bodies(&records), vec!["the CAFÉ is closed, say the park"]);
    assert!(alice.json_ok(&["search", "purple"]).is_empty());

    // The human lines name the time, the sender and the text.
    let out = alice.run(&["search", "noon"]);
    out.assert_success(&["search", "noon"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].starts_with('[')
            && lines[0].contains("UTC] alice to bob: Meet at the Café at noon"),
        "{}",
        lines[0]
    );

    // Bad input is a usage error, not a panic or an empty success.
    let line = alice
        .run(&["search", "  "])
        .assert_failure(1, &["search", "  "]);
    assert!(line.contains("the search text is empty"), "{line}");
    let out = alice.run(&["search", "x", "--limit", "0"]);
    assert_eq!(out.code, Some(2), "--limit 0: {}", out.stderr);
}

#[test]
fn search_goes_through_a_running_daemon() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    bob.send("alice", "Through the DAEMON please");
    alice.receive();

    let daemon = Daemon::start(&alice);
    // No password source: it can only succeed through the daemon.
    let args = ["--json", "search", "daemon"];
    let out = run(without_password(&alice.cli, &args));
    out.assert_success(&args);
    let records = json_records(&out.stdout, &args);
    assert_eq!(bodies(&records), vec!["Through the DAEMON please"]);
    assert_eq!(records[0]["from"], "bob");
    assert_eq!(records[0]["conversation"], "bob");
    drop(daemon);
}
