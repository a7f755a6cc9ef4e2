//! `umbra settings` through the real binary and a real relay: the privacy
//! switches show as one `settings` record, a change flips only the switch
//! named and lasts across processes and through a running daemon, and with
//! read receipts off a contact whose messages we mark read gets no `read`
//! receipt (with them on, the same steps give one).
//!
//! Must never: pass because nothing was marked read (the "on" half shows
//! the same steps do produce a read receipt), or reach into the store.

mod client_daemon_support;
mod client_support;

use std::time::{Duration, Instant};

use client_daemon_support::{run, without_password, Daemon};
use client_support::{json_records, start_relay, User};
use serde_json::Value;

fn settings_of(records: &[Value]) -> (bool, bool) {
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["type"], "settings", "{r}");
    (
        r["read_receipts"].as_bool().expect("read_receipts"),
        r["typing"].as_bool().expect("typing"),
    )
}

/// Marks the conversation with `contact` read through the daemon's
/// `mark_read`, the call the TUI's read-on-look makes.
fn mark_read(daemon: &Daemon, contact: &str) {
    let mut rpc = daemon.connect();
    let answer = rpc.ask(&format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"mark_read","params":{{"contact":"{contact}"}}}}"#
    ));
    assert_eq!(answer["result"]["marked_read"], contact, "{answer}");
}

/// `receive --json` records for `user` until one is a `message` with
/// `body` (what `sender` sent after marking read), bounded.
fn receive_until_message(user: &User, body: &str) -> Vec<Value> {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let inbox = user.receive();
        seen.extend(inbox.records);
        if seen
            .iter()
            .any(|r| r["type"] == "message" && r["body"] == body)
        {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no message {body:?} arrived: {seen:?}"
        );
    }
}

fn read_receipts_for(records: &[Value], id: &str) -> usize {
    records
        .iter()
        .filter(|r| r["type"] == "receipt" && r["status"] == "read" && r["id"] == id)
        .count()
}

#[test]
fn settings_show_change_one_switch_and_last() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");

    assert_eq!(settings_of(&alice.json_ok(&["settings"])), (true, true));
    // A change prints the settings as they now are and touches only its switch.
    assert_eq!(
        settings_of(&alice.json_ok(&["settings", "read-receipts", "off"])),
        (false, true)
    );
    // Another process reads what the first stored.
    assert_eq!(settings_of(&alice.json_ok(&["settings"])), (false, true));

    let out = alice.run(&["settings"]);
    out.assert_success(&["settings"]);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["read receipts: off", "typing notices: on"],
        "{}",
        out.stdout
    );

    // Bad input is a usage error and changes nothing.
    let out = alice.run(&["settings", "typing", "maybe"]);
    assert_eq!(out.code, Some(2), "typing maybe: {}", out.stderr);
    assert_eq!(settings_of(&alice.json_ok(&["settings"])), (false, true));

    // Through a running daemon, with no password source.
    let daemon = Daemon::start(&alice);
    let args = ["--json", "settings", "typing", "off"];
    let out = run(without_password(&alice.cli, &args));
    out.assert_success(&args);
    assert_eq!(
        settings_of(&json_records(&out.stdout, &args)),
        (false, false)
    );
    let mut rpc = daemon.connect();
    let answer =
        rpc.ask(r#"{"jsonrpc":"2.0","id":2,"method":"settings","params":{"read_receipts":true}}"#);
    let records = answer["result"]["records"]
        .as_array()
        .unwrap_or_else(|| panic!("records: {answer}"));
    assert_eq!(settings_of(records), (true, false));
    // Both switches in one request are refused: one change per request.
    let refused = rpc.ask(
        r#"{"jsonrpc":"2.0","id":3,"method":"settings","params":{"read_receipts":false,"typing":true}}"#,
    );
    assert!(refused.get("error").is_some(), "{refused}");
    drop(rpc);
    drop(daemon);
    assert_eq!(settings_of(&alice.json_ok(&["settings"])), (true, false));
}

#[test]
fn with_read_receipts_off_marking_read_sends_no_read_receipt() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    // On (the default): marking read gives bob a read receipt.
    let first = bob.send("alice", "first");
    alice.receive();
    let daemon = Daemon::start(&alice);
    mark_read(&daemon, "bob");
    let args = [
        "--json",
        "send",
        "bob",
        "after the first",
        "--timeout",
        "30",
    ];
    run(without_password(&alice.cli, &args)).assert_success(&args);
    let seen = receive_until_message(&bob, "after the first");
    assert_eq!(read_receipts_for(&seen, &first), 1, "{seen:?}");
    drop(daemon);

    // Off: the same steps give none; the delivery receipt still comes.
    alice.json_ok(&["settings", "read-receipts", "off"]);
    let second = bob.send("alice", "second");
    alice.receive();
    let daemon = Daemon::start(&alice);
    mark_read(&daemon, "bob");
    let args = [
        "--json",
        "send",
        "bob",
        "after the second",
        "--timeout",
        "30",
    ];
    run(without_password(&alice.cli, &args)).assert_success(&args);
    let seen = receive_until_message(&bob, "after the second");
    assert_eq!(read_receipts_for(&seen, &second), 0, "{seen:?}");
    assert!(
        seen.iter().any(|r| r["type"] == "receipt"
            && r["status"] == "delivered"
            && r["id"] == second.as_str()),
        "the delivery receipt still comes: {seen:?}"
    );
    drop(daemon);
}
