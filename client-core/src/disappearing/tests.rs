//! Disappearing messages between two clients over a real relay in this
//! process (docs/PROTOCOL.md §12.18): a timer one side sets is applied on
//! both, a message stored under it is gone from both stores (entry, index
//! slots, summary, expiry record) once the clocks pass its expiry and the
//! sweep runs, one sent with the timer off stays, and an older change
//! never replaces a newer one.

use std::time::Duration;

use umbra_protocol::wire::Username;

use super::{apply_change, timer_of};
use crate::conversation::Direction;
use crate::groups::tests::{register, relay};
use crate::outbound::tests_devices::another_device;
use crate::records::{self, Prefix};
use crate::store::Txn;
use crate::{Client, Error, Event, MessageId, PeerRef};

fn name(text: &str) -> Username {
    Username::parse(text).expect("name")
}

async fn receive(client: &Client) -> Vec<Event> {
    client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive")
}

async fn flush(client: &Client) {
    client
        .flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
}

async fn bodies(client: &Client, peer: &str) -> Vec<(Direction, String)> {
    let peer: PeerRef = peer.parse().expect("peer");
    client
        .history(&peer, 100)
        .await
        .expect("history")
        .into_iter()
        .map(|e| (e.direction, e.body))
        .collect()
}

/// Index slots naming `other`'s conversation, and expiry records, in
/// `client`'s store.
async fn leftovers(client: &Client, other: &Client) -> (usize, usize) {
    let account = *other.whoami().account_id.as_bytes();
    let vault = &client.inner.vault;
    let index = client.inner.timeline.index_slots_of(&account).await;
    let expiries = vault
        .load_all(&Prefix::<records::disappearing::Expiries>::all())
        .await
        .expect("expiries")
        .len();
    (index, expiries)
}

fn timer_events(events: &[Event]) -> Vec<(String, bool, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::DisappearingTimerChanged {
                with,
                by_peer,
                seconds,
            } => Some((with.clone(), *by_peer, *seconds)),
            _ => None,
        })
        .collect()
}

