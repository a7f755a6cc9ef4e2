//! The KEM prekey records and rules on their own, over a memory store.

use rand::rngs::OsRng;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::{KemPreKeyKind, VerifiedKemPreKey};

use super::*;
use crate::store::Vault;

const T0: u64 = 1_800_000_000;
const DAY: u64 = 24 * 60 * 60;

async fn manager() -> (PreKeyManager, IdentityKeyPair) {
    let vault = Vault::for_tests().await;
    (
        PreKeyManager::new(vault),
        IdentityKeyPair::generate(&mut OsRng),
    )
}

/// Creates the KEM state at `now` and commits it.
async fn created(manager: &PreKeyManager, identity: &IdentityKeyPair, now: u64) -> KemPreKeyState {
    let mut txn = Txn::new();
    let made = manager
        .kem_state_or_initial(&mut txn, identity, now, &mut OsRng)
        .await
        .unwrap();
    assert!(made.created);
    manager.vault.commit(txn).await.unwrap();
    made.state
}

async fn upkeep(
    manager: &PreKeyManager,
    identity: &IdentityKeyPair,
    now: u64,
) -> (KemUpkeep, KemPreKeyState) {
    let mut state = manager.kem_state().await.unwrap().expect("state");
    let mut txn = Txn::new();
    let done = manager
        .upkeep_kem_last_resort(&mut txn, &mut state, identity, now, &mut OsRng)
        .unwrap();
    manager.vault.commit(txn).await.unwrap();
    (done, state)
}

#[tokio::test]
async fn a_store_without_kem_state_gets_one_with_a_signed_last_resort_key() {
    let (manager, identity) = manager().await;
    assert!(manager.kem_state().await.unwrap().is_none());
    assert!(manager.kem_current_last_resort().await.unwrap().is_none());
    let state = created(&manager, &identity, T0).await;
    assert_eq!(state.current_last_resort_id, 1);
    let key = manager
        .kem_current_last_resort()
        .await
        .unwrap()
        .expect("key");
    assert_eq!(
        (key.kind(), key.id(), key.created_at()),
        (KemPreKeyKind::LastResort, 1, T0)
    );
    // What is uploaded verifies under our identity, as the relay checks.
    VerifiedKemPreKey::verify(&key.public(), &identity.public()).expect("signed");
    // A second call finds it and creates nothing.
    let mut txn = Txn::new();
    let again = manager
        .kem_state_or_initial(&mut txn, &identity, T0 + 5, &mut OsRng)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.state, state);
}

