//! Group membership over the real `umbra` and `umbra-relay` binaries: a
//! three-member conversation in which the admin removes a member who keeps
//! `receive --follow` running, and a member added later who must see only
//! what is sent after he joined.
//!
//! Absence is never inferred from silence: after the messages a member must
//! not see, each sender also sends that member a 1:1 marker, and the relay
//! delivers each recipient's queue in acceptance order, so once the marker
//! is printed everything queued before it has been processed.
//!
//! Must never: reach into a store or the wire (this suite judges what a user
//! sees through the CLI), or sleep in place of waiting for a record.

mod client_support;
mod group_support;

use client_support::{exit, start_relay, User};
use group_support::{
    assert_nothing_of, bodies, converge, group_id, has_group_message, is_removal,
    message_with_body, receive_until, roster, Follower, GroupCli, Transcript,
};

fn register(relay: &umbra_e2e::Relay, names: &[&str]) -> Vec<User> {
    names
        .iter()
        .map(|n| User::register(relay, n, &format!("{n}'s group password")))
        .collect()
}

#[test]
fn a_removed_member_still_following_sees_the_removal_and_nothing_sent_after_it() {
    let relay = start_relay();
    let users = register(&relay, &["alice", "bob", "carol"]);
    let [alice, bob, carol] = [&users[0], &users[1], &users[2]];

    alice.group_create("trio", &["bob", "carol"]);
    let everyone = [alice, bob, carol];
    converge(
        &everyone,
        "the new group on every member",
        |u| u.members("trio"),
        &Some(roster(&["alice"], &["bob", "carol"])),
    );
    let id = group_id(alice, "trio");
    for user in [bob, carol] {
        assert_eq!(
            group_id(user, "trio"),
            id,
            "{} knows another group id",
            user.name
        );
    }

    // Everyone speaks once; everyone sees the other two, in this group.
    let mut chat = Transcript::new(&everyone);
    for user in everyone {
        chat.say(user, "trio", &format!("hello from {}", user.name));
    }
    chat.until("every member sees the other two", |me, records| {
        everyone
            .iter()
            .filter(|u| u.name != me.name)
            .all(|u| has_group_message(records, &u.name, &format!("hello from {}", u.name), &id))
    });

    // carol follows live while alice removes her.
    let mut follower = Follower::start(carol);
    alice.group_ok(&["remove", "trio", "carol"]);
    follower.wait_for("carol's removal", |r| is_removal(r, &id, "carol"));

    // The two who remain keep talking; bob has learnt of the removal
    // before he speaks (his view is checked), alice made it.
    let remaining = [alice, bob];
    converge(
        &remaining,
        "the removal on alice and bob",
        |u| u.members("trio"),
        &Some(roster(&["alice"], &["bob"])),
    );
    let mut chat = Transcript::new(&remaining);
    chat.say(alice, "trio", "after the removal, from alice");
    chat.say(bob, "trio", "after the removal, from bob");
    chat.until("alice and bob see each other after the removal", |me, r| {
        let other = if me.name == "alice" { "bob" } else { "alice" };
        has_group_message(r, other, &format!("after the removal, from {other}"), &id)
    });

    // Markers: once carol's follower prints both, everything alice and bob
    // sent before them has reached her client.
    alice.send("carol", "marker from alice");
    bob.send("carol", "marker from bob");
    follower.wait_for("alice's marker", |r| r["body"] == "marker from alice");
    follower.wait_for("bob's marker", |r| r["body"] == "marker from bob");
    let seen = follower.stop();
    let after = seen
        .iter()
        .position(|r| is_removal(r, &id, "carol"))
        .expect("the removal record is among what the follower printed");
    assert_nothing_of(&seen[after..], &["after the removal"], &id, "carol");

    // carol's own client knows she is out: a group send is refused with
    // one clear error line, and nothing reaches alice or bob either way.
    let args = ["send", "trio", "carol's voice after the removal"];
    let out = carol.group_run(&args);
    let line = out.assert_failure(exit::USER_ERROR, &args);
    assert!(
        line.contains("member"),
        "carol's refused group send does not say why: {line}"
    );
    carol.send("alice", "second marker from carol");
    carol.send("bob", "second marker from carol");
    let seen = receive_until(&remaining, "carol's second marker", |_, r| {
        message_with_body(r, "second marker from carol").is_some()
    });
    for (user, records) in remaining.iter().zip(&seen) {
        assert!(
            !bodies(records).iter().any(|b| b.contains("carol's voice")),
            "{} was shown carol's group message after her removal: {records:?}",
            user.name
        );
    }
}

#[test]
fn a_member_added_later_sees_only_what_is_sent_after_he_joined() {
    let relay = start_relay();
    let users = register(&relay, &["alice", "bob", "dave"]);
    let [alice, bob, dave] = [&users[0], &users[1], &users[2]];

    alice.group_create("later", &["bob"]);
    converge(
        &[alice, bob],
        "the new group",
        |u| u.members("later"),
        &Some(roster(&["alice"], &["bob"])),
    );
    let id = group_id(alice, "later");
    let mut chat = Transcript::new(&[alice, bob]);
    chat.say(alice, "later", "before dave, from alice");
    chat.say(bob, "later", "before dave, from bob");
    chat.until("the messages before dave", |me, r| {
        let other = if me.name == "alice" { "bob" } else { "alice" };
        has_group_message(r, other, &format!("before dave, from {other}"), &id)
    });

    alice.group_ok(&["add", "later", "dave"]);
    let mut seen_by_dave = converge(
        &[alice, bob, dave],
        "dave's arrival on every member",
        |u| u.members("later"),
        &Some(roster(&["alice"], &["bob", "dave"])),
    )
    .pop()
    .expect("dave's records");
    assert_eq!(group_id(dave, "later"), id, "dave joined another group id");

    let mut chat = Transcript::new(&[alice, bob, dave]);
    chat.say(alice, "later", "after dave, from alice");
    chat.say(bob, "later", "after dave, from bob");
    chat.until("the messages after dave joined", |me, r| {
        me.name != "dave"
            || (has_group_message(r, "alice", "after dave, from alice", &id)
                && has_group_message(r, "bob", "after dave, from bob", &id))
    });
    let more = chat.of(dave).to_vec();
    seen_by_dave.extend(more);
    for body in bodies(&seen_by_dave) {
        assert!(
            !body.contains("before dave"),
            "dave was shown a message sent before he joined: {body:?} (all: {seen_by_dave:?})"
        );
    }
}
