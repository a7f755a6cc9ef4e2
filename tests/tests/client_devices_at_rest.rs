//! Linking leaves nothing readable at the relay (docs/PROTOCOL.md §12.17,
//! §13): after alice, who has a contact and a group, links a second
//! device (the link snapshot goes up as an encrypted blob, the account
//! backup is sealed and uploaded), no file of the relay's data directory
//! (its SQLite file, `-wal` included while it runs, and again after the
//! relay stopped and checkpointed) holds the canary group name; and the
//! canary contact name, which the relay legitimately stores as that
//! contact's username, is held by no table and column but the relay's
//! account table (not in a blob, a backup, a link post or a queued
//! envelope in readable form).
//!
//! Each search is first shown to hit what is really there: the snapshot
//! blob and the backup are in the store, the contact's name is found in
//! the relay's files and in `accounts.username`, and the linked device
//! shows the contact and the group (so the snapshot really carried them).
//!
//! Must never: narrow the search to files expected to be clean, or treat
//! a file it cannot read as clean (the scan fails).

mod client_support;
mod devices_support;
mod group_support;
mod relay_support;

use client_support::{start_relay, User};
use devices_support::{account_of, link, relay_db};
use group_support::GroupCli;
use relay_support::StoreView;
use umbra_e2e::any_file_contains;

/// A contact's username that appears nowhere else.
const CONTACT: &str = "bobcanary3e8f1a";
/// A group name that appears nowhere else.
const GROUP: &str = "grpcanary7d20b4";

/// `table.column` entries of the relay's store holding `needle`.
async fn store_hits(store: &StoreView, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for table in store.tables().await.expect("tables") {
        for column in store.columns(&table).await.expect("columns") {
            let hits = if column.is_bytes() {
                store.rows_with_bytes(&column, needle.as_bytes()).await
            } else if column.is_text() {
                store.rows_with_text_containing(&column, needle).await
            } else {
                Ok(0)
            }
            .expect("scan");
            if hits > 0 {
                found.push(format!("{}.{}", column.table, column.name));
            }
        }
    }
    found
}

#[test]
fn a_linked_accounts_contact_and_group_names_are_not_readable_at_the_relay() {
    let mut relay = start_relay();
    let alice = User::register(&relay, "alicerest", "alice's password, long enough");
    let bob = User::register(&relay, CONTACT, "bob's password, long enough");
    alice.send(CONTACT, "hello");
    bob.receive();
    alice.group_create(GROUP, &[CONTACT]);
    let laptop = link(&relay, &alice);

    // The snapshot carried the contact and the group to the laptop.
    assert!(
        laptop.contacts().iter().any(|(name, _)| name == CONTACT),
        "{:?}",
        laptop.contacts()
    );
    assert!(
        laptop.groups().iter().any(|g| g.name == GROUP),
        "the laptop does not show the group"
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let db = relay_db(&relay).await;
        let account = account_of(&db, "alicerest").await;
        // Positive controls: the encrypted snapshot and backup are there.
        let blobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
            .fetch_one(&db)
            .await
            .expect("blobs");
        assert!(blobs >= 1, "no snapshot blob was uploaded");
        let backups: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM account_backups WHERE account_id = ?1")
                .bind(&account)
                .fetch_one(&db)
                .await
                .expect("backups");
        assert_eq!(backups, 1, "alice's backup was not uploaded");
        let store = StoreView::Sqlite(db);
        assert_eq!(store_hits(&store, CONTACT).await, ["accounts.username"]);
        assert!(store_hits(&store, GROUP).await.is_empty());
    });

    let dir = relay.data_dir().to_path_buf();
    assert!(
        any_file_contains(&dir, CONTACT.as_bytes()).is_some(),
        "the scan does not see the relay's store in {}",
        dir.display()
    );
    let wal = dir.join("umbra.db-wal");
    assert!(
        wal.exists(),
        "the relay runs without a WAL: {}",
        wal.display()
    );
    if let Some(file) = any_file_contains(&dir, GROUP.as_bytes()) {
        panic!(
            "the group name is readable at the relay in {}",
            file.display()
        );
    }
    relay.stop();
    if let Some(file) = any_file_contains(&dir, GROUP.as_bytes()) {
        panic!(
            "the group name is readable at the relay after it stopped, in {}",
            file.display()
        );
    }
}
