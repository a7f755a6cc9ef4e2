//! A contact with several devices (docs/PROTOCOL.md §15.3), over a real
//! relay in this process: a second (and third) device of bob's account is
//! enrolled through the raw link frames, as `devices/tests.rs` does, and
//! set up as a client of its own holding bob's identity (what the link
//! flow will do), so it publishes keys and reads its queue.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::device_list::HeldDeviceList;
use umbra_protocol::wire::{DeviceId, LinkEnrolled, Request, Response, Username};

use crate::account::TokenRecord;
use crate::engine::{clone_identity, Engine};
use crate::groups::tests::{register, relay};
use crate::relay_link::RelayLink;
use crate::store::{KdfParams, MemoryStore, Txn, Vault};
use crate::{Client, ClientConfig, DecryptFailure, Event};

/// Enrols a new device of `client`'s account through the raw link frames
/// (LinkCreate and LinkEnrol on its connection, LinkJoin and LinkFetch on
/// an unauthenticated one); returns what the joiner got.
pub(crate) async fn enrol_device(client: &Client) -> LinkEnrolled {
    let engine = &client.inner;
    engine.ensure_connected().expect("connect");
    let Response::LinkTicket { ticket, .. } =
        engine.request(Request::LinkCreate).await.expect("create")
    else {
        panic!("no ticket")
    };
    let mut joiner = RelayLink::connect(&engine.ws_url, None, Duration::from_secs(10))
        .await
        .expect("joiner connects");
    let joined = joiner.call(Request::LinkJoin { ticket }).await;
    assert_eq!(joined.expect("join"), Response::Ok);
    let enrolled = engine.request(Request::LinkEnrol { ticket }).await;
    assert!(matches!(
        enrolled.expect("enrol"),
        Response::DeviceEnrolled { .. }
    ));
    let fetched = joiner
        .call(Request::LinkFetch { ticket, after: 0 })
        .await
        .expect("fetch");
    let Response::LinkMessages {
        enrolled: Some(enrolled),
        ..
    } = fetched
    else {
        panic!("the joiner got no token: {fetched:?}")
    };
    joiner.close().await;
    enrolled
}

/// A new device of `client`'s account as a client of its own: same
/// identity, its own store, token, prekeys (published) and sessions.
pub(crate) async fn another_device(client: &Client) -> Client {
    let enrolled = enrol_device(client).await;
    let owner = &client.inner;
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let vault = Vault::create(
        store.clone(),
        b"pw-of-test",
        KdfParams::insecure_for_tests(),
        enrolled.account,
        &mut OsRng,
    )
    .await
    .expect("vault");
    let mut txn = Txn::new();
    let identity = clone_identity(&owner.identity).expect("identity");
    let token = TokenRecord {
        token: *enrolled.token.expose_secret(),
        expires_at: enrolled.expires_at,
    };
    let name = owner.me().username.clone();
    Engine::initial_records(
        &vault,
        &mut txn,
        &identity,
        &name,
        enrolled.device,
        enrolled.account,
        &token,
    )
    .expect("records");
    vault.commit(txn).await.expect("commit");
    let config = ClientConfig::with_store(owner.ws_url.clone(), store)
        .kdf_params(KdfParams::insecure_for_tests());
    let engine = Engine::from_vault(&config, owner.ws_url.clone(), vault)
        .await
        .expect("engine");
    engine.ensure_connected().expect("connect");
    engine.publish_keys().await.expect("publish keys");
    engine.replenish_prekeys().await.expect("prekeys");
    Client { inner: engine }
}

async fn receive(client: &Client) -> Vec<Event> {
    client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive")
}

fn name(s: &str) -> Username {
    Username::parse(s).expect("name")
}

fn ids(v: &[u32]) -> Vec<DeviceId> {
    v.iter().copied().map(DeviceId).collect()
}

async fn held_for(client: &Client, of: &Client) -> HeldDeviceList {
    client
        .inner
        .devices
        .held(&of.inner.me().account)
        .await
        .expect("held")
}

