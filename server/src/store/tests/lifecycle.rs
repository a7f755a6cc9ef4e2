//! Opening, migrating and the notification payload, independent of a test database.

use super::*;

// ----- backend-independent --------------------------------------------------------

#[tokio::test]
async fn store_open_rejects_unknown_url_schemes() {
    let dir = tempfile::tempdir().unwrap();
    let result = crate::store::open(Some("mysql://localhost/umbra"), dir.path()).await;
    assert!(matches!(result, Err(StoreError::UnsupportedUrl)));
}

#[tokio::test]
async fn store_migrate_only_then_open_in_memory_and_file() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("fresh").join("data");
    crate::store::migrate_only(None, &dir).await.unwrap();
    assert!(dir.join(crate::store::DEFAULT_SQLITE_FILE).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "data dir private to the relay user: {mode:o}"
        );
    }
    let store = crate::store::open(None, &dir).await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    let memory = crate::store::open(Some("sqlite::memory:"), &dir)
        .await
        .unwrap();
    let alice = Address::primary(new_account(&memory, "alice").await);
    memory.enqueue_batch(&[message(alice, "x")]).await.unwrap();
    assert_eq!(memory.queue_depth(alice).await.unwrap(), 1);
}

#[test]
fn store_notify_payload_round_trips_and_rejects_garbage() {
    use crate::store::rows::{notify_payload, parse_notify_payload};
    let to = Address {
        account: AccountId::from_bytes([0xab; 16]),
        device: DeviceId(7),
    };
    let payload = notify_payload(to, 42);
    assert_eq!(payload, format!("{}:7:42", "ab".repeat(16)));
    assert_eq!(parse_notify_payload(&payload), Some((to, 42)));
    for bad in [
        "",
        "zz:1:1",
        &format!("{}:1", "ab".repeat(16)),
        &format!("{payload}:9"),
    ] {
        assert_eq!(parse_notify_payload(bad), None, "{bad:?}");
    }
}
