//! Double Ratchet test vectors: from fixed seeds, an X3DH run then a
//! conversation both ways with out-of-order delivery, recording every root
//! key, chain key, message key, nonce, header and ciphertext into
//! `docs/test-vectors/ratchet.json`.
//!
//! Each encryption is also recomputed here from the public primitives
//! (KDF_RK, KDF_CK, the message-key HKDF and a bare ChaCha20-Poly1305) and
//! must match the session's output byte for byte.

mod common;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

use common::hex;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::prekeys::{PreKeyBundle, SignedPreKey};
use umbra_protocol::ratchet::chain_key::ChainKey;
use umbra_protocol::ratchet::{RatchetMessage, Session};
use umbra_protocol::x3dh;

const SEED: u64 = 0x756d_6272_6172_6174; // "umbrarat"

struct Party {
    name: &'static str,
    session: Session,
}

/// Encrypts with `party`, checks the result against an independent
/// recomputation, and records the step.
fn encrypt(
    party: &mut Party,
    plaintext: &[u8],
    rng: &mut ChaCha20Rng,
    ad: &[u8],
    steps: &mut Vec<Value>,
) -> RatchetMessage {
    let session = &mut party.session;
    // The key the session will use: the current sending chain, or (when a
    // DH step is due) the chain KDF_RK yields for the ratchet key it is about
    // to draw from the RNG.
    let (chain, new_ratchet): (ChainKey, Option<SecretKey>) = match session.sending_chain() {
        Some(chain) => (chain.clone(), None),
        None => {
            let ours = SecretKey::generate(&mut rng.clone());
            let their = session.their_ratchet_key().expect("peer ratchet key known");
            let dh = ours.diffie_hellman(&their).expect("contributory");
            let (_, chain) = session.root_key().step(&dh);
            (chain, Some(ours))
        }
    };
    let message_key = chain.message_key();
    let message = session.encrypt(plaintext, rng).expect("encrypt");

    if let Some(ours) = &new_ratchet {
        assert_eq!(message.header.ratchet_key, ours.public_key());
    }
    assert_eq!(message.header.message_number, chain.index());
    let mut full_ad = ad.to_vec();
    full_ad.extend_from_slice(&message.header.encode());
    let expected = ChaCha20Poly1305::new(Key::from_slice(message_key.key_bytes()))
        .encrypt(
            Nonce::from_slice(message_key.nonce_bytes()),
            Payload {
                msg: plaintext,
                aad: &full_ad,
            },
        )
        .expect("bare AEAD");
    assert_eq!(
        message.ciphertext, expected,
        "session disagrees with the spec"
    );

    steps.push(json!({
        "op": "encrypt",
        "by": party.name,
        "plaintext": hex(plaintext),
        "new_ratchet_private": new_ratchet.as_ref().map(|k| hex(k.to_bytes())),
        "chain_key": hex(chain.as_bytes()),
        "message_number": chain.index(),
        "message_key": hex(message_key.key_bytes()),
        "nonce": hex(message_key.nonce_bytes()),
        "header": hex(message.header.encode()),
        "aead_associated_data": hex(&full_ad),
        "message": hex(message.to_bytes()),
        "root_key_after": hex(session.root_key().as_bytes()),
        "sending_chain_key_after": session.sending_chain().map(|c| hex(c.as_bytes())),
    }));
    message
}

fn decrypt(party: &mut Party, message: &RatchetMessage, expected: &[u8], steps: &mut Vec<Value>) {
    let plaintext = party.session.decrypt(message).expect("decrypt");
    assert_eq!(plaintext, expected);
    let session = &party.session;
    steps.push(json!({
        "op": "decrypt",
        "by": party.name,
        "message": hex(message.to_bytes()),
        "plaintext": hex(&plaintext),
        "root_key_after": hex(session.root_key().as_bytes()),
        "receiving_chain_key_after": session.receiving_chain().map(|c| hex(c.as_bytes())),
        "receiving_index_after": session.receiving_chain().map(|c| c.index()),
        "skipped_keys_after": session.skipped_key_count(),
    }));
}

