//! Catching up (docs/PROTOCOL.md §8.15) against a real relay in this
//! process, for what a review found: a welcome sent again must not revive
//! a member that left, a member behind is not asked, and the sync limits
//! are recorded only when they are used.

use std::time::Duration;

use umbra_protocol::content::Content;
use umbra_protocol::group::{ChangeHash, GroupChange};
use umbra_protocol::wire::AccountId;

use crate::Client;

use super::manager::Membership;
use super::sync::{answer, text_shows_more, tracked, SyncLimits};
use super::tests::{receive, refusals, register, state_of, team, Team};
use super::tests_sync::rename_past_bob;
use super::GroupId;

/// `member` leaves `group`, its Leave sent to `only` (as if every other
/// copy had been lost).
async fn leave_past(member: &Client, only: &Client, group: &GroupId) {
    change_past(member, only, group, |id, me, state| {
        GroupChange::leave(id, me, state)
    })
    .await;
}

/// `member` makes the change `build` gives on its head and sends it to
/// `only` (as if every other copy had been lost).
async fn change_past<F>(member: &Client, only: &Client, group: &GroupId, build: F)
where
    F: Fn(
        &umbra_protocol::identity::IdentityKeyPair,
        AccountId,
        &umbra_protocol::group::GroupState,
    ) -> Result<GroupChange, umbra_protocol::group::GroupChangeError>,
{
    let engine = &member.inner;
    let only_id = only.whoami().account_id;
    let rec = engine.groups.require(group).await.expect("group");
    let name = rec
        .state()
        .member(&only_id)
        .expect("listed")
        .username
        .clone();
    // Network first, as a change does: `only` may have no session yet.
    let mut bundles = engine
        .member_bundles(&[(only_id, name.clone())])
        .await
        .expect("bundles");
    let pending = {
        let _guard = engine.op_lock.lock().await;
        let mut rec = engine.groups.require(group).await.expect("group");
        let me = member.whoami().account_id;
        let change = build(&engine.identity, me, rec.state()).expect("built");
        rec.log
            .apply(change.clone(), &engine.identity.public())
            .expect("applies");
        engine
            .commit_change(rec, &change, &[(only_id, name)], &[], &mut bundles)
            .await
            .expect("committed")
    };
    engine.finish_change(pending).await.expect("sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_sent_again_does_not_revive_a_member_another_admin_removed() {
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
    alice
        .promote_member(&group, &"carol".parse().expect("name"))
        .await
        .expect("promote");
    let dave = register(&url, "dave").await;
    alice
        .add_members(&group, &["dave".parse().expect("name")])
        .await
        .expect("add");
    receive(&carol).await;
    receive(&dave).await;
    // Carol removes dave; only dave hears of it: alice still lists him.
    let dave_id = dave.whoami().account_id;
    change_past(&carol, &dave, &group, |id, me, state| {
        GroupChange::remove(id, me, state, vec![dave_id])
    })
    .await;
    receive(&dave).await;
    let removed = state_of(&dave, &group).await;
    let rec = dave.inner.groups.require(&group).await.expect("group");
    assert!(matches!(rec.membership, Membership::Removed(_)));
    // Alice's first text: dave lacks her key, her Add's welcome goes again.
    alice.send_group_text(&group, "hello").await.expect("send");
    receive(&dave).await;
    let rec = dave.inner.groups.require(&group).await.expect("group");
    assert!(matches!(rec.membership, Membership::Removed(_)));
    assert_eq!(rec.state(), &removed);
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
    assert_eq!(refusals(&events), Vec::new());
    assert_eq!(state_of(&carol, &group).await, ahead);
    // Asked by carol (as a client that still asks would), bob, behind her,
    // sends nothing: none of his changes could connect.
    let bob_rec = bob.inner.groups.require(&group).await.expect("group");
    let (bob_id, carol_id) = (bob.whoami().account_id, carol.whoami().account_id);
    assert!(answer(&bob_rec, &carol_id, &bob_id, ahead.head(), ahead.version()).is_empty());
}

#[test]
fn the_sync_limits_forget_by_count_when_many_share_one_time() {
    let limits = SyncLimits::default();
    let group = GroupId([1; 32]);
    let tracked_max = crate::consts::GROUP_SYNC_TRACKED;
    let member = |i: usize| {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        AccountId::from_bytes(bytes)
    };
    // Every pair answered at one instant, then one more.
    for i in 0..tracked_max {
        assert!(limits.may_answer(&group, &member(i), 1_000));
    }
    assert!(limits.may_answer(&group, &member(tracked_max), 1_001));
    // Half is forgotten, not all: the newest pair and half the others
    // are still limited.
    assert_eq!(tracked(&limits).1, tracked_max / 2 + 1);
    assert!(!limits.may_answer(&group, &member(tracked_max), 1_002));
}

/// Bob's view of alice, and a change of alice's that bob lacks the parent
/// of (held pending when it arrives).
async fn a_pending_change_for_bob(team: &Team) -> (crate::trust::ContactRecord, GroupChange) {
    let (alice, bob, carol, group) = (&team.alice, &team.bob, &team.carol, &team.group);
    receive(bob).await;
    receive(carol).await;
    let created = *state_of(alice, group).await.head();
    rename_past_bob(alice, carol, group, "one").await;
    rename_past_bob(alice, carol, group, "two").await;
    let rec = alice.inner.groups.require(group).await.expect("group");
    let later = rec.log.chain_above(&created, 2).expect("on chain")[1].clone();
    let contact = bob
        .inner
        .contact_by_account(alice.whoami().account_id.as_bytes())
        .await
        .expect("store")
        .expect("alice is a contact");
    (contact, later)
}

async fn asks_on(
    bob: &Client,
    contact: &crate::trust::ContactRecord,
    change: &GroupChange,
) -> usize {
    let mut replies = Vec::new();
    let mut txn = crate::store::Txn::new();
    super::inbound::accept_content(
        &bob.inner,
        &mut txn,
        (contact, umbra_protocol::wire::DeviceId::PRIMARY),
        &contact.pinned,
        "alice",
        Content::GroupControl {
            change: change.as_bytes().to_vec(),
        },
        &mut replies,
    )
    .await
    .map_err(|_| "refused")
    .expect("held pending");
    replies
        .iter()
        .filter(|c| matches!(c, Content::GroupSync { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_cannot_be_sent_takes_no_ask_budget() {
    let team = team().await;
    let (contact, later) = a_pending_change_for_bob(&team).await;
    let bob = &team.bob;
    // Alice's key changed and bob has not decided: no reply can go.
    let mut changed = contact.clone();
    changed.trust = crate::contact::TrustLevel::Changed;
    asks_on(bob, &changed, &later).await;
    assert_eq!(tracked(&bob.inner.groups.sync).0, 0);
    // Once alice may be sent to again, bob asks at once.
    assert_eq!(asks_on(bob, &contact, &later).await, 1);
    assert_eq!(asks_on(bob, &contact, &later).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_owed_nothing_takes_no_answer_entry() {
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
    alice
        .remove_member(&group, &"carol".parse().expect("name"))
        .await
        .expect("remove");
    alice.rename_group(&group, "after").await.expect("rename");
    let engine = &alice.inner;
    let contact = engine
        .contact_by_account(carol.whoami().account_id.as_bytes())
        .await
        .expect("store")
        .expect("carol is a contact");
    // Carol, removed, asks from alice's head: she is owed nothing.
    let head = *state_of(&alice, &group).await.head();
    let version = state_of(&alice, &group).await.version();
    for _ in 0..3 {
        let mut replies = Vec::new();
        let mut txn = crate::store::Txn::new();
        super::inbound::accept_content(
            engine,
            &mut txn,
            (&contact, umbra_protocol::wire::DeviceId::PRIMARY),
            &contact.pinned,
            "carol",
            Content::GroupSync {
                group,
                have: head,
                version,
            },
            &mut replies,
        )
        .await
        .map_err(|_| "refused")
        .expect("accepted");
        assert!(replies.is_empty());
    }
    assert_eq!(tracked(&engine.groups.sync).1, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_re_add_after_a_removal_is_no_restored_membership() {
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
    alice
        .remove_member(&group, &"bob".parse().expect("name"))
        .await
        .expect("remove");
    receive(&bob).await;
    let bob_id = bob.whoami().account_id;
    let rec = bob.inner.groups.require(&group).await.expect("group");
    assert!(matches!(rec.membership, Membership::Removed(_)));
    // Alice adds bob again; the Add reaches him as a plain change (as a
    // sync answer would bring it), not as a welcome.
    let engine = &alice.inner;
    let (pending, add) = {
        let _guard = engine.op_lock.lock().await;
        let mut rec = engine.groups.require(&group).await.expect("group");
        let me = alice.whoami().account_id;
        let bob_again = umbra_protocol::group::NewMember {
            account: bob_id,
            username: "bob".parse().expect("name"),
        };
        let add =
            GroupChange::add(&engine.identity, me, rec.state(), vec![bob_again]).expect("add");
        rec.log
            .apply(add.clone(), &engine.identity.public())
            .expect("applies");
        let carol_id = carol.whoami().account_id;
        let to = [(carol_id, "carol".parse().expect("name"))];
        let mut bundles = Default::default();
        let pending = engine
            .commit_change(rec, &add, &to, &[], &mut bundles)
            .await
            .expect("committed");
        (pending, add)
    };
    engine.finish_change(pending).await.expect("sent");
    super::tests::deliver(&alice, &bob, &add).await;
    let events = receive(&bob).await;
    let rec = bob.inner.groups.require(&group).await.expect("group");
    assert_eq!(rec.membership, Membership::Active);
    // We were added: a membership change, not an undone removal.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, crate::Event::GroupMembershipRestored { .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, crate::Event::GroupMembershipChanged { .. })),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_with_an_all_zero_head_is_not_asked_about() {
    let team = team().await;
    let rec = team
        .alice
        .inner
        .groups
        .require(&team.group)
        .await
        .expect("group");
    let version = rec.state().version();
    // No state has it as its head, whatever version comes with it.
    for v in [version, version + 1, u64::MAX] {
        assert!(!text_shows_more(&rec, &ChangeHash::ZERO, v));
    }
    // An unknown real head at our version is asked about.
    assert!(text_shows_more(&rec, &ChangeHash([7; 32]), version));
}
