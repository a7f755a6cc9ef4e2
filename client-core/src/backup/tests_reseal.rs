//! Re-sealing after a password change when the relay cannot be reached
//! (PROTOCOL.md 12.15, "Re-sealing under a new export key"): the new export
//! key is the store's before any network I/O, so a lost `PUT` leaves a
//! backup state the upkeep re-seals under the new key, never one that keeps
//! sealing under the old password's key (which the relay's record no longer
//! gives a restore).
//!
//! Must never: pass because the upload happened to work (the relay is shut
//! down before the re-seal).

use rand::rngs::OsRng;
use umbra_protocol::backup::{self as format, EXPORT_KEY_LEN};

use super::ExportKey;
use crate::engine::lock;
use crate::groups::tests::{register, relay};

#[tokio::test]
async fn a_reseal_that_cannot_reach_the_relay_still_commits_the_new_export_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let engine = alice.inner.clone();
    // Every upload below is this test's.
    if let Some(worker) = lock(&engine.backup.worker).take() {
        worker.abort();
    }
    relay.shutdown();
    relay.wait().await;

    let new_key = ExportKey::from_slice(&[0x42; EXPORT_KEY_LEN]).expect("key");
    assert!(
        engine.reseal_backup(new_key.clone()).await.is_err(),
        "the relay is gone: the PUT cannot succeed"
    );
    let state = engine
        .backup
        .state()
        .await
        .expect("state")
        .expect("a state");
    assert_eq!(
        state.acked_digest, None,
        "nothing under the new key was acknowledged: the upkeep must upload"
    );
    // The stored key is the new one: what it seals, the new key opens.
    let me = engine.me().account;
    let contents = engine.backup_contents().await.expect("contents");
    let sealed =
        format::seal(&contents, &state.export_key.backup_key(&me), 1, &mut OsRng).expect("seal");
    format::open(&new_key.backup_key(&me), &sealed, None)
        .expect("the store's export key must be the new password's");
}
