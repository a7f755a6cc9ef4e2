//! The upload paths against a real relay in this process: the first
//! backup after registering, nothing sent when nothing changed, a `409`
//! answered by merging with what another device stored, and re-sealing
//! under a new export key over a copy the new key cannot open. These need
//! the engine and its state, so they live in the crate.

use rand::rngs::OsRng;
use umbra_protocol::backup::{self as format, BackupContact, BackupTrust, EXPORT_KEY_LEN};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{AccountId, Username};

use super::http::{Answer, BackupEndpoint};
use super::sync::Uploaded;
use super::ExportKey;
use crate::contact::TrustLevel;
use crate::engine::lock;
use crate::groups::tests::{register, relay};
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{BackupFailure, Client, Error};

fn endpoint(url: &str) -> BackupEndpoint {
    BackupEndpoint::new(url, None, std::time::Duration::from_secs(30)).expect("endpoint")
}

async fn relay_copy(client: &Client, url: &str, key: &ExportKey) -> format::OpenedBackup {
    let engine = &client.inner;
    let token = engine.token().await.unwrap().unwrap().session_token();
    let Answer::Ok { body, .. } = endpoint(url).get(&token).await.unwrap() else {
        panic!("no backup on the relay");
    };
    format::open(&key.backup_key(&engine.me().account), &body, None).expect("opens")
}

#[tokio::test]
async fn conflicts_merge_with_the_relays_copy_and_reseal_replaces_an_old_passwords() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let alice = register(&url, "alice").await;
    let engine = alice.inner.clone();
    let me = engine.me().account;

    // The worker stops here, so every upload below is this test's; it may
    // have written the first backup already.
    if let Some(worker) = lock(&engine.backup.worker).take() {
        worker.abort();
    }
    // Registering leaves a backup to write; then nothing changed.
    let first = engine.upload_backup().await.unwrap();
    assert!(
        matches!(first, Uploaded::Stored { seq: 1 } | Uploaded::Unchanged),
        "{first:?}"
    );
    assert_eq!(
        engine.backup.state().await.unwrap().unwrap().acked_seq,
        Some(1)
    );
    assert_eq!(engine.upload_backup().await.unwrap(), Uploaded::Unchanged);
    let key = engine.backup.state().await.unwrap().unwrap().export_key;

    // "Another device" stores seq 5 with a verified contact carol.
    let carol = IdentityKeyPair::generate(&mut OsRng).public();
    let mut theirs = relay_copy(&alice, &url, &key).await.contents;
    theirs.contacts.push(BackupContact {
        account: AccountId::from_bytes([0xcc; 16]),
        username: Username::parse("carol").unwrap(),
        identity: carol.clone(),
        trust: BackupTrust::Verified,
    });
    let sealed = format::seal(&theirs, &key.backup_key(&me), 5, &mut OsRng).unwrap();
    let token = engine.token().await.unwrap().unwrap().session_token();
    assert!(matches!(
        endpoint(&url).put(&token, &sealed).await.unwrap(),
        Answer::Ok { seq: Some(5), .. }
    ));

    // Here, dave becomes a contact; the upload meets 409 and merges.
    let dave = ContactRecord::first_seen(
        [0xdd; 16],
        "dave".into(),
        IdentityKeyPair::generate(&mut OsRng).public(),
    );
    let mut txn = Txn::new();
    engine.names.put_contact(&mut txn, &dave).await.unwrap();
    engine.vault.commit(txn).await.unwrap();
    assert_eq!(
        engine.upload_backup().await.unwrap(),
        Uploaded::Stored { seq: 6 }
    );
    let merged = relay_copy(&alice, &url, &key).await;
    assert_eq!(merged.seq, 6);
    let names: Vec<&str> = merged
        .contents
        .contacts
        .iter()
        .map(|c| c.username.as_str())
        .collect();
    assert_eq!(names, ["carol", "dave"]);
    assert!(merged.contents.contacts[0].trust.is_verified());
    assert_eq!(merged.contents.contacts[0].identity, carol);
    assert_eq!(
        engine.backup.state().await.unwrap().unwrap().acked_seq,
        Some(6)
    );
    // The merge went to the relay, not into this store: dave only here.
    assert!(engine.names.contact(&[0xcc; 16]).await.unwrap().is_none());
    assert_eq!(
        engine
            .names
            .contact(&[0xdd; 16])
            .await
            .unwrap()
            .unwrap()
            .trust,
        TrustLevel::Unverified
    );

    // A password change elsewhere left seq 9 under the old key; re-sealing
    // under the new key replaces it.
    let sealed = format::seal(&theirs, &key.backup_key(&me), 9, &mut OsRng).unwrap();
    assert!(matches!(
        endpoint(&url).put(&token, &sealed).await.unwrap(),
        Answer::Ok { .. }
    ));
    let new_key = ExportKey::from_slice(&[0x42; EXPORT_KEY_LEN]).unwrap();
    assert_eq!(engine.reseal_backup(new_key.clone()).await.unwrap(), 10);
    let resealed = relay_copy(&alice, &url, &new_key).await;
    assert_eq!(resealed.seq, 10);
    assert_eq!(
        resealed.contents.identity.public(),
        engine.identity.public()
    );
    let token = engine.token().await.unwrap().unwrap().session_token();
    let Answer::Ok { body, .. } = endpoint(&url).get(&token).await.unwrap() else {
        panic!("no backup");
    };
    assert_eq!(
        format::open(&key.backup_key(&me), &body, None).map(|_| ()),
        Err(format::BackupError::WrongKey),
        "the old password's key must no longer open it"
    );
    // The new key is the store's: unchanged contents upload nothing.
    assert_eq!(engine.upload_backup().await.unwrap(), Uploaded::Unchanged);

    // A copy that does not open (tampered) is never overwritten.
    let mut tampered = format::seal(&theirs, &new_key.backup_key(&me), 20, &mut OsRng).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        endpoint(&url).put(&token, &tampered).await.unwrap(),
        Answer::Ok { .. }
    ));
    let mut txn = Txn::new();
    let erin = ContactRecord::first_seen(
        [0xee; 16],
        "erin".into(),
        IdentityKeyPair::generate(&mut OsRng).public(),
    );
    engine.names.put_contact(&mut txn, &erin).await.unwrap();
    engine.vault.commit(txn).await.unwrap();
    let err = engine.upload_backup().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Backup(BackupFailure::Contents(format::BackupError::Tampered))
        ),
        "{err:?}"
    );
    alice.shutdown().await;
}

