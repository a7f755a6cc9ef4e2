//! Test vectors for sender-key groups (docs/PROTOCOL.md §8.1–§8.6),
//! generated from fixed seeds: `docs/test-vectors/group.json`.
//!
//! Every value is recomputed here from the spec with the raw primitives
//! (HMAC-SHA256, HKDF-SHA256, ChaCha20-Poly1305, Ed25519) and byte layouts
//! written from the tables, then checked against what the library produced;
//! the messages are also decrypted through the real path (sealed to a
//! recipient, opened, `GroupReceiver::decrypt`). Run once with
//! UMBRA_REGENERATE_VECTORS=1 after a deliberate format change (see
//! `common`).

mod common;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use common::{check_or_regenerate, hex};
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};
use sha2::Sha256;
use umbra_protocol::group::{
    GroupId, GroupReceiver, GroupReceiverPickle, GroupSender, GroupSenderPickle, SignedDistribution,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::padding::pad;
use umbra_protocol::pairwise::InboundEnvelope;
use umbra_protocol::sealed;
use umbra_protocol::wire::{AccountId, Address, DeviceId};

/// The labels as docs/PROTOCOL.md §8.1 writes them, copied as literals: a
/// recomputation that took them from `umbra_protocol::labels` would agree
/// with a wrong label in the code.
mod labels {
    pub const GROUP_MESSAGE_KEY_SEED: &[u8] = b"umbra/v1/group/message-seed";
    pub const GROUP_CHAIN_KEY: &[u8] = b"umbra/v1/group/chain-key";
    pub const GROUP_MESSAGE_KEY: &[u8] = b"umbra/v1/group/message-key";
    pub const GROUP_MESSAGE_SIGNATURE: &[u8] = b"umbra/v1/group/message-signature";
    pub const GROUP_DISTRIBUTION_SIGNATURE: &[u8] = b"umbra/v1/group/distribution-signature";
}

const GROUP: GroupId = GroupId([0x9a; 32]);
const EPOCH: u64 = 7;
/// The sender device's relay address (sealed into the envelope).
const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn hmac32(key: &[u8], input: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(input);
    mac.finalize().into_bytes().into()
}

/// §3.2: Ed25519 over `u64be(len(label)) || label || msg`.
fn labelled(key: &SigningKey, label: &[u8], msg: &[u8]) -> [u8; 64] {
    let mut input = (label.len() as u64).to_be_bytes().to_vec();
    input.extend_from_slice(label);
    input.extend_from_slice(msg);
    key.sign(&input).to_bytes()
}

/// The first 32 bytes a seed's RNG yields: the Ed25519 seed that
/// `IdentityKeyPair::generate` and `GroupSender::generate` draw first.
fn first_32(seed: u8) -> [u8; 32] {
    let mut out = [0u8; 32];
    rng(seed).fill_bytes(&mut out);
    out
}

/// postcard LEB128 varint.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A pickle byte string: varint length, then the bytes.
fn byte_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(bytes.len() as u64);
    out.extend_from_slice(bytes);
    out
}

fn header(epoch: u64, chain_id: u32, iteration: u32) -> Vec<u8> {
    let mut h = vec![0x02];
    h.extend_from_slice(&GROUP.0);
    h.extend_from_slice(&epoch.to_be_bytes());
    h.extend_from_slice(&chain_id.to_be_bytes());
    h.extend_from_slice(&iteration.to_be_bytes());
    assert_eq!(h.len(), 49);
    h
}

