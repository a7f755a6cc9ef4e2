//! The key directory, on both backends.

use super::*;

// ----- key directory ----------------------------------------------------------

pub(super) async fn concurrent_claims_never_share_a_one_time_prekey(db: &TestDb) {
    let store = db.open().await;
    let device = Address::primary(new_account(&store, "alice").await);
    publish_device(&store, device).await;
    let keys: Vec<PreKeyWire> = (1..=20).map(one_time).collect();
    assert_eq!(store.add_one_time_prekeys(device, &keys).await.unwrap(), 20);

    // Warm the pool, then release all claimers at once so they really race.
    let pings = (0..32).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.ping().await })
    });
    for ping in pings.collect::<Vec<_>>() {
        ping.await.unwrap().unwrap();
    }
    let start = Arc::new(tokio::sync::Barrier::new(32));
    let claims: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                store.claim_bundle(device).await
            })
        })
        .collect();
    let mut claimed = Vec::new();
    let mut fell_back = 0;
    for claim in claims {
        let bundle = claim
            .await
            .unwrap()
            .unwrap()
            .expect("device published keys");
        assert_eq!(bundle.last_resort.map(|k| k.id), Some(999_999));
        assert_eq!(bundle.signed_prekey, signed(1));
        assert_eq!(bundle.identity, vec![9u8; 128]);
        match bundle.one_time_prekey {
            Some(key) => claimed.push(key),
            None => fell_back += 1,
        }
    }
    let ids: BTreeSet<u32> = claimed.iter().map(|k| k.id).collect();
    assert_eq!(claimed.len(), 20, "every key handed out");
    assert_eq!(ids, (1..=20).collect(), "each key exactly once");
    assert!(claimed.iter().all(|k| k.key == key(k.id)), "keys intact");
    assert_eq!(fell_back, 12);
    assert_eq!(store.one_time_prekey_count(device).await.unwrap(), 0);
}

pub(super) async fn bundles_need_published_keys_and_uploads_are_idempotent(db: &TestDb) {
    let store = db.open().await;
    let device = Address::primary(new_account(&store, "alice").await);
    store
        .add_one_time_prekeys(device, &[one_time(1)])
        .await
        .unwrap();
    assert!(store.claim_bundle(device).await.unwrap().is_none());
    assert_eq!(
        store.one_time_prekey_count(device).await.unwrap(),
        1,
        "a refused claim consumes nothing"
    );
    publish_device(&store, device).await;
    // Re-uploading id 1 (a retry) does not duplicate it.
    let count = store
        .add_one_time_prekeys(device, &[one_time(1), one_time(2)])
        .await
        .unwrap();
    assert_eq!(count, 2);
    // The same id with another key is refused, and the batch with it.
    let conflicting = PreKeyWire {
        id: 2,
        key: key(99),
    };
    let refused = store
        .add_one_time_prekeys(device, &[one_time(3), conflicting])
        .await;
    assert!(
        matches!(refused, Err(StoreError::PreKeyIdConflict { id: 2 })),
        "{refused:?}"
    );
    assert_eq!(
        store.one_time_prekey_count(device).await.unwrap(),
        2,
        "a refused batch adds nothing"
    );
    let first = store.claim_bundle(device).await.unwrap().unwrap();
    assert_eq!(first.one_time_prekey, Some(one_time(1)), "lowest id first");
    assert_eq!(first.account, device.account);
    assert_eq!(first.device, device.device);
    // Replacing the signed prekey serves the new one.
    store
        .put_keys(device, &identity(9), &signed(2), None)
        .await
        .unwrap();
    let second = store.claim_bundle(device).await.unwrap().unwrap();
    assert_eq!(second.signed_prekey, signed(2));
    assert_eq!(second.one_time_prekey, Some(one_time(2)));
    let third = store.claim_bundle(device).await.unwrap().unwrap();
    assert_eq!(third.one_time_prekey, None);

    let unknown = store
        .put_keys(Address::primary(account_id(5)), &[1], &signed(1), None)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownAccount)),
        "{unknown:?}"
    );
}

pub(super) async fn an_identity_another_device_publishes_is_refused(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let mallory = Address::primary(new_account(&store, "mallory").await);
    store
        .put_keys(alice, &identity(1), &signed(1), Some(&last_resort(500)))
        .await
        .unwrap();
    // Mallory copies Alice's identity and signed prekey.
    let copied = store
        .put_keys(mallory, &identity(1), &signed(1), Some(&last_resort(501)))
        .await;
    assert!(
        matches!(copied, Err(StoreError::IdentityInUse)),
        "{copied:?}"
    );
    assert!(
        store.claim_bundle(mallory).await.unwrap().is_none(),
        "nothing of the refused copy is served"
    );
    // A second device of the same account shares it (PROTOCOL.md 15.1).
    store.add_device(alice.account, NOW).await.unwrap();
    let second = Address {
        device: DeviceId(2),
        ..alice
    };
    store
        .put_keys(second, &identity(1), &signed(1), None)
        .await
        .expect("the devices of one account publish one identity");
    // The owner still rotates its signed prekey, and Mallory publishes her own.
    store
        .put_keys(alice, &identity(1), &signed(2), None)
        .await
        .unwrap();
    store
        .put_keys(mallory, &identity(2), &signed(1), None)
        .await
        .unwrap();
    let bundle = store.claim_bundle(alice).await.unwrap().unwrap();
    assert_eq!(bundle.identity, identity(1));
    assert_eq!(bundle.signed_prekey, signed(2));
}

