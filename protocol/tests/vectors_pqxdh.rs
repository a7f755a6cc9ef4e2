//! Test vectors for the hybrid key agreement (PQXDH, docs/PROTOCOL.md 3.9,
//! 3.10) and the fields of a hybrid pre-key message (4.11, type `0x05`),
//! generated from fixed seeds into `docs/test-vectors/pqxdh.json`.
//!
//! Every value the library produced is recomputed here from the
//! specification with the raw primitives: the KEM prekey signature with
//! ed25519-dalek over `u64be(len(label)) || label || msg`, ML-KEM-768 with
//! the `ml-kem` crate directly (`KeyGen_internal(d, z)`,
//! `Encaps_internal(ek, m)`, `Decaps`), HKDF-SHA256 and SHA-256 from their
//! crates, and the labels as literals copied from the spec. Run once with
//! UMBRA_REGENERATE_VECTORS=1 after a deliberate format change.

mod common;

use ::kem::Decapsulate;
use common::{check_or_regenerate, hex};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use hkdf::Hkdf;
use ml_kem::{EncapsulateDeterministic, EncodedSizeUser, KemCore, MlKem768};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::{KemPreKey, KemPreKeyKind};
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{
    InboundEnvelope, PairwiseMessage, PairwiseSession, PreKeyMessage, HYBRID_PREKEY_MESSAGE_TYPE,
};
use umbra_protocol::prekeys::{OneTimePreKey, PreKeyBundle, PreKeyRef, SignedPreKey};
use umbra_protocol::ratchet::RatchetMessage;
use umbra_protocol::wire::{AccountId, Address, DeviceId};
use umbra_protocol::x3dh::{initiate_hybrid, respond_hybrid};

/// The labels as docs/PROTOCOL.md 3.1 writes them, as literals.
mod labels {
    pub const KEM_PREKEY: &[u8] = b"umbra/v1/prekey/kem";
    pub const PQXDH_ROOT_KEY: &[u8] = b"umbra/v1/pqxdh/root-key";
    pub const PQXDH_ASSOCIATED_DATA: &[u8] = b"umbra/v1/pqxdh/associated-data";
}

const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};
const BOB_ADDR: Address = Address {
    account: AccountId::from_bytes([0xb0; 16]),
    device: DeviceId(2),
};
const CREATED_AT: u64 = 1_700_000_000;

fn address_bytes(address: &Address) -> Vec<u8> {
    let mut out = address.account.as_bytes().to_vec();
    out.extend_from_slice(&address.device.0.to_be_bytes());
    out
}

fn peek<const N: usize>(rng: &ChaCha20Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.clone().fill_bytes(&mut out);
    out
}

fn identity(rng: &mut ChaCha20Rng) -> (IdentityKeyPair, Value) {
    let drawn: [u8; 64] = peek(rng);
    let id = IdentityKeyPair::generate(rng);
    assert_eq!(id.dh_secret().to_bytes(), drawn[32..]);
    let public = id.public();
    let v = json!({
        "ed25519_seed": hex(&drawn[..32]),
        "x25519_secret": hex(&drawn[32..]),
        "ed25519_public": hex(public.signing_key_bytes()),
        "x25519_public": hex(public.dh_key().as_bytes()),
        "public_identity": hex(public.to_bytes()),
    });
    (id, v)
}

/// Which prekeys a case's bundle carries.
#[derive(Clone, Copy)]
struct Shape {
    /// An X25519 one-time prekey (id 7), else no extra prekey.
    x25519_one_time: bool,
    /// A one-time ML-KEM prekey (id 40), served beside the last-resort one
    /// (id 41); else only the last-resort one.
    kem_one_time: bool,
}