#[test]
fn ratchet_vectors_match_the_committed_file() {
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&bob_id, 1, 1_700_000_000, &mut rng);
    let bundle = PreKeyBundle {
        identity: bob_id.public(),
        signed_prekey: spk.public(),
        one_time_prekey: None,
        last_resort: None,
    }
    .verify()
    .expect("bundle");
    let (secret_a, initial) = x3dh::initiate(&alice_id, &bundle, &mut rng).expect("initiate");
    let secret_b = x3dh::respond(&bob_id, spk.secret(), None, &initial).expect("respond");
    assert_eq!(secret_a.root_key(), secret_b.root_key());
    let ad = secret_a.associated_data().to_vec();

    let alice_ratchet = SecretKey::generate(&mut rng.clone());
    let alice_session = Session::new_initiator(&secret_a, spk.public().key, &mut rng).unwrap();
    assert_eq!(alice_session.our_ratchet_key(), alice_ratchet.public_key());
    let initial_state = json!({
        "x3dh_root_key": hex(secret_a.root_key()),
        "associated_data": hex(&ad),
        "bob_signed_prekey_private": hex(spk.secret().to_bytes()),
        "bob_signed_prekey_public": hex(spk.public().key.as_bytes()),
        "alice_first_ratchet_private": hex(alice_ratchet.to_bytes()),
        "alice_first_ratchet_public": hex(alice_ratchet.public_key().as_bytes()),
        "alice_root_key": hex(alice_session.root_key().as_bytes()),
        "alice_sending_chain_key": alice_session.sending_chain().map(|c| hex(c.as_bytes())),
    });
    let mut alice = Party {
        name: "alice",
        session: alice_session,
    };
    let mut bob = Party {
        name: "bob",
        session: Session::new_responder(&secret_b, spk.secret().clone()),
    };
    let mut steps = Vec::new();

    // Alice sends three; Bob sees them as 2, 0, 1.
    let a: Vec<_> = [b"a0".as_slice(), b"a1 longer", b""]
        .iter()
        .map(|p| {
            (
                encrypt(&mut alice, p, &mut rng, &ad, &mut steps),
                p.to_vec(),
            )
        })
        .collect();
    for i in [2, 0, 1] {
        decrypt(&mut bob, &a[i].0, &a[i].1, &mut steps);
    }
    // Bob replies twice (a DH ratchet step); Alice sees 1 then 0.
    let b: Vec<_> = [b"b0".as_slice(), b"b1"]
        .iter()
        .map(|p| (encrypt(&mut bob, p, &mut rng, &ad, &mut steps), p.to_vec()))
        .collect();
    decrypt(&mut alice, &b[1].0, &b[1].1, &mut steps);
    decrypt(&mut alice, &b[0].0, &b[0].1, &mut steps);
    // Alice answers twice; Bob receives only the second, then Bob answers,
    // then the first arrives late (previous-chain skipped key).
    let a3 = encrypt(&mut alice, b"a3", &mut rng, &ad, &mut steps);
    let a4 = encrypt(&mut alice, b"a4", &mut rng, &ad, &mut steps);
    decrypt(&mut bob, &a4, b"a4", &mut steps);
    let b2 = encrypt(&mut bob, b"b2", &mut rng, &ad, &mut steps);
    decrypt(&mut alice, &b2, b"b2", &mut steps);
    let a5 = encrypt(&mut alice, b"a5", &mut rng, &ad, &mut steps);
    decrypt(&mut bob, &a5, b"a5", &mut steps);
    decrypt(&mut bob, &a3, b"a3", &mut steps);

    let vectors = json!({
        "description": "umbra Double Ratchet (docs/PROTOCOL.md §4): X3DH output, then every step of a conversation with out-of-order delivery. Hex everywhere. Messages are encoded as in the spec (version 0x01 || header || ciphertext || tag).",
        "generator": "protocol/tests/vectors_ratchet.rs",
        "rng": "rand_chacha ChaCha20Rng::seed_from_u64",
        "seed": SEED,
        "initial": initial_state,
        "steps": steps,
    });
    common::check_or_regenerate("ratchet.json", &vectors);
}
