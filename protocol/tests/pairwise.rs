//! The pairwise session layer end to end: X3DH from a bundle, pre-key
//! messages until the first reply, sealed-sender wrapping, sender checks,
//! prekey lookups, padding, persistence.

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{
    InboundEnvelope, PairwiseError, PairwiseMessage, PairwiseSession, PreKeyStore, SessionPickle,
};
use umbra_protocol::prekeys::{KemPreKeyRef, OneTimePreKey, PreKeyBundle, PreKeyRef, SignedPreKey};
use umbra_protocol::ratchet::RatchetError;
use umbra_protocol::sealed;
use umbra_protocol::wire::{AccountId, Address};

struct Device {
    identity: IdentityKeyPair,
    address: Address,
    signed: SignedPreKey,
    one_time: HashMap<u32, OneTimePreKey>,
}

impl Device {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKey::generate(&identity, 5, 1_700_000_000, rng);
        let one_time = (1..=3)
            .map(|id| (id, OneTimePreKey::generate(id, rng)))
            .collect();
        Device {
            identity,
            address: Address::primary(AccountId::random(rng)),
            signed,
            one_time,
        }
    }

    /// What the relay would serve: one one-time prekey (lowest id left).
    fn bundle(&self) -> PreKeyBundle {
        let otk = self
            .one_time
            .keys()
            .min()
            .map(|id| self.one_time[id].public());
        PreKeyBundle {
            identity: self.identity.public(),
            signed_prekey: self.signed.public(),
            one_time_prekey: otk,
            last_resort: None,
            kem_one_time: None,
            kem_last_resort: None,
        }
    }
}

impl PreKeyStore for Device {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        (id == self.signed.id()).then(|| self.signed.secret().clone())
    }
    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        match prekey {
            PreKeyRef::OneTime(id) => self.one_time.get(&id).map(|k| k.secret().clone()),
            PreKeyRef::LastResort(_) => None,
        }
    }
    // A classical fixture: no ML-KEM prekeys, so a hybrid message is an
    // unknown KEM prekey.
    fn kem_prekey(&self, _: KemPreKeyRef) -> Option<KemPreKey> {
        None
    }
}

fn inner_kind(recipient: &IdentityKeyPair, envelope: &[u8]) -> u8 {
    sealed::open(recipient, envelope).unwrap().inner[0]
}

fn setup(seed: u64) -> (ChaCha20Rng, Device, Device) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice = Device::new(&mut rng);
    let bob = Device::new(&mut rng);
    (rng, alice, bob)
}

#[test]
fn conversation_switches_from_prekey_to_plain_after_the_first_reply() {
    let (mut rng, alice, mut bob) = setup(1);
    let bundle = bob.bundle().verify_classical().unwrap();
    let mut a = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    assert!(a.awaiting_reply());

    let e1 = a.seal_for(&alice.identity, b"hi bob", &mut rng).unwrap();
    let e2 = a.seal_for(&alice.identity, b"", &mut rng).unwrap();
    assert_eq!(inner_kind(&bob.identity, &e1), 0x01);
    assert_eq!(inner_kind(&bob.identity, &e2), 0x01);
    // The ratchet encrypts the padded content, never the bare one.
    let PairwiseMessage::PreKey(pre) = InboundEnvelope::open(&bob.identity, &e1)
        .unwrap()
        .message()
        .clone()
    else {
        panic!("pre-key message expected")
    };
    assert_eq!(
        pre.message.ciphertext.len(),
        umbra_protocol::padding::bucket_for(b"hi bob".len()).unwrap() + 16
    );

    // Bob gets the second one first: it too can create the session.
    let in2 = InboundEnvelope::open(&bob.identity, &e2).unwrap();
    assert!(in2.is_prekey_message());
    let (mut b, first, used) =
        PairwiseSession::accept_classical(&bob.identity, &bob.address, &in2, &bob).unwrap();
    assert_eq!(first, b"");
    assert_eq!(used, Some(PreKeyRef::OneTime(1)));
    bob.one_time.remove(&1);
    assert_eq!(b.remote_identity(), &alice.identity.public());
    let in1 = InboundEnvelope::open(&bob.identity, &e1).unwrap();
    assert_eq!(b.decrypt(&in1).unwrap(), b"hi bob");

    let reply = b.seal_for(&bob.identity, b"hi alice", &mut rng).unwrap();
    assert_eq!(inner_kind(&alice.identity, &reply), 0x02);
    let inbound = InboundEnvelope::open(&alice.identity, &reply).unwrap();
    assert_eq!(a.decrypt(&inbound).unwrap(), b"hi alice");
    assert!(!a.awaiting_reply());

    let e3 = a.seal_for(&alice.identity, &[9u8; 5000], &mut rng).unwrap();
    assert_eq!(inner_kind(&bob.identity, &e3), 0x02);
    let inbound = InboundEnvelope::open(&bob.identity, &e3).unwrap();
    assert_eq!(b.decrypt(&inbound).unwrap(), vec![9u8; 5000]);
}

