//! Test vectors for identities, X3DH, sealed sender, padding, safety
//! numbers, generated from fixed seeds (sender-key groups: vectors_group.rs).
//!
//! Each intermediate value is recomputed here from docs/PROTOCOL.md with the raw
//! primitives and checked against what the library produced, so the vector
//! files pin the specification and the code together. Run once with
//! UMBRA_REGENERATE_VECTORS=1 after a deliberate format change (see
//! `common` for what that mode does).

mod common;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use common::{check_or_regenerate, hex};
use hkdf::Hkdf;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};
use sha2::Sha256;
use umbra_protocol::fingerprint::SafetyNumber;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::keys::SecretKey;
/// The labels as docs/PROTOCOL.md writes them (sections 3.1 and 5.1),
/// copied here as literals: a recomputation that took them from
/// `umbra_protocol::labels` would agree with a wrong label in the code.
mod labels {
    pub const X3DH_ROOT_KEY: &[u8] = b"umbra/v1/x3dh/root-key";
    pub const X3DH_ASSOCIATED_DATA: &[u8] = b"umbra/v1/x3dh/associated-data";
    pub const SEALED_EPHEMERAL_SALT: &[u8] = b"umbra/v1/sealed/ephemeral/salt";
    pub const SEALED_EPHEMERAL_CHAIN_KEY: &[u8] = b"umbra/v1/sealed/ephemeral/chain-key";
    pub const SEALED_EPHEMERAL_CIPHER_KEY: &[u8] = b"umbra/v1/sealed/ephemeral/cipher-key";
    pub const SEALED_STATIC_CIPHER_KEY: &[u8] = b"umbra/v1/sealed/static/cipher-key";
}
use umbra_protocol::padding::{pad, unpad};
use umbra_protocol::prekeys::{OneTimePreKey, PreKeyBundle, PreKeyRef, SignedPreKey};
use umbra_protocol::sealed;
use umbra_protocol::wire::{AccountId, Address, DeviceId};
use umbra_protocol::x3dh::{initiate, respond};

/// The initiator's (sender's) relay address in every case: fixed bytes, so
/// the vectors do not depend on how an account id is drawn.
const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};
/// The responder's (recipient's) relay address; device 2 so that the
/// device field's position is visible in the vectors.
const BOB_ADDR: Address = Address {
    account: AccountId::from_bytes([0xb0; 16]),
    device: DeviceId(2),
};

/// Spec encoding of an address in KDF inputs and AD: account (16) || u32be(device).
fn address_bytes(address: &Address) -> Vec<u8> {
    let mut out = address.account.as_bytes().to_vec();
    out.extend_from_slice(&address.device.0.to_be_bytes());
    out
}

fn address_json(address: &Address) -> Value {
    json!({
        "account_id": hex(address.account.as_bytes()),
        "device_id": address.device.0,
    })
}

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// An identity drawn from `rng`, with the private bytes it consumed
/// (spec: 32-byte Ed25519 seed, then 32-byte X25519 secret).
fn identity(rng: &mut ChaCha20Rng) -> (IdentityKeyPair, Value) {
    let mut peek = rng.clone();
    let mut seed = [0u8; 32];
    let mut dh = [0u8; 32];
    peek.fill_bytes(&mut seed);
    peek.fill_bytes(&mut dh);
    let id = IdentityKeyPair::generate(rng);
    assert_eq!(id.dh_secret().to_bytes(), dh);
    let public = id.public();
    let v = json!({
        "ed25519_seed": hex(seed),
        "x25519_secret": hex(dh),
        "ed25519_public": hex(public.signing_key_bytes()),
        "x25519_public": hex(public.dh_key().as_bytes()),
        "public_identity": hex(public.to_bytes()),
    });
    (id, v)
}

fn hkdf32(salt: Option<&[u8]>, ikm: &[u8], info: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(salt, ikm)
        .expand_multi_info(info, &mut out)
        .unwrap();
    out
}