fn case(seed: u8, shape: Shape) -> Value {
    let mut r = ChaCha20Rng::from_seed([seed; 32]);
    let (alice, alice_v) = identity(&mut r);
    let (bob, bob_v) = identity(&mut r);
    let spk = SignedPreKey::generate(&bob, 42, CREATED_AT, &mut r);
    let otk = OneTimePreKey::generate(7, &mut r);
    let kem_ot_seed: [u8; 64] = peek(&r);
    let kem_ot = KemPreKey::generate(&bob, KemPreKeyKind::OneTime, 40, CREATED_AT, &mut r);
    let kem_lr_seed: [u8; 64] = peek(&r);
    let kem_lr = KemPreKey::generate(&bob, KemPreKeyKind::LastResort, 41, CREATED_AT, &mut r);
    let bundle = PreKeyBundle {
        identity: bob.public(),
        signed_prekey: spk.public(),
        one_time_prekey: shape.x25519_one_time.then(|| otk.public()),
        last_resort: None,
        kem_one_time: shape.kem_one_time.then(|| kem_ot.public()),
        kem_last_resort: Some(kem_lr.public()),
    };
    let verified = bundle.clone().verify().unwrap();
    let (used_kem, used_kem_seed) = if shape.kem_one_time {
        (&kem_ot, kem_ot_seed)
    } else {
        (&kem_lr, kem_lr_seed)
    };

    // The initiator draws EK_A (32 bytes), then ML-KEM's m (32 bytes).
    let ephemeral_secret: [u8; 32] = peek(&r);
    let drawn: [u8; 64] = peek(&r);
    let m: [u8; 32] = drawn[32..].try_into().unwrap();
    let (secret, header) =
        initiate_hybrid(&alice, &ALICE_ADDR, &verified, &BOB_ADDR, &mut r).unwrap();
    let ephemeral = SecretKey::from_bytes(ephemeral_secret);
    assert_eq!(header.ephemeral, ephemeral.public_key());
    let kem = header.kem.as_ref().unwrap();
    assert_eq!(
        kem.prekey.kind,
        used_kem.kind(),
        "3.9: one-time KEM prekey first"
    );
    assert_eq!(kem.prekey.id, used_kem.id());
    let responder = respond_hybrid(
        &bob,
        &BOB_ADDR,
        &ALICE_ADDR,
        spk.secret(),
        shape.x25519_one_time.then(|| otk.secret()),
        used_kem.keypair(),
        &header,
    )
    .unwrap();
    assert_eq!(responder.root_key(), secret.root_key());
    assert_eq!(responder.associated_data(), secret.associated_data());

    // --- Recomputation from the specification ---
    // 3.9: the KEM prekey's signature, for both served keys.
    for (k, kind_byte) in [(&kem_ot, 0x01u8), (&kem_lr, 0x02u8)] {
        let public = k.public();
        let mut msg = vec![kind_byte];
        msg.extend_from_slice(&public.id.to_be_bytes());
        msg.extend_from_slice(&CREATED_AT.to_be_bytes());
        msg.extend_from_slice(public.key.as_ref());
        assert_eq!(msg.len(), 1197);
        let mut signed = (labels::KEM_PREKEY.len() as u64).to_be_bytes().to_vec();
        signed.extend_from_slice(labels::KEM_PREKEY);
        signed.extend_from_slice(&msg);
        let vk = VerifyingKey::from_bytes(&bob.public().signing_key_bytes()).unwrap();
        vk.verify_strict(
            &signed,
            &Signature::from_bytes(&public.signature.to_bytes()),
        )
        .unwrap();
        assert!(vk.verify(&signed, &public.signature).is_ok());
    }
    // ML-KEM from the seed d || z, encapsulation with m, decapsulation.
    let (dk, ek) = MlKem768::generate_deterministic(
        used_kem_seed[..32].try_into().unwrap(),
        used_kem_seed[32..].try_into().unwrap(),
    );
    assert_eq!(
        ek.as_bytes().as_slice(),
        used_kem.keypair().public().as_bytes()
    );
    let (ct, ss) = ek.encapsulate_deterministic(&m.into()).unwrap();
    assert_eq!(ct.as_slice(), kem.ciphertext.as_bytes());
    assert_eq!(dk.decapsulate(&ct).unwrap(), ss);
    let kem_pk = ek.as_bytes();
    // The DHs.
    let spk_pub = spk.public().key;
    let dh1 = alice.dh_secret().diffie_hellman(&spk_pub).unwrap();
    let dh2 = ephemeral.diffie_hellman(bob.public().dh_key()).unwrap();
    let dh3 = ephemeral.diffie_hellman(&spk_pub).unwrap();
    let dh4 = shape
        .x25519_one_time
        .then(|| ephemeral.diffie_hellman(&otk.public().key).unwrap());
    let mut parties = alice.public().to_bytes().to_vec();
    parties.extend_from_slice(&address_bytes(&ALICE_ADDR));
    parties.extend_from_slice(&bob.public().to_bytes());
    parties.extend_from_slice(&address_bytes(&BOB_ADDR));
    assert_eq!(parties.len(), 296);
    // IKM = 0xFF*32 || DH1 || DH2 || DH3 [|| DH4] || SS_kem.
    let mut ikm = vec![0xFF; 32];
    for d in [&dh1, &dh2, &dh3].into_iter().chain(dh4.as_ref()) {
        ikm.extend_from_slice(d.as_bytes());
    }
    ikm.extend_from_slice(&ss);
    // info = label || parties || EK_A || SPK_B [|| OPK_B] || kind || u32be(id) || KEM_PK || KEM_CT.
    let mut info = labels::PQXDH_ROOT_KEY.to_vec();
    info.extend_from_slice(&parties);
    info.extend_from_slice(header.ephemeral.as_bytes());
    info.extend_from_slice(spk_pub.as_bytes());
    if shape.x25519_one_time {
        info.extend_from_slice(otk.public().key.as_bytes());
    }
    info.push(used_kem.kind().byte());
    info.extend_from_slice(&used_kem.id().to_be_bytes());
    info.extend_from_slice(&kem_pk);
    info.extend_from_slice(&ct);
    let expected_info_len = 23 + 296 + 64 + if shape.x25519_one_time { 32 } else { 0 } + 2277;
    assert_eq!(info.len(), expected_info_len);
    let hkdf = |ikm: &[u8]| {
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&[0u8; 32]), ikm)
            .expand(&info, &mut out)
            .unwrap();
        out
    };
    assert_eq!(&hkdf(&ikm), secret.root_key());
    // The KEM secret is an input: one bit of it changes the root key.
    let mut other_ikm = ikm.clone();
    *other_ikm.last_mut().unwrap() ^= 1;
    assert_ne!(&hkdf(&other_ikm), secret.root_key());
    // AD = label || parties || SHA-256(KEM_PK || KEM_CT), 358 bytes.
    let mut ad = labels::PQXDH_ASSOCIATED_DATA.to_vec();
    ad.extend_from_slice(&parties);
    ad.extend_from_slice(
        &Sha256::new()
            .chain_update(kem_pk.as_slice())
            .chain_update(ct.as_slice())
            .finalize(),
    );
    assert_eq!(ad.len(), 358);
    assert_eq!(ad, secret.associated_data());

    // 4.11: the hybrid pre-key fields between the type byte and the
    // ratchet message, built by hand and compared with the codec's.
    let mut fields = alice.public().to_bytes().to_vec();
    fields.extend_from_slice(header.ephemeral.as_bytes());
    fields.extend_from_slice(&42u32.to_be_bytes());
    if shape.x25519_one_time {
        fields.push(0x01);
        fields.extend_from_slice(&7u32.to_be_bytes());
    } else {
        fields.push(0x00);
    }
    fields.push(used_kem.kind().byte());
    fields.extend_from_slice(&used_kem.id().to_be_bytes());
    fields.extend_from_slice(&ct);
    // Any valid ratchet message will do as the tail: the codec's prefix
    // must be exactly `0x05 || fields`.
    let tail = a_ratchet_message();
    let encoded = PairwiseMessage::PreKey(Box::new(PreKeyMessage {
        initial: header.clone(),
        message: tail.clone(),
    }))
    .to_bytes();
    assert_eq!(encoded[0], HYBRID_PREKEY_MESSAGE_TYPE);
    assert_eq!(&encoded[1..1 + fields.len()], &fields[..]);
    assert_eq!(&encoded[1 + fields.len()..], &tail.to_bytes()[..]);
    assert_eq!(
        header.extra_prekey,
        shape.x25519_one_time.then_some(PreKeyRef::OneTime(7))
    );

    json!({
        "rng_seed_byte": seed,
        "initiator": alice_v,
        "initiator_address": { "account_id": hex(ALICE_ADDR.account.as_bytes()), "device_id": 1 },
        "responder": bob_v,
        "responder_address": { "account_id": hex(BOB_ADDR.account.as_bytes()), "device_id": 2 },
        "signed_prekey": {
            "id": 42, "created_at": CREATED_AT,
            "secret": hex(spk.secret().to_bytes()), "public": hex(spk_pub.as_bytes()),
            "signature": hex(spk.public().signature.to_bytes()),
        },
        "one_time_prekey": if shape.x25519_one_time {
            json!({ "id": 7, "secret": hex(otk.secret().to_bytes()), "public": hex(otk.public().key.as_bytes()) })
        } else { Value::Null },
        "kem_one_time_prekey": if shape.kem_one_time { kem_json(&kem_ot, &kem_ot_seed) } else { Value::Null },
        "kem_last_resort_prekey": kem_json(&kem_lr, &kem_lr_seed),
        "ephemeral_secret": hex(ephemeral_secret),
        "ephemeral_public": hex(header.ephemeral.as_bytes()),
        "kem_used": { "kind": used_kem.kind().byte(), "id": used_kem.id() },
        "encapsulation_m": hex(m),
        "kem_ciphertext": hex(ct.as_slice()),
        "kem_shared_secret": hex(ss.as_slice()),
        "dh1": hex(dh1.as_bytes()),
        "dh2": hex(dh2.as_bytes()),
        "dh3": hex(dh3.as_bytes()),
        "dh4": dh4.map(|d| hex(d.as_bytes())),
        "hkdf_ikm": hex(&ikm),
        "hkdf_info": hex(&info),
        "root_key": hex(secret.root_key()),
        "associated_data": hex(secret.associated_data()),
        "hybrid_prekey_fields": hex(&fields),
    })
}

