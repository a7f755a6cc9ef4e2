//! Groups per device (docs/PROTOCOL.md §8.2, §8.14, §15.3), over a real
//! relay in this process: alice links a second device through the real
//! link flow (it gets her contacts and groups) and sends to the group from
//! it; bob reads it with that device's own sender key, kept apart from her
//! first device's, and what bob sends reaches both of alice's devices,
//! each with its own pairwise copy of his key. A device alice's signed
//! list does not name (enrolled on the relay, never listed) is refused.
//! A device alice removes, its client still running, cannot read what bob
//! sends once he learnt of the removal: he rotates the key it held.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::pairwise::InboundEnvelope;
use umbra_protocol::wire::DeviceId;

use super::keys::OwnSenderKey;
use super::tests::{receive, register, relay};
use crate::store::{ClientStore, MemoryStore, Txn};
use crate::{Client, ClientConfig, DecryptFailure, Event, KdfParams, PeerRef};

/// Links a new device of `client`'s account with the real link flow.
async fn link(client: &Client, url: &str) -> Client {
    let invite = client.link_device().await.expect("invite");
    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let config = ClientConfig::with_store(url, store).kdf_params(KdfParams::insecure_for_tests());
    let code = invite.code().to_owned();
    let joiner = tokio::spawn(async move { Client::link_accept(config, &code, "pw-new").await });
    invite.complete().await.expect("link completes");
    joiner.await.expect("joined").expect("linked")
}

fn group_texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupMessage { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

fn unlisted(events: &[Event]) -> Vec<DeviceId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::DecryptionFailed { reason, .. } => match reason.cause() {
                DecryptFailure::UnlistedDevice(device) => Some(*device),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_message_from_a_members_second_device_is_read_with_its_own_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob) = (register(&url, "alice").await, register(&url, "bob").await);
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    alice
        .send_group_text(&group, "from the desktop")
        .await
        .expect("sent");
    let got = receive(&bob).await;
    assert_eq!(group_texts(&got).len(), 1, "{got:?}");
    // The laptop: a linked device holding the group, with a chain of its own.
    let alice2 = link(&alice, &url).await;
    assert_eq!(alice2.whoami().device_id, 2);
    alice2
        .send_group_text(&group, "from the laptop")
        .await
        .expect("sent from device 2");
    let got = receive(&bob).await;
    assert_eq!(group_texts(&got), vec!["from the laptop"], "{got:?}");
    assert!(unlisted(&got).is_empty(), "{got:?}");
    // Device 2's key did not take device 1's place: both keep sending.
    alice
        .send_group_text(&group, "desktop again")
        .await
        .expect("sent");
    alice2
        .send_group_text(&group, "laptop again")
        .await
        .expect("sent");
    let mut texts = group_texts(&receive(&bob).await);
    texts.sort();
    assert_eq!(texts, vec!["desktop again", "laptop again"]);
    alice2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_message_from_a_device_the_list_lacks_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob) = (register(&url, "alice").await, register(&url, "bob").await);
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    receive(&bob).await;
    // A device enrolled on the relay that alice's signed list never names
    // (what a relay adding a device of its own would get), holding the
    // group and bob's contact.
    let rogue = crate::outbound::tests_devices::another_device(&alice).await;
    let record = alice.inner.groups.require(&group).await.expect("group");
    let bob_contact = alice
        .inner
        .contact_by_account(bob.whoami().account_id.as_bytes())
        .await
        .expect("store")
        .expect("bob");
    let mut txn = Txn::new();
    rogue.inner.groups.put(&mut txn, &record).expect("group");
    rogue
        .inner
        .names
        .put_contact(&mut txn, &bob_contact)
        .await
        .expect("contact");
    rogue.inner.vault.commit(txn).await.expect("commit");
    rogue
        .send_group_text(&group, "not from a listed device")
        .await
        .expect("sent");
    let got = receive(&bob).await;
    assert!(group_texts(&got).is_empty(), "{got:?}");
    // Its sender key (pairwise) and its group message are both refused as
    // from an unlisted device, after bob fetched alice's list.
    assert_eq!(unlisted(&got), vec![DeviceId(2), DeviceId(2)], "{got:?}");
    // Alice's own device still reaches bob.
    alice.send_group_text(&group, "hello").await.expect("sent");
    assert_eq!(group_texts(&receive(&bob).await).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_group_message_reaches_every_device_of_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob) = (register(&url, "alice").await, register(&url, "bob").await);
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    receive(&bob).await;
    // Bob's key reaches alice's one device.
    bob.send_group_text(&group, "before").await.expect("sent");
    assert_eq!(group_texts(&receive(&alice).await), vec!["before"]);
    let alice2 = link(&alice, &url).await;
    // Bob's next connection (or RECHECK_AFTER) fetches alice's list again
    // before his next group send (§15.3 rule 1): it names two devices.
    bob.inner.groups.member_lists.new_connection();
    let report = bob
        .send_group_text(&group, "to both of you")
        .await
        .expect("sent");
    assert_eq!(report.members.len(), 1);
    let on_desktop = group_texts(&receive(&alice).await);
    let on_laptop = group_texts(&receive(&alice2).await);
    assert_eq!(on_desktop, vec!["to both of you"]);
    assert_eq!(on_laptop, vec!["to both of you"]);
    // Bob's key went to each device once: the next message needs none.
    let key = bob.inner.groups.own_key(&group).await.expect("store");
    let marked = key.expect("key").distributed_to.clone();
    let alice_id = *alice.whoami().account_id.as_bytes();
    assert_eq!(marked, vec![(alice_id, 1), (alice_id, 2)]);
    bob.send_group_text(&group, "again").await.expect("sent");
    assert_eq!(group_texts(&receive(&alice).await), vec!["again"]);
    assert_eq!(group_texts(&receive(&alice2).await), vec!["again"]);
    alice2.shutdown().await;
}

