//! Test vectors for whole pairwise messages (docs/PROTOCOL.md §4.11): the
//! pre-key message with a one-time prekey, the pre-key message with the
//! last-resort prekey, and plain messages after the responder answered,
//! written to `docs/test-vectors/pairwise.json` from fixed seeds.
//!
//! Two tests, two directions. `pairwise_vectors` runs the library's
//! `PairwiseSession` and requires every message to equal, byte for byte, the
//! one rebuilt here from §4.2-§4.4 and §4.11 with the primitive crates and
//! the labels as literals. `pairwise_vectors_as_a_stranger` reads only the
//! committed file: it splits each message with a parser written from the
//! §4.11 tables (not the library's decoder), re-derives the chain and message
//! keys and the AEAD associated data, and decrypts with ChaCha20-Poly1305.
//!
//! Must never: derive an expected value through the library's own KDFs or
//! decode an expected message with the library's decoder.

mod common;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use common::{check_or_regenerate, committed, hex};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::padding::pad;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseSession, PreKeyStore};
use umbra_protocol::prekeys::{KemPreKeyRef, OneTimePreKey, PreKeyBundle, PreKeyRef, SignedPreKey};
use umbra_protocol::sealed;
use umbra_protocol::wire::{AccountId, Address, DeviceId};
use umbra_protocol::x3dh;

mod pairwise_spec;
use pairwise_spec::{ek_slot, hmac32, kdf_rk, kem_public, message_key, spec, x25519, x25519_pub};

/// The same addresses as `x3dh.json`, so the X3DH part of each session is
/// that file's case with the same seed.
const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};
const BOB_ADDR: Address = Address {
    account: AccountId::from_bytes([0xb0; 16]),
    device: DeviceId(2),
};

fn address_json(address: &Address) -> Value {
    json!({ "account_id": hex(address.account.as_bytes()), "device_id": address.device.0 })
}

/// The responder's private prekeys.
struct Prekeys {
    signed: SignedPreKey,
    one_time: Option<OneTimePreKey>,
    last_resort: Option<OneTimePreKey>,
}

impl PreKeyStore for Prekeys {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        (id == self.signed.id()).then(|| self.signed.secret().clone())
    }
    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        let (key, want) = match prekey {
            PreKeyRef::OneTime(id) => (&self.one_time, id),
            PreKeyRef::LastResort(id) => (&self.last_resort, id),
        };
        key.as_ref()
            .filter(|k| k.id() == want)
            .map(|k| k.secret().clone())
    }
    // A classical fixture: no ML-KEM prekeys, so a hybrid message is an
    // unknown KEM prekey.
    fn kem_prekey(&self, _: KemPreKeyRef) -> Option<KemPreKey> {
        None
    }
}

/// What the spec side of one direction knows: root key, the sender's
/// ratchet private key, the receiver's ratchet public key, the current
/// sending chain key and index, and PN.
struct Chain {
    ratchet_private: [u8; 32],
    chain_key: [u8; 32],
    n: u32,
    pn: u32,
    /// The sender's epoch-1 ML-KEM key pair seed, and the index of the key
    /// chunk its next message carries (§4.13: every message of these runs
    /// carries one, no hybrid step happens in them).
    kem_seed: [u8; 64],
    ek_index: u8,
}

/// The 64 bytes `rng` hands out after skipping `skip`, without consuming.
fn peek64(rng: &ChaCha20Rng, skip: usize) -> [u8; 64] {
    let mut b = vec![0u8; skip + 64];
    rng.clone().fill_bytes(&mut b);
    b[skip..].try_into().unwrap()
}

/// Draws the next 32 bytes `rng` will hand out without consuming them.
fn peek32(rng: &ChaCha20Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.clone().fill_bytes(&mut b);
    b
}

/// A DH step on the spec side: new ratchet key `private` against
/// `their_public`, from `root_key`. Returns the new root key and the chain.
fn dh_step(
    root_key: &[u8; 32],
    private: [u8; 32],
    their_public: [u8; 32],
    pn: u32,
    kem: (&[u8; 64], u8),
) -> ([u8; 32], Chain, [u8; 32]) {
    let dh_out = x25519(private, their_public);
    let (rk, ck) = kdf_rk(root_key, &dh_out);
    let chain = Chain {
        ratchet_private: private,
        chain_key: ck,
        n: 0,
        pn,
        kem_seed: *kem.0,
        ek_index: kem.1,
    };
    (rk, chain, dh_out)
}

