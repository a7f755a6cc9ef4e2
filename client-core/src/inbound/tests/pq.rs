//! The responder's side of hybrid sessions (issue 14, docs/PROTOCOL.md
//! §12.5): a 0x05 pre-key message opens with the ML-KEM prekey it names and
//! deletes a one-time one with the session's first decryption; a classical
//! 0x01 pre-key message is refused by name and stores nothing.

use super::*;
use umbra_protocol::kem_prekeys::KemPreKeyKind;
use umbra_protocol::pairwise::{
    PairwiseError, PairwiseMessage, HYBRID_PREKEY_MESSAGE_TYPE, PREKEY_MESSAGE_TYPE,
};
use umbra_protocol::prekeys::KemPreKeyRef;
use umbra_protocol::sealed;

/// Bob's bundle with a fresh one-time ML-KEM prekey (committed) beside his
/// last-resort keys, and that key's id.
async fn one_time_kem_bundle(bob: &Engine) -> (VerifiedPreKeyBundle, u32) {
    let mut txn = Txn::new();
    let mut state = bob.prekeys.kem_state().await.expect("read").expect("state");
    let keys = bob
        .prekeys
        .add_kem_one_time(
            &mut txn,
            &mut state,
            &bob.identity,
            1,
            now_secs(),
            &mut OsRng,
        )
        .expect("one-time KEM prekey");
    bob.vault.commit(txn).await.expect("commit");
    let (signed, last_resort) = bob.prekeys.published().await.expect("read");
    let bundle = PreKeyBundle {
        identity: bob.identity.public(),
        signed_prekey: signed.public(),
        one_time_prekey: None,
        last_resort: last_resort.map(|k| k.public()),
        kem_one_time: Some(keys[0].public()),
        kem_last_resort: Some(kem_last_resort(bob).await),
    }
    .verify_at(now_secs())
    .expect("bundle verifies");
    (bundle, keys[0].id())
}

async fn holds_kem_one_time(bob: &Engine, id: u32) -> bool {
    bob.prekeys
        .kem_prekey(KemPreKeyKind::OneTime, id)
        .await
        .expect("read")
        .is_some()
}

#[tokio::test]
async fn a_hybrid_prekey_message_opens_and_uses_its_one_time_kem_prekey_once() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let (bundle, kem_id) = one_time_kem_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let first = alice.seal(&mut session, "post-quantum hello");

    // On the wire: a 0x05 pre-key message naming the one-time KEM prekey.
    let inbound = InboundEnvelope::open(&bob.identity, &first).expect("opens");
    let PairwiseMessage::PreKey(message) = inbound.message() else {
        panic!("a pre-key message: {:?}", inbound.message());
    };
    assert_eq!(message.type_byte(), HYBRID_PREKEY_MESSAGE_TYPE);
    assert_eq!(
        message.kem_prekey(),
        Some(KemPreKeyRef {
            kind: KemPreKeyKind::OneTime,
            id: kem_id
        })
    );

    assert!(holds_kem_one_time(&bob, kem_id).await);
    let events = process(&bob, &first, now_ms()).await.unwrap().events;
    assert_eq!(texts(&events), vec!["post-quantum hello"], "{events:?}");
    assert!(
        !holds_kem_one_time(&bob, kem_id).await,
        "the one-time KEM prekey is deleted with the session's first decryption"
    );
    // The last-resort KEM prekey is kept.
    assert!(bob
        .prekeys
        .kem_current_last_resort()
        .await
        .expect("read")
        .is_some());

    // A second message of the same run still opens (the session is stored),
    // and so would nothing made for the deleted key: a new run from it is
    // an unknown KEM prekey.
    let second = alice.seal(&mut session, "again");
    let events = process(&bob, &second, now_ms()).await.unwrap().events;
    assert_eq!(texts(&events), vec!["again"], "{events:?}");
    let mut other_run = alice.initiate(&bob, &bundle);
    let replay = alice.seal(&mut other_run, "same KEM key again");
    let processed = process(&bob, &replay, now_ms()).await.unwrap();
    assert!(
        texts(&processed.events).is_empty(),
        "{:?}",
        processed.events
    );
    assert!(
        processed.events.iter().any(|e| matches!(
            e,
            Event::DecryptionFailed { reason, .. }
                if matches!(
                    reason.cause(),
                    DecryptFailure::NewSessionRefused(PairwiseError::UnknownKemPreKey(_))
                )
        )),
        "{:?}",
        processed.events
    );
}

#[tokio::test]
async fn a_classical_prekey_message_is_refused_by_name_and_stores_nothing() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    // What an out-of-date client sends: a classical X3DH (0x01) pre-key
    // message. The classical initiator is not in the protocol crate's
    // ordinary API, so it is alice's hybrid message re-encoded without its
    // KEM part (a well-formed 0x01 message under a valid seal); it is
    // refused on its type, before any key agreement could fail it.
    let (signed, last_resort) = bob.prekeys.published().await.expect("read");
    let bundle = PreKeyBundle {
        identity: bob.identity.public(),
        signed_prekey: signed.public(),
        one_time_prekey: None,
        last_resort: last_resort.map(|k| k.public()),
        kem_one_time: None,
        kem_last_resort: Some(kem_last_resort(&bob).await),
    }
    .verify_at(now_secs())
    .expect("bundle verifies");
    let mut session = alice.initiate(&bob, &bundle);
    let hybrid = alice.seal(&mut session, "classical hello");
    let opened = InboundEnvelope::open(&bob.identity, &hybrid).expect("opens");
    let PairwiseMessage::PreKey(message) = opened.message() else {
        panic!("a pre-key message: {:?}", opened.message());
    };
    let mut classical = message.clone();
    classical.initial.kem = None;
    let inner = PairwiseMessage::PreKey(classical).to_bytes();
    assert_eq!(inner[0], PREKEY_MESSAGE_TYPE);
    let first = sealed::seal(
        &alice.identity,
        &alice.address(),
        &bob.identity.public(),
        &inner,
        &mut OsRng,
    )
    .expect("seals");
    let inbound = InboundEnvelope::open(&bob.identity, &first).expect("opens");
    assert!(matches!(inbound.message(), PairwiseMessage::PreKey(m) if m.kem_prekey().is_none()));

    let processed = process(&bob, &first, now_ms()).await.unwrap();
    assert!(
        texts(&processed.events).is_empty(),
        "{:?}",
        processed.events
    );
    let refused = processed.events.iter().find_map(|e| match e {
        Event::DecryptionFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    let reason = refused.expect("the refusal is an event, never silent");
    assert_eq!(reason, DecryptFailure::ClassicalPreKeyRefused);
    assert_eq!(reason.code(), "classical_prekey_refused");
    assert!(processed.ack, "refused for good: nothing to retry");
    let identity = alice.identity.public();
    let stored = bob
        .sessions
        .with(&alice.address(), &identity)
        .await
        .expect("read");
    assert!(stored.is_none(), "no classical session is stored");
}
