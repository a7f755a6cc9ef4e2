//! Device lists repaired after what went wrong before (crate::devices, over
//! a relay in this process): an identity reset, a contact's key change, a
//! removal whose publication never happened (here or on another device),
//! a removed device a later list must not revive, and the version ceiling.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use umbra_protocol::device_list::{sign_device_list, HeldDeviceList};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{DeviceId, Request, Response};

use super::tests::{enrol, held, ids, served};
use super::MAX_DEVICE_LIST_VERSION;
use crate::engine::{now_secs, Engine};
use crate::failure::{DeviceFailure, RelayMisbehaved};
use crate::groups::tests::{register, relay};
use crate::store::{ClientStore, KdfParams, MemoryStore};
use crate::{Client, ClientConfig, Error};

/// Removes `device` on the relay with the raw request, publishing nothing
/// after it (a removal whose publication failed).
async fn remove_on_relay_only(engine: &Arc<Engine>, device: DeviceId) {
    let removed = engine
        .request(Request::RemoveDevice { device })
        .await
        .expect("remove on the relay");
    assert_eq!(removed, Response::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_new_identity_the_account_publishes_above_the_old_identitys_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    let second = enrol(&alice).await;
    engine.add_own_device(second).await.expect("publish v1");
    alice.remove_device(second.0).await.expect("remove 2");
    assert_eq!(served(&engine).await.version(), 2);
    let old_identity = engine.identity.public();
    engine.disconnect().await;

    // The §15.3 remedy for a stolen device: a new identity on device 1.
    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let config =
        ClientConfig::with_store(relay.url(), store).kdf_params(KdfParams::insecure_for_tests());
    let reset = Client::login_with_new_identity(config, "alice", "pw-of-test")
        .await
        .expect("new identity");
    let fresh = reset.inner.clone();
    assert_ne!(fresh.identity.public(), old_identity);
    // The relay still serves version 2, signed by the old identity: honest,
    // so `devices` works and publishes ours above it.
    let listed = reset.devices().await.expect("devices after the reset");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].this_device && listed[0].listed, "{listed:?}");
    let list = served(&fresh).await;
    assert_eq!((list.version(), list.devices()), (3, ids(&[1]).as_slice()));
    assert_eq!(held(&fresh).await, list);
    // And the account links and lists devices again.
    let third = enrol(&reset).await;
    fresh.add_own_device(third).await.expect("publish v4");
    assert_eq!(served(&fresh).await.devices(), ids(&[1, third.0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_new_identity_starts_from_the_implicit_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let engine = alice.inner.clone();
    let bob_account = bob.inner.me().account;
    let bob_device = enrol(&bob).await;
    bob.inner.add_own_device(bob_device).await.expect("bob v1");
    let old = bob.inner.identity.public();
    // Alice verified bob's version 5 under his old identity.
    let v5 = sign_device_list(&bob.inner.identity, bob_account, 5, ids(&[1, 2])).expect("sign");
    engine
        .devices
        .keep_newer(&bob_account, &old, v5.clone())
        .await
        .expect("hold v5");

    // Bob's key changed (accepted by alice). While the relay still serves
    // his old identity's list it is refused under the new one, and the
    // old identity's held list is dropped: under the new identity the
    // account has the implicit list.
    let new = IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([21; 32]));
    let stale = engine
        .fetch_device_list(bob_account, &new.public())
        .await
        .expect_err("the old identity's list under the new one");
    assert!(
        matches!(
            stale,
            Error::Protocol(RelayMisbehaved::ForgedDeviceList { .. })
        ),
        "{stale:?}"
    );
    assert_eq!(
        engine.devices.held(&bob_account).await.expect("held"),
        HeldDeviceList::Implicit
    );
    // His new identity's version 2 is taken, though below the old
    // identity's 5.
    let new_v2 = sign_device_list(&new, bob_account, 2, ids(&[1])).expect("sign");
    relay
        .state
        .store
        .put_device_list(&new_v2, now_secs())
        .await
        .expect("serve the new identity's list");
    let under_new = engine
        .fetch_device_list(bob_account, &new.public())
        .await
        .expect("the new identity's list");
    assert_eq!(under_new, HeldDeviceList::Verified(new_v2.clone()));
    assert_eq!(
        engine.devices.held(&bob_account).await.expect("held"),
        HeldDeviceList::Verified(new_v2)
    );
    // Under the old identity the held list is now the implicit one.
    assert_eq!(
        engine
            .devices
            .held_under(&bob_account, &old)
            .await
            .expect("held"),
        HeldDeviceList::Implicit
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_naming_a_device_gone_from_the_relay_is_published_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    let second = enrol(&alice).await;
    engine.add_own_device(second).await.expect("publish v1");
    // Removed (perhaps by another device of the account) with no list
    // after it: the held and served lists still name it.
    remove_on_relay_only(&engine, second).await;
    let third = enrol(&alice).await;
    engine
        .add_own_device(third)
        .await
        .expect("publish without 2");
    let list = served(&engine).await;
    assert_eq!(
        (list.version(), list.devices()),
        (2, ids(&[1, third.0]).as_slice())
    );
    assert_eq!(held(&engine).await, list);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_is_never_signed_into_a_list_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    let account = engine.me().account;
    let second = enrol(&alice).await;
    engine.add_own_device(second).await.expect("publish v1");
    // remove_device's tombstone is written; its RemoveDevice never reached
    // the relay (or a colluding relay ignored it): device 2 is current.
    engine
        .devices
        .tombstone(&account, second)
        .await
        .expect("tombstone");
    let third = enrol(&alice).await;
    engine.add_own_device(third).await.expect("publish v2");
    let list = served(&engine).await;
    assert_eq!(
        (list.version(), list.devices()),
        (2, ids(&[1, third.0]).as_slice())
    );
    // Adding it back is refused before anything is signed.
    let refused = engine.add_own_device(second).await.expect_err("revive");
    assert!(
        matches!(refused, Error::Device(DeviceFailure::Removed(2))),
        "{refused:?}"
    );
    assert_eq!(served(&engine).await, list);

    // Client::remove_device keeps the tombstone too, and survives.
    alice.remove_device(third.0).await.expect("remove 3");
    assert_eq!(
        engine.devices.removed(&account).await.expect("removed"),
        ids(&[2, third.0])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_started_on_another_device_is_finished_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    let account = engine.me().account;
    let (second, third) = (enrol(&alice).await, enrol(&alice).await);
    // Another device published {1, 2, 3} (this one never fetched it), then
    // removed 3 on the relay and failed to publish the list after it.
    let other =
        sign_device_list(&engine.identity, account, 1, ids(&[1, second.0, third.0])).expect("sign");
    relay
        .state
        .store
        .put_device_list(&other, now_secs())
        .await
        .expect("the other device's list");
    remove_on_relay_only(&engine, third).await;
    assert_eq!(held(&engine).await, HeldDeviceList::Implicit);

    alice
        .remove_device(third.0)
        .await
        .expect("finish removing 3");
    let list = served(&engine).await;
    assert_eq!(
        (list.version(), list.devices()),
        (2, ids(&[1, second.0]).as_slice())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_version_is_never_passed_nor_signed_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    let account = engine.me().account;
    let last = sign_device_list(
        &engine.identity,
        account,
        MAX_DEVICE_LIST_VERSION,
        ids(&[1]),
    )
    .expect("sign");
    relay
        .state
        .store
        .put_device_list(&last, now_secs())
        .await
        .expect("the last version");
    let second = enrol(&alice).await;
    let refused = engine
        .add_own_device(second)
        .await
        .expect_err("no version left");
    assert!(
        matches!(
            refused,
            Error::Device(DeviceFailure::VersionExhausted { version }) if version == MAX_DEVICE_LIST_VERSION
        ),
        "{refused:?}"
    );
    assert_eq!(served(&engine).await, HeldDeviceList::Verified(last));
}
