//! Nothing readable at rest: after a real conversation, neither the relay's
//! data directory nor either client's data directory holds the message text,
//! a password, or (on the clients) the contact's username in readable form.
//!
//! The relay legitimately stores usernames (its account table), so contact
//! names are checked only in the client directories. Searching the bytes of
//! every file, journal and WAL included, is the point; this suite must never
//! narrow the search to the files it expects to be clean.

mod client_support;

use std::path::Path;

use client_support::{start_relay, User};
use umbra_e2e::any_file_contains;

const CANARY: &str = "canary-7f3a9c";
// Distinctive enough that a chance match in ciphertext is negligible.
const ALICE_PASSWORD: &str = "alice-pw-Q8v3xK-canary";
const BOB_PASSWORD: &str = "bob-pw-Zr71Lm-canary";
const ALICE: &str = "alicecanary4d2e";
const BOB: &str = "bobcanary9c1b";

fn assert_absent(dir: &Path, needle: &str, what: &str) {
    if let Some(file) = any_file_contains(dir, needle.as_bytes()) {
        panic!(
            "{what} ({needle:?}) is readable at rest in {}",
            file.display()
        );
    }
}

fn check_all(relay_dir: &Path, alice: &User, bob: &User, when: &str) {
    for secret in [CANARY, ALICE_PASSWORD, BOB_PASSWORD] {
        assert_absent(
            relay_dir,
            secret,
            &format!("secret in the relay dir {when}"),
        );
    }
    for (user, contact) in [(alice, BOB), (bob, ALICE)] {
        let dir = user.cli.data_dir();
        let who = &user.name;
        for secret in [CANARY, ALICE_PASSWORD, BOB_PASSWORD] {
            assert_absent(dir, secret, &format!("secret in {who}'s data dir {when}"));
        }
        assert_absent(
            dir,
            contact,
            &format!("contact name in {who}'s data dir {when}"),
        );
    }
}

#[test]
fn no_plaintext_password_or_contact_name_at_rest() {
    let mut relay = start_relay();
    let alice = User::register(&relay, ALICE, ALICE_PASSWORD);
    let bob = User::register(&relay, BOB, BOB_PASSWORD);

    alice.send(BOB, &format!("first {CANARY} from alice"));
    alice.send_stdin(BOB, &format!("second, via stdin: {CANARY}\n"));
    let got = bob.receive().messages;
    assert_eq!(got.len(), 2, "bob's inbox: {got:?}");
    assert!(got.iter().all(|m| m.body.contains(CANARY)));
    bob.send(ALICE, &format!("reply {CANARY} from bob"));
    let got = alice.receive().messages;
    assert_eq!(got.len(), 1, "alice's inbox: {got:?}");
    // The stores now hold history, contacts and sessions; `contacts` and
    // `verify` read them back, so they are really written.
    assert_eq!(alice.trust_in(BOB).as_deref(), Some("unverified"));
    assert_eq!(bob.trust_in(ALICE).as_deref(), Some("unverified"));

    // While the relay runs its WAL may hold the newest pages; after a stop
    // they are checkpointed into the main file. Both states must be clean.
    check_all(relay.data_dir(), &alice, &bob, "while the relay runs");
    relay.stop();
    check_all(relay.data_dir(), &alice, &bob, "after the relay stopped");
}

#[test]
fn the_search_finds_what_is_there() {
    // Guards the suite above against a search that can never hit: the same
    // helper must find a canary that is plainly written.
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("a").join("b");
    std::fs::create_dir_all(&nested).expect("mkdir");
    std::fs::write(nested.join("f.bin"), format!("xx{CANARY}yy")).expect("write");
    assert_eq!(
        any_file_contains(dir.path(), CANARY.as_bytes()),
        Some(nested.join("f.bin"))
    );
    assert_eq!(any_file_contains(dir.path(), b"not-there-5e1"), None);
}
