//! The hybrid handshake (PQXDH, docs/PROTOCOL.md 3.9, 3.10, 4.11 type
//! `0x05`) through the public API: sessions started from bundles with a
//! one-time or only a last-resort ML-KEM prekey, the downgrade refusals (a
//! bundle whose KEM prekeys a relay stripped; a classical `0x01` pre-key
//! message at the responder), KEM prekeys of another identity or served as
//! the other kind, a tampered KEM ciphertext, the KEM secret's part in the
//! root key, persistence of a pending hybrid header, the codec's refusals,
//! and a sibling device's prekeys served in a bundle (PROTOCOL 3.11).

mod attack_kit;

use attack_kit::*;
use rand::rngs::OsRng;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem::{KemKeyPair, KEM_CIPHERTEXT_LEN};
use umbra_protocol::kem_prekeys::{KemPreKey, KemPreKeyKind};
use umbra_protocol::pairwise::{
    InboundEnvelope, PairwiseError, PairwiseMessage, PairwiseSession, PreKeyStore,
    HYBRID_PREKEY_MESSAGE_TYPE, PREKEY_MESSAGE_TYPE,
};
use umbra_protocol::prekeys::{
    KemPreKeyRef, OneTimePreKey, PreKeyBundle, PreKeyError, PreKeyRef, SignedPreKey,
};
use umbra_protocol::ratchet::RatchetError;
use umbra_protocol::sealed;
use umbra_protocol::wire::{Address, DeviceId, HybridBundleWire, PreKeyBundleWire};
use umbra_protocol::x3dh::{initiate_hybrid, respond_hybrid, X3dhError};

fn kem_ref(kind: KemPreKeyKind, id: u32) -> KemPreKeyRef {
    KemPreKeyRef { kind, id }
}

/// What a relay serves for Bob (FetchHybridBundle), as the wire type.
fn served(b: &Bob, kem_one_time: bool) -> HybridBundleWire {
    let bundle = bundle_of(b);
    HybridBundleWire {
        bundle: PreKeyBundleWire {
            account: BOB_ADDR.account,
            device: BOB_ADDR.device,
            identity: bundle.identity.to_bytes().to_vec(),
            signed_prekey: (&bundle.signed_prekey).into(),
            one_time_prekey: bundle.one_time_prekey.map(Into::into),
            last_resort: None,
        },
        kem_one_time: kem_one_time.then(|| b.kem_one_time.public().to_wire()),
        kem_last_resort: Some(b.kem_last_resort.public().to_wire()),
    }
}

fn start(alice: &IdentityKeyPair, wire: &HybridBundleWire) -> PairwiseSession {
    let bundle = PreKeyBundle::try_from(wire).unwrap().verify().unwrap();
    PairwiseSession::initiate(alice, &ALICE_ADDR, &bundle, &BOB_ADDR, &mut OsRng).unwrap()
}

fn inner(b: &Bob, envelope: &[u8]) -> Vec<u8> {
    sealed::open(&b.identity, envelope).unwrap().inner
}

#[test]
fn a_hybrid_session_with_a_one_time_and_with_a_last_resort_kem_prekey() {
    for (one_time, expected) in [
        (true, kem_ref(KemPreKeyKind::OneTime, 7)),
        (false, kem_ref(KemPreKeyKind::LastResort, 8)),
    ] {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let b = bob();
        let mut a = start(&alice, &served(&b, one_time));
        let e1 = a.seal_for(&alice, b"hi bob", &mut OsRng).unwrap();
        let e2 = a.seal_for(&alice, b"again", &mut OsRng).unwrap();
        assert_eq!(inner(&b, &e1)[0], HYBRID_PREKEY_MESSAGE_TYPE);

        let in1 = InboundEnvelope::open(&b.identity, &e1).unwrap();
        assert!(in1.is_prekey_message());
        let PairwiseMessage::PreKey(pre) = in1.message() else {
            panic!("a pre-key message")
        };
        assert_eq!(pre.kem_prekey(), Some(expected));
        assert_eq!(pre.type_byte(), HYBRID_PREKEY_MESSAGE_TYPE);
        assert_eq!(pre.initial.extra_prekey, Some(PreKeyRef::OneTime(5)));

        let (mut s, first, used) =
            PairwiseSession::accept(&b.identity, &BOB_ADDR, &in1, &b).unwrap();
        assert_eq!(first, b"hi bob");
        assert_eq!(used, Some(PreKeyRef::OneTime(5)));
        // The second pre-key message of the same run decrypts in the session.
        let in2 = InboundEnvelope::open(&b.identity, &e2).unwrap();
        assert_eq!(s.decrypt(&in2).unwrap(), b"again");

        let reply = s.seal_for(&b.identity, b"hi alice", &mut OsRng).unwrap();
        let at_alice = InboundEnvelope::open(&alice, &reply).unwrap();
        assert_eq!(a.decrypt(&at_alice).unwrap(), b"hi alice");
        assert!(!a.awaiting_reply());
        let e3 = a.seal_for(&alice, b"plain now", &mut OsRng).unwrap();
        assert_eq!(inner(&b, &e3)[0], 0x02);
        let in3 = InboundEnvelope::open(&b.identity, &e3).unwrap();
        assert_eq!(s.decrypt(&in3).unwrap(), b"plain now");
    }
}

