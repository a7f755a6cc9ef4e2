//! Queues, group commit and notifications, on both backends.

use super::*;
use crate::store::group_commit::NoHandOff;

// ----- queue -----------------------------------------------------------------

pub(super) async fn enqueue_assigns_ordered_per_recipient_seqs(db: &TestDb) {
    let store = db.open().await;
    let a = Address::primary(new_account(&store, "alice").await);
    let b = Address::primary(new_account(&store, "bob").await);
    // A queue is a current device's (15.5): bob links his device 2.
    let b2 = Address {
        account: b.account,
        device: store.add_device(b.account, NOW).await.unwrap(),
    };
    assert_eq!(b2.device, DeviceId(2));
    let outcomes = store
        .enqueue_batch(&[
            message(a, "a1"),
            message(b, "b1"),
            message(a, "a2"),
            message(b2, "b2-1"),
            message(b, "b2"),
        ])
        .await
        .unwrap();
    assert_eq!(ok_seqs(&outcomes), vec![1, 1, 2, 1, 2]);
    let more = store.enqueue_batch(&[message(a, "a3")]).await.unwrap();
    assert_eq!(ok_seqs(&more), vec![3]);
    assert_eq!(
        bodies(&store, a).await,
        vec![(1, "a1".into()), (2, "a2".into()), (3, "a3".into())]
    );
    assert_eq!(
        bodies(&store, b).await,
        vec![(1, "b1".into()), (2, "b2".into())]
    );
    assert_eq!(bodies(&store, b2).await, vec![(1, "b2-1".into())]);
    assert_eq!(store.queue_depth(a).await.unwrap(), 3);
    assert_eq!(store.total_queued().await.unwrap(), 6);
    assert!(store.enqueue_batch(&[]).await.unwrap().is_empty());
}

pub(super) async fn full_queue_refuses_only_its_own_messages(db: &TestDb) {
    let store = db
        .open_with(StoreLimits {
            max_queue_per_recipient: 3,
            ..StoreLimits::default()
        })
        .await;
    let a = Address::primary(new_account(&store, "alice").await);
    let b = Address::primary(new_account(&store, "bob").await);
    let nobody = Address::primary(account_id(6));
    let outcomes = store
        .enqueue_batch(&[
            message(a, "a1"),
            message(a, "a2"),
            message(nobody, "lost"),
            message(a, "a3"),
            message(a, "a4"),
            message(b, "b1"),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            Ok(1),
            Ok(2),
            Err(EnqueueRejection::UnknownRecipient),
            Ok(3),
            Err(EnqueueRejection::QueueFull),
            Ok(1)
        ]
    );
    assert_eq!(store.queue_depth(a).await.unwrap(), 3);
    assert_eq!(bodies(&store, b).await, vec![(1, "b1".into())]);
    // Room again after an ack; the refused message never consumed a seq.
    assert_eq!(store.ack(a, &[1]).await.unwrap(), 1);
    let later = store.enqueue_batch(&[message(a, "a5")]).await.unwrap();
    assert_eq!(later, vec![Ok(4)]);
}

pub(super) async fn fetch_ack_and_expiry(db: &TestDb) {
    let store = db.open().await;
    let a = Address::primary(new_account(&store, "alice").await);
    let batch: Vec<NewMessage> = (1..=5).map(|i| message(a, &format!("m{i}"))).collect();
    store.enqueue_batch(&batch).await.unwrap();

    let page = store.fetch_after(a, 1, 2, 0).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(page[0].envelope, b"m2");
    assert_eq!(page[0].received_at_ms, 1_000_123);

    assert_eq!(
        store.ack(a, &[2, 4, 42]).await.unwrap(),
        2,
        "unknown seq ignored"
    );
    assert_eq!(store.ack(a, &[2]).await.unwrap(), 0, "ack is idempotent");
    let left: Vec<u64> = bodies(&store, a)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(left, vec![1, 3, 5]);
    assert_eq!(store.ack_up_to(a, 3).await.unwrap(), 2);
    assert_eq!(store.queue_depth(a).await.unwrap(), 1);
    assert_eq!(store.ack_up_to(a, 5).await.unwrap(), 1);
    // An emptied queue still never reuses a sequence number.
    let next = store.enqueue_batch(&[message(a, "m6")]).await.unwrap();
    assert_eq!(next, vec![Ok(6)]);

    let short = NewMessage {
        expires_at: 2_000,
        ..message(a, "short-lived")
    };
    store.enqueue_batch(&[short]).await.unwrap();
    assert_eq!(store.fetch_after(a, 0, 10, 1_999).await.unwrap().len(), 2);
    let at_expiry = store.fetch_after(a, 0, 10, 2_000).await.unwrap();
    assert_eq!(at_expiry.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![6]);
    assert_eq!(store.purge_expired_messages(1_999).await.unwrap(), 0);
    assert_eq!(store.purge_expired_messages(2_000).await.unwrap(), 1);
    assert_eq!(store.total_queued().await.unwrap(), 1);
}

