//! Privacy settings against a real relay in this process: they survive a
//! reopen of the store, read receipts off means `mark_read` sends none
//! (delivery receipts still flow), and typing off means no typing notice
//! leaves and none of others' is shown.

use futures_util::StreamExt;
use umbra_client_core::{Client, Event, Settings};

mod support;
use support::{config, name, peer, receive, register, TestRelay, WAIT};

async fn send(from: &Client, to: &str, text: &str) -> umbra_client_core::MessageId {
    let id = from.send_text(&name(to), text).await.expect("send");
    from.flush_outbox(WAIT).await.expect("relay accepted");
    id
}

/// The first event `pick` accepts on `events`, within [`WAIT`].
async fn first<T>(
    events: &mut futures_util::stream::BoxStream<'static, Event>,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if let Some(found) = pick(event) {
                return found;
            }
        }
        panic!("event stream ended")
    })
    .await
    .expect("the event arrives in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_default_on_and_survive_a_reopen() {
    let relay = TestRelay::start().await;
    let (alice, store) = register(&relay.url(), "alice").await;
    assert_eq!(
        alice.settings().await.expect("settings"),
        Settings::default()
    );
    assert_eq!(
        Settings::default(),
        Settings {
            read_receipts: true,
            typing: true
        }
    );
    let off = Settings {
        read_receipts: false,
        typing: false,
    };
    alice.set_settings(off).await.expect("set");
    alice.shutdown().await;
    drop(alice);
    let alice = Client::open(config(&relay.url(), &store), "pw-of-test")
        .await
        .expect("reopen");
    assert_eq!(alice.settings().await.expect("settings"), off);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_read_receipts_off_reading_sends_none_but_delivery_receipts_flow() {
    let relay = TestRelay::start().await;
    let url = relay.url();
    let (alice, _) = register(&url, "alice").await;
    let (bob, _) = register(&url, "bob").await;
    send(&bob, "alice", "hi alice").await;
    receive(&alice).await;
    let mut alice_events = alice.events();

    bob.set_settings(Settings {
        read_receipts: false,
        typing: true,
    })
    .await
    .expect("receipts off");
    let unread = send(&alice, "bob", "read me quietly").await;
    receive(&bob).await;
    // The delivery receipt still comes: it is about the device, not the reader.
    let delivered = first(&mut alice_events, |e| match e {
        Event::DeliveryReceipt { ids, .. } => Some(ids),
        _ => None,
    })
    .await;
    assert_eq!(delivered, [unread]);
    bob.mark_read(&peer("alice")).await.expect("mark read");
    bob.flush_outbox(WAIT).await.expect("flushed");

    // Receipts on again: the next read sends a receipt, and only for the
    // new message. Bob's outbox is in order, so a receipt for the first one
    // would have arrived before it.
    bob.set_settings(Settings::default()).await.expect("on");
    let read = send(&alice, "bob", "read me out loud").await;
    receive(&bob).await;
    bob.mark_read(&peer("alice")).await.expect("mark read");
    bob.flush_outbox(WAIT).await.expect("flushed");
    let receipted = first(&mut alice_events, |e| match e {
        Event::ReadReceipt { ids, .. } => Some(ids),
        _ => None,
    })
    .await;
    assert_eq!(receipted, [read], "no read receipt for {unread:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_typing_off_no_notice_is_sent_and_none_shown() {
    let relay = TestRelay::start().await;
    let url = relay.url();
    let (alice, _) = register(&url, "alice").await;
    let (bob, _) = register(&url, "bob").await;
    send(&alice, "bob", "hi bob").await;
    receive(&bob).await;
    send(&bob, "alice", "hi alice").await;
    receive(&alice).await;
    bob.connect().await.expect("bob online");
    alice.connect().await.expect("alice online");

    // Bob's typing is off: his "started" never leaves. Turned on, his
    // "stopped" does; the relay keeps the order of one connection, so the
    // first notice alice sees is the one sent while typing was on.
    let mut alice_events = alice.events();
    let off = Settings {
        read_receipts: true,
        typing: false,
    };
    bob.set_settings(off).await.expect("typing off");
    bob.send_typing(&name("alice"), true).await.expect("typing");
    bob.set_settings(Settings::default())
        .await
        .expect("typing on");
    bob.send_typing(&name("alice"), false)
        .await
        .expect("typing");
    let seen = first(&mut alice_events, |e| match e {
        Event::Typing { started, .. } => Some(started),
        _ => None,
    })
    .await;
    assert!(!seen, "a notice sent while typing was off arrived");

    // Alice's typing is off: bob's notice reaches her client but is not
    // shown; the message bob sends after it is.
    alice.set_settings(off).await.expect("typing off");
    bob.send_typing(&name("alice"), true).await.expect("typing");
    send(&bob, "alice", "after the notice").await;
    let shown = first(&mut alice_events, |e| match e {
        Event::Typing { .. } => Some(None),
        Event::Message { body, .. } => Some(Some(body)),
        _ => None,
    })
    .await;
    assert_eq!(shown.as_deref(), Some("after the notice"));
}
