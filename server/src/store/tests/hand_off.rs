//! The group committer's hand-off of committed envelopes and its re-check
//! of the submitting request's token, on both backends (on SQLite through
//! the dedicated writer thread).
//!
//! Must never: depend on timing; every assertion is on what was answered,
//! handed over and stored.

use std::sync::{Arc, Mutex};

use umbra_wire::Address;

use super::super::group_commit::{HandOff, SubmittedUnder};
use super::super::test_support::TestDb;
use super::super::{GroupCommitError, GroupCommitter, Seq, UnixMillis};
use super::{message, new_account};
use crate::auth::tokens::unix_now;

/// Records what it is handed.
#[derive(Default)]
struct Recorder(Mutex<Vec<(Address, Seq, Vec<u8>)>>);

impl HandOff for Recorder {
    fn hand_off(&self, recipient: Address, seq: Seq, _: UnixMillis, envelope: Vec<u8>) {
        self.0.lock().unwrap().push((recipient, seq, envelope));
    }
}

impl Recorder {
    fn taken(&self) -> Vec<(Address, Seq, Vec<u8>)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

async fn committed_envelopes_are_handed_off_under_a_valid_token_only(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    let recorder = Arc::new(Recorder::default());
    let committer = GroupCommitter::spawn(Arc::clone(&store), 64, 1, recorder.clone());

    // Accepted messages are handed over, with their seqs, once committed.
    let outcomes = committer
        .submit(vec![message(bob, "one"), message(bob, "two")])
        .await
        .expect("committed");
    let seqs: Vec<Seq> = outcomes.iter().map(|o| *o.as_ref().unwrap()).collect();
    assert_eq!(
        recorder.taken(),
        vec![
            (bob, seqs[0], b"one".to_vec()),
            (bob, seqs[1], b"two".to_vec())
        ]
    );

    // A token the store never issued (or revoked): nothing stored or handed.
    let unknown = SubmittedUnder {
        token: [7; 32],
        owner: alice,
    };
    let refused = committer
        .submit_under(vec![message(bob, "three")], Some(unknown))
        .await;
    assert!(
        matches!(
            refused,
            Err(GroupCommitError::TokenRefused { expired: false })
        ),
        "{refused:?}"
    );
    assert_eq!(store.queue_depth(bob).await.unwrap(), 2);
    assert!(recorder.taken().is_empty());

    // An Ack under an expired token deletes nothing.
    store.insert_token(&[8; 32], alice, 1).await.unwrap();
    let expired = SubmittedUnder {
        token: [8; 32],
        owner: alice,
    };
    let refused = committer
        .submit_ack_under(bob, seqs.clone(), Some(expired))
        .await;
    assert!(
        matches!(
            refused,
            Err(GroupCommitError::TokenRefused { expired: true })
        ),
        "{refused:?}"
    );
    assert_eq!(store.queue_depth(bob).await.unwrap(), 2);

    // Another device's token is refused too.
    store
        .insert_token(&[9; 32], bob, unix_now() + 3600)
        .await
        .unwrap();
    let borrowed = SubmittedUnder {
        token: [9; 32],
        owner: alice,
    };
    let refused = committer
        .submit_under(vec![message(bob, "four")], Some(borrowed))
        .await;
    assert!(
        matches!(refused, Err(GroupCommitError::TokenRefused { .. })),
        "{refused:?}"
    );

    // A valid token: stored and handed over.
    store
        .insert_token(&[10; 32], alice, unix_now() + 3600)
        .await
        .unwrap();
    let valid = SubmittedUnder {
        token: [10; 32],
        owner: alice,
    };
    let accepted = committer
        .submit_under(vec![message(bob, "five")], Some(valid))
        .await
        .expect("committed");
    assert_eq!(accepted.len(), 1);
    assert_eq!(recorder.taken().len(), 1);
    assert_eq!(store.queue_depth(bob).await.unwrap(), 3);
    let acked = committer
        .submit_ack_under(bob, seqs, Some(valid))
        .await
        .expect("acked");
    assert_eq!(acked, 2);
}

#[tokio::test]
async fn sqlite_committed_envelopes_are_handed_off_under_a_valid_token_only() {
    committed_envelopes_are_handed_off_under_a_valid_token_only(&TestDb::sqlite()).await;
}

#[tokio::test]
async fn postgres_committed_envelopes_are_handed_off_under_a_valid_token_only() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::postgres_committed_envelopes_are_handed_off_under_a_valid_token_only"
    ))
    .await
    else {
        return;
    };
    committed_envelopes_are_handed_off_under_a_valid_token_only(&db).await;
}