/// Whether `holder` (a device of alice's) could open a group message bob
/// seals under `key` to alice's identity, which every device of hers holds
/// (what a relay colluding with a removed device would hand it).
async fn opens_at(
    holder: &Client,
    bob: &Client,
    group: &super::GroupId,
    key: OwnSenderKey,
) -> bool {
    let mut key = key;
    let message = key.encrypt(b"a later group message").expect("encrypt");
    let alice = holder.inner.identity.public();
    let envelope = message
        .seal_to(
            &bob.inner.identity,
            &bob.inner.me().address(),
            &alice,
            &mut OsRng,
        )
        .expect("seal");
    let inbound = InboundEnvelope::open(&holder.inner.identity, &envelope).expect("sealed");
    let mut keys = holder
        .inner
        .groups
        .member_keys(group, &bob.whoami().account_id)
        .await
        .expect("store")
        .expect("bob's keys");
    keys.decrypt(&inbound).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_cannot_read_what_a_member_sends_once_it_learnt_of_the_removal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob) = (register(&url, "alice").await, register(&url, "bob").await);
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    receive(&bob).await;
    let alice2 = link(&alice, &url).await;
    bob.inner.groups.member_lists.new_connection();
    bob.send_group_text(&group, "before").await.expect("sent");
    assert_eq!(group_texts(&receive(&alice).await), vec!["before"]);
    assert_eq!(group_texts(&receive(&alice2).await), vec!["before"]);
    let old = bob
        .inner
        .groups
        .own_key(&group)
        .await
        .expect("store")
        .expect("key");
    assert!(
        opens_at(&alice2, &bob, &group, old.clone()).await,
        "device 2 holds bob's key"
    );
    alice.remove_device(2).await.expect("device 2 removed");
    // Device 2's client is still running and tries: the relay ended its
    // tokens, so it receives nothing of what follows.
    let tried = alice2.receive_until_empty(Duration::from_secs(5)).await;
    assert!(group_texts(&tried.unwrap_or_default()).is_empty());
    // Bob checked alice's list on this connection already: his next
    // message still goes under the key device 2 holds, and the relay
    // refuses device 2 (the window §8.12 states)...
    bob.send_group_text(&group, "after one")
        .await
        .expect("sent");
    let chain = |k: &OwnSenderKey| k.sender().expect("key").chain_id();
    let now = bob
        .inner
        .groups
        .own_key(&group)
        .await
        .expect("store")
        .expect("key");
    assert_eq!(chain(&now), chain(&old));
    // ...which makes him fetch her list before the next one, so it goes
    // under a fresh key given to device 1 only.
    bob.send_group_text(&group, "after two")
        .await
        .expect("sent");
    let now = bob
        .inner
        .groups
        .own_key(&group)
        .await
        .expect("store")
        .expect("key");
    assert_ne!(
        chain(&now),
        chain(&old),
        "rotated: device 2 held the old key"
    );
    let alice_id = *alice.whoami().account_id.as_bytes();
    assert_eq!(now.distributed_to, vec![(alice_id, 1)]);
    assert!(!opens_at(&alice2, &bob, &group, now.clone()).await);
    assert_eq!(
        group_texts(&receive(&alice).await),
        vec!["after one", "after two"]
    );
    // Still trying: nothing reaches the removed device.
    let tried = alice2.receive_until_empty(Duration::from_secs(5)).await;
    assert!(group_texts(&tried.unwrap_or_default()).is_empty());
    alice2.shutdown().await;
}

fn typing(events: &[Event]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupTyping { started, .. } => Some(*started),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_typing_notice_reaches_every_device_of_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob) = (register(&url, "alice").await, register(&url, "bob").await);
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    receive(&bob).await;
    let alice2 = link(&alice, &url).await;
    // Bob's group message gives him a session with each of alice's devices.
    bob.inner.groups.member_lists.new_connection();
    bob.send_group_text(&group, "hi").await.expect("sent");
    assert_eq!(group_texts(&receive(&alice).await), vec!["hi"]);
    assert_eq!(group_texts(&receive(&alice2).await), vec!["hi"]);
    bob.send_group_typing(&group, true).await.expect("typing");
    assert_eq!(typing(&receive(&alice).await), vec![true]);
    assert_eq!(typing(&receive(&alice2).await), vec![true], "device 2 too");
    alice2.shutdown().await;
}