/// Which extra prekey (§3.5) a case's bundle offers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// A one-time prekey (id 7): DH4 with it, header tag `OneTime`.
    OneTime,
    /// Neither a one-time nor a last-resort prekey: three DHs.
    Absent,
    /// Only the last-resort prekey (id 9): DH4 with it, header tag
    /// `LastResort`.
    LastResort,
}

fn x3dh_case(seed: u8, extra: Extra) -> Value {
    let mut r = rng(seed);
    let (alice, alice_v) = identity(&mut r);
    let (bob, bob_v) = identity(&mut r);
    let spk = SignedPreKey::generate(&bob, 42, 1_700_000_000, &mut r);
    let otk = OneTimePreKey::generate(7, &mut r);
    // Drawn only in the last-resort case, so the older cases keep their bytes.
    let last_resort = (extra == Extra::LastResort).then(|| OneTimePreKey::generate(9, &mut r));
    let with_one_time = extra == Extra::OneTime;
    // The prekey DH4 uses, if any: the one-time key, else the last-resort key.
    let extra_key = match extra {
        Extra::OneTime => Some(&otk),
        Extra::Absent => None,
        Extra::LastResort => last_resort.as_ref(),
    };
    let bundle = PreKeyBundle {
        identity: bob.public(),
        signed_prekey: spk.public(),
        one_time_prekey: with_one_time.then(|| otk.public()),
        last_resort: last_resort.as_ref().map(|k| k.public()),
        kem_one_time: None,
        kem_last_resort: None,
    };
    let bundle_bytes = postcard::to_stdvec(&bundle).unwrap();
    let verified = bundle.verify_classical().unwrap();

    let ephemeral = SecretKey::generate(&mut r.clone());
    let (secret, header) = initiate(&alice, &ALICE_ADDR, &verified, &BOB_ADDR, &mut r).unwrap();
    assert_eq!(header.ephemeral, ephemeral.public_key());
    let expected_ref = match extra {
        Extra::OneTime => Some(PreKeyRef::OneTime(7)),
        Extra::Absent => None,
        Extra::LastResort => Some(PreKeyRef::LastResort(9)),
    };
    assert_eq!(
        header.extra_prekey, expected_ref,
        "§3.5 extra prekey choice"
    );
    let responder = respond(
        &bob,
        &BOB_ADDR,
        &ALICE_ADDR,
        spk.secret(),
        extra_key.map(|k| k.secret()),
        &header,
    )
    .unwrap();
    assert_eq!(responder.root_key(), secret.root_key());

    // Recompute from the spec.
    let spk_pub = spk.public().key;
    let dh1 = alice.dh_secret().diffie_hellman(&spk_pub).unwrap();
    let dh2 = ephemeral.diffie_hellman(bob.public().dh_key()).unwrap();
    let dh3 = ephemeral.diffie_hellman(&spk_pub).unwrap();
    let dh4 = extra_key.map(|k| ephemeral.diffie_hellman(&k.public().key).unwrap());
    let mut ikm = vec![0xFF; 32];
    ikm.extend_from_slice(dh1.as_bytes());
    ikm.extend_from_slice(dh2.as_bytes());
    ikm.extend_from_slice(dh3.as_bytes());
    let mut parties = alice.public().to_bytes().to_vec();
    parties.extend_from_slice(&address_bytes(&ALICE_ADDR));
    parties.extend_from_slice(&bob.public().to_bytes());
    parties.extend_from_slice(&address_bytes(&BOB_ADDR));
    let mut info = labels::X3DH_ROOT_KEY.to_vec();
    info.extend_from_slice(&parties);
    info.extend_from_slice(header.ephemeral.as_bytes());
    info.extend_from_slice(spk_pub.as_bytes());
    if let (Some(key), Some(dh4)) = (extra_key, &dh4) {
        ikm.extend_from_slice(dh4.as_bytes());
        info.extend_from_slice(key.public().key.as_bytes());
    }
    assert_eq!(&hkdf32(Some(&[0u8; 32]), &ikm, &[&info]), secret.root_key());
    let mut ad = labels::X3DH_ASSOCIATED_DATA.to_vec();
    ad.extend_from_slice(&parties);
    assert_eq!(ad.len(), 325);
    assert_eq!(ad, secret.associated_data());

    let mut case = json!({
        "rng_seed_byte": seed,
        "initiator": alice_v,
        "initiator_address": address_json(&ALICE_ADDR),
        "responder": bob_v,
        "responder_address": address_json(&BOB_ADDR),
        "signed_prekey": {
            "id": 42, "created_at": 1_700_000_000u64,
            "secret": hex(spk.secret().to_bytes()),
            "public": hex(spk_pub.as_bytes()),
            "signature": hex(spk.public().signature.to_bytes()),
        },
        "one_time_prekey": if with_one_time { json!({
            "id": 7, "secret": hex(otk.secret().to_bytes()), "public": hex(otk.public().key.as_bytes()),
        }) } else { Value::Null },
        "bundle_postcard": hex(&bundle_bytes),
        "ephemeral_secret": hex(ephemeral.to_bytes()),
        "ephemeral_public": hex(header.ephemeral.as_bytes()),
        "dh1": hex(dh1.as_bytes()),
        "dh2": hex(dh2.as_bytes()),
        "dh3": hex(dh3.as_bytes()),
        "dh4": dh4.map(|d| hex(d.as_bytes())),
        "hkdf_ikm": hex(&ikm),
        "hkdf_info": hex(&info),
        "root_key": hex(secret.root_key()),
        "associated_data": hex(secret.associated_data()),
        "initial_header_postcard": hex(postcard::to_stdvec(&header).unwrap()),
    });
    if let Some(key) = &last_resort {
        // Only this case has the field: the older cases stay byte-identical.
        case["last_resort_prekey"] = json!({
            "id": 9, "secret": hex(key.secret().to_bytes()), "public": hex(key.public().key.as_bytes()),
        });
    }
    case
}

