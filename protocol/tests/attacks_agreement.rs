//! Attacks on the agreement layer: forged and substituted keys, low-order
//! points at every Diffie-Hellman, unknown key shares, forged sealed-sender
//! claims, cross-context ciphertexts, leaky Debug output, hostile bytes.
//!
//! Where an attack needs bytes the honest API never produces, the test
//! builds them from the specification (docs/PROTOCOL.md), which doubles as a
//! check that the spec describes the code.

use proptest::prelude::*;
use rand::rngs::OsRng;
use umbra_protocol::group::{
    GroupId, GroupMessage, GroupMessageHeader, GroupReceiverPickle, GroupSender, GroupSenderPickle,
    SignedDistribution,
};
use umbra_protocol::identity::{IdentityError, IdentityKeyPair, IdentityPublic};
use umbra_protocol::keys::{PublicKey, SecretKey};
use umbra_protocol::prekeys::{
    OneTimePreKey, OneTimePreKeyPublic, PreKeyBundle, PreKeyError, PreKeyRef, SignedPreKey,
};
use umbra_protocol::sealed;
use umbra_protocol::x3dh::{initiate, respond, InitialHeader, X3dhError};

use umbra_protocol::wire::{AccountId, Address, DeviceId};

mod attack_kit;

use attack_kit::*;

// ---------- bundle forgery ----------

#[test]
fn small_order_signing_key_is_rejected_strictly() {
    // A = identity point, R = identity point, S = 0 satisfies the cofactored
    // and the plain Ed25519 equation for every message; only strict
    // verification refuses it.
    let mut bytes = [0u8; 128];
    bytes[0] = 1; // A = (0, 1)
    bytes[32..64].copy_from_slice(SecretKey::generate(&mut OsRng).public_key().as_bytes());
    bytes[64] = 1; // R = (0, 1), S = 0
    let forged = IdentityPublic::from_bytes(&bytes).unwrap();
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&identity_point).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&bytes[64..]).unwrap();
    // The non-strict check would accept: the test is meaningful.
    assert!(ed25519_dalek::Verifier::verify(&vk, b"anything", &sig).is_ok());
    assert_eq!(forged.verify(), Err(IdentityError::InvalidBinding));

    let b = bob();
    let mut bundle = bundle_of(&b);
    bundle.identity = forged;
    assert!(matches!(
        bundle.verify(),
        Err(PreKeyError::Identity(IdentityError::InvalidBinding))
    ));
}