pub(super) async fn two_writers_on_one_database_keep_seqs_distinct(db: &TestDb) {
    // Two stores on one database: two relay nodes on PostgreSQL, two
    // processes' worth of pools on one SQLite file.
    let nodes = [db.open().await, db.open().await];
    let mut recipients = Vec::new();
    for name in ["alice", "bob", "carol"] {
        recipients.push(Address::primary(new_account(&nodes[0], name).await));
    }
    let start = Arc::new(tokio::sync::Barrier::new(24));
    let writers: Vec<_> = (0..24usize)
        .map(|i| {
            let node = Arc::clone(&nodes[i % 2]);
            let start = Arc::clone(&start);
            // Each batch names the recipients in a different rotation, which
            // deadlocks if row locks are not taken in a fixed order.
            let batch: Vec<NewMessage> = (0..3)
                .map(|k| message(recipients[(i + k) % 3], &format!("w{i}")))
                .collect();
            tokio::spawn(async move {
                start.wait().await;
                node.enqueue_batch(&batch).await
            })
        })
        .collect();
    for writer in writers {
        let outcomes = writer.await.unwrap().expect("batch committed");
        assert_eq!(ok_seqs(&outcomes).len(), 3);
    }
    for recipient in &recipients {
        let seqs: Vec<u64> = bodies(&nodes[1], *recipient)
            .await
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(seqs, (1..=24).collect::<Vec<u64>>(), "{recipient}");
    }
}

/// The acceptance time is kept to the millisecond (Deliver.received_at_ms)
/// on every write path: the pool's `enqueue_batch` and the group
/// committer (on SQLite its dedicated writer thread); a row written before
/// migration 0006 (or by a node not yet running it) has only seconds and
/// reads as those seconds × 1000.
pub(super) async fn the_acceptance_time_keeps_its_milliseconds(db: &TestDb) {
    let store = db.open().await;
    let a = Address::primary(new_account(&store, "alice").await);
    let at = |ms: u64, body: &str| NewMessage {
        received_at_ms: ms,
        ..message(a, body)
    };
    store
        .enqueue_batch(&[at(1_795_000_000_001, "pool")])
        .await
        .unwrap();
    let committer = GroupCommitter::spawn(Arc::clone(&store), 64, 1, Arc::new(NoHandOff));
    committer
        .submit(vec![at(1_795_000_000_999, "committer")])
        .await
        .unwrap();
    let account = hex(a.account.as_bytes());
    let legacy_sqlite = format!(
        "INSERT INTO messages (account_id, device_id, seq, envelope, received_at, expires_at) \
         VALUES (X'{account}', 1, 3, X'6c6567616379', 1795000001, 1000000)"
    );
    let legacy_postgres = format!(
        "INSERT INTO messages (account_id, device_id, seq, envelope, received_at, expires_at) \
         VALUES ('\\x{account}', 1, 3, '\\x6c6567616379', 1795000001, 1000000)"
    );
    db.execute_raw(&[&legacy_sqlite], &[&legacy_postgres]).await;
    let times: Vec<(String, u64)> = store
        .fetch_after(a, 0, 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (String::from_utf8(m.envelope).unwrap(), m.received_at_ms))
        .collect();
    assert_eq!(
        times,
        vec![
            ("pool".to_owned(), 1_795_000_000_001),
            ("committer".to_owned(), 1_795_000_000_999),
            ("legacy".to_owned(), 1_795_000_001_000),
        ]
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ----- group commit ------------------------------------------------------------

pub(super) async fn group_commit_serves_concurrent_submitters(db: &TestDb) {
    let store = db.open().await;
    let mut recipients = Vec::new();
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        recipients.push(Address::primary(new_account(&store, name).await));
    }
    let committer = GroupCommitter::spawn(Arc::clone(&store), 64, 2, Arc::new(NoHandOff));
    let submitters = (0..50).map(|task: usize| {
        let committer = committer.clone();
        let recipient = recipients[task % recipients.len()];
        tokio::spawn(async move {
            let messages: Vec<NewMessage> = (0..4)
                .map(|j| message(recipient, &format!("{task}:{j}")))
                .collect();
            (recipient, task, committer.submit(messages).await)
        })
    });
    let mut seqs_by_recipient: BTreeMap<Address, Vec<u64>> = BTreeMap::new();
    let mut expected_body: BTreeMap<(Address, u64), String> = BTreeMap::new();
    for submitter in submitters {
        let (recipient, task, outcome) = submitter.await.unwrap();
        let seqs = ok_seqs(&outcome.expect("submission committed"));
        assert_eq!(seqs.len(), 4);
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "own order kept: {seqs:?}"
        );
        for (j, seq) in seqs.iter().enumerate() {
            expected_body.insert((recipient, *seq), format!("{task}:{j}"));
        }
        seqs_by_recipient.entry(recipient).or_default().extend(seqs);
    }
    for recipient in &recipients {
        let mut seqs = seqs_by_recipient
            .remove(recipient)
            .expect("recipient served");
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (1..=40).collect::<Vec<u64>>(),
            "distinct and gap-free"
        );
        for (seq, body) in bodies(&store, *recipient).await {
            assert_eq!(expected_body.get(&(*recipient, seq)), Some(&body));
        }
    }
    assert_eq!(store.total_queued().await.unwrap(), 200);

    // A lone submission completes without company, and a failing one is
    // reported only to its sender.
    let alone = committer
        .submit(vec![message(recipients[0], "alone")])
        .await;
    assert_eq!(alone.unwrap(), vec![Ok(41)]);
    assert!(committer.submit(Vec::new()).await.unwrap().is_empty());
}