/// The downgrade refusal (PROTOCOL 1.4, 3.9): a relay that strips the KEM
/// prekeys from a bundle gets no session at all, not a classical one.
#[test]
fn a_bundle_whose_kem_prekeys_a_relay_stripped_is_refused() {
    let b = bob();
    let mut stripped = served(&b, true);
    stripped.kem_one_time = None;
    stripped.kem_last_resort = None;
    let bundle = PreKeyBundle::try_from(&stripped).unwrap();
    assert_eq!(bundle.clone().verify(), Err(PreKeyError::NoKemPreKey));
    assert_eq!(bundle.clone().verify_at(60), Err(PreKeyError::NoKemPreKey));
    // The same holds for a classical bundle served by an old relay.
    let classical = PreKeyBundle::try_from(&stripped.bundle).unwrap();
    assert_eq!(classical.verify(), Err(PreKeyError::NoKemPreKey));
    // Even given a classical bundle (low-level-api's verify_classical), the
    // initiator refuses: `initiate` is always hybrid.
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let phase1 = bundle.verify_classical().unwrap();
    assert_eq!(
        PairwiseSession::initiate_hybrid(&alice, &ALICE_ADDR, &phase1, &BOB_ADDR, &mut OsRng)
            .unwrap_err(),
        PairwiseError::X3dh(X3dhError::NoKemPreKey)
    );
    assert_eq!(
        PairwiseSession::initiate(&alice, &ALICE_ADDR, &phase1, &BOB_ADDR, &mut OsRng).unwrap_err(),
        PairwiseError::X3dh(X3dhError::NoKemPreKey)
    );
}

/// The responder's downgrade refusal (PROTOCOL 1.4, 12.5): a genuine
/// classical (`0x01`) pre-key message, from an initiator that verified a
/// bundle without KEM prekeys, gets no session from `accept`, and not one
/// prekey lookup; only `accept_classical` (low-level-api, for the vectors)
/// still answers it.
#[test]
fn a_classical_prekey_message_is_refused_by_accept_and_opens_only_classically() {
    /// Bob's prekeys, counting every lookup.
    struct Counting<'a>(&'a Bob, std::cell::Cell<u32>);
    impl PreKeyStore for Counting<'_> {
        fn signed_prekey(&self, id: u32) -> Option<umbra_protocol::keys::SecretKey> {
            self.1.set(self.1.get() + 1);
            self.0.signed_prekey(id)
        }
        fn extra_prekey(&self, r: PreKeyRef) -> Option<umbra_protocol::keys::SecretKey> {
            self.1.set(self.1.get() + 1);
            self.0.extra_prekey(r)
        }
        fn kem_prekey(&self, r: KemPreKeyRef) -> Option<KemPreKey> {
            self.1.set(self.1.get() + 1);
            self.0.kem_prekey(r)
        }
    }
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let mut stripped = served(&b, true);
    stripped.kem_one_time = None;
    stripped.kem_last_resort = None;
    let bundle = PreKeyBundle::try_from(&stripped)
        .unwrap()
        .verify_classical()
        .unwrap();
    let mut a =
        PairwiseSession::initiate_classical(&alice, &ALICE_ADDR, &bundle, &BOB_ADDR, &mut OsRng)
            .unwrap();
    let envelope = a.seal_for(&alice, b"classical hello", &mut OsRng).unwrap();
    assert_eq!(inner(&b, &envelope)[0], PREKEY_MESSAGE_TYPE);
    let inbound = InboundEnvelope::open(&b.identity, &envelope).unwrap();
    assert!(inbound.is_prekey_message());

    let store = Counting(&b, std::cell::Cell::new(0));
    let refused = PairwiseSession::accept(&b.identity, &BOB_ADDR, &inbound, &store).unwrap_err();
    assert_eq!(refused, PairwiseError::ClassicalPreKeyRefused);
    assert!(refused.to_string().contains("0x01"), "{refused}");
    assert_eq!(store.1.get(), 0, "refused before any prekey lookup");

    // The same message still opens through the classical responder.
    let (mut s, first, used) =
        PairwiseSession::accept_classical(&b.identity, &BOB_ADDR, &inbound, &store).unwrap();
    assert_eq!(first, b"classical hello");
    assert_eq!(used, Some(PreKeyRef::OneTime(5)));
    let reply = s.seal_for(&b.identity, b"hi alice", &mut OsRng).unwrap();
    let at_alice = InboundEnvelope::open(&alice, &reply).unwrap();
    assert_eq!(a.decrypt(&at_alice).unwrap(), b"hi alice");
}

