//! Catching up (docs/PROTOCOL.md §8.15), against a real relay in this
//! process (the helpers are `tests.rs`'s): a member a change never reached
//! holds the next one pending, asks, gets both and ends at the same head;
//! a sync answer gives nothing to someone who is not (and was not removed
//! as) a member, and a removed member only what it was entitled to; the
//! answer and request limits hold.

use std::time::Duration;

use umbra_protocol::content::Content;
use umbra_protocol::group::{ChangeHash, GroupChange};

use crate::Client;

use super::sync::{answer, completes, SyncLimits};
use super::tests::{receive, register, state_of, team, Team};
use super::GroupId;

/// `alice` renames `group` to `name` and sends the change to carol only,
/// as if bob's copy had been refused: returns the change.
pub(super) async fn rename_past_bob(
    alice: &Client,
    carol: &Client,
    group: &GroupId,
    name: &str,
) -> GroupChange {
    let engine = &alice.inner;
    let carol_id = carol.whoami().account_id;
    let pending = {
        let _guard = engine.op_lock.lock().await;
        let mut rec = engine.groups.require(group).await.expect("group");
        let me = alice.whoami().account_id;
        let change = GroupChange::rename(&engine.identity, me, rec.state(), name).expect("rename");
        rec.log
            .apply(change.clone(), &engine.identity.public())
            .expect("applies");
        let carol_name = rec
            .state()
            .member(&carol_id)
            .expect("carol")
            .username
            .clone();
        let mut bundles = Default::default();
        let pending = engine
            .commit_change(rec, &change, &[(carol_id, carol_name)], &[], &mut bundles)
            .await
            .expect("committed");
        (pending, change)
    };
    engine.finish_change(pending.0).await.expect("sent");
    pending.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_a_change_missed_asks_and_its_pending_change_applies() {
    let Team {
        dir: _dir,
        relay: _relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    rename_past_bob(&alice, &carol, &group, "one").await;
    receive(&carol).await;
    assert_eq!(state_of(&carol, &group).await.name(), "one");
    // The next change reaches bob, whose log lacks its parent: pending.
    alice.rename_group(&group, "two").await.expect("rename");
    let want = state_of(&alice, &group).await;
    // Bob asks alice; alice answers with both changes; bob applies them.
    let mut rounds = 0;
    while state_of(&bob, &group).await != want {
        rounds += 1;
        assert!(
            rounds <= 10,
            "bob never caught up: {:?}",
            state_of(&bob, &group).await
        );
        receive(&bob).await;
        bob.flush_outbox(Duration::from_secs(30))
            .await
            .expect("flushed");
        receive(&alice).await;
        alice
            .flush_outbox(Duration::from_secs(30))
            .await
            .expect("flushed");
    }
    assert_eq!(state_of(&bob, &group).await.name(), "two");
    assert_eq!(state_of(&bob, &group).await.version(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_text_with_a_head_we_lack_makes_us_ask() {
    let Team {
        dir: _dir,
        relay: _relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    rename_past_bob(&alice, &carol, &group, "one").await;
    // No later change: only the head in alice's next text tells bob.
    alice.send_group_text(&group, "hello").await.expect("send");
    let want = state_of(&alice, &group).await;
    let mut rounds = 0;
    while state_of(&bob, &group).await != want {
        rounds += 1;
        assert!(rounds <= 10, "bob never caught up");
        receive(&bob).await;
        bob.flush_outbox(Duration::from_secs(30))
            .await
            .expect("flushed");
        receive(&alice).await;
        alice
            .flush_outbox(Duration::from_secs(30))
            .await
            .expect("flushed");
    }
    assert_eq!(state_of(&bob, &group).await.name(), "one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_answer_gives_nothing_to_a_non_member_and_a_removed_member_its_removal() {
    let Team {
        dir: _dir,
        relay: _relay,
        url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    let dave = register(&url, "dave").await;
    let (me, bob_id, carol_id, dave_id) = (
        alice.whoami().account_id,
        bob.whoami().account_id,
        carol.whoami().account_id,
        dave.whoami().account_id,
    );
    let created = *state_of(&alice, &group).await.head();
    alice.rename_group(&group, "one").await.expect("rename");
    let renamed = *state_of(&alice, &group).await.head();
    alice
        .remove_member(&group, &"carol".parse().expect("name"))
        .await
        .expect("remove");
    alice.rename_group(&group, "two").await.expect("rename");
    let rec = alice.inner.groups.require(&group).await.expect("group");
    // The versions of the changes an answer sends, and whether it ends
    // with our head (`GroupSyncDone`, §8.15: only a current member's does).
    let head = (*rec.log.head(), rec.state().version());
    let kinds = |contents: Vec<Content>| -> (Vec<u64>, bool) {
        let mut done = false;
        let versions = contents
            .iter()
            .filter_map(|c| match c {
                Content::GroupControl { change } => {
                    assert!(!done, "the marker comes last");
                    Some(GroupChange::from_bytes(change).expect("change").version())
                }
                Content::GroupSyncDone {
                    group: g,
                    head: h,
                    version,
                } => {
                    assert_eq!((*g, (*h, *version)), (group, head));
                    done = true;
                    None
                }
                other => panic!("unexpected {}", other.kind()),
            })
            .collect();
        (versions, done)
    };
    // A member gets every change above its head.
    assert_eq!(
        kinds(answer(&rec, &bob_id, &me, &created, 0)),
        (vec![1, 2, 3], true)
    );
    assert_eq!(
        kinds(answer(&rec, &bob_id, &me, &renamed, 1)),
        (vec![2, 3], true)
    );
    // A member at our head gets only the end: it is caught up.
    let at_head = answer(&rec, &bob_id, &me, &head.0, head.1);
    assert_eq!(kinds(at_head), (vec![], true));
    // Someone who never was a member gets nothing, whatever head it names.
    for (have, version) in [(created, 0), (renamed, 1), (ChangeHash::ZERO, 0)] {
        assert!(answer(&rec, &dave_id, &me, &have, version).is_empty());
    }
    // The removed member gets what it would have been sent: the changes
    // up to its Remove, not the rename after it.
    // No end: the head is the members' to know.
    assert_eq!(
        kinds(answer(&rec, &carol_id, &me, &created, 0)),
        (vec![1, 2], false)
    );
    // Above its Remove it is owed nothing.
    let removed = *rec.log.chain_above(&renamed, 1).expect("on chain")[0].hash();
    assert!(answer(&rec, &carol_id, &me, &removed, 2).is_empty());
    // A marker completes a sync only with a head on our chain and that
    // head's version: a forged `u64::MAX` at our head, or our head with
    // an older version, completes nothing (§8.15).
    assert!(completes(&rec, &bob_id, &me, &head.0, head.1));
    assert!(completes(&rec, &bob_id, &me, &renamed, 1));
    assert!(!completes(&rec, &bob_id, &me, &head.0, u64::MAX));
    assert!(!completes(&rec, &bob_id, &me, &head.0, head.1 - 1));
    assert!(!completes(&rec, &bob_id, &me, &renamed, 2));
}

#[test]
fn the_sync_limits_hold_per_group_and_member() {
    let limits = SyncLimits::default();
    let (g, h) = (GroupId([1; 32]), GroupId([2; 32]));
    let (a, b) = (
        umbra_protocol::wire::AccountId::from_bytes([3; 16]),
        umbra_protocol::wire::AccountId::from_bytes([4; 16]),
    );
    let t = 1_000_000;
    assert!(limits.may_answer(&g, &a, t));
    // The same member again, sooner than the interval: no.
    assert!(!limits.may_answer(&g, &a, t + 1));
    assert!(!limits.may_answer(&g, &a, t + 59_999));
    // Another member, another group: their own budget.
    assert!(limits.may_answer(&g, &b, t + 1));
    assert!(limits.may_answer(&h, &a, t + 1));
    // After the interval (the ask interval), once more.
    assert!(limits.may_answer(&g, &a, t + 60_000));
    // Asking has its own limit, noted only when a request is queued.
    assert!(limits.may_ask(&g, &a, t));
    assert!(limits.may_ask(&g, &a, t + 1));
    // A marker nobody asked for is not taken; one asked for, once.
    assert!(!limits.take_done(&g, &a));
    limits.asked(&g, &a, t);
    assert!(!limits.take_done(&g, &b));
    assert!(limits.take_done(&g, &a));
    assert!(!limits.take_done(&g, &a));
    assert!(!limits.may_ask(&g, &a, t + 59_999));
    assert!(limits.may_ask(&g, &a, t + 60_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_request_inside_the_interval_is_not_answered() {
    let Team {
        dir: _dir,
        relay: _relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    let created = *state_of(&alice, &group).await.head();
    alice.rename_group(&group, "one").await.expect("rename");
    let engine = &alice.inner;
    let contact = engine
        .contact_by_account(bob.whoami().account_id.as_bytes())
        .await
        .expect("store")
        .expect("bob is a contact");
    let ask = || Content::GroupSync {
        group,
        have: created,
        version: 0,
    };
    let mut answers = Vec::new();
    for _ in 0..3 {
        let mut replies = Vec::new();
        let mut txn = crate::store::Txn::new();
        super::inbound::accept_content(
            engine,
            &mut txn,
            (&contact, umbra_protocol::wire::DeviceId::PRIMARY),
            &contact.pinned,
            "bob",
            ask(),
            &mut replies,
        )
        .await
        .map_err(|_| "refused")
        .expect("accepted");
        answers.push(replies.len());
    }
    // The first is answered (the rename, then the end), the repeats are
    // not.
    assert_eq!(answers, vec![2, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_welcome_was_not_sent_gets_it_with_the_next_message() {
    let Team {
        dir: _dir,
        relay: _relay,
        url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    let dave = register(&url, "dave").await;
    let dave_id = dave.whoami().account_id;
    // Alice adds dave, but nothing reaches him (as when no session with
    // him could be made): bob and carol get the Add, dave no welcome.
    let engine = &alice.inner;
    let pending = {
        let _guard = engine.op_lock.lock().await;
        let mut rec = engine.groups.require(&group).await.expect("group");
        let me = alice.whoami().account_id;
        let newcomer = umbra_protocol::group::NewMember {
            account: dave_id,
            username: "dave".parse().expect("name"),
        };
        let add = GroupChange::add(&engine.identity, me, rec.state(), vec![newcomer]).expect("add");
        rec.log
            .apply(add.clone(), &engine.identity.public())
            .expect("applies");
        let others: Vec<_> = rec
            .state()
            .members()
            .iter()
            .filter(|m| m.account != me && m.account != dave_id)
            .map(|m| (m.account, m.username.clone()))
            .collect();
        let mut bundles = Default::default();
        engine
            .commit_change(rec, &add, &others, &[], &mut bundles)
            .await
            .expect("committed")
    };
    engine.finish_change(pending).await.expect("sent");
    assert!(dave.groups().await.expect("groups").is_empty());
    // Asked by dave with no state, alice (who made the Add) would answer
    // with its welcome; bob, a member no Add of hers lists, gets nothing so.
    let rec = engine.groups.require(&group).await.expect("group");
    let me = alice.whoami().account_id;
    let to_dave = answer(&rec, &dave_id, &me, &ChangeHash::ZERO, 0);
    assert!(
        matches!(
            to_dave.as_slice(),
            [Content::GroupWelcome { .. }, Content::GroupSyncDone { .. }]
        ),
        "{to_dave:?}"
    );
    let bob_id = bob.whoami().account_id;
    let to_bob = answer(&rec, &bob_id, &me, &ChangeHash::ZERO, 0);
    assert!(
        matches!(to_bob.as_slice(), [Content::GroupSyncDone { .. }]),
        "no welcome, only the end: {to_bob:?}"
    );
    // Alice's next message: dave lacks her sender key, so the welcome goes
    // again ahead of it, and dave reads the message.
    alice
        .send_group_text(&group, "welcome, dave")
        .await
        .expect("send");
    let mut events = Vec::new();
    let read = |events: &[crate::Event]| {
        events.iter().any(
            |e| matches!(e, crate::Event::GroupMessage { body, .. } if body == "welcome, dave"),
        )
    };
    for _ in 0..10 {
        events.extend(receive(&dave).await);
        if read(&events) {
            break;
        }
    }
    assert!(read(&events), "{events:?}");
    assert_eq!(
        state_of(&dave, &group).await,
        state_of(&alice, &group).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_behind_asks_once_inside_the_interval() {
    let Team {
        dir: _dir,
        relay: _relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    let created = *state_of(&alice, &group).await.head();
    rename_past_bob(&alice, &carol, &group, "one").await;
    rename_past_bob(&alice, &carol, &group, "two").await;
    let rec = alice.inner.groups.require(&group).await.expect("group");
    let later = rec.log.chain_above(&created, 2).expect("on chain")[1].clone();
    let engine = &bob.inner;
    let contact = engine
        .contact_by_account(alice.whoami().account_id.as_bytes())
        .await
        .expect("store")
        .expect("alice is a contact");
    let mut asks = Vec::new();
    for _ in 0..3 {
        let mut replies = Vec::new();
        let mut txn = crate::store::Txn::new();
        super::inbound::accept_content(
            engine,
            &mut txn,
            (&contact, umbra_protocol::wire::DeviceId::PRIMARY),
            &contact.pinned,
            "alice",
            Content::GroupControl {
                change: later.as_bytes().to_vec(),
            },
            &mut replies,
        )
        .await
        .map_err(|_| "refused")
        .expect("held pending");
        asks.push(
            replies
                .iter()
                .filter(|c| matches!(c, Content::GroupSync { have, .. } if *have == created))
                .count(),
        );
    }
    // Held pending each time (nothing committed here), asked about once.
    assert_eq!(asks, vec![1, 0, 0]);
}
