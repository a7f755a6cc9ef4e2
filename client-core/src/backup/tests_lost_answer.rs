//! A password change whose `PasswordChanged` answer is lost
//! (docs/PROTOCOL.md §12.15, "Re-sealing under a new export key"): the
//! relay swapped the record, the client never heard. The store keeps the
//! new export key as *pending* from before the finish was sent; the next
//! login's export key says which key the relay holds, and a login with the
//! new password re-seals and uploads at once, so a restore with the new
//! password reads the backup instead of meeting `WrongKey`.
//!
//! Must never: pass because the background worker happened to upload (it
//! is stopped right after each login, before its debounce ends).

use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::backup::EXPORT_KEY_LEN;
use umbra_protocol::identity::IdentityKeyPair;

use super::restore::KeyOutcome;
use super::sync::Uploaded;
use super::{BackupState, ExportKey};
use crate::contact::TrustLevel;
use crate::engine::lock;
use crate::groups::tests::relay;
use crate::store::{ClientStore, MemoryStore, Txn};
use crate::trust::ContactRecord;
use crate::{Client, ClientConfig, Error, KdfParams};

const OLD: &str = "pw-of-test";
const NEW: &str = "a-new-pw-of-test";

fn config(url: &str, store: &Arc<dyn ClientStore>) -> ClientConfig {
    ClientConfig::with_store(url, store.clone()).kdf_params(KdfParams::insecure_for_tests())
}

fn stop_worker(client: &Client) {
    if let Some(worker) = lock(&client.inner.backup.worker).take() {
        worker.abort();
    }
}

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

#[tokio::test]
async fn a_lost_password_changed_answer_is_decided_by_the_next_login() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let alice = Client::register(config(&url, &store), "alice", OLD)
        .await
        .expect("register");
    stop_worker(&alice);
    add_verified(&alice, 0xc1, "carol").await;
    assert!(matches!(
        alice.inner.upload_backup().await.unwrap(),
        Uploaded::Stored { .. }
    ));
    let old_key = alice
        .inner
        .backup
        .state()
        .await
        .unwrap()
        .unwrap()
        .export_key;

    // The relay carries the change out; its answer never reaches us.
    let me = *alice.inner.me().account.as_bytes();
    lock(&crate::lifecycle::password::LOSE_NEXT_ANSWER).push(me);
    let lost = alice.change_password(OLD, NEW).await;
    assert!(matches!(lost, Err(Error::Connection(_))), "{lost:?}");
    let state = alice.inner.backup.state().await.unwrap().unwrap();
    assert!(
        state.export_key.same_as(&old_key),
        "the outcome is unknown: the old key stays current"
    );
    let pending = alice.inner.backup.pending().await.unwrap();
    assert!(
        pending.as_ref().is_some_and(|p| !p.same_as(&old_key)),
        "the new password's key is pending"
    );
    alice.shutdown().await;

    // The next login, in the same data directory, with the new password.
    let again = Client::login(config(&url, &store), "alice", NEW)
        .await
        .expect("the relay holds the new password");
    stop_worker(&again);
    let state = again.inner.backup.state().await.unwrap().unwrap();
    assert!(state.export_key.same_as(pending.as_ref().unwrap()));
    assert!(
        again.inner.backup.pending().await.unwrap().is_none(),
        "decided: the pending key is wiped"
    );
    assert_eq!(
        again.inner.upload_backup().await.unwrap(),
        Uploaded::Unchanged,
        "the login itself re-sealed and uploaded under the new key"
    );

    // A fresh data directory restores with the new password: the backup on
    // the relay opens under its key and still holds carol.
    let fresh: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let restored = Client::login(config(&url, &fresh), "alice", NEW)
        .await
        .expect("the relay's backup opens under the new password");
    stop_worker(&restored);
    let carol = restored.inner.names.contact(&[0xc1; 16]).await.unwrap();
    assert_eq!(carol.map(|c| c.trust), Some(TrustLevel::Verified));
    assert_eq!(
        restored.inner.identity.public(),
        again.inner.identity.public()
    );
    restored.shutdown().await;
    again.shutdown().await;
}

