//! Time-based retention against bob's engine with a clock moved forward:
//! a replaced signed prekey outlives a long absence, rotation waits for the
//! queue, unanswered sessions are due for a restart, archived sessions and
//! skipped message keys expire by age.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::consts::REPLACED_SIGNED_PREKEY_RETENTION;
use crate::sessions::SessionRecord;
use umbra_protocol::consts::{
    ARCHIVED_SESSION_MAX_AGE, MAX_UNACKNOWLEDGED_SESSION_AGE, SKIPPED_KEY_MAX_AGE,
};
use umbra_protocol::kem_prekeys::{KemPreKey, KemPreKeyKind};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

async fn prekey_state(bob: &Engine) -> PreKeyState {
    bob.prekeys.state().await.expect("prekey state")
}

async fn holds_signed(bob: &Engine, id: u32) -> bool {
    bob.prekeys.signed(id).await.expect("read").is_some()
}

async fn session_of(bob: &Engine, alice: &Alice) -> SessionRecord {
    bob.sessions
        .with(&alice.address(), &alice.identity.public())
        .await
        .expect("read")
        .expect("a session with alice")
}

#[tokio::test]
async fn a_prekey_message_queued_across_a_long_absence_opens_after_the_first_rotation() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    // Alice starts a session from bob's published key 1, then bob is away
    // for 20 days (more than the 14 after which the old rule deleted it).
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let queued = alice.seal(&mut session, "sent while you were away");
    bob.clock.advance(20 * DAY);
    assert!(bob.rotate_and_expire_signed_prekeys().await.unwrap());
    assert_eq!(prekey_state(&bob).await.current_signed_id, 2);
    assert!(holds_signed(&bob, 1).await, "replaced just now: kept");

    let processed = process(&bob, &queued, bob.clock.now_ms()).await.unwrap();
    assert_eq!(texts(&processed.events), vec!["sent while you were away"]);

    // Deleted once the retention after its *replacement* ran out.
    bob.clock.advance(REPLACED_SIGNED_PREKEY_RETENTION - DAY);
    bob.rotate_and_expire_signed_prekeys().await.unwrap();
    assert!(holds_signed(&bob, 1).await, "29 days after replacement");
    bob.clock.advance(DAY);
    bob.rotate_and_expire_signed_prekeys().await.unwrap();
    assert!(!holds_signed(&bob, 1).await, "30 days after replacement");
    let current = prekey_state(&bob).await.current_signed_id;
    assert!(holds_signed(&bob, current).await, "the current key stays");
}

#[tokio::test]
async fn rotation_waits_until_the_relay_drained_the_queue() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    bob.clock.advance(3 * DAY);
    assert!(!bob.caught_up.load(Ordering::SeqCst));
    assert!(!bob.rotate_signed_prekey_if_due().await.unwrap());
    assert_eq!(
        prekey_state(&bob).await.current_signed_id,
        1,
        "no rotation before QueueEmpty"
    );
    bob.caught_up.store(true, Ordering::SeqCst);
    // Now it rotates (publishing then fails: this engine has no relay).
    assert!(bob.rotate_signed_prekey_if_due().await.is_err());
    assert_eq!(prekey_state(&bob).await.current_signed_id, 2);
}

#[tokio::test]
async fn a_session_never_answered_for_thirty_days_is_due_for_a_restart() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let t0 = now_secs();
    let mut record = SessionRecord::new(alice.initiate(&bob, &bundle), t0);
    let max = MAX_UNACKNOWLEDGED_SESSION_AGE.as_secs();
    assert!(!record.unanswered_too_long(t0 + max - 1));
    assert!(record.unanswered_too_long(t0 + max));

    // Once bob answers, the session is complete and never "unanswered".
    let first = alice.seal(record.current_mut(), "hi");
    process(&bob, &first, now_ms()).await.unwrap();
    let receipt = newest_outgoing(&bob).await;
    let inbound = InboundEnvelope::open(&alice.identity, &receipt).unwrap();
    record
        .decrypt(&inbound, t0 + 1)
        .expect("alice reads the receipt");
    assert!(!record.unanswered_too_long(t0 + 10 * max));
}

