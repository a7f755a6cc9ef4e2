//! Forged group changes are refused, by the real `umbra` clients, whether
//! they come from the CLI of a plain member or are crafted on the wire.
//!
//! The crafted ones come from mallory, a member driven through
//! umbra-protocol's public API (group_support/rogue.rs): a real account,
//! real pairwise sessions, signatures made with real keys; only what she
//! signs is chosen by the test. She sends alice and bob (real `umbra`
//! clients) a Remove signed with her own key though she is no admin, an Add
//! claiming alice as its author but signed by mallory, and alice's own old
//! Add of dave replayed after dave was removed. Then a 1:1 marker: once a
//! client prints it, it has processed everything mallory sent before it
//! (each recipient's queue is delivered in order), so an unchanged member
//! list means refusal, not delay. Last, her genuine Leave built on the
//! real head applies: the crafted route itself works.
//!
//! Must never: judge a refusal by silence alone, or build a signature or a
//! ciphertext other than through umbra-protocol.

mod client_support;
mod group_support;

use client_support::{exit, start_relay, User};
use group_support::rogue::{Rogue, Tracked};
use group_support::{converge, message_with_body, receive_until, roster, GroupCli};
use rand::rngs::OsRng;
use umbra_protocol::content::{Content, MessageId};
use umbra_protocol::group::{GroupAction, GroupChange, NewMember};
use umbra_protocol::wire::Username;

fn register(relay: &umbra_e2e::Relay, names: &[&str]) -> Vec<User> {
    names
        .iter()
        .map(|n| User::register(relay, n, &format!("{n}'s group password")))
        .collect()
}

#[test]
fn a_plain_member_cannot_change_the_group_from_the_cli() {
    let relay = start_relay();
    let users = register(&relay, &["alice", "bob", "carol"]);
    let [alice, bob, carol] = [&users[0], &users[1], &users[2]];
    alice.group_create("club", &["bob"]);
    let before = Some(roster(&["alice"], &["bob"]));
    converge(
        &[alice, bob],
        "the new group",
        |u| u.members("club"),
        &before,
    );

    for args in [
        &["add", "club", "carol"][..],
        &["remove", "club", "alice"],
        &["promote", "club", "bob"],
        &["rename", "club", "bobs-club"],
    ] {
        let out = bob.group_run(args);
        let line = out.assert_failure(exit::USER_ERROR, args);
        assert!(
            line.contains("admin"),
            "bob's refused group {args:?} does not say an admin may do it: {line}"
        );
    }
    // Nothing left bob's client: both views, and carol's, are unchanged.
    converge(
        &[alice, bob],
        "the unchanged group",
        |u| u.members("club"),
        &before,
    );
    let group = group_support::group_id(alice, "club");
    assert!(
        alice
            .groups()
            .iter()
            .any(|g| g.id == group && g.name == "club"),
        "the group was renamed: {:?}",
        alice.groups()
    );
    let _ = carol.receive_records();
    assert_eq!(carol.groups(), vec![], "carol was added to a group");
}

#[test]
fn crafted_changes_by_a_non_admin_or_replayed_are_refused_by_every_member() {
    let relay = start_relay();
    let users = register(&relay, &["alice", "bob", "dave", "eve"]);
    let [alice, bob, dave] = [&users[0], &users[1], &users[2]];
    let mut mallory = Rogue::sign_up(&relay.ws_url(), "mallory", "mallory's password");

    alice.group_create("club", &["bob", "mallory"]);
    converge(
        &[alice, bob],
        "the new group",
        |u| u.members("club"),
        &Some(roster(&["alice"], &["bob", "mallory"])),
    );
    // dave joins and is removed again: mallory keeps alice's Add of him.
    alice.group_ok(&["add", "club", "dave"]);
    alice.group_ok(&["remove", "club", "dave"]);
    let honest = Some(roster(&["alice"], &["bob", "mallory"]));
    converge(
        &[alice, bob],
        "dave added and removed",
        |u| u.members("club"),
        &honest,
    );

    let mut tracked = None;
    Tracked::follow(&mut tracked, &mallory.receive());
    let tracked = tracked.expect("mallory learnt the group from alice");
    let state = &tracked.state;
    assert_eq!(state.name(), "club");
    assert_eq!(
        state.members().len(),
        3,
        "mallory's view of the group after dave left: {state:?}"
    );
    let me = mallory.account();
    let alice_account = mallory.resolve("alice");
    let bob_account = mallory.resolve("bob");
    let eve_account = mallory.resolve("eve");
    assert!(
        state.is_member(&me) && !state.is_admin(&me),
        "mallory is a plain member"
    );

    // 1. A Remove of bob, signed by mallory, who is no admin (built on a
    //    copy of the state that says she is, as a hostile client would).
    let as_admin = tracked.with_admin(me, "mallory");
    let remove_bob = GroupChange::remove(mallory.identity(), me, &as_admin, vec![bob_account])
        .expect("sign the Remove");
    // 2. An Add of eve that names alice as its author, signed by mallory.
    let eve = NewMember {
        account: eve_account,
        username: Username::parse("eve").expect("a valid username"),
    };
    let add_eve = GroupChange::build(
        mallory.identity(),
        alice_account,
        state,
        GroupAction::Add { members: vec![eve] },
    )
    .expect("sign the Add");
    // 3. alice's own, genuinely signed, Add of dave: an old state replayed.
    let add_dave = tracked
        .changes
        .iter()
        .find(|c| matches!(c.action(), GroupAction::Add { .. }))
        .expect("mallory received alice's Add of dave")
        .clone();
    // 4. mallory's genuine Leave on the real head, sent last (below).
    let leave = GroupChange::leave(mallory.identity(), me, state).expect("sign the Leave");

    let control = |change: &GroupChange| Content::GroupControl {
        change: change.as_bytes().to_vec(),
    };
    for forged in [&remove_bob, &add_eve, &add_dave] {
        for to in ["alice", "bob", "dave"] {
            mallory.send(to, control(forged));
        }
    }
    // A 1:1 marker after them: once a client prints it, it has processed
    // every forgery queued before it.
    for to in ["alice", "bob", "dave"] {
        mallory.send(
            to,
            Content::Text {
                id: MessageId::random(&mut OsRng),
                body: "marker after the forgeries".into(),
                sent_at_ms: now_ms(),
            },
        );
    }
    receive_until(&[alice, bob, dave], "mallory's marker", |_, r| {
        message_with_body(r, "marker after the forgeries").is_some()
    });
    for user in [alice, bob] {
        assert_eq!(
            user.members("club"),
            honest,
            "{}'s members after mallory's forgeries",
            user.name
        );
    }
    let eve = &users[3];
    let _ = eve.receive_records();
    assert_eq!(eve.groups(), vec![], "eve was added by a forged Add");
    assert_eq!(
        dave.groups(),
        vec![],
        "the replayed Add brought dave back into the group"
    );
    assert!(
        alice
            .groups()
            .iter()
            .chain(bob.groups().iter())
            .all(|g| g.name == "club"),
        "the group changed name"
    );

    // The crafted route itself works: the same path delivers a change the
    // members accept, mallory's own Leave on the real head.
    for to in ["alice", "bob"] {
        mallory.send(to, control(&leave));
    }
    converge(
        &[alice, bob],
        "mallory's genuine Leave",
        |u| u.members("club"),
        &Some(roster(&["alice"], &["bob"])),
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
