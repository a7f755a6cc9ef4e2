//! Attacks on the agreement layer: forged and substituted keys, low-order
//! points at every Diffie-Hellman, unknown key shares, forged sealed-sender
//! claims, cross-context ciphertexts, leaky Debug output, hostile bytes.
//!
//! Where an attack needs bytes the honest API never produces, the test
//! builds them from the specification (docs/PROTOCOL.md), which doubles as a
//! check that the spec describes the code.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use hkdf::Hkdf;
use proptest::prelude::*;
use rand::rngs::OsRng;
use sha2::Sha256;
use umbra_protocol::group::{
    GroupId, GroupMessage, GroupMessageHeader, GroupReceiver, GroupReceiverPickle, GroupSender,
    GroupSenderPickle, SignedDistribution,
};
use umbra_protocol::identity::{IdentityError, IdentityKeyPair, IdentityPublic};
use umbra_protocol::keys::{PublicKey, SecretKey};
use umbra_protocol::labels;
use umbra_protocol::prekeys::{
    OneTimePreKey, OneTimePreKeyPublic, PreKeyBundle, PreKeyError, PreKeyRef, SignedPreKey,
    SignedPreKeyPublic,
};
use umbra_protocol::sealed::{self, SealedError};
use umbra_protocol::x3dh::{initiate, respond, InitialHeader, X3dhError};

use umbra_protocol::wire::{AccountId, Address, DeviceId};

/// Relay addresses that X3DH and sealed sender bind (fixed, arbitrary).
const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};
/// The responder's relay address.
const BOB_ADDR: Address = Address {
    account: AccountId::from_bytes([0xb0; 16]),
    device: DeviceId(1),
};

fn low_order_points() -> Vec<[u8; 32]> {
    // The X25519 points of small order and their non-canonical encodings
    // (libsodium's `has_small_order` list), each also with bit 255 set,
    // which X25519 ignores (RFC 7748, section 5).
    let hexes = [
        // 0 (order 4) and 1 (order 1)
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        // the two points of order 8
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        // p - 1 (order 2), p (= 0), p + 1 (= 1)
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    let mut out = Vec::new();
    for h in hexes {
        let point: [u8; 32] = hex::decode(h).unwrap().try_into().unwrap();
        let mut high = point;
        high[31] |= 0x80;
        out.push(point);
        out.push(high);
    }
    // Every one of them must really be refused: a point silently dropped
    // from the list would turn the tests below into no-ops for it.
    let probe = SecretKey::generate(&mut OsRng);
    for p in &out {
        assert!(
            probe.diffie_hellman(&PublicKey::from_bytes(*p)).is_err(),
            "{} is accepted by X25519",
            hex::encode(p)
        );
    }
    out
}

/// A public identity whose (validly bound) X25519 key is `dh`, as a
/// malicious peer holding the signing key can make.
fn identity_with_dh(signer: &IdentityKeyPair, dh: [u8; 32]) -> IdentityPublic {
    let mut bytes = signer.public().to_bytes();
    bytes[32..64].copy_from_slice(&dh);
    let binding = signer.sign(labels::IDENTITY_BINDING, &dh);
    bytes[64..].copy_from_slice(&binding.to_bytes());
    let id = IdentityPublic::from_bytes(&bytes).unwrap();
    id.verify().unwrap();
    id
}

/// A signed prekey over an arbitrary public key (spec: u32be id ||
/// u64be created_at || key, signed under the signed-prekey label).
fn signed_prekey_for(signer: &IdentityKeyPair, id: u32, key: [u8; 32]) -> SignedPreKeyPublic {
    let mut msg = Vec::new();
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&0u64.to_be_bytes());
    msg.extend_from_slice(&key);
    SignedPreKeyPublic {
        id,
        created_at: 0,
        key: PublicKey::from_bytes(key),
        signature: signer.sign(labels::SIGNED_PREKEY, &msg),
    }
}

struct Bob {
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    one_time: OneTimePreKey,
}

fn bob() -> Bob {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let signed = SignedPreKey::generate(&identity, 1, 0, &mut OsRng);
    let one_time = OneTimePreKey::generate(5, &mut OsRng);
    Bob {
        identity,
        signed,
        one_time,
    }
}

fn bundle_of(b: &Bob) -> PreKeyBundle {
    PreKeyBundle {
        identity: b.identity.public(),
        signed_prekey: b.signed.public(),
        one_time_prekey: Some(b.one_time.public()),
        last_resort: None,
    }
}

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

