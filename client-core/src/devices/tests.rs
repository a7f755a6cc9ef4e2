//! Device lists over a real relay in this process (crate::devices): a
//! second device is enrolled through the raw link frames (LinkCreate and
//! LinkEnrol on alice's own connection, LinkJoin and LinkFetch on an
//! unauthenticated one), since the client's link flow is not what is
//! tested here.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use umbra_protocol::device_list::{sign_device_list, HeldDeviceList};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{DeviceId, Request, Response};

use super::own::{ListChange, OwnView};
use crate::engine::{now_secs, Engine};
use crate::failure::{DeviceFailure, RelayMisbehaved};
use crate::groups::tests::{register, relay};
use crate::{Client, Error};

pub(super) fn ids(v: &[u32]) -> Vec<DeviceId> {
    v.iter().copied().map(DeviceId).collect()
}

/// Enrols a new device of `client`'s account through the raw link frames
/// (`outbound::tests_devices::enrol_device`); returns its id.
pub(super) async fn enrol(client: &Client) -> DeviceId {
    crate::outbound::tests_devices::enrol_device(client)
        .await
        .device
}

/// What the relay serves as `engine`'s own list, verified under its identity.
pub(super) async fn served(engine: &Arc<Engine>) -> HeldDeviceList {
    let Response::DeviceList { list } = engine
        .request(Request::FetchDeviceList {
            account: engine.me().account,
        })
        .await
        .expect("fetch list")
    else {
        panic!("no list")
    };
    HeldDeviceList::Implicit
        .accept(
            &engine.me().account,
            &engine.identity.public(),
            &list.expect("a list was published"),
        )
        .expect("the served list verifies under the identity")
}

