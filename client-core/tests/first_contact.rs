//! The first-contact check against a real relay in this process: it reads
//! the directory without claiming any of the sender's one-time prekeys, and
//! a check that cannot be made right now (here: the receiver's lookup budget
//! is spent) keeps the message queued at the relay instead of dropping it,
//! so the next receive shows it — and a client that stays connected gets it
//! too, by reconnecting on its own.

use std::time::Duration;

use umbra_client_core::{Client, Error, Event, Outcome, UnknownPeer};
use umbra_protocol::wire::ErrorCode;
use umbra_relay::config::Settings;

mod support;
use support::{config, messages, name, peer, receive, register, TestRelay, WAIT};

/// Spends `client`'s `ResolveUsername` budget (lookups of names nobody has).
async fn spend_lookup_budget(client: &Client) {
    for attempt in 0..100 {
        match client
            .send_text(&name(&format!("nobody{attempt}")), "x")
            .await
        {
            Err(Error::UnknownUser {
                reason: UnknownPeer::NotOnRelay,
                ..
            }) => {}
            Err(Error::Relay {
                code: ErrorCode::RateLimited,
                ..
            }) => return,
            other => panic!("unexpected answer to a lookup: {other:?}"),
        }
    }
    panic!("the lookup budget never ran out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_claims_none_of_the_senders_prekeys() {
    let relay = TestRelay::start_with(Settings::default()).await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let before = relay.one_time_prekeys(&alice).await;
    assert!(before > 0, "alice published one-time prekeys");

    alice
        .send_text(&name("bob"), "hello bob")
        .await
        .expect("send");
    alice.flush_outbox(WAIT).await.expect("relay accepted");
    let events = receive(&bob).await;
    assert_eq!(
        messages(&events),
        vec![("alice".to_owned(), "hello bob".to_owned())],
        "{events:?}"
    );
    // Bob checked alice's claim with the directory, and answered with a
    // receipt over the session alice started: nothing of hers was claimed.
    assert_eq!(relay.one_time_prekeys(&alice).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_first_contact_check_keeps_the_message_for_the_next_receive() {
    // One lookup a minute: bob spends it, and his check of alice's first
    // message is then refused with RateLimited for the rest of the test.
    let settings = Settings {
        username_resolves_per_minute: Some(1),
        ..Settings::default()
    };
    let relay = TestRelay::start_with(settings).await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, bob_store) = register(&relay.url(), "bob").await;
    spend_lookup_budget(&bob).await;
    // Offline from here, so only an explicit receive fetches anything.
    bob.shutdown().await;

    alice
        .send_text(&name("bob"), "first contact")
        .await
        .expect("send");
    alice.flush_outbox(WAIT).await.expect("relay accepted");
    let events = receive(&bob).await;
    assert!(messages(&events).is_empty(), "not shown yet: {events:?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::DecryptionFailed { reason, .. } if reason.outcome() == Outcome::Kept
        )),
        "the failed check is reported and the message kept: {events:?}"
    );
    bob.shutdown().await;
    drop(bob);

    // The next receive (a fresh budget after the relay's restart) gets the
    // same envelope again: it was never acknowledged.
    let relay = relay.restart().await;
    let bob = Client::open(config(&relay.url(), &bob_store), "pw-of-test")
        .await
        .expect("reopen bob");
    let events = receive(&bob).await;
    assert_eq!(
        messages(&events),
        vec![("alice".to_owned(), "first contact".to_owned())],
        "{events:?}"
    );
    let history = bob.history(&peer("alice"), 10).await.expect("history");
    assert_eq!(history.len(), 1, "stored once: {history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_client_gets_a_kept_first_message_without_a_restart() {
    // Four lookups a minute: one more every 15 s once bob has spent them.
    let settings = Settings {
        username_resolves_per_minute: Some(4),
        ..Settings::default()
    };
    let relay = TestRelay::start_with(settings).await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let mut events = bob.events();
    spend_lookup_budget(&bob).await;

    alice
        .send_text(&name("bob"), "while you are online")
        .await
        .expect("send");
    alice.flush_outbox(WAIT).await.expect("relay accepted");
    // Bob stays connected: first the check fails and the message is kept,
    // then bob's client reconnects by itself until the relay's redelivery
    // passes the check.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while messages(&seen).is_empty() {
        use futures_util::StreamExt;
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) => seen.push(event),
            other => panic!("no message in time ({other:?}); saw {seen:?}"),
        }
    }
    assert_eq!(
        messages(&seen),
        vec![("alice".to_owned(), "while you are online".to_owned())]
    );
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::DecryptionFailed { reason, .. } if reason.outcome() == Outcome::Kept
        )),
        "the first attempt was kept: {seen:?}"
    );
    let history = bob.history(&peer("alice"), 10).await.expect("history");
    assert_eq!(history.len(), 1, "stored once: {history:?}");
}