/// Bob's prekeys as the pairwise layer asks for them.
impl umbra_protocol::pairwise::PreKeyStore for Bob {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        (id == self.signed.id()).then(|| self.signed.secret().clone())
    }
    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        (prekey == PreKeyRef::OneTime(self.one_time.id())).then(|| self.one_time.secret().clone())
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

// ---------- sealed sender ----------

/// Builds an envelope from the spec with free choice of the claimed sender
/// and of the static key used for layer 2.
fn forge_envelope(
    claimed: &IdentityPublic,
    static_secret: &SecretKey,
    recipient: &IdentityPublic,
    inner: &[u8],
) -> Vec<u8> {
    let e = SecretKey::generate(&mut OsRng);
    let e_pub = e.public_key();
    let s1 = e.diffie_hellman(recipient.dh_key()).unwrap();
    let mut salt = labels::SEALED_EPHEMERAL_SALT.to_vec();
    salt.extend_from_slice(&recipient.to_bytes());
    salt.extend_from_slice(e_pub.as_bytes());
    let hk = Hkdf::<Sha256>::new(Some(&salt), s1.as_bytes());
    let mut chain = [0u8; 32];
    let mut k1 = [0u8; 32];
    hk.expand(labels::SEALED_EPHEMERAL_CHAIN_KEY, &mut chain)
        .unwrap();
    hk.expand(labels::SEALED_EPHEMERAL_CIPHER_KEY, &mut k1)
        .unwrap();
    let mut out = vec![sealed::SEALED_VERSION];
    out.extend_from_slice(e_pub.as_bytes());
    // Layer 1 plaintext: identity (128) || account id (16) || u32be(device).
    let mut sender_layer = claimed.to_bytes().to_vec();
    sender_layer.extend_from_slice(ALICE_ADDR.account.as_bytes());
    sender_layer.extend_from_slice(&ALICE_ADDR.device.0.to_be_bytes());
    let c1 = ChaCha20Poly1305::new(Key::from_slice(&k1))
        .encrypt(
            Nonce::from_slice(&[0; 12]),
            Payload {
                msg: &sender_layer,
                aad: &out,
            },
        )
        .unwrap();
    out.extend_from_slice(&c1);
    // Static DH with whatever key the forger has, honest or not.
    let s2 = match static_secret.diffie_hellman(recipient.dh_key()) {
        Ok(s) => *s.as_bytes(),
        Err(_) => [0u8; 32],
    };
    let hk2 = Hkdf::<Sha256>::new(Some(&chain), &s2);
    let mut k2 = [0u8; 32];
    hk2.expand_multi_info(&[labels::SEALED_STATIC_CIPHER_KEY, &c1], &mut k2)
        .unwrap();
    let c2 = ChaCha20Poly1305::new(Key::from_slice(&k2))
        .encrypt(
            Nonce::from_slice(&[0; 12]),
            Payload {
                msg: inner,
                aad: &out,
            },
        )
        .unwrap();
    out.extend_from_slice(&c2);
    out
}

#[test]
fn spec_built_envelope_opens_when_honest() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = IdentityKeyPair::generate(&mut OsRng);
    let env = forge_envelope(
        &alice.public(),
        alice.dh_secret(),
        &bob.public(),
        b"by the spec",
    );
    let opened = sealed::open(&bob, &env).unwrap();
    assert_eq!(opened.sender, alice.public());
    assert_eq!(opened.sender_address, ALICE_ADDR);
    assert_eq!(opened.inner, b"by the spec");
}

#[test]
fn forged_sender_claim_fails() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let eve = IdentityKeyPair::generate(&mut OsRng);
    let bob = IdentityKeyPair::generate(&mut OsRng);
    let env = forge_envelope(
        &alice.public(),
        eve.dh_secret(),
        &bob.public(),
        b"I am alice",
    );
    assert_eq!(
        sealed::open(&bob, &env),
        Err(SealedError::InnerLayerUndecryptable)
    );
}

