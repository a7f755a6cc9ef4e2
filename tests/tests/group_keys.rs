//! Sender keys against members who try, over the real binaries: a removed
//! member holding every key it was ever given cannot open a message sent
//! after its removal, and a member added later cannot open one sent before
//! it joined, even when a colluding member hands it the ciphertext.
//!
//! alice and bob are real `umbra` clients. The removed member (carol) and
//! the late joiner (dave) are wire-level members (group_support/rogue.rs)
//! that keep and use every sender key honestly sent to them; "mole" is a
//! member who stays in the group and passes on the envelopes alice sealed
//! to it. umbra-protocol's `GroupReceiver` is the judge: built from the
//! distribution alice's client really sent, it must open the message it
//! is entitled to (the positive control) and refuse the other.
//!
//! Must never: build a key or a ciphertext of its own, or accept a refusal
//! without the same receiver having opened an entitled message.

mod client_support;
mod group_support;

use client_support::{start_relay, User};
use group_support::rogue::{distributions, group_messages_from, open_text, Received, Rogue};
use group_support::{converge, roster, GroupCli};
use umbra_protocol::content::Content;
use umbra_protocol::group::GroupReceiver;
use umbra_protocol::wire::AccountId;

/// alice's sender key as `received` carries it (the last one she sent).
fn receiver_of(received: &[Received], alice: AccountId, who: &str) -> GroupReceiver {
    let keys = distributions(received);
    let (_, key) = keys
        .into_iter()
        .rfind(|(from, _)| *from == alice)
        .unwrap_or_else(|| panic!("{who} got no sender key from alice: {received:?}"));
    GroupReceiver::new(key)
}

#[test]
fn a_removed_member_cannot_open_what_is_sent_after_its_removal() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's group password");
    let bob = User::register(&relay, "bob", "bob's group password");
    let mut carol = Rogue::sign_up(&relay.ws_url(), "carol", "carol's password");
    let mut mole = Rogue::sign_up(&relay.ws_url(), "mole", "mole's password");
    let alice_account = mole.resolve("alice");

    alice.group_create("vault", &["bob", "carol", "mole"]);
    converge(
        &[&alice, &bob],
        "the new group",
        |u| u.members("vault"),
        &Some(roster(&["alice"], &["bob", "carol", "mole"])),
    );
    alice.group_send("vault", "before the removal");
    let mut carol_key = receiver_of(&carol.receive_raw(), alice_account, "carol");
    let before = mole.receive_raw();
    let before_copy = group_messages_from(&before, alice_account);
    assert_eq!(
        before_copy.len(),
        1,
        "mole's copies of alice's message: {before:?}"
    );
    // The positive control: carol's key opens what was sent while she was in.
    assert_eq!(
        open_text(&mut carol_key, &before_copy[0]).as_deref(),
        Ok("before the removal"),
        "carol's sender key from alice does not open alice's message to the group"
    );

    alice.group_ok(&["remove", "vault", "carol"]);
    alice.group_send("vault", "after the removal");
    let after = mole.receive_raw();
    let after_copy = group_messages_from(&after, alice_account);
    assert_eq!(
        after_copy.len(),
        1,
        "mole's copies after the removal: {after:?}"
    );
    // The message is real: mole's key from alice, the newest she sent it,
    // opens it.
    let everything: Vec<Received> = before.iter().chain(&after).cloned().collect();
    let mut mole_key = receiver_of(&everything, alice_account, "mole");
    assert_eq!(
        open_text(&mut mole_key, &after_copy[0]).as_deref(),
        Ok("after the removal")
    );
    let opened = open_text(&mut carol_key, &after_copy[0]);
    assert!(
        opened.is_err(),
        "carol, removed, opened alice's next message with her old key: {opened:?}"
    );
    let header = after_copy[0]
        .group_message()
        .expect("a group message")
        .header();
    assert!(
        header.epoch > carol_key.epoch() && header.chain_id != carol_key.chain_id(),
        "alice sent under her old sender key after removing carol: {header:?}"
    );

    // And carol's own queue: the Remove, then nothing of the group, up to
    // a marker alice sent after her message.
    alice.send("carol", "marker after the removal");
    let queued = carol.receive_raw();
    let marker = queued
        .iter()
        .position(|r| {
            matches!(r, Received::Pairwise(i)
                if matches!(&i.content, Content::Text { body, .. } if body == "marker after the removal"))
        })
        .unwrap_or_else(|| panic!("carol did not get alice's marker: {queued:?}"));
    assert!(
        group_messages_from(&queued[..marker], alice_account).is_empty(),
        "alice still sent carol the group's messages after removing her: {queued:?}"
    );
}

#[test]
fn a_member_added_later_cannot_open_what_was_sent_before_it_joined() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's group password");
    let bob = User::register(&relay, "bob", "bob's group password");
    let mut mole = Rogue::sign_up(&relay.ws_url(), "mole", "mole's password");
    let mut dave = Rogue::sign_up(&relay.ws_url(), "dave", "dave's password");
    let alice_account = mole.resolve("alice");

    alice.group_create("vault", &["bob", "mole"]);
    converge(
        &[&alice, &bob],
        "the new group",
        |u| u.members("vault"),
        &Some(roster(&["alice"], &["bob", "mole"])),
    );
    alice.group_send("vault", "before dave joined");
    let before = mole.receive_raw();
    let before_copy = group_messages_from(&before, alice_account);
    assert_eq!(
        before_copy.len(),
        1,
        "mole's copies of alice's message: {before:?}"
    );

    alice.group_ok(&["add", "vault", "dave"]);
    alice.group_send("vault", "after dave joined");
    let joined = dave.receive_raw();
    let own_copy = group_messages_from(&joined, alice_account);
    assert_eq!(
        own_copy.len(),
        1,
        "dave's copies of alice's messages: {joined:?}"
    );
    let mut dave_key = receiver_of(&joined, alice_account, "dave");
    let opened = open_text(&mut dave_key, &before_copy[0]);
    assert!(
        opened.is_err(),
        "dave opened a message sent before he joined: {opened:?}"
    );
    // The positive control: the same key opens what was sent after.
    assert_eq!(
        open_text(&mut dave_key, &own_copy[0]).as_deref(),
        Ok("after dave joined"),
        "dave's sender key from alice does not open her message after he joined"
    );
}
