//! Key verification and key changes as a user of `umbra` meets them: the
//! safety number both sides compare, marking a contact verified, and what
//! happens when a contact's identity key changes (a new device from `login
//! --new-identity` in an empty data directory, docs/CLI.md).
//!
//! The rule under test: after a key change nothing is sent to the new key
//! until the user accepts that exact key (exit 4 and a warning until then).
//! These suites must never accept a key on the user's behalf.

mod client_support;

use client_support::{exit, safety_record, start_relay, Received, User};

#[test]
fn both_sides_see_the_same_safety_number_and_verification_shows_in_contacts() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    // A first message makes them contacts on both sides.
    alice.send("bob", "hello");
    assert_eq!(bob.receive().messages.len(), 1);

    let (alice_view, alice_trust) = alice.safety_number("bob");
    let (bob_view, bob_trust) = bob.safety_number("alice");
    assert_eq!(
        alice_view, bob_view,
        "alice and bob are shown different safety numbers"
    );
    assert_eq!(alice_trust, "unverified");
    assert_eq!(bob_trust, "unverified");
    assert_eq!(alice.trust_in("bob").as_deref(), Some("unverified"));

    // Quoting a number that is not the current one changes nothing.
    let wrong = flip_last_digit(&alice_view);
    let args = ["verify", "bob", "--mark-verified", wrong.as_str()];
    alice.run(&args).assert_failure(exit::UNTRUSTED_KEY, &args);
    assert_eq!(alice.trust_in("bob").as_deref(), Some("unverified"));

    // The compared number, with its spacing removed, marks bob verified on
    // alice's side only.
    let compact: String = bob_view.split(' ').collect();
    let records = alice.json_ok(&["verify", "bob", "--mark-verified", &compact]);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "mark_verified"),
        "mark-verified printed no done record: {records:?}"
    );
    assert_eq!(alice.trust_in("bob").as_deref(), Some("verified"));
    assert_eq!(alice.safety_number("bob"), (alice_view, "verified".into()));
    assert_eq!(bob.trust_in("alice").as_deref(), Some("unverified"));
}

/// bob's new identity: a fresh data directory logging in to his account
/// with a new identity key instead of restoring his backup.
fn bob_on_a_new_device(relay: &umbra_e2e::Relay) -> User {
    let new_bob = User::unregistered(relay, "bob", "bob's password");
    let records = new_bob.json_ok(&["login", "bob", "--new-identity"]);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "login"),
        "login printed no done record: {records:?}"
    );
    new_bob
}

#[test]
fn changed_key_learned_from_a_message_blocks_sending_until_accepted() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let old_bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "to the old key");
    assert_eq!(old_bob.receive().messages.len(), 1);
    let (old_number, _) = alice.safety_number("bob");

    let bob = bob_on_a_new_device(&relay);
    let from_new = bob.send("alice", "it's bob, new device");

    // alice is told, and still gets the message (reading is not blocked).
    let inbox = alice.receive();
    let changes = inbox.of_type("key_changed");
    assert_eq!(changes.len(), 1, "key_changed records: {:?}", inbox.records);
    assert_eq!(changes[0]["contact"], "bob");
    let new_number = client_support::string_field(changes[0], "safety_number");
    assert_ne!(
        new_number, old_number,
        "a new key gave the same safety number"
    );
    assert_eq!(
        inbox.messages,
        vec![Received {
            from: "bob".into(),
            id: from_new,
            body: "it's bob, new device".into(),
        }]
    );

    assert_sending_is_blocked(&alice, &bob, &new_number);

    // The old number does not accept the new key.
    let args = ["verify", "bob", "--accept", old_number.as_str()];
    alice.run(&args).assert_failure(exit::UNTRUSTED_KEY, &args);
    assert_eq!(alice.trust_in("bob").as_deref(), Some("changed"));

    let records = alice.json_ok(&["verify", "bob", "--accept", &new_number]);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "accept"),
        "accept printed no done record: {records:?}"
    );
    assert_eq!(alice.trust_in("bob").as_deref(), Some("unverified"));
    assert_eq!(
        alice.safety_number("bob"),
        (new_number, "unverified".into())
    );

    let id = alice.send("bob", "welcome back");
    assert_eq!(
        bob.receive().messages,
        vec![Received {
            from: "alice".into(),
            id,
            body: "welcome back".into(),
        }]
    );
}

#[test]
fn changed_key_blocks_sending_before_the_contact_writes() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let old_bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "to the old key");
    assert_eq!(old_bob.receive().messages.len(), 1);
    let (old_number, _) = alice.safety_number("bob");

    // bob's identity changes and he says nothing: alice's next message must
    // not go to a key she never saw, nor vanish into one he no longer has.
    let bob = bob_on_a_new_device(&relay);
    let args = ["send", "bob", "are you there?", "--timeout", "10"];
    let out = alice.run(&args);
    assert_eq!(
        out.code,
        Some(exit::UNTRUSTED_KEY),
        "alice sent to bob after his key changed without being warned; stdout {:?}, stderr {:?}",
        out.stdout,
        out.stderr
    );

    let (new_number, trust) = safety_record(&alice.json_run_any(&["verify", "bob"]), "bob");
    assert_eq!(trust, "changed");
    assert_ne!(new_number, old_number);
    alice.json_ok(&["verify", "bob", "--accept", &new_number]);
    let id = alice.send("bob", "are you there? (after accepting)");
    let inbox = bob.receive();
    assert_eq!(
        inbox.of_type("decryption_failed").len(),
        0,
        "bob's new device got undecryptable messages: {:?}",
        inbox.records
    );
    assert_eq!(
        inbox.messages,
        vec![Received {
            from: "alice".into(),
            id,
            body: "are you there? (after accepting)".into(),
        }]
    );
}

