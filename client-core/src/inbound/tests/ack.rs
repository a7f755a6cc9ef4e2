//! Both sides of the acknowledgement rule: what can never be opened is
//! acknowledged at once; what failed for a reason that may be local is kept
//! (not acknowledged) until it opens, or until both give-up limits are
//! reached.

use std::time::Duration;

use super::*;
use crate::consts::{KEPT_DELIVERY_MAX_ATTEMPTS, KEPT_DELIVERY_MIN_AGE, SEEN_MARKER_LIFETIME};
use crate::inbound::keep::KeptRecord;
use crate::inbound::prune_markers;
use crate::Outcome;
use umbra_protocol::pairwise::PairwiseError;

/// Bob's bundle with a signed prekey (id 99) whose secret bob never stored.
async fn bundle_with_unknown_signed_prekey(bob: &Engine) -> (VerifiedPreKeyBundle, SignedPreKey) {
    let unknown = SignedPreKey::generate(&bob.identity, 99, now_secs(), &mut OsRng);
    let last_resort: OneTimePreKey = bob
        .prekeys
        .last_resort()
        .await
        .expect("read")
        .expect("last resort");
    let bundle = PreKeyBundle {
        identity: bob.identity.public(),
        signed_prekey: unknown.public(),
        one_time_prekey: None,
        last_resort: Some(last_resort.public()),
        kem_one_time: None,
        kem_last_resort: Some(kem_last_resort(bob).await),
    }
    .verify_at(now_secs())
    .expect("bundle verifies");
    (bundle, unknown)
}

async fn seen(bob: &Engine, envelope: &[u8]) -> bool {
    let markers = bob.markers.of(envelope);
    bob.markers.is_seen(&markers).await.expect("read")
}

async fn kept(bob: &Engine, envelope: &[u8]) -> Option<KeptRecord> {
    let markers = bob.markers.of(envelope);
    bob.markers.kept(&markers).await.expect("read")
}

