//! Tests of rollback detection (generation.rs) over both backends: an
//! older sealed copy of a guarded record put back through the backend is
//! refused as `RolledBack`, and ordinary writes and re-opens never are.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use umbra_protocol::wire::AccountId;

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Note {
    text: String,
    n: u64,
}

const PASSWORD: &[u8] = b"correct horse battery staple";
const OWNER: AccountId = AccountId::from_bytes([0xA2; 16]);

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

async fn new_vault(backend: Arc<dyn ClientStore>) -> Vault {
    Vault::create(
        backend,
        PASSWORD,
        KdfParams::insecure_for_tests(),
        OWNER,
        &mut rng(),
    )
    .await
    .expect("create vault")
}

fn note(text: &str, n: u64) -> Note {
    Note {
        text: text.into(),
        n,
    }
}

async fn put(vault: &Vault, kind: RecordKind, slot: Vec<u8>, value: &Note) {
    let mut txn = Txn::new();
    vault.put(&mut txn, kind, slot, value, &mut rng()).unwrap();
    vault.commit(txn).await.unwrap();
}

type Opener = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn ClientStore>>>>>;

fn memory_opener() -> Opener {
    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    Box::new(move || {
        let store = store.clone();
        Box::pin(async move { store })
    })
}

fn sqlite_opener(data: std::path::PathBuf) -> Opener {
    Box::new(move || {
        let data = data.clone();
        Box::pin(async move {
            let store: Arc<dyn ClientStore> = Arc::new(SqliteStore::open(&data).await.unwrap());
            store
        })
    })
}

async fn raw(backend: &dyn ClientStore, kind: RecordKind, slot: &[u8]) -> Vec<u8> {
    backend.get(kind, slot).await.unwrap().expect("row present")
}

async fn put_back(backend: &dyn ClientStore, kind: RecordKind, slot: &[u8], sealed: Vec<u8>) {
    let slot = slot.to_vec();
    backend
        .apply(vec![WriteOp::Put { kind, slot, sealed }])
        .await
        .unwrap();
}

/// An older sealed copy of a session or outbox record, put back through the
/// backend, is refused by name, before and after a re-open; so is a removed
/// one, and an older index put back beside newer records.
async fn rollback_is_refused_on(open: Opener) {
    let backend = open().await;
    let vault = new_vault(backend.clone()).await;
    let session = vault.slot(RecordKind::Session, b"bob");
    let contact = vault.slot(RecordKind::Contact, b"bob");
    put(&vault, RecordKind::Session, session.clone(), &note("s1", 1)).await;
    put(&vault, RecordKind::Contact, contact.clone(), &note("c1", 1)).await;
    let old_session = raw(&*backend, RecordKind::Session, &session).await;
    let old_contact = raw(&*backend, RecordKind::Contact, &contact).await;
    let old_index = raw(&*backend, RecordKind::Generation, &[]).await;
    put(&vault, RecordKind::Session, session.clone(), &note("s2", 2)).await;
    put(&vault, RecordKind::Contact, contact.clone(), &note("c2", 2)).await;
    let new_session = raw(&*backend, RecordKind::Session, &session).await;

    put_back(
        &*backend,
        RecordKind::Session,
        &session,
        old_session.clone(),
    )
    .await;
    let err = vault.get::<Note>(RecordKind::Session, &session).await;
    assert!(
        matches!(
            err,
            Err(StoreError::RolledBack {
                kind: RecordKind::Session
            })
        ),
        "{err:?}"
    );
    // The documented limit: an unguarded kind rolled back still opens.
    put_back(&*backend, RecordKind::Contact, &contact, old_contact).await;
    let contact_value = vault.get::<Note>(RecordKind::Contact, &contact).await;
    assert_eq!(contact_value.unwrap(), Some(note("c1", 1)));
    drop(vault);
    let vault = Vault::unlock(backend.clone(), PASSWORD).await.unwrap();
    assert!(matches!(
        vault.get::<Note>(RecordKind::Session, &session).await,
        Err(StoreError::RolledBack { .. })
    ));
    // The current copy is still accepted; a removed one is not.
    put_back(&*backend, RecordKind::Session, &session, new_session).await;
    assert_eq!(
        vault
            .get::<Note>(RecordKind::Session, &session)
            .await
            .unwrap(),
        Some(note("s2", 2))
    );
    let delete = WriteOp::Delete {
        kind: RecordKind::Session,
        slot: session.clone(),
    };
    backend.apply(vec![delete]).await.unwrap();
    assert!(matches!(
        vault.get_raw(RecordKind::Session, &session).await,
        Err(StoreError::RolledBack { .. })
    ));
    // Rolling the index back alone does not help: the newer session no
    // longer matches it.
    put(&vault, RecordKind::Session, session.clone(), &note("s3", 3)).await;
    put_back(&*backend, RecordKind::Generation, &[], old_index).await;
    drop(vault);
    let vault = Vault::unlock(backend.clone(), PASSWORD).await.unwrap();
    assert!(matches!(
        vault.get::<Note>(RecordKind::Session, &session).await,
        Err(StoreError::RolledBack { .. })
    ));
    // Outbox entries are guarded in lists too.
    let (one, two) = (1u64.to_be_bytes().to_vec(), 2u64.to_be_bytes().to_vec());
    put(&vault, RecordKind::Outbox, one.clone(), &note("o1", 1)).await;
    let old_one = raw(&*backend, RecordKind::Outbox, &one).await;
    put(&vault, RecordKind::Outbox, two, &note("o2", 2)).await;
    put(&vault, RecordKind::Outbox, one.clone(), &note("o1b", 3)).await;
    assert_eq!(
        vault
            .list::<Note>(RecordKind::Outbox, &[])
            .await
            .unwrap()
            .len(),
        2
    );
    put_back(&*backend, RecordKind::Outbox, &one, old_one).await;
    assert!(matches!(
        vault.list::<Note>(RecordKind::Outbox, &[]).await,
        Err(StoreError::RolledBack {
            kind: RecordKind::Outbox
        })
    ));
}

