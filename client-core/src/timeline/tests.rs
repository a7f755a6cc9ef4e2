//! The timeline on its own, over a memory store: no engine, no relay.

use rand::rngs::OsRng;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::AccountId;

use super::*;

async fn timeline() -> Timeline {
    let vault = Vault::for_tests().await;
    Timeline::new(vault)
}

fn contact(name: &str) -> ContactRecord {
    let account = *AccountId::random(&mut OsRng).as_bytes();
    let identity = IdentityKeyPair::generate(&mut OsRng).public();
    ContactRecord::first_seen(account, name.into(), identity)
}

fn entry(direction: Direction, id: u8, at: u64) -> HistoryEntry {
    HistoryEntry {
        id: MessageId([id; 16]),
        direction,
        body: format!("message {id}"),
        sent_at_ms: at,
        received_at_ms: at,
        status: match direction {
            Direction::Incoming => DeliveryStatus::Delivered,
            Direction::Outgoing => DeliveryStatus::Pending,
        },
        reported: direction == Direction::Outgoing,
        about: Default::default(),
    }
}

/// Appends and commits, as a send or a delivery does.
async fn append(
    timeline: &Timeline,
    counters: &mut Counters,
    contact: &ContactRecord,
    entry: HistoryEntry,
) {
    let unread = entry.direction == Direction::Incoming;
    let mut txn = Txn::new();
    timeline
        .append(&mut txn, counters, contact, entry, unread)
        .await
        .expect("append");
    timeline.vault.commit(txn).await.expect("commit");
}

async fn set_status(
    timeline: &Timeline,
    account: &[u8; 16],
    id: u8,
    status: DeliveryStatus,
) -> bool {
    let mut txn = Txn::new();
    let changed = timeline
        .update_status(&mut txn, account, &MessageId([id; 16]), status)
        .await
        .expect("update");
    timeline.vault.commit(txn).await.expect("commit");
    changed
}

async fn status_of(timeline: &Timeline, account: &[u8; 16]) -> (DeliveryStatus, DeliveryStatus) {
    let entry = timeline.latest(account, 1).await.expect("history")[0].clone();
    let summary = timeline.summaries().await.expect("summaries");
    let last = summary
        .iter()
        .find(|c| c.account == *account)
        .and_then(|c| c.last.clone())
        .expect("summary");
    (entry.status, last.status)
}

#[tokio::test]
async fn an_entry_and_its_index_are_written_together_and_only_on_commit() {
    let timeline = timeline().await;
    let bob = contact("bob");
    let mut counters = Counters::default();
    let id = MessageId([1; 16]);
    let mut txn = Txn::new();
    let first = entry(Direction::Outgoing, 1, 10);
    timeline
        .append(&mut txn, &mut counters, &bob, first, false)
        .await
        .expect("append");
    assert_eq!(counters.next_history_seq, 1, "one sequence per entry");
    // Nothing is written until the caller commits.
    assert!(!timeline
        .message_known(Direction::Outgoing, &bob.account, &id)
        .await
        .unwrap());
    assert!(timeline.latest(&bob.account, 10).await.unwrap().is_empty());
    timeline.vault.commit(txn).await.expect("commit");
    // The index names direction and contact.
    assert!(timeline
        .message_known(Direction::Outgoing, &bob.account, &id)
        .await
        .unwrap());
    assert!(!timeline
        .message_known(Direction::Incoming, &bob.account, &id)
        .await
        .unwrap());
    let carol = contact("carol");
    assert!(!timeline
        .message_known(Direction::Outgoing, &carol.account, &id)
        .await
        .unwrap());
    let history = timeline.latest(&bob.account, 10).await.unwrap();
    assert_eq!(history, vec![entry(Direction::Outgoing, 1, 10)]);
}

#[tokio::test]
async fn a_status_never_goes_backwards_and_failed_only_from_pending() {
    use DeliveryStatus::*;
    let timeline = timeline().await;
    let bob = contact("bob");
    let mut counters = Counters::default();
    append(
        &timeline,
        &mut counters,
        &bob,
        entry(Direction::Outgoing, 1, 10),
    )
    .await;
    let a = &bob.account;
    assert!(set_status(&timeline, a, 1, Delivered).await);
    assert!(!set_status(&timeline, a, 1, Sent).await, "a late Sent");
    assert!(
        !set_status(&timeline, a, 1, Failed).await,
        "delivered cannot fail"
    );
    assert_eq!(status_of(&timeline, a).await, (Delivered, Delivered));
    assert!(set_status(&timeline, a, 1, Read).await);
    assert!(!set_status(&timeline, a, 1, Delivered).await);
    assert_eq!(status_of(&timeline, a).await, (Read, Read));

    append(
        &timeline,
        &mut counters,
        &bob,
        entry(Direction::Outgoing, 2, 20),
    )
    .await;
    assert!(set_status(&timeline, a, 2, Failed).await);
    assert!(!set_status(&timeline, a, 2, Sent).await, "failed is final");
    assert!(!set_status(&timeline, a, 2, Read).await);
    assert_eq!(status_of(&timeline, a).await, (Failed, Failed));
}

