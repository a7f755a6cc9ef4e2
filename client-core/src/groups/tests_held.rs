//! Items held for a membership we missed (docs/PROTOCOL.md §8.15, "Held
//! for membership"), against a real relay in this process: a new member
//! whose Add never reached bob has its sender key and first message held
//! (not acknowledged), bob asks an admin (not one he blocked), and once
//! the Add arrives the relay's redelivery opens both in order; held items
//! that no state makes a member are dropped after the lifetime, naming
//! why; throwaway accounts
//! that fill the slots do not keep a new member's key out, and a sync
//! completed by an answerer that lags loses no new member's key (the
//! limits themselves: `tests_held_limits.rs`).

use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::content::Content;
use umbra_protocol::group::{GroupChange, GroupSender, NewMember};
use umbra_protocol::wire::Username;

use crate::consts::{GROUP_HELD_LIFETIME, GROUP_HELD_PER_GROUP, GROUP_HELD_PER_SENDER};
use crate::store::Txn;
use crate::{Client, DecryptFailure, Event, GroupRefusal, PeerRef};

use super::tests::{receive, register, state_of, team, Team};
use super::GroupId;

/// `admin` adds `new` to `group`, sending the Add to `also` and the welcome
/// to `new` only (as if every other member's copy had been lost).
async fn add_past(admin: &Client, new: &Client, also: &Client, group: &GroupId) {
    add_past_all(admin, new, Some(also), group).await;
}

/// `admin` adds `new` to `group`, sending the Add to `also` (if any) and
/// the welcome to `new` only.
async fn add_past_all(admin: &Client, new: &Client, also: Option<&Client>, group: &GroupId) {
    let engine = &admin.inner;
    let new_id = new.whoami().account_id;
    let rec = engine.groups.require(group).await.expect("group");
    let new_name = new.whoami().username.clone();
    let mut recipients = vec![(new_id, new_name.clone())];
    if let Some(also) = also {
        let also_id = also.whoami().account_id;
        let listed = rec.state().member(&also_id).expect("listed");
        recipients.insert(0, (also_id, listed.username.clone()));
    }
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

/// How long a test waits for a state or an event before giving up: long
/// enough for a relay on a loaded machine (each receive returns as soon as
/// the stream settles, so a count of rounds can run out before a slow send
/// lands), short enough to fail rather than hang.
const PATIENCE: Duration = Duration::from_secs(60);

/// What `client` receives until `done` holds for everything so far, or
/// until [`PATIENCE`] runs out (the caller's assertions then say what is
/// missing).
pub(super) async fn receive_until(client: &Client, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut events = Vec::new();
    while tokio::time::Instant::now() < deadline {
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
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut events = Vec::new();
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(rec)) = client.inner.groups.get(group).await {
            if done(rec.state()) {
                return;
            }
        }
        events.extend(receive(client).await);
    }
    panic!("the state of the group never got there; received: {events:?}");
}

