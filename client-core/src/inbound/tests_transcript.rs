//! Sent-message sync (docs/PROTOCOL.md §15.8) over a real relay in this
//! process: a transcript from a device our signed list lacks is refused,
//! one from a listed device of our account is stored in the conversation
//! with its destination as ours, with the original's id, and one from a
//! contact (another account) is refused and applies nothing.

use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::content::{self, Content};
use umbra_protocol::wire::{DeviceId, Username};

use crate::conversation::Direction;
use crate::groups::tests::{register, relay};
use crate::outbound::tests_devices::another_device;
use crate::{Client, DecryptFailure, Event, MessageId, PeerRef};

async fn receive(client: &Client) -> Vec<Event> {
    client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive")
}

async fn flush(client: &Client) {
    client
        .inner
        .flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
}

fn refusals(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::DecryptionFailed { reason, .. } => Some(reason.code().to_owned()),
            _ => None,
        })
        .collect()
}

/// The entries of `client`'s conversation with `peer`: (direction, body).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_is_applied_only_from_a_listed_device_of_our_own_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = register(&relay.url(), "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let bob_name = Username::parse("bob").expect("name");
    alice.send_text(&bob_name, "hello").await.expect("send");
    flush(&alice).await;
    receive(&bob).await;
    let bob_account = bob.inner.me().account;
    let text = |body: &str| Content::Text {
        id: MessageId::random(&mut OsRng),
        body: body.to_owned(),
        sent_at_ms: 1_795_000_000_000,
    };

    // Device 2 is enrolled at the relay but not in alice's signed list
    // (as a device the relay added would be): its transcript is refused.
    let alice2 = another_device(&alice).await;
    assert_eq!(alice2.inner.me().device, DeviceId(2));
    alice2
        .inner
        .sync_sent(*bob_account.as_bytes(), &text("unlisted"))
        .await;
    flush(&alice2).await;
    let got = receive(&alice).await;
    assert_eq!(refusals(&got), ["unlisted_device"], "{got:?}");
    assert_eq!(conversation(&alice, "bob").await.len(), 1);

    // Listed, the same device's transcript shows as ours, with its id.
    alice
        .inner
        .add_own_device(DeviceId(2))
        .await
        .expect("list {1,2}");
    let original = text("from the laptop");
    alice2
        .inner
        .sync_sent(*bob_account.as_bytes(), &original)
        .await;
    flush(&alice2).await;
    let got = receive(&alice).await;
    let Content::Text { id, .. } = original else {
        unreachable!()
    };
    assert!(
        matches!(&got[..], [Event::SentElsewhere { to, id: got_id, body, .. }]
            if to == "bob" && *got_id == id && body == "from the laptop"),
        "{got:?}"
    );
    assert_eq!(
        conversation(&alice, "bob").await,
        [
            (Direction::Outgoing, "hello".to_owned()),
            (Direction::Outgoing, "from the laptop".to_owned()),
        ]
    );
    let peer: PeerRef = "bob".parse().expect("peer");
    let synced = alice.history(&peer, 100).await.expect("history");
    let synced = synced.iter().find(|e| e.id == id).expect("the copy");
    // The laptop sent it; nothing on this device will settle it.
    assert_eq!(synced.status, crate::conversation::DeliveryStatus::Sent);

    // From a contact, another account: refused, nothing applied, even
    // naming a conversation alice has.
    let alice_contact = bob
        .inner
        .contact_by_account(alice.inner.me().account.as_bytes())
        .await
        .expect("store")
        .expect("a contact");
    let forged =
        content::sent_transcript(bob_account, &text("bob speaks for alice")).expect("transcript");
    bob.inner
        .send_control(&alice_contact, forged)
        .await
        .expect("queued");
    flush(&bob).await;
    let got = receive(&alice).await;
    assert_eq!(
        refusals(&got),
        ["transcript_not_from_own_account"],
        "{got:?}"
    );
    assert!(got.iter().any(|e| matches!(
        e,
        Event::DecryptionFailed {
            reason: DecryptFailure::TranscriptNotFromOwnAccount,
            ..
        }
    )));
    assert_eq!(conversation(&alice, "bob").await.len(), 2);
}