pub(super) async fn rotating_the_signed_prekey_keeps_one_time_prekeys(db: &TestDb) {
    let store = db.open().await;
    let device = Address::primary(new_account(&store, "alice").await);
    let first = store
        .put_keys(device, &identity(1), &signed(1), Some(&last_resort(500)))
        .await
        .unwrap();
    assert!(!first.identity_replaced, "a first publish replaces nothing");
    assert_eq!(first.one_time_prekeys_discarded, 0);
    let keys: Vec<PreKeyWire> = (1..=5).map(one_time).collect();
    assert_eq!(store.add_one_time_prekeys(device, &keys).await.unwrap(), 5);

    // Same identity, new signed prekey, no last-resort key given.
    let rotated = store
        .put_keys(device, &identity(1), &signed(2), None)
        .await
        .unwrap();
    assert!(!rotated.identity_replaced);
    assert_eq!(rotated.one_time_prekeys_discarded, 0);
    assert_eq!(store.one_time_prekey_count(device).await.unwrap(), 5);
    let bundle = store.claim_bundle(device).await.unwrap().unwrap();
    assert_eq!(bundle.identity, identity(1));
    assert_eq!(bundle.signed_prekey, signed(2));
    assert_eq!(bundle.one_time_prekey, Some(one_time(1)));
    assert_eq!(
        bundle.last_resort,
        Some(last_resort(500)),
        "the last-resort key survives a rotation that does not replace it"
    );
}

pub(super) async fn a_new_identity_drops_the_old_identitys_prekeys(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    store
        .put_keys(alice, &identity(1), &signed(1), Some(&last_resort(500)))
        .await
        .unwrap();
    publish_device(&store, bob).await;
    let keys: Vec<PreKeyWire> = (1..=4).map(one_time).collect();
    store.add_one_time_prekeys(alice, &keys).await.unwrap();
    store.add_one_time_prekeys(bob, &keys).await.unwrap();

    // Alice reinstalls: a new identity, and no last-resort key yet.
    let replaced = store
        .put_keys(alice, &identity(2), &signed(3), None)
        .await
        .unwrap();
    assert!(replaced.identity_replaced);
    assert_eq!(replaced.one_time_prekeys_discarded, 4);
    assert_eq!(store.one_time_prekey_count(alice).await.unwrap(), 0);
    let bundle = store.claim_bundle(alice).await.unwrap().unwrap();
    assert_eq!(bundle.identity, identity(2));
    assert_eq!(bundle.signed_prekey, signed(3));
    assert_eq!(
        bundle.one_time_prekey, None,
        "no one-time key of the old identity is ever served with the new one"
    );
    assert_eq!(
        bundle.last_resort, None,
        "nor the old identity's last-resort key"
    );
    assert_eq!(
        store.one_time_prekey_count(bob).await.unwrap(),
        4,
        "other accounts are untouched"
    );

    // The new identity's own keys work as usual.
    let again = store
        .put_keys(alice, &identity(2), &signed(4), Some(&last_resort(501)))
        .await
        .unwrap();
    assert!(!again.identity_replaced);
    store
        .add_one_time_prekeys(alice, &[one_time(7)])
        .await
        .unwrap();
    let bundle = store.claim_bundle(alice).await.unwrap().unwrap();
    assert_eq!(bundle.one_time_prekey, Some(one_time(7)));
    assert_eq!(bundle.last_resort, Some(last_resort(501)));

    // A new identity that brings its own last-resort key stores it.
    let third = store
        .put_keys(alice, &identity(3), &signed(5), Some(&last_resort(502)))
        .await
        .unwrap();
    assert!(third.identity_replaced);
    assert_eq!(third.one_time_prekeys_discarded, 0);
    let bundle = store.claim_bundle(alice).await.unwrap().unwrap();
    assert_eq!(bundle.identity, identity(3));
    assert_eq!(bundle.last_resort, Some(last_resort(502)));
}

