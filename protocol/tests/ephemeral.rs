//! Ephemeral (typing) messages end to end through the pairwise layer: any
//! number of them may be dropped without harming the conversation, and
//! receiving one — genuine, replayed, stale, tampered or from a foreign
//! epoch — never changes the receiver's session.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{
    InboundEnvelope, PairwiseError, PairwiseSession, PreKeyStore, EPHEMERAL_MAX_AGE_MS,
};
use umbra_protocol::prekeys::{KemPreKeyRef, PreKeyBundle, PreKeyRef, SignedPreKey};
use umbra_protocol::ratchet::RatchetError;
use umbra_protocol::wire::{AccountId, Address};

/// A fixed "now" for the receivers' clocks (no wall clock in these tests).
const NOW_MS: u64 = 1_800_000_000_000;

struct Device {
    identity: IdentityKeyPair,
    address: Address,
    signed: SignedPreKey,
}

impl Device {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKey::generate(&identity, 5, 1_700_000_000, rng);
        Device {
            identity,
            address: Address::primary(AccountId::random(rng)),
            signed,
        }
    }
}

impl PreKeyStore for Device {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        (id == self.signed.id()).then(|| self.signed.secret().clone())
    }
    fn extra_prekey(&self, _: PreKeyRef) -> Option<SecretKey> {
        None
    }
    // A classical fixture: no ML-KEM prekeys, so a hybrid message is an
    // unknown KEM prekey.
    fn kem_prekey(&self, _: KemPreKeyRef) -> Option<KemPreKey> {
        None
    }
}

/// Alice and Bob with a session each: Bob has accepted Alice's first message.
fn pair(
    seed: u64,
) -> (
    ChaCha20Rng,
    Device,
    Device,
    PairwiseSession,
    PairwiseSession,
) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice = Device::new(&mut rng);
    let bob = Device::new(&mut rng);
    let bundle = PreKeyBundle {
        identity: bob.identity.public(),
        signed_prekey: bob.signed.public(),
        one_time_prekey: None,
        last_resort: None,
        kem_one_time: None,
        kem_last_resort: None,
    }
    .verify_classical()
    .unwrap();
    let mut a = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    let first = a.seal_for(&alice.identity, b"hello", &mut rng).unwrap();
    let inbound = InboundEnvelope::open(&bob.identity, &first).unwrap();
    let (b, plain, _) =
        PairwiseSession::accept_classical(&bob.identity, &bob.address, &inbound, &bob).unwrap();
    assert_eq!(plain, b"hello");
    (rng, alice, bob, a, b)
}

fn state(session: &PairwiseSession) -> Vec<u8> {
    session.pickle().encode().to_vec()
}

/// Sends one stored message and checks it arrives.
fn exchange(
    rng: &mut ChaCha20Rng,
    from: &Device,
    from_session: &mut PairwiseSession,
    to: &Device,
    to_session: &mut PairwiseSession,
    text: &[u8],
) {
    let envelope = from_session.seal_for(&from.identity, text, rng).unwrap();
    let inbound = InboundEnvelope::open(&to.identity, &envelope).unwrap();
    assert_eq!(to_session.decrypt(&inbound).unwrap(), text);
}

fn open_typing(
    to: &Device,
    session: &PairwiseSession,
    envelope: &[u8],
    now_ms: u64,
) -> Result<Vec<u8>, PairwiseError> {
    let before = state(session);
    let inbound = InboundEnvelope::open(&to.identity, envelope).unwrap();
    let result = session.open_ephemeral(&inbound, now_ms);
    assert_eq!(
        state(session),
        before,
        "opening an ephemeral message changed the session"
    );
    result
}

#[test]
fn ten_thousand_dropped_typing_notices_break_nothing() {
    let (mut rng, alice, bob, mut a, mut b) = pair(1);
    for round in 0..2u8 {
        // Each side types 10,000 times while the other is offline: the relay
        // drops every notice.
        for _ in 0..10_000 {
            a.seal_ephemeral(&alice.identity, b"typing", NOW_MS, &mut rng)
                .unwrap();
        }
        for _ in 0..10_000 {
            b.seal_ephemeral(&bob.identity, b"typing", NOW_MS, &mut rng)
                .unwrap();
        }
        // Stored messages still flow both ways, across DH ratchet steps.
        exchange(&mut rng, &alice, &mut a, &bob, &mut b, &[b'a', round]);
        exchange(&mut rng, &bob, &mut b, &alice, &mut a, &[b'b', round]);
        exchange(&mut rng, &bob, &mut b, &alice, &mut a, &[b'c', round]);
    }
    assert_eq!(
        a.ratchet().skipped_key_count(),
        0,
        "no message key was skipped"
    );
    assert_eq!(
        b.ratchet().skipped_key_count(),
        0,
        "no message key was skipped"
    );
}

