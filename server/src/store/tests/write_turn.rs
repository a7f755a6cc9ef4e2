//! SQLite's two writers (the pool's connection and the committer's
//! dedicated one) take turns fairly: a pool write made while the committer
//! commits batch after batch is not starved.
//!
//! Must never: assert on a duration. What it counts is how many messages
//! the committer commits while the pool writes wait: with turns taken in
//! order, a pool write waits for at most the batch being committed and the
//! one already waiting, and with 8 senders of one message each a batch holds
//! at most 8. Left to SQLite's busy handler, the pool's connection polls with
//! a growing back-off and the committer re-takes the lock in between (seen:
//! one insert waiting 4.5 s while 73,000 messages were committed).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use umbra_wire::Address;

use super::super::test_support::TestDb;
use super::super::GroupCommitter;
use super::{message, new_account};
use crate::auth::tokens::unix_now;

struct Nowhere;
impl super::super::group_commit::HandOff for Nowhere {
    fn hand_off(&self, _: Address, _: super::super::Seq, _: super::super::UnixSeconds, _: Vec<u8>) {
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_writes_are_not_starved_by_a_busy_committer() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    let committer = Arc::new(GroupCommitter::spawn(
        Arc::clone(&store),
        64,
        1,
        Arc::new(Nowhere),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (committer, stop, committed) = (
            Arc::clone(&committer),
            Arc::clone(&stop),
            Arc::clone(&committed),
        );
        senders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                committer
                    .submit(vec![message(bob, "x")])
                    .await
                    .expect("committed");
                committed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let the committer get busy, then make pool writes among its batches.
    while committed.load(Ordering::Relaxed) < 200 {
        tokio::task::yield_now().await;
    }
    const WRITES: usize = 40;
    let before = committed.load(Ordering::Relaxed);
    for i in 0..WRITES {
        store
            .insert_token(&[i as u8; 32], alice, unix_now() + 3600)
            .await
            .expect("a pool write among busy batches");
    }
    let meanwhile = committed.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    // Per pool write: the batch in progress and the next, 8 messages each.
    assert!(
        meanwhile <= WRITES * 2 * 8,
        "{meanwhile} messages were committed while {WRITES} pool writes waited their turn"
    );
}
