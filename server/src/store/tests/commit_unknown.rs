//! A commit whose outcome the relay cannot know (PROTOCOL.md 9.6): the
//! database connection dies while COMMIT runs. Injected for real on
//! PostgreSQL: a deferred constraint trigger, which runs inside COMMIT,
//! terminates its own backend the first time it fires (a sequence counts
//! the firings; sequences are not rolled back), so the relay gets a FATAL
//! in answer to its COMMIT, exactly as when an operator or a crash stops
//! the server under it.
//!
//! What must follow: the store reports `CommitOutcomeUnknown`, not an
//! error that the spec says stored nothing; and the group committer answers
//! every submission of the failed batch "unknown" instead of retrying each
//! alone, which (had the commit gone through) would store every message
//! twice. PostgreSQL only: SQLite has no way to fail its own COMMIT.

use std::sync::Arc;

use umbra_wire::Address;

use super::super::group_commit::NoHandOff;
use super::super::test_support::TestDb;
use super::super::{GroupCommitError, GroupCommitter, StoreError};
use super::{message, new_account};

/// The fault: the first message row inserted makes its transaction's
/// COMMIT end the connection.
const KILL_AT_FIRST_COMMIT: &[&str] = &[
    "CREATE SEQUENCE commit_kills",
    "CREATE FUNCTION kill_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       IF nextval('commit_kills') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; \
       RETURN NULL; \
     END $$",
    "CREATE CONSTRAINT TRIGGER kill_at_commit AFTER INSERT ON messages \
     DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kill_at_commit()",
];

fn unknown(result: &Result<Vec<super::super::EnqueueOutcome>, GroupCommitError>) -> bool {
    matches!(
        result,
        Err(GroupCommitError::Store(
            StoreError::CommitOutcomeUnknown { .. }
        ))
    )
}

// One worker thread: both submissions are queued before the committer's
// worker first runs, so they share one transaction.
#[tokio::test(flavor = "current_thread")]
async fn a_connection_lost_during_commit_is_an_unknown_outcome_never_retried() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::a_connection_lost_during_commit_is_an_unknown_outcome_never_retried"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    db.execute_raw(&[], KILL_AT_FIRST_COMMIT).await;

    let committer = GroupCommitter::spawn(Arc::clone(&store), 64, 1, Arc::new(NoHandOff));
    let (first, second) = tokio::join!(
        committer.submit(vec![message(alice, "one")]),
        committer.submit(vec![message(bob, "two")]),
    );
    assert!(
        unknown(&first) && unknown(&second),
        "both submissions of the batch whose COMMIT lost its connection are unknown, \
         not retried alone: {first:?} / {second:?}"
    );
    // (Here the trigger's kill came before the commit record, so nothing
    // was stored; "unknown" is what the relay can honestly say.)
    assert_eq!(store.queue_depth(alice).await.unwrap(), 0);
    assert_eq!(store.queue_depth(bob).await.unwrap(), 0);

    // The pool replaces the dead connection; the next batch commits.
    let third = committer.submit(vec![message(alice, "three")]).await;
    assert!(matches!(third.as_deref(), Ok([Ok(_)])), "{third:?}");
}

/// The fault: deleting a token row ends the connection mid-statement (an
/// AFTER trigger, so the row is already deleted inside the statement).
const KILL_AT_TOKEN_DELETE: &[&str] = &[
    "CREATE FUNCTION kill_at_token_delete() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$",
    "CREATE TRIGGER kill_at_token_delete AFTER DELETE ON tokens \
     FOR EACH ROW EXECUTE FUNCTION kill_at_token_delete()",
];

// A token deletion is one statement outside a transaction: the statement is
// its own commit. A connection lost under it leaves the outcome unknown
// (the tokens may be gone), never "not carried out" (review finding 4).
#[tokio::test(flavor = "current_thread")]
async fn a_connection_lost_under_a_token_deletion_is_an_unknown_outcome() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::a_connection_lost_under_a_token_deletion_is_an_unknown_outcome"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    store.insert_token(&[1u8; 32], alice, 1_000).await.unwrap();
    store.insert_token(&[2u8; 32], alice, 1_000).await.unwrap();
    db.execute_raw(&[], KILL_AT_TOKEN_DELETE).await;

    let one = store.delete_token(&[1u8; 32]).await;
    assert!(
        matches!(one, Err(StoreError::CommitOutcomeUnknown { .. })),
        "{one:?}"
    );
    let all = store.delete_tokens_for_account(alice.account).await;
    assert!(
        matches!(all, Err(StoreError::CommitOutcomeUnknown { .. })),
        "{all:?}"
    );
}
