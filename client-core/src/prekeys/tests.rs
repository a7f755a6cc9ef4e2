//! The prekey manager on its own, over a memory store: no engine, no relay.

use rand::rngs::OsRng;

use super::*;
use crate::consts::REPLACED_SIGNED_PREKEY_RETENTION;

const T0: u64 = 1_800_000_000;
const DAY: u64 = 24 * 60 * 60;

/// A manager over a new store holding its first keys (created at `T0`).
async fn manager() -> (PreKeyManager, IdentityKeyPair) {
    let vault = Vault::for_tests().await;
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let keys = InitialKeys::generate(&identity, T0, &mut OsRng);
    let mut txn = Txn::new();
    PreKeyManager::save_initial(&vault, &mut txn, &keys).expect("initial keys");
    vault.commit(txn).await.expect("commit");
    (PreKeyManager::new(vault), identity)
}

async fn upkeep(manager: &PreKeyManager, identity: &IdentityKeyPair, now: u64) -> SignedUpkeep {
    let mut txn = Txn::new();
    let done = manager
        .upkeep_signed(&mut txn, identity, now, &mut OsRng)
        .await
        .expect("upkeep");
    manager.vault.commit(txn).await.expect("commit");
    done
}

async fn holds_signed(manager: &PreKeyManager, id: u32) -> bool {
    manager.signed(id).await.expect("read").is_some()
}

#[tokio::test]
async fn a_new_store_publishes_its_first_signed_and_last_resort_keys() {
    let (manager, _) = manager().await;
    let (signed, last_resort) = manager.published().await.unwrap();
    assert_eq!(signed.id(), 1);
    assert_eq!(signed.created_at(), T0);
    assert_eq!(last_resort.expect("a last-resort key").id(), 0);
    assert_eq!(manager.state().await.unwrap().current_signed_id, 1);
}

#[tokio::test]
async fn one_time_keys_are_stored_with_their_ids_and_used_once() {
    let (manager, _) = manager().await;
    let mut txn = Txn::new();
    let first = manager.add_one_time(&mut txn, 3, &mut OsRng).await.unwrap();
    let ids: Vec<u32> = first.iter().map(|k| k.id()).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    // Neither the secrets nor the ids are taken until committed.
    let loaded = manager
        .for_message(1, Some(PreKeyRef::OneTime(2)), None)
        .await;
    assert!(loaded.unwrap().extra.is_none());
    assert_eq!(manager.state().await.unwrap().next_one_time_id, 1);
    manager.vault.commit(txn).await.unwrap();

    let mut txn = Txn::new();
    let second = manager.add_one_time(&mut txn, 2, &mut OsRng).await.unwrap();
    manager.vault.commit(txn).await.unwrap();
    let ids: Vec<u32> = second.iter().map(|k| k.id()).collect();
    assert_eq!(ids, vec![4, 5], "ids are never reused");

    let loaded = manager
        .for_message(1, Some(PreKeyRef::OneTime(2)), None)
        .await;
    let loaded = loaded.unwrap();
    assert!(loaded.signed.is_some(), "the current signed prekey");
    let (found, secret) = loaded.extra.expect("one-time key 2");
    assert_eq!(found, PreKeyRef::OneTime(2));
    assert_eq!(secret.public_key(), first[1].secret().public_key());

    let mut txn = Txn::new();
    manager.consume_one_time(&mut txn, 2);
    manager.vault.commit(txn).await.unwrap();
    let loaded = manager
        .for_message(1, Some(PreKeyRef::OneTime(2)), None)
        .await;
    assert!(loaded.unwrap().extra.is_none(), "used: gone");
    let loaded = manager
        .for_message(1, Some(PreKeyRef::OneTime(3)), None)
        .await;
    assert!(loaded.unwrap().extra.is_some(), "the others stay");
}

#[tokio::test]
async fn only_the_keys_we_hold_are_loaded_for_a_message() {
    let (manager, _) = manager().await;
    let loaded = manager
        .for_message(7, Some(PreKeyRef::LastResort(9)), None)
        .await
        .unwrap();
    assert!(loaded.signed.is_none(), "no signed prekey 7");
    assert!(loaded.extra.is_none(), "the last-resort key's id is 0");
    let loaded = manager
        .for_message(1, Some(PreKeyRef::LastResort(0)), None)
        .await
        .unwrap();
    assert!(loaded.signed.is_some() && loaded.extra.is_some());
}

#[tokio::test]
async fn a_replaced_signed_key_is_deleted_only_after_the_retention_from_its_replacement() {
    let (manager, identity) = manager().await;
    let nothing = SignedUpkeep {
        rotated: false,
        deleted: 0,
    };
    assert_eq!(upkeep(&manager, &identity, T0 + DAY).await, nothing);
    assert_eq!(manager.state().await.unwrap().current_signed_id, 1);

    // Away for 20 days: key 1 is old, but replaced only now.
    let back = T0 + 20 * DAY;
    let rotated = upkeep(&manager, &identity, back).await;
    assert!(rotated.rotated && rotated.deleted == 0);
    let (published, _) = manager.published().await.unwrap();
    assert_eq!(published.id(), 2);
    assert!(holds_signed(&manager, 1).await, "replaced just now: kept");

    let retention = REPLACED_SIGNED_PREKEY_RETENTION.as_secs();
    // Two days after the rotation key 2 is due, and key 1 still kept.
    upkeep(&manager, &identity, back + retention - 1).await;
    assert!(holds_signed(&manager, 1).await);
    let done = upkeep(&manager, &identity, back + retention).await;
    assert_eq!(done.deleted, 1);
    assert!(!holds_signed(&manager, 1).await, "retention ran out");
    let current = manager.state().await.unwrap().current_signed_id;
    assert!(
        holds_signed(&manager, current).await,
        "the current key stays"
    );
    assert!(
        manager.last_resort().await.unwrap().is_some(),
        "never deleted"
    );
}
