//! Asking a member for its sender key again (docs/PROTOCOL.md §8.16),
//! against a real relay in this process: a member that lost another's
//! distribution keeps that member's texts unacknowledged, asks it once,
//! and reads them when the relay delivers them again; a removed member
//! that asks (as a cheating client would) gets no key, old or new; a
//! member added later is answered only from the first iteration it was
//! sent; nothing sent longer ago than a message can wait at the relay is
//! answered; and the ask and answer limits (per key) hold.

use std::time::Duration;

use umbra_protocol::content::Content;
use umbra_protocol::wire::AccountId;

use rand::rngs::OsRng;
use umbra_protocol::group::{GroupSender, SignedDistribution};
use umbra_protocol::identity::IdentityKeyPair;

use crate::consts::{
    millis, GROUP_KEY_ANSWER_INTERVAL, GROUP_KEY_REQUEST_INTERVAL, RELAY_MESSAGE_LIFETIME,
};
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Client, Event, GroupRefusal, PeerRef};

use super::key_request;
use super::sent_keys::{SentDistributions, CHECKPOINT_INTERVAL, KEPT_SENT_KEYS};
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

/// Runs the ask and the answer until `asker` holds a sender key of `owner`
/// in `group` again. Each leg crosses the relay, and a receive ends once
/// the stream has been quiet for a moment: on a loaded machine the request
/// or the answer can come after that, so one pass is not enough to know
/// the key is back (and the texts the relay delivers again would then come
/// before it). Returns every event `asker` saw meanwhile: a kept delivery
/// is also redelivered by a reconnect of the client's own a few seconds
/// later, which may fall inside these passes, so the texts the key opens
/// can be among them. Gives up, failing the test, after a bounded number
/// of passes.
async fn until_the_key_is_back(asker: &Client, owner: &Client, group: &GroupId) -> Vec<Event> {
    let owner_id = owner.whoami().account_id;
    let mut seen = Vec::new();
    for _ in 0..20 {
        flush(asker).await;
        receive(owner).await;
        flush(owner).await;
        seen.extend(receive(asker).await);
        let keys = asker.inner.groups.member_keys(group, &owner_id).await;
        if keys.expect("store").is_some() {
            return seen;
        }
    }
    panic!("the asked-for key never came back");
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
    let mut seen = until_the_key_is_back(bob, alice, group).await;
    // The relay delivers the kept texts again on the next connection (or
    // did on one the client made by itself meanwhile).
    bob.shutdown().await;
    seen.extend(receive(bob).await);
    assert_eq!(
        texts(&seen, group),
        vec!["two".to_owned(), "three".to_owned()],
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_older_than_the_relays_lifetime_is_not_answered_from_before_it() {
    let team = team().await;
    let Team {
        alice, bob, group, ..
    } = &team;
    let alice_id = alice.whoami().account_id;
    receive(bob).await;
    alice.send_group_text(group, "first").await.expect("send");
    assert_eq!(texts(&receive(bob).await, group), vec!["first".to_owned()]);
    lose_keys(bob, group, &alice_id).await;
    // "old" is sent, then nothing for longer than a message can wait at
    // the relay (a relay operator may have kept a copy), then "new".
    alice.send_group_text(group, "old").await.expect("send");
    alice
        .inner
        .clock
        .advance(RELAY_MESSAGE_LIFETIME + CHECKPOINT_INTERVAL * 2);
    alice.send_group_text(group, "new").await.expect("send");
    let events = receive(bob).await;
    assert!(texts(&events, group).is_empty(), "{events:?}");
    // Bob asks from "old"'s iteration; alice answers from "new"'s only.
    let mut seen = until_the_key_is_back(bob, alice, group).await;
    bob.shutdown().await;
    seen.extend(receive(bob).await);
    assert_eq!(texts(&seen, group), vec!["new".to_owned()], "{seen:?}");
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
    // Carol, removed, asks for the key she had and the one made after her
    // removal, over her session with alice (as a cheating client would):
    // nothing comes back. First, so no direct call below has taken an
    // answer slot that would hide an answer.
    let carol_to_alice = contact(carol, alice).await;
    for (epoch, chain_id) in [before, after] {
        let request = Content::GroupKeyRequest {
            group: *group,
            epoch,
            chain_id,
            iteration: 0,
        };
        let sent = carol.inner.send_control(&carol_to_alice, request).await;
        sent.expect("queued");
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
    // The same asked directly, past any answer slot the requests took.
    alice.inner.clock.advance(GROUP_KEY_ANSWER_INTERVAL);
    let (to_bob, to_carol) = (contact(alice, bob).await, contact(alice, carol).await);
    for (epoch, chain_id) in [before, after] {
        let key = (epoch, chain_id, 0);
        let answer = key_request::answer(&alice.inner, &to_carol, group, key).await;
        assert!(answer.expect("store").is_none(), "nothing for carol");
    }
    // Alice does answer bob, a member she sent both keys to, for each.
    for (epoch, chain_id) in [before, after] {
        let key = (epoch, chain_id, 0);
        let answer = key_request::answer(&alice.inner, &to_bob, group, key).await;
        assert!(matches!(
            answer.expect("store"),
            Some(Content::SenderKeyDistribution { .. })
        ));
    }
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
    let ask = |key: (u64, u32, u32)| {
        key_request::ask(
            &bob.inner,
            &rec,
            (&to_alice, umbra_protocol::wire::DeviceId::PRIMARY),
            key,
        )
    };
    let start = queued().await;
    for _ in 0..3 {
        ask((epoch, chain_id, 0)).await.expect("asked");
    }
    assert_eq!(queued().await, start + 1, "one request per interval");
    // Another key of hers is asked about at once (a restored member needs
    // two), up to the bound of keys per member.
    for other in 1..=KEPT_SENT_KEYS as u32 + 1 {
        ask((epoch, chain_id ^ other, 0)).await.expect("asked");
    }
    assert_eq!(
        queued().await,
        start + 1 + KEPT_SENT_KEYS,
        "per key, at most KEPT_SENT_KEYS + 1 per member"
    );
    bob.inner.clock.advance(GROUP_KEY_REQUEST_INTERVAL);
    ask((epoch, chain_id, 0)).await.expect("asked");
    assert_eq!(
        queued().await,
        start + 2 + KEPT_SENT_KEYS,
        "asked again after the interval"
    );
    // Answering: once per (group, member, key) per answer interval.
    let to_bob = contact(alice, bob).await;
    let answer = || key_request::answer(&alice.inner, &to_bob, group, (epoch, chain_id, 0));
    assert!(answer().await.expect("store").is_some());
    assert!(answer().await.expect("store").is_none(), "limited");
    alice.inner.clock.advance(GROUP_KEY_ANSWER_INTERVAL);
    assert!(
        answer().await.expect("store").is_some(),
        "after the interval"
    );
    // An iteration she never sent is not answered (no walk of the chain).
    let beyond = key_request::answer(&alice.inner, &to_bob, group, (epoch, chain_id, 1 << 30));
    assert!(beyond.await.expect("store").is_none());
}

/// The iteration a distribution `sent` answered `asker` from.
fn answered_from(
    sent: &SentDistributions,
    sender: &GroupSender,
    asker: &AccountId,
    requested: u32,
    identity: &IdentityKeyPair,
) -> Option<u32> {
    let bytes = sent
        .answer(
            sender.epoch(),
            sender.chain_id(),
            asker,
            requested,
            identity,
        )
        .expect("kept chain")?;
    let verified = SignedDistribution::verify(&bytes, &identity.public(), sender.group_id());
    Some(verified.expect("signed").iteration())
}

#[test]
fn answers_start_no_earlier_than_the_first_copy_the_request_and_the_window() {
    let account = |b: u8| AccountId::from_bytes([b; 16]);
    let (bob, carol, dave, eve) = (account(1), account(2), account(3), account(4));
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let mut sender = GroupSender::generate(GroupId([9; 32]), 5, &mut OsRng);
    let mut sent = SentDistributions::default();
    let hour = millis(CHECKPOINT_INTERVAL);
    let t0 = 1_000_000_000_000;
    // Bob and carol at the key's start; dave (added later) from 9.
    for i in 0..12u32 {
        let to: &[AccountId] = match i {
            0 => &[carol, bob],
            9 => &[dave, bob],
            _ => &[],
        };
        sent.note(&sender, to, t0 + u64::from(i) * hour)
            .expect("noted");
        sender.encrypt(b"x").expect("sent");
    }
    let from = |sent: &SentDistributions, who: &AccountId, asked: u32| {
        answered_from(sent, &sender, who, asked, &identity)
    };
    assert_eq!(from(&sent, &bob, 0), Some(0), "from its first copy");
    assert_eq!(from(&sent, &carol, 4), Some(4), "from the one asked");
    assert_eq!(from(&sent, &dave, 0), Some(9), "never before it joined");
    assert_eq!(from(&sent, &eve, 0), None, "never sent to eve");
    assert_eq!(from(&sent, &bob, 12), None, "never sent");
    // Past the relay's lifetime the chain moves on: what was sent in the
    // first 5 hours can no longer be waiting, so it is not answered.
    let lifetime = millis(RELAY_MESSAGE_LIFETIME);
    assert!(sent.prune(t0 + lifetime + 5 * hour).expect("pruned"));
    assert_eq!(sent.kept()[0].2, 5);
    assert_eq!(from(&sent, &bob, 0), Some(5), "not before the window");
    assert_eq!(from(&sent, &dave, 0), Some(9));
    // Once everything is past it, only from the next message on.
    sent.prune(t0 + lifetime + 12 * hour).expect("pruned");
    assert_eq!(sent.kept()[0].2, 12);
    // Newer keys push the oldest out beyond the bound.
    for epoch in [6, 9] {
        let other = GroupSender::generate(GroupId([9; 32]), epoch, &mut OsRng);
        sent.note(&other, &[bob], t0).expect("noted");
    }
    assert_eq!(sent.kept().len(), KEPT_SENT_KEYS);
    assert_eq!(from(&sent, &bob, 0), None, "rotated away");
}
