//! The key directory's ML-KEM prekeys (docs/PROTOCOL.md 11.8), on both
//! backends: uploads all or nothing and only under the published identity,
//! one-time KEM prekeys claimed once (under real concurrency), the
//! last-resort one always served, and every one dropped with the identity
//! that signed it, the device, and the account.
//!
//! Must never: pass with a store that hands one KEM prekey to two
//! claimers, keeps part of a refused upload, or serves a KEM prekey beside
//! an identity that did not sign it. (The store does not check signatures:
//! these keys carry fake ones; the relay's own tests check real ones.)

use super::*;
use crate::store::KemPreKeyStock;
use umbra_wire::{KemPreKeyWire, KEM_PREKEY_KEY_LEN};

/// A KEM prekey whose key bytes are derived from `id` (and `salt`, for a
/// different key under the same id).
pub(super) fn kem(id: u32, salt: u8) -> KemPreKeyWire {
    let mut key = vec![salt; KEM_PREKEY_KEY_LEN];
    key[..4].copy_from_slice(&id.to_be_bytes());
    KemPreKeyWire {
        id,
        created_at: NOW + u64::from(id),
        key,
        signature: [id as u8; 64],
    }
}

fn kems(ids: std::ops::RangeInclusive<u32>) -> Vec<KemPreKeyWire> {
    ids.map(|id| kem(id, 0)).collect()
}

fn stock(one_time: u64, last_resort: bool) -> KemPreKeyStock {
    KemPreKeyStock {
        one_time,
        last_resort,
    }
}

pub(super) async fn kem_prekeys_are_stored_under_the_published_identity_all_or_nothing(
    db: &TestDb,
) {
    let store = db.open().await;
    let device = Address::primary(new_account(&store, "alice").await);
    // Nothing published: no identity to have signed them.
    let early = store
        .put_kem_prekeys(device, &identity(9), Some(&kem(500, 0)), &kems(1..=2))
        .await;
    assert!(
        matches!(early, Err(StoreError::KemPreKeyIdentityChanged)),
        "{early:?}"
    );
    assert!(store.claim_hybrid_bundle(device).await.unwrap().is_none());
    publish_device(&store, device).await;
    assert_eq!(
        store.kem_prekey_stock(device).await.unwrap(),
        stock(0, false)
    );

    // Checked under another identity than the one published: nothing.
    let stale = store
        .put_kem_prekeys(device, &identity(8), Some(&kem(500, 0)), &kems(1..=2))
        .await;
    assert!(
        matches!(stale, Err(StoreError::KemPreKeyIdentityChanged)),
        "{stale:?}"
    );
    assert_eq!(
        store.kem_prekey_stock(device).await.unwrap(),
        stock(0, false)
    );

    let stored = store
        .put_kem_prekeys(device, &identity(9), Some(&kem(500, 0)), &kems(1..=3))
        .await
        .unwrap();
    assert_eq!(stored, stock(3, true));
    // A retry of the same keys changes nothing.
    let retried = store
        .put_kem_prekeys(device, &identity(9), None, &kems(1..=3))
        .await
        .unwrap();
    assert_eq!(retried, stock(3, true));
    // A stored id with another key refuses the whole upload, its new
    // last-resort key and new ids included.
    let conflicting = store
        .put_kem_prekeys(
            device,
            &identity(9),
            Some(&kem(501, 0)),
            &[kem(4, 0), kem(2, 7)],
        )
        .await;
    assert!(
        matches!(conflicting, Err(StoreError::PreKeyIdConflict { id: 2 })),
        "{conflicting:?}"
    );
    assert_eq!(
        store.kem_prekey_stock(device).await.unwrap(),
        stock(3, true)
    );

    let first = store.claim_hybrid_bundle(device).await.unwrap().unwrap();
    assert_eq!(
        first.kem_one_time,
        Some(kem(1, 0)),
        "lowest id first, intact"
    );
    assert_eq!(first.kem_last_resort, Some(kem(500, 0)));
    assert_eq!(first.bundle.identity, identity(9));
    assert_eq!(first.bundle.account, device.account);
    // A new last-resort key replaces the old one.
    store
        .put_kem_prekeys(device, &identity(9), Some(&kem(501, 3)), &[])
        .await
        .unwrap();
    let second = store.claim_hybrid_bundle(device).await.unwrap().unwrap();
    assert_eq!(second.kem_one_time, Some(kem(2, 0)));
    assert_eq!(second.kem_last_resort, Some(kem(501, 3)));
    store.claim_hybrid_bundle(device).await.unwrap().unwrap();
    let empty = store.claim_hybrid_bundle(device).await.unwrap().unwrap();
    assert_eq!(empty.kem_one_time, None, "each one-time key once");
    assert_eq!(
        empty.kem_last_resort,
        Some(kem(501, 3)),
        "the last-resort key is always served"
    );
    assert_eq!(
        store.kem_prekey_stock(device).await.unwrap(),
        stock(0, true)
    );

    let unknown = store
        .put_kem_prekeys(Address::primary(account_id(5)), &identity(9), None, &[])
        .await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownAccount)),
        "{unknown:?}"
    );
}

