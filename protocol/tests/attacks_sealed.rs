//! Attacks on sealed sender and across contexts: forged sender claims,
//! low-order points in the seal, broken identity bindings, labels reused
//! between contexts, and Debug output that would leak a secret (the
//! agreement-layer attacks are in `attacks_agreement.rs`).
//!
//! Where an attack needs bytes the honest API never produces, the test
//! builds them from the specification (docs/PROTOCOL.md).

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use hkdf::Hkdf;
use rand::rngs::OsRng;
use sha2::Sha256;
use umbra_protocol::group::{GroupId, GroupReceiver, GroupSender, SignedDistribution};
use umbra_protocol::identity::{IdentityError, IdentityKeyPair, IdentityPublic};
use umbra_protocol::keys::SecretKey;
use umbra_protocol::labels;
use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey};
use umbra_protocol::sealed::{self, SealedError};
use umbra_protocol::x3dh::initiate;

mod attack_kit;

use attack_kit::*;

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
