//! Catching up (docs/PROTOCOL.md §8.15) against a real relay in this
//! process, for what a review found: a welcome sent again must not revive
//! a member that left, a member behind is not asked, and the sync limits
//! are recorded only when they are used.

use std::time::Duration;

use umbra_protocol::group::GroupChange;

use crate::Client;

use super::manager::Membership;
use super::sync::{answer, text_shows_more};
use super::tests::{receive, refusals, register, state_of, team, Team};
use super::tests_sync::rename_past_bob;
use super::GroupId;

/// `member` leaves `group`, its Leave sent to `only` (as if every other
/// copy had been lost).
async fn leave_past(member: &Client, only: &Client, group: &GroupId) {
    let engine = &member.inner;
    let only_id = only.whoami().account_id;
    let pending = {
        let _guard = engine.op_lock.lock().await;
        let mut rec = engine.groups.require(group).await.expect("group");
        let me = member.whoami().account_id;
        let change = GroupChange::leave(&engine.identity, me, rec.state()).expect("leave");
        rec.log
            .apply(change.clone(), &engine.identity.public())
            .expect("applies");
        let name = rec
            .state()
            .member(&only_id)
            .expect("listed")
            .username
            .clone();
        let mut bundles = Default::default();
        engine
            .commit_change(rec, &change, &[(only_id, name)], &[], &mut bundles)
            .await
            .expect("committed")
    };
    engine.finish_change(pending).await.expect("sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_sent_again_does_not_revive_a_member_that_left() {
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
    alice
        .add_members(&group, &["dave".parse().expect("name")])
        .await
        .expect("add");
    receive(&dave).await;
    alice
        .remove_member(&group, &"carol".parse().expect("name"))
        .await
        .expect("remove");
    receive(&dave).await;
    // Dave leaves, but his Leave reaches bob only: alice still lists him.
    leave_past(&dave, &bob, &group).await;
    let left = state_of(&dave, &group).await;
    // Alice's next text: dave lacks her (rotated) key, so her Add's
    // welcome, of the state before his Leave, goes again ahead of it.
    alice.send_group_text(&group, "hello").await.expect("send");
    receive(&dave).await;
    let rec = dave.inner.groups.require(&group).await.expect("group");
    assert_eq!(rec.membership, Membership::Left);
    assert_eq!(rec.state(), &left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_from_a_member_behind_our_window_is_not_asked_about() {
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
    for name in ["one", "two", "three"] {
        alice.rename_group(&group, name).await.expect("rename");
    }
    receive(&bob).await;
    receive(&carol).await;
    // More changes than a window holds reach carol and not bob: bob's
    // head (version 3) is below carol's base.
    let window = umbra_protocol::consts::REORG_WINDOW as u64;
    for i in 0..=window {
        rename_past_bob(&alice, &carol, &group, &format!("n{i}")).await;
    }
    let mut events = receive(&carol).await;
    let ahead = state_of(&carol, &group).await;
    assert_eq!(ahead.version(), 4 + window);
    let rec = carol.inner.groups.require(&group).await.expect("group");
    let behind = *state_of(&bob, &group).await.head();
    assert!(!rec.log.knows_head(&behind));
    assert!(!text_shows_more(&rec, &behind, 3));
    // Bob, behind, writes; carol reads it and does not ask him, so no
    // answer of changes older than her window comes back refused.
    bob.send_group_text(&group, "am I late?")
        .await
        .expect("send");
    for _ in 0..3 {
        events.extend(receive(&carol).await);
        carol
            .flush_outbox(Duration::from_secs(30))
            .await
            .expect("flushed");
        receive(&bob).await;
        bob.flush_outbox(Duration::from_secs(30))
            .await
            .expect("flushed");
    }
    events.extend(receive(&carol).await);
    assert!(events
        .iter()
        .any(|e| matches!(e, crate::Event::GroupMessage { body, .. } if body == "am I late?")));
    assert_eq!(refusals(&events), Vec::<String>::new());
    assert_eq!(state_of(&carol, &group).await, ahead);
    // Asked by carol (as a client that still asks would), bob, behind her,
    // sends nothing: none of his changes could connect.
    let bob_rec = bob.inner.groups.require(&group).await.expect("group");
    let (bob_id, carol_id) = (bob.whoami().account_id, carol.whoami().account_id);
    assert!(answer(&bob_rec, &carol_id, &bob_id, ahead.head(), ahead.version()).is_empty());
}
