//! The upload paths against a real relay in this process: the first
//! backup after registering, nothing sent when nothing changed, a `409`
//! answered by merging with what another device stored (into the store
//! too, so two directories taking turns keep each other's contacts), and re-sealing
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
    // The merge went into this store too (what it holds is what the relay
    // holds): carol with her verification, dave as he was.
    let kept = engine.names.contact(&[0xcc; 16]).await.unwrap().unwrap();
    assert_eq!(
        (kept.trust, kept.pinned),
        (TrustLevel::Verified, carol.clone())
    );
    assert_eq!(engine.upload_backup().await.unwrap(), Uploaded::Unchanged);
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

/// A verified contact in `client`'s store, committed.
async fn add_verified(client: &Client, account: u8, name: &str) {
    let mut contact = ContactRecord::first_seen(
        [account; 16],
        name.into(),
        IdentityKeyPair::generate(&mut OsRng).public(),
    );
    contact.trust = TrustLevel::Verified;
    let engine = &client.inner;
    let mut txn = Txn::new();
    engine.names.put_contact(&mut txn, &contact).await.unwrap();
    engine.vault.commit(txn).await.unwrap();
}

/// The verified contacts' names in the relay's copy.
async fn verified_on_relay(client: &Client, url: &str) -> Vec<String> {
    let key = client
        .inner
        .backup
        .state()
        .await
        .unwrap()
        .unwrap()
        .export_key;
    let copy = relay_copy(client, url, &key).await;
    copy.contents
        .contacts
        .iter()
        .filter(|c| c.trust.is_verified())
        .map(|c| c.username.as_str().to_owned())
        .collect()
}

/// Two data directories of one account take turns uploading: a `409`'s
/// merge goes into the store of the directory that met it, so its next
/// upload (built from its store) keeps the other's verified contact
/// instead of erasing it, and so does the other's in turn.
#[tokio::test]
async fn two_directories_taking_turns_keep_each_others_contacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let a = register(&url, "alice").await;
    if let Some(worker) = lock(&a.inner.backup.worker).take() {
        worker.abort();
    }
    a.inner.upload_backup().await.unwrap();

    // The second directory restores the account (and so logs the first
    // out everywhere); the first then logs in again without a take-over,
    // as a second device of the account would.
    let store: std::sync::Arc<dyn crate::store::ClientStore> =
        std::sync::Arc::new(crate::store::MemoryStore::new());
    let config = crate::ClientConfig::with_store(&url, store)
        .kdf_params(crate::KdfParams::insecure_for_tests());
    let b = Client::login(config, "alice", "pw-of-test")
        .await
        .expect("restore");
    if let Some(worker) = lock(&b.inner.backup.worker).take() {
        worker.abort();
    }
    let ws = a.inner.ws_url.clone();
    let mut link =
        crate::relay_link::RelayLink::connect(&ws, None, std::time::Duration::from_secs(10))
            .await
            .unwrap();
    let name = Username::parse("alice").unwrap();
    let again = crate::account::login(&mut link, &name, b"pw-of-test", &mut OsRng)
        .await
        .unwrap();
    link.close().await;
    a.inner.store_token(&again.token).await.unwrap();

    add_verified(&a, 0xc1, "carol").await;
    assert!(matches!(
        a.inner.upload_backup().await.unwrap(),
        Uploaded::Stored { .. }
    ));
    // b meets 409 and merges: carol comes into b's store, still verified.
    add_verified(&b, 0xd1, "dave").await;
    assert!(matches!(
        b.inner.upload_backup().await.unwrap(),
        Uploaded::Stored { .. }
    ));
    let carol = b.inner.names.contact(&[0xc1; 16]).await.unwrap();
    assert_eq!(carol.map(|c| c.trust), Some(TrustLevel::Verified));
    // Nothing changed in b since: its store is what the relay holds.
    assert_eq!(b.inner.upload_backup().await.unwrap(), Uploaded::Unchanged);

    // Both upload again, b first with no conflict (its store's contents).
    add_verified(&b, 0xd2, "dan").await;
    assert!(matches!(
        b.inner.upload_backup().await.unwrap(),
        Uploaded::Stored { .. }
    ));
    assert_eq!(verified_on_relay(&b, &url).await, ["carol", "dave", "dan"]);
    add_verified(&a, 0xc2, "cleo").await;
    assert!(matches!(
        a.inner.upload_backup().await.unwrap(),
        Uploaded::Stored { .. }
    ));
    assert_eq!(a.inner.upload_backup().await.unwrap(), Uploaded::Unchanged);
    let mut on_relay = verified_on_relay(&a, &url).await;
    on_relay.sort();
    assert_eq!(on_relay, ["carol", "cleo", "dan", "dave"]);
    let dave = a.inner.names.contact(&[0xd1; 16]).await.unwrap();
    assert_eq!(dave.map(|c| c.trust), Some(TrustLevel::Verified));
    a.shutdown().await;
    b.shutdown().await;
}