#[tokio::test]
async fn a_receipt_changes_only_its_own_contacts_outgoing_message() {
    use DeliveryStatus::*;
    let timeline = timeline().await;
    let (bob, carol) = (contact("bob"), contact("carol"));
    let mut counters = Counters::default();
    append(
        &timeline,
        &mut counters,
        &bob,
        entry(Direction::Outgoing, 1, 10),
    )
    .await;
    append(
        &timeline,
        &mut counters,
        &carol,
        entry(Direction::Incoming, 1, 20),
    )
    .await;
    // Carol names bob's message id: nothing of bob's changes.
    assert!(!set_status(&timeline, &carol.account, 1, Read).await);
    assert_eq!(status_of(&timeline, &bob.account).await, (Pending, Pending));
    // And a receipt never touches an incoming message with that id.
    assert_eq!(
        status_of(&timeline, &carol.account).await,
        (Delivered, Delivered)
    );
}

#[tokio::test]
async fn unreported_entries_list_in_arrival_order_until_reported_or_read() {
    let timeline = timeline().await;
    let (bob, carol) = (contact("bob"), contact("carol"));
    let mut counters = Counters::default();
    append(
        &timeline,
        &mut counters,
        &bob,
        entry(Direction::Incoming, 1, 10),
    )
    .await;
    append(
        &timeline,
        &mut counters,
        &carol,
        entry(Direction::Incoming, 2, 20),
    )
    .await;
    append(
        &timeline,
        &mut counters,
        &bob,
        entry(Direction::Outgoing, 3, 30),
    )
    .await;
    append(
        &timeline,
        &mut counters,
        &bob,
        entry(Direction::Incoming, 4, 40),
    )
    .await;
    let ids = |found: &[Unreported]| found.iter().map(|u| u.entry.id.0[0]).collect::<Vec<_>>();
    let found = timeline.unreported().await.unwrap();
    assert_eq!(
        ids(&found),
        vec![1, 2, 4],
        "across conversations, by arrival"
    );
    assert_eq!(found[1].username, "carol");

    let carols = UnreportedMessage {
        from: "carol".into(),
        account_id: AccountId::from_bytes(carol.account),
        id: MessageId([2; 16]),
        body: String::new(),
        sent_at_ms: 0,
        received_at_ms: 0,
        file: None,
        reply_to: None,
    };
    let mut txn = Txn::new();
    timeline.mark_reported(&mut txn, &[carols]).await.unwrap();
    timeline.vault.commit(txn).await.unwrap();
    assert_eq!(ids(&timeline.unreported().await.unwrap()), vec![1, 4]);
    let summaries = timeline.summaries().await.unwrap();
    let carol_last = summaries
        .iter()
        .find(|c| c.account == carol.account)
        .unwrap();
    assert!(carol_last.last.as_ref().unwrap().reported);
    assert_eq!(carol_last.unread, 1, "reported is not read");

    let mut txn = Txn::new();
    let receipt = timeline.mark_read(&mut txn, &bob.account).await.unwrap();
    timeline.vault.commit(txn).await.unwrap();
    let to_send: Vec<u8> = receipt.iter().map(|id| id.0[0]).collect();
    assert_eq!(to_send, vec![1, 4], "only bob's incoming, unread ones");
    assert!(timeline.unreported().await.unwrap().is_empty());
    let summaries = timeline.summaries().await.unwrap();
    let bob_summary = summaries.iter().find(|c| c.account == bob.account).unwrap();
    assert_eq!(bob_summary.unread, 0);
    assert_eq!(bob_summary.last_activity_ms, 40);
    // Read again: no receipt for what was already read.
    let mut txn = Txn::new();
    assert!(timeline
        .mark_read(&mut txn, &bob.account)
        .await
        .unwrap()
        .is_empty());
}
