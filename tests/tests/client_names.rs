//! A username that changes hands, over real `umbra` processes: a contact is
//! an account, never a name (docs/PROTOCOL.md §12.13). When the name of a
//! verified contact is freed (account deleted, or renamed away) and someone
//! else registers it and writes, the user is warned (`name_reassigned`), the
//! newcomer is shown under a label of its own, sending to the name is
//! refused with exit 4, and only `verify NAME --accept NUMBER` with the
//! newcomer's safety number makes the name mean the newcomer.
//!
//! Must never: accept the newcomer on the user's behalf, pass while
//! `contacts` shows two contacts under one label, or treat a send to the
//! newcomer as proof without the newcomer receiving it.

mod client_support;

use client_support::{
    assert_safety_number_format, exit, start_relay_without_name_quarantine, string_field, User,
};
use serde_json::Value;

/// `contacts --json` as (display_name, name_state, trust, account_id).
fn contacts(user: &User) -> Vec<(String, String, String, String)> {
    user.json_ok(&["contacts"])
        .iter()
        .filter(|r| r["type"] == "contact")
        .map(|r| {
            (
                string_field(r, "display_name"),
                string_field(r, "name_state"),
                string_field(r, "trust"),
                string_field(r, "account_id"),
            )
        })
        .collect()
}

/// alice and bob have talked and alice has verified bob.
fn alice_verifies_bob(relay: &umbra_e2e::Relay) -> (User, User) {
    let alice = User::register(relay, "alice", "alice's password");
    let bob = User::register(relay, "bob", "bob's password");
    alice.send("bob", "hello bob");
    assert_eq!(bob.receive().messages.len(), 1);
    bob.send("alice", "hello alice");
    assert_eq!(alice.receive().messages.len(), 1);
    let (number, _) = alice.safety_number("bob");
    alice.json_ok(&["verify", "bob", "--mark-verified", &number]);
    assert_eq!(alice.trust_in("bob").as_deref(), Some("verified"));
    (alice, bob)
}

/// What alice sees once the newcomer holding the name "bob" writes to her:
/// the warning, and the message under the newcomer's own label. Returns
/// that label.
fn alice_is_warned(alice: &User) -> String {
    let inbox = alice.receive();
    let warnings = inbox.of_type("name_reassigned");
    assert_eq!(
        warnings.len(),
        1,
        "no name_reassigned warning: {:?}",
        inbox.records
    );
    assert_eq!(warnings[0]["contact"], "bob");
    let label = string_field(warnings[0], "new_display_name");
    assert!(label.starts_with("bob#") && label.len() == 12, "{label}");
    assert_eq!(
        inbox
            .messages
            .iter()
            .map(|m| (m.from.as_str(), m.body.as_str()))
            .collect::<Vec<_>>(),
        vec![(label.as_str(), "hi alice, it's bob")],
        "the newcomer's message is shown as from the bob alice knows"
    );
    label
}

fn send_to_bob_is_refused(alice: &User) {
    let args = ["send", "bob", "for the bob I verified", "--timeout", "10"];
    let line = alice.run(&args).assert_failure(exit::UNTRUSTED_KEY, &args);
    assert!(
        line.contains("now names a different account"),
        "send to a reassigned name: unclear refusal: {line}"
    );
}

/// `verify bob`: one safety number per account the name could mean, exit 4.
/// Returns the newcomer's number.
fn both_numbers(alice: &User, newcomer_label: &str, known_label: &str) -> String {
    let out = alice.run(&["--json", "verify", "bob"]);
    assert_eq!(out.code, Some(exit::UNTRUSTED_KEY), "{out:?}");
    let records: Vec<Value> = client_support::json_records(&out.stdout, &["verify", "bob"]);
    let numbers: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["type"] == "safety_number")
        .map(|r| (string_field(r, "contact"), string_field(r, "safety_number")))
        .collect();
    assert_eq!(
        numbers.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        vec![known_label, newcomer_label],
        "verify bob does not show both accounts: {records:?}"
    );
    for (_, number) in &numbers {
        assert_safety_number_format(number);
    }
    assert_ne!(numbers[0].1, numbers[1].1);
    numbers[1].1.clone()
}