/// Acks go through the group committer too: they share transactions with
/// concurrent sends, each is answered with its own count, and an unknown or
/// repeated seq deletes nothing.
pub(super) async fn group_commit_acks_beside_sends(db: &TestDb) {
    let store = db.open().await;
    let alice = Address::primary(new_account(&store, "alice").await);
    let bob = Address::primary(new_account(&store, "bob").await);
    let first: Vec<NewMessage> = (0..10).map(|j| message(alice, &format!("a{j}"))).collect();
    assert_eq!(
        ok_seqs(&store.enqueue_batch(&first).await.unwrap()).len(),
        10
    );

    let committer = GroupCommitter::spawn(Arc::clone(&store), 64, 1, Arc::new(NoHandOff));
    let acks = [vec![1, 2], vec![3, 3, 99], vec![4], vec![1]].map(|seqs| {
        let committer = committer.clone();
        tokio::spawn(async move { committer.submit_ack(alice, seqs).await })
    });
    let sends = (0..4).map(|j| {
        let committer = committer.clone();
        tokio::spawn(async move { committer.submit(vec![message(bob, &format!("b{j}"))]).await })
    });
    let sends: Vec<_> = sends.collect();
    let mut acked = Vec::new();
    for ack in acks {
        acked.push(ack.await.unwrap().expect("ack committed"));
    }
    for send in sends {
        assert_eq!(
            ok_seqs(&send.await.unwrap().expect("send committed")).len(),
            1
        );
    }
    // Seq 1 is deleted by whichever of its two acks committed first.
    assert_eq!(
        acked[1..3],
        [1, 1],
        "unknown and repeated seqs count nothing"
    );
    assert_eq!(acked[0] + acked[3], 2, "seqs 1 and 2, each once");
    let left: Vec<u64> = bodies(&store, alice)
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(left, (5..=10).collect::<Vec<u64>>());
    assert_eq!(store.queue_depth(bob).await.unwrap(), 4);

    // One call that both queues and acks.
    let (outcomes, deleted) = store
        .enqueue_and_ack(
            &[message(bob, "b4")],
            &[(alice, vec![5, 6]), (bob, vec![1])],
        )
        .await
        .unwrap();
    assert_eq!(ok_seqs(&outcomes), vec![5]);
    assert_eq!(deleted, vec![2, 1]);
    assert_eq!(store.queue_depth(alice).await.unwrap(), 4);
    assert_eq!(committer.submit_ack(alice, Vec::new()).await.unwrap(), 0);
}

// ----- notifications -------------------------------------------------------------