#[test]
fn a_kem_prekey_of_another_identity_is_refused() {
    let b = bob();
    let mallory = IdentityKeyPair::generate(&mut OsRng);
    let theirs = KemPreKey::generate(&mallory, KemPreKeyKind::OneTime, 7, 0, &mut OsRng);
    let mut wire = served(&b, true);
    wire.kem_one_time = Some(theirs.public().to_wire());
    assert_eq!(
        PreKeyBundle::try_from(&wire).unwrap().verify(),
        Err(PreKeyError::BadKemPreKeySignature)
    );
    // A relay that re-signs nothing can only substitute a key: a bit of the
    // genuine key flipped breaks the signature.
    let mut wire = served(&b, false);
    wire.kem_last_resort.as_mut().unwrap().key[500] ^= 0x10;
    assert_eq!(
        PreKeyBundle::try_from(&wire).unwrap().verify(),
        Err(PreKeyError::BadKemPreKeySignature)
    );
}

/// A one-time KEM prekey served in the last-resort place (so the initiator
/// would name it as a key the owner keeps), and the reverse.
#[test]
fn a_kem_prekey_served_as_the_other_kind_is_refused() {
    let b = bob();
    let mut one_time_as_last_resort = served(&b, false);
    one_time_as_last_resort.kem_last_resort = Some(b.kem_one_time.public().to_wire());
    assert_eq!(
        PreKeyBundle::try_from(&one_time_as_last_resort)
            .unwrap()
            .verify(),
        Err(PreKeyError::BadKemPreKeySignature)
    );
    let mut last_resort_as_one_time = served(&b, false);
    last_resort_as_one_time.kem_one_time = Some(b.kem_last_resort.public().to_wire());
    assert_eq!(
        PreKeyBundle::try_from(&last_resort_as_one_time)
            .unwrap()
            .verify(),
        Err(PreKeyError::BadKemPreKeySignature)
    );
}

/// Re-seals `inner` as Alice (only an endpoint can alter a pre-key
/// message: it travels inside sealed sender's authenticated layer).
fn reseal(alice: &IdentityKeyPair, b: &Bob, inner: &[u8]) -> InboundEnvelope {
    let envelope =
        sealed::seal(alice, &ALICE_ADDR, &b.identity.public(), inner, &mut OsRng).unwrap();
    InboundEnvelope::open(&b.identity, &envelope).unwrap()
}

/// Offset of the KEM ciphertext in a `0x05` message with an extra prekey
/// (PROTOCOL 4.11): type, identity, ephemeral, spk id, tag, id, kind, kem id.
const KEM_CT_OFFSET: usize = 1 + 128 + 32 + 4 + 1 + 4 + 1 + 4;

#[test]
fn a_tampered_kem_ciphertext_fails_the_first_message() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let mut a = start(&alice, &served(&b, true));
    let genuine = inner(&b, &a.seal_for(&alice, b"hi", &mut OsRng).unwrap());
    for at in [0, 1, 543, KEM_CIPHERTEXT_LEN - 1] {
        let mut bytes = genuine.clone();
        bytes[KEM_CT_OFFSET + at] ^= 0x01;
        let forged = reseal(&alice, &b, &bytes);
        assert_eq!(
            PairwiseSession::accept(&b.identity, &BOB_ADDR, &forged, &b).unwrap_err(),
            PairwiseError::Ratchet(RatchetError::DecryptionFailed),
            "ciphertext byte {at}"
        );
    }
    // The untouched message still starts the session (nothing was burned).
    let ok = reseal(&alice, &b, &genuine);
    assert!(PairwiseSession::accept(&b.identity, &BOB_ADDR, &ok, &b).is_ok());
}