/// The first [`Event::MessagesExpired`] on `events` (the bound is only
/// there so a missing one fails rather than hangs).
async fn next_expired(
    events: &mut futures_util::stream::BoxStream<'static, Event>,
) -> (String, Vec<MessageId>) {
    use futures_util::StreamExt;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("an expiry event")
            .expect("the event stream");
        if let Event::MessagesExpired { with, ids } = event {
            return (with, ids);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_under_the_timer_is_deleted_on_both_sides_and_one_without_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    alice.send_text(&name("bob"), "hi").await.expect("send");
    flush(&alice).await;
    receive(&bob).await;

    alice
        .set_disappearing(&name("bob"), 3600)
        .await
        .expect("set");
    let bob_ref: PeerRef = "bob".parse().expect("peer");
    assert_eq!(
        alice.disappearing_timer(&bob_ref).await.expect("timer"),
        3600
    );
    let gone = alice.send_text(&name("bob"), "gone").await.expect("send");
    flush(&alice).await;
    let got = receive(&bob).await;
    assert_eq!(timer_events(&got), [("alice".to_owned(), true, 3600)]);
    let alice_ref: PeerRef = "alice".parse().expect("peer");
    assert_eq!(
        bob.disappearing_timer(&alice_ref).await.expect("timer"),
        3600
    );
    let also_gone = bob
        .send_text(&name("alice"), "also gone")
        .await
        .expect("send");
    flush(&bob).await;
    receive(&alice).await;

    // Before the hour nothing goes.
    assert_eq!(alice.sweep_expired().await.expect("sweep"), 0);
    assert_eq!(bodies(&bob, "alice").await.len(), 3);

    let mut alice_events = alice.events();
    for client in [&alice, &bob] {
        client.inner.clock.advance(Duration::from_secs(3601));
        assert_eq!(client.sweep_expired().await.expect("sweep"), 2);
    }
    // An open view is told which went, to drop them.
    let (with, mut ids) = next_expired(&mut alice_events).await;
    ids.sort_by_key(|id| id.0);
    let mut expected = vec![gone, also_gone];
    expected.sort_by_key(|id| id.0);
    assert_eq!((with.as_str(), ids), ("bob", expected));
    assert_eq!(
        bodies(&alice, "bob").await,
        [(Direction::Outgoing, "hi".to_owned())]
    );
    assert_eq!(
        bodies(&bob, "alice").await,
        [(Direction::Incoming, "hi".to_owned())]
    );
    // Only "hi"'s own index slot; no expiry record left; the summary is
    // "hi" again, not the deleted text.
    assert_eq!(leftovers(&alice, &bob).await, (1, 0));
    assert_eq!(leftovers(&bob, &alice).await, (1, 0));
    let listed = bob.conversations().await.expect("conversations");
    let last = listed[0].last_message.as_ref().expect("a last message");
    assert_eq!(last.body, "hi");

    // Off: what is sent now stays, however long.
    bob.set_disappearing(&name("alice"), 0).await.expect("off");
    bob.send_text(&name("alice"), "stays").await.expect("send");
    flush(&bob).await;
    let got = receive(&alice).await;
    assert_eq!(timer_events(&got), [("bob".to_owned(), true, 0)]);
    for client in [&alice, &bob] {
        client
            .inner
            .clock
            .advance(Duration::from_secs(30 * 24 * 3600));
        assert_eq!(client.sweep_expired().await.expect("sweep"), 0);
    }
    assert_eq!(bodies(&alice, "bob").await.len(), 2);
    assert_eq!(bodies(&bob, "alice").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_changes_the_later_wins_in_either_order_and_limits_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let vault = &alice.inner.vault;
    let account = [7u8; 16];
    let (early, late) = (MessageId([1; 16]), MessageId([2; 16]));
    let mut txn = Txn::new();
    assert!(apply_change(vault, &mut txn, &account, 60, 1000, late)
        .await
        .expect("apply"));
    vault.commit(txn).await.expect("commit");
    let mut txn = Txn::new();
    // Older by time, then same time with a smaller id: both lose.
    for (at, id) in [(999, late), (1000, early), (1000, late)] {
        assert!(!apply_change(vault, &mut txn, &account, 5, at, id)
            .await
            .expect("apply"));
    }
    assert_eq!(timer_of(vault, &account).await.expect("timer"), 60);
    assert!(apply_change(vault, &mut txn, &account, 0, 1001, early)
        .await
        .expect("apply"));
    vault.commit(txn).await.expect("commit");
    assert_eq!(timer_of(vault, &account).await.expect("timer"), 0);

    let max = umbra_protocol::consts::MAX_EXPIRATION_TIMER_SECS;
    let refused = alice.set_disappearing(&name("bob"), max + 1).await;
    assert!(
        matches!(refused, Err(Error::InvalidMessage(_))),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_set_on_one_device_is_applied_on_our_other_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let alice2 = another_device(&alice).await;
    alice
        .inner
        .add_own_device(alice2.inner.me().device)
        .await
        .expect("list {1,2}");
    // Bob is a contact on both of alice's devices.
    alice
        .send_text(&name("bob"), "from one")
        .await
        .expect("send");
    alice2
        .send_text(&name("bob"), "from two")
        .await
        .expect("send");
    flush(&alice).await;
    flush(&alice2).await;
    receive(&bob).await;
    receive(&alice).await;
    receive(&alice2).await;

    alice
        .set_disappearing(&name("bob"), 3600)
        .await
        .expect("timer");
    flush(&alice).await;
    let got = receive(&alice2).await;
    assert_eq!(
        timer_events(&got),
        [("bob".to_owned(), false, 3600)],
        "{got:?}"
    );
    let bob_ref: PeerRef = "bob".parse().expect("peer");
    assert_eq!(
        alice2.disappearing_timer(&bob_ref).await.expect("timer"),
        3600
    );
    // The contact is told as before, and is told once.
    let got = receive(&bob).await;
    assert_eq!(
        timer_events(&got),
        [("alice".to_owned(), true, 3600)],
        "{got:?}"
    );
}
