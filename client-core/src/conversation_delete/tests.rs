//! Deleting a conversation (docs/PROTOCOL.md §12.19) between clients over
//! a real relay in this process: for everyone it is erased on both sides
//! (entries, index slots, summary), a message already in flight when the
//! delete was made survives on both, and what comes afterwards shows; a
//! local delete touches nothing else; a transcript from our other device
//! erases it here.

use std::time::Duration;

use umbra_protocol::content::Content;
use umbra_protocol::wire::{DeviceId, Username};

use super::{ConversationDeletion, DeleteScope};
use crate::conversation::Direction;
use crate::groups::tests::{register, relay};
use crate::outbound::tests_devices::another_device;
use crate::records::{self, Prefix};
use crate::{Client, Error, Event, PeerRef, UnknownPeer};

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

fn name(text: &str) -> Username {
    Username::parse(text).expect("name")
}

/// `client`'s conversation with `peer`: (direction, body), oldest first.
async fn conversation(client: &Client, peer: &str) -> Vec<(Direction, String)> {
    let peer: PeerRef = peer.parse().expect("peer");
    client
        .history(&peer, 100)
        .await
        .expect("history")
        .into_iter()
        .map(|e| (e.direction, e.body))
        .collect()
}

/// What `client` stores of its conversation with `other`, beyond the
/// entries `history` shows: index slots naming it, and its summary.
async fn leftovers(client: &Client, other: &Client) -> (usize, bool) {
    let account = *other.whoami().account_id.as_bytes();
    let timeline = &client.inner.timeline;
    let index = timeline.index_slots_of(&account).await;
    let summary = timeline
        .summaries()
        .await
        .expect("summaries")
        .iter()
        .any(|conversation| conversation.account == account);
    (index, summary)
}

fn deleted(events: &[Event]) -> Vec<(String, bool, usize)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ConversationDeleted {
                with,
                by_peer,
                erased,
            } => Some((with.clone(), *by_peer, *erased)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_for_everyone_it_is_gone_on_both_sides_but_what_was_in_flight_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let one = alice.send_text(&name("bob"), "one").await.expect("send");
    flush(&alice).await;
    receive(&bob).await;
    bob.send_text(&name("alice"), "two").await.expect("send");
    // A reaction: its own index slot at alice points at "one".
    bob.react(&name("alice"), &one, "👍", false)
        .await
        .expect("react");
    flush(&bob).await;
    receive(&alice).await;
    // Bob goes offline, so the delete waits at the relay for him.
    bob.shutdown().await;

    let done = alice
        .delete_conversation(&name("bob"), DeleteScope::ForEveryone)
        .await
        .expect("delete");
    assert_eq!(done.erased, 2);
    assert!(done.sent.is_some());
    assert_eq!(conversation(&alice, "bob").await, []);
    assert_eq!(leftovers(&alice, &bob).await, (0, false));
    flush(&alice).await;

    // In flight: bob sends before he has processed the delete, alice gets
    // it after hers. Both must show it. (Sent while alice was live, before
    // her delete, it could reach her first: live clients process deliveries
    // as they arrive, so only this order is certain.)
    bob.send_text(&name("alice"), "in flight")
        .await
        .expect("send");
    flush(&bob).await;
    let got = receive(&bob).await;
    assert_eq!(deleted(&got), [("alice".to_owned(), true, 2)], "{got:?}");
    assert_eq!(
        conversation(&bob, "alice").await,
        [(Direction::Outgoing, "in flight".to_owned())]
    );
    // Only the kept message's own index slot; its summary is rebuilt.
    assert_eq!(leftovers(&bob, &alice).await, (1, true));
    let listed = bob.conversations().await.expect("conversations");
    assert_eq!(listed.len(), 1);

    receive(&alice).await;
    assert_eq!(
        conversation(&alice, "bob").await,
        [(Direction::Incoming, "in flight".to_owned())]
    );
    // The contact, its trust and sessions stay: the next message just works.
    alice.send_text(&name("bob"), "after").await.expect("send");
    flush(&alice).await;
    receive(&bob).await;
    assert_eq!(
        conversation(&bob, "alice").await,
        [
            (Direction::Outgoing, "in flight".to_owned()),
            (Direction::Incoming, "after".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_delete_sends_nothing_and_keeps_the_contact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    alice.send_text(&name("bob"), "one").await.expect("send");
    flush(&alice).await;
    receive(&bob).await;

    let done = alice
        .delete_conversation(&name("bob"), DeleteScope::Local)
        .await
        .expect("delete");
    assert_eq!(
        done,
        ConversationDeletion {
            erased: 1,
            sent: None
        }
    );
    assert!(alice.pending_outbox().await.expect("outbox").is_empty());
    assert_eq!(conversation(&alice, "bob").await, []);
    assert_eq!(leftovers(&alice, &bob).await, (0, false));
    assert_eq!(alice.contacts().await.expect("contacts").len(), 1);
    assert_eq!(
        conversation(&bob, "alice").await,
        [(Direction::Incoming, "one".to_owned())]
    );
    bob.send_text(&name("alice"), "still here")
        .await
        .expect("send");
    flush(&bob).await;
    let got = receive(&alice).await;
    assert!(deleted(&got).is_empty(), "{got:?}");
    assert_eq!(
        conversation(&alice, "bob").await,
        [(Direction::Incoming, "still here".to_owned())]
    );

    // No contact, nothing to delete.
    let unknown = alice
        .delete_conversation(&name("carol"), DeleteScope::Local)
        .await;
    assert!(
        matches!(
            unknown,
            Err(Error::UnknownUser {
                reason: UnknownPeer::NotAContact,
                ..
            })
        ),
        "{unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_other_devices_delete_for_everyone_erases_it_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    alice.send_text(&name("bob"), "one").await.expect("send");
    flush(&alice).await;
    receive(&bob).await;
    let alice2 = another_device(&alice).await;
    assert_eq!(alice2.inner.me().device, DeviceId(2));
    alice
        .inner
        .add_own_device(DeviceId(2))
        .await
        .expect("list {1,2}");
    let bob_account = *bob.whoami().account_id.as_bytes();
    alice2
        .inner
        .sync_sent(bob_account, &Content::DeleteConversation)
        .await;
    flush(&alice2).await;
    let got = receive(&alice).await;
    assert_eq!(deleted(&got), [("bob".to_owned(), false, 1)], "{got:?}");
    assert_eq!(conversation(&alice, "bob").await, []);
    assert_eq!(leftovers(&alice, &bob).await, (0, false));
    // Bob was told nothing by the transcript.
    assert_eq!(conversation(&bob, "alice").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disappearing_messages_expiry_goes_with_the_conversation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    alice.send_text(&name("bob"), "hello").await.expect("send");
    alice
        .set_disappearing(&name("bob"), 3600)
        .await
        .expect("timer");
    alice.send_text(&name("bob"), "fades").await.expect("send");
    let expiries = || async {
        let account = *bob.whoami().account_id.as_bytes();
        alice
            .inner
            .vault
            .load_all(&Prefix::<records::disappearing::Expiries>::all())
            .await
            .expect("expiries")
            .into_iter()
            .filter(|(_, e)| {
                matches!(e, crate::disappearing::StoredExpiry::V1 { account: of, .. } if *of == account)
            })
            .count()
    };
    assert!(expiries().await > 0);
    alice
        .delete_conversation(&name("bob"), DeleteScope::Local)
        .await
        .expect("delete");
    assert_eq!(expiries().await, 0);
}