#[test]
fn sealed_low_order_points_rejected() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = IdentityKeyPair::generate(&mut OsRng);
    let genuine = sealed::seal(&alice, &ALICE_ADDR, &bob.public(), b"x", &mut OsRng).unwrap();
    for point in low_order_points() {
        // Recipient identity key of low order (bound by its owner).
        let bad_recipient = identity_with_dh(&bob, point);
        assert_eq!(
            sealed::seal(&alice, &ALICE_ADDR, &bad_recipient, b"x", &mut OsRng),
            Err(SealedError::LowOrderEphemeral)
        );
        // Envelope ephemeral of low order.
        let mut env = genuine.clone();
        env[1..33].copy_from_slice(&point);
        assert_eq!(
            sealed::open(&bob, &env),
            Err(SealedError::LowOrderEphemeral)
        );
        // Claimed sender identity key of low order.
        let claimed = identity_with_dh(&alice, point);
        let env = forge_envelope(&claimed, alice.dh_secret(), &bob.public(), b"x");
        assert_eq!(sealed::open(&bob, &env), Err(SealedError::LowOrderStatic));
    }
}

#[test]
fn sealed_sender_with_broken_binding_is_refused() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let mallory = IdentityKeyPair::generate(&mut OsRng);
    let bob = IdentityKeyPair::generate(&mut OsRng);
    let mut claimed = alice.public().to_bytes();
    claimed[32..64].copy_from_slice(mallory.public().dh_key().as_bytes());
    let claimed = IdentityPublic::from_bytes(&claimed).unwrap();
    let env = forge_envelope(&claimed, mallory.dh_secret(), &bob.public(), b"x");
    assert_eq!(
        sealed::open(&bob, &env),
        Err(SealedError::InvalidSender(IdentityError::InvalidBinding))
    );
}

/// A receiver of `sender`'s key as `owner` (its identity) distributes it.
fn group_receiver(owner: &IdentityKeyPair, sender: &GroupSender) -> GroupReceiver {
    let dist = sender.distribution(owner);
    GroupReceiver::new(
        SignedDistribution::verify(dist.as_bytes(), &owner.public(), sender.group_id()).unwrap(),
    )
}

// ---------- cross-context ----------

// (Group and sealed ciphertexts not crossing: tests/group.rs.)

#[test]
fn every_label_is_distinct() {
    let all = labels::ALL;
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

// ---------- Debug redaction ----------

fn assert_hidden(shown: &str, secret: &[u8]) {
    assert!(
        !shown.contains(&hex::encode(secret)),
        "hex secret in {shown}"
    );
    assert!(
        !shown.contains(&format!("{secret:?}")),
        "byte list secret in {shown}"
    );
    assert!(
        !shown.contains(&hex::encode(&secret[..8])),
        "secret prefix in {shown}"
    );
}

#[test]
fn debug_of_every_secret_type_hides_secrets() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let stored = postcard::to_stdvec(&id).unwrap();
    // Stored form: two length-prefixed 32-byte strings.
    let (signing_seed, dh_secret) = (&stored[1..33], &stored[34..66]);
    assert_eq!(dh_secret, id.dh_secret().to_bytes());
    assert_hidden(&format!("{id:?}"), signing_seed);
    assert_hidden(&format!("{id:?}"), dh_secret);
    assert_hidden(&format!("{:?}", id.dh_secret()), dh_secret);

    let spk = SignedPreKey::generate(&id, 1, 0, &mut OsRng);
    assert_hidden(&format!("{spk:?}"), &spk.secret().to_bytes());
    let otk = OneTimePreKey::generate(1, &mut OsRng);
    assert_hidden(&format!("{otk:?}"), &otk.secret().to_bytes());

    let b = bob();
    let (secret, _) = initiate(
        &id,
        &ALICE_ADDR,
        &bundle_of(&b).verify().unwrap(),
        &BOB_ADDR,
        &mut OsRng,
    )
    .unwrap();
    assert_hidden(&format!("{secret:?}"), secret.root_key());

    let sender = GroupSender::generate(GroupId([9; 32]), 0, &mut OsRng);
    let dist = sender.distribution(&id);
    let chain_key = dist.as_bytes()[49..81].to_vec();
    let verified =
        SignedDistribution::verify(dist.as_bytes(), &id.public(), sender.group_id()).unwrap();
    let receiver = GroupReceiver::new(verified.clone());
    for shown in [
        format!("{sender:?}"),
        format!("{dist:?}"),
        format!("{verified:?}"),
        format!("{receiver:?}"),
        format!("{:?}", sender.pickle()),
        format!("{:?}", receiver.pickle()),
    ] {
        assert_hidden(&shown, &chain_key);
    }
}