#[test]
fn a_reforwarded_message_under_another_seal_is_a_sender_mismatch() {
    let (mut rng, alice, bob) = setup(2);
    let mallory = IdentityKeyPair::generate(&mut rng);
    let bundle = bob.bundle().verify_classical().unwrap();
    let mut a = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    let e1 = a.seal_for(&alice.identity, b"first", &mut rng).unwrap();
    let e2 = a.seal_for(&alice.identity, b"second", &mut rng).unwrap();

    // Mallory re-seals Alice's inner pre-key message under her own identity.
    let stolen = sealed::open(&bob.identity, &e1).unwrap().inner;
    let resealed = sealed::seal(
        &mallory,
        &alice.address,
        &bob.identity.public(),
        &stolen,
        &mut rng,
    )
    .unwrap();
    let inbound = InboundEnvelope::open(&bob.identity, &resealed).unwrap();
    assert!(matches!(
        PairwiseSession::accept_classical(&bob.identity, &bob.address, &inbound, &bob),
        Err(PairwiseError::SenderMismatch)
    ));

    let (mut b, first, _) = PairwiseSession::accept_classical(
        &bob.identity,
        &bob.address,
        &InboundEnvelope::open(&bob.identity, &e1).unwrap(),
        &bob,
    )
    .unwrap();
    assert_eq!(first, b"first");

    // Same trick on an established session.
    let stolen = sealed::open(&bob.identity, &e2).unwrap().inner;
    let resealed = sealed::seal(
        &mallory,
        &alice.address,
        &bob.identity.public(),
        &stolen,
        &mut rng,
    )
    .unwrap();
    let before = b.pickle().encode();
    let inbound = InboundEnvelope::open(&bob.identity, &resealed).unwrap();
    assert!(matches!(
        b.decrypt(&inbound),
        Err(PairwiseError::SenderMismatch)
    ));
    assert_eq!(b.pickle().encode(), before);
    let inbound = InboundEnvelope::open(&bob.identity, &e2).unwrap();
    assert_eq!(b.decrypt(&inbound).unwrap(), b"second");
}

#[test]
fn unknown_or_used_prekeys_are_named_in_the_error() {
    let (mut rng, alice, mut bob) = setup(3);
    let bundle = bob.bundle().verify_classical().unwrap();
    let mut a = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    let e1 = a.seal_for(&alice.identity, b"x", &mut rng).unwrap();
    bob.one_time.remove(&1); // already consumed by someone else's session
    let inbound = InboundEnvelope::open(&bob.identity, &e1).unwrap();
    match PairwiseSession::accept_classical(&bob.identity, &bob.address, &inbound, &bob) {
        Err(PairwiseError::UnknownPreKey {
            signed_prekey_id: 5,
            extra: Some(PreKeyRef::OneTime(1)),
        }) => {}
        other => panic!("expected UnknownPreKey, got {other:?}"),
    }
}

#[test]
fn a_new_x3dh_run_needs_a_new_session_and_replays_are_refused() {
    let (mut rng, alice, bob) = setup(4);
    let bundle = bob.bundle().verify_classical().unwrap();
    let mut a1 = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    let e1 = a1.seal_for(&alice.identity, b"run one", &mut rng).unwrap();
    let in1 = InboundEnvelope::open(&bob.identity, &e1).unwrap();
    let (mut b, _, _) =
        PairwiseSession::accept_classical(&bob.identity, &bob.address, &in1, &bob).unwrap();

    // The same pre-key message again: a replay on the existing session.
    assert!(matches!(
        b.decrypt(&in1),
        Err(PairwiseError::Ratchet(RatchetError::DuplicateMessage))
    ));

    // Alice lost her state and starts over.
    let mut a2 = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    let e2 = a2.seal_for(&alice.identity, b"run two", &mut rng).unwrap();
    let in2 = InboundEnvelope::open(&bob.identity, &e2).unwrap();
    assert!(matches!(b.decrypt(&in2), Err(PairwiseError::WrongSession)));
    let (_b2, first, _) =
        PairwiseSession::accept_classical(&bob.identity, &bob.address, &in2, &bob).unwrap();
    assert_eq!(first, b"run two");
}

#[test]
fn plain_messages_cannot_start_a_session_and_tampering_is_an_error() {
    let (mut rng, alice, bob) = setup(5);
    let bundle = bob.bundle().verify_classical().unwrap();
    let mut a = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    let e1 = a.seal_for(&alice.identity, b"hello", &mut rng).unwrap();
    let (mut b, _, _) = PairwiseSession::accept_classical(
        &bob.identity,
        &bob.address,
        &InboundEnvelope::open(&bob.identity, &e1).unwrap(),
        &bob,
    )
    .unwrap();
    let reply = b.seal_for(&bob.identity, b"r", &mut rng).unwrap();
    let inbound = InboundEnvelope::open(&alice.identity, &reply).unwrap();
    assert!(matches!(inbound.message(), PairwiseMessage::Plain(_)));
    assert!(matches!(
        PairwiseSession::accept_classical(&alice.identity, &alice.address, &inbound, &alice),
        Err(PairwiseError::WrongSession)
    ));

    let mut tampered = reply.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        InboundEnvelope::open(&alice.identity, &tampered),
        Err(PairwiseError::Sealed(_))
    ));
    assert_eq!(a.decrypt(&inbound).unwrap(), b"r");
}