#[test]
fn non_canonical_signature_scalar_is_rejected() {
    // S + L verifies under the group law exactly like S, so only a check
    // that S < L (part of strict verification) catches the malleated form.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let b = bob();
    let mut bundle = bundle_of(&b);
    let mut sig = bundle.signed_prekey.signature.to_bytes();
    let mut carry = 0u16;
    for (s, l) in sig[32..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    // S < 2^253 and L < 2^253, so S + L < 2^254 fits in 32 bytes.
    assert_eq!(carry, 0);
    bundle.signed_prekey.signature = ed25519_dalek::Signature::from_bytes(&sig);
    assert_eq!(bundle.verify(), Err(PreKeyError::BadSignedPreKeySignature));
}

#[test]
fn substituted_signed_prekey_is_rejected() {
    let b = bob();
    let mut bundle = bundle_of(&b);
    bundle.signed_prekey.key = SecretKey::generate(&mut OsRng).public_key();
    assert_eq!(bundle.verify(), Err(PreKeyError::BadSignedPreKeySignature));
}

#[test]
fn identity_swapped_under_genuine_prekey_is_rejected() {
    let b = bob();
    let mallory = IdentityKeyPair::generate(&mut OsRng);
    let mut bundle = bundle_of(&b);
    bundle.identity = mallory.public();
    assert_eq!(bundle.verify(), Err(PreKeyError::BadSignedPreKeySignature));
}

/// Every one of the 1,888 bits the signed-prekey signature covers (identity
/// 128 bytes, id 4, created_at 8, key 32) or is made of (signature 64),
/// flipped one at a time, makes the bundle fail to verify. All positions,
/// not a sample: a check that ignores one field would pass a sample.
#[test]
fn any_bit_flip_in_signed_material_is_rejected() {
    let b = bob();
    let bundle = bundle_of(&b);
    assert!(
        bundle.clone().verify().is_ok(),
        "the unflipped bundle verifies"
    );
    const BITS: usize = (128 + 4 + 8 + 32 + 64) * 8;
    assert_eq!(BITS, 1_888);
    for bit in 0..BITS {
        let mut identity = bundle.identity.to_bytes();
        let mut spk = bundle.signed_prekey.clone();
        let byte = bit / 8;
        let mask = 1u8 << (bit % 8);
        match byte {
            0..=127 => identity[byte] ^= mask,
            128..=131 => spk.id ^= u32::from(mask) << (8 * (byte - 128)),
            132..=139 => spk.created_at ^= u64::from(mask) << (8 * (byte - 132)),
            140..=171 => {
                let mut k = spk.key.to_bytes();
                k[byte - 140] ^= mask;
                spk.key = PublicKey::from_bytes(k);
            }
            _ => {
                let mut s = spk.signature.to_bytes();
                s[byte - 172] ^= mask;
                spk.signature = ed25519_dalek::Signature::from_bytes(&s);
            }
        }
        // A flipped signing key may not even decode; either way no bundle.
        let result = IdentityPublic::from_bytes(&identity)
            .map_err(PreKeyError::Identity)
            .and_then(|identity| {
                PreKeyBundle {
                    identity,
                    signed_prekey: spk,
                    ..bundle.clone()
                }
                .verify()
            });
        assert!(
            result.is_err(),
            "bit {bit} (byte {byte}) flipped and still verified"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let b = bob();
        let _ = IdentityPublic::from_bytes(&bytes);
        let _ = postcard::from_bytes::<PreKeyBundle>(&bytes);
        let _ = postcard::from_bytes::<InitialHeader>(&bytes);
        let _ = sealed::open(&b.identity, &bytes);
        let _ = GroupMessageHeader::parse(&bytes);
        let _ = SignedDistribution::verify(&bytes, &b.identity.public(), &GroupId([0; 32]));
        // Local-store formats must fail cleanly on corruption too.
        let _ = postcard::from_bytes::<IdentityKeyPair>(&bytes);
        let _ = postcard::from_bytes::<SignedPreKey>(&bytes);
        let _ = GroupSenderPickle::decode(&bytes);
        let _ = GroupReceiverPickle::decode(&bytes);
        let mut r = group_receiver(&b.identity, &GroupSender::generate(GroupId([0; 32]), 0, &mut OsRng));
        if let Ok(m) = GroupMessage::from_bytes(&bytes) {
            prop_assert!(r.decrypt_unsealed(&m).is_err());
        }
        prop_assert_eq!(r.iteration(), 0);
    }
}

// ---------- low-order points at every DH ----------

#[test]
fn low_order_points_rejected_at_every_initiator_dh() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    for point in low_order_points() {
        // DH1 (and DH3): the signed prekey.
        let b = bob();
        let mut bundle = bundle_of(&b);
        bundle.signed_prekey = signed_prekey_for(&b.identity, 1, point);
        let err = initiate(
            &alice,
            &ALICE_ADDR,
            &bundle.verify().unwrap(),
            &BOB_ADDR,
            &mut OsRng,
        )
        .unwrap_err();
        assert!(
            matches!(err, X3dhError::LowOrderPoint { which: 1, .. }),
            "{err:?}"
        );

        // DH2: the responder's identity key.
        let mut bundle = bundle_of(&b);
        bundle.identity = identity_with_dh(&b.identity, point);
        bundle.signed_prekey = signed_prekey_for(&b.identity, 1, *b.signed.public().key.as_bytes());
        let err = initiate(
            &alice,
            &ALICE_ADDR,
            &bundle.verify().unwrap(),
            &BOB_ADDR,
            &mut OsRng,
        )
        .unwrap_err();
        assert!(
            matches!(err, X3dhError::LowOrderPoint { which: 2, .. }),
            "{err:?}"
        );

        // DH4: the one-time prekey, and the last-resort prekey.
        for (otk, lr) in [
            (
                Some(OneTimePreKeyPublic {
                    id: 1,
                    key: PublicKey::from_bytes(point),
                }),
                None,
            ),
            (
                None,
                Some(OneTimePreKeyPublic {
                    id: 1,
                    key: PublicKey::from_bytes(point),
                }),
            ),
        ] {
            let bundle = PreKeyBundle {
                one_time_prekey: otk,
                last_resort: lr,
                ..bundle_of(&b)
            };
            let err = initiate(
                &alice,
                &ALICE_ADDR,
                &bundle.verify().unwrap(),
                &BOB_ADDR,
                &mut OsRng,
            )
            .unwrap_err();
            assert!(
                matches!(err, X3dhError::LowOrderPoint { which: 4, .. }),
                "{err:?}"
            );
        }
    }
}

#[test]
fn low_order_points_rejected_at_every_responder_dh() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let (_, genuine) = initiate(
        &alice,
        &ALICE_ADDR,
        &bundle_of(&b).verify().unwrap(),
        &BOB_ADDR,
        &mut OsRng,
    )
    .unwrap();
    for point in low_order_points() {
        // DH1: the initiator's identity key.
        let header = InitialHeader {
            initiator_identity: identity_with_dh(&alice, point),
            ..genuine.clone()
        };
        let err = respond(
            &b.identity,
            &BOB_ADDR,
            &ALICE_ADDR,
            b.signed.secret(),
            Some(b.one_time.secret()),
            &header,
        )
        .unwrap_err();
        assert!(
            matches!(err, X3dhError::LowOrderPoint { which: 1, .. }),
            "{err:?}"
        );
        // DH2 (and DH3, DH4): the ephemeral key.
        let header = InitialHeader {
            ephemeral: PublicKey::from_bytes(point),
            ..genuine.clone()
        };
        let err = respond(
            &b.identity,
            &BOB_ADDR,
            &ALICE_ADDR,
            b.signed.secret(),
            Some(b.one_time.secret()),
            &header,
        )
        .unwrap_err();
        assert!(
            matches!(err, X3dhError::LowOrderPoint { which: 2, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn responder_refuses_unbound_initiator_identity() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let mallory = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let (_, mut header) = initiate(
        &alice,
        &ALICE_ADDR,
        &bundle_of(&b).verify().unwrap(),
        &BOB_ADDR,
        &mut OsRng,
    )
    .unwrap();
    // Alice's signing key paired with Mallory's DH key, binding kept.
    let mut bytes = alice.public().to_bytes();
    bytes[32..64].copy_from_slice(mallory.public().dh_key().as_bytes());
    header.initiator_identity = IdentityPublic::from_bytes(&bytes).unwrap();
    assert_eq!(
        respond(
            &b.identity,
            &BOB_ADDR,
            &ALICE_ADDR,
            b.signed.secret(),
            Some(b.one_time.secret()),
            &header
        )
        .unwrap_err(),
        X3dhError::InitiatorIdentity(IdentityError::InvalidBinding)
    );
}

// ---------- unknown key share ----------

#[test]
fn swapping_any_key_changes_the_agreement() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let mallory = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let (sa, header) = initiate(
        &alice,
        &ALICE_ADDR,
        &bundle_of(&b).verify().unwrap(),
        &BOB_ADDR,
        &mut OsRng,
    )
    .unwrap();
    let honest = respond(
        &b.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        b.signed.secret(),
        Some(b.one_time.secret()),
        &header,
    )
    .unwrap();
    assert_eq!(sa.root_key(), honest.root_key());

    // Initiator identity replaced by another valid identity.
    let swapped = InitialHeader {
        initiator_identity: mallory.public(),
        ..header.clone()
    };
    let s = respond(
        &b.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        b.signed.secret(),
        Some(b.one_time.secret()),
        &swapped,
    )
    .unwrap();
    assert_ne!(s.root_key(), sa.root_key());
    assert_ne!(s.associated_data(), sa.associated_data());

    // Responder identity differs (someone else answers with Bob's prekeys).
    let s = respond(
        &mallory,
        &BOB_ADDR,
        &ALICE_ADDR,
        b.signed.secret(),
        Some(b.one_time.secret()),
        &header,
    )
    .unwrap();
    assert_ne!(s.root_key(), sa.root_key());
    assert_ne!(s.associated_data(), sa.associated_data());

    // Another signed prekey, another one-time prekey.
    let other_spk = SignedPreKey::generate(&b.identity, 1, 0, &mut OsRng);
    let s = respond(
        &b.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        other_spk.secret(),
        Some(b.one_time.secret()),
        &header,
    )
    .unwrap();
    assert_ne!(s.root_key(), sa.root_key());
    let other_otk = OneTimePreKey::generate(5, &mut OsRng);
    let s = respond(
        &b.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        b.signed.secret(),
        Some(other_otk.secret()),
        &header,
    )
    .unwrap();
    assert_ne!(s.root_key(), sa.root_key());

    // A header claiming a different extra prekey kind changes nothing the
    // responder computes with, but omitting the extra prekey is refused.
    let no_extra = InitialHeader {
        extra_prekey: None,
        ..header.clone()
    };
    assert_eq!(
        respond(
            &b.identity,
            &BOB_ADDR,
            &ALICE_ADDR,
            b.signed.secret(),
            Some(b.one_time.secret()),
            &no_extra
        )
        .unwrap_err(),
        X3dhError::UnexpectedExtraPreKey
    );
    let last_resort = InitialHeader {
        extra_prekey: Some(PreKeyRef::LastResort(5)),
        ..header
    };
    assert!(respond(
        &b.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        b.signed.secret(),
        Some(b.one_time.secret()),
        &last_resort
    )
    .is_ok());
}

/// Mallory's account: she publishes copies of Bob's public keys under it.
const MALLORY_ADDR: Address = Address {
    account: AccountId::from_bytes([0x3a; 16]),
    device: DeviceId(1),
};

#[test]
fn keys_copied_under_another_account_do_not_agree() {
    // Mallory uploads Bob's identity and signed prekey as her own. Alice
    // fetches "Mallory's" bundle and agrees with what she believes is
    // Mallory; the genuine owner answers as himself (his own address).
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let copied = bundle_of(&b).verify().unwrap();
    let (sa, header) = initiate(&alice, &ALICE_ADDR, &copied, &MALLORY_ADDR, &mut OsRng).unwrap();
    let at_bob = respond(
        &b.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        b.signed.secret(),
        Some(b.one_time.secret()),
        &header,
    )
    .unwrap();
    assert_ne!(sa.root_key(), at_bob.root_key());
    assert_ne!(sa.associated_data(), at_bob.associated_data());

    // The same holds for the initiator's address and for device ids: a
    // responder told another initiator account or device derives another key.
    for initiator in [
        MALLORY_ADDR,
        Address {
            device: DeviceId(2),
            ..ALICE_ADDR
        },
    ] {
        let (sa, header) = initiate(&alice, &ALICE_ADDR, &copied, &BOB_ADDR, &mut OsRng).unwrap();
        let s = respond(
            &b.identity,
            &BOB_ADDR,
            &initiator,
            b.signed.secret(),
            Some(b.one_time.secret()),
            &header,
        )
        .unwrap();
        assert_ne!(sa.root_key(), s.root_key());
    }
}

#[test]
fn a_message_to_the_copying_account_does_not_open_at_the_owner() {
    use umbra_protocol::pairwise::{InboundEnvelope, PairwiseError, PairwiseSession};
    use umbra_protocol::ratchet::RatchetError;

    // Alice sends to "Mallory" (Bob's copied keys); Mallory forwards the
    // untouched envelope to Bob. It is sealed by Alice and names Bob's keys,
    // but it was agreed for Mallory's account, so Bob refuses it.
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let b = bob();
    let copied = bundle_of(&b).verify().unwrap();
    let mut to_mallory =
        PairwiseSession::initiate(&alice, &ALICE_ADDR, &copied, &MALLORY_ADDR, &mut OsRng).unwrap();
    let envelope = to_mallory
        .seal_for(&alice, b"meant for mallory", &mut OsRng)
        .unwrap();
    let inbound = InboundEnvelope::open(&b.identity, &envelope).unwrap();
    assert_eq!(inbound.sender_address(), &ALICE_ADDR);
    match PairwiseSession::accept(&b.identity, &BOB_ADDR, &inbound, &b) {
        Err(PairwiseError::Ratchet(RatchetError::DecryptionFailed)) => {}
        other => panic!("the forwarded message must not decrypt: {other:?}"),
    }

    // The honest case still works, and the session knows both addresses.
    let mut to_bob =
        PairwiseSession::initiate(&alice, &ALICE_ADDR, &copied, &BOB_ADDR, &mut OsRng).unwrap();
    let envelope = to_bob.seal_for(&alice, b"hi bob", &mut OsRng).unwrap();
    let inbound = InboundEnvelope::open(&b.identity, &envelope).unwrap();
    let (session, plain, _) =
        PairwiseSession::accept(&b.identity, &BOB_ADDR, &inbound, &b).unwrap();
    assert_eq!(plain, b"hi bob");
    assert_eq!(session.remote_address(), &ALICE_ADDR);
    assert_eq!(session.local_address(), &BOB_ADDR);
}