/// Starting over with a new identity replaces the relay's backup (even one
/// that does not open) instead of merging with it. (Its own relay: the
/// relay allows an account 10 backup writes a minute.)
#[tokio::test]
async fn a_new_identity_replaces_the_relays_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let alice = register(&url, "alice").await;
    let engine = alice.inner.clone();
    let me = engine.me().account;
    if let Some(worker) = lock(&engine.backup.worker).take() {
        worker.abort();
    }
    let key = engine.backup.state().await.unwrap().unwrap().export_key;
    let contents = engine.backup_contents().await.unwrap();
    let mut tampered = format::seal(&contents, &key.backup_key(&me), 20, &mut OsRng).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let token = engine.token().await.unwrap().unwrap().session_token();
    assert!(matches!(
        endpoint(&url).put(&token, &tampered).await.unwrap(),
        Answer::Ok { .. }
    ));
    let old_identity = engine.identity.public();
    alice.shutdown().await;

    let store: std::sync::Arc<dyn crate::store::ClientStore> =
        std::sync::Arc::new(crate::store::MemoryStore::new());
    let config = crate::ClientConfig::with_store(&url, store)
        .kdf_params(crate::KdfParams::insecure_for_tests());
    let again = Client::login_with_new_identity(config, "alice", "pw-of-test")
        .await
        .expect("login with a new identity");
    let engine = again.inner.clone();
    if let Some(worker) = lock(&engine.backup.worker).take() {
        worker.abort();
    }
    assert_ne!(engine.identity.public(), old_identity);
    let first = engine.upload_backup().await.unwrap();
    assert!(
        matches!(first, Uploaded::Stored { seq: 21 } | Uploaded::Unchanged),
        "{first:?}"
    );
    let key = engine.backup.state().await.unwrap().unwrap().export_key;
    let replaced = relay_copy(&again, &url, &key).await;
    assert_eq!(replaced.seq, 21);
    assert_eq!(
        replaced.contents.identity.public(),
        engine.identity.public()
    );
    assert!(replaced.contents.contacts.is_empty());
    again.shutdown().await;
}