/// The KEM reference is in the HKDF info: a header naming the other KEM
/// prekey (an endpoint's tampering) fails too, even when the store answers.
#[test]
fn a_kem_reference_altered_in_the_message_fails_or_is_unknown() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let mut a = start(&alice, &served(&b, true));
    let genuine = inner(&b, &a.seal_for(&alice, b"hi", &mut OsRng).unwrap());
    // Kind byte 0x01 -> 0x02 and id 7 -> 8: Bob's last-resort key, which he
    // holds; it decapsulates to an unrelated secret.
    let mut other = genuine.clone();
    other[KEM_CT_OFFSET - 5] = 0x02;
    other[KEM_CT_OFFSET - 1] = 8;
    assert_eq!(
        PairwiseSession::accept(&b.identity, &BOB_ADDR, &reseal(&alice, &b, &other), &b)
            .unwrap_err(),
        PairwiseError::Ratchet(RatchetError::DecryptionFailed)
    );
    // An id Bob does not hold.
    let mut unknown = genuine.clone();
    unknown[KEM_CT_OFFSET - 1] = 99;
    assert_eq!(
        PairwiseSession::accept(&b.identity, &BOB_ADDR, &reseal(&alice, &b, &unknown), &b)
            .unwrap_err(),
        PairwiseError::UnknownKemPreKey(kem_ref(KemPreKeyKind::OneTime, 99))
    );
    // Retyped as a classical 0x01 message without its KEM fields: refused
    // as classical before any key agreement; and even the classical
    // responder (low-level-api) cannot open it, because the ratchet
    // authenticates the type byte and the session's AD differs.
    let mut classical = vec![0x01];
    classical.extend_from_slice(&genuine[1..KEM_CT_OFFSET - 5]);
    classical.extend_from_slice(&genuine[KEM_CT_OFFSET + KEM_CIPHERTEXT_LEN..]);
    let classical = reseal(&alice, &b, &classical);
    assert_eq!(
        PairwiseSession::accept(&b.identity, &BOB_ADDR, &classical, &b).unwrap_err(),
        PairwiseError::ClassicalPreKeyRefused
    );
    assert_eq!(
        PairwiseSession::accept_classical(&b.identity, &BOB_ADDR, &classical, &b).unwrap_err(),
        PairwiseError::Ratchet(RatchetError::DecryptionFailed)
    );
}

/// A store without the named KEM prekey (a one-time one already used):
/// named, and the session is not created.
#[test]
fn a_used_one_time_kem_prekey_is_an_unknown_kem_prekey() {
    struct WithoutKem<'a>(&'a Bob);
    impl PreKeyStore for WithoutKem<'_> {
        fn signed_prekey(&self, id: u32) -> Option<umbra_protocol::keys::SecretKey> {
            self.0.signed_prekey(id)
        }
        fn extra_prekey(&self, r: PreKeyRef) -> Option<umbra_protocol::keys::SecretKey> {
            self.0.extra_prekey(r)
        }
        fn kem_prekey(&self, _: KemPreKeyRef) -> Option<KemPreKey> {
            None
        }
    }
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let mut a = start(&alice, &served(&b, true));
    let e = a.seal_for(&alice, b"hi", &mut OsRng).unwrap();
    let inbound = InboundEnvelope::open(&b.identity, &e).unwrap();
    assert_eq!(
        PairwiseSession::accept(&b.identity, &BOB_ADDR, &inbound, &WithoutKem(&b)).unwrap_err(),
        PairwiseError::UnknownKemPreKey(kem_ref(KemPreKeyKind::OneTime, 7))
    );
}

