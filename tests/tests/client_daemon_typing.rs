//! The daemon's `typing` method (what `umbra chat` sends while its user
//! types through a running daemon), over the real binaries: a notice
//! alice's daemon sends reaches bob's daemon as a `typing` notification,
//! and with alice's `typing` setting off nothing leaves.
//!
//! Must never: wait without a bound (every read has the hang guard), or
//! pass on a notice bob could have got some other way.

mod client_daemon_support;
mod client_support;

use std::time::Instant;

use client_daemon_support::{Daemon, Rpc, HANG_GUARD};
use client_support::{start_relay, User};
use serde_json::Value;

/// Asks until the daemon says it is connected to the relay.
fn wait_connected(rpc: &mut Rpc) {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let answer = rpc.ask(r#"{"jsonrpc":"2.0","id":1,"method":"connection","params":{}}"#);
        if answer["result"]["state"] == "connected" {
            return;
        }
        assert!(Instant::now() < deadline, "never connected: {answer}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Notifications up to and including the first one `done` accepts.
fn notifications_until(rpc: &mut Rpc, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let line = rpc.answer();
        let record = line["params"].clone();
        seen.push(record.clone());
        if done(&record) {
            return seen;
        }
    }
}

#[test]
fn typing_through_the_daemon_reaches_the_contact_unless_turned_off() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "first contact");
    let _ = bob.receive();

    let bob_daemon = Daemon::start(&bob);
    let mut bob_rpc = bob_daemon.connect();
    wait_connected(&mut bob_rpc);
    let subscribed = bob_rpc.ask(r#"{"jsonrpc":"2.0","id":2,"method":"subscribe","params":{}}"#);
    assert!(subscribed.get("error").is_none(), "{subscribed}");

    let alice_daemon = Daemon::start(&alice);
    let mut alice_rpc = alice_daemon.connect();
    wait_connected(&mut alice_rpc);
    let answer = alice_rpc
        .ask(r#"{"jsonrpc":"2.0","id":3,"method":"typing","params":{"to":"bob","started":true}}"#);
    assert_eq!(answer["result"]["typing"], true, "{answer}");
    let seen = notifications_until(&mut bob_rpc, |r| r["type"] == "typing");
    let typing = seen.last().unwrap();
    assert_eq!(typing["from"], "alice", "{seen:?}");
    assert_eq!(typing["started"], true, "{seen:?}");

    // Typing off: the method answers, nothing leaves. A message sent
    // after it is what bob sees next, with no typing notice before it.
    let off =
        alice_rpc.ask(r#"{"jsonrpc":"2.0","id":4,"method":"settings","params":{"typing":false}}"#);
    assert!(off.get("error").is_none(), "{off}");
    let answer = alice_rpc
        .ask(r#"{"jsonrpc":"2.0","id":5,"method":"typing","params":{"to":"bob","started":true}}"#);
    assert!(answer.get("error").is_none(), "{answer}");
    let sent = alice_rpc.ask(
        r#"{"jsonrpc":"2.0","id":6,"method":"send","params":{"to":"bob","message":"after-typing-off"}}"#,
    );
    assert!(sent.get("error").is_none(), "{sent}");
    let seen = notifications_until(&mut bob_rpc, |r| {
        r["type"] == "message" && r["body"] == "after-typing-off"
    });
    assert!(
        !seen.iter().any(|r| r["type"] == "typing"),
        "a typing notice left with typing off: {seen:?}"
    );
    // A bad recipient is a clear error, not a notice to someone else.
    let bad = alice_rpc.ask(
        r#"{"jsonrpc":"2.0","id":7,"method":"typing","params":{"to":"not a name","started":true}}"#,
    );
    assert!(bad.get("error").is_some(), "{bad}");
    assert_eq!(alice_daemon.terminate(), Some(0));
    assert_eq!(bob_daemon.terminate(), Some(0));
}