#[tokio::test]
async fn one_time_kem_keys_are_stored_before_upload_and_deleted_once_used() {
    let (manager, identity) = manager().await;
    let mut state = created(&manager, &identity, T0).await;
    let mut txn = Txn::new();
    let keys = manager
        .add_kem_one_time(&mut txn, &mut state, &identity, 3, T0, &mut OsRng)
        .unwrap();
    let ids: Vec<u32> = keys.iter().map(|k| k.id()).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    // Nothing is readable before the commit.
    assert!(manager
        .kem_prekey(KemPreKeyKind::OneTime, 2)
        .await
        .unwrap()
        .is_none());
    manager.vault.commit(txn).await.unwrap();
    let held = manager
        .kem_prekey(KemPreKeyKind::OneTime, 2)
        .await
        .unwrap()
        .expect("held");
    // The stored seed gives the same key pair as the one uploaded.
    assert_eq!(held.public(), keys[1].public());
    assert_eq!(
        manager.kem_state().await.unwrap().unwrap().next_one_time_id,
        4
    );
    // Kinds do not mix: one-time id 1 is not last-resort id 1.
    let last = manager
        .kem_prekey(KemPreKeyKind::LastResort, 1)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(last.public().key, keys[0].public().key);

    let mut txn = Txn::new();
    manager.consume_kem_one_time(&mut txn, 2);
    manager.vault.commit(txn).await.unwrap();
    assert!(manager
        .kem_prekey(KemPreKeyKind::OneTime, 2)
        .await
        .unwrap()
        .is_none());
    assert!(manager
        .kem_prekey(KemPreKeyKind::OneTime, 3)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn the_last_resort_key_rotates_every_two_days_and_old_ones_are_kept_thirty_days() {
    let (manager, identity) = manager().await;
    created(&manager, &identity, T0).await;
    let (done, _) = upkeep(&manager, &identity, T0 + DAY).await;
    assert!(!done.changed());

    let replaced_at = T0 + 2 * DAY;
    let (done, state) = upkeep(&manager, &identity, replaced_at).await;
    let new = done.rotated.expect("rotated");
    assert_eq!((new.id(), new.kind()), (2, KemPreKeyKind::LastResort));
    assert_eq!(state.current_last_resort_id, 2);
    assert_eq!(state.held_last_resort, vec![(1, replaced_at)]);
    assert_eq!(
        manager
            .kem_current_last_resort()
            .await
            .unwrap()
            .unwrap()
            .id(),
        2
    );
    // The replaced one still opens messages made for it.
    assert!(manager
        .kem_prekey(KemPreKeyKind::LastResort, 1)
        .await
        .unwrap()
        .is_some());

    let retention = REPLACED_SIGNED_PREKEY_RETENTION.as_secs();
    // Keep the current key young so only expiry is tested below.
    let mut state = manager.kem_state().await.unwrap().unwrap();
    state.current_last_resort_created_at = replaced_at + retention;
    let mut txn = Txn::new();
    manager.save_kem_state(&mut txn, &state).unwrap();
    manager.vault.commit(txn).await.unwrap();

    let (done, _) = upkeep(&manager, &identity, replaced_at + retention - 1).await;
    assert!(!done.changed());
    assert!(manager
        .kem_prekey(KemPreKeyKind::LastResort, 1)
        .await
        .unwrap()
        .is_some());
    let (done, state) = upkeep(&manager, &identity, replaced_at + retention).await;
    assert_eq!(done.deleted, 1);
    assert!(state.held_last_resort.is_empty());
    assert!(manager
        .kem_prekey(KemPreKeyKind::LastResort, 1)
        .await
        .unwrap()
        .is_none());
    assert!(manager
        .kem_prekey(KemPreKeyKind::LastResort, 2)
        .await
        .unwrap()
        .is_some());
}

#[test]
fn ids_wrap_to_one_never_zero() {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let (mut state, _) = KemPreKeyState::initial(&identity, T0, &mut OsRng);
    state.next_one_time_id = u32::MAX;
    let ids: Vec<u32> = state
        .generate_one_time(&identity, 2, T0, &mut OsRng)
        .iter()
        .map(|k| k.id())
        .collect();
    assert_eq!(ids, vec![u32::MAX, 1]);
}

#[test]
fn the_state_record_layout_is_the_documented_one() {
    // PROTOCOL.md 12.9, kind 33: format varint 0, then the fields in order.
    let state = KemPreKeyState {
        next_one_time_id: 300,
        next_last_resort_id: 3,
        current_last_resort_id: 2,
        current_last_resort_created_at: 1,
        held_last_resort: vec![(1, 128)],
    };
    let bytes = postcard::to_allocvec(&StoredKemState::V1(state)).unwrap();
    assert_eq!(
        bytes,
        [0x00, 0xac, 0x02, 0x03, 0x02, 0x01, 0x01, 0x01, 0x80, 0x01]
    );
}

#[test]
fn a_kem_prekey_record_is_kind_id_time_seed_and_signature() {
    // PROTOCOL.md 12.9, `KemPreKey`: kind raw byte, varints, two 64-byte strings.
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let key = KemPreKey::generate(&identity, KemPreKeyKind::OneTime, 300, 1, &mut OsRng);
    let bytes = postcard::to_allocvec(&key).unwrap();
    assert_eq!(bytes[..5], [0x01, 0xac, 0x02, 0x01, 0x40]);
    assert_eq!(bytes[5..69], key.keypair().seed()[..]);
    assert_eq!(bytes[69], 0x40);
    assert_eq!(bytes[70..], key.public().signature.to_bytes());
    assert_eq!(bytes.len(), 134);
}
