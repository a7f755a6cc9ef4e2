//! Catching up (docs/PROTOCOL.md §8.15) against a real relay in this
//! process, for what a review found: a welcome sent again must not revive
//! a member that left, a member behind is not asked, and the sync limits
//! are recorded only when they are used.

use umbra_protocol::group::GroupChange;

use crate::Client;

use super::manager::Membership;
use super::tests::{receive, register, state_of, team, Team};
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
