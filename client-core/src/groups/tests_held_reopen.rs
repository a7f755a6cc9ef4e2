//! Held items opening on the connection they were kept on
//! (docs/PROTOCOL.md §8.15 "Held for membership", §12.5): once the missed
//! Add is applied they open at once, whatever the kept-redelivery backoff
//! has grown to, from the envelopes the connection kept, with no
//! reconnect.

use std::time::Duration;

use crate::{ConnectionState, Event};

use super::tests::{receive, Team};
use super::tests_held::{dave_added_past_bob, key_refused, receive_until, texts};

/// A held item opens as soon as the missed Add is applied, on the
/// connection it was kept on: the client asks the relay for its deliveries
/// again at once (`KeptSignal::Openable`) instead of waiting out the
/// kept-redelivery backoff, which this test sets to an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_text_opens_when_the_add_comes_without_waiting_for_the_backoff() {
    let (team, _dave) = dave_added_past_bob().await;
    let Team {
        alice, bob, group, ..
    } = &team;
    bob.inner
        .set_kept_redelivery_first_wait(Duration::from_secs(60 * 60));
    // The wait is read by the next connection task.
    bob.shutdown().await;
    let events = receive_until(bob, |e| key_refused(e, true)).await;
    assert!(key_refused(&events, true), "held: {events:?}");
    bob.flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    receive(alice).await;
    alice
        .flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    // No shutdown: the Add's arrival alone brings the held key and text.
    let events = receive_until(bob, |e| !texts(e, group).is_empty()).await;
    assert_eq!(
        texts(&events, group),
        vec![("dave".to_owned(), "hi from dave".to_owned())],
        "{events:?}"
    );
    assert_eq!(bob.inner.groups.held.len(), 0, "released once opened");
}

/// Whether `events` show the connection going down and up again.
fn reconnected(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            Event::Connection(ConnectionState::Connecting | ConnectionState::Reconnecting { .. })
        )
    })
}

/// The held key and text open on the connection they were held on, from
/// the envelopes it kept (`connection/held_again.rs`), as soon as the
/// missed Add is applied: no reconnect, so nothing waits for the relay to
/// push them again; and each is acknowledged then (the relay's queue for
/// bob is empty without a reconnect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_text_opens_on_the_connection_it_was_held_on() {
    let (team, _dave) = dave_added_past_bob().await;
    let Team {
        alice,
        bob,
        group,
        relay,
        ..
    } = &team;
    // No reconnect for the kept deliveries' backoff during the test.
    bob.inner
        .set_kept_redelivery_first_wait(Duration::from_secs(60 * 60));
    bob.shutdown().await;
    let events = receive_until(bob, |e| key_refused(e, true)).await;
    assert!(key_refused(&events, true), "held: {events:?}");
    bob.flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    receive(alice).await;
    alice
        .flush_outbox(Duration::from_secs(30))
        .await
        .expect("flushed");
    let events = receive_until(bob, |e| !texts(e, group).is_empty()).await;
    assert_eq!(
        texts(&events, group),
        vec![("dave".to_owned(), "hi from dave".to_owned())],
        "{events:?}"
    );
    assert!(
        !reconnected(&events),
        "opened without a reconnect: {events:?}"
    );
    assert_eq!(bob.inner.groups.held.len(), 0, "released once opened");
    // Acknowledged on this connection: nothing of bob's is left queued.
    let address = bob.inner.me().address();
    let depth = || async { relay.state.store.queue_depth(address).await.expect("depth") };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while depth().await > 0 && tokio::time::Instant::now() < deadline {
        receive(bob).await;
    }
    assert_eq!(depth().await, 0, "acknowledged");
    let events = receive(bob).await;
    assert!(!reconnected(&events), "{events:?}");
}