pub(super) async fn held(engine: &Arc<Engine>) -> HeldDeviceList {
    engine
        .devices
        .held(&engine.me().account)
        .await
        .expect("held")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_lists_both_and_the_published_list_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();

    let alone = alice.devices().await.expect("devices");
    assert_eq!(alone.len(), 1);
    assert!(alone[0].this_device && alone[0].listed, "{alone:?}");
    assert_eq!(alone[0].device_id, 1);

    let second = enrol(&alice).await;
    assert_eq!(second, DeviceId(2));
    let both = alice.devices().await.expect("devices");
    let marks: Vec<(u32, bool, bool)> = both
        .iter()
        .map(|d| (d.device_id, d.this_device, d.listed))
        .collect();
    // Device 2 is current but no list names it yet.
    assert_eq!(marks, [(1, true, true), (2, false, false)]);
    assert!(both.iter().all(|d| d.created_at > 0));

    engine.add_own_device(second).await.expect("publish");
    let list = served(&engine).await;
    assert_eq!(list.version(), 1);
    assert_eq!(list.devices(), ids(&[1, 2]));
    assert_eq!(held(&engine).await, list);
    let listed: Vec<bool> = alice
        .devices()
        .await
        .expect("devices")
        .iter()
        .map(|d| d.listed)
        .collect();
    assert_eq!(listed, [true, true]);

    // Adding a device the list names already publishes nothing.
    engine.add_own_device(second).await.expect("again");
    assert_eq!(served(&engine).await.version(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_publication_is_rebuilt_on_the_newer_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    let (second, third) = (enrol(&alice).await, enrol(&alice).await);
    engine.add_own_device(second).await.expect("publish 2");

    // A view from before that publication (as another device of the
    // account would have had): version 1 with device 3 is stale.
    let after = engine
        .publish_own_from(
            OwnView::of(HeldDeviceList::Implicit),
            ListChange::Add(third),
        )
        .await
        .expect("publish on a stale view");
    let list = served(&engine).await;
    assert_eq!(list.version(), 2);
    // Built on the list that won: device 2 stays.
    assert_eq!(list.devices(), ids(&[1, 2, 3]));
    assert_eq!(after, list);
    assert_eq!(held(&engine).await, list);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_device_removes_it_from_the_relay_and_the_list_and_never_this_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    let second = enrol(&alice).await;
    engine.add_own_device(second).await.expect("publish");

    let refused = alice.remove_device(1).await.expect_err("remove self");
    assert!(
        matches!(refused, Error::Device(DeviceFailure::ThisDevice(1))),
        "{refused:?}"
    );
    // Refused before anything is asked: offline, the answer is the same.
    engine.disconnect().await;
    let offline = engine.remove_device(1).await.expect_err("offline");
    assert!(
        matches!(offline, Error::Device(DeviceFailure::ThisDevice(1))),
        "{offline:?}"
    );
    let unknown = alice.remove_device(9).await.expect_err("remove unknown");
    assert!(
        matches!(unknown, Error::Device(DeviceFailure::Unknown(9))),
        "{unknown:?}"
    );
    assert_eq!(alice.devices().await.expect("devices").len(), 2);

    alice.remove_device(second.0).await.expect("remove 2");
    let left: Vec<u32> = alice
        .devices()
        .await
        .expect("devices")
        .iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(left, [1]);
    let list = served(&engine).await;
    assert_eq!((list.version(), list.devices()), (2, ids(&[1]).as_slice()));
    assert_eq!(held(&engine).await, list);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_the_identity_did_not_sign_or_an_older_one_is_refused_and_the_held_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    let account = engine.me().account;
    let second = enrol(&alice).await;
    engine.add_own_device(second).await.expect("publish");
    let before = held(&engine).await;

    // The relay (its store written directly, past the signature check of
    // PublishDeviceList) serves a newer list signed by another identity:
    // for a contact that is a forgery (15.3 rule 2), and the held list
    // stays.
    let mallory = IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([9; 32]));
    let forged = sign_device_list(&mallory, account, 7, ids(&[1, 2])).expect("sign");
    relay
        .state
        .store
        .put_device_list(&forged, now_secs())
        .await
        .expect("inject");
    let refused = engine
        .fetch_device_list(account, &engine.identity.public())
        .await
        .expect_err("forged");
    assert!(
        matches!(
            refused,
            Error::Protocol(RelayMisbehaved::ForgedDeviceList { account: a }) if a == account
        ),
        "{refused:?}"
    );
    assert_eq!(held(&engine).await, before);
    // For our own account it is superseded (honest after an identity
    // reset): our held list again, above the served version.
    let republished = engine.fetch_own_device_list().await.expect("superseded");
    assert_eq!(
        (republished.version(), republished.devices()),
        (8, ids(&[1, 2]).as_slice())
    );
    assert_eq!(served(&engine).await, republished);
    assert_eq!(held(&engine).await, republished);

    // This client verified version 9 before; the relay serves its own
    // (genuinely signed) version 8: a rollback.
    let newer = sign_device_list(&engine.identity, account, 9, ids(&[1])).expect("sign");
    engine
        .devices
        .keep_newer(&account, &engine.identity.public(), newer.clone())
        .await
        .expect("hold v9");
    // (The relay holds our version 8 from above.)
    let rollback = engine.fetch_own_device_list().await.expect_err("rollback");
    assert!(
        matches!(
            rollback,
            Error::Protocol(RelayMisbehaved::DeviceListRollback {
                held: 9,
                got: 8,
                ..
            })
        ),
        "{rollback:?}"
    );
    assert_eq!(held(&engine).await, HeldDeviceList::Verified(newer.clone()));

    // The same version again is no change, and no error.
    relay
        .state
        .store
        .put_device_list(&newer, now_secs())
        .await
        .expect("serve v9");
    let same = engine.fetch_own_device_list().await.expect("same version");
    assert_eq!(same, HeldDeviceList::Verified(newer));

    // The held version with other bytes (genuinely signed, as a device of
    // the account could have signed them): equivocation, not no change.
    let held_v10 = sign_device_list(&engine.identity, account, 10, ids(&[1])).expect("sign");
    engine
        .devices
        .keep_newer(&account, &engine.identity.public(), held_v10.clone())
        .await
        .expect("hold v10");
    let other_v10 = sign_device_list(&engine.identity, account, 10, ids(&[1, 2])).expect("sign");
    relay
        .state
        .store
        .put_device_list(&other_v10, now_secs())
        .await
        .expect("serve another v10");
    let twice = engine
        .fetch_own_device_list()
        .await
        .expect_err("equivocation");
    assert!(
        matches!(
            twice,
            Error::Protocol(RelayMisbehaved::DeviceListEquivocation { version: 10, .. })
        ),
        "{twice:?}"
    );
    assert_eq!(held(&engine).await, HeldDeviceList::Verified(held_v10));
}

#[tokio::test]
async fn the_manager_never_replaces_a_held_list_by_an_older_or_equal_one() {
    let manager = super::DeviceManager::new(crate::store::Vault::for_tests().await);
    let owner = IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([4; 32]));
    let account = umbra_protocol::wire::AccountId::from_bytes([6; 16]);
    let other = umbra_protocol::wire::AccountId::from_bytes([7; 16]);
    assert_eq!(
        manager.held(&account).await.expect("held"),
        HeldDeviceList::Implicit
    );
    let v2 = sign_device_list(&owner, account, 2, ids(&[1, 2])).expect("sign");
    let v1 = sign_device_list(&owner, account, 1, ids(&[1])).expect("sign");
    let again = sign_device_list(&owner, account, 2, ids(&[1])).expect("sign");
    let held = HeldDeviceList::Verified(v2.clone());
    assert_eq!(
        manager
            .keep_newer(&account, &owner.public(), v2)
            .await
            .expect("v2"),
        held
    );
    assert_eq!(
        manager
            .keep_newer(&account, &owner.public(), v1)
            .await
            .expect("v1"),
        held
    );
    assert_eq!(
        manager
            .keep_newer(&account, &owner.public(), again)
            .await
            .expect("v2'"),
        held
    );
    assert_eq!(manager.held(&account).await.expect("held"), held);
    // Lists are held per account.
    assert_eq!(
        manager.held(&other).await.expect("other"),
        HeldDeviceList::Implicit
    );
}

