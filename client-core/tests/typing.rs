//! Typing notices against a real relay in this process: they travel as
//! ephemeral messages that use no ratchet message key, so any number of
//! notices the relay drops (the contact is offline) leaves the conversation
//! intact, and a notice to a connected contact arrives as `Event::Typing`.

use std::time::Duration;

use futures_util::StreamExt;
use umbra_client_core::{Client, Event};
use umbra_relay::config::Settings;

mod support;
use support::{name, register, TestRelay, WAIT};

/// A bound on each wait, so a broken client fails instead of hanging.
/// More dropped notices than MAX_SKIP (1000): had each used a message key,
/// the next stored message would be refused as too far ahead.
const DROPPED: usize = 1_200;

/// Receives until the relay's queue is empty; fails on any decryption failure.
async fn texts(client: &Client) -> Vec<String> {
    let events = client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DecryptionFailed { .. })),
        "{events:?}"
    );
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { body, .. } => Some(body),
            _ => None,
        })
        .collect()
}

async fn send(from: &Client, to: &str, text: &str) {
    from.send_text(&name(to), text).await.expect("send");
    from.flush_outbox(WAIT).await.expect("relay accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_typing_notices_never_break_the_conversation() {
    // The notices go out in one burst, far faster than anyone types; the
    // relay's ephemeral-frame rate limit (its own tests) is lifted here
    // because this test is about the ratchet, not the limit.
    let relay = TestRelay::start_with(Settings {
        ephemeral_per_minute: Some(1_000_000),
        ..Settings::default()
    })
    .await;
    let url = relay.url();
    let (alice, _) = register(&url, "alice").await;
    let (bob, _) = register(&url, "bob").await;
    send(&alice, "bob", "hi bob").await;
    assert_eq!(texts(&bob).await, ["hi bob"]);
    send(&bob, "alice", "hi alice").await;
    assert_eq!(texts(&alice).await, ["hi alice"]);

    // Bob goes offline; the relay drops every one of alice's notices.
    bob.shutdown().await;
    for i in 0..DROPPED {
        alice
            .send_typing(&name("bob"), i % 2 == 0)
            .await
            .expect("typing notice");
    }
    send(&alice, "bob", "after all that typing").await;
    assert_eq!(texts(&bob).await, ["after all that typing"]);
    send(&bob, "alice", "still here").await;
    assert_eq!(texts(&alice).await, ["still here"]);

    // A notice to a connected contact arrives, and the conversation
    // continues behind it.
    let mut alice_events = alice.events();
    bob.connect().await.expect("bob reconnects");
    bob.send_typing(&name("alice"), true)
        .await
        .expect("typing notice");
    let typing = tokio::time::timeout(WAIT, async {
        while let Some(event) = alice_events.next().await {
            if let Event::Typing { from, started } = event {
                return (from, started);
            }
        }
        panic!("event stream ended")
    })
    .await
    .expect("the typing notice arrives");
    assert_eq!(typing, ("bob".to_owned(), true));
    send(&bob, "alice", "done typing").await;
    assert_eq!(texts(&alice).await, ["done typing"]);
}
