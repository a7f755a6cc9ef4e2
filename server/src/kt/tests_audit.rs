//! The auditor on both backends: an honest history passes; one whose
//! version row or head was rewritten in the database, or whose newest head
//! another key signed, fails, naming the epoch; a node does not rebuild
//! from either.

use umbra_wire::kt::{DirectorySigningKey, EpochEntry, EpochLog};

use super::audit::{audit, parse_keys, AuditError};
use super::directory::Round;
use super::tests::{account, directory, on_both_backends, publish_identity};
use crate::store::test_support::TestDb;
use crate::store::SharedStore;

/// A history of three epochs, one new account each, and the directory
/// holding its key file.
async fn history(db: &TestDb) -> (SharedStore, tempfile::TempDir) {
    let store = db.open().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = directory(&store, tmp.path()).await;
    let alice = account(&store, 0xa1, "alice").await;
    publish_identity(&store, alice, 0x11).await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(0));
    let bob = account(&store, 0xb0, "bob").await;
    publish_identity(&store, bob, 0x22).await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(1));
    let carol = account(&store, 0xc0, "carol").await;
    publish_identity(&store, carol, 0x33).await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(2));
    (store, tmp)
}

async fn audited(store: &SharedStore) -> Result<u64, AuditError> {
    let keys = store
        .kt_public_keys()
        .await
        .unwrap()
        .ok_or(AuditError::NoKeys)?;
    let (key, _) = parse_keys(&keys)?;
    let (versions, epochs) = store.kt_since(None).await.unwrap();
    audit(&key, &versions, &epochs).map(|s| s.epochs)
}

fn epoch_of(result: Result<u64, AuditError>) -> (u64, String) {
    match result {
        Err(AuditError::Epoch { epoch, what }) => (epoch, what),
        other => panic!("not refused at an epoch: {other:?}"),
    }
}

async fn an_honest_history_passes(db: &TestDb) {
    let (store, _keys) = history(db).await;
    assert_eq!(audited(&store).await, Ok(3));
    // An empty database has nothing to audit, and says so.
    let empty = TestDb::sqlite();
    assert_eq!(audited(&empty.open().await).await, Err(AuditError::NoKeys));
}

async fn a_rewritten_version_row_fails(db: &TestDb) {
    let (store, _keys) = history(db).await;
    // bob's identity, published in epoch 1, swapped for another digest.
    let sql = "UPDATE kt_versions SET value = \
               (SELECT value FROM kt_versions WHERE epoch = 2 AND length(value) = 65) \
               WHERE epoch = 1 AND length(value) = 65";
    db.execute_raw(&[sql], &[sql]).await;
    let (epoch, what) = epoch_of(audited(&store).await);
    assert_eq!(epoch, 1);
    assert!(what.contains("map root"), "{what}");
}

async fn a_rewritten_head_fails(db: &TestDb) {
    let (store, _keys) = history(db).await;
    // Epoch 2's head replaced by epoch 1's: not of its entry.
    let sql = "UPDATE kt_epochs SET head = (SELECT head FROM kt_epochs WHERE epoch = 1) \
               WHERE epoch = 2";
    db.execute_raw(&[sql], &[sql]).await;
    let (epoch, what) = epoch_of(audited(&store).await);
    assert_eq!(epoch, 2);
    assert!(what.contains("head"), "{what}");
}

/// Epoch 2's head replaced by one over the same entry and the same log,
/// well formed, but signed by another directory key: what a database
/// restored under another key file, or a head row forged by whoever can
/// write the database, looks like.
async fn resign_newest_head(db: &TestDb, store: &SharedStore) {
    let (_, epochs) = store.kt_since(None).await.unwrap();
    let mut log = EpochLog::new();
    for row in &epochs {
        log.push(&row.entry);
    }
    let newest = epochs.last().expect("epochs");
    let entry = EpochEntry::decode(&newest.entry).unwrap();
    let other = DirectorySigningKey::from_seed(&[0x99; 32]);
    let forged = other.sign_head(&entry, &log).unwrap().encode();
    let hex = hex::encode(&forged);
    let sqlite = format!(
        "UPDATE kt_epochs SET head = X'{hex}' WHERE epoch = {}",
        entry.epoch
    );
    let postgres = format!(
        "UPDATE kt_epochs SET head = '\\x{hex}'::bytea WHERE epoch = {}",
        entry.epoch
    );
    db.execute_raw(&[&sqlite], &[&postgres]).await;
}

async fn a_head_signed_by_another_key_fails(db: &TestDb) {
    let (store, keys) = history(db).await;
    resign_newest_head(db, &store).await;
    let (epoch, what) = epoch_of(audited(&store).await);
    assert_eq!(epoch, 2);
    assert!(what.contains("does not verify"), "{what}");
    // Nor does a node rebuild from it and serve it as its own.
    let fresh = directory(&store, keys.path()).await;
    let err = fresh.round(&store).await.expect_err("a forged head");
    assert!(
        err.to_string().contains("not signed by this key file"),
        "{err}"
    );
    assert!(fresh.latest_head().await.is_none(), "nothing is served");
}

on_both_backends!(
    an_honest_history_passes,
    a_rewritten_version_row_fails,
    a_rewritten_head_fails,
    a_head_signed_by_another_key_fails,
);

/// A node does not serve a history its own tables contradict: rebuilding
/// the directory from a rewritten version row fails (and `start` refuses).
#[tokio::test]
async fn a_node_refuses_to_rebuild_from_a_rewritten_history() {
    let db = TestDb::sqlite();
    let (store, keys) = history(&db).await;
    let sql = "UPDATE kt_versions SET value = \
               (SELECT value FROM kt_versions WHERE epoch = 2 AND length(value) = 65) \
               WHERE epoch = 1 AND length(value) = 65";
    db.execute_raw(&[sql], &[]).await;
    let fresh = directory(&store, keys.path()).await;
    let err = fresh.round(&store).await.expect_err("a contradiction");
    assert!(err.to_string().contains("map root"), "{err}");
    assert!(fresh.latest_head().await.is_none(), "nothing is served");
}