#[test]
fn x3dh_vectors() {
    let v = json!({
        "description": "X3DH (docs/PROTOCOL.md §3). Identities draw a 32-byte Ed25519 seed then a 32-byte X25519 secret; the signed prekey, one-time prekey, last-resort prekey (last_resort_cases only) and ephemeral each draw 32 bytes, in the order listed, from ChaCha20Rng::from_seed([rng_seed_byte; 32]). cases[0] uses a one-time prekey, cases[1] no extra prekey; last_resort_cases[0] has a bundle with only a last-resort prekey (id 9), which DH4 and the info then use (§3.5, §3.6) and the initial header names as LastResort(9).",
        "cases": [x3dh_case(1, Extra::OneTime), x3dh_case(2, Extra::Absent)],
        "last_resort_cases": [x3dh_case(7, Extra::LastResort)],
    });
    check_or_regenerate("x3dh.json", &v);
}

fn sealed_case(seed: u8, inner: &[u8]) -> Value {
    let mut r = rng(seed);
    let (alice, alice_v) = identity(&mut r);
    let (bob, bob_v) = identity(&mut r);
    let e = SecretKey::generate(&mut r.clone());
    let envelope = sealed::seal(&alice, &ALICE_ADDR, &bob.public(), inner, &mut r).unwrap();

    let e_pub = e.public_key();
    let s1 = e.diffie_hellman(bob.public().dh_key()).unwrap();
    let mut salt = labels::SEALED_EPHEMERAL_SALT.to_vec();
    salt.extend_from_slice(&bob.public().to_bytes());
    salt.extend_from_slice(e_pub.as_bytes());
    let chain_key = hkdf32(
        Some(&salt),
        s1.as_bytes(),
        &[labels::SEALED_EPHEMERAL_CHAIN_KEY],
    );
    let k1 = hkdf32(
        Some(&salt),
        s1.as_bytes(),
        &[labels::SEALED_EPHEMERAL_CIPHER_KEY],
    );
    let mut expect = vec![sealed::SEALED_VERSION];
    expect.extend_from_slice(e_pub.as_bytes());
    let mut sender_plaintext = alice.public().to_bytes().to_vec();
    sender_plaintext.extend_from_slice(&address_bytes(&ALICE_ADDR));
    let c1 = ChaCha20Poly1305::new(Key::from_slice(&k1))
        .encrypt(
            Nonce::from_slice(&[0; 12]),
            Payload {
                msg: &sender_plaintext,
                aad: &expect,
            },
        )
        .unwrap();
    expect.extend_from_slice(&c1);
    let s2 = alice
        .dh_secret()
        .diffie_hellman(bob.public().dh_key())
        .unwrap();
    let k2 = hkdf32(
        Some(&chain_key),
        s2.as_bytes(),
        &[labels::SEALED_STATIC_CIPHER_KEY, &c1],
    );
    let c2 = ChaCha20Poly1305::new(Key::from_slice(&k2))
        .encrypt(
            Nonce::from_slice(&[0; 12]),
            Payload {
                msg: inner,
                aad: &expect,
            },
        )
        .unwrap();
    expect.extend_from_slice(&c2);
    assert_eq!(expect, envelope);
    let opened = sealed::open(&bob, &envelope).unwrap();
    assert_eq!(opened.sender, alice.public());
    assert_eq!(opened.sender_address, ALICE_ADDR);
    assert_eq!(opened.inner, inner);

    json!({
        "rng_seed_byte": seed,
        "sender": alice_v,
        "sender_address": address_json(&ALICE_ADDR),
        "recipient": bob_v,
        "sender_plaintext": hex(&sender_plaintext),
        "inner": hex(inner),
        "ephemeral_secret": hex(e.to_bytes()),
        "ephemeral_public": hex(e_pub.as_bytes()),
        "ephemeral_dh": hex(s1.as_bytes()),
        "ephemeral_salt": hex(&salt),
        "chain_key": hex(chain_key),
        "sender_cipher_key": hex(k1),
        "sender_ciphertext": hex(&c1),
        "static_dh": hex(s2.as_bytes()),
        "inner_cipher_key": hex(k2),
        "envelope": hex(&envelope),
    })
}