/// Quoting a wrong number decides nothing; the newcomer's number makes
/// "bob" mean the newcomer, who then gets what alice sends to bob.
fn alice_chooses_the_newcomer(alice: &User, newcomer: &User, number: &str) {
    let mut wrong: Vec<char> = number.chars().collect();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == '0' { '1' } else { '0' };
    let wrong: String = wrong.into_iter().collect();
    let args = ["verify", "bob", "--accept", wrong.as_str()];
    alice.run(&args).assert_failure(exit::UNTRUSTED_KEY, &args);
    send_to_bob_is_refused(alice);

    alice.json_ok(&["verify", "bob", "--accept", number]);
    alice.send("bob", "to the bob I chose");
    let inbox = newcomer.receive();
    assert_eq!(
        inbox
            .messages
            .iter()
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>(),
        vec!["to the bob I chose"]
    );
}

fn labels_are_distinct(list: &[(String, String, String, String)]) {
    let mut labels: Vec<&str> = list.iter().map(|c| c.0.as_str()).collect();
    labels.sort_unstable();
    let before = labels.len();
    labels.dedup();
    assert_eq!(before, labels.len(), "two contacts share a label: {list:?}");
}

#[test]
fn a_deleted_contacts_name_registered_by_someone_else_is_not_the_verified_contact() {
    let relay = start_relay_without_name_quarantine();
    let (alice, bob) = alice_verifies_bob(&relay);
    let old_account = contacts(&alice)[0].3.clone();
    bob.json_ok(&["account", "delete", "--yes"]);
    let newcomer = User::register(&relay, "bob", "a stranger's password");
    newcomer.send("alice", "hi alice, it's bob");

    let label = alice_is_warned(&alice);
    send_to_bob_is_refused(&alice);
    let list = contacts(&alice);
    labels_are_distinct(&list);
    assert!(
        list.iter()
            .any(|c| c.0 == "bob" && c.1 == "contested" && c.2 == "verified" && c.3 == old_account),
        "the verified bob is not kept under its account: {list:?}"
    );
    assert!(
        list.iter()
            .any(|c| c.0 == label && c.1 == "other_account" && c.2 == "unverified"),
        "the newcomer is not listed apart: {list:?}"
    );

    let number = both_numbers(&alice, &label, "bob");
    alice_chooses_the_newcomer(&alice, &newcomer, &number);
    let list = contacts(&alice);
    labels_are_distinct(&list);
    assert!(
        list.iter()
            .any(|c| c.0 == "bob" && c.1 == "current" && c.2 == "unverified" && c.3 != old_account),
        "bob does not mean the chosen newcomer now: {list:?}"
    );
    assert!(
        list.iter()
            .any(|c| c.1 == "other_account" && c.2 == "verified" && c.3 == old_account),
        "the old verified contact was dropped or relabelled wrongly: {list:?}"
    );
}

#[test]
fn a_renamed_contacts_old_name_registered_by_someone_else_is_not_the_verified_contact() {
    let relay = start_relay_without_name_quarantine();
    let (alice, bob) = alice_verifies_bob(&relay);
    bob.json_ok(&["account", "rename", "robert"]);
    let newcomer = User::register(&relay, "bob", "a stranger's password");
    newcomer.send("alice", "hi alice, it's bob");

    let label = alice_is_warned(&alice);
    send_to_bob_is_refused(&alice);
    let list = contacts(&alice);
    labels_are_distinct(&list);
    assert!(
        list.iter()
            .any(|c| c.0 == "robert" && c.1 == "current" && c.2 == "verified"),
        "the renamed contact does not carry its new name: {list:?}"
    );
    assert!(
        list.iter().any(|c| c.0 == label && c.1 == "other_account"),
        "the newcomer is not listed apart: {list:?}"
    );

    let number = both_numbers(&alice, &label, "robert");
    alice_chooses_the_newcomer(&alice, &newcomer, &number);
    // robert is still reachable under his new name.
    alice.send("robert", "still you, robert?");
    assert_eq!(
        bob.receive()
            .messages
            .iter()
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>(),
        vec!["still you, robert?"]
    );
}
