//! The store test suite: every behaviour written once against `dyn Store`
//! and run on both backends (`sqlite_backend::*`, `postgres_backend::*`).
//!
//! Must never: depend on timing, share a database between tests, or pass a
//! PostgreSQL test that did not run without saying so (the rule lives in
//! umbra-test-support).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use umbra_wire::keys::PublicKey;
use umbra_wire::{AccountId, Address, DeviceId, PreKeyWire, SignedPreKeyWire, Username};

use super::test_support::TestDb;
use super::{
    BlobId, EnqueueRejection, GroupCommitter, NewMessage, PasswordFile, QueueEvent, SharedStore,
    StoreError, StoreLimits, TokenStatus, MAX_BLOB_CHUNK_BYTES,
};

// ----- fixtures -----------------------------------------------------------

fn account_id(tag: u8) -> AccountId {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[0] = tag;
    AccountId::from_bytes(bytes)
}

fn name(text: &str) -> Username {
    Username::parse(text).expect("test username is valid")
}

async fn new_account(store: &SharedStore, username: &str) -> AccountId {
    let account = account_id(username.as_bytes()[0]);
    store
        .create_account(account, &name(username), &password_file(username))
        .await
        .expect("create account");
    account
}

fn password_file(tag: &str) -> PasswordFile {
    PasswordFile::new(format!("opaque-record-of-{tag}").into_bytes())
}

fn key(seed: u32) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&seed.to_le_bytes());
    bytes[31] = 0x42;
    PublicKey::from_bytes(bytes)
}

fn one_time(id: u32) -> PreKeyWire {
    PreKeyWire { id, key: key(id) }
}

fn signed(id: u32) -> SignedPreKeyWire {
    SignedPreKeyWire {
        id,
        created_at: 1_700_000_000,
        key: key(10_000 + id),
        signature: [7u8; 64],
    }
}

fn identity(tag: u8) -> Vec<u8> {
    vec![tag; 128]
}

fn last_resort(id: u32) -> PreKeyWire {
    PreKeyWire { id, key: key(id) }
}

/// Publishes identity, signed prekey and last-resort key for `device`.
async fn publish_device(store: &SharedStore, device: Address) {
    store
        .put_keys(
            device,
            &identity(9),
            &signed(1),
            Some(&last_resort(999_999)),
        )
        .await
        .expect("publish keys");
}

fn message(recipient: Address, body: &str) -> NewMessage {
    NewMessage {
        recipient,
        envelope: body.as_bytes().to_vec(),
        received_at: 1_000,
        expires_at: 1_000_000,
    }
}

fn ok_seqs(outcomes: &[Result<u64, EnqueueRejection>]) -> Vec<u64> {
    outcomes
        .iter()
        .map(|o| *o.as_ref().expect("message accepted"))
        .collect()
}

async fn bodies(store: &SharedStore, recipient: Address) -> Vec<(u64, String)> {
    store
        .fetch_after(recipient, 0, 10_000, 0)
        .await
        .expect("fetch")
        .into_iter()
        .map(|m| {
            (
                m.seq,
                String::from_utf8(m.envelope).expect("utf-8 test body"),
            )
        })
        .collect()
}

// ----- accounts -------------------------------------------------------------