#[tokio::test]
async fn a_send_over_a_session_unanswered_for_thirty_days_starts_a_new_one() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    // Bob started a session from alice's bundle; she never answered.
    let signed = SignedPreKey::generate(&alice.identity, 1, now_secs(), &mut OsRng);
    let bundle = PreKeyBundle {
        identity: alice.identity.public(),
        signed_prekey: signed.public(),
        one_time_prekey: None,
        last_resort: None,
        kem_one_time: None,
        kem_last_resort: Some(
            KemPreKey::generate(
                &alice.identity,
                KemPreKeyKind::LastResort,
                1,
                now_secs(),
                &mut OsRng,
            )
            .public(),
        ),
    }
    .verify_at(now_secs())
    .expect("alice's bundle verifies");
    let session = PairwiseSession::initiate(
        &bob.identity,
        &bob.me().address(),
        &bundle,
        &alice.address(),
        &mut OsRng,
    )
    .expect("bob initiates");
    let contact = bob
        .contact_by_account(alice.account.as_bytes())
        .await
        .unwrap()
        .expect("alice is a contact");
    let mut txn = Txn::new();
    let record = SessionRecord::new(session, bob.clock.now_secs());
    bob.sessions
        .save_for_contact(&mut txn, &contact, &record)
        .unwrap();
    bob.vault.commit(txn).await.unwrap();

    let name = Username::parse("alice").unwrap();
    let (_, _, _, started) = bob
        .session_for_sending(&name)
        .await
        .expect("a young unanswered session is still used");
    assert!(!started);
    bob.clock.advance(MAX_UNACKNOWLEDGED_SESSION_AGE);
    // Now a fresh bundle is needed, which this engine (no relay) cannot get:
    // the old session is not used again.
    match bob
        .session_for_sending(&name)
        .await
        .map(|(_, _, _, fresh)| fresh)
    {
        Err(crate::Error::Connection(_)) => {}
        other => panic!("expected a bundle fetch to be attempted, got {other:?}"),
    };
}

#[tokio::test]
async fn archived_sessions_expire_by_age() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let t0 = now_secs();
    let mut record = SessionRecord::new(alice.initiate(&bob, &bundle), t0);
    record.promote_new(alice.initiate(&bob, &bundle), t0);
    assert_eq!(record.archived_count(), 1);
    let max = ARCHIVED_SESSION_MAX_AGE.as_secs();
    record.expire(t0 + max - 1);
    assert_eq!(record.archived_count(), 1, "younger than the limit");
    record.expire(t0 + max);
    assert_eq!(record.archived_count(), 0, "archived 30 days ago: dropped");
}

#[tokio::test]
async fn skipped_message_keys_expire_by_age() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let late = alice.seal(&mut session, "one");
    let second = alice.seal(&mut session, "two");
    let events = process(&bob, &second, now_ms()).await.unwrap().events;
    assert_eq!(texts(&events), vec!["two"]);
    assert_eq!(
        session_of(&bob, &alice)
            .await
            .current()
            .ratchet()
            .skipped_key_count(),
        1,
        "the key of message one waits"
    );

    // Message one is still queued at the relay past its lifetime (it would
    // have expired there); bob's next decryption drops the waiting key.
    bob.clock.advance(SKIPPED_KEY_MAX_AGE);
    let third = alice.seal(&mut session, "three");
    let events = process(&bob, &third, bob.clock.now_ms())
        .await
        .unwrap()
        .events;
    assert_eq!(texts(&events), vec!["three"]);
    let record = session_of(&bob, &alice).await;
    assert_eq!(record.current().ratchet().skipped_key_count(), 0);
    let events = process(&bob, &late, bob.clock.now_ms())
        .await
        .unwrap()
        .events;
    assert!(texts(&events).is_empty(), "its key is gone: {events:?}");
}