pub(super) async fn a_classical_claim_leaves_the_kem_prekeys(db: &TestDb) {
    let store = db.open().await;
    let device = Address::primary(new_account(&store, "alice").await);
    publish_device(&store, device).await;
    store
        .add_one_time_prekeys(device, &[one_time(1), one_time(2)])
        .await
        .unwrap();
    store
        .put_kem_prekeys(device, &identity(9), Some(&kem(500, 0)), &kems(1..=2))
        .await
        .unwrap();
    let classical = store.claim_bundle(device).await.unwrap().unwrap();
    assert_eq!(classical.one_time_prekey, Some(one_time(1)));
    assert_eq!(
        store.kem_prekey_stock(device).await.unwrap(),
        stock(2, true)
    );
    // A hybrid claim takes one of each, in one transaction.
    let hybrid = store.claim_hybrid_bundle(device).await.unwrap().unwrap();
    assert_eq!(hybrid.bundle.one_time_prekey, Some(one_time(2)));
    assert_eq!(hybrid.kem_one_time, Some(kem(1, 0)));
    assert_eq!(store.one_time_prekey_count(device).await.unwrap(), 0);
    assert_eq!(
        store.kem_prekey_stock(device).await.unwrap(),
        stock(1, true)
    );
}

pub(super) async fn concurrent_hybrid_claims_never_share_a_kem_prekey(db: &TestDb) {
    let store = db.open().await;
    let device = Address::primary(new_account(&store, "alice").await);
    publish_device(&store, device).await;
    let keys: Vec<PreKeyWire> = (1..=20).map(one_time).collect();
    store.add_one_time_prekeys(device, &keys).await.unwrap();
    // Fewer KEM keys than X25519 ones: each kind runs out on its own.
    store
        .put_kem_prekeys(device, &identity(9), Some(&kem(900, 0)), &kems(1..=15))
        .await
        .unwrap();

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
                store.claim_hybrid_bundle(device).await
            })
        })
        .collect();
    let mut kem_claimed = Vec::new();
    let mut x25519_claimed = Vec::new();
    for claim in claims {
        let hybrid = claim
            .await
            .unwrap()
            .unwrap()
            .expect("device published keys");
        assert_eq!(hybrid.kem_last_resort, Some(kem(900, 0)), "in every bundle");
        assert_eq!(hybrid.bundle.last_resort.map(|k| k.id), Some(999_999));
        kem_claimed.extend(hybrid.kem_one_time);
        x25519_claimed.extend(hybrid.bundle.one_time_prekey.map(|k| k.id));
    }
    let kem_ids: BTreeSet<u32> = kem_claimed.iter().map(|k| k.id).collect();
    assert_eq!(kem_claimed.len(), 15, "every KEM key handed out");
    assert_eq!(kem_ids, (1..=15).collect(), "each KEM key exactly once");
    assert!(
        kem_claimed.iter().all(|k| *k == kem(k.id, 0)),
        "KEM keys intact"
    );
    let x25519_ids: BTreeSet<u32> = x25519_claimed.iter().copied().collect();
    assert_eq!(x25519_claimed.len(), 20);
    assert_eq!(x25519_ids, (1..=20).collect());
    assert_eq!(
        store.kem_prekey_stock(device).await.unwrap(),
        stock(0, true)
    );
}

pub(super) async fn a_new_identity_drops_the_kem_prekeys(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    store
        .put_keys(alice, &identity(1), &signed(1), None)
        .await
        .unwrap();
    store
        .put_keys(bob, &identity(2), &signed(1), None)
        .await
        .unwrap();
    for (device, id) in [(alice, identity(1)), (bob, identity(2))] {
        store
            .put_kem_prekeys(device, &id, Some(&kem(500, 0)), &kems(1..=3))
            .await
            .unwrap();
    }
    // A signed-prekey rotation (same identity) keeps them.
    let rotated = store
        .put_keys(alice, &identity(1), &signed(2), None)
        .await
        .unwrap();
    assert_eq!(rotated.kem_prekeys_discarded, 0);
    assert_eq!(store.kem_prekey_stock(alice).await.unwrap(), stock(3, true));

    // A new identity drops both kinds: they carry the old one's signature.
    let replaced = store
        .put_keys(alice, &identity(3), &signed(3), None)
        .await
        .unwrap();
    assert!(replaced.identity_replaced);
    assert_eq!(replaced.kem_prekeys_discarded, 4);
    assert_eq!(
        store.kem_prekey_stock(alice).await.unwrap(),
        stock(0, false)
    );
    let bundle = store.claim_hybrid_bundle(alice).await.unwrap().unwrap();
    assert_eq!(bundle.bundle.identity, identity(3));
    assert_eq!(bundle.kem_one_time, None);
    assert_eq!(bundle.kem_last_resort, None);
    assert_eq!(
        store.kem_prekey_stock(bob).await.unwrap(),
        stock(3, true),
        "other accounts are untouched"
    );
}