#[tokio::test]
async fn a_rolled_back_record_is_refused_on_memory() {
    rollback_is_refused_on(memory_opener()).await;
}

#[tokio::test]
async fn a_rolled_back_record_is_refused_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    rollback_is_refused_on(sqlite_opener(dir.path().join("data"))).await;
}

/// Ordinary writes, batches, deletions and re-opens never trip the check.
async fn normal_writes_and_reopens_on(open: Opener) {
    let backend = open().await;
    drop(new_vault(backend).await);
    let session = |n: u8| vec![n; 32];
    for round in 0..4u64 {
        let backend = open().await;
        let vault = Vault::unlock(backend, PASSWORD).await.unwrap();
        for n in 0..3u8 {
            let found = vault.get::<Note>(RecordKind::Session, &session(n)).await;
            let expected = (round > 0).then(|| note("s", round * 10 + u64::from(n) - 10));
            assert_eq!(found.unwrap(), expected, "round {round} session {n}");
        }
        let mut txn = Txn::new();
        for n in 0..3u8 {
            let value = note("s", round * 10 + u64::from(n));
            vault
                .put(
                    &mut txn,
                    RecordKind::Session,
                    session(n),
                    &value,
                    &mut rng(),
                )
                .unwrap();
        }
        let seq = round.to_be_bytes().to_vec();
        vault
            .put(
                &mut txn,
                RecordKind::Outbox,
                seq,
                &note("o", round),
                &mut rng(),
            )
            .unwrap();
        if round > 0 {
            let previous = (round - 1).to_be_bytes().to_vec();
            vault.delete(&mut txn, RecordKind::Outbox, previous);
        }
        vault.commit(txn).await.unwrap();
        let outbox = vault.list::<Note>(RecordKind::Outbox, &[]).await.unwrap();
        assert_eq!(outbox.len(), 1);
        let gone = (round + 7).to_be_bytes();
        assert_eq!(
            vault.get::<Note>(RecordKind::Outbox, &gone).await.unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn normal_writes_and_reopens_pass_the_generation_check_on_memory() {
    normal_writes_and_reopens_on(memory_opener()).await;
}

#[tokio::test]
async fn normal_writes_and_reopens_pass_the_generation_check_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    normal_writes_and_reopens_on(sqlite_opener(dir.path().join("data"))).await;
}
