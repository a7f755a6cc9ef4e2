//! Test vectors for ephemeral (typing) messages, docs/PROTOCOL.md §4.12,
//! generated from fixed seeds. Every key, the associated data and the AEAD
//! output are recomputed here from the specification with raw HKDF, HMAC,
//! X25519 and ChaCha20-Poly1305, then compared with what the library made.
//! Rewritten only on request (see `common`).

mod common;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use common::{check_or_regenerate, hex};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use serde_json::{json, Value};
use sha2::Sha256;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::keys::{PublicKey, SecretKey};
use umbra_protocol::labels;
use umbra_protocol::padding::pad;
use umbra_protocol::pairwise::EPHEMERAL_MESSAGE_TYPE;
use umbra_protocol::prekeys::{PreKeyBundle, SignedPreKey};
use umbra_protocol::ratchet::{EphemeralMessage, Session};
use umbra_protocol::wire::{AccountId, Address, DeviceId};
use umbra_protocol::x3dh;

const SEED: u64 = 0x0079_7069_6e67; // "typing"
const SENT_AT_MS: u64 = 1_800_000_000_000;

const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};
const BOB_ADDR: Address = Address {
    account: AccountId::from_bytes([0xb0; 16]),
    device: DeviceId(1),
};

/// KDF_RK from §4.2: returns (new root key, chain key 0).
fn kdf_rk(root: &[u8; 32], dh: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(root), dh)
        .expand(labels::RATCHET_ROOT_KEY, &mut okm)
        .unwrap();
    let (mut rk, mut ck) = ([0u8; 32], [0u8; 32]);
    rk.copy_from_slice(&okm[..32]);
    ck.copy_from_slice(&okm[32..]);
    (rk, ck)
}

/// EK = HMAC-SHA256(CK_0, "umbra/v1/ratchet/ephemeral-key").
fn epoch_key(ck0: &[u8; 32]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(ck0).unwrap();
    mac.update(labels::RATCHET_EPHEMERAL_KEY);
    mac.finalize().into_bytes().into()
}

/// Encrypts like the library, with the spec's bytes, and returns the
/// message encoding and the associated data.
fn spec_message(
    ek: &[u8; 32],
    x3dh_ad: &[u8],
    ratchet_key: &PublicKey,
    nonce: &[u8; 12],
    padded: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut header = vec![0x01];
    header.extend_from_slice(ratchet_key.as_bytes());
    header.extend_from_slice(&SENT_AT_MS.to_be_bytes());
    header.extend_from_slice(nonce);
    let mut ad = x3dh_ad.to_vec();
    ad.push(0x03);
    ad.extend_from_slice(&header);
    let ct = ChaCha20Poly1305::new(Key::from_slice(ek))
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: padded,
                aad: &ad,
            },
        )
        .unwrap();
    let mut message = header;
    message.extend_from_slice(&ct);
    (message, ad)
}

fn encode(message: &EphemeralMessage) -> Vec<u8> {
    let mut out = Vec::new();
    message.write_to(&mut out);
    out
}