pub(super) async fn published_identity_is_read_without_claiming_a_prekey(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    assert_eq!(
        store.published_identity(alice).await.unwrap(),
        None,
        "nothing published yet"
    );
    assert_eq!(
        store
            .published_identity(Address::primary(account_id(77)))
            .await
            .unwrap(),
        None,
        "no such account"
    );
    store
        .put_keys(alice, &identity(1), &signed(1), None)
        .await
        .unwrap();
    store
        .add_one_time_prekeys(alice, &[one_time(1), one_time(2)])
        .await
        .unwrap();
    publish_device(&store, bob).await;
    assert_eq!(
        store.published_identity(alice).await.unwrap(),
        Some(identity(1))
    );
    assert_eq!(
        store.one_time_prekey_count(alice).await.unwrap(),
        2,
        "reading the identity claims nothing"
    );
    assert_eq!(
        store.published_identity(bob).await.unwrap(),
        Some(identity(9)),
        "each device answers its own identity"
    );

    // A signed-prekey rotation keeps the identity; a reinstall replaces it.
    store
        .put_keys(alice, &identity(1), &signed(2), None)
        .await
        .unwrap();
    assert_eq!(
        store.published_identity(alice).await.unwrap(),
        Some(identity(1))
    );
    store
        .put_keys(alice, &identity(2), &signed(3), None)
        .await
        .unwrap();
    assert_eq!(
        store.published_identity(alice).await.unwrap(),
        Some(identity(2))
    );

    store.delete_account(alice.account, NOW).await.unwrap();
    assert_eq!(store.published_identity(alice).await.unwrap(), None);
}

/// Key id whose last-resort write the injected trigger aborts.
const FAILING_KEY_ID: u32 = 666;

pub(super) async fn a_failed_publish_leaves_the_previous_keys_whole(db: &TestDb) {
    let store = db.open().await;
    let device = Address::primary(new_account(&store, "alice").await);
    publish_device(&store, device).await;
    let keys: Vec<PreKeyWire> = (1..=3).map(one_time).collect();
    store.add_one_time_prekeys(device, &keys).await.unwrap();

    // Make the LAST write of the publish fail, after the identity, signed
    // prekey and prekey deletion have already run inside the transaction.
    db.execute_raw(
        &[
            "CREATE TRIGGER fail_last_resort_insert BEFORE INSERT ON last_resort_prekeys \
             WHEN NEW.key_id = 666 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            "CREATE TRIGGER fail_last_resort_update BEFORE UPDATE ON last_resort_prekeys \
             WHEN NEW.key_id = 666 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ],
        &[
            "CREATE FUNCTION fail_last_resort() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
            "CREATE TRIGGER fail_last_resort BEFORE INSERT OR UPDATE ON last_resort_prekeys \
             FOR EACH ROW WHEN (NEW.key_id = 666) EXECUTE FUNCTION fail_last_resort()",
        ],
    )
    .await;

    let failed = store
        .put_keys(
            device,
            &identity(2),
            &signed(2),
            Some(&last_resort(FAILING_KEY_ID)),
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
    assert_eq!(
        store.one_time_prekey_count(device).await.unwrap(),
        3,
        "the deletion of the old one-time prekeys was rolled back"
    );
    let bundle = store.claim_bundle(device).await.unwrap().unwrap();
    assert_eq!(bundle.identity, identity(9), "old identity kept");
    assert_eq!(bundle.signed_prekey, signed(1), "old signed prekey kept");
    assert_eq!(bundle.last_resort, Some(last_resort(999_999)));
    assert_eq!(bundle.one_time_prekey, Some(one_time(1)));

    // Once the fault is gone the same publish goes through whole.
    let done = store
        .put_keys(device, &identity(2), &signed(2), Some(&last_resort(7)))
        .await
        .unwrap();
    assert!(done.identity_replaced);
    assert_eq!(done.one_time_prekeys_discarded, 2);
    let bundle = store.claim_bundle(device).await.unwrap().unwrap();
    assert_eq!(bundle.identity, identity(2));
    assert_eq!(bundle.signed_prekey, signed(2));
    assert_eq!(bundle.last_resort, Some(last_resort(7)));
    assert_eq!(bundle.one_time_prekey, None);
}

pub(super) async fn one_time_prekeys_are_capped_per_account(db: &TestDb) {
    let store = db
        .open_with(StoreLimits {
            max_one_time_prekeys_per_account: 10,
            ..StoreLimits::default()
        })
        .await;
    let account = new_account(&store, "alice").await;
    let first = Address::primary(account);
    let second = Address {
        account,
        device: DeviceId(2),
    };
    let batch: Vec<PreKeyWire> = (1..=6).map(one_time).collect();
    assert_eq!(store.add_one_time_prekeys(first, &batch).await.unwrap(), 6);
    let over: Vec<PreKeyWire> = (7..=11).map(one_time).collect();
    let refused = store.add_one_time_prekeys(second, &over).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::TooManyPreKeys {
                stored: 6,
                offered: 5,
                limit: 10
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        store.one_time_prekey_count(second).await.unwrap(),
        0,
        "all or nothing"
    );
    assert_eq!(store.one_time_prekey_count(first).await.unwrap(), 6);
    let fits: Vec<PreKeyWire> = (7..=10).map(one_time).collect();
    assert_eq!(store.add_one_time_prekeys(second, &fits).await.unwrap(), 4);
    // Other accounts have their own allowance.
    let bob = Address::primary(new_account(&store, "bob").await);
    assert_eq!(store.add_one_time_prekeys(bob, &batch).await.unwrap(), 6);
}