/// Builds the whole message from the spec (§4.4, §4.11), checks it equals
/// `actual` (the library's), and records it. `prefix` is the type byte and,
/// for a pre-key message, the X3DH initial header.
#[allow(clippy::too_many_arguments)]
fn spec_message(
    case: &str,
    sender: &str,
    prefix: &[u8],
    x3dh_ad: &[u8],
    chain: &mut Chain,
    plaintext: &[u8],
    actual: &[u8],
    extra: Value,
) -> Value {
    let padded = pad(plaintext).unwrap();
    let (seed, key, nonce) = message_key(&chain.chain_key);
    let mut header = x25519_pub(chain.ratchet_private).to_vec();
    header.extend_from_slice(&chain.pn.to_be_bytes());
    header.extend_from_slice(&chain.n.to_be_bytes());
    header.extend_from_slice(&0u32.to_be_bytes()); // pq_epoch: classical steps
    header.extend_from_slice(&ek_slot(&kem_public(&chain.kem_seed), chain.ek_index));
    assert_eq!(header.len(), spec::HEADER_LEN);
    let mut aad = x3dh_ad.to_vec();
    aad.extend_from_slice(&[prefix[0], spec::RATCHET_VERSION]);
    aad.extend_from_slice(&header);
    let ciphertext = ChaCha20Poly1305::new(Key::from_slice(&key))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &padded,
                aad: &aad,
            },
        )
        .unwrap();
    let mut whole = prefix.to_vec();
    whole.push(spec::RATCHET_VERSION);
    whole.extend_from_slice(&header);
    whole.extend_from_slice(&ciphertext);
    assert_eq!(hex(actual), hex(&whole), "{case}: library message differs");
    let mut v = json!({
        "case": case,
        "sender": sender,
        "type": prefix[0],
        "plaintext": hex(plaintext),
        "padded_plaintext": hex(&padded),
        "ratchet_private": hex(chain.ratchet_private),
        "ratchet_public": hex(x25519_pub(chain.ratchet_private)),
        "previous_chain_length": chain.pn,
        "message_number": chain.n,
        "chain_key": hex(chain.chain_key),
        "message_key_seed": hex(seed),
        "message_key": hex(key),
        "nonce": hex(nonce),
        "header": hex(&header),
        "kem_seed": hex(chain.kem_seed),
        "ek_chunk_index": chain.ek_index,
        "aead_associated_data": hex(&aad),
        "ciphertext": hex(&ciphertext),
        "message": hex(&whole),
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    chain.chain_key = hmac32(&chain.chain_key, &[0x02]);
    chain.n += 1;
    chain.ek_index = (chain.ek_index + 1) % 10;
    v
}

/// The library's inner bytes (the pairwise message) of a sealed envelope.
fn inner(recipient: &IdentityKeyPair, envelope: &[u8]) -> Vec<u8> {
    sealed::open(recipient, envelope).unwrap().inner
}

/// The X3DH initial header on the wire (§3.6 / §4.11).
fn initial_header(
    identity: &[u8],
    ephemeral: &[u8],
    spk_id: u32,
    extra: Option<PreKeyRef>,
) -> Vec<u8> {
    let mut out = identity.to_vec();
    out.extend_from_slice(ephemeral);
    out.extend_from_slice(&spk_id.to_be_bytes());
    match extra {
        None => out.push(0x00),
        Some(PreKeyRef::OneTime(id)) => {
            out.push(0x01);
            out.extend_from_slice(&id.to_be_bytes());
        }
        Some(PreKeyRef::LastResort(id)) => {
            out.push(0x02);
            out.extend_from_slice(&id.to_be_bytes());
        }
    }
    out
}

/// One session. The RNG order up to the X3DH ephemeral is `x3dh.json`'s
/// (same seed, same keys); then Alice's first ratchet key, then each
/// `seal_for` draws its new ratchet key (if a DH step is due) and the
/// sealed-sender ephemeral.
fn session_case(seed: u8, last_resort: bool) -> Value {
    let mut r = ChaCha20Rng::from_seed([seed; 32]);
    let alice = IdentityKeyPair::generate(&mut r);
    let bob = IdentityKeyPair::generate(&mut r);
    let signed = SignedPreKey::generate(&bob, 42, 1_700_000_000, &mut r);
    let otk = OneTimePreKey::generate(7, &mut r);
    let lr = last_resort.then(|| OneTimePreKey::generate(9, &mut r));
    let prekeys = Prekeys {
        signed,
        one_time: (!last_resort).then_some(otk),
        last_resort: lr,
    };
    let bundle = PreKeyBundle {
        identity: bob.public(),
        signed_prekey: prekeys.signed.public(),
        one_time_prekey: prekeys.one_time.as_ref().map(|k| k.public()),
        last_resort: prekeys.last_resort.as_ref().map(|k| k.public()),
        kem_one_time: None,
        kem_last_resort: None,
    };
    let verified = bundle.verify_classical().unwrap();
    let (secret, header) =
        x3dh::initiate(&alice, &ALICE_ADDR, &verified, &BOB_ADDR, &mut r.clone()).unwrap();
    // X3DH draws the ephemeral, then §4.5 Alice's first ratchet key.
    let mut peek = r.clone();
    let (mut ephemeral_secret, mut alice_first) = ([0u8; 32], [0u8; 32]);
    peek.fill_bytes(&mut ephemeral_secret);
    peek.fill_bytes(&mut alice_first);
    let mut alice_session =
        PairwiseSession::initiate_classical(&alice, &ALICE_ADDR, &verified, &BOB_ADDR, &mut r)
            .unwrap();
    let x3dh_rk = *secret.root_key();
    let ad = secret.associated_data().to_vec();
    let spk_secret = prekeys.signed.secret().to_bytes();
    let spk_public = x25519_pub(spk_secret);

    // Her first seal_for draws her KEM key pair seed first (§4.13).
    let alice_kem = peek64(&r, 0);
    let (rk, mut a_chain, _) = dh_step(&x3dh_rk, alice_first, spk_public, 0, (&alice_kem, 0));
    let expected_extra = if last_resort {
        PreKeyRef::LastResort(9)
    } else {
        PreKeyRef::OneTime(7)
    };
    assert_eq!(header.extra_prekey, Some(expected_extra));
    let mut prefix = vec![spec::PREKEY_TYPE];
    prefix.extend_from_slice(&initial_header(
        &alice.public().to_bytes(),
        header.ephemeral.as_bytes(),
        42,
        header.extra_prekey,
    ));

    let mut messages = Vec::new();
    let text: &[u8] = if last_resort {
        b"hello via the last-resort prekey"
    } else {
        b"hello via a one-time prekey"
    };
    let env = alice_session.seal_for(&alice, text, &mut r).unwrap();
    let first_case = if last_resort {
        "b_prekey_last_resort"
    } else {
        "a_prekey_one_time"
    };
    messages.push(spec_message(
        first_case,
        "initiator",
        &prefix,
        &ad,
        &mut a_chain,
        text,
        &inner(&bob, &env),
        json!({ "root_key": hex(rk), "their_ratchet_public": hex(spk_public),
                "initial_header": hex(&prefix[1..]) }),
    ));
    assert_eq!(alice_session.ratchet().root_key().as_bytes(), &rk);
    let inbound = InboundEnvelope::open(&bob, &env).unwrap();
    let (mut bob_session, got, used) =
        PairwiseSession::accept_classical(&bob, &BOB_ADDR, &inbound, &prekeys).unwrap();
    assert_eq!((got.as_slice(), used), (text, Some(expected_extra)));

    if !last_resort {
        // (c) Bob's reply: a DH step from his signed prekey (his first
        // ratchet key) over Alice's ratchet key, after the receiving step.
        // Bob's receiving step already took RK to Alice's value (KDF_RK of
        // the same DH), so his sending step starts from it.
        let rk_recv = rk;
        let bob_new = peek32(&r);
        // His first send: the ratchet key, then his KEM key pair seed.
        let bob_kem = peek64(&r, 32);
        let (rk_b, mut b_chain, dh_out) =
            dh_step(&rk_recv, bob_new, x25519_pub(alice_first), 0, (&bob_kem, 0));
        let reply: &[u8] = b"got it";
        let env = bob_session.seal_for(&bob, reply, &mut r).unwrap();
        messages.push(spec_message(
            "c_plain_reply",
            "responder",
            &[spec::PLAIN_TYPE],
            &ad,
            &mut b_chain,
            reply,
            &inner(&alice, &env),
            json!({ "root_key_before": hex(rk_recv), "their_ratchet_public": hex(x25519_pub(alice_first)),
                    "dh_output": hex(dh_out), "root_key": hex(rk_b) }),
        ));
        let got = alice_session
            .decrypt(&InboundEnvelope::open(&alice, &env).unwrap())
            .unwrap();
        assert_eq!(got, reply);
        // (d) Bob's second plain message: same chain, next chain key.
        let second: &[u8] = b"and a second plain message";
        let env = bob_session.seal_for(&bob, second, &mut r).unwrap();
        messages.push(spec_message(
            "d_plain_second",
            "responder",
            &[spec::PLAIN_TYPE],
            &ad,
            &mut b_chain,
            second,
            &inner(&alice, &env),
            json!({ "root_key": hex(rk_b) }),
        ));
        let got = alice_session
            .decrypt(&InboundEnvelope::open(&alice, &env).unwrap())
            .unwrap();
        assert_eq!(got, second);
        // (e) Alice answers: no longer a pre-key message; a DH step with PN 1.
        // Alice's receiving step over Bob's new key gives Bob's root key.
        let rk_a_recv = rk_b;
        let alice_new = peek32(&r);
        // Her second message: the same KEM key pair, its next chunk.
        let (rk_a, mut a2, dh_out) = dh_step(
            &rk_a_recv,
            alice_new,
            x25519_pub(bob_new),
            1,
            (&alice_kem, 1),
        );
        let answer: &[u8] = b"initiator now sends plain";
        let env = alice_session.seal_for(&alice, answer, &mut r).unwrap();
        messages.push(spec_message(
            "e_plain_initiator_after_reply",
            "initiator",
            &[spec::PLAIN_TYPE],
            &ad,
            &mut a2,
            answer,
            &inner(&bob, &env),
            json!({ "root_key_before": hex(rk_a_recv), "their_ratchet_public": hex(x25519_pub(bob_new)),
                    "dh_output": hex(dh_out), "root_key": hex(rk_a) }),
        ));
        assert_eq!(
            bob_session
                .decrypt(&InboundEnvelope::open(&bob, &env).unwrap())
                .unwrap(),
            answer
        );
        assert_eq!(alice_session.ratchet().root_key().as_bytes(), &rk_a);
    }

    let key_json = |k: &OneTimePreKey| json!({ "id": k.id(), "secret": hex(k.secret().to_bytes()), "public": hex(k.public().key.as_bytes()) });
    json!({
        "rng_seed_byte": seed,
        "x3dh_vector": if last_resort { "x3dh.json last_resort_cases[0]" } else { "x3dh.json cases[0]" },
        "initiator_identity": hex(alice.public().to_bytes()),
        "initiator_address": address_json(&ALICE_ADDR),
        "responder_identity": hex(bob.public().to_bytes()),
        "responder_address": address_json(&BOB_ADDR),
        "signed_prekey": { "id": 42, "secret": hex(spk_secret), "public": hex(spk_public) },
        "one_time_prekey": prekeys.one_time.as_ref().map(key_json),
        "last_resort_prekey": prekeys.last_resort.as_ref().map(key_json),
        "ephemeral_secret": hex(ephemeral_secret),
        "ephemeral_public": hex(header.ephemeral.as_bytes()),
        "x3dh_root_key": hex(x3dh_rk),
        "associated_data": hex(&ad),
        "messages": messages,
    })
}

#[test]
fn pairwise_vectors() {
    let v = json!({
        "description": "Whole pairwise messages (docs/PROTOCOL.md §4.11), the inner bytes of sealed envelopes. Each session's identities, prekeys and X3DH ephemeral are drawn exactly as in the x3dh.json case named by x3dh_vector (ChaCha20Rng::from_seed([rng_seed_byte; 32])); every ratchet private key is given. Per message: chain_key is CK(message_number) of the sender's chain, message_key/nonce from seed = HMAC(chain_key, 0x01) (§4.2); aead_associated_data = associated_data || type || 0x02 || header (§4.4); message = type || [initial_header] || 0x02 || header (178 bytes, §4.3) || ciphertext. Each sender's first send draws, after its ratchet key if it steps, the 64-byte seed of its epoch-1 ML-KEM-768 key pair; kem_seed repeats that one seed on every message of the sender (no later send draws another: no epoch completes in these runs), and every header here carries pq_epoch 0 and chunk ek_chunk_index of that key (§4.13). Cases: a_prekey_one_time, b_prekey_last_resort, c_plain_reply (responder's first message, DH step), d_plain_second (responder, same chain), e_plain_initiator_after_reply (initiator, DH step, now plain).",
        "sessions": [session_case(1, false), session_case(7, true)],
    });
    check_or_regenerate("pairwise.json", &v);
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn h32(v: &Value) -> [u8; 32] {
    h(v).try_into().expect("32 bytes")
}

/// Splits `n` bytes off the front, or fails naming the field.
fn take<'a>(rest: &mut &'a [u8], n: usize, field: &str) -> &'a [u8] {
    assert!(rest.len() >= n, "truncated at {field}");
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    head
}