#[test]
fn sessions_survive_serialization() {
    let (mut rng, alice, bob) = setup(6);
    let bundle = bob.bundle().verify_classical().unwrap();
    let a = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    let mut a = reload(&a);
    let e1 = a.seal_for(&alice.identity, b"persisted", &mut rng).unwrap();
    let (b, first, _) = PairwiseSession::accept_classical(
        &bob.identity,
        &bob.address,
        &InboundEnvelope::open(&bob.identity, &e1).unwrap(),
        &bob,
    )
    .unwrap();
    assert_eq!(first, b"persisted");
    let mut b = reload(&b);
    let reply = b.seal_for(&bob.identity, b"still here", &mut rng).unwrap();
    let inbound = InboundEnvelope::open(&alice.identity, &reply).unwrap();
    assert_eq!(a.decrypt(&inbound).unwrap(), b"still here");
    let shown = format!("{a:?}");
    assert!(!shown.contains(&hex::encode(a.ratchet().root_key().as_bytes())));
}

#[test]
fn the_type_byte_is_authenticated() {
    // A pre-key message's ratchet part re-wrapped as a plain message (even
    // sealed by the genuine sender) must not decrypt: the AEAD associated
    // data names the type byte and the ratchet version (PROTOCOL.md 4.4).
    let (mut rng, alice, bob) = setup(9);
    let bundle = bob.bundle().verify_classical().unwrap();
    let mut a = PairwiseSession::initiate_classical(
        &alice.identity,
        &alice.address,
        &bundle,
        &bob.address,
        &mut rng,
    )
    .unwrap();
    let e1 = a.seal_for(&alice.identity, b"first", &mut rng).unwrap();
    let e2 = a.seal_for(&alice.identity, b"second", &mut rng).unwrap();
    let in1 = InboundEnvelope::open(&bob.identity, &e1).unwrap();
    let (mut b, _, _) =
        PairwiseSession::accept_classical(&bob.identity, &bob.address, &in1, &bob).unwrap();

    let PairwiseMessage::PreKey(pre) = InboundEnvelope::open(&bob.identity, &e2)
        .unwrap()
        .message()
        .clone()
    else {
        panic!("pre-key message expected")
    };
    let relabelled = PairwiseMessage::Plain(pre.message).to_bytes();
    let resealed = sealed::seal(
        &alice.identity,
        &alice.address,
        &bob.identity.public(),
        &relabelled,
        &mut rng,
    )
    .unwrap();
    let inbound = InboundEnvelope::open(&bob.identity, &resealed).unwrap();
    assert!(matches!(
        b.decrypt(&inbound),
        Err(PairwiseError::Ratchet(RatchetError::DecryptionFailed))
    ));
    // The genuine message still decrypts: the failure changed nothing.
    let inbound = InboundEnvelope::open(&bob.identity, &e2).unwrap();
    assert_eq!(b.decrypt(&inbound).unwrap(), b"second");
}

/// Through the stored form and back, as a client store does.
fn reload(session: &PairwiseSession) -> PairwiseSession {
    let bytes = session.pickle().encode();
    PairwiseSession::from_pickle(&SessionPickle::decode(&bytes).unwrap()).unwrap()
}

#[test]
fn a_group_message_from_the_peer_is_never_decrypted_by_the_session() {
    use umbra_protocol::group::{GroupId, GroupSender};
    let (mut rng, alice, bob) = setup(21);
    let bundle = bob.bundle().verify_classical().unwrap();
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
    let (mut b, _, _) =
        PairwiseSession::accept_classical(&bob.identity, &bob.address, &inbound, &bob).unwrap();

    // The same peer seals a group message (inner type 0x04) to bob.
    let mut sender = GroupSender::generate(GroupId([1; 32]), 0, &mut rng);
    let message = sender.encrypt(b"to the group").unwrap();
    let envelope = message
        .seal_to(
            &alice.identity,
            &alice.address,
            &bob.identity.public(),
            &mut rng,
        )
        .unwrap();
    assert_eq!(inner_kind(&bob.identity, &envelope), 0x04);
    let inbound = InboundEnvelope::open(&bob.identity, &envelope).unwrap();
    assert_eq!(inbound.group_message(), Some(&message));
    assert!(matches!(inbound.message(), PairwiseMessage::Group(_)));
    assert!(matches!(b.decrypt(&inbound), Err(PairwiseError::WrongKind)));
    assert!(matches!(
        b.open_ephemeral(&inbound, 0),
        Err(PairwiseError::WrongKind)
    ));
    // The encoding round-trips, and the session is untouched.
    assert_eq!(inbound.message().to_bytes(), message.sealed_inner());
    let next = a
        .seal_for(&alice.identity, b"still fine", &mut rng)
        .unwrap();
    let inbound = InboundEnvelope::open(&bob.identity, &next).unwrap();
    assert_eq!(b.decrypt(&inbound).unwrap(), b"still fine");
}
