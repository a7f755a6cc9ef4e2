//! The group committer's token re-check happens inside the batch's
//! transaction (`store::batch`): a revocation cannot commit between the
//! check and the commit, an empty Send or Ack is re-checked like any other,
//! and a batch whose statements hang fails as unavailable with nothing
//! stored (the committer's bound).
//!
//! Must never: depend on timing for what it asserts. Locks are held from a
//! connection of the test's own and released by it; where the test waits
//! for the store to reach a lock it polls what the database says
//! (PostgreSQL's `pg_stat_activity`), except in the SQLite test, whose short
//! sleep only gives an incorrect committer its chance to check first (the
//! assertion holds whatever the order on a correct one).

use std::sync::Arc;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, Executor};
use umbra_wire::Address;

use super::super::batch::SubmittedUnder;
use super::super::group_commit::NoHandOff;
use super::super::test_support::TestDb;
use super::super::{GroupCommitError, GroupCommitter};
use super::{message, new_account};
use crate::auth::tokens::unix_now;

async fn token(store: &super::SharedStore, tag: u8, owner: Address) -> SubmittedUnder {
    store
        .insert_token(&[tag; 32], owner, unix_now() + 3600)
        .await
        .expect("insert token");
    SubmittedUnder {
        token: [tag; 32],
        owner,
    }
}

/// SQLite: the test holds the write lock (`BEGIN IMMEDIATE`), a Send is
/// submitted, the test deletes the token and commits. The committer must
/// see the deletion: its check is made under the write lock it waits for.
/// (Checked before the lock, as it was, the Send was stored.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_token_revoked_while_the_batch_waits_for_the_lock_stores_nothing() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    let under = token(&store, 1, alice).await;
    let committer = GroupCommitter::spawn(Arc::clone(&store), 64, 1, Arc::new(NoHandOff));

    let mut holder = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db.sqlite_file().unwrap())
        .connect()
        .await
        .unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let send = {
        let committer = committer.clone();
        tokio::spawn(async move {
            committer
                .submit_under(vec![message(bob, "after revocation")], Some(under))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("DELETE FROM tokens WHERE token_hash = ?1")
        .bind([1u8; 32].as_slice())
        .execute(&mut holder)
        .await
        .unwrap();
    holder.execute("COMMIT").await.unwrap();

    let answered = send.await.unwrap();
    assert!(
        matches!(
            answered,
            Err(GroupCommitError::TokenRefused { expired: false })
        ),
        "{answered:?}"
    );
    assert_eq!(store.queue_depth(bob).await.unwrap(), 0);
    holder.close().await.ok();
}

/// How many of this database's sessions wait for a lock.
async fn lock_waiters(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

/// PostgreSQL: the test blocks the batch's message insert (`LOCK TABLE
/// messages IN SHARE MODE`) after its token check, then revokes the token.
/// The revocation must wait for the batch (the token row is locked until
/// its commit), so it cannot commit in between; once released, the Send is
/// stored and the revocation completes after it. (Checked outside the
/// transaction, as it was, the revocation completed at once while the
/// batch went on to store the revoked sender's message.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_revocation_cannot_commit_between_the_check_and_the_commit() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::postgres_a_revocation_cannot_commit_between_the_check_and_the_commit"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    let under = token(&store, 1, alice).await;
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
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute("LOCK TABLE messages IN SHARE MODE")
        .await
        .unwrap();
    let send = {
        let committer = committer.clone();
        tokio::spawn(async move {
            committer
                .submit_under(vec![message(bob, "checked, then blocked")], Some(under))
                .await
        })
    };
    while lock_waiters(&mut watcher).await < 1 {
        tokio::task::yield_now().await;
    }
    let revoke = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.delete_token(&[1; 32]).await })
    };
    // Either the revocation waits for the batch (a second lock waiter), or
    // it completed while the batch was still open: the flaw this test is for.
    loop {
        if revoke.is_finished() {
            panic!("the revocation committed while the checked batch was still open");
        }
        if lock_waiters(&mut watcher).await >= 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    holder.execute("COMMIT").await.unwrap();
    let stored = send
        .await
        .unwrap()
        .expect("checked before the revocation: stored");
    assert!(stored[0].is_ok(), "{stored:?}");
    assert!(
        revoke.await.unwrap().unwrap(),
        "the revocation deleted the token"
    );
    assert_eq!(store.queue_depth(bob).await.unwrap(), 1);
    // And from now on the token is refused.
    let refused = committer
        .submit_under(vec![message(bob, "after")], Some(under))
        .await;
    assert!(
        matches!(refused, Err(GroupCommitError::TokenRefused { .. })),
        "{refused:?}"
    );
    holder.close().await.ok();
    watcher.close().await.ok();
}