#[test]
fn sealed_sender_vectors() {
    let v = json!({
        "description": "Sealed sender v1 (docs/PROTOCOL.md §5). Sender identity, recipient identity, then the 32-byte ephemeral secret are drawn from ChaCha20Rng::from_seed([rng_seed_byte; 32]).",
        "cases": [sealed_case(3, b""), sealed_case(4, b"hello, sealed world")],
    });
    check_or_regenerate("sealed_sender.json", &v);
}

#[test]
fn padding_vectors() {
    let mut cases = Vec::new();
    for len in [
        0usize, 1, 5, 159, 160, 161, 1599, 1600, 2047, 2048, 4095, 32768, 65535,
    ] {
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let padded = pad(&content).unwrap();
        assert_eq!(unpad(&padded).unwrap(), content);
        let mut case = json!({
            "content_len": len,
            "content": "bytes i % 251 for i in 0..content_len",
            "padded_len": padded.len(),
        });
        if len <= 161 {
            case["padded"] = json!(hex(&padded));
        }
        cases.push(case);
    }
    let mut invalid = Vec::new();
    let mut bad_bucket = vec![0u8; 161];
    bad_bucket[0] = 0x80;
    let mut non_canonical = vec![0u8; 320];
    non_canonical[0] = 0x80;
    let mut wrong_terminator = vec![0u8; 160];
    wrong_terminator[3] = 0x01;
    for (bytes, err) in [
        (vec![], "NotABucket"),
        (bad_bucket, "NotABucket"),
        (vec![0u8; 160], "MissingTerminator"),
        (wrong_terminator, "MissingTerminator"),
        (non_canonical, "NonCanonical"),
    ] {
        let got = unpad(&bytes).unwrap_err();
        assert!(format!("{got:?}").starts_with(err), "{got:?}");
        invalid.push(json!({ "padded": hex(&bytes), "error": err }));
    }
    assert!(pad(&vec![0u8; 65536]).is_err());
    let v = json!({
        "description": "Padding (docs/PROTOCOL.md §6): content || 0x80 || zeros to the smallest bucket; buckets 160*k up to 1600, then powers of two up to 65536.",
        "max_content_len": 65535,
        "valid": cases,
        "invalid": invalid,
    });
    check_or_regenerate("padding.json", &v);
}