#[test]
fn a_verified_contact_whose_key_changes_must_be_verified_again() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let old_bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "hello");
    assert_eq!(old_bob.receive().messages.len(), 1);
    let (old_number, _) = alice.safety_number("bob");
    alice.json_ok(&["verify", "bob", "--mark-verified", &old_number]);
    assert_eq!(alice.trust_in("bob").as_deref(), Some("verified"));

    let bob = bob_on_a_new_device(&relay);
    bob.send("alice", "new device, same bob");
    let inbox = alice.receive();
    assert_eq!(inbox.of_type("key_changed").len(), 1, "{:?}", inbox.records);
    // Verification belonged to the old key; it does not carry over.
    assert_eq!(alice.trust_in("bob").as_deref(), Some("changed"));

    let (new_number, trust) = safety_record(&alice.json_run_any(&["verify", "bob"]), "bob");
    assert_eq!(trust, "changed");
    assert_ne!(
        new_number, old_number,
        "a new key gave the same safety number"
    );
    assert_eq!(
        inbox.of_type("key_changed")[0]["safety_number"],
        new_number.as_str(),
        "the key_changed record shows the new number"
    );
    // And names the account whose key changed, as `contacts` lists it.
    let contacts = alice.json_ok(&["contacts"]);
    let bob_account = contacts
        .iter()
        .find(|c| c["type"] == "contact" && c["username"] == "bob")
        .map(|c| c["account_id"].clone())
        .expect("bob is a contact");
    assert_eq!(
        inbox.of_type("key_changed")[0]["account_id"],
        bob_account,
        "{:?}",
        inbox.records
    );
    // The number verified for the old key does not vouch for the new one.
    let stale = ["verify", "bob", "--mark-verified", old_number.as_str()];
    let out = alice.run(&stale);
    assert_ne!(out.code, Some(0), "the old number verified the new key");
    assert_eq!(alice.trust_in("bob").as_deref(), Some("changed"));
    alice.json_ok(&["verify", "bob", "--mark-verified", &new_number]);
    assert_eq!(alice.trust_in("bob").as_deref(), Some("verified"));
    alice.send("bob", "verified again");
    assert_eq!(bob.receive().messages.len(), 1);
}

/// `send` and `verify` both refuse with exit 4 and say why, naming the
/// contact and showing the new number; contacts shows `changed`.
fn assert_sending_is_blocked(alice: &User, bob: &User, new_number: &str) {
    let args = ["send", "bob", "this must not be sent", "--timeout", "10"];
    let out = alice.run(&args);
    assert_eq!(
        out.code,
        Some(exit::UNTRUSTED_KEY),
        "send to a changed key: stdout {:?}, stderr {:?}",
        out.stdout,
        out.stderr
    );
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("umbra: ") && first.contains("bob") && first.contains("key"),
        "send to a changed key gave no warning naming bob's key: {:?}",
        out.stderr
    );

    let verify = alice.run(&["--json", "verify", "bob"]);
    assert_eq!(
        verify.code,
        Some(exit::UNTRUSTED_KEY),
        "verify of a changed key"
    );
    let (shown, trust) = safety_record(
        &client_support::json_records(&verify.stdout, &["verify", "bob"]),
        "bob",
    );
    assert_eq!(
        (shown.as_str(), trust.as_str()),
        (new_number, "changed"),
        "verify after a key change"
    );
    assert_eq!(alice.trust_in("bob").as_deref(), Some("changed"));
    // Nothing was sent.
    assert_eq!(bob.receive().messages, vec![], "a blocked message arrived");
}

fn flip_last_digit(number: &str) -> String {
    let mut digits: Vec<char> = number.chars().collect();
    if let Some(last) = digits.last_mut() {
        *last = if *last == '0' { '1' } else { '0' };
    }
    digits.into_iter().collect()
}

#[test]
fn logging_in_again_on_the_same_device_keeps_the_identity() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "hello");
    assert_eq!(bob.receive().messages.len(), 1);
    let (before, _) = alice.safety_number("bob");

    // logout revokes the session only; login in the same data directory
    // resumes with the stored identity (docs/CLI.md), so alice sees no change.
    let records = bob.json_ok(&["logout"]);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "logout"),
        "logout printed no done record: {records:?}"
    );
    bob.json_ok(&["login", "bob"]);
    let id = bob.send("alice", "back after logging in again");

    let inbox = alice.receive();
    assert_eq!(
        inbox.of_type("key_changed").len(),
        0,
        "a re-login on the same device looked like a key change: {:?}",
        inbox.records
    );
    assert_eq!(
        inbox.messages,
        vec![Received {
            from: "bob".into(),
            id,
            body: "back after logging in again".into(),
        }]
    );
    assert_eq!(alice.safety_number("bob"), (before, "unverified".into()));
    alice.send("bob", "still the same bob");
    assert_eq!(bob.receive().messages.len(), 1);
}
