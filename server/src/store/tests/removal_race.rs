//! A Send racing a device removal on PostgreSQL (docs/PROTOCOL.md 15.5):
//! nothing stays queued for the removed device whichever commits first.
//! A batch reaching the device while the removal is open waits for it and
//! then refuses the device (`UnknownRecipient`); a removal reaching the
//! device while a batch that read it as current is open waits for the
//! batch and then deletes what it stored. (SQLite's one writer orders
//! them whole; `device_removal.rs` checks the batch's own read there.)
//!
//! Must never: depend on timing for what it asserts. Each transaction is
//! held open by a lock the test takes from a connection of its own, and
//! the test polls `pg_stat_activity` for the waits it expects.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use umbra_wire::{Address, DeviceId};

use super::super::batch::SubmittedUnder;
use super::super::group_commit::NoHandOff;
use super::super::test_support::TestDb;
use super::super::{EnqueueRejection, GroupCommitter};
use super::{message, new_account, NOW};
use crate::auth::tokens::unix_now;

/// How many of this database's sessions wait for a lock.
async fn lock_waiters(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Polls until `n` sessions wait for a lock; panics with `flaw` if `done`
/// finished first (the flaw: it did not wait).
async fn until_waiting<T>(
    watcher: &mut PgConnection,
    n: i64,
    done: &tokio::task::JoinHandle<T>,
    flaw: &str,
) {
    loop {
        assert!(!done.is_finished(), "{flaw}");
        if lock_waiters(watcher).await >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// The removal commits first: a batch that finds the device's row locked
/// by it waits, then sees the device removed and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_batch_behind_a_removal_stores_nothing() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::postgres_a_batch_behind_a_removal_stores_nothing"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let bob = new_account(&store, "bob").await;
    let first = Address::primary(bob);
    let second = Address {
        account: bob,
        device: store.add_device(bob, NOW).await.unwrap(),
    };
    assert_eq!(second.device, DeviceId(2));
    store
        .insert_token(&[2; 32], second, unix_now() + 3600)
        .await
        .unwrap();
    let options = db.postgres_options().unwrap();
    let mut holder = options.connect().await.unwrap();
    let mut watcher = options.connect().await.unwrap();
    // Holds the removal after it tombstoned the device, at its deletion
    // of the device's tokens.
    holder.execute("BEGIN").await.unwrap();
    sqlx::query("SELECT 1 FROM tokens WHERE token_hash = $1 FOR KEY SHARE")
        .bind([2u8; 32].as_slice())
        .execute(&mut holder)
        .await
        .unwrap();
    let removal = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.remove_device(first, second, NOW + 1).await })
    };
    until_waiting(
        &mut watcher,
        1,
        &removal,
        "the removal did not reach the token rows",
    )
    .await;
    let send = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.enqueue_batch(&[message(second, "racing")]).await })
    };
    until_waiting(
        &mut watcher,
        2,
        &send,
        "the batch did not wait for the removal holding the device's row",
    )
    .await;
    holder.execute("COMMIT").await.unwrap();
    removal.await.unwrap().unwrap();
    let outcomes = send.await.unwrap().unwrap();
    assert_eq!(outcomes, vec![Err(EnqueueRejection::UnknownRecipient)]);
    assert_eq!(store.queue_depth(second).await.unwrap(), 0);
    holder.close().await.ok();
    watcher.close().await.ok();
}

/// The batch read the device as current first: the removal waits for the
/// batch's commit (it takes the device's row `FOR UPDATE`), then deletes
/// the envelope the batch stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_removal_behind_a_batch_deletes_what_it_stored() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::postgres_a_removal_behind_a_batch_deletes_what_it_stored"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = new_account(&store, "bob").await;
    let second = Address {
        account: bob,
        device: store.add_device(bob, NOW).await.unwrap(),
    };
    store
        .insert_token(&[1; 32], alice, unix_now() + 3600)
        .await
        .unwrap();
    let under = SubmittedUnder {
        token: [1; 32],
        owner: alice,
    };
    let committer = GroupCommitter::spawn_with(
        Arc::clone(&store),
        64,
        1,
        Arc::new(NoHandOff),
        Duration::from_secs(600),
    );
    let options = db.postgres_options().unwrap();
    let mut holder = options.connect().await.unwrap();
    let mut watcher = options.connect().await.unwrap();
    // Holds the batch after its queue locks, at its check of alice's token.
    holder.execute("BEGIN").await.unwrap();
    sqlx::query("SELECT 1 FROM tokens WHERE token_hash = $1 FOR UPDATE")
        .bind([1u8; 32].as_slice())
        .execute(&mut holder)
        .await
        .unwrap();
    let send = {
        let committer = committer.clone();
        tokio::spawn(async move {
            committer
                .submit_under(vec![message(second, "read as current")], Some(under))
                .await
        })
    };
    until_waiting(
        &mut watcher,
        1,
        &send,
        "the batch did not reach the token check",
    )
    .await;
    let removal = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .remove_device(Address::primary(bob), second, NOW + 1)
                .await
        })
    };
    until_waiting(
        &mut watcher,
        2,
        &removal,
        "the removal committed while a batch that read the device as current was open",
    )
    .await;
    holder.execute("COMMIT").await.unwrap();
    let stored = send.await.unwrap().unwrap();
    assert!(matches!(stored.as_slice(), [Ok(_)]), "{stored:?}");
    let removed = removal.await.unwrap().unwrap();
    assert_eq!(
        removed.messages, 1,
        "the removal deleted the batch's envelope"
    );
    assert_eq!(store.queue_depth(second).await.unwrap(), 0);
    holder.close().await.ok();
    watcher.close().await.ok();
}