/// A Send with nothing left to store and an empty Ack are re-checked too:
/// under a revoked token both are refused, under a valid one both succeed
/// with nothing written (PROTOCOL.md error code 16, one rule for all).
async fn an_empty_send_or_ack_under_a_revoked_token_is_refused(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let committer = GroupCommitter::spawn(Arc::clone(&store), 64, 1, Arc::new(NoHandOff));
    let revoked = SubmittedUnder {
        token: [3; 32],
        owner: alice,
    };
    let send = committer.submit_under(Vec::new(), Some(revoked)).await;
    assert!(
        matches!(send, Err(GroupCommitError::TokenRefused { expired: false })),
        "{send:?}"
    );
    let ack = committer
        .submit_ack_under(alice, Vec::new(), Some(revoked))
        .await;
    assert!(
        matches!(ack, Err(GroupCommitError::TokenRefused { expired: false })),
        "{ack:?}"
    );
    let valid = token(&store, 4, alice).await;
    assert_eq!(
        committer
            .submit_under(Vec::new(), Some(valid))
            .await
            .unwrap(),
        Vec::new()
    );
    assert_eq!(
        committer
            .submit_ack_under(alice, Vec::new(), Some(valid))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_empty_send_or_ack_under_a_revoked_token_is_refused() {
    an_empty_send_or_ack_under_a_revoked_token_is_refused(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_empty_send_or_ack_under_a_revoked_token_is_refused() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::postgres_an_empty_send_or_ack_under_a_revoked_token_is_refused"
    ))
    .await
    else {
        return;
    };
    an_empty_send_or_ack_under_a_revoked_token_is_refused(&db).await;
}

/// PostgreSQL: a batch whose statement hangs (here on a table lock the test
/// holds) fails with `Unavailable` once the committer's bound passes, and
/// nothing of it is stored once the lock is gone (the transaction was
/// dropped before COMMIT, so it rolled back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_hanging_batch_fails_unavailable_and_stores_nothing() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::postgres_a_hanging_batch_fails_unavailable_and_stores_nothing"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let bob = Address::primary(new_account(&store, "bob").await);
    let committer = GroupCommitter::spawn_with(
        Arc::clone(&store),
        64,
        1,
        Arc::new(NoHandOff),
        Duration::from_millis(300),
    );
    let mut holder = db.postgres_options().unwrap().connect().await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let answered = committer.submit(vec![message(bob, "frozen")]).await;
    assert!(
        matches!(
            answered,
            Err(GroupCommitError::Store(ref e)) if e.is_unavailable()
        ),
        "{answered:?}"
    );
    holder.execute("COMMIT").await.unwrap();
    holder.close().await.ok();
    assert_eq!(store.queue_depth(bob).await.unwrap(), 0);
    // The committer goes on once the database answers again.
    let stored = committer
        .submit(vec![message(bob, "thawed")])
        .await
        .unwrap();
    assert!(stored[0].is_ok(), "{stored:?}");
    assert_eq!(store.queue_depth(bob).await.unwrap(), 1);
}

/// PostgreSQL: one commit holding messages for several recipients is
/// heard on another node as one wake-up per recipient, at its highest seq
/// (one NOTIFY per commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_commit_wakes_each_recipient_on_another_node() {
    use super::super::QueueEvent;
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::postgres_one_commit_wakes_each_recipient_on_another_node"
    ))
    .await
    else {
        return;
    };
    let receiver_node = db.open().await;
    let sender_node = db.open().await;
    let alice = Address::primary(new_account(&sender_node, "alice").await);
    let bob = Address::primary(new_account(&sender_node, "bob").await);
    let mut events = receiver_node.subscribe();
    'attempts: for _ in 0..5 {
        let sent = sender_node
            .enqueue_batch(&[message(alice, "1"), message(bob, "2"), message(alice, "3")])
            .await
            .unwrap();
        let highest_alice = *sent[2].as_ref().unwrap();
        let highest_bob = *sent[1].as_ref().unwrap();
        let mut heard = Vec::new();
        while heard.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(20), events.recv())
                .await
                .expect("a queue event arrives")
                .expect("subscription open")
            {
                QueueEvent::Enqueued { recipient, seq } => heard.push((recipient, seq)),
                // The listener (re)connected: the commit may have gone unheard.
                QueueEvent::Resync => continue 'attempts,
            }
        }
        heard.sort();
        let mut expected = vec![(alice, highest_alice), (bob, highest_bob)];
        expected.sort();
        assert_eq!(heard, expected);
        return;
    }
    panic!("the listener kept reconnecting");
}