async fn accounts_are_unique_case_folded_and_renamable(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;

    let found = store
        .account_by_username(&name("alice"))
        .await
        .unwrap()
        .expect("alice exists");
    assert_eq!(found.account, alice);
    assert_eq!(found.password_file, password_file("alice"));
    // Folding happens before the store, so "ALICE" is the same name.
    let upper = store
        .create_account(account_id(1), &name("ALICE"), &password_file("x"))
        .await;
    assert!(matches!(upper, Err(StoreError::UsernameTaken)), "{upper:?}");
    let same_id = store
        .create_account(alice, &name("someoneelse"), &password_file("x"))
        .await;
    assert!(
        matches!(same_id, Err(StoreError::AccountExists)),
        "{same_id:?}"
    );

    let bob = new_account(&store, "bob").await;
    store
        .rename_account(alice, &name("Alicia"))
        .await
        .expect("rename");
    assert!(store
        .account_by_username(&name("alice"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .account_by_username(&name("alicia"))
            .await
            .unwrap()
            .map(|r| r.account),
        Some(alice)
    );
    assert_eq!(
        store.username_of(alice).await.unwrap(),
        Some(name("alicia"))
    );
    // The old name is free again at once.
    let reuse = store
        .create_account(account_id(2), &name("alice"), &password_file("new"))
        .await;
    assert!(reuse.is_ok(), "{reuse:?}");

    let taken = store.rename_account(bob, &name("ALICIA")).await;
    assert!(matches!(taken, Err(StoreError::UsernameTaken)), "{taken:?}");
    assert_eq!(store.username_of(bob).await.unwrap(), Some(name("bob")));
    // Renaming to one's own name is a no-op, not a conflict.
    store
        .rename_account(bob, &name("bob"))
        .await
        .expect("self rename");
    let unknown = store.rename_account(account_id(3), &name("carol")).await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownAccount)),
        "{unknown:?}"
    );
}

// ----- tokens ---------------------------------------------------------------