#[test]
fn ephemeral_vectors_match_the_committed_file() {
    assert_eq!(EPHEMERAL_MESSAGE_TYPE, 0x03);
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&bob_id, 1, 1_700_000_000, &mut rng);
    let bundle = PreKeyBundle {
        identity: bob_id.public(),
        signed_prekey: spk.public(),
        one_time_prekey: None,
        last_resort: None,
        kem_one_time: None,
        kem_last_resort: None,
    }
    .verify_classical()
    .unwrap();
    let (secret_a, initial) =
        x3dh::initiate(&alice_id, &ALICE_ADDR, &bundle, &BOB_ADDR, &mut rng).unwrap();
    let secret_b = x3dh::respond(
        &bob_id,
        &BOB_ADDR,
        &ALICE_ADDR,
        spk.secret(),
        None,
        &initial,
    )
    .unwrap();
    let ad = secret_a.associated_data().to_vec();
    let sk = *secret_a.root_key();

    // Alice's first ratchet key (32 bytes from the RNG) starts her epoch A0.
    let mut peek = rng.clone();
    let mut alice_ratchet = [0u8; 32];
    peek.fill_bytes(&mut alice_ratchet);
    let mut alice = Session::new_initiator(&secret_a, spk.public().key, &mut rng).unwrap();
    let alice_ratchet_public = SecretKey::from_bytes(alice_ratchet).public_key();
    let dh = SecretKey::from_bytes(alice_ratchet)
        .diffie_hellman(&spk.public().key)
        .unwrap();
    let (rk_a, ck0_a) = kdf_rk(&sk, dh.as_bytes());
    assert_eq!(alice.root_key().as_bytes(), &rk_a);
    let ek_a = epoch_key(&ck0_a);
    assert_eq!(alice.ephemeral_send_key(), Some(ek_a));

    // Alice types (no message key is used: the chain stays at index 0).
    let padded = pad(b"typing").unwrap();
    let mut peek = rng.clone();
    let mut nonce_a = [0u8; 12];
    peek.fill_bytes(&mut nonce_a);
    let notice_a = alice
        .encrypt_ephemeral(EPHEMERAL_MESSAGE_TYPE, &padded, SENT_AT_MS, &mut rng)
        .unwrap();
    assert_eq!(alice.sending_chain().map(|c| c.index()), Some(0));
    let (spec_a, ad_a) = spec_message(&ek_a, &ad, &alice_ratchet_public, &nonce_a, &padded);
    assert_eq!(encode(&notice_a), spec_a);

    // Bob receives Alice's first message, then types before replying: his
    // notice takes his sending DH step (a fresh ratchet key from the RNG).
    let mut bob = Session::new_responder(&secret_b, spk.secret().clone());
    let first = alice.encrypt(b"hello", &mut rng).unwrap();
    bob.decrypt(&first).unwrap();
    assert_eq!(
        bob.decrypt_ephemeral(EPHEMERAL_MESSAGE_TYPE, &notice_a)
            .unwrap(),
        padded
    );
    let dh = spk.secret().diffie_hellman(&alice_ratchet_public).unwrap();
    let (rk_b_recv, _) = kdf_rk(&sk, dh.as_bytes());
    let mut peek = rng.clone();
    let mut bob_ratchet = [0u8; 32];
    let mut nonce_b = [0u8; 12];
    peek.fill_bytes(&mut bob_ratchet);
    peek.fill_bytes(&mut nonce_b);
    let notice_b = bob
        .encrypt_ephemeral(EPHEMERAL_MESSAGE_TYPE, &padded, SENT_AT_MS, &mut rng)
        .unwrap();
    let bob_ratchet_public = SecretKey::from_bytes(bob_ratchet).public_key();
    let dh = SecretKey::from_bytes(bob_ratchet)
        .diffie_hellman(&alice_ratchet_public)
        .unwrap();
    let (rk_b, ck0_b) = kdf_rk(&rk_b_recv, dh.as_bytes());
    assert_eq!(bob.root_key().as_bytes(), &rk_b);
    let ek_b = epoch_key(&ck0_b);
    assert_eq!(bob.ephemeral_send_key(), Some(ek_b));
    let (spec_b, ad_b) = spec_message(&ek_b, &ad, &bob_ratchet_public, &nonce_b, &padded);
    assert_eq!(encode(&notice_b), spec_b);
    // Alice has not seen Bob's new ratchet key: she derives it tentatively.
    assert_eq!(
        alice
            .decrypt_ephemeral(EPHEMERAL_MESSAGE_TYPE, &notice_b)
            .unwrap(),
        padded
    );

    let case = |name: &str,
                ratchet_private: &[u8; 32],
                ck0: &[u8; 32],
                ek: &[u8; 32],
                nonce: &[u8; 12],
                aead_ad: &[u8],
                message: &[u8]|
     -> Value {
        json!({
            "by": name,
            "ratchet_private": hex(ratchet_private),
            "chain_key_0": hex(ck0),
            "ephemeral_key": hex(ek),
            "sent_at_ms": SENT_AT_MS,
            "nonce": hex(nonce),
            "padded_plaintext": hex(&padded),
            "aead_associated_data": hex(aead_ad),
            "message": hex(message),
            "pairwise_inner": hex([&[EPHEMERAL_MESSAGE_TYPE][..], message].concat()),
        })
    };
    let vectors = json!({
        "description": "Ephemeral (typing) messages, docs/PROTOCOL.md §4.12. Sessions come from X3DH as in ratchet.json with ChaCha20Rng::seed_from_u64(seed); the RNG then draws Alice's first ratchet key, Alice's nonce, Bob's new ratchet key and Bob's nonce, in that order (Alice's first stored message, which Bob decrypts before typing, draws the 64-byte seed of her first ML-KEM key pair, §4.13, between her nonce and Bob's ratchet key; it mixes no KEM secret, so both epochs here are classical). EK = HMAC-SHA256(chain_key_0, 'umbra/v1/ratchet/ephemeral-key'); AD = X3DH AD || 0x03 || header.",
        "seed": SEED,
        "x3dh_root_key": hex(sk),
        "associated_data": hex(&ad),
        "bob_signed_prekey_private": hex(spk.secret().to_bytes()),
        "bob_root_key_after_receiving": hex(rk_b_recv),
        "epochs": [
            case("alice", &alice_ratchet, &ck0_a, &ek_a, &nonce_a, &ad_a, &spec_a),
            case("bob", &bob_ratchet, &ck0_b, &ek_b, &nonce_b, &ad_b, &spec_b),
        ],
    });
    check_or_regenerate("ephemeral.json", &vectors);
}
