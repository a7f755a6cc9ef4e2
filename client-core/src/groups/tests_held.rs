//! Items held for a membership we missed (docs/PROTOCOL.md §8.15, "Held
//! for membership"), against a real relay in this process: a new member
//! whose Add never reached bob has its sender key and first message held
//! (not acknowledged), bob asks an admin, and once the Add arrives the
//! relay's redelivery opens both in order; held items that no state makes
//! a member are dropped after the lifetime, naming why; the limits hold.

use std::time::Duration;

use umbra_protocol::group::{GroupChange, NewMember};
use umbra_protocol::wire::AccountId;

use crate::consts::{
    GROUP_HELD_LIFETIME, GROUP_HELD_PER_GROUP, GROUP_HELD_PER_SENDER, GROUP_HELD_TOTAL,
};
use crate::{Client, DecryptFailure, Event, GroupRefusal, PeerRef};

use super::held::{Held, Hold};
use super::tests::{receive, register, state_of, team, Team};
use super::GroupId;

/// `admin` adds `new` to `group`, sending the Add to `also` and the welcome
/// to `new` only (as if every other member's copy had been lost).
async fn add_past(admin: &Client, new: &Client, also: &Client, group: &GroupId) {
    let engine = &admin.inner;
    let (new_id, also_id) = (new.whoami().account_id, also.whoami().account_id);
    let rec = engine.groups.require(group).await.expect("group");
    let also_name = rec
        .state()
        .member(&also_id)
        .expect("listed")
        .username
        .clone();
    let new_name = new.whoami().username.clone();
    let recipients = [(also_id, also_name), (new_id, new_name.clone())];
    let mut bundles = engine.member_bundles(&recipients).await.expect("bundles");
    let pending = {
        let _guard = engine.op_lock.lock().await;
        let mut rec = engine.groups.require(group).await.expect("group");
        let me = admin.whoami().account_id;
        let member = NewMember {
            account: new_id,
            username: new_name,
        };
        let change =
            GroupChange::add(&engine.identity, me, rec.state(), vec![member]).expect("add");
        rec.log
            .apply(change.clone(), &engine.identity.public())
            .expect("applies");
        engine
            .commit_change(rec, &change, &recipients, &[new_id], &mut bundles)
            .await
            .expect("committed")
    };
    engine.finish_change(pending).await.expect("sent");
}

/// What `client` receives over up to ten rounds, until `done` holds for
/// everything so far (a loaded relay may take a retry to accept a send).
async fn receive_until(client: &Client, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let mut events = Vec::new();
    for _round in 0..10 {
        events.extend(receive(client).await);
        if done(&events) {
            break;
        }
    }
    events
}

/// Receives on `client` until its state of `group` satisfies `done`.
async fn receive_until_state(
    client: &Client,
    group: &GroupId,
    done: impl Fn(&umbra_protocol::group::GroupState) -> bool,
) {
    for _round in 0..10 {
        if let Ok(Some(rec)) = client.inner.groups.get(group).await {
            if done(rec.state()) {
                return;
            }
        }
        receive(client).await;
    }
    panic!("the state of the group never got there");
}

fn texts(events: &[Event], group: &GroupId) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupMessage {
                group: g,
                from,
                body,
                ..
            } if g == group => Some((from.clone(), body.clone())),
            _ => None,
        })
        .collect()
}

/// Whether `events` hold a refusal of dave's sender key (kept if `kept`).
fn key_refused(events: &[Event], kept: bool) -> bool {
    events.iter().any(|e| match e {
        Event::DecryptionFailed { reason, .. } => {
            let is_kept = matches!(reason, DecryptFailure::Kept { .. });
            is_kept == kept
                && matches!(
                    reason.cause(),
                    DecryptFailure::Group(GroupRefusal::SenderKeyFromNonMember)
                )
        }
        _ => false,
    })
}

