//! A password change of the local store (`key_slots.rs`, `Vault::prepare_rekey`):
//! at every step of the crash-safe sequence the store opens with exactly
//! the passwords it should, and the same records read back under them, on
//! both backends. A header whose slot was altered opens with no password.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use umbra_protocol::wire::AccountId;

use super::*;

const OLD: &[u8] = b"correct horse battery staple";
const NEW: &[u8] = b"a different and longer passphrase";
const THIRD: &[u8] = b"yet another passphrase entirely";
const OWNER: AccountId = AccountId::from_bytes([0xB2; 16]);

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x7e4e)
}

async fn store_with_a_record(backend: Arc<dyn ClientStore>) -> Vault {
    let vault = Vault::create(
        backend,
        OLD,
        KdfParams::insecure_for_tests(),
        OWNER,
        &mut rng(),
    )
    .await
    .expect("create");
    let mut txn = Txn::new();
    let slot = vault.slot(RecordKind::Contact, b"alice");
    vault
        .put(
            &mut txn,
            RecordKind::Contact,
            slot,
            &"alice's record".to_owned(),
            &mut rng(),
        )
        .unwrap();
    vault.commit(txn).await.unwrap();
    vault
}

/// Which of `passwords` open the store, and each reads the record back.
async fn opening(backend: &Arc<dyn ClientStore>, passwords: &[&[u8]]) -> Vec<bool> {
    let mut opens = Vec::new();
    for password in passwords {
        match Vault::unlock(backend.clone(), password).await {
            Ok(vault) => {
                let slot = vault.slot(RecordKind::Contact, b"alice");
                let value: Option<String> = vault.get(RecordKind::Contact, &slot).await.unwrap();
                assert_eq!(value.as_deref(), Some("alice's record"));
                opens.push(true);
            }
            Err(StoreError::WrongPassword) => opens.push(false),
            Err(other) => panic!("unlock failed otherwise: {other:?}"),
        }
    }
    opens
}

async fn every_step_opens_with_the_right_passwords(backend: Arc<dyn ClientStore>) {
    let vault = store_with_a_record(backend.clone()).await;
    assert!(matches!(
        vault
            .prepare_rekey(b"not the password", NEW, &mut rng())
            .await,
        Err(StoreError::WrongPassword)
    ));
    let rekey = vault.prepare_rekey(OLD, NEW, &mut rng()).await.unwrap();
    assert_eq!(
        opening(&backend, &[OLD, NEW]).await,
        [true, false],
        "nothing written yet"
    );

    // Written before the relay is asked: a crash now leaves both working.
    vault.write_rekey_header(&rekey.both).await.unwrap();
    assert_eq!(
        opening(&backend, &[OLD, NEW, THIRD]).await,
        [true, true, false]
    );

    // The relay refused: back to the old password alone, byte for byte.
    vault.write_rekey_header(&rekey.original).await.unwrap();
    assert_eq!(opening(&backend, &[OLD, NEW]).await, [true, false]);

    // The relay took it: the new password alone.
    vault.write_rekey_header(&rekey.both).await.unwrap();
    vault.write_rekey_header(&rekey.new_only).await.unwrap();
    assert_eq!(opening(&backend, &[OLD, NEW]).await, [false, true]);

    // A second change starts from a wrapped header; the old one is refused.
    let vault = Vault::unlock(backend.clone(), NEW).await.unwrap();
    assert!(matches!(
        vault.prepare_rekey(OLD, THIRD, &mut rng()).await,
        Err(StoreError::WrongPassword)
    ));
    let rekey = vault.prepare_rekey(NEW, THIRD, &mut rng()).await.unwrap();
    vault.write_rekey_header(&rekey.both).await.unwrap();
    assert_eq!(
        opening(&backend, &[OLD, NEW, THIRD]).await,
        [false, true, true]
    );
    vault.write_rekey_header(&rekey.new_only).await.unwrap();
    assert_eq!(
        opening(&backend, &[OLD, NEW, THIRD]).await,
        [false, false, true]
    );

    // Writes after the change are read back under the same keys.
    let vault = Vault::unlock(backend.clone(), THIRD).await.unwrap();
    let mut txn = Txn::new();
    let slot = vault.slot(RecordKind::Contact, b"bob");
    vault
        .put(
            &mut txn,
            RecordKind::Contact,
            slot.clone(),
            &"bob".to_owned(),
            &mut rng(),
        )
        .unwrap();
    vault.commit(txn).await.unwrap();
    let again = Vault::unlock(backend.clone(), THIRD).await.unwrap();
    let bob: Option<String> = again.get(RecordKind::Contact, &slot).await.unwrap();
    assert_eq!(bob.as_deref(), Some("bob"));
}