pub(super) fn texts(events: &[Event], group: &GroupId) -> Vec<(String, String)> {
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
pub(super) fn key_refused(events: &[Event], kept: bool) -> bool {
    key_refused_from(events, "dave", kept)
}

/// Whether `events` hold a refusal of `who`'s sender key (kept if `kept`).
fn key_refused_from(events: &[Event], who: &str, kept: bool) -> bool {
    events.iter().any(|e| match e {
        Event::DecryptionFailed { reason, from } if from.as_deref() == Some(who) => {
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
pub(super) async fn dave_added_past_bob() -> (Team, Client) {
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
    let mut events = receive(bob).await;
    assert_eq!(state_of(bob, group).await, state_of(alice, group).await);
    // The relay delivers the held items again, on this connection once the
    // Add is applied (its reconnect may land in either pass) or on the next
    // one: the key, then the text it opens, once.
    bob.shutdown().await;
    events.extend(receive(bob).await);
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
async fn a_held_item_asks_no_blocked_admin_for_a_sync() {
    let team = team().await;
    let Team {
        alice,
        bob,
        carol,
        group,
        ..
    } = &team;
    let (bob_id, carol_id) = (bob.whoami().account_id, carol.whoami().account_id);
    receive_until_state(bob, group, |s| s.is_member(&bob_id)).await;
    receive_until_state(carol, group, |s| s.is_member(&carol_id)).await;
    // Bob blocks alice, the admin he would ask first (crate::blocking),
    // and has a session with carol, whom he may ask instead.
    let alice_ref: PeerRef = "alice".parse().expect("peer");
    bob.block(&alice_ref).await.expect("block");
    let carol_name = "carol".parse().expect("name");
    bob.send_text(&carol_name, "hi carol").await.expect("send");
    // Dave is added past bob, and sends: bob holds his key.
    let dave = register(&team.url, "dave").await;
    add_past(alice, &dave, carol, group).await;
    receive_until_state(&dave, group, |s| s.is_member(&bob_id)).await;
    dave.send_group_text(group, "hi from dave")
        .await
        .expect("send");
    let events = receive_until(bob, |e| key_refused(e, true)).await;
    assert!(key_refused(&events, true), "held: {events:?}");
    let (sync, now) = (&bob.inner.groups.sync, bob.inner.clock.now_ms());
    let alice_id = alice.whoami().account_id;
    assert!(sync.may_ask(group, &alice_id, now), "alice was not asked");
    assert!(
        !sync.may_ask(group, &carol_id, now),
        "carol was asked instead"
    );
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

/// Queues `contents` from `from` to `to` over their pairwise session and
/// hands them to the relay: what a client of someone else's making sends.
async fn send_raw(from: &Client, to: &Client, contents: Vec<Content>) {
    let engine = &from.inner;
    let peer = to.whoami().account_id;
    let contact = engine
        .contact_by_account(peer.as_bytes())
        .await
        .expect("store")
        .expect("a contact");
    let mut record = engine
        .sessions
        .of_contact(&contact)
        .await
        .expect("store")
        .expect("a session");
    let mut txn = Txn::new();
    let mut counters = engine.counters().await.expect("counters");
    let (c, r) = (&contact, &mut record);
    super::sync::reply_over(engine, &mut txn, &mut counters, c, r, contents).expect("queued");
    engine.put_counters(&mut txn, &counters).expect("counters");
    engine.vault.commit(txn).await.expect("committed");
    from.flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
}

/// `count` strangers (throwaway accounts that know `group`'s id) each send
/// `to` [`GROUP_HELD_PER_SENDER`] signed sender keys for it, fresh ones.
async fn strangers_fill(url: &str, to: &Client, group: &GroupId, count: usize) -> Vec<Client> {
    let mut strangers = Vec::new();
    let to_name: Username = to.whoami().username.as_str().parse().expect("name");
    for n in 0..count {
        let eve = register(url, &format!("eve{n}")).await;
        eve.send_text(&to_name, "hello").await.expect("session");
        let keys = (0..GROUP_HELD_PER_SENDER)
            .map(|_| {
                let key = GroupSender::generate(*group, 0, &mut OsRng);
                Content::SenderKeyDistribution {
                    group: *group,
                    payload: key.distribution(&eve.inner.identity).as_bytes().to_vec(),
                }
            })
            .collect();
        send_raw(&eve, to, keys).await;
        strangers.push(eve);
    }
    strangers
}

/// The refusals in `events` of group items from the strangers, not kept
/// (acknowledged, with why).
fn strangers_refused(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| match e {
            Event::DecryptionFailed {
                from: Some(from),
                reason,
            } => {
                from.starts_with("eve")
                    && !matches!(reason, DecryptFailure::Kept { .. })
                    && matches!(
                        reason.cause(),
                        DecryptFailure::Group(GroupRefusal::SenderKeyFromNonMember)
                    )
            }
            _ => false,
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_filling_the_held_slots_do_not_keep_out_a_new_members_key() {
    let team = team().await;
    let Team {
        alice,
        bob,
        carol,
        group,
        url,
        ..
    } = &team;
    let (bob_id, carol_id) = (bob.whoami().account_id, carol.whoami().account_id);
    receive_until_state(bob, group, |s| s.is_member(&bob_id)).await;
    receive_until_state(carol, group, |s| s.is_member(&carol_id)).await;
    // Dave is added past bob; alice, who would answer bob at once, goes
    // offline.
    let dave = register(url, "dave").await;
    let dave_id = dave.whoami().account_id;
    add_past(alice, &dave, carol, group).await;
    alice.shutdown().await;
    receive_until_state(carol, group, |s| s.is_member(&dave_id)).await;
    receive_until_state(&dave, group, |s| s.is_member(&bob_id)).await;
    // Four throwaway accounts that know the group's id fill every slot
    // bob has for it, ahead of dave's first text in bob's queue.
    let strangers = GROUP_HELD_PER_GROUP / GROUP_HELD_PER_SENDER;
    let eves = strangers_fill(url, bob, group, strangers).await;
    dave.send_group_text(group, "hi from dave")
        .await
        .expect("send");
    let mut seen = Vec::new();
    // Dave's key is held all the same: a stranger's latest item gave way.
    let events = receive_until(bob, |e| key_refused_from(e, "dave", true)).await;
    assert!(key_refused_from(&events, "dave", true), "held: {events:?}");
    assert!(!key_refused_from(&events, "dave", false), "{events:?}");
    assert!(bob.inner.groups.held.of(group, &dave_id) >= 1);
    assert_eq!(bob.inner.groups.held.len(), GROUP_HELD_PER_GROUP);
    seen.extend(events);
    // Alice answers bob's request (asked when the first item was held):
    // the Add, then the end of the answer. Bob is caught up: dave is a
    // member, the strangers are not, and their items keep their slots,
    // evict-first.
    bob.flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    receive(alice).await;
    alice
        .flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    seen.extend(receive(bob).await);
    assert!(state_of(bob, group).await.is_member(&dave_id));
    let of_eves = |held: &super::held::Held| {
        eves.iter()
            .map(|eve| held.of(group, &eve.whoami().account_id))
            .sum::<usize>()
    };
    // Dave's key took one of their slots, and his text another if it came
    // before the Add.
    let kept = of_eves(&bob.inner.groups.held);
    assert!(kept == GROUP_HELD_PER_GROUP - 2 || kept == GROUP_HELD_PER_GROUP - 1);
    // The redelivery (on this reconnect, or an earlier one a slow receive
    // made for its kept deliveries) opens dave's key and text, once, and
    // refuses the items of the strangers they evicted, with why: none is
    // lost without a report, none comes again. The others stay held.
    bob.shutdown().await;
    seen.extend(receive(bob).await);
    assert_eq!(
        texts(&seen, group),
        vec![("dave".to_owned(), "hi from dave".to_owned())],
        "{seen:?}"
    );
    let evicted = GROUP_HELD_PER_GROUP - kept;
    assert_eq!(strangers_refused(&seen), evicted, "{seen:?}");
    assert_eq!(bob.inner.groups.held.len(), kept);
    bob.shutdown().await;
    let events = receive(bob).await;
    assert_eq!(strangers_refused(&events), 0, "{events:?}");
    assert!(texts(&events, group).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_sync_keeps_a_non_members_items_evict_first() {
    let team = team().await;
    let Team {
        alice,
        bob,
        group,
        url,
        ..
    } = &team;
    let bob_id = bob.whoami().account_id;
    receive_until_state(bob, group, |s| s.is_member(&bob_id)).await;
    receive(alice).await;
    // A stranger's keys are held (bob may have missed its Add) and alice,
    // offline, is asked.
    alice.shutdown().await;
    let eves = strangers_fill(url, bob, group, 1).await;
    let events = receive(bob).await;
    assert_eq!(
        bob.inner.groups.held.len(),
        GROUP_HELD_PER_SENDER,
        "{events:?}"
    );
    assert_eq!(strangers_refused(&events), 0);
    // Alice has no change bob lacks: her answer is only its end. The
    // stranger's items are not given up (an answerer may lag): they keep
    // their slots, to go first when another sender needs one.
    bob.flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    receive(alice).await;
    alice
        .flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    let mut seen = receive(bob).await;
    assert_eq!(bob.inner.groups.held.len(), GROUP_HELD_PER_SENDER);
    bob.shutdown().await;
    seen.extend(receive(bob).await);
    assert_eq!(strangers_refused(&seen), 0, "{seen:?}");
    assert_eq!(bob.inner.groups.held.len(), GROUP_HELD_PER_SENDER);
    // One more from the stranger is beyond its share: refused at once.
    let eve = &eves[0];
    let key = GroupSender::generate(*group, 0, &mut OsRng);
    let payload = key.distribution(&eve.inner.identity).as_bytes().to_vec();
    let more = Content::SenderKeyDistribution {
        group: *group,
        payload,
    };
    send_raw(eve, bob, vec![more]).await;
    let events = receive(bob).await;
    assert_eq!(strangers_refused(&events), 1, "{events:?}");
    assert_eq!(bob.inner.groups.held.len(), GROUP_HELD_PER_SENDER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_answerers_sync_loses_no_new_members_key() {
    let team = team().await;
    let Team {
        alice,
        bob,
        carol,
        group,
        url,
        ..
    } = &team;
    let (bob_id, carol_id) = (bob.whoami().account_id, carol.whoami().account_id);
    receive_until_state(bob, group, |s| s.is_member(&bob_id)).await;
    receive_until_state(carol, group, |s| s.is_member(&carol_id)).await;
    // Carol and bob talk pairwise (bob may ask her).
    carol
        .send_text(&"bob".parse().expect("name"), "hello")
        .await
        .expect("session");
    receive_until(bob, |e| {
        e.iter().any(|e| matches!(e, Event::Message { .. }))
    })
    .await;
    // Alice adds dave; only dave hears of it, and alice goes offline.
    let dave = register(url, "dave").await;
    let dave_id = dave.whoami().account_id;
    add_past_all(alice, &dave, None, group).await;
    alice.shutdown().await;
    receive_until_state(&dave, group, |s| s.is_member(&bob_id)).await;
    dave.send_group_text(group, "hi from dave")
        .await
        .expect("send");
    let events = receive_until(bob, |e| key_refused(e, true)).await;
    assert!(key_refused(&events, true), "held: {events:?}");
    // Bob also asks carol, who lags (she never saw the Add): her answer
    // completes a sync at bob's head, and dave's key is still held.
    let now = bob.inner.clock.now_ms();
    let rec = bob.inner.groups.require(group).await.expect("group");
    bob.inner.groups.sync.asked(group, &carol_id, now);
    send_raw(bob, carol, vec![super::sync::request(&rec)]).await;
    receive(carol).await;
    carol
        .flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    let mut seen = receive(bob).await;
    assert!(!bob.inner.groups.sync.take_done(group, &carol_id), "done");
    assert!(!state_of(bob, group).await.is_member(&dave_id));
    // Carol's answer did complete a sync: dave's items are evict-first.
    assert!(bob.inner.groups.held.evict_first_of(group, &dave_id) >= 1);
    // Alice comes back and answers bob's first request with the Add: the
    // redelivery opens dave's key and text.
    receive(alice).await;
    alice
        .flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    seen.extend(receive(bob).await);
    assert!(state_of(bob, group).await.is_member(&dave_id));
    bob.shutdown().await;
    seen.extend(receive(bob).await);
    assert_eq!(
        texts(&seen, group),
        vec![("dave".to_owned(), "hi from dave".to_owned())],
        "{seen:?}"
    );
    assert!(!key_refused(&seen, false), "{seen:?}");
}
