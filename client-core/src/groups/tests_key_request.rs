//! Asking a member for its sender key again (docs/PROTOCOL.md §8.16),
//! against a real relay in this process: a member that lost another's
//! distribution keeps that member's texts unacknowledged, asks it once,
//! and reads them when the relay delivers them again; a removed member
//! that asks (as a cheating client would) gets no key, old or new; a
//! member added later is sent only the copy it was first sent; and the
//! ask and answer limits hold.

use std::time::Duration;

use umbra_protocol::content::Content;
use umbra_protocol::wire::AccountId;

use crate::consts::{GROUP_KEY_ANSWER_INTERVAL, GROUP_KEY_REQUEST_INTERVAL};
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Client, Event, GroupRefusal, PeerRef};

use super::key_request::{self, SentDistributions, KEPT_SENT_KEYS};
use super::tests::{receive, refusals, team, Team};
use super::GroupId;

fn texts(events: &[Event], group: &GroupId) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupMessage { group: g, body, .. } if g == group => Some(body.clone()),
            _ => None,
        })
        .collect()
}

/// `client` forgets the sender keys of `of` it held in `group`: what a lost
/// or refused distribution, or a restore from the backup, leaves.
async fn lose_keys(client: &Client, group: &GroupId, of: &AccountId) {
    let mut txn = Txn::new();
    client.inner.groups.drop_member_keys(&mut txn, group, of);
    client.inner.vault.commit(txn).await.expect("committed");
}

async fn contact(client: &Client, of: &Client) -> ContactRecord {
    client
        .inner
        .contact_by_account(of.whoami().account_id.as_bytes())
        .await
        .expect("store")
        .expect("a contact")
}

/// The (epoch, chain id) of `client`'s current sender key in `group`.
async fn own_key(client: &Client, group: &GroupId) -> (u64, u32) {
    let key = client
        .inner
        .groups
        .own_key(group)
        .await
        .expect("store")
        .expect("a key");
    (key.epoch, key.sender().expect("key").chain_id())
}

