//! Messaging through the real `umbra` binary and a real relay: two and three
//! users, offline recipients, relay restarts and crashes between commands,
//! and messages read from stdin.
//!
//! Every assertion is on what a user or script sees: the `--json` records of
//! `send` and `receive` (docs/CLI.md). These suites must never reach into the
//! stores or the wire; the relay and client-core have their own suites for that.

mod client_support;

use std::collections::HashSet;

use client_support::{start_relay, Received, User};

#[test]
fn two_users_exchange_messages_and_each_arrives_once() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    let hello_id = alice.send("bob", "hello bob");
    let inbox = bob.receive();
    assert_eq!(
        inbox.messages,
        vec![Received {
            from: "alice".into(),
            id: hello_id.clone(),
            body: "hello bob".into(),
        }],
        "bob's receive"
    );

    let reply_id = bob.send("alice", "hi alice, got it");
    let inbox = alice.receive();
    assert_eq!(
        inbox.messages,
        vec![Received {
            from: "bob".into(),
            id: reply_id.clone(),
            body: "hi alice, got it".into(),
        }],
        "alice's receive"
    );
    assert_ne!(hello_id, reply_id, "two messages share an id");

    // Both queues were acknowledged: a second receive delivers nothing again.
    assert_eq!(bob.receive().messages, vec![], "bob got a message twice");
    assert_eq!(
        alice.receive().messages,
        vec![],
        "alice got a message twice"
    );
}

#[test]
fn three_users_each_receive_only_their_own_messages() {
    let relay = start_relay();
    let names = ["alice", "bob", "carol"];
    let users: Vec<User> = names
        .iter()
        .map(|n| User::register(&relay, n, &format!("{n}'s password")))
        .collect();

    // Every ordered pair: each message names its sender and recipient, so a
    // misrouted one is recognisable.
    let mut expected: Vec<Vec<Received>> = vec![Vec::new(); users.len()];
    let mut ids = HashSet::new();
    for (s, sender) in users.iter().enumerate() {
        for (r, recipient) in users.iter().enumerate() {
            if s == r {
                continue;
            }
            let body = format!("from {} to {}", sender.name, recipient.name);
            let id = sender.send(&recipient.name, &body);
            assert!(ids.insert(id.clone()), "message id {id} reused");
            expected[r].push(Received {
                from: sender.name.clone(),
                id,
                body,
            });
        }
    }

    for (r, recipient) in users.iter().enumerate() {
        let mut got = recipient.receive().messages;
        // Across senders the order is the relay's acceptance order, which is
        // the order sent above; sort anyway so only content is compared here
        // (per-sender order has its own test).
        got.sort_by(|a, b| a.id.cmp(&b.id));
        let mut want = expected[r].clone();
        want.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(got, want, "{}'s inbox", recipient.name);
    }
}

#[test]
fn offline_recipient_gets_every_message_in_order() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    // bob runs nothing while alice sends: the relay holds his queue.
    let sent: Vec<(String, String)> = (1..=5)
        .map(|n| {
            let body = format!("offline message {n} of 5");
            (alice.send("bob", &body), body)
        })
        .collect();

    let got: Vec<(String, String)> = bob
        .receive()
        .messages
        .into_iter()
        .inspect(|m| assert_eq!(m.from, "alice"))
        .map(|m| (m.id, m.body))
        .collect();
    assert_eq!(got, sent, "bob's backlog, in order");
    assert_eq!(bob.receive().messages, vec![], "backlog delivered twice");
}

#[test]
fn queued_messages_survive_a_graceful_relay_restart_and_clients_carry_on() {
    let mut relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    let first = alice.send("bob", "sent before the restart 1");
    let second = alice.send("bob", "sent before the restart 2");
    relay.restart();

    let got: Vec<String> = bob.receive().messages.into_iter().map(|m| m.id).collect();
    assert_eq!(got, vec![first, second], "bob's queue after the restart");

    // Both clients keep working against the restarted relay with the
    // sessions they already had: no new login, no new registration.
    let reply = bob.send("alice", "reply after the restart");
    relay.restart();
    let inbox = alice.receive();
    assert_eq!(
        inbox.messages,
        vec![Received {
            from: "bob".into(),
            id: reply,
            body: "reply after the restart".into(),
        }]
    );
    let again = alice.send("bob", "and the conversation goes on");
    assert_eq!(
        bob.receive()
            .messages
            .into_iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec![again]
    );
}

#[test]
fn accepted_messages_survive_a_relay_crash() {
    let mut relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    // `send` exited 0 only after the relay accepted; accepted means durable.
    let id = alice.send("bob", "accepted just before the crash");
    relay.crash();
    relay.restart();

    let inbox = bob.receive();
    assert_eq!(
        inbox.messages,
        vec![Received {
            from: "alice".into(),
            id,
            body: "accepted just before the crash".into(),
        }],
        "an acknowledged message was lost in a crash"
    );
}

#[test]
fn send_reads_the_message_from_stdin() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    // One trailing line break is removed; inner ones and a blank line stay.
    let multi = alice.send_stdin("bob", "first line\n\nthird line, after a blank\n");
    let crlf = alice.send_stdin("bob", "sent with a CRLF ending\r\n");
    // After `--`, a message starting with '-' is just text.
    let literal = {
        let records = alice.json_ok(&["send", "--timeout", "10", "bob", "--", "-x is not stdin"]);
        let sent: Vec<_> = records.iter().filter(|r| r["type"] == "sent").collect();
        assert_eq!(sent.len(), 1, "send -- -x: {records:?}");
        client_support::string_field(sent[0], "id")
    };

    let inbox = bob.receive();
    let got: Vec<(String, String)> = inbox.messages.into_iter().map(|m| (m.id, m.body)).collect();
    assert_eq!(
        got,
        vec![
            (multi, "first line\n\nthird line, after a blank".to_string()),
            (crlf, "sent with a CRLF ending".to_string()),
            (literal, "-x is not stdin".to_string()),
        ]
    );
}

#[test]
fn empty_stdin_is_refused_and_nothing_is_sent() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");

    for input in ["", "\n", "   \n"] {
        let args = ["send", "bob", "-", "--timeout", "10"];
        let out = alice.run_with_stdin(&args, input);
        out.assert_failure(client_support::exit::USER_ERROR, &args);
    }
    assert_eq!(bob.receive().messages, vec![], "an empty message arrived");
}
