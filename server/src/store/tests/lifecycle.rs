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

#[test]
fn store_one_notify_names_every_recipient_of_a_commit_once() {
    use crate::store::rows::{notify_payloads, parse_notify_list, MAX_NOTIFY_PAYLOAD};
    let to = |tag: u8| Address {
        account: AccountId::from_bytes([tag; 16]),
        device: DeviceId(1),
    };
    // Three messages to one recipient and one to another: one payload, one
    // entry each, naming the highest seq.
    let payloads = notify_payloads([(to(1), 5), (to(2), 9), (to(1), 7), (to(1), 6)]);
    assert_eq!(payloads.len(), 1);
    assert_eq!(
        parse_notify_list(&payloads[0]),
        Some(vec![(to(1), 7), (to(2), 9)])
    );
    // The older one-message form is a list of one.
    assert_eq!(
        parse_notify_list(&crate::store::rows::notify_payload(to(3), 4)),
        Some(vec![(to(3), 4)])
    );
    // Many recipients: packed into payloads PostgreSQL accepts, none lost.
    let many: Vec<(Address, u64)> = (0..=255u8).map(|t| (to(t), u64::MAX)).collect();
    let payloads = notify_payloads(many.clone());
    assert!(payloads.len() > 1);
    let mut heard = Vec::new();
    for payload in &payloads {
        assert!(payload.len() <= MAX_NOTIFY_PAYLOAD, "{}", payload.len());
        heard.extend(parse_notify_list(payload).expect("well-formed"));
    }
    assert_eq!(heard, many);
    // One bad entry drops the whole payload (no partial wake-ups from a
    // forged notice), and an empty one is not a list.
    let forged = format!("{},zz:1:1", payloads[0]);
    assert_eq!(parse_notify_list(&forged), None);
    assert_eq!(parse_notify_list(""), None);
    assert_eq!(notify_payloads([]), Vec::<String>::new());
}
