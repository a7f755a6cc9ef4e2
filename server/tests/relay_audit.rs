//! `umbra-relay audit` as an operator or auditor runs it (the real binary,
//! on the database a real relay wrote, docs/PROTOCOL.md 16.9 item 7): exit 0
//! and a summary on an honest history; exit 1 naming the epoch after a
//! version row or a head was rewritten in the database.
//!
//! Must never: check the history through the relay's own state, or wait by
//! sleeping (it waits for the relay's epoch notifications, with a deadline).

mod common;
#[path = "common/devices.rs"]
#[allow(unused_macros)] // the device suites' macro; this suite runs on SQLite only
mod devices;

use std::path::Path;
use std::process::Output;

use common::{relay_with, signed_in, TestRelay, WAIT};
use devices::publish_identity;
use sqlx::{ConnectOptions, Connection};
use umbra_relay::config::Settings;
use umbra_wire::kt::{KtLabel, LeafValue, LookupProof};
use umbra_wire::AccountId;

fn audit(data_dir: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_umbra-relay"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("audit")
        .output()
        .expect("umbra-relay runs")
}

/// Waits until `relay` has published an epoch at least `epoch`.
async fn published(relay: &TestRelay, epoch: u64) {
    let mut epochs = relay.relay.state.kt.subscribe();
    tokio::time::timeout(WAIT, epochs.wait_for(|e| e.is_some_and(|e| e >= epoch)))
        .await
        .expect("an epoch in time")
        .expect("the relay runs");
}

/// Waits until the relay's directory holds `identity` for `account`.
async fn identity_published(relay: &TestRelay, account: AccountId, identity: &[u8]) {
    let want = LeafValue::account(Some(identity), None);
    let mut epochs = relay.relay.state.kt.subscribe();
    let proven = async {
        loop {
            let (_, proof) = relay
                .relay
                .state
                .kt
                .lookup(&KtLabel::Account(account))
                .await
                .unwrap();
            if matches!(proof, LookupProof::Present { latest, .. } if latest.value == want) {
                return;
            }
            epochs.changed().await.expect("the relay runs");
        }
    };
    tokio::time::timeout(WAIT, proven)
        .await
        .expect("published in time");
}

async fn rewrite(data_dir: &Path, sql: &str) {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data_dir.join("umbra.db"))
        .connect()
        .await
        .expect("open the relay's database");
    sqlx::query(sql).execute(&mut conn).await.expect("rewrite");
    conn.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_passes_an_honest_history_and_names_a_rewritten_one() {
    let relay = relay_with(Settings {
        kt_epoch_interval_ms: Some(20),
        ..Settings::default()
    })
    .await;
    let dir = relay._dir.path().to_path_buf();
    for user in ["alice", "bob"] {
        let (mut c, account, _) = signed_in(&relay, user).await;
        let identity = publish_identity(&mut c).await;
        identity_published(&relay, account, &identity.public().to_bytes()).await;
    }

    let honest = audit(&dir);
    let stdout = String::from_utf8_lossy(&honest.stdout);
    assert!(
        honest.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&honest.stderr)
    );
    assert!(stdout.contains("umbra-relay audit: ok"), "{stdout}");
    let keys = relay.relay.state.kt.keys().public();
    assert!(
        stdout.contains(&hex::encode(keys.0.to_bytes())),
        "names the directory key: {stdout}"
    );

    // A version row rewritten: the newest identity's digest changed.
    let zeroed = format!("X'01{}'", "00".repeat(64));
    rewrite(
        &dir,
        &format!(
            "UPDATE kt_versions SET value = {zeroed} \
             WHERE epoch = (SELECT MAX(epoch) FROM kt_versions) AND length(value) = 65"
        ),
    )
    .await;
    let tampered = audit(&dir);
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert_eq!(tampered.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("NOT honest") && stderr.contains("map root"),
        "{stderr}"
    );

    // And a head rewritten (epoch 0's replaced by epoch 1's) on a history
    // whose versions are put back.
    drop(relay);
    let relay = relay_with(Settings {
        kt_epoch_interval_ms: Some(20),
        ..Settings::default()
    })
    .await;
    let dir = relay._dir.path().to_path_buf();
    let (mut c, _, _) = signed_in(&relay, "carol").await;
    publish_identity(&mut c).await;
    published(&relay, 1).await;
    assert!(audit(&dir).status.success());
    rewrite(
        &dir,
        "UPDATE kt_epochs SET head = (SELECT head FROM kt_epochs WHERE epoch = 1) WHERE epoch = 0",
    )
    .await;
    let tampered = audit(&dir);
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert_eq!(tampered.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("epoch 0"), "{stderr}");
}