pub(super) async fn removing_a_device_drops_its_kem_prekeys(db: &TestDb) {
    let store = db.open().await;
    let account = new_account(&store, "alice").await;
    let first = Address::primary(account);
    assert_eq!(store.add_device(account, NOW).await.unwrap(), DeviceId(2));
    let second = Address {
        account,
        device: DeviceId(2),
    };
    for device in [first, second] {
        publish_device(&store, device).await;
        store
            .put_kem_prekeys(device, &identity(9), Some(&kem(500, 0)), &kems(1..=3))
            .await
            .unwrap();
    }
    store.remove_device(first, second, NOW + 1).await.unwrap();
    assert_eq!(
        store.kem_prekey_stock(second).await.unwrap(),
        stock(0, false)
    );
    assert_eq!(store.kem_prekey_stock(first).await.unwrap(), stock(3, true));
    // Its identity went with it: no upload is stored for it any more.
    let late = store
        .put_kem_prekeys(second, &identity(9), None, &kems(4..=4))
        .await;
    assert!(
        matches!(late, Err(StoreError::KemPreKeyIdentityChanged)),
        "{late:?}"
    );
}

pub(super) async fn kem_one_time_prekeys_are_capped_per_account(db: &TestDb) {
    let store = db
        .open_with(StoreLimits {
            max_kem_one_time_prekeys_per_account: 10,
            ..StoreLimits::default()
        })
        .await;
    let account = new_account(&store, "alice").await;
    let first = Address::primary(account);
    store.add_device(account, NOW).await.unwrap();
    let second = Address {
        account,
        device: DeviceId(2),
    };
    publish_device(&store, first).await;
    publish_device(&store, second).await;
    let put = |device, keys: Vec<KemPreKeyWire>| {
        let store = Arc::clone(&store);
        async move {
            store
                .put_kem_prekeys(device, &identity(9), Some(&kem(500, 1)), &keys)
                .await
        }
    };
    assert_eq!(put(first, kems(1..=6)).await.unwrap(), stock(6, true));
    let refused = put(second, kems(7..=11)).await;
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
        store.kem_prekey_stock(second).await.unwrap(),
        stock(0, false),
        "all or nothing: not even the last-resort key"
    );
    assert_eq!(put(second, kems(7..=10)).await.unwrap(), stock(4, true));
    // The X25519 allowance is its own.
    let x25519: Vec<PreKeyWire> = (1..=10).map(one_time).collect();
    assert_eq!(
        store.add_one_time_prekeys(first, &x25519).await.unwrap(),
        10
    );
}

/// A tag for each of the two identities the race below alternates between.
fn tagged_signed(tag: u8) -> SignedPreKeyWire {
    signed(u32::from(tag))
}

/// Publishes identity `tag` with its signed prekey and KEM prekeys
/// "signed" by it (the tag is in their signature bytes).
async fn publish_tagged(store: &SharedStore, device: Address, tag: u8) {
    store
        .put_keys(device, &identity(tag), &tagged_signed(tag), None)
        .await
        .expect("publish");
    let mut keys = kems(1..=3);
    let mut last_resort = kem(500, 0);
    for key in keys.iter_mut().chain(std::iter::once(&mut last_resort)) {
        key.signature = [tag; 64];
    }
    store
        .put_kem_prekeys(device, &identity(tag), Some(&last_resort), &keys)
        .await
        .expect("upload");
}

/// Claims racing with identity resets never see a mix: the signed prekey
/// and every KEM prekey of a bundle are the ones published with (and, for
/// KEM prekeys, "signed" by) the bundle's identity. On PostgreSQL each
/// statement of a claim reads the newest committed rows, so the claim
/// holds the identity row (`FOR SHARE`) until it commits, and a reset
/// waits for it.
pub(super) async fn claims_racing_identity_resets_never_mix_identities(db: &TestDb) {
    let store = db.open().await;
    let device = Address::primary(new_account(&store, "alice").await);
    publish_tagged(&store, device, 1).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let resets = {
        let stop = Arc::clone(&stop);
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut tag = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tag = 3 - tag;
                publish_tagged(&store, device, tag).await;
            }
        })
    };
    let claimers: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut mixed = Vec::new();
                for _ in 0..150 {
                    let hybrid = store.claim_hybrid_bundle(device).await.unwrap().unwrap();
                    let tag = hybrid.bundle.identity[0];
                    let signed_by = |key: &KemPreKeyWire| key.signature[0];
                    let kem_tags: Vec<u8> = hybrid
                        .kem_one_time
                        .iter()
                        .chain(hybrid.kem_last_resort.iter())
                        .map(signed_by)
                        .collect();
                    if hybrid.bundle.signed_prekey != tagged_signed(tag)
                        || kem_tags.iter().any(|t| *t != tag)
                    {
                        mixed.push((tag, hybrid.bundle.signed_prekey.id, kem_tags));
                    }
                }
                mixed
            })
        })
        .collect();
    let mut mixed = Vec::new();
    for claimer in claimers {
        mixed.extend(claimer.await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    resets.await.unwrap();
    assert!(
        mixed.is_empty(),
        "bundles mixing an identity with another's keys: {mixed:?}"
    );
}