#[test]
fn group_vectors() {
    let alice = IdentityKeyPair::generate(&mut rng(0x41));
    let alice_signing = SigningKey::from_bytes(&first_32(0x41));
    assert_eq!(
        alice.public().signing_key_bytes(),
        alice_signing.verifying_key().to_bytes()
    );
    let bob = IdentityKeyPair::generate(&mut rng(0x42));

    // §8.2: the sender key draws its signing seed, chain key and chain id.
    let mut draw = rng(6);
    let mut sender_seed = [0u8; 32];
    draw.fill_bytes(&mut sender_seed);
    let mut chain_key = [0u8; 32];
    draw.fill_bytes(&mut chain_key);
    let mut chain_id = [0u8; 4];
    draw.fill_bytes(&mut chain_id);
    let chain_id = u32::from_be_bytes(chain_id);
    let sender_signing = SigningKey::from_bytes(&sender_seed);
    let mut sender = GroupSender::generate(GROUP, EPOCH, &mut rng(6));
    assert_eq!(sender.chain_id(), chain_id);

    // §8.5: the signed distribution.
    let distribution = sender.distribution(&alice);
    let mut signed = vec![0x02];
    signed.extend_from_slice(&GROUP.0);
    signed.extend_from_slice(&EPOCH.to_be_bytes());
    signed.extend_from_slice(&chain_id.to_be_bytes());
    signed.extend_from_slice(&0u32.to_be_bytes());
    signed.extend_from_slice(&chain_key);
    signed.extend_from_slice(sender_signing.verifying_key().as_bytes());
    assert_eq!(signed.len(), 113);
    let dist_signature = labelled(
        &alice_signing,
        labels::GROUP_DISTRIBUTION_SIGNATURE,
        &signed,
    );
    let mut expected = signed.clone();
    expected.extend_from_slice(&dist_signature);
    assert_eq!(distribution.as_bytes(), &expected[..]);
    let verified =
        SignedDistribution::verify(distribution.as_bytes(), &alice.public(), &GROUP).unwrap();
    let mut receiver = GroupReceiver::new(verified);

    // §8.3/§8.4: three messages; the receiver reads 0, then 2 (skipping 1).
    let payloads: [&[u8]; 3] = [b"first", b"", &[0x5a; 200]];
    let mut messages = Vec::new();
    let mut first_envelope = None;
    for (i, payload) in payloads.into_iter().enumerate() {
        let message = sender.encrypt(payload).unwrap();
        let bytes = message.as_bytes();
        let seed = hmac32(&chain_key, labels::GROUP_MESSAGE_KEY_SEED);
        let h = header(EPOCH, chain_id, i as u32);
        let mut okm = [0u8; 44];
        Hkdf::<Sha256>::new(None, &seed)
            .expand_multi_info(&[labels::GROUP_MESSAGE_KEY, &h], &mut okm)
            .unwrap();
        let padded = pad(payload).unwrap();
        let ciphertext = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]))
            .encrypt(
                Nonce::from_slice(&okm[32..]),
                Payload {
                    msg: &padded,
                    aad: &h,
                },
            )
            .unwrap();
        let mut body = h.clone();
        body.extend_from_slice(&ciphertext);
        let signature = labelled(&sender_signing, labels::GROUP_MESSAGE_SIGNATURE, &body);
        let mut whole = body;
        whole.extend_from_slice(&signature);
        assert_eq!(bytes, &whole[..], "message {i}");
        assert_eq!(message.sealed_inner()[0], 0x04);
        assert_eq!(&message.sealed_inner()[1..], bytes);

        // Through the real path: sealed to bob, opened, decrypted.
        let envelope = message
            .seal_to(&alice, &ALICE_ADDR, &bob.public(), &mut rng(0x50 + i as u8))
            .unwrap();
        if i != 1 {
            let inbound = InboundEnvelope::open(&bob, &envelope).unwrap();
            assert_eq!(inbound.sender_address(), &ALICE_ADDR);
            assert_eq!(inbound.group_message(), Some(&message));
            assert_eq!(receiver.decrypt(&inbound).unwrap(), payload);
        }
        if i == 0 {
            let opened = sealed::open(&bob, &envelope).unwrap();
            assert_eq!(opened.inner, message.sealed_inner());
            first_envelope = Some(envelope);
        }
        messages.push(json!({
            "iteration": i,
            "payload": hex(payload),
            "padded": hex(&padded),
            "chain_key": hex(chain_key),
            "message_key_seed": hex(seed),
            "aead_key": hex(&okm[..32]),
            "aead_nonce": hex(&okm[32..]),
            "header": hex(&h),
            "signature": hex(signature),
            "message": hex(bytes),
        }));
        chain_key = hmac32(&chain_key, labels::GROUP_CHAIN_KEY);
    }

    // §8.6: pickles after the three messages (sender at iteration 3;
    // receiver at 3 with the seed of iteration 1 skipped).
    let sender_pickle = sender.pickle().encode();
    let mut expected = vec![0x01];
    expected.extend(byte_string(&GROUP.0));
    expected.extend(varint(EPOCH));
    expected.extend(varint(chain_id.into()));
    expected.extend(byte_string(&sender_seed));
    expected.extend(byte_string(&chain_key));
    expected.extend(varint(3));
    assert_eq!(&sender_pickle[..], &expected[..]);

    let receiver_pickle = receiver.pickle().encode();
    let seed_1 = messages[1]["message_key_seed"].as_str().unwrap();
    let mut expected = vec![0x01];
    expected.extend(byte_string(&GROUP.0));
    expected.extend(varint(EPOCH));
    expected.extend(varint(chain_id.into()));
    expected.extend(byte_string(&alice.public().to_bytes()));
    expected.extend(byte_string(sender_signing.verifying_key().as_bytes()));
    expected.extend(byte_string(&chain_key));
    expected.extend(varint(3));
    expected.extend(varint(1));
    expected.extend(varint(1));
    expected.extend(byte_string(&::hex::decode(seed_1).unwrap()));
    assert_eq!(&receiver_pickle[..], &expected[..]);

    // Both load and keep working: the loaded receiver reads the skipped
    // message 1, the loaded sender continues at iteration 3.
    let mut loaded =
        GroupReceiver::from_pickle(&GroupReceiverPickle::decode(&receiver_pickle).unwrap())
            .unwrap();
    let m1 = umbra_protocol::group::GroupMessage::from_bytes(
        &::hex::decode(messages[1]["message"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let again = m1
        .seal_to(&alice, &ALICE_ADDR, &bob.public(), &mut rng(0x60))
        .unwrap();
    let inbound = InboundEnvelope::open(&bob, &again).unwrap();
    assert_eq!(loaded.decrypt(&inbound).unwrap(), b"");
    let resumed =
        GroupSender::from_pickle(&GroupSenderPickle::decode(&sender_pickle).unwrap()).unwrap();
    assert_eq!(resumed.iteration(), 3);

    let v = json!({
        "description": "Sender-key groups v2 (docs/PROTOCOL.md §8). alice = IdentityKeyPair::generate(ChaCha20Rng::from_seed([0x41; 32])) (its first 32 bytes are the Ed25519 identity seed), bob = the same with [0x42; 32]. GroupSender::generate(group_id, epoch, ChaCha20Rng::from_seed([6; 32])) draws the sender-key Ed25519 seed (32), chain key (32), chain id (4, big-endian). Messages carry the given payloads padded (section 6); bob reads 0 and 2, then the pickles are taken. first_envelope is message 0 sealed by alice (address account a1*16, device 1) to bob with ChaCha20Rng::from_seed([0x50; 32]).",
        "group_id": hex(GROUP.0),
        "epoch": EPOCH,
        "chain_id": chain_id,
        "alice_identity_seed": hex(first_32(0x41)),
        "alice_public_identity": hex(alice.public().to_bytes()),
        "bob_public_identity": hex(bob.public().to_bytes()),
        "bob_x25519_secret": hex(bob.dh_secret().to_bytes()),
        "sender_signing_seed": hex(sender_seed),
        "sender_signing_public": hex(sender_signing.verifying_key().as_bytes()),
        "distribution_signed_part": hex(&signed),
        "distribution_signature": hex(dist_signature),
        "distribution": hex(distribution.as_bytes()),
        "messages": messages,
        "first_envelope": hex(first_envelope.unwrap()),
        "sender_pickle": hex(&sender_pickle[..]),
        "receiver_pickle": hex(&receiver_pickle[..]),
    });
    check_or_regenerate("group.json", &v);
}

/// The JSON string at `key` as bytes (for the stranger check below).
fn bytes_at(v: &Value, key: &str) -> Vec<u8> {
    ::hex::decode(v[key].as_str().unwrap()).unwrap()
}

/// Reads the committed file as another implementation would: splits the
/// distribution and messages by the §8.4/§8.5 tables, verifies both
/// signatures with the public keys alone and decrypts every message.
#[test]
fn group_vectors_as_a_stranger() {
    let text = std::fs::read_to_string(common::vector_path("group.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let alice = ed25519_dalek::VerifyingKey::from_bytes(
        &bytes_at(&v, "alice_public_identity")[..32]
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let dist = bytes_at(&v, "distribution");
    assert_eq!(dist.len(), 177);
    let mut input = (labels::GROUP_DISTRIBUTION_SIGNATURE.len() as u64)
        .to_be_bytes()
        .to_vec();
    input.extend_from_slice(labels::GROUP_DISTRIBUTION_SIGNATURE);
    input.extend_from_slice(&dist[..113]);
    alice
        .verify_strict(
            &input,
            &ed25519_dalek::Signature::from_slice(&dist[113..]).unwrap(),
        )
        .unwrap();
    let signing =
        ed25519_dalek::VerifyingKey::from_bytes(&dist[81..113].try_into().unwrap()).unwrap();
    let mut chain_key: [u8; 32] = dist[49..81].try_into().unwrap();
    for m in v["messages"].as_array().unwrap() {
        let msg = bytes_at(m, "message");
        let (body, signature) = msg.split_at(msg.len() - 64);
        let mut input = (labels::GROUP_MESSAGE_SIGNATURE.len() as u64)
            .to_be_bytes()
            .to_vec();
        input.extend_from_slice(labels::GROUP_MESSAGE_SIGNATURE);
        input.extend_from_slice(body);
        signing
            .verify_strict(
                &input,
                &ed25519_dalek::Signature::from_slice(signature).unwrap(),
            )
            .unwrap();
        let (h, ciphertext) = body.split_at(49);
        assert_eq!(h[0], 0x02);
        assert_eq!(&h[1..45], &dist[1..45], "group, epoch, chain id");
        let iteration = u32::from_be_bytes(h[45..49].try_into().unwrap());
        assert_eq!(u64::from(iteration), m["iteration"].as_u64().unwrap());
        let seed = hmac32(&chain_key, labels::GROUP_MESSAGE_KEY_SEED);
        let mut okm = [0u8; 44];
        Hkdf::<Sha256>::new(None, &seed)
            .expand_multi_info(&[labels::GROUP_MESSAGE_KEY, h], &mut okm)
            .unwrap();
        let padded = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]))
            .decrypt(
                Nonce::from_slice(&okm[32..]),
                Payload {
                    msg: ciphertext,
                    aad: h,
                },
            )
            .unwrap();
        assert_eq!(padded, bytes_at(m, "padded"));
        chain_key = hmac32(&chain_key, labels::GROUP_CHAIN_KEY);
    }
}
