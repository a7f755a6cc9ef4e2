//! One identity per account (docs/PROTOCOL.md 11.8 step 0, 15.1), on both
//! backends: a device publishes only the identity its account's other
//! current devices publish, two devices racing to publish two identities
//! leave one, and the identity is reset (device 1 publishing a new one)
//! only while the account has no other current device, published or not.
//!
//! Must never: pass with a store that lets two current devices of one
//! account hold two identities, or that changes a device's stored keys
//! when it refuses a publication.

use super::*;

fn at(account: AccountId, device: u32) -> Address {
    Address {
        account,
        device: DeviceId(device),
    }
}

async fn publish(
    store: &SharedStore,
    device: Address,
    tag: u8,
) -> Result<crate::store::PublishedKeys, StoreError> {
    store
        .put_keys(device, &identity(tag), &signed(u32::from(tag)), None)
        .await
}

/// A linked device offering an identity of its own is refused and stores
/// nothing; the account's identity is accepted; and once it published
/// that, device 1 cannot move to another either.
pub(super) async fn a_linked_device_may_publish_only_the_account_identity(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let first = at(alice, 1);
    let second = at(alice, store.add_device(alice, NOW).await.unwrap().0);
    publish(&store, first, 1).await.unwrap();

    let other = publish(&store, second, 2).await;
    assert!(
        matches!(other, Err(StoreError::AccountIdentityDiffers)),
        "{other:?}"
    );
    assert_eq!(store.published_identity(second).await.unwrap(), None);
    assert!(store.claim_bundle(second).await.unwrap().is_none());

    publish(&store, second, 1).await.unwrap();
    assert_eq!(
        store.published_identity(second).await.unwrap(),
        Some(identity(1))
    );
    // Now both publish it: neither may move alone.
    for device in [first, second] {
        let moved = publish(&store, device, 3).await;
        assert!(
            matches!(moved, Err(StoreError::AccountIdentityDiffers)),
            "{moved:?}"
        );
        assert_eq!(
            store.published_identity(device).await.unwrap(),
            Some(identity(1))
        );
    }
    // Another account's identity is still IdentityInUse, not this error.
    let bob = new_account(&store, "bob").await;
    let copied = publish(&store, at(bob, 1), 1).await;
    assert!(
        matches!(copied, Err(StoreError::IdentityInUse)),
        "{copied:?}"
    );
}

/// Two devices publishing two identities at once (two connections of the
/// pool, on PostgreSQL two transactions): the account row lock serializes
/// them, so exactly one is stored. Several fresh accounts, so the race is
/// run more than once.
pub(super) async fn two_devices_racing_to_publish_two_identities_leave_one(db: &TestDb) {
    let store = db.open().await;
    for round in 0..8u8 {
        let alice = new_account(&store, &format!("alice{round}")).await;
        let first = at(alice, 1);
        let second = at(alice, store.add_device(alice, NOW).await.unwrap().0);
        let (a, b) = (10 + 2 * round, 11 + 2 * round);
        let (one, two) = tokio::join!(publish(&store, first, a), publish(&store, second, b));
        let stored = [
            store.published_identity(first).await.unwrap(),
            store.published_identity(second).await.unwrap(),
        ];
        match (&one, &two) {
            (Ok(_), Err(StoreError::AccountIdentityDiffers)) => {
                assert_eq!(stored, [Some(identity(a)), None], "round {round}");
            }
            (Err(StoreError::AccountIdentityDiffers), Ok(_)) => {
                assert_eq!(stored, [None, Some(identity(b))], "round {round}");
            }
            other => panic!("round {round}: both or neither stored: {other:?}"),
        }
    }
}

/// The single-device reset (login with a new identity, 12.15): allowed
/// while the account has no other current device, refused while it has
/// one, whether that device published the old identity or was linked and
/// has not published yet (it holds the old identity and would be refused
/// it after the reset), and allowed again once that device is removed.
pub(super) async fn the_identity_is_reset_once_no_other_device_is_current(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let first = at(alice, 1);
    publish(&store, first, 1).await.unwrap();
    let reset = publish(&store, first, 2).await.unwrap();
    assert!(reset.identity_replaced);
    // A linked device that has not published yet holds the reset too, and
    // may still publish the identity it was linked with.
    let second = at(alice, store.add_device(alice, NOW).await.unwrap().0);
    let refused = publish(&store, first, 3).await;
    assert!(
        matches!(refused, Err(StoreError::AccountIdentityDiffers)),
        "{refused:?}"
    );
    assert_eq!(
        store.published_identity(first).await.unwrap(),
        Some(identity(2))
    );
    publish(&store, first, 2).await.unwrap();
    publish(&store, second, 2).await.unwrap();
    // Published, it holds the reset as well.
    let refused = publish(&store, first, 4).await;
    assert!(
        matches!(refused, Err(StoreError::AccountIdentityDiffers)),
        "{refused:?}"
    );
    assert_eq!(
        store.published_identity(first).await.unwrap(),
        Some(identity(2))
    );
    store.remove_device(first, second, NOW + 1).await.unwrap();
    publish(&store, first, 4).await.unwrap();
    assert_eq!(
        store.published_identity(first).await.unwrap(),
        Some(identity(4))
    );
    // A third device, linked and removed before publishing, no longer
    // holds it.
    let third = at(alice, store.add_device(alice, NOW + 2).await.unwrap().0);
    assert!(publish(&store, first, 5).await.is_err());
    store.remove_device(first, third, NOW + 3).await.unwrap();
    publish(&store, first, 5).await.unwrap();
}

/// A fresh account's first publication is no reset: device 1 may publish
/// its first identity after linking a device that has not published
/// either, and that device then publishes the same one.
pub(super) async fn a_fresh_account_publishes_its_first_identity_beside_a_linked_device(
    db: &TestDb,
) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let first = at(alice, 1);
    let second = at(alice, store.add_device(alice, NOW).await.unwrap().0);
    publish(&store, first, 1).await.unwrap();
    publish(&store, second, 1).await.unwrap();
    // The linked device's own first identity, though, is refused.
    let third = at(alice, store.add_device(alice, NOW).await.unwrap().0);
    let own = publish(&store, third, 2).await;
    assert!(
        matches!(own, Err(StoreError::AccountIdentityDiffers)),
        "{own:?}"
    );
}