fn messages(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

/// Sends `text` and waits until the relay settled it.
async fn send(from: &Client, to: &str, text: &str) {
    from.send_text(&name(to), text).await.expect("send");
    from.inner
        .flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
}

/// Envelopes the relay holds for `device` of `of`'s account.
async fn queued(relay: &umbra_relay::app::RunningRelay, of: &Client, device: u32) -> u64 {
    let address = umbra_protocol::wire::Address {
        account: of.inner.me().account,
        device: DeviceId(device),
    };
    relay.state.store.queue_depth(address).await.expect("depth")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_every_listed_device_and_each_answers_on_its_own_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let bob2 = another_device(&bob).await;
    assert_eq!(bob2.inner.me().device, DeviceId(2));
    bob.inner
        .add_own_device(DeviceId(2))
        .await
        .expect("list {1,2}");

    send(&alice, "bob", "to both").await;
    assert_eq!(
        held_for(&alice, &bob).await.devices(),
        ids(&[1, 2]).as_slice()
    );
    assert_eq!(messages(&receive(&bob).await), ["to both"]);
    assert_eq!(messages(&receive(&bob2).await), ["to both"]);

    // Device 2 answers on its own session; alice opens it and her receipt
    // goes back to device 2 (sealed on that device's session).
    send(&bob2, "alice", "from my laptop").await;
    let got = receive(&alice).await;
    assert_eq!(messages(&got), ["from my laptop"], "{got:?}");
    alice
        .inner
        .flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    let receipts = receive(&bob2).await;
    assert!(
        receipts
            .iter()
            .any(|e| matches!(e, Event::DeliveryReceipt { .. })),
        "{receipts:?}"
    );
    // The next message still reaches both, on the sessions they have.
    send(&alice, "bob", "again").await;
    assert_eq!(messages(&receive(&bob).await), ["again"]);
    assert_eq!(messages(&receive(&bob2).await), ["again"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_from_a_listed_second_device_is_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let bob2 = another_device(&bob).await;
    bob.inner
        .add_own_device(DeviceId(2))
        .await
        .expect("list {1,2}");

    // Alice has never heard of bob: the list is fetched once the
    // directory confirmed the identity, and names device 2.
    send(&bob2, "alice", "hello from 2").await;
    let got = receive(&alice).await;
    assert_eq!(messages(&got), ["hello from 2"], "{got:?}");
    assert_eq!(
        held_for(&alice, &bob).await.devices(),
        ids(&[1, 2]).as_slice()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_the_list_lacks_is_neither_written_to_nor_believed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let bob2 = another_device(&bob).await;
    bob.inner
        .add_own_device(DeviceId(2))
        .await
        .expect("list {1,2}");
    // Device 3 is current on the relay with keys under bob's identity,
    // but bob's signed list does not name it (what a relay adding a
    // device of its own would arrange).
    let bob3 = another_device(&bob).await;
    assert_eq!(bob3.inner.me().device, DeviceId(3));

    send(&alice, "bob", "listed only").await;
    assert_eq!(messages(&receive(&bob2).await), ["listed only"]);
    let third = receive(&bob3).await;
    assert!(messages(&third).is_empty(), "device 3 got {third:?}");

    // An envelope from device 3, sealed by bob's identity: refused after
    // one list fetch, as a wrong identity is.
    send(&bob3, "alice", "believe me").await;
    let got = receive(&alice).await;
    assert!(messages(&got).is_empty(), "{got:?}");
    assert!(
        got.iter().any(|e| matches!(
            e,
            Event::DecryptionFailed {
                reason: DecryptFailure::UnlistedDevice(DeviceId(3)),
                ..
            }
        )),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_removal_the_next_send_reaches_only_the_devices_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let bob2 = another_device(&bob).await;
    bob.inner
        .add_own_device(DeviceId(2))
        .await
        .expect("list {1,2}");
    send(&alice, "bob", "both").await;
    assert_eq!(messages(&receive(&bob2).await), ["both"]);
    assert_eq!(messages(&receive(&bob).await), ["both"]);

    bob.remove_device(2).await.expect("remove device 2");
    bob.shutdown().await;
    // Alice still holds {1,2}: the relay refuses device 2 as unknown, she
    // fetches the list ({1}), and the message counts as sent.
    let mut events = alice.events();
    send(&alice, "bob", "after").await;
    assert_eq!(queued(&relay, &bob, 1).await, 1);
    let mut sent = false;
    while let Ok(Some(e)) = tokio::time::timeout(
        Duration::from_millis(200),
        futures_util::StreamExt::next(&mut events),
    )
    .await
    {
        assert!(!matches!(e, Event::SendFailed { .. }), "{e:?}");
        sent |= matches!(e, Event::Sent { .. });
    }
    assert!(sent, "the message to the remaining device counts as sent");
    assert_eq!(held_for(&alice, &bob).await.devices(), ids(&[1]).as_slice());
    send(&alice, "bob", "only one").await;
    assert_eq!(queued(&relay, &bob, 1).await, 2);
    assert_eq!(relay.state.store.total_queued().await.expect("total"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_device_account_gets_exactly_one_envelope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let carol = register(&relay.url(), "carol").await;
    carol.shutdown().await;
    send(&alice, "carol", "one").await;
    send(&alice, "carol", "two").await;
    assert_eq!(queued(&relay, &carol, 1).await, 2);
    // Nothing else anywhere: one envelope per message.
    assert_eq!(relay.state.store.total_queued().await.expect("total"), 2);
    assert_eq!(held_for(&alice, &carol).await, HeldDeviceList::Implicit);
}