fn kem_json(k: &KemPreKey, seed: &[u8; 64]) -> Value {
    let public = k.public();
    json!({
        "kind": k.kind().byte(),
        "id": k.id(),
        "created_at": k.created_at(),
        "seed_d_z": hex(seed),
        "public": hex(public.key.as_ref()),
        "signature": hex(public.signature.to_bytes()),
    })
}

/// A real ratchet message (its content is irrelevant here: only the
/// fields before it are pinned), taken from a hybrid session.
fn a_ratchet_message() -> RatchetMessage {
    let mut r = ChaCha20Rng::from_seed([9; 32]);
    let alice = IdentityKeyPair::generate(&mut r);
    let bob = IdentityKeyPair::generate(&mut r);
    let bundle = PreKeyBundle {
        identity: bob.public(),
        signed_prekey: SignedPreKey::generate(&bob, 1, CREATED_AT, &mut r).public(),
        one_time_prekey: None,
        last_resort: None,
        kem_one_time: None,
        kem_last_resort: Some(
            KemPreKey::generate(&bob, KemPreKeyKind::LastResort, 1, CREATED_AT, &mut r).public(),
        ),
    };
    let mut session = PairwiseSession::initiate(
        &alice,
        &ALICE_ADDR,
        &bundle.verify().unwrap(),
        &BOB_ADDR,
        &mut r,
    )
    .unwrap();
    let envelope = session.seal_for(&alice, b"tail", &mut r).unwrap();
    match InboundEnvelope::open(&bob, &envelope).unwrap().message() {
        PairwiseMessage::PreKey(pre) => pre.message.clone(),
        other => panic!("a pre-key message, not {other:?}"),
    }
}