/// The KEM secret really is an input of the root key. ML-KEM's `z` (the
/// second half of the seed) changes neither the public key nor the secret
/// of a valid ciphertext, only the implicit-rejection secret of an invalid
/// one. So two responders whose seeds differ only in `z`, answering the
/// same header with a modified ciphertext, see an identical public
/// transcript (same KEM key, same ciphertext, same DHs) and differ only in
/// the KEM secret: their root keys must differ and their AD must not.
#[test]
fn the_kem_secret_enters_the_root_key() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let bundle = bundle_of(&b).verify().unwrap();
    let (sa, mut header) =
        initiate_hybrid(&alice, &ALICE_ADDR, &bundle, &BOB_ADDR, &mut OsRng).unwrap();
    let respond = |kem: &KemKeyPair, header: &umbra_protocol::x3dh::InitialHeader| {
        respond_hybrid(
            &b.identity,
            &BOB_ADDR,
            &ALICE_ADDR,
            b.signed.secret(),
            Some(b.one_time.secret()),
            kem,
            header,
        )
        .unwrap()
    };
    let genuine = b.kem_one_time.keypair();
    assert_eq!(respond(genuine, &header).root_key(), sa.root_key());
    let mut seed = **genuine.seed();
    seed[40] ^= 1; // inside z
    let other_z = KemKeyPair::from_seed(&seed);
    assert_eq!(other_z.public(), genuine.public());
    // A valid ciphertext: z plays no part, same secret, same root key.
    assert_eq!(respond(&other_z, &header).root_key(), sa.root_key());
    // A modified one: implicit rejection, J(z || c), differs with z.
    let kem = header.kem.as_mut().unwrap();
    let mut ct = *kem.ciphertext.as_bytes();
    ct[10] ^= 0x80;
    kem.ciphertext = umbra_protocol::kem::KemCiphertext::from_bytes(&ct).unwrap();
    let (r1, r2) = (respond(genuine, &header), respond(&other_z, &header));
    assert_eq!(r1.associated_data(), r2.associated_data());
    assert_ne!(r1.root_key(), r2.root_key());
    assert_ne!(r1.root_key(), sa.root_key());
}

#[test]
fn a_pending_hybrid_header_survives_save_and_restore() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let a = start(&alice, &served(&b, false));
    let pickle = a.pickle().encode();
    let mut restored = PairwiseSession::from_pickle(
        &umbra_protocol::pairwise::SessionPickle::decode(&pickle).unwrap(),
    )
    .unwrap();
    assert!(restored.awaiting_reply());
    let e = restored
        .seal_for(&alice, b"after restore", &mut OsRng)
        .unwrap();
    assert_eq!(inner(&b, &e)[0], HYBRID_PREKEY_MESSAGE_TYPE);
    let inbound = InboundEnvelope::open(&b.identity, &e).unwrap();
    let PairwiseMessage::PreKey(pre) = inbound.message() else {
        panic!("a pre-key message")
    };
    assert_eq!(
        pre.kem_prekey(),
        Some(kem_ref(KemPreKeyKind::LastResort, 8))
    );
    let (_, plain, _) = PairwiseSession::accept(&b.identity, &BOB_ADDR, &inbound, &b).unwrap();
    assert_eq!(plain, b"after restore");
}

#[test]
fn the_largest_content_fits_a_hybrid_pre_key_message() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let mut a = start(&alice, &served(&b, true));
    let big = vec![7u8; umbra_protocol::padding::MAX_CONTENT_LEN];
    let e = a.seal_for(&alice, &big, &mut OsRng).unwrap();
    let inbound = InboundEnvelope::open(&b.identity, &e).unwrap();
    let (_, plain, _) = PairwiseSession::accept(&b.identity, &BOB_ADDR, &inbound, &b).unwrap();
    assert_eq!(plain, big);
}

/// Every truncation of a `0x05` message is refused by name, never a panic,
/// and the KEM fields' errors are their own (PROTOCOL 4.11).
#[test]
fn truncated_and_malformed_hybrid_messages_are_named() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let mut a = start(&alice, &served(&b, true));
    let genuine = inner(&b, &a.seal_for(&alice, b"hi", &mut OsRng).unwrap());
    assert!(PairwiseMessage::from_bytes(&genuine).is_ok());
    for len in 1..KEM_CT_OFFSET + KEM_CIPHERTEXT_LEN {
        let err = PairwiseMessage::from_bytes(&genuine[..len]).unwrap_err();
        let expected = if len < KEM_CT_OFFSET {
            "truncated hybrid pre-key message"
        } else {
            "truncated KEM ciphertext in hybrid pre-key message"
        };
        assert_eq!(err, PairwiseError::Malformed(expected), "length {len}");
    }
    // Cut inside the ratchet message: the ratchet codec names it.
    assert!(matches!(
        PairwiseMessage::from_bytes(&genuine[..KEM_CT_OFFSET + KEM_CIPHERTEXT_LEN + 3]),
        Err(PairwiseError::RatchetEncoding(_))
    ));
    for kind in [0x00, 0x03, 0xff] {
        let mut bad = genuine.clone();
        bad[KEM_CT_OFFSET - 5] = kind;
        assert_eq!(
            PairwiseMessage::from_bytes(&bad).unwrap_err(),
            PairwiseError::Malformed("unknown KEM prekey kind")
        );
    }
    // Decoding and encoding are inverse.
    assert_eq!(
        PairwiseMessage::from_bytes(&genuine).unwrap().to_bytes(),
        genuine
    );
}