fn u32be(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().unwrap())
}

#[test]
fn pairwise_vectors_as_a_stranger() {
    let file = committed("pairwise.json");
    let x3dh_file = committed("x3dh.json");
    let mut seen = Vec::new();
    for (s, session) in file["sessions"].as_array().unwrap().iter().enumerate() {
        let x3dh_case = match session["x3dh_vector"].as_str().unwrap() {
            "x3dh.json cases[0]" => &x3dh_file["cases"][0],
            "x3dh.json last_resort_cases[0]" => &x3dh_file["last_resort_cases"][0],
            other => panic!("unknown x3dh vector {other}"),
        };
        assert_eq!(
            session["x3dh_root_key"], x3dh_case["root_key"],
            "session {s}"
        );
        assert_eq!(session["associated_data"], x3dh_case["associated_data"]);
        let ad = h(&session["associated_data"]);
        for m in session["messages"].as_array().unwrap() {
            let case = m["case"].as_str().unwrap();
            seen.push(case.to_string());
            let whole = h(&m["message"]);
            let mut rest = whole.as_slice();
            // §4.11: the type byte first.
            let kind = take(&mut rest, 1, "type")[0];
            assert_eq!(u64::from(kind), m["type"].as_u64().unwrap(), "{case}");
            match kind {
                spec::PREKEY_TYPE => {
                    let identity = take(&mut rest, 128, "initiator identity");
                    assert_eq!(identity, h(&session["initiator_identity"]), "{case}");
                    let base_key = take(&mut rest, 32, "base key");
                    assert_eq!(base_key, h(&session["ephemeral_public"]), "{case}");
                    assert_eq!(
                        x25519_pub(h32(&session["ephemeral_secret"])).as_slice(),
                        base_key
                    );
                    let spk_id = u32be(take(&mut rest, 4, "signed prekey id"));
                    assert_eq!(
                        u64::from(spk_id),
                        session["signed_prekey"]["id"].as_u64().unwrap()
                    );
                    let (tag, field) = match take(&mut rest, 1, "extra tag")[0] {
                        0x01 => (0x01, "one_time_prekey"),
                        0x02 => (0x02, "last_resort_prekey"),
                        other => panic!("{case}: extra tag {other:#04x}, wanted 01 or 02"),
                    };
                    let id = u32be(take(&mut rest, 4, "extra prekey id"));
                    assert_eq!(
                        u64::from(id),
                        session[field]["id"].as_u64().unwrap(),
                        "{case}: tag {tag}"
                    );
                    let header_len = whole.len() - rest.len() - 1;
                    assert_eq!(whole[1..1 + header_len], h(&m["initial_header"])[..]);
                }
                spec::PLAIN_TYPE => {}
                other => panic!("{case}: type byte {other:#04x}"),
            }
            // §4.4: the ratchet message.
            let version = take(&mut rest, 1, "version")[0];
            assert_eq!(version, spec::RATCHET_VERSION, "{case}");
            let header = take(&mut rest, spec::HEADER_LEN, "header");
            assert_eq!(header, h(&m["header"]), "{case}");
            assert_eq!(&header[..32], h(&m["ratchet_public"]), "{case}");
            assert_eq!(
                x25519_pub(h32(&m["ratchet_private"])).as_slice(),
                &header[..32]
            );
            assert_eq!(
                u64::from(u32be(&header[32..36])),
                m["previous_chain_length"].as_u64().unwrap()
            );
            assert_eq!(
                u64::from(u32be(&header[36..40])),
                m["message_number"].as_u64().unwrap()
            );
            // §4.3/§4.13: a classical step, and chunk `ek_chunk_index` of
            // the key that `kem_seed` generates.
            assert_eq!(u32be(&header[40..44]), 0, "{case}: pq_epoch");
            let index = m["ek_chunk_index"].as_u64().unwrap() as u8;
            assert_eq!(
                header[44..],
                ek_slot(&kem_public(&h(&m["kem_seed"])), index)[..],
                "{case}: chunk slot"
            );
            assert!(rest.len() >= 16, "{case}: no room for the tag");
            assert_eq!(rest, h(&m["ciphertext"]), "{case}");
            // §4.2: a DH step's chain key from the root key before it.
            if !m["root_key_before"].is_null() {
                let dh_out = x25519(h32(&m["ratchet_private"]), h32(&m["their_ratchet_public"]));
                assert_eq!(dh_out.as_slice(), h(&m["dh_output"]), "{case}");
                let (rk, ck) = kdf_rk(&h(&m["root_key_before"]), &dh_out);
                assert_eq!(
                    (hex(rk), hex(ck)),
                    (hex(h(&m["root_key"])), hex(h(&m["chain_key"]))),
                    "{case}"
                );
            } else if m["message_number"] == 0 {
                // The initiator's first chain: from the X3DH root key (§4.5).
                let dh_out = x25519(h32(&m["ratchet_private"]), h32(&m["their_ratchet_public"]));
                assert_eq!(
                    h(&m["their_ratchet_public"]),
                    h(&session["signed_prekey"]["public"])
                );
                let (rk, ck) = kdf_rk(&h(&session["x3dh_root_key"]), &dh_out);
                assert_eq!(
                    (hex(rk), hex(ck)),
                    (hex(h(&m["root_key"])), hex(h(&m["chain_key"]))),
                    "{case}"
                );
            }
            let (seed, key, nonce) = message_key(&h(&m["chain_key"]));
            assert_eq!(seed.as_slice(), h(&m["message_key_seed"]), "{case}");
            assert_eq!(key.as_slice(), h(&m["message_key"]), "{case}");
            assert_eq!(nonce.as_slice(), h(&m["nonce"]), "{case}");
            // §4.4: AD || type || version || header.
            let mut aad = ad.clone();
            aad.extend_from_slice(&[kind, version]);
            aad.extend_from_slice(header);
            assert_eq!(aad.len(), 325 + 2 + spec::HEADER_LEN);
            assert_eq!(aad, h(&m["aead_associated_data"]), "{case}");
            let padded = ChaCha20Poly1305::new(Key::from_slice(&h(&m["message_key"])))
                .decrypt(
                    Nonce::from_slice(&h(&m["nonce"])),
                    Payload {
                        msg: rest,
                        aad: &aad,
                    },
                )
                .unwrap_or_else(|_| panic!("{case}: AEAD does not open"));
            assert_eq!(padded, h(&m["padded_plaintext"]), "{case}");
            // §6.3 by hand: content || 0x80 || zeros.
            let end = padded.iter().rposition(|&b| b != 0).unwrap();
            assert_eq!(padded[end], 0x80, "{case}");
            assert_eq!(padded[..end], h(&m["plaintext"])[..], "{case}");
        }
    }
    // d follows on c's chain: its chain key is KDF_CK(c's).
    let msgs = &file["sessions"][0]["messages"];
    assert_eq!(
        hex(hmac32(&h(&msgs[1]["chain_key"]), &[0x02])),
        msgs[2]["chain_key"]
    );
    assert_eq!(
        seen,
        [
            "a_prekey_one_time",
            "c_plain_reply",
            "d_plain_second",
            "e_plain_initiator_after_reply",
            "b_prekey_last_resort"
        ]
    );
}
