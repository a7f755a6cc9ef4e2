//! Held items opening on the connection they were kept on
//! (docs/PROTOCOL.md §8.15 "Held for membership", §12.5): once the missed
//! Add is applied the client asks the relay for its deliveries again at
//! once, whatever the kept-redelivery backoff has grown to.

use std::time::Duration;

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
