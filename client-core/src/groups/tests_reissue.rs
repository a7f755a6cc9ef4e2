//! A change of ours that lost the fork choice, made again (`reissue.rs`),
//! against a real relay in this process (the helpers are `tests.rs`'s): a
//! try that fails for a reason a later try may not meet (the relay is down
//! and the change must reach a member we have no session with yet) keeps
//! the change in the stored group record, and the next try makes it; a
//! change the group refuses for good is dropped, and the user is told.
//!
//! The lost fork choice itself is `tests_events.rs`'s; here the change is
//! listed in the record directly, as `inbound.rs` lists it.

use std::time::Duration;

use umbra_protocol::group::{GroupAction, GroupChange, NewMember};
use umbra_relay::config::Settings;

use crate::store::Txn;
use crate::{Client, Event};

use super::tests::{receive, register, relay_with, state_of, team, Team};
use super::GroupId;

/// Lists `change` as one of `client`'s changes that lost the fork choice.
async fn list_superseded(client: &Client, group: &GroupId, change: &GroupChange) {
    let engine = &client.inner;
    let _guard = engine.op_lock.lock().await;
    let mut record = engine.groups.require(group).await.expect("group");
    record
        .superseded
        .push(serde_bytes::ByteBuf::from(change.as_bytes().to_vec()));
    let mut txn = Txn::new();
    engine.groups.put(&mut txn, &record).expect("put");
    engine.vault.commit(txn).await.expect("commit");
}

/// How many superseded changes `client`'s stored record of `group` lists.
async fn listed(client: &Client, group: &GroupId) -> usize {
    client
        .inner
        .groups
        .require(group)
        .await
        .expect("group")
        .superseded
        .len()
}

/// The `reissued` of each `GroupChangeSuperseded` in `events`.
fn superseded(events: &[Event]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupChangeSuperseded { reissued, .. } => Some(*reissued),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_again_while_offline_is_kept_and_made_on_the_next_try() {
    let Team {
        dir,
        relay,
        url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    // Dave is registered; alice has no session with him yet, so adding
    // him needs the relay (his name checked, a bundle claimed).
    let dave = register(&url, "dave").await;
    let alice_id = alice.whoami().account_id;
    let dave_id = dave.whoami().account_id;
    let add = GroupChange::build(
        &alice.inner.identity,
        alice_id,
        &state_of(&alice, &group).await,
        GroupAction::Add {
            members: vec![NewMember {
                account: dave_id,
                username: "dave".parse().expect("name"),
            }],
        },
    )
    .expect("an add");
    list_superseded(&alice, &group, &add).await;
    // The relay goes down: the try fails for a reason a later one may not
    // meet, and the change stays listed, in the store. (The others are
    // stopped first: their receives later connect anew instead of waiting
    // out a reconnection backoff.)
    for client in [&bob, &carol, &dave] {
        client.shutdown().await;
    }
    let addr = relay.local_addr;
    relay.shutdown();
    relay.wait().await;
    let deferred = alice
        .inner
        .reissue_superseded()
        .await
        .expect("the round runs");
    let error = deferred.expect("the failure is handed to the pump");
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(listed(&alice, &group).await, 1, "the change is kept");
    assert!(!state_of(&alice, &group).await.is_member(&dave_id));
    // The relay is back (same address, same data): the outbox pump makes
    // the change again on connecting, and sends it.
    alice.shutdown().await;
    let relay = relay_with(
        &dir,
        Settings {
            listen: Some(addr),
            ..Settings::default()
        },
    )
    .await;
    // (Polled: the pump runs on its own task once alice is connected.)
    let mut made = Vec::new();
    for _round in 0..100 {
        made.extend(superseded(&receive(&alice).await));
        if !made.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(made, vec![true], "made again once, told once");
    assert_eq!(listed(&alice, &group).await, 0, "no longer listed");
    assert!(state_of(&alice, &group).await.is_member(&dave_id));
    alice
        .flush_outbox(Duration::from_secs(60))
        .await
        .expect("flushed");
    receive(&dave).await;
    assert!(dave.group(&group).await.expect("welcomed").active);
    receive(&bob).await;
    assert!(state_of(&bob, &group).await.is_member(&dave_id));
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_group_refuses_for_good_is_dropped_and_the_user_told() {
    let Team {
        dir: _dir,
        relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    receive(&alice).await;
    let parent = state_of(&alice, &group).await;
    let rename = GroupChange::rename(
        &alice.inner.identity,
        alice.whoami().account_id,
        &parent,
        "crew",
    )
    .expect("rename");
    // Meanwhile the group got that name: the change no longer changes
    // anything.
    alice.rename_group(&group, "crew").await.expect("rename");
    receive(&alice).await;
    list_superseded(&alice, &group, &rename).await;
    let version = state_of(&alice, &group).await.version();
    let deferred = alice.inner.reissue_superseded().await.expect("the round");
    assert!(deferred.is_none(), "nothing to retry: {deferred:?}");
    assert_eq!(listed(&alice, &group).await, 0, "dropped");
    assert_eq!(state_of(&alice, &group).await.version(), version);
    assert_eq!(superseded(&receive(&alice).await), vec![false]);
    relay.shutdown();
    relay.wait().await;
}