/// A restore is one transaction and survives one unreadable group: a
/// backup with a group log that does not load still restores the rest
/// (before, the whole login failed after the account record was committed,
/// and the next login resumed an account with no contacts), and a store
/// whose setup never committed (only its header written: a crash) is set
/// up again by the next login instead of being resumed empty.
#[tokio::test]
async fn a_restore_skips_an_unreadable_group_and_redoes_an_interrupted_setup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let alice = register(&url, "alice").await;
    let engine = alice.inner.clone();
    if let Some(worker) = lock(&engine.backup.worker).take() {
        worker.abort();
    }
    add_verified(&alice, 0xb0, "bob").await;
    let key = engine.backup.state().await.unwrap().unwrap().export_key;
    let me = engine.me().account;
    let mut contents = engine.backup_contents().await.unwrap();
    contents.groups.push(umbra_protocol::backup::BackupGroup {
        id: umbra_protocol::group::GroupId([0x99; 32]),
        log: vec![1, 2, 3],
    });
    let token = engine.token().await.unwrap().unwrap().session_token();
    // After the shutdown's own upload, so nothing merges it away.
    alice.shutdown().await;
    let sealed = format::seal(&contents, &key.backup_key(&me), 30, &mut OsRng).unwrap();
    assert!(matches!(
        endpoint(&url).put(&token, &sealed).await.unwrap(),
        Answer::Ok { seq: Some(30), .. }
    ));

    let config = |store: &std::sync::Arc<dyn crate::store::ClientStore>| {
        crate::ClientConfig::with_store(&url, store.clone())
            .kdf_params(crate::KdfParams::insecure_for_tests())
    };
    let store: std::sync::Arc<dyn crate::store::ClientStore> =
        std::sync::Arc::new(crate::store::MemoryStore::new());
    let restored = Client::login(config(&store), "alice", "pw-of-test")
        .await
        .expect("a restore with one unreadable group");
    let bob = restored.inner.names.contact(&[0xb0; 16]).await.unwrap();
    assert_eq!(bob.map(|c| c.trust), Some(TrustLevel::Verified));
    assert_eq!(restored.inner.identity.public(), engine.identity.public());
    restored.shutdown().await;

    // A crash right after the store was created: a header, no account.
    let store: std::sync::Arc<dyn crate::store::ClientStore> =
        std::sync::Arc::new(crate::store::MemoryStore::new());
    let cfg = config(&store);
    crate::store::Vault::create(store.clone(), b"pw-of-test", cfg.kdf, me, &mut OsRng)
        .await
        .unwrap();
    let again = Client::login(cfg, "alice", "pw-of-test")
        .await
        .expect("the next login sets the store up again");
    let bob = again.inner.names.contact(&[0xb0; 16]).await.unwrap();
    assert_eq!(bob.map(|c| c.trust), Some(TrustLevel::Verified));
    assert_eq!(again.inner.identity.public(), engine.identity.public());
    again.shutdown().await;
}

/// A stranger's invisible content (a session reset here; typing or a
/// receipt alike) makes no contact, so it cannot plant one in the account
/// backup; a message from them does.
#[tokio::test]
async fn a_strangers_invisible_content_makes_no_contact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let alice = register(&url, "alice").await;
    let mallory = register(&url, "mallory").await;
    let alice_name = Username::parse("alice").unwrap();
    let wait = std::time::Duration::from_secs(10);
    // Mallory knows alice (as if from a directory lookup); alice knows
    // nobody.
    let alice_as_contact = ContactRecord::first_seen(
        *alice.inner.me().account.as_bytes(),
        "alice".into(),
        alice.inner.identity.public(),
    );
    let mut txn = Txn::new();
    let names = &mallory.inner.names;
    names
        .put_contact(&mut txn, &alice_as_contact)
        .await
        .unwrap();
    mallory.inner.vault.commit(txn).await.unwrap();
    // The reviewer's case: an unsolicited SessionReset (pre-key message).
    assert_eq!(mallory.inner.reset_all_sessions().await.unwrap(), 1);
    mallory.flush_outbox(wait).await.unwrap();
    let events = alice.receive_until_empty(wait).await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, crate::Event::DecryptionFailed { .. })),
        "{events:?}"
    );
    let them = mallory.inner.me().account;
    assert!(alice
        .inner
        .names
        .contact(them.as_bytes())
        .await
        .unwrap()
        .is_none());
    let contents = alice.inner.backup_contents().await.unwrap();
    assert!(contents.contacts.is_empty());

    mallory.send_text(&alice_name, "hi").await.unwrap();
    mallory.flush_outbox(wait).await.unwrap();
    alice.receive_until_empty(wait).await.unwrap();
    assert!(alice
        .inner
        .names
        .contact(them.as_bytes())
        .await
        .unwrap()
        .is_some());
    alice.shutdown().await;
    mallory.shutdown().await;
}
