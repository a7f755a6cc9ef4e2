//! Bulk work (expiry purges, counting the whole queue, deleting an account
//! with a full queue) is not cut off by the request `statement_timeout`:
//! purges delete in batches until nothing expired is left, and the
//! PostgreSQL bulk transactions lift the timeout for themselves only.
//!
//! Must never: pass with fewer rows than several purge batches, or prove the
//! lifted timeout with a statement that ends before the request timeout.

use super::*;
use crate::store::limits::PURGE_BATCH_ROWS;
use crate::store::postgres::STATEMENT_TIMEOUT;

/// Enqueues `n` messages to `to` that expire at `expires_at`, in batches.
async fn fill(store: &SharedStore, to: Address, n: usize, expires_at: u64) {
    let batch: Vec<NewMessage> = (0..n)
        .map(|i| NewMessage {
            expires_at,
            ..message(to, &format!("bulk {i}"))
        })
        .collect();
    for chunk in batch.chunks(2_000) {
        let outcomes = store.enqueue_batch(chunk).await.expect("enqueue");
        assert!(outcomes.iter().all(Result::is_ok), "every message queued");
    }
}

/// A purge of more expired rows than several batches removes every one of
/// them, reports the number, and keeps the unexpired ones.
pub(super) async fn a_purge_of_many_rows_removes_every_expired_one(db: &TestDb) {
    let store = db.open().await;
    let per_recipient = 6_000;
    let recipients = [
        Address::primary(new_account(&store, "bulk1").await),
        Address::primary(new_account(&store, "bulk2").await),
        Address::primary(new_account(&store, "bulk3").await),
    ];
    for to in recipients {
        fill(&store, to, per_recipient, 500).await;
        fill(&store, to, 3, 5_000).await;
    }
    let expired = (per_recipient * recipients.len()) as u64;
    assert!(expired > 3 * PURGE_BATCH_ROWS as u64, "several batches");
    assert_eq!(store.purge_expired_messages(1_000).await.unwrap(), expired);
    for to in recipients {
        assert_eq!(store.queue_depth(to).await.unwrap(), 3, "unexpired kept");
    }
    assert_eq!(store.total_queued().await.unwrap(), 9);
    assert_eq!(store.purge_expired_messages(1_000).await.unwrap(), 0);
}

/// PostgreSQL: the whole-queue count and an account deletion wait on a
/// lock longer than the request statement timeout, and still succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_postgres_bulk_transactions_outlast_the_request_statement_timeout() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::store_postgres_bulk_transactions_outlast_the_request_statement_timeout"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let doomed = Address::primary(new_account(&store, "doomed").await);
    fill(&store, doomed, 10, 5_000).await;
    let options = db.postgres_options().expect("a PostgreSQL test database");
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    // Reads and deletes of `messages` wait while this is held.
    let mut blocker = admin.begin().await.unwrap();
    sqlx::query("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let counting = tokio::spawn({
        let store = store.clone();
        async move { store.total_queued().await }
    });
    let deleting = tokio::spawn({
        let store = store.clone();
        async move { store.delete_account(doomed.account, NOW).await }
    });
    // Both are waiting on the lock (polled, bounded)...
    let mut waiting = 0;
    for _ in 0..200 {
        waiting = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock'",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        if waiting == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting, 2, "the count and the deletion wait on the lock");
    // ...for longer than a request statement may run.
    tokio::time::sleep(STATEMENT_TIMEOUT + Duration::from_millis(500)).await;
    blocker.rollback().await.unwrap();
    assert_eq!(counting.await.unwrap().expect("the count"), 10);
    assert!(deleting.await.unwrap().expect("the deletion"), "deleted");
    assert_eq!(store.total_queued().await.unwrap(), 0);
}