async fn tokens_expire_and_revoke(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    let (t1, t2, t3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    store.insert_token(&t1, alice, 100).await.unwrap();
    store.insert_token(&t2, alice, 200).await.unwrap();
    store.insert_token(&t3, bob, 200).await.unwrap();

    assert_eq!(store.lookup_token(&t1, 99).await.unwrap(), Some(alice));
    assert_eq!(
        store.lookup_token(&t1, 100).await.unwrap(),
        None,
        "expiry is exclusive"
    );
    assert_eq!(store.lookup_token(&[9u8; 32], 0).await.unwrap(), None);

    assert!(store.delete_token(&t2).await.unwrap());
    assert!(!store.delete_token(&t2).await.unwrap(), "already revoked");
    assert_eq!(store.lookup_token(&t2, 0).await.unwrap(), None);

    store.insert_token(&t2, alice, 300).await.unwrap();
    assert_eq!(
        store
            .delete_tokens_for_account(alice.account)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.lookup_token(&t1, 0).await.unwrap(), None);
    assert_eq!(
        store.lookup_token(&t3, 0).await.unwrap(),
        Some(bob),
        "others unaffected"
    );

    assert_eq!(store.purge_expired_tokens(199).await.unwrap(), 0);
    assert_eq!(store.purge_expired_tokens(200).await.unwrap(), 1);
    assert_eq!(store.lookup_token(&t3, 0).await.unwrap(), None);

    let orphan = store
        .insert_token(&t1, Address::primary(account_id(4)), 100)
        .await;
    assert!(
        matches!(orphan, Err(StoreError::UnknownAccount)),
        "{orphan:?}"
    );
}

async fn expired_tokens_are_told_apart_until_purged(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let (t1, t2) = ([1u8; 32], [2u8; 32]);
    store.insert_token(&t1, alice, 100).await.unwrap();
    store.insert_token(&t2, alice, 100).await.unwrap();

    assert_eq!(
        store.token_status(&t1, 99).await.unwrap(),
        TokenStatus::Valid(alice)
    );
    assert_eq!(
        store.token_status(&t1, 100).await.unwrap(),
        TokenStatus::Expired(alice),
        "expiry is exclusive, and an expired token is still recognised"
    );
    assert_eq!(store.lookup_token(&t1, 100).await.unwrap(), None);
    assert_eq!(
        store.token_status(&[9u8; 32], 0).await.unwrap(),
        TokenStatus::Unknown,
        "never issued"
    );
    assert!(store.delete_token(&t2).await.unwrap());
    assert_eq!(
        store.token_status(&t2, 50).await.unwrap(),
        TokenStatus::Unknown,
        "a revoked token is unknown, expired or not"
    );

    // The relay purges with a cutoff in the past: a token that expired after
    // the cutoff is kept (still Expired), an older one goes (Unknown).
    assert_eq!(store.purge_expired_tokens(99).await.unwrap(), 0);
    assert_eq!(
        store.token_status(&t1, 1_000).await.unwrap(),
        TokenStatus::Expired(alice)
    );
    assert_eq!(store.purge_expired_tokens(100).await.unwrap(), 1);
    assert_eq!(
        store.token_status(&t1, 1_000).await.unwrap(),
        TokenStatus::Unknown
    );
}

// ----- key directory ----------------------------------------------------------

async fn concurrent_claims_never_share_a_one_time_prekey(db: &TestDb) {
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

async fn bundles_need_published_keys_and_uploads_are_idempotent(db: &TestDb) {
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

async fn an_identity_another_device_publishes_is_refused(db: &TestDb) {
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
    // A second device of the same account may not reuse it either.
    let second = Address {
        device: DeviceId(2),
        ..alice
    };
    let reused = store.put_keys(second, &identity(1), &signed(1), None).await;
    assert!(
        matches!(reused, Err(StoreError::IdentityInUse)),
        "{reused:?}"
    );
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

async fn rotating_the_signed_prekey_keeps_one_time_prekeys(db: &TestDb) {
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

async fn a_new_identity_drops_the_old_identitys_prekeys(db: &TestDb) {
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

async fn published_identity_is_read_without_claiming_a_prekey(db: &TestDb) {
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

    store.delete_account(alice.account).await.unwrap();
    assert_eq!(store.published_identity(alice).await.unwrap(), None);
}

/// Key id whose last-resort write the injected trigger aborts.
const FAILING_KEY_ID: u32 = 666;

async fn a_failed_publish_leaves_the_previous_keys_whole(db: &TestDb) {
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

async fn one_time_prekeys_are_capped_per_account(db: &TestDb) {
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

// ----- queue -----------------------------------------------------------------

async fn enqueue_assigns_ordered_per_recipient_seqs(db: &TestDb) {
    let store = db.open().await;
    let a = Address::primary(new_account(&store, "alice").await);
    let b = Address::primary(new_account(&store, "bob").await);
    let b2 = Address {
        account: b.account,
        device: DeviceId(2),
    };
    let outcomes = store
        .enqueue_batch(&[
            message(a, "a1"),
            message(b, "b1"),
            message(a, "a2"),
            message(b2, "b2-1"),
            message(b, "b2"),
        ])
        .await
        .unwrap();
    assert_eq!(ok_seqs(&outcomes), vec![1, 1, 2, 1, 2]);
    let more = store.enqueue_batch(&[message(a, "a3")]).await.unwrap();
    assert_eq!(ok_seqs(&more), vec![3]);
    assert_eq!(
        bodies(&store, a).await,
        vec![(1, "a1".into()), (2, "a2".into()), (3, "a3".into())]
    );
    assert_eq!(
        bodies(&store, b).await,
        vec![(1, "b1".into()), (2, "b2".into())]
    );
    assert_eq!(bodies(&store, b2).await, vec![(1, "b2-1".into())]);
    assert_eq!(store.queue_depth(a).await.unwrap(), 3);
    assert_eq!(store.total_queued().await.unwrap(), 6);
    assert!(store.enqueue_batch(&[]).await.unwrap().is_empty());
}

async fn full_queue_refuses_only_its_own_messages(db: &TestDb) {
    let store = db
        .open_with(StoreLimits {
            max_queue_per_recipient: 3,
            ..StoreLimits::default()
        })
        .await;
    let a = Address::primary(new_account(&store, "alice").await);
    let b = Address::primary(new_account(&store, "bob").await);
    let nobody = Address::primary(account_id(6));
    let outcomes = store
        .enqueue_batch(&[
            message(a, "a1"),
            message(a, "a2"),
            message(nobody, "lost"),
            message(a, "a3"),
            message(a, "a4"),
            message(b, "b1"),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            Ok(1),
            Ok(2),
            Err(EnqueueRejection::UnknownRecipient),
            Ok(3),
            Err(EnqueueRejection::QueueFull),
            Ok(1)
        ]
    );
    assert_eq!(store.queue_depth(a).await.unwrap(), 3);
    assert_eq!(bodies(&store, b).await, vec![(1, "b1".into())]);
    // Room again after an ack; the refused message never consumed a seq.
    assert_eq!(store.ack(a, &[1]).await.unwrap(), 1);
    let later = store.enqueue_batch(&[message(a, "a5")]).await.unwrap();
    assert_eq!(later, vec![Ok(4)]);
}

async fn fetch_ack_and_expiry(db: &TestDb) {
    let store = db.open().await;
    let a = Address::primary(new_account(&store, "alice").await);
    let batch: Vec<NewMessage> = (1..=5).map(|i| message(a, &format!("m{i}"))).collect();
    store.enqueue_batch(&batch).await.unwrap();

    let page = store.fetch_after(a, 1, 2, 0).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(page[0].envelope, b"m2");
    assert_eq!(page[0].received_at, 1_000);

    assert_eq!(
        store.ack(a, &[2, 4, 42]).await.unwrap(),
        2,
        "unknown seq ignored"
    );
    assert_eq!(store.ack(a, &[2]).await.unwrap(), 0, "ack is idempotent");
    let left: Vec<u64> = bodies(&store, a)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(left, vec![1, 3, 5]);
    assert_eq!(store.ack_up_to(a, 3).await.unwrap(), 2);
    assert_eq!(store.queue_depth(a).await.unwrap(), 1);
    assert_eq!(store.ack_up_to(a, 5).await.unwrap(), 1);
    // An emptied queue still never reuses a sequence number.
    let next = store.enqueue_batch(&[message(a, "m6")]).await.unwrap();
    assert_eq!(next, vec![Ok(6)]);

    let short = NewMessage {
        expires_at: 2_000,
        ..message(a, "short-lived")
    };
    store.enqueue_batch(&[short]).await.unwrap();
    assert_eq!(store.fetch_after(a, 0, 10, 1_999).await.unwrap().len(), 2);
    let at_expiry = store.fetch_after(a, 0, 10, 2_000).await.unwrap();
    assert_eq!(at_expiry.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![6]);
    assert_eq!(store.purge_expired_messages(1_999).await.unwrap(), 0);
    assert_eq!(store.purge_expired_messages(2_000).await.unwrap(), 1);
    assert_eq!(store.total_queued().await.unwrap(), 1);
}

async fn two_writers_on_one_database_keep_seqs_distinct(db: &TestDb) {
    // Two stores on one database: two relay nodes on PostgreSQL, two
    // processes' worth of pools on one SQLite file.
    let nodes = [db.open().await, db.open().await];
    let mut recipients = Vec::new();
    for name in ["alice", "bob", "carol"] {
        recipients.push(Address::primary(new_account(&nodes[0], name).await));
    }
    let start = Arc::new(tokio::sync::Barrier::new(24));
    let writers: Vec<_> = (0..24usize)
        .map(|i| {
            let node = Arc::clone(&nodes[i % 2]);
            let start = Arc::clone(&start);
            // Each batch names the recipients in a different rotation, which
            // deadlocks if row locks are not taken in a fixed order.
            let batch: Vec<NewMessage> = (0..3)
                .map(|k| message(recipients[(i + k) % 3], &format!("w{i}")))
                .collect();
            tokio::spawn(async move {
                start.wait().await;
                node.enqueue_batch(&batch).await
            })
        })
        .collect();
    for writer in writers {
        let outcomes = writer.await.unwrap().expect("batch committed");
        assert_eq!(ok_seqs(&outcomes).len(), 3);
    }
    for recipient in &recipients {
        let seqs: Vec<u64> = bodies(&nodes[1], *recipient)
            .await
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(seqs, (1..=24).collect::<Vec<u64>>(), "{recipient}");
    }
}

// ----- blobs -----------------------------------------------------------------

async fn blob_chunks_round_trip(db: &TestDb) {
    let store = db.open().await;
    let owner = new_account(&store, "alice").await;
    let blob = BlobId([0xb1; 32]);
    store.create_blob(blob, owner, 5_000).await.unwrap();
    let again = store.create_blob(blob, owner, 5_000).await;
    assert!(matches!(again, Err(StoreError::BlobExists)), "{again:?}");

    let chunks: Vec<Vec<u8>> = vec![
        vec![1u8; MAX_BLOB_CHUNK_BYTES],
        (0..MAX_BLOB_CHUNK_BYTES).map(|i| (i % 251) as u8).collect(),
        b"tail".to_vec(),
    ];
    store.append_blob_chunk(blob, 0, &chunks[0]).await.unwrap();
    let skipped = store.append_blob_chunk(blob, 2, &chunks[2]).await;
    assert!(
        matches!(
            skipped,
            Err(StoreError::BlobChunkOutOfOrder {
                expected: 1,
                got: 2
            })
        ),
        "{skipped:?}"
    );
    let big = store
        .append_blob_chunk(blob, 1, &vec![0u8; MAX_BLOB_CHUNK_BYTES + 1])
        .await;
    assert!(
        matches!(big, Err(StoreError::BlobChunkSize { .. })),
        "{big:?}"
    );
    let empty = store.append_blob_chunk(blob, 1, &[]).await;
    assert!(
        matches!(empty, Err(StoreError::BlobChunkSize { len: 0 })),
        "{empty:?}"
    );
    store.append_blob_chunk(blob, 1, &chunks[1]).await.unwrap();
    store.append_blob_chunk(blob, 2, &chunks[2]).await.unwrap();

    let in_progress = store.blob_info(blob, 0).await.unwrap().expect("exists");
    assert_eq!(in_progress.size, None);
    let total = chunks.iter().map(Vec::len).sum::<usize>() as u64;
    let wrong = store.finish_blob(blob, total + 1).await;
    assert!(
        matches!(wrong, Err(StoreError::BlobSizeMismatch { .. })),
        "{wrong:?}"
    );
    store.finish_blob(blob, total).await.unwrap();
    let late = store.append_blob_chunk(blob, 3, b"more").await;
    assert!(matches!(late, Err(StoreError::BlobNotWritable)), "{late:?}");

    let info = store.blob_info(blob, 0).await.unwrap().expect("exists");
    assert_eq!(info.owner, owner);
    assert_eq!(info.chunk_count, 3);
    assert_eq!(info.size, Some(total));
    assert_eq!(info.expires_at, 5_000);
    for (index, chunk) in chunks.iter().enumerate() {
        let read = store.read_blob_chunk(blob, index as u32).await.unwrap();
        assert_eq!(read.as_ref(), Some(chunk));
    }
    assert_eq!(store.read_blob_chunk(blob, 3).await.unwrap(), None);
    assert!(
        store.blob_info(blob, 5_000).await.unwrap().is_none(),
        "expired"
    );

    assert!(store.delete_blob(blob).await.unwrap());
    assert!(!store.delete_blob(blob).await.unwrap());
    assert_eq!(store.read_blob_chunk(blob, 0).await.unwrap(), None);

    let stale = BlobId([0xb2; 32]);
    store.create_blob(stale, owner, 100).await.unwrap();
    store.append_blob_chunk(stale, 0, b"x").await.unwrap();
    assert_eq!(store.purge_expired_blobs(99).await.unwrap(), 0);
    assert_eq!(store.purge_expired_blobs(100).await.unwrap(), 1);
    assert_eq!(store.read_blob_chunk(stale, 0).await.unwrap(), None);
    let gone = store.append_blob_chunk(stale, 1, b"y").await;
    assert!(matches!(gone, Err(StoreError::BlobNotWritable)), "{gone:?}");
}

// ----- account deletion --------------------------------------------------------

/// Every table the schema has, by name, and how many rows refer to the
/// account in each; only the non-zero entries.
async fn referring_tables(store: &SharedStore, account: AccountId) -> BTreeMap<String, u64> {
    store
        .account_rows_by_table(account)
        .await
        .expect("audit the schema")
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn delete_account_leaves_no_rows(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let bob = new_account(&store, "bob").await;
    for (n, account) in [alice, bob].into_iter().enumerate() {
        let device = Address::primary(account);
        store
            .put_keys(
                device,
                &identity(20 + n as u8),
                &signed(1),
                Some(&last_resort(999_999)),
            )
            .await
            .expect("publish keys");
        let keys: Vec<PreKeyWire> = (1..=3).map(one_time).collect();
        store.add_one_time_prekeys(device, &keys).await.unwrap();
        store
            .insert_token(&[n as u8 + 1; 32], device, 500)
            .await
            .unwrap();
        store
            .enqueue_batch(&[message(device, "1"), message(device, "2")])
            .await
            .unwrap();
        let mut blob = [0u8; 32];
        blob[..16].copy_from_slice(account.as_bytes());
        store.create_blob(BlobId(blob), account, 500).await.unwrap();
        store
            .append_blob_chunk(BlobId(blob), 0, b"a")
            .await
            .unwrap();
        store
            .append_blob_chunk(BlobId(blob), 1, b"b")
            .await
            .unwrap();
    }

    // Positive control: the schema-wide scan sees alice in every table that
    // holds account data, so it could see a leftover in any of them.
    let all_tables = store.account_rows_by_table(alice).await.unwrap();
    let before = referring_tables(&store, alice).await;
    let expected: BTreeMap<String, u64> = [
        ("accounts", 1),
        ("tokens", 1),
        ("identity_keys", 1),
        ("signed_prekeys", 1),
        ("one_time_prekeys", 3),
        ("last_resort_prekeys", 1),
        ("queue_counters", 1),
        ("messages", 2),
        ("blobs", 1),
        ("blob_chunks", 2),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    assert_eq!(before, expected, "rows for alice before deletion");
    assert!(
        all_tables.contains_key("server_secrets"),
        "the scan covers tables without account data too: {all_tables:?}"
    );
    let bob_before = referring_tables(&store, bob).await;
    assert_eq!(bob_before, expected, "rows for bob before deletion");

    assert!(store.delete_account(alice).await.unwrap());
    let after = store.account_rows_by_table(alice).await.unwrap();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        all_tables.keys().collect::<Vec<_>>(),
        "the same tables are scanned after deletion"
    );
    let left: BTreeMap<_, _> = after.into_iter().filter(|(_, n)| *n > 0).collect();
    assert!(left.is_empty(), "rows left for alice: {left:?}");
    assert_eq!(store.rows_for_account(alice).await.unwrap(), 0);
    assert_eq!(
        referring_tables(&store, bob).await,
        bob_before,
        "bob untouched"
    );
    assert!(store
        .account_by_username(&name("alice"))
        .await
        .unwrap()
        .is_none());
    assert!(!store.delete_account(alice).await.unwrap());
    let to_deleted = store
        .enqueue_batch(&[message(Address::primary(alice), "late")])
        .await
        .unwrap();
    assert_eq!(to_deleted, vec![Err(EnqueueRejection::UnknownRecipient)]);
    assert_eq!(store.total_queued().await.unwrap(), 2);
}

// ----- restarts ------------------------------------------------------------------

async fn server_setup_is_stable_across_reopen(db: &TestDb) {
    let store = db.open().await;
    let first = store.load_or_init_server_setup(b"setup-one").await.unwrap();
    assert_eq!(first.as_slice(), b"setup-one");
    let second = store.load_or_init_server_setup(b"setup-two").await.unwrap();
    assert_eq!(second.as_slice(), b"setup-one");
    drop(store);
    let reopened = db.open().await;
    let third = reopened
        .load_or_init_server_setup(b"setup-three")
        .await
        .unwrap();
    assert_eq!(third.as_slice(), b"setup-one");
}

async fn data_survives_reopen(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    store.insert_token(&[5u8; 32], alice, 900).await.unwrap();
    store
        .enqueue_batch(&[message(alice, "before"), message(alice, "restart")])
        .await
        .unwrap();
    store.ack(alice, &[1]).await.unwrap();
    drop(store);

    let store = db.open().await;
    assert_eq!(
        store.lookup_token(&[5u8; 32], 0).await.unwrap(),
        Some(alice)
    );
    assert_eq!(bodies(&store, alice).await, vec![(2, "restart".into())]);
    let next = store
        .enqueue_batch(&[message(alice, "after")])
        .await
        .unwrap();
    assert_eq!(next, vec![Ok(3)], "counter survived the restart");
}

// ----- group commit ------------------------------------------------------------

async fn group_commit_serves_concurrent_submitters(db: &TestDb) {
    let store = db.open().await;
    let mut recipients = Vec::new();
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        recipients.push(Address::primary(new_account(&store, name).await));
    }
    let committer = GroupCommitter::spawn(Arc::clone(&store), 64, 2);
    let submitters = (0..50).map(|task: usize| {
        let committer = committer.clone();
        let recipient = recipients[task % recipients.len()];
        tokio::spawn(async move {
            let messages: Vec<NewMessage> = (0..4)
                .map(|j| message(recipient, &format!("{task}:{j}")))
                .collect();
            (recipient, task, committer.submit(messages).await)
        })
    });
    let mut seqs_by_recipient: BTreeMap<Address, Vec<u64>> = BTreeMap::new();
    let mut expected_body: BTreeMap<(Address, u64), String> = BTreeMap::new();
    for submitter in submitters {
        let (recipient, task, outcome) = submitter.await.unwrap();
        let seqs = ok_seqs(&outcome.expect("submission committed"));
        assert_eq!(seqs.len(), 4);
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "own order kept: {seqs:?}"
        );
        for (j, seq) in seqs.iter().enumerate() {
            expected_body.insert((recipient, *seq), format!("{task}:{j}"));
        }
        seqs_by_recipient.entry(recipient).or_default().extend(seqs);
    }
    for recipient in &recipients {
        let mut seqs = seqs_by_recipient
            .remove(recipient)
            .expect("recipient served");
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (1..=40).collect::<Vec<u64>>(),
            "distinct and gap-free"
        );
        for (seq, body) in bodies(&store, *recipient).await {
            assert_eq!(expected_body.get(&(*recipient, seq)), Some(&body));
        }
    }
    assert_eq!(store.total_queued().await.unwrap(), 200);

    // A lone submission completes without company, and a failing one is
    // reported only to its sender.
    let alone = committer
        .submit(vec![message(recipients[0], "alone")])
        .await;
    assert_eq!(alone.unwrap(), vec![Ok(41)]);
    assert!(committer.submit(Vec::new()).await.unwrap().is_empty());
}

// ----- notifications -------------------------------------------------------------

async fn subscribers_hear_committed_enqueues(db: &TestDb) {
    let receiver_node = db.open().await;
    // With PostgreSQL a second store is a second relay node: the event must
    // cross nodes through NOTIFY. SQLite is single-node: same store.
    let sender_node = if db.shares_notifications() {
        db.open().await
    } else {
        Arc::clone(&receiver_node)
    };
    let alice = Address::primary(new_account(&sender_node, "alice").await);
    let mut events = receiver_node.subscribe();
    let mut confirmed = None;
    // A Resync means the listener (re)connected, so an enqueue made before
    // it may have gone unheard: enqueue again after it.
    'attempts: for _ in 0..5 {
        let sent = sender_node
            .enqueue_batch(&[message(alice, "ping")])
            .await
            .unwrap();
        let seq = ok_seqs(&sent)[0];
        loop {
            let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
                .await
                .expect("a queue event arrives")
                .expect("subscription open");
            match event {
                QueueEvent::Enqueued {
                    recipient,
                    seq: got,
                } => {
                    assert_eq!(recipient, alice, "only alice was sent to");
                    if got == seq {
                        confirmed = Some(seq);
                        break 'attempts;
                    }
                }
                QueueEvent::Resync => continue 'attempts,
            }
        }
    }
    let seq = confirmed.expect("an Enqueued event for the committed seq");
    // The event points at a message that is really there to fetch.
    let waiting = receiver_node
        .fetch_after(alice, seq - 1, 1, 0)
        .await
        .unwrap();
    assert_eq!(waiting.first().map(|m| m.seq), Some(seq));
}

/// Waits for an event matching `wanted`, skipping others; fails after a
/// generous guard so a broken listener cannot hang the suite.
async fn next_matching(
    events: &mut tokio::sync::broadcast::Receiver<QueueEvent>,
    wanted: impl Fn(&QueueEvent) -> bool,
) -> QueueEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("the expected queue event arrives")
            .expect("subscription open");
        if wanted(&event) {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_postgres_listener_resyncs_after_reconnect() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::store_postgres_listener_resyncs_after_reconnect"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let options = db.postgres_options().expect("a PostgreSQL test database");
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let listener_pids = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'",
        )
        .fetch_all(&admin)
        .await
        .unwrap()
    };
    // Wait until this node's listener is in place (polling, bounded).
    let mut pids = Vec::new();
    for _ in 0..200 {
        pids = listener_pids().await;
        if !pids.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pids.len(), 1, "one listener connection per node");
    let mut events = store.subscribe();

    // Cut the listener's connection, as a database restart would.
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pids[0])
        .execute(&admin)
        .await
        .unwrap();
    next_matching(&mut events, |e| *e == QueueEvent::Resync).await;
    let relistened = listener_pids().await;
    assert_eq!(relistened.len(), 1, "listening again after the resync");
    assert_ne!(relistened[0], pids[0], "on a new connection");

    let alice = Address::primary(new_account(&store, "alice").await);
    let seq = ok_seqs(
        &store
            .enqueue_batch(&[message(alice, "after")])
            .await
            .unwrap(),
    )[0];
    let event = next_matching(&mut events, |e| matches!(e, QueueEvent::Enqueued { .. })).await;
    assert_eq!(
        event,
        QueueEvent::Enqueued {
            recipient: alice,
            seq
        }
    );
    admin.close().await;
}

// ----- backend-independent --------------------------------------------------------

#[tokio::test]
async fn store_open_rejects_unknown_url_schemes() {
    let dir = tempfile::tempdir().unwrap();
    let result = super::open(Some("mysql://localhost/umbra"), dir.path()).await;
    assert!(matches!(result, Err(StoreError::UnsupportedUrl)));
}

#[tokio::test]
async fn store_migrate_only_then_open_in_memory_and_file() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("fresh").join("data");
    super::migrate_only(None, &dir).await.unwrap();
    assert!(dir.join(super::DEFAULT_SQLITE_FILE).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "data dir private to the relay user: {mode:o}"
        );
    }
    let store = super::open(None, &dir).await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    let memory = super::open(Some("sqlite::memory:"), &dir).await.unwrap();
    let alice = Address::primary(new_account(&memory, "alice").await);
    memory.enqueue_batch(&[message(alice, "x")]).await.unwrap();
    assert_eq!(memory.queue_depth(alice).await.unwrap(), 1);
}