#[test]
fn a_delivered_notice_opens_in_every_epoch_without_changing_the_receiver() {
    let (mut rng, alice, bob, mut a, mut b) = pair(2);
    // Bob types before his first reply: he takes his sending step for it,
    // and Alice derives that epoch tentatively.
    let notice = b
        .seal_ephemeral(&bob.identity, b"bob typing", NOW_MS, &mut rng)
        .unwrap();
    assert_eq!(
        open_typing(&alice, &a, &notice, NOW_MS).unwrap(),
        b"bob typing"
    );
    // Alice's current epoch, known to Bob from her first message.
    let notice = a
        .seal_ephemeral(&alice.identity, b"alice typing", NOW_MS, &mut rng)
        .unwrap();
    assert_eq!(
        open_typing(&bob, &b, &notice, NOW_MS).unwrap(),
        b"alice typing"
    );
    // The reply after Bob's notice uses the epoch the notice named.
    exchange(&mut rng, &bob, &mut b, &alice, &mut a, b"reply");
    let notice = b
        .seal_ephemeral(&bob.identity, b"again", NOW_MS, &mut rng)
        .unwrap();
    assert_eq!(open_typing(&alice, &a, &notice, NOW_MS).unwrap(), b"again");
    // A notice of the epoch before still opens after one more turn.
    exchange(&mut rng, &alice, &mut a, &bob, &mut b, b"turn");
    assert_eq!(open_typing(&alice, &a, &notice, NOW_MS).unwrap(), b"again");
}

#[test]
fn stale_replayed_tampered_and_foreign_notices_are_refused_without_state_change() {
    let (mut rng, alice, bob, mut a, b) = pair(3);
    let notice = a
        .seal_ephemeral(&alice.identity, b"typing", NOW_MS, &mut rng)
        .unwrap();
    // A replay inside the freshness window is accepted again (it changes
    // nothing); outside it, in either direction, it is refused.
    assert!(open_typing(&bob, &b, &notice, NOW_MS + EPHEMERAL_MAX_AGE_MS).is_ok());
    for now in [
        NOW_MS + EPHEMERAL_MAX_AGE_MS + 1,
        NOW_MS - EPHEMERAL_MAX_AGE_MS - 1,
    ] {
        assert!(matches!(
            open_typing(&bob, &b, &notice, now),
            Err(PairwiseError::StaleEphemeral { .. })
        ));
    }

    // A notice of another session between the same two devices (another
    // X3DH run) names an epoch this session does not have.
    let bundle = PreKeyBundle {
        identity: bob.identity.public(),
        signed_prekey: bob.signed.public(),
        one_time_prekey: None,
        last_resort: None,
        kem_one_time: None,
        kem_last_resort: None,
    }
    .verify_classical()
    .unwrap();
    let mut other = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    let foreign = other
        .seal_ephemeral(&alice.identity, b"typing", NOW_MS, &mut rng)
        .unwrap();
    assert!(matches!(
        open_typing(&bob, &b, &foreign, NOW_MS),
        Err(PairwiseError::Ratchet(RatchetError::DecryptionFailed))
    ));

    // Any flipped ciphertext byte fails authentication (the envelope is
    // rebuilt around the tampered inner message, sealed by Alice).
    let inbound = InboundEnvelope::open(&bob.identity, &notice).unwrap();
    let umbra_protocol::pairwise::PairwiseMessage::Ephemeral(mut message) =
        inbound.message().clone()
    else {
        panic!("an ephemeral message")
    };
    let last = message.ciphertext.len() - 1;
    message.ciphertext[last] ^= 0x01;
    let inner = umbra_protocol::pairwise::PairwiseMessage::Ephemeral(message).to_bytes();
    let tampered = umbra_protocol::sealed::seal(
        &alice.identity,
        &alice.address,
        &bob.identity.public(),
        &inner,
        &mut rng,
    )
    .unwrap();
    assert!(matches!(
        open_typing(&bob, &b, &tampered, NOW_MS),
        Err(PairwiseError::Ratchet(RatchetError::DecryptionFailed))
    ));

    // An ephemeral message is not a stored message, and the reverse.
    let mut b2 = b.clone();
    let inbound = InboundEnvelope::open(&bob.identity, &notice).unwrap();
    assert!(matches!(
        b2.decrypt(&inbound),
        Err(PairwiseError::WrongKind)
    ));
    assert_eq!(state(&b2), state(&b));
    let stored = a.seal_for(&alice.identity, b"stored", &mut rng).unwrap();
    assert!(matches!(
        open_typing(&bob, &b, &stored, NOW_MS),
        Err(PairwiseError::WrongKind)
    ));
}

#[test]
fn notices_of_long_gone_epochs_are_unknown() {
    let (mut rng, alice, bob, mut a, mut b) = pair(5);
    let old = a
        .seal_ephemeral(&alice.identity, b"typing", NOW_MS, &mut rng)
        .unwrap();
    // Enough turns that Bob no longer keeps Alice's first epoch.
    for _ in 0..6 {
        exchange(&mut rng, &bob, &mut b, &alice, &mut a, b"b");
        exchange(&mut rng, &alice, &mut a, &bob, &mut b, b"a");
    }
    assert!(matches!(
        open_typing(&bob, &b, &old, NOW_MS),
        Err(PairwiseError::Ratchet(RatchetError::UnknownEpoch))
    ));
}
