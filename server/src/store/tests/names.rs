//! Reserved usernames and the quarantine of released ones, on both backends.

use super::*;

const DAY: u64 = 24 * 60 * 60;

pub(super) async fn reserved_names_are_refused_at_registration_and_rename(db: &TestDb) {
    let store = db.open().await;
    for reserved in [
        "admin",
        "ROOT",
        "support",
        "umbra",
        "relay",
        "ad_min",
        "post.master",
    ] {
        let created = store
            .create_account(account_id(9), &name(reserved), &password_file("x"), NOW)
            .await;
        assert!(
            matches!(created, Err(StoreError::UsernameReserved)),
            "{reserved}: {created:?}"
        );
    }
    let alice = new_account(&store, "alice").await;
    let renamed = store.rename_account(alice, &name("Security"), NOW).await;
    assert!(
        matches!(renamed, Err(StoreError::UsernameReserved)),
        "{renamed:?}"
    );
    assert_eq!(store.username_of(alice).await.unwrap(), Some(name("alice")));
    // Names that merely contain a reserved word are ordinary.
    new_account(&store, "administrative_carol").await;
}

pub(super) async fn released_names_are_quarantined_then_free(db: &TestDb) {
    let store = db
        .open_with(StoreLimits {
            name_quarantine_secs: 30 * DAY,
            ..StoreLimits::default()
        })
        .await;
    let alice = new_account(&store, "alice").await;
    let bob = new_account(&store, "bob").await;
    store
        .rename_account(alice, &name("alicia"), NOW)
        .await
        .unwrap();
    // Nobody may take "alice" during the quarantine: not by registration,
    // not by rename, not even its former holder.
    let later = NOW + 30 * DAY - 1;
    let register = store
        .create_account(account_id(7), &name("alice"), &password_file("m"), later)
        .await;
    assert!(
        matches!(register, Err(StoreError::UsernameTaken)),
        "{register:?}"
    );
    let steal = store.rename_account(bob, &name("alice"), later).await;
    assert!(matches!(steal, Err(StoreError::UsernameTaken)), "{steal:?}");
    let back = store.rename_account(alice, &name("alice"), later).await;
    assert!(matches!(back, Err(StoreError::UsernameTaken)), "{back:?}");
    // The quarantine compares names as reserved names are compared, without
    // `_` and `.`: look-alikes of "alice" are held too, and registration
    // can ask about it before any OPAQUE work.
    for lookalike in ["alice_", "a.lice", "Al_i.ce"] {
        let register = store
            .create_account(account_id(7), &name(lookalike), &password_file("m"), later)
            .await;
        assert!(
            matches!(register, Err(StoreError::UsernameTaken)),
            "{lookalike}: {register:?}"
        );
        let steal = store.rename_account(bob, &name(lookalike), later).await;
        assert!(
            matches!(steal, Err(StoreError::UsernameTaken)),
            "{lookalike}: {steal:?}"
        );
        assert!(store
            .name_is_quarantined(&name(lookalike), later)
            .await
            .unwrap());
    }
    assert!(!store
        .name_is_quarantined(&name("alice"), NOW + 30 * DAY)
        .await
        .unwrap());
    assert!(!store
        .name_is_quarantined(&name("carol"), later)
        .await
        .unwrap());
    // A deletion releases the name too.
    assert!(store.delete_account(bob, NOW).await.unwrap());
    let reuse_bob = store
        .create_account(account_id(8), &name("bob"), &password_file("m"), later)
        .await;
    assert!(
        matches!(reuse_bob, Err(StoreError::UsernameTaken)),
        "{reuse_bob:?}"
    );
    // Purging early forgets nothing; at the end of the quarantine the
    // names are free, and purging then forgets them.
    assert_eq!(store.purge_released_names(later).await.unwrap(), 0);
    let over = NOW + 30 * DAY;
    store
        .create_account(account_id(7), &name("alice"), &password_file("m"), over)
        .await
        .expect("quarantine over");
    assert_eq!(store.purge_released_names(over).await.unwrap(), 2);
    store
        .create_account(account_id(8), &name("bob"), &password_file("m"), over)
        .await
        .expect("released record purged");
}

pub(super) async fn no_quarantine_keeps_no_name_history(db: &TestDb) {
    let store = db
        .open_with(StoreLimits {
            name_quarantine_secs: 0,
            ..StoreLimits::default()
        })
        .await;
    let alice = new_account(&store, "alice").await;
    store
        .rename_account(alice, &name("alicia"), NOW)
        .await
        .unwrap();
    assert!(store.delete_account(alice, NOW).await.unwrap());
    new_account(&store, "alice").await;
    new_account(&store, "alicia").await;
    assert_eq!(store.purge_released_names(NOW).await.unwrap(), 0);
}

/// On PostgreSQL a registration whose INSERT waits on a concurrent rename
/// that frees the name must still see the release that rename commits
/// (review R #11). The rename is held open on a raw connection, so the
/// interleaving is forced, not hoped for. SQLite has one writer at a time,
/// so the interleaving cannot happen there and the test has nothing to do.
pub(super) async fn a_release_committed_while_a_registration_waits_still_quarantines(db: &TestDb) {
    use sqlx::{Connection, Executor};
    let Some(options) = db.postgres_options() else {
        return;
    };
    let store = db
        .open_with(StoreLimits {
            name_quarantine_secs: 30 * DAY,
            ..StoreLimits::default()
        })
        .await;
    new_account(&store, "alice").await;
    // Another node's rename of alice, committed only later.
    let mut other = sqlx::PgConnection::connect_with(&options).await.unwrap();
    other.execute("BEGIN").await.unwrap();
    other
        .execute("UPDATE accounts SET username = 'alicia' WHERE username = 'alice'")
        .await
        .unwrap();
    other
        .execute(
            format!("INSERT INTO released_names (username, released_at) VALUES ('alice', {NOW})")
                .as_str(),
        )
        .await
        .unwrap();
    let register = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .create_account(account_id(7), &name("alice"), &password_file("m"), NOW + 1)
                .await
        }
    });
    // Wait (on a condition, not a clock) until the registration blocks on
    // the rename's row lock, then let the rename commit.
    let mut watch = sqlx::PgConnection::connect_with(&options).await.unwrap();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(!register.is_finished(), "the registration did not wait");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    other.execute("COMMIT").await.unwrap();
    let registered = register.await.unwrap();
    assert!(
        matches!(registered, Err(StoreError::UsernameTaken)),
        "a name released while the registration waited was handed out: {registered:?}"
    );
}