async fn flush(client: &Client) {
    client
        .flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_lost_a_key_asks_for_it_and_then_reads() {
    let team = team().await;
    let Team {
        alice, bob, group, ..
    } = &team;
    let alice_id = alice.whoami().account_id;
    receive(bob).await;
    alice.send_group_text(group, "one").await.expect("send");
    assert_eq!(texts(&receive(bob).await, group), vec!["one".to_owned()]);
    // Bob loses alice's key; her next texts reach him under it, and no
    // new distribution comes with them (her record says he has it).
    lose_keys(bob, group, &alice_id).await;
    for text in ["two", "three"] {
        alice.send_group_text(group, text).await.expect("send");
    }
    let events = receive(bob).await;
    assert!(texts(&events, group).is_empty(), "{events:?}");
    let no_key = refusals(&events)
        .into_iter()
        .filter(|r| *r == GroupRefusal::NoSenderKey)
        .count();
    assert_eq!(no_key, 2, "both kept: {events:?}");
    // Bob asked alice; she answers with the distribution she sent him,
    // from the chain's start, which opens what the current one could not.
    flush(bob).await;
    receive(alice).await;
    flush(alice).await;
    receive(bob).await;
    // The relay delivers the kept texts again on the next connection.
    bob.shutdown().await;
    let events = receive(bob).await;
    assert_eq!(
        texts(&events, group),
        vec!["two".to_owned(), "three".to_owned()],
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_that_asks_gets_no_key() {
    let team = team().await;
    let Team {
        alice,
        bob,
        carol,
        group,
        ..
    } = &team;
    receive(bob).await;
    receive(carol).await;
    alice.send_group_text(group, "before").await.expect("send");
    let before = own_key(alice, group).await;
    receive(bob).await;
    receive(carol).await;
    let who: PeerRef = "carol".parse().expect("name");
    alice.remove_member(group, &who).await.expect("removed");
    receive(carol).await;
    receive(bob).await;
    alice.send_group_text(group, "after").await.expect("send");
    let after = own_key(alice, group).await;
    assert_ne!(before, after, "rotated after the removal");
    // Alice would answer bob, a member she sent both keys to...
    let (to_bob, to_carol) = (contact(alice, bob).await, contact(alice, carol).await);
    for (epoch, chain_id) in [before, after] {
        let answer = key_request::answer(&alice.inner, &to_bob, group, epoch, chain_id).await;
        assert!(matches!(
            answer.expect("store"),
            Some(Content::SenderKeyDistribution { .. })
        ));
        alice.inner.clock.advance(GROUP_KEY_ANSWER_INTERVAL);
    }
    // ...but carol, removed, who asks for the key she had and the one
    // made after her removal, over her session with alice, gets nothing.
    let carol_to_alice = contact(carol, alice).await;
    for (epoch, chain_id) in [before, after] {
        let request = Content::GroupKeyRequest {
            group: *group,
            epoch,
            chain_id,
        };
        let sent = carol.inner.send_control(&carol_to_alice, request).await;
        sent.expect("queued");
        let answer = key_request::answer(&alice.inner, &to_carol, group, epoch, chain_id).await;
        assert!(answer.expect("store").is_none(), "nothing for carol");
    }
    flush(carol).await;
    receive(alice).await;
    flush(alice).await;
    let events = receive(carol).await;
    assert!(
        !refusals(&events).contains(&GroupRefusal::SenderKeyFromNonMember),
        "no key was sent to carol: {events:?}"
    );
    let alice_id = alice.whoami().account_id;
    let carols = carol.inner.groups.member_keys(group, &alice_id);
    assert!(carols.await.expect("store").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_asked_once_per_interval_and_answers_once_per_interval() {
    let team = team().await;
    let Team {
        alice, bob, group, ..
    } = &team;
    receive(bob).await;
    alice.send_group_text(group, "one").await.expect("send");
    receive(bob).await;
    let (epoch, chain_id) = own_key(alice, group).await;
    // Asking: bob is offline, so what he queues stays in his outbox.
    bob.shutdown().await;
    let rec = bob.inner.groups.require(group).await.expect("group");
    let to_alice = contact(bob, alice).await;
    let queued = || async { bob.pending_outbox().await.expect("outbox").len() };
    let start = queued().await;
    for _ in 0..3 {
        key_request::ask(&bob.inner, &rec, &to_alice, epoch, chain_id)
            .await
            .expect("asked");
    }
    assert_eq!(queued().await, start + 1, "one request per interval");
    bob.inner.clock.advance(GROUP_KEY_REQUEST_INTERVAL);
    key_request::ask(&bob.inner, &rec, &to_alice, epoch, chain_id)
        .await
        .expect("asked");
    assert_eq!(queued().await, start + 2, "asked again after the interval");
    // Answering: once per (group, member) per answer interval.
    let to_bob = contact(alice, bob).await;
    let answer = || key_request::answer(&alice.inner, &to_bob, group, epoch, chain_id);
    assert!(answer().await.expect("store").is_some());
    assert!(answer().await.expect("store").is_none(), "limited");
    alice.inner.clock.advance(GROUP_KEY_ANSWER_INTERVAL);
    assert!(
        answer().await.expect("store").is_some(),
        "after the interval"
    );
}

#[test]
fn each_member_gets_the_first_copy_it_was_sent_and_old_keys_go() {
    let account = |b: u8| AccountId::from_bytes([b; 16]);
    let (bob, carol, dave, eve) = (account(1), account(2), account(3), account(4));
    let mut sent = SentDistributions::default();
    // Key (5, 7): bob and carol at its start, dave (added later) from a
    // later iteration, bob again after a refused item.
    sent.note(5, 7, b"from iteration 0", &[carol, bob]);
    sent.note(5, 7, b"from iteration 9", &[dave, bob]);
    assert_eq!(sent.copy_for(5, 7, &bob), Some(&b"from iteration 0"[..]));
    assert_eq!(sent.copy_for(5, 7, &carol), Some(&b"from iteration 0"[..]));
    assert_eq!(sent.copy_for(5, 7, &dave), Some(&b"from iteration 9"[..]));
    assert_eq!(sent.copy_for(5, 7, &eve), None, "never sent to eve");
    assert_eq!(sent.copy_for(5, 8, &bob), None, "another chain");
    // Newer keys push the oldest out beyond the bound.
    sent.note(6, 1, b"six", &[bob]);
    sent.note(9, 2, b"nine", &[bob]);
    assert_eq!(sent.kept().len(), KEPT_SENT_KEYS);
    assert_eq!(sent.kept(), vec![(6, 1), (9, 2)]);
    assert_eq!(sent.copy_for(5, 7, &bob), None, "rotated away");
}