fn failure(events: &[Event]) -> DecryptFailure {
    match events {
        [Event::DecryptionFailed { reason, .. }] => reason.clone(),
        other => panic!("expected one DecryptionFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_envelope_that_cannot_be_opened_is_acknowledged_at_once() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let forged = vec![0x5a; 300];
    let processed = process(&bob, &forged, now_ms()).await.unwrap();
    assert!(processed.ack, "a forged sealed layer never opens");
    let reason = failure(&processed.events);
    assert!(
        matches!(reason, DecryptFailure::Unopenable(_)),
        "{reason:?}"
    );
    assert_eq!(reason.outcome(), Outcome::Rejected);
    assert!(seen(&bob, &forged).await);
    assert_eq!(kept(&bob, &forged).await, None);
    // Its redelivery is dropped silently.
    let again = process(&bob, &forged, now_ms()).await.unwrap();
    assert!(again.ack && again.events.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_first_message_whose_claim_cannot_be_checked_now_is_kept() {
    let alice = Alice::new();
    // Bob does not know alice and has no relay connection: the directory
    // check cannot be made.
    let bob = bob_alone().await;
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let first = alice.seal(&mut session, "hello, first contact");
    let processed = process(&bob, &first, now_ms()).await.unwrap();
    assert!(
        !processed.ack,
        "a passing failure must not ack: {processed:?}"
    );
    let reason = failure(&processed.events);
    assert!(
        matches!(&reason, DecryptFailure::Kept { cause, attempt: 1 }
            if matches!(**cause, DecryptFailure::DirectoryUnavailable(_))),
        "{reason:?}"
    );
    assert_eq!(reason.outcome(), Outcome::Kept);
    assert!(!seen(&bob, &first).await, "not marked seen: it comes again");
    assert_eq!(kept(&bob, &first).await.map(|k| k.attempts), Some(1));
    assert!(
        bob.contact_by_account(alice.account.as_bytes())
            .await
            .unwrap()
            .is_none(),
        "nothing of the message was committed"
    );
    let again = process(&bob, &first, now_ms()).await.unwrap();
    assert!(!again.ack);
    assert_eq!(kept(&bob, &first).await.map(|k| k.attempts), Some(2));
}

#[tokio::test]
async fn an_envelope_for_an_unknown_prekey_is_kept_until_both_limits_are_reached() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let (bundle, _) = bundle_with_unknown_signed_prekey(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let envelope = alice.seal(&mut session, "for a key bob lost");
    // Many quick redeliveries (one outage, many reconnects) use up the
    // attempts but not the age: still kept.
    for attempt in 1..=KEPT_DELIVERY_MAX_ATTEMPTS + 2 {
        let processed = process(&bob, &envelope, now_ms()).await.unwrap();
        assert!(!processed.ack, "attempt {attempt} must keep it");
        let reason = failure(&processed.events);
        assert!(
            matches!(
                reason.cause(),
                DecryptFailure::SessionRefused(PairwiseError::UnknownPreKey { .. })
                    | DecryptFailure::NewSessionRefused(PairwiseError::UnknownPreKey { .. })
            ),
            "{reason:?}"
        );
        assert_eq!(reason.outcome(), Outcome::Kept);
        assert_eq!(
            kept(&bob, &envelope).await.map(|k| k.attempts),
            Some(attempt)
        );
    }
    // A day after the first failure, the next attempt gives it up.
    bob.clock.advance(KEPT_DELIVERY_MIN_AGE);
    let processed = process(&bob, &envelope, now_ms()).await.unwrap();
    assert!(processed.ack, "given up: acknowledged");
    let reason = failure(&processed.events);
    assert!(
        matches!(reason, DecryptFailure::Lost { attempts, .. } if attempts > KEPT_DELIVERY_MAX_ATTEMPTS),
        "{reason:?}"
    );
    assert_eq!(reason.outcome(), Outcome::Lost);
    assert!(seen(&bob, &envelope).await);
    assert_eq!(kept(&bob, &envelope).await, None);
}

#[tokio::test]
async fn age_alone_does_not_give_a_kept_envelope_up() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let (bundle, _) = bundle_with_unknown_signed_prekey(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let envelope = alice.seal(&mut session, "rarely online");
    assert!(!process(&bob, &envelope, now_ms()).await.unwrap().ack);
    // A user who connects once a week: old, but few attempts.
    bob.clock.advance(Duration::from_secs(7 * 24 * 60 * 60));
    let processed = process(&bob, &envelope, now_ms()).await.unwrap();
    assert!(!processed.ack, "two attempts are not enough to give up");
}

#[tokio::test]
async fn a_kept_envelope_that_opens_later_is_applied_and_its_record_deleted() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let (bundle, signed) = bundle_with_unknown_signed_prekey(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let envelope = alice.seal(&mut session, "late but whole");
    assert!(!process(&bob, &envelope, now_ms()).await.unwrap().ack);
    // The missing key turns up (e.g. a restored store).
    let mut txn = Txn::new();
    bob.prekeys.put_signed(&mut txn, &signed).unwrap();
    bob.vault.commit(txn).await.unwrap();
    let processed = process(&bob, &envelope, now_ms()).await.unwrap();
    assert!(processed.ack);
    assert_eq!(texts(&processed.events), vec!["late but whole"]);
    assert_eq!(kept(&bob, &envelope).await, None, "settled: no record left");
    assert!(seen(&bob, &envelope).await);
}

#[tokio::test]
async fn markers_are_pruned_once_the_relay_would_have_expired_their_envelopes() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let old = vec![1u8; 200];
    let recent = vec![2u8; 200];
    let received_long_ago = now_ms();
    assert!(process(&bob, &old, received_long_ago).await.unwrap().ack);
    let (bundle, _) = bundle_with_unknown_signed_prekey(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let stuck = alice.seal(&mut session, "kept");
    assert!(!process(&bob, &stuck, now_ms()).await.unwrap().ack);

    bob.clock
        .advance(SEEN_MARKER_LIFETIME + Duration::from_secs(60));
    assert!(
        process(&bob, &recent, bob.clock.now_ms())
            .await
            .unwrap()
            .ack
    );
    prune_markers(&bob).await.unwrap();
    assert!(!seen(&bob, &old).await, "older than the message lifetime");
    assert_eq!(kept(&bob, &stuck).await, None, "its envelope expired too");
    assert!(seen(&bob, &recent).await, "a recent marker stays");
}

#[tokio::test]
async fn a_relay_timestamp_cannot_age_a_seen_marker_out() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    // One envelope that is rejected (junk) and one that is applied (a
    // genuine first message): their markers are written by different paths.
    let junk = vec![3u8; 200];
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let genuine = alice.seal(&mut session, "hello");
    // A hostile relay says both were accepted at the epoch.
    for envelope in [&junk, &genuine] {
        assert!(process(&bob, envelope, 0).await.unwrap().ack);
    }
    prune_markers(&bob).await.unwrap();
    for envelope in [&junk, &genuine] {
        assert!(
            seen(&bob, envelope).await,
            "the marker is dated by our clock"
        );
    }
    // They go only once our own clock has passed the marker lifetime.
    bob.clock
        .advance(SEEN_MARKER_LIFETIME + Duration::from_secs(60));
    prune_markers(&bob).await.unwrap();
    for envelope in [&junk, &genuine] {
        assert!(!seen(&bob, envelope).await);
    }
}