/// A retry right after a lost answer (often while the link is still
/// down) is refused before anything is asked of the relay, with either
/// password as the current one: it must neither wipe the pending key of
/// the change that may have taken effect nor leave a header without the
/// slot of the password the relay holds. A login settles it; then a
/// change goes through again.
#[tokio::test]
async fn a_password_change_is_refused_while_an_earlier_one_is_pending() {
    const THIRD: &str = "yet-another-pw-of-test";
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let alice = Client::register(config(&url, &store), "alice", OLD)
        .await
        .expect("register");
    stop_worker(&alice);
    let me = *alice.inner.me().account.as_bytes();
    lock(&crate::lifecycle::password::LOSE_NEXT_ANSWER).push(me);
    let lost = alice.change_password(OLD, NEW).await;
    assert!(matches!(lost, Err(Error::Connection(_))), "{lost:?}");
    let pending = alice
        .inner
        .backup
        .pending()
        .await
        .unwrap()
        .expect("pending");
    let header = store.read_header().await.unwrap();

    for current in [OLD, NEW] {
        let retry = alice.change_password(current, THIRD).await;
        assert!(
            matches!(retry, Err(Error::PasswordChangeUnsettled)),
            "{retry:?}"
        );
        let kept = alice.inner.backup.pending().await.unwrap();
        assert!(
            kept.as_ref().is_some_and(|k| k.same_as(&pending)),
            "the earlier change's pending key is kept"
        );
        assert_eq!(store.read_header().await.unwrap(), header);
    }
    for (password, opens) in [(OLD, true), (NEW, true), (THIRD, false)] {
        let unlocked = crate::store::Vault::unlock(store.clone(), password.as_bytes()).await;
        assert_eq!(unlocked.is_ok(), opens, "{password}");
    }
    // A login that died between settling the header and deciding the key
    // leaves one slot and the pending key: the pending key alone refuses.
    let engine = &alice.inner;
    assert!(engine
        .vault
        .keep_only_slot_of(NEW.as_bytes())
        .await
        .unwrap());
    let retry = alice.change_password(NEW, THIRD).await;
    assert!(
        matches!(retry, Err(Error::PasswordChangeUnsettled)),
        "{retry:?}"
    );
    assert!(engine.backup.pending().await.unwrap().is_some());
    alice.shutdown().await;

    // The login decides (the relay holds NEW); a change is allowed again.
    let again = Client::login(config(&url, &store), "alice", NEW)
        .await
        .expect("the relay holds the new password");
    stop_worker(&again);
    again.change_password(NEW, THIRD).await.expect("settled");
    again.shutdown().await;
    let third = Client::login(config(&url, &store), "alice", THIRD)
        .await
        .expect("the relay holds the third password");
    third.shutdown().await;
}

/// The other outcomes of the comparison: a login whose key is the current
/// one (the change never took effect: `Kept`, no upload asked) and one
/// whose key is neither (the password changed elsewhere since: `Neither`,
/// an upload at once) both wipe the pending key; without a pending key the
/// current one alone decides (each row starts from the previous row's key).
#[tokio::test]
async fn a_login_under_another_key_than_the_pending_one_wipes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let alice = Client::register(config(&url, &store), "alice", OLD)
        .await
        .expect("register");
    stop_worker(&alice);
    let engine = alice.inner.clone();
    let current = engine.backup.state().await.unwrap().unwrap().export_key;
    let elsewhere = ExportKey::from_slice(&[0x5a; EXPORT_KEY_LEN]).unwrap();
    for (login_key, with_pending, expected) in [
        (current.clone(), true, KeyOutcome::Kept),
        (elsewhere.clone(), true, KeyOutcome::Neither),
        (elsewhere.clone(), false, KeyOutcome::Kept),
        (current.clone(), false, KeyOutcome::Neither),
    ] {
        if with_pending {
            let pending = ExportKey::from_slice(&[0xa5; EXPORT_KEY_LEN]).unwrap();
            let mut txn = Txn::new();
            engine.backup.put_pending(&mut txn, &pending).unwrap();
            engine.vault.commit(txn).await.unwrap();
        }
        let outcome = engine
            .keep_export_key(login_key.clone(), None)
            .await
            .unwrap();
        assert_eq!(outcome, expected);
        assert!(engine.backup.pending().await.unwrap().is_none());
        let state = engine.backup.state().await.unwrap().unwrap();
        assert!(state.export_key.same_as(&login_key));
        assert_eq!(state.acked_digest, None);
    }
    alice.shutdown().await;
}

/// The `Backup` record's layout is unchanged by the pending key (a record
/// kind of its own): the bytes an earlier version wrote still decode.
#[test]
fn a_backup_record_of_the_earlier_layout_still_decodes() {
    // export_key (40 then 64 bytes), acked_seq Some(7), acked_digest None.
    let mut bytes = vec![0x40];
    bytes.extend_from_slice(&[0x11; EXPORT_KEY_LEN]);
    bytes.extend_from_slice(&[0x01, 0x07, 0x00]);
    let state: BackupState = postcard::from_bytes(&bytes).expect("decodes");
    assert!(state
        .export_key
        .same_as(&ExportKey::from_slice(&[0x11; EXPORT_KEY_LEN]).unwrap()));
    assert_eq!(state.acked_seq, Some(7));
    assert_eq!(state.acked_digest, None);
    assert_eq!(postcard::to_stdvec(&state).unwrap(), bytes);
}