#[test]
fn the_kem_fields_sit_where_the_spec_says() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let mut a = start(&alice, &served(&b, true));
    let bytes = inner(&b, &a.seal_for(&alice, b"hi", &mut OsRng).unwrap());
    let inbound = InboundEnvelope::open(
        &b.identity,
        &sealed::seal(
            &alice,
            &ALICE_ADDR,
            &b.identity.public(),
            &bytes,
            &mut OsRng,
        )
        .unwrap(),
    )
    .unwrap();
    let PairwiseMessage::PreKey(pre) = inbound.message() else {
        panic!("a pre-key message")
    };
    let kem = pre.initial.kem.as_ref().unwrap();
    assert_eq!(bytes[0], 0x05);
    assert_eq!(&bytes[1..129], &alice.public().to_bytes()[..]);
    assert_eq!(&bytes[161..165], &1u32.to_be_bytes());
    assert_eq!(bytes[165], 0x01);
    assert_eq!(&bytes[166..170], &5u32.to_be_bytes());
    assert_eq!(bytes[170], 0x01);
    assert_eq!(&bytes[171..175], &7u32.to_be_bytes());
    assert_eq!(
        &bytes[175..175 + KEM_CIPHERTEXT_LEN],
        kem.ciphertext.as_bytes()
    );
}

/// Device 2 of Bob's account: the same identity (linked devices share it,
/// PROTOCOL 15.1), its own prekeys under the same ids as device 1's.
fn sibling_of(b: &Bob) -> Bob {
    let identity: IdentityKeyPair =
        postcard::from_bytes(&postcard::to_allocvec(&b.identity).unwrap()).unwrap();
    let signed = SignedPreKey::generate(&identity, b.signed.id(), 0, &mut OsRng);
    let kem_one_time = KemPreKey::generate(&identity, KemPreKeyKind::OneTime, 7, 0, &mut OsRng);
    let kem_last_resort =
        KemPreKey::generate(&identity, KemPreKeyKind::LastResort, 8, 0, &mut OsRng);
    Bob {
        identity,
        signed,
        one_time: OneTimePreKey::generate(b.one_time.id(), &mut OsRng),
        kem_one_time,
        kem_last_resort,
    }
}

/// PROTOCOL 3.11: prekey signatures do not name the device, so a relay can
/// serve device 1's KEM prekey (or its signed prekey too) in device 2's
/// bundle and it verifies. The session only fails: device 2 derives with
/// its own keys, and device 1 (which can open the seal, same identity)
/// with its own address, which the initiator did not bind.
#[test]
fn a_sibling_devices_prekeys_in_a_bundle_only_fail_the_session() {
    let bob_2_addr = Address {
        account: BOB_ADDR.account,
        device: DeviceId(2),
    };
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b1 = bob();
    let b2 = sibling_of(&b1);
    let mut kem_swapped = bundle_of(&b2);
    kem_swapped.kem_one_time = Some(b1.kem_one_time.public());
    kem_swapped.kem_last_resort = Some(b1.kem_last_resort.public());
    let whole_bundle_swapped = bundle_of(&b1);
    for (what, bundle) in [
        ("device 1's KEM prekeys", kem_swapped),
        ("device 1's whole bundle", whole_bundle_swapped),
    ] {
        // Same identity, so the initiator's checks pass.
        let bundle = bundle.verify_at(0).unwrap();
        let mut a =
            PairwiseSession::initiate(&alice, &ALICE_ADDR, &bundle, &bob_2_addr, &mut OsRng)
                .unwrap();
        let envelope = a.seal_for(&alice, b"for device 2", &mut OsRng).unwrap();
        let at_2 = InboundEnvelope::open(&b2.identity, &envelope).unwrap();
        assert_eq!(
            PairwiseSession::accept(&b2.identity, &bob_2_addr, &at_2, &b2).unwrap_err(),
            PairwiseError::Ratchet(RatchetError::DecryptionFailed),
            "{what}, delivered to device 2"
        );
        let at_1 = InboundEnvelope::open(&b1.identity, &envelope).unwrap();
        assert_eq!(
            PairwiseSession::accept(&b1.identity, &BOB_ADDR, &at_1, &b1).unwrap_err(),
            PairwiseError::Ratchet(RatchetError::DecryptionFailed),
            "{what}, delivered to device 1"
        );
    }
}