#[test]
fn pqxdh_vectors() {
    let v = json!({
        "description": "PQXDH (docs/PROTOCOL.md 3.9, 3.10; the 0x05 pre-key fields of 4.11). From ChaCha20Rng::from_seed([rng_seed_byte; 32]), in order: the initiator's and the responder's identities (32-byte Ed25519 seed, then 32-byte X25519 secret), the signed prekey (32), the X25519 one-time prekey (32, drawn in every case, served only where one_time_prekey is not null), the one-time KEM prekey's seed d||z (64, drawn in every case, served only where kem_one_time_prekey is not null), the last-resort KEM prekey's seed (64), then the initiator's ephemeral (32) and ML-KEM's encapsulation message m (32). KEM prekeys are signed as 3.9 (created_at 1700000000). cases[0]: X25519 and KEM one-time prekeys; cases[1]: no X25519 extra prekey and only the last-resort KEM prekey; cases[2]: X25519 one-time prekey and only the last-resort KEM prekey. hybrid_prekey_fields are the bytes between the type byte 0x05 and the ratchet message.",
        "cases": [
            case(21, Shape { x25519_one_time: true, kem_one_time: true }),
            case(22, Shape { x25519_one_time: false, kem_one_time: false }),
            case(23, Shape { x25519_one_time: true, kem_one_time: false }),
        ],
    });
    check_or_regenerate("pqxdh.json", &v);
}