#[test]
fn the_stored_record_is_format_1_list_identity_and_tombstones_and_format_0_still_reads() {
    let owner = IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([3; 32]));
    let account = umbra_protocol::wire::AccountId::from_bytes([5; 16]);
    let list = sign_device_list(&owner, account, 2, ids(&[1, 2])).expect("sign");
    let stored = super::StoredDeviceList::default()
        .with_removed(DeviceId(3))
        .with_list(list.clone(), &owner.public());
    let bytes = postcard::to_allocvec(&stored).expect("encode");
    let encoded = list.encode();
    // format 1, Some(list bytes), Some(identity: 128 bytes), removed [3].
    let mut want = vec![0x01, 0x01, u8::try_from(encoded.len()).expect("short")];
    want.extend(&encoded);
    want.extend([0x01, 0x80, 0x01]);
    want.extend(owner.public().to_bytes());
    want.extend([0x01, 0x03]);
    assert_eq!(bytes, want);
    let back: super::StoredDeviceList = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(back.removed(), ids(&[3]));
    assert_eq!(
        back.held_under(&owner.public()),
        HeldDeviceList::Verified(list.clone())
    );
    // Under another identity the held list is the implicit one.
    let other = IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([4; 32]));
    assert_eq!(back.held_under(&other.public()), HeldDeviceList::Implicit);

    // Format 0 (the list alone) still reads; its list counts for the
    // identity that signed it only.
    let old = super::StoredDeviceList::format_0_bytes(&list);
    let mut want_old = vec![0x00, u8::try_from(encoded.len()).expect("short")];
    want_old.extend(&encoded);
    assert_eq!(old, want_old);
    let old: super::StoredDeviceList = postcard::from_bytes(&old).expect("format 0");
    assert_eq!(
        old.held_under(&owner.public()),
        HeldDeviceList::Verified(list)
    );
    assert_eq!(old.held_under(&other.public()), HeldDeviceList::Implicit);
    // A stored value that is no list does not decode.
    let mut broken = want.clone();
    broken[3] = 0x02;
    assert!(postcard::from_bytes::<super::StoredDeviceList>(&broken).is_err());
}

/// A current device the list does not name (a link whose publication
/// failed) is added on the user's word for its id; an id the relay does
/// not list as current is refused and nothing is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_device_publishes_a_current_unlisted_device_and_refuses_another_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    let second = enrol(&alice).await;
    let unknown = alice.list_device(9).await;
    assert!(
        matches!(unknown, Err(Error::Device(DeviceFailure::Unknown(9)))),
        "{unknown:?}"
    );
    alice.list_device(second.0).await.expect("list it");
    let list = served(&engine).await;
    assert_eq!(list.devices(), ids(&[1, 2]));
    let listed: Vec<bool> = alice
        .devices()
        .await
        .expect("devices")
        .iter()
        .map(|d| d.listed)
        .collect();
    assert_eq!(listed, [true, true]);
    // Removed (a tombstone): never listed again, even by this call.
    alice.remove_device(second.0).await.expect("remove");
    let again = alice.list_device(second.0).await;
    assert!(
        matches!(again, Err(Error::Device(DeviceFailure::Unknown(2)))),
        "{again:?}"
    );
    assert_eq!(served(&engine).await.devices(), ids(&[1]));
}
