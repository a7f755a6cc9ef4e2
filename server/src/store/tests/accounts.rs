//! Accounts, tokens, account deletion and the server setup, on both backends.

use super::*;

// ----- accounts -------------------------------------------------------------

pub(super) async fn accounts_are_unique_case_folded_and_renamable(db: &TestDb) {
    // The quarantine of released names is off here (names.rs tests it).
    let store = db
        .open_with(StoreLimits {
            name_quarantine_secs: 0,
            ..StoreLimits::default()
        })
        .await;
    let alice = new_account(&store, "alice").await;

    let found = store
        .account_by_username(&name("alice"))
        .await
        .unwrap()
        .expect("alice exists");
    assert_eq!(found.account, alice);
    assert_eq!(found.password_file, password_file("alice"));
    // Folding happens before the store, so "ALICE" is the same name.
    let upper = store
        .create_account(account_id(1), &name("ALICE"), &password_file("x"), NOW)
        .await;
    assert!(matches!(upper, Err(StoreError::UsernameTaken)), "{upper:?}");
    let same_id = store
        .create_account(alice, &name("someoneelse"), &password_file("x"), NOW)
        .await;
    assert!(
        matches!(same_id, Err(StoreError::AccountExists)),
        "{same_id:?}"
    );

    let bob = new_account(&store, "bob").await;
    store
        .rename_account(alice, &name("Alicia"), NOW)
        .await
        .expect("rename");
    assert!(store
        .account_by_username(&name("alice"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .account_by_username(&name("alicia"))
            .await
            .unwrap()
            .map(|r| r.account),
        Some(alice)
    );
    assert_eq!(
        store.username_of(alice).await.unwrap(),
        Some(name("alicia"))
    );
    // With the quarantine off, the old name is free again at once.
    let reuse = store
        .create_account(account_id(2), &name("alice"), &password_file("new"), NOW)
        .await;
    assert!(reuse.is_ok(), "{reuse:?}");

    let taken = store.rename_account(bob, &name("ALICIA"), NOW).await;
    assert!(matches!(taken, Err(StoreError::UsernameTaken)), "{taken:?}");
    assert_eq!(store.username_of(bob).await.unwrap(), Some(name("bob")));
    // Renaming to one's own name is a no-op, not a conflict.
    store
        .rename_account(bob, &name("bob"), NOW)
        .await
        .expect("self rename");
    let unknown = store
        .rename_account(account_id(3), &name("carol"), NOW)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownAccount)),
        "{unknown:?}"
    );
}

// ----- tokens ---------------------------------------------------------------