#[test]
fn store_notify_payload_round_trips_and_rejects_garbage() {
    use super::rows::{notify_payload, parse_notify_payload};
    let to = Address {
        account: AccountId::from_bytes([0xab; 16]),
        device: DeviceId(7),
    };
    let payload = notify_payload(to, 42);
    assert_eq!(payload, format!("{}:7:42", "ab".repeat(16)));
    assert_eq!(parse_notify_payload(&payload), Some((to, 42)));
    for bad in [
        "",
        "zz:1:1",
        &format!("{}:1", "ab".repeat(16)),
        &format!("{payload}:9"),
    ] {
        assert_eq!(parse_notify_payload(bad), None, "{bad:?}");
    }
}

// ----- instantiation for both backends -------------------------------------------

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = super::TestDb::sqlite();
                    super::$test(&db).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let test = concat!(module_path!(), "::", stringify!($test));
                    let Some(db) = super::TestDb::postgres(test).await else { return };
                    super::$test(&db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    accounts_are_unique_case_folded_and_renamable,
    tokens_expire_and_revoke,
    expired_tokens_are_told_apart_until_purged,
    concurrent_claims_never_share_a_one_time_prekey,
    bundles_need_published_keys_and_uploads_are_idempotent,
    an_identity_another_device_publishes_is_refused,
    rotating_the_signed_prekey_keeps_one_time_prekeys,
    a_new_identity_drops_the_old_identitys_prekeys,
    published_identity_is_read_without_claiming_a_prekey,
    a_failed_publish_leaves_the_previous_keys_whole,
    one_time_prekeys_are_capped_per_account,
    enqueue_assigns_ordered_per_recipient_seqs,
    full_queue_refuses_only_its_own_messages,
    two_writers_on_one_database_keep_seqs_distinct,
    fetch_ack_and_expiry,
    blob_chunks_round_trip,
    delete_account_leaves_no_rows,
    server_setup_is_stable_across_reopen,
    data_survives_reopen,
    group_commit_serves_concurrent_submitters,
    subscribers_hear_committed_enqueues,
);