#[test]
fn safety_number_vectors() {
    let mut r = rng(5);
    let (alice, alice_v) = identity(&mut r);
    let (bob, bob_v) = identity(&mut r);
    let a_id = b"alice@umbra";
    let b_id = b"bob@umbra";
    let number = SafetyNumber::compute(a_id, &alice.public(), b_id, &bob.public());
    let reverse = SafetyNumber::compute(b_id, &bob.public(), a_id, &alice.public());
    assert_eq!(number, reverse);
    let expected = spec_safety_number(
        a_id,
        &spec_identity_keys(&alice_v),
        b_id,
        &spec_identity_keys(&bob_v),
    );
    assert_eq!(number.digits(), expected, "safety number differs from §7.1");
    let groups: Vec<&str> = (0..12).map(|i| &expected[5 * i..5 * i + 5]).collect();
    assert_eq!(
        number.display(),
        groups.join(" "),
        "display differs from §7.2"
    );
    let v = json!({
        "description": "Safety numbers (docs/PROTOCOL.md §7). Identities from ChaCha20Rng::from_seed([5; 32]).",
        "local": { "stable_id": hex(a_id), "identity": alice_v },
        "remote": { "stable_id": hex(b_id), "identity": bob_v },
        "digits": number.digits(),
        "display": number.display(),
    });
    check_or_regenerate("safety_number.json", &v);
}

/// `ed25519_public || x25519_public`, derived with the primitive crates
/// from the private bytes recorded in an identity's vector.
fn spec_identity_keys(identity: &Value) -> [u8; 64] {
    let bytes = |field: &str| -> [u8; 32] {
        let text = identity[field].as_str().expect("hex field");
        hex::decode(text)
            .expect("hex")
            .try_into()
            .expect("32 bytes")
    };
    let signing = ed25519_dalek::SigningKey::from_bytes(&bytes("ed25519_seed"));
    let dh = x25519_dalek::x25519(bytes("x25519_secret"), x25519_dalek::X25519_BASEPOINT_BYTES);
    let mut keys = [0u8; 64];
    keys[..32].copy_from_slice(signing.verifying_key().as_bytes());
    keys[32..].copy_from_slice(&dh);
    keys
}

/// PROTOCOL.md §7.1 with SHA-512 directly and the label as a literal.
fn spec_safety_number(
    local_id: &[u8],
    local: &[u8; 64],
    remote_id: &[u8],
    remote: &[u8; 64],
) -> String {
    use sha2::{Digest, Sha512};
    let half = |id: &[u8], keys: &[u8; 64]| -> String {
        let mut h = Sha512::new();
        h.update(1u16.to_be_bytes());
        h.update(b"umbra/v1/fingerprint");
        h.update(keys);
        h.update(id);
        let mut h = h.finalize();
        for _ in 0..5200 {
            let mut next = Sha512::new();
            next.update(h);
            next.update(keys);
            h = next.finalize();
        }
        (0..6)
            .map(|j| {
                let v = h[5 * j..5 * j + 5]
                    .iter()
                    .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                format!("{:05}", v % 100_000)
            })
            .collect()
    };
    let (a, b) = (half(local_id, local), half(remote_id, remote));
    if a <= b {
        a + &b
    } else {
        b + &a
    }
}