pub(super) async fn subscribers_hear_committed_enqueues(db: &TestDb) {
    let receiver_node = db.open().await;
    // With PostgreSQL a second store is a second relay node: the event must
    // cross nodes through NOTIFY. SQLite is single-node: same store.
    let sender_node = if db.shares_notifications() {
        db.open().await
    } else {
        Arc::clone(&receiver_node)
    };
    let alice = Address::primary(new_account(&sender_node, "alice").await);
    let mut events = receiver_node.subscribe();
    let mut confirmed = None;
    // A Resync means the listener (re)connected, so an enqueue made before
    // it may have gone unheard: enqueue again after it.
    'attempts: for _ in 0..5 {
        let sent = sender_node
            .enqueue_batch(&[message(alice, "ping")])
            .await
            .unwrap();
        let seq = ok_seqs(&sent)[0];
        loop {
            let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
                .await
                .expect("a queue event arrives")
                .expect("subscription open");
            match event {
                QueueEvent::Enqueued {
                    recipient,
                    seq: got,
                } => {
                    assert_eq!(recipient, alice, "only alice was sent to");
                    if got == seq {
                        confirmed = Some(seq);
                        break 'attempts;
                    }
                }
                QueueEvent::Resync => continue 'attempts,
            }
        }
    }
    let seq = confirmed.expect("an Enqueued event for the committed seq");
    // The event points at a message that is really there to fetch.
    let waiting = receiver_node
        .fetch_after(alice, seq - 1, 1, 0)
        .await
        .unwrap();
    assert_eq!(waiting.first().map(|m| m.seq), Some(seq));
}

/// Waits for an event matching `wanted`, skipping others; fails after a
/// generous guard so a broken listener cannot hang the suite.
async fn next_matching(
    events: &mut tokio::sync::broadcast::Receiver<QueueEvent>,
    wanted: impl Fn(&QueueEvent) -> bool,
) -> QueueEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("the expected queue event arrives")
            .expect("subscription open");
        if wanted(&event) {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_postgres_listener_resyncs_after_reconnect() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::store_postgres_listener_resyncs_after_reconnect"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let options = db.postgres_options().expect("a PostgreSQL test database");
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let listener_pids = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'",
        )
        .fetch_all(&admin)
        .await
        .unwrap()
    };
    // Wait until this node's listener is in place (polling, bounded).
    let mut pids = Vec::new();
    for _ in 0..200 {
        pids = listener_pids().await;
        if !pids.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pids.len(), 1, "one listener connection per node");
    let mut events = store.subscribe();

    // Cut the listener's connection, as a database restart would.
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pids[0])
        .execute(&admin)
        .await
        .unwrap();
    next_matching(&mut events, |e| *e == QueueEvent::Resync).await;
    let relistened = listener_pids().await;
    assert_eq!(relistened.len(), 1, "listening again after the resync");
    assert_ne!(relistened[0], pids[0], "on a new connection");

    let alice = Address::primary(new_account(&store, "alice").await);
    let seq = ok_seqs(
        &store
            .enqueue_batch(&[message(alice, "after")])
            .await
            .unwrap(),
    )[0];
    let event = next_matching(&mut events, |e| matches!(e, QueueEvent::Enqueued { .. })).await;
    assert_eq!(
        event,
        QueueEvent::Enqueued {
            recipient: alice,
            seq
        }
    );
    admin.close().await;
}

/// A queue notice this relay did not write (anyone with a database role may
/// `NOTIFY umbra_queue`) is dropped: answering garbage with a resync would
/// let such a role make every node wake every connection, over and over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_postgres_listener_drops_a_malformed_queue_notice() {
    let Some(db) = TestDb::postgres(concat!(
        module_path!(),
        "::store_postgres_listener_drops_a_malformed_queue_notice"
    ))
    .await
    else {
        return;
    };
    let store = db.open().await;
    let mut events = store.subscribe();
    let alice = Address::primary(new_account(&store, "alice").await);
    // A first enqueue seen end to end: the listener is up, and whatever it
    // said on connecting is behind us.
    let first = ok_seqs(
        &store
            .enqueue_batch(&[message(alice, "first")])
            .await
            .unwrap(),
    )[0];
    next_matching(&mut events, |e| {
        *e == QueueEvent::Enqueued {
            recipient: alice,
            seq: first,
        }
    })
    .await;

    let options = db.postgres_options().expect("a PostgreSQL test database");
    let outsider = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    for garbage in ["", "not a notice", "zz:1", ":"] {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(super::super::rows::QUEUE_CHANNEL)
            .bind(garbage)
            .execute(&outsider)
            .await
            .unwrap();
    }
    outsider.close().await;
    let second = ok_seqs(
        &store
            .enqueue_batch(&[message(alice, "second")])
            .await
            .unwrap(),
    )[0];
    // Notices arrive in commit order: had the garbage caused a resync, it
    // would come before this enqueue's event.
    let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event arrives")
        .expect("subscription open");
    assert_eq!(
        event,
        QueueEvent::Enqueued {
            recipient: alice,
            seq: second
        },
        "a malformed queue notice must be dropped, not answered with a resync"
    );
}