pub(super) async fn tokens_expire_and_revoke(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    let (t1, t2, t3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    store.insert_token(&t1, alice, 100).await.unwrap();
    store.insert_token(&t2, alice, 200).await.unwrap();
    store.insert_token(&t3, bob, 200).await.unwrap();

    assert_eq!(store.lookup_token(&t1, 99).await.unwrap(), Some(alice));
    assert_eq!(
        store.lookup_token(&t1, 100).await.unwrap(),
        None,
        "expiry is exclusive"
    );
    assert_eq!(store.lookup_token(&[9u8; 32], 0).await.unwrap(), None);
    // The expiry is readable, for closing a live connection when it passes.
    assert_eq!(
        store.token_info(&t2).await.unwrap(),
        Some(TokenInfo {
            owner: alice,
            expires_at: 200
        })
    );
    assert_eq!(store.token_info(&[9u8; 32]).await.unwrap(), None);

    assert!(store.delete_token(&t2).await.unwrap());
    assert!(!store.delete_token(&t2).await.unwrap(), "already revoked");
    assert_eq!(store.lookup_token(&t2, 0).await.unwrap(), None);

    store.insert_token(&t2, alice, 300).await.unwrap();
    assert_eq!(
        store
            .delete_tokens_for_account(alice.account)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.lookup_token(&t1, 0).await.unwrap(), None);
    assert_eq!(
        store.lookup_token(&t3, 0).await.unwrap(),
        Some(bob),
        "others unaffected"
    );

    assert_eq!(store.purge_expired_tokens(199).await.unwrap(), 0);
    assert_eq!(store.purge_expired_tokens(200).await.unwrap(), 1);
    assert_eq!(store.lookup_token(&t3, 0).await.unwrap(), None);

    let orphan = store
        .insert_token(&t1, Address::primary(account_id(4)), 100)
        .await;
    assert!(
        matches!(orphan, Err(StoreError::UnknownAccount)),
        "{orphan:?}"
    );
}

pub(super) async fn expired_tokens_are_told_apart_until_purged(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let (t1, t2) = ([1u8; 32], [2u8; 32]);
    store.insert_token(&t1, alice, 100).await.unwrap();
    store.insert_token(&t2, alice, 100).await.unwrap();

    assert_eq!(
        store.token_status(&t1, 99).await.unwrap(),
        TokenStatus::Valid(alice)
    );
    assert_eq!(
        store.token_status(&t1, 100).await.unwrap(),
        TokenStatus::Expired(alice),
        "expiry is exclusive, and an expired token is still recognised"
    );
    assert_eq!(store.lookup_token(&t1, 100).await.unwrap(), None);
    assert_eq!(
        store.token_status(&[9u8; 32], 0).await.unwrap(),
        TokenStatus::Unknown,
        "never issued"
    );
    assert!(store.delete_token(&t2).await.unwrap());
    assert_eq!(
        store.token_status(&t2, 50).await.unwrap(),
        TokenStatus::Unknown,
        "a revoked token is unknown, expired or not"
    );

    // The relay purges with a cutoff in the past: a token that expired after
    // the cutoff is kept (still Expired), an older one goes (Unknown).
    assert_eq!(store.purge_expired_tokens(99).await.unwrap(), 0);
    assert_eq!(
        store.token_status(&t1, 1_000).await.unwrap(),
        TokenStatus::Expired(alice)
    );
    assert_eq!(store.purge_expired_tokens(100).await.unwrap(), 1);
    assert_eq!(
        store.token_status(&t1, 1_000).await.unwrap(),
        TokenStatus::Unknown
    );
}

// ----- account deletion --------------------------------------------------------

/// Every table the schema has, by name, and how many rows refer to the
/// account in each; only the non-zero entries.
async fn referring_tables(store: &SharedStore, account: AccountId) -> BTreeMap<String, u64> {
    store
        .account_rows_by_table(account)
        .await
        .expect("audit the schema")
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
}

pub(super) async fn delete_account_leaves_no_rows(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let bob = new_account(&store, "bob").await;
    for (n, account) in [alice, bob].into_iter().enumerate() {
        let device = Address::primary(account);
        store
            .put_keys(
                device,
                &identity(20 + n as u8),
                &signed(1),
                Some(&last_resort(999_999)),
            )
            .await
            .expect("publish keys");
        let keys: Vec<PreKeyWire> = (1..=3).map(one_time).collect();
        store.add_one_time_prekeys(device, &keys).await.unwrap();
        let kem = |id| super::kem_keys::kem(id, 0);
        store
            .put_kem_prekeys(
                device,
                &identity(20 + n as u8),
                Some(&kem(9)),
                &[kem(1), kem(2)],
            )
            .await
            .unwrap();
        store
            .insert_token(&[n as u8 + 1; 32], device, 500)
            .await
            .unwrap();
        store
            .enqueue_batch(&[message(device, "1"), message(device, "2")])
            .await
            .unwrap();
        let mut blob = [0u8; 32];
        blob[..16].copy_from_slice(account.as_bytes());
        store.create_blob(BlobId(blob), account, 500).await.unwrap();
        store
            .append_blob_chunk(BlobId(blob), 0, b"a")
            .await
            .unwrap();
        store
            .append_blob_chunk(BlobId(blob), 1, b"b")
            .await
            .unwrap();
        store
            .put_backup(account, 1, &super::backup::sealed(1, 0xbb), 500)
            .await
            .unwrap();
        store
            .put_device_list(&super::devices::device_list(account, 1, &[1]), 500)
            .await
            .unwrap();
        let ticket = [n as u8 + 1; 16];
        let limits = crate::store::LinkLimits {
            max_tickets_per_account: 4,
            max_posts_per_side: 4,
        };
        store
            .create_link_ticket(device, &ticket, 500, 800, limits)
            .await
            .unwrap();
        let post = crate::store::LinkParty::Creator(device);
        store
            .post_link_message(&ticket, post, b"post", 500, limits)
            .await
            .unwrap();
    }

    // Positive control: the schema-wide scan sees alice in every table that
    // holds account data, so it could see a leftover in any of them.
    let all_tables = store.account_rows_by_table(alice).await.unwrap();
    let before = referring_tables(&store, alice).await;
    let expected: BTreeMap<String, u64> = [
        ("accounts", 1),
        ("tokens", 1),
        ("identity_keys", 1),
        ("signed_prekeys", 1),
        ("one_time_prekeys", 3),
        ("last_resort_prekeys", 1),
        ("kem_one_time_prekeys", 2),
        ("kem_last_resort_prekeys", 1),
        ("one_time_prekey_marks", 2),
        ("queue_counters", 1),
        ("messages", 2),
        ("blobs", 1),
        ("blob_chunks", 2),
        ("account_backups", 1),
        ("devices", 1),
        ("identity_accounts", 1),
        ("device_lists", 1),
        ("link_tickets", 1),
        ("link_messages", 1),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    assert_eq!(before, expected, "rows for alice before deletion");
    assert!(
        all_tables.contains_key("server_secrets"),
        "the scan covers tables without account data too: {all_tables:?}"
    );
    let bob_before = referring_tables(&store, bob).await;
    assert_eq!(bob_before, expected, "rows for bob before deletion");

    assert!(store.delete_account(alice, NOW).await.unwrap());
    let after = store.account_rows_by_table(alice).await.unwrap();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        all_tables.keys().collect::<Vec<_>>(),
        "the same tables are scanned after deletion"
    );
    let left: BTreeMap<_, _> = after.into_iter().filter(|(_, n)| *n > 0).collect();
    assert!(left.is_empty(), "rows left for alice: {left:?}");
    assert_eq!(store.rows_for_account(alice).await.unwrap(), 0);
    assert_eq!(
        referring_tables(&store, bob).await,
        bob_before,
        "bob untouched"
    );
    assert!(store
        .account_by_username(&name("alice"))
        .await
        .unwrap()
        .is_none());
    assert!(!store.delete_account(alice, NOW).await.unwrap());
    let to_deleted = store
        .enqueue_batch(&[message(Address::primary(alice), "late")])
        .await
        .unwrap();
    assert_eq!(to_deleted, vec![Err(EnqueueRejection::UnknownRecipient)]);
    assert_eq!(store.total_queued().await.unwrap(), 2);
}

// ----- restarts ------------------------------------------------------------------

/// The database holds no OPAQUE setup (it is in the key file) and binds the
/// key file's fingerprint once, across reopens (issue 9 item 10).
pub(super) async fn the_key_fingerprint_is_bound_once_and_no_setup_is_stored(db: &TestDb) {
    let store = db.open().await;
    assert!(store.legacy_server_setup().await.unwrap().is_none());
    let first = store.bind_server_key_fingerprint(&[1; 32]).await.unwrap();
    assert_eq!(first, [1; 32]);
    let second = store.bind_server_key_fingerprint(&[2; 32]).await.unwrap();
    assert_eq!(second, [1; 32], "the first binding stays");
    store.delete_legacy_server_setup().await.unwrap();
    drop(store);
    let reopened = db.open().await;
    assert_eq!(
        reopened
            .bind_server_key_fingerprint(&[3; 32])
            .await
            .unwrap(),
        [1; 32]
    );
    assert!(reopened.legacy_server_setup().await.unwrap().is_none());
}

pub(super) async fn data_survives_reopen(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    store.insert_token(&[5u8; 32], alice, 900).await.unwrap();
    store
        .enqueue_batch(&[message(alice, "before"), message(alice, "restart")])
        .await
        .unwrap();
    store.ack(alice, &[1]).await.unwrap();
    drop(store);

    let store = db.open().await;
    assert_eq!(
        store.lookup_token(&[5u8; 32], 0).await.unwrap(),
        Some(alice)
    );
    assert_eq!(bodies(&store, alice).await, vec![(2, "restart".into())]);
    let next = store
        .enqueue_batch(&[message(alice, "after")])
        .await
        .unwrap();
    assert_eq!(next, vec![Ok(3)], "counter survived the restart");
}

/// Both backends' audits enumerate the same live schema: every table, by the
/// same names (each compares the byte columns of each).
pub(super) async fn the_audit_sees_the_same_schema_on_both_backends(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let tables: Vec<String> = store
        .account_rows_by_table(alice)
        .await
        .unwrap()
        .into_keys()
        .filter(|t| !t.starts_with("_sqlx"))
        .collect();
    assert_eq!(
        tables,
        [
            "account_backups",
            "accounts",
            "blob_chunks",
            "blobs",
            "device_lists",
            "devices",
            "identity_accounts",
            "identity_keys",
            "kem_last_resort_prekeys",
            "kem_one_time_prekeys",
            "kt_epochs",
            "kt_pending",
            "kt_publisher",
            "kt_versions",
            "last_resort_prekeys",
            "link_messages",
            "link_tickets",
            "messages",
            "one_time_prekey_marks",
            "one_time_prekeys",
            "queue_counters",
            "released_names",
            "server_secrets",
            "signed_prekeys",
            "tokens",
        ]
    );
}

/// `change_password` (PROTOCOL.md 11.3): refused, changing nothing, when the
/// presented token has expired (kept until purged, it proves no more than a
/// revoked one) or the record is no longer the one proven; else the record
/// is replaced, every token of the account (the presented one included) is
/// deleted and only the issued one is left.
pub(super) async fn a_password_change_needs_an_unexpired_token_and_replaces_every_token(
    db: &TestDb,
) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let (old, new) = (password_file("alice"), password_file("alice-new"));
    let (presented, other, issued) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    store.insert_token(&presented, alice, 100).await.unwrap();
    store.insert_token(&other, alice, 500).await.unwrap();
    let change = |now, from: &PasswordFile| {
        let (store, from, new) = (store.clone(), from.clone(), new.clone());
        async move {
            store
                .change_password(alice.account, &from, &new, &presented, now, &issued, 900)
                .await
                .unwrap()
        }
    };
    assert_eq!(change(100, &old).await, None, "the token expired at 100");
    assert_eq!(change(99, &new).await, None, "not the stored record");
    assert_eq!(
        store.password_file(alice.account).await.unwrap(),
        Some(old.clone())
    );
    assert_eq!(store.lookup_token(&other, 99).await.unwrap(), Some(alice));

    assert_eq!(change(99, &old).await, Some(2));
    assert_eq!(
        store.password_file(alice.account).await.unwrap(),
        Some(new.clone())
    );
    assert_eq!(store.lookup_token(&presented, 99).await.unwrap(), None);
    assert_eq!(store.lookup_token(&other, 99).await.unwrap(), None);
    assert_eq!(store.lookup_token(&issued, 99).await.unwrap(), Some(alice));
    assert_eq!(
        store.token_info(&issued).await.unwrap().unwrap().expires_at,
        900
    );
}