#[tokio::test]
async fn every_step_opens_with_the_right_passwords_in_memory() {
    every_step_opens_with_the_right_passwords(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn every_step_opens_with_the_right_passwords_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    every_step_opens_with_the_right_passwords(Arc::new(store)).await;
}

#[tokio::test]
async fn an_altered_slot_opens_with_no_password() {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let vault = store_with_a_record(backend.clone()).await;
    let rekey = vault.prepare_rekey(OLD, NEW, &mut rng()).await.unwrap();
    // Byte 8 + 16 + 1 + 12 is the first slot's salt; the last byte before
    // the check is inside the second slot's wrapped keys.
    for at in [8 + 16 + 1 + 12, 8 + 16 + 1 + 2 * 132 - 1] {
        let mut bytes = rekey.both.clone();
        bytes[at] ^= 1;
        vault.write_rekey_header(&bytes).await.unwrap();
        let opens = opening(&backend, &[OLD, NEW]).await;
        if at < 8 + 16 + 1 + 132 {
            assert_eq!(
                opens,
                [false, true],
                "the altered first slot no longer opens"
            );
        } else {
            assert_eq!(
                opens,
                [true, false],
                "the altered second slot no longer opens"
            );
        }
    }
    // A header naming a third slot is refused before any derivation.
    let mut bytes = rekey.both.clone();
    bytes[8 + 16] = 3;
    vault.write_rekey_header(&bytes).await.unwrap();
    assert!(matches!(
        Vault::unlock(backend.clone(), OLD).await,
        Err(StoreError::BadHeader(_))
    ));
}

/// A login the relay accepted on a two-slot header (a change whose answer
/// was lost) leaves that password's slot alone; a one-slot header is not
/// rewritten.
async fn a_login_keeps_only_its_passwords_slot(backend: Arc<dyn ClientStore>) {
    let vault = store_with_a_record(backend.clone()).await;
    let rekey = vault.prepare_rekey(OLD, NEW, &mut rng()).await.unwrap();
    vault.write_rekey_header(&rekey.both).await.unwrap();
    // The relay kept the old password.
    assert!(vault.keep_only_slot_of(OLD).await.unwrap());
    assert_eq!(opening(&backend, &[OLD, NEW]).await, [true, false]);
    assert!(
        !vault.keep_only_slot_of(OLD).await.unwrap(),
        "one slot already"
    );
    // The relay took the new one.
    vault.write_rekey_header(&rekey.both).await.unwrap();
    assert!(!vault.keep_only_slot_of(THIRD).await.unwrap());
    assert_eq!(opening(&backend, &[OLD, NEW]).await, [true, true]);
    assert!(vault.keep_only_slot_of(NEW).await.unwrap());
    assert_eq!(opening(&backend, &[OLD, NEW]).await, [false, true]);
    let again = Vault::unlock(backend.clone(), NEW).await.unwrap();
    assert_eq!(again.owner(), OWNER);
}

#[tokio::test]
async fn a_login_keeps_only_its_passwords_slot_in_memory() {
    a_login_keeps_only_its_passwords_slot(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn a_login_keeps_only_its_passwords_slot_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    a_login_keeps_only_its_passwords_slot(Arc::new(store)).await;
}

/// A header left with two slots by a change whose answer was lost (the
/// relay may hold either password) refuses another change with either
/// password, writing nothing: a retry's `[old, third]` would drop the slot
/// of the password the relay may hold. After a login settles it to one
/// slot, a change keeps that slot and adds the new one.
#[tokio::test]
async fn a_two_slot_header_refuses_another_change_until_settled() {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let vault = store_with_a_record(backend.clone()).await;
    let rekey = vault.prepare_rekey(OLD, NEW, &mut rng()).await.unwrap();
    vault.write_rekey_header(&rekey.both).await.unwrap();
    let unsettled = backend.read_header().await.unwrap();
    for current in [OLD, NEW] {
        assert!(matches!(
            vault.prepare_rekey(current, THIRD, &mut rng()).await,
            Err(StoreError::ChangeUnsettled)
        ));
    }
    assert_eq!(backend.read_header().await.unwrap(), unsettled);
    assert_eq!(
        opening(&backend, &[OLD, NEW, THIRD]).await,
        [true, true, false]
    );
    assert!(vault.keep_only_slot_of(NEW).await.unwrap());
    let rekey = vault.prepare_rekey(NEW, THIRD, &mut rng()).await.unwrap();
    vault.write_rekey_header(&rekey.both).await.unwrap();
    assert_eq!(
        opening(&backend, &[OLD, NEW, THIRD]).await,
        [false, true, true]
    );
}