/// Team, plus dave added by alice past bob, dave's first text sent.
async fn dave_added_past_bob() -> (Team, Client) {
    let team = team().await;
    let (bob_id, carol_id) = (team.bob.whoami().account_id, team.carol.whoami().account_id);
    receive_until_state(&team.bob, &team.group, |s| s.is_member(&bob_id)).await;
    receive_until_state(&team.carol, &team.group, |s| s.is_member(&carol_id)).await;
    let dave = register(&team.url, "dave").await;
    let dave_id = dave.whoami().account_id;
    add_past(&team.alice, &dave, &team.carol, &team.group).await;
    // Alice, who would answer bob's request at once, is offline until a
    // test lets her read.
    team.alice.shutdown().await;
    receive_until_state(&team.carol, &team.group, |s| s.is_member(&dave_id)).await;
    receive_until_state(&dave, &team.group, |s| s.is_member(&bob_id)).await;
    dave.send_group_text(&team.group, "hi from dave")
        .await
        .expect("send");
    (team, dave)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_members_key_and_text_are_held_until_the_missed_add_arrives() {
    let (team, dave) = dave_added_past_bob().await;
    let Team {
        alice, bob, group, ..
    } = &team;
    let dave_id = dave.whoami().account_id;
    // Bob's state does not list dave: his key is held, not refused.
    let events = receive_until(bob, |e| key_refused(e, true)).await;
    assert!(key_refused(&events, true), "held: {events:?}");
    assert!(texts(&events, group).is_empty());
    assert!(!state_of(bob, group).await.is_member(&dave_id));
    // Bob asked an admin; alice answers with the Add; bob applies it.
    bob.flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    receive(alice).await;
    alice
        .flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    receive(bob).await;
    assert_eq!(state_of(bob, group).await, state_of(alice, group).await);
    // The relay delivers the held items again on the next connection:
    // the key, then the text it opens.
    bob.shutdown().await;
    let events = receive(bob).await;
    assert_eq!(
        texts(&events, group),
        vec![("dave".to_owned(), "hi from dave".to_owned())],
        "{events:?}"
    );
    assert_eq!(bob.inner.groups.held.len(), 0, "released once opened");
    // Nothing is left to come again.
    bob.shutdown().await;
    assert!(texts(&receive(bob).await, group).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_key_no_state_makes_a_member_is_dropped_after_the_lifetime() {
    let (team, _dave) = dave_added_past_bob().await;
    let Team { bob, group, .. } = &team;
    let events = receive_until(bob, |e| key_refused(e, true)).await;
    assert!(key_refused(&events, true), "held: {events:?}");
    // No one answers bob (alice stays offline); a day later the key comes
    // again and is dropped, with why, and acknowledged.
    bob.inner.clock.advance(GROUP_HELD_LIFETIME);
    bob.shutdown().await;
    let events = receive(bob).await;
    assert!(key_refused(&events, false), "dropped: {events:?}");
    bob.shutdown().await;
    let events = receive(bob).await;
    assert!(
        !key_refused(&events, true) && !key_refused(&events, false),
        "acknowledged, not delivered again: {events:?}"
    );
    assert!(texts(&events, group).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_we_saw_removed_is_not_held() {
    let Team {
        alice,
        bob,
        carol,
        group,
        ..
    } = team().await;
    let (bob_id, carol_id) = (bob.whoami().account_id, carol.whoami().account_id);
    receive_until_state(&bob, &group, |s| s.is_member(&bob_id)).await;
    receive_until_state(&carol, &group, |s| s.is_member(&carol_id)).await;
    carol.send_group_text(&group, "before").await.expect("send");
    receive_until(&bob, |e| !texts(e, &group).is_empty()).await;
    // Carol is removed while offline, then sends before she learns.
    carol.shutdown().await;
    let carol_ref: PeerRef = "carol".parse().expect("name");
    alice
        .remove_member(&group, &carol_ref)
        .await
        .expect("remove");
    receive_until_state(&bob, &group, |s| !s.is_member(&carol_id)).await;
    carol.send_group_text(&group, "after").await.expect("send");
    let refused = |events: &[Event]| {
        events.iter().any(|e| {
            matches!(
                e,
                Event::DecryptionFailed {
                    reason: DecryptFailure::Group(GroupRefusal::NotMember),
                    ..
                }
            )
        })
    };
    let events = receive_until(&bob, refused).await;
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::DecryptionFailed {
                reason: DecryptFailure::Kept { .. },
                ..
            }
        )),
        "not held: {events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::DecryptionFailed {
                reason: DecryptFailure::Group(GroupRefusal::NotMember),
                ..
            }
        )),
        "refused at once: {events:?}"
    );
    assert_eq!(bob.inner.groups.held.len(), 0);
}

#[test]
fn the_hold_limits_hold() {
    let held = Held::default();
    let group = |n: u8| GroupId([n; 32]);
    let sender = |n: u8| AccountId::from_bytes([n; 16]);
    let key = |n: usize| {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&(n as u64).to_le_bytes());
        k
    };
    let now = 1_000_000;
    let mut n = 0;
    let mut next = || {
        n += 1;
        key(n)
    };
    // Per sender.
    for _ in 0..GROUP_HELD_PER_SENDER {
        assert_eq!(held.hold(&group(1), &sender(1), next(), now), Hold::Held);
    }
    assert_eq!(held.hold(&group(1), &sender(1), next(), now), Hold::Full);
    // A redelivery of a held item is still held, and takes nothing more.
    assert_eq!(held.hold(&group(1), &sender(1), key(1), now), Hold::Held);
    // Per group.
    let mut s = 2;
    while held.len() < GROUP_HELD_PER_GROUP {
        let _ = held.hold(&group(1), &sender(s), next(), now);
        if held.len() % GROUP_HELD_PER_SENDER == 0 {
            s += 1;
        }
    }
    assert_eq!(held.hold(&group(1), &sender(200), next(), now), Hold::Full);
    // In all.
    let mut g = 2;
    while held.len() < GROUP_HELD_TOTAL {
        for s in 0..(GROUP_HELD_PER_GROUP / GROUP_HELD_PER_SENDER) as u8 {
            for _ in 0..GROUP_HELD_PER_SENDER {
                let _ = held.hold(&group(g), &sender(s), next(), now);
            }
        }
        g += 1;
    }
    assert_eq!(held.len(), GROUP_HELD_TOTAL);
    assert_eq!(
        held.hold(&group(250), &sender(250), next(), now),
        Hold::Full
    );
    // A release makes room.
    held.release(&key(1));
    assert_eq!(
        held.hold(&group(250), &sender(250), next(), now),
        Hold::Held
    );
    // After the lifetime an item comes again expired, and the others are
    // forgotten by the next hold.
    let later = now + crate::consts::millis(GROUP_HELD_LIFETIME);
    assert_eq!(
        held.hold(&group(1), &sender(1), key(2), later),
        Hold::Expired
    );
    assert_eq!(held.hold(&group(9), &sender(9), next(), later), Hold::Held);
    assert_eq!(held.len(), 1);
}
