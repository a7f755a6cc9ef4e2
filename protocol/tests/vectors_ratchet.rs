//! Double Ratchet test vectors: from fixed seeds, an X3DH run then a
//! conversation both ways with out-of-order delivery, recording every root
//! key, chain key, message key, nonce, header and ciphertext into
//! `docs/test-vectors/ratchet.json`; then enough traffic that Alice's first
//! KEM epoch completes (her encapsulation key in chunks, Bob's ciphertext
//! in chunks, her hybrid DH step, Bob mixing the same secret), §4.13, and
//! then ping-pong until two epochs have completed in each direction. After
//! every step both parties' braids (epochs and phases) are recorded, so an
//! implementation that forgets to move an epoch on (PQ-S1, PQ-R1) fails at
//! the step where it does.
//!
//! Every value written is computed by `ratchet_spec::Model`, a second
//! implementation of docs/PROTOCOL.md §4 built from the primitive crates
//! (X25519, HKDF-SHA256, HMAC-SHA256, ChaCha20-Poly1305) with the spec's
//! labels as literals; the library's `Session` runs beside it and every
//! message, root key and chain key must match byte for byte.
//!
//! Must never: derive an expected value through the library's own KDFs.

mod common;

mod ratchet_spec;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

use common::hex;
use ratchet_spec::Model;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::prekeys::{PreKeyBundle, SignedPreKey};
use umbra_protocol::ratchet::{PeerPhase, RatchetMessage, Session};
use umbra_protocol::x3dh;

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

const SEED: u64 = 0x756d_6272_6172_6174; // "umbrarat"

struct Party {
    name: &'static str,
    session: Session,
    /// The same party's state, kept by the spec model from primitives only.
    spec: Model,
}

/// Encrypts with `party`, requires the session's output to equal the spec
/// model's byte for byte, and records the step from the model's values.
fn encrypt(
    party: &mut Party,
    other: &Party,
    plaintext: &[u8],
    rng: &mut ChaCha20Rng,
    ad: &[u8],
    steps: &mut Vec<Value>,
) -> RatchetMessage {
    // What the session may draw: a ratchet key (32), a KEM key pair seed
    // (64), an encapsulation (32), in that order, each only when due.
    let mut next_random = [0u8; 128];
    rng.clone().fill_bytes(&mut next_random);
    let sent = party.spec.encrypt(plaintext, &next_random);
    let message = party.session.encrypt(plaintext, rng).expect("encrypt");
    let session = &party.session;

    assert_eq!(
        message.to_bytes(),
        sent.message,
        "{}: session's message differs from the spec's (header, key, nonce or AEAD input)",
        party.name
    );
    assert_eq!(message.header.encode().as_slice(), sent.header.as_slice());
    assert!(sent.aead_associated_data.starts_with(ad));
    assert_eq!(session.root_key().as_bytes(), &party.spec.root_key);
    let spec_sending = party.spec.sending.map(|(ck, _)| ck);
    assert_eq!(session.sending_chain().map(|c| *c.as_bytes()), spec_sending);
    assert_eq!(
        session.sending_chain().map(|c| c.index()),
        party.spec.sending.map(|(_, n)| n)
    );
    check_braids(party);

    let ciphertext = sent.pq.encapsulated_ciphertext.as_deref();
    steps.push(json!({
        "op": "encrypt",
        "by": party.name,
        "plaintext": hex(plaintext),
        "new_ratchet_private": sent.new_ratchet_private.map(hex),
        "chain_key": hex(sent.chain_key),
        "message_number": sent.message_number,
        "message_key": hex(sent.message_key),
        "nonce": hex(sent.nonce),
        "header": hex(&sent.header),
        "aead_associated_data": hex(&sent.aead_associated_data),
        "message": hex(&sent.message),
        "root_key_after": hex(party.spec.root_key),
        "sending_chain_key_after": spec_sending.map(hex),
        "kem_secret_mixed": sent.kem_secret_mixed.map(hex),
        "new_kem_seed": sent.pq.new_kem_seed.map(hex),
        "encapsulation_m": sent.pq.encapsulation_m.map(hex),
        "encapsulated_secret": sent.pq.encapsulated_secret.map(hex),
        "encapsulated_ciphertext": ciphertext.map(hex),
        "braids_after": braids_after(party, other),
    }));
    message
}

/// The session's braids agree with the model's: epochs, phases, the
/// secret ready to mix.
fn check_braids(party: &Party) {
    let (own, peer) = party.session.pq_epochs();
    let braids = &party.spec.braids;
    assert_eq!(
        (own, peer),
        (braids.own_epoch, braids.peer_epoch),
        "{}",
        party.name
    );
    assert_eq!(
        party.session.pq_ready_secret().map(|(_, s)| s),
        braids.own_ready,
        "{}",
        party.name
    );
    if let Some((epoch, _)) = party.session.pq_ready_secret() {
        assert_eq!(epoch, own);
    }
    let own_phase = match (party.session.pq_own_seed(), party.session.pq_ready_secret()) {
        (_, Some(_)) => "secret_ready",
        (Some(_), None) => "awaiting_ciphertext",
        (None, None) => "no_key_pair",
    };
    let peer_phase = match party.session.pq_peer_phase() {
        PeerPhase::Collecting => "collecting",
        PeerPhase::KeyComplete => "key_complete",
        PeerPhase::Encapsulated => "encapsulated",
    };
    assert_eq!((own_phase, peer_phase), braids.phases(), "{}", party.name);
}

/// Both parties' braids after a step, from the model (each already checked
/// against its session by `check_braids`).
fn braids_after(party: &Party, other: &Party) -> Value {
    let one = |p: &Party| {
        check_braids(p);
        let (own_phase, peer_phase) = p.spec.braids.phases();
        json!({
            "e_own": p.spec.braids.own_epoch,
            "e_peer": p.spec.braids.peer_epoch,
            "own_phase": own_phase,
            "peer_phase": peer_phase,
        })
    };
    let mut out = serde_json::Map::new();
    out.insert(party.name.into(), one(party));
    out.insert(other.name.into(), one(other));
    Value::Object(out)
}

/// Decrypts with `party`, and requires the session's root key and receiving
/// chain afterwards to equal the spec model's.
fn decrypt(
    party: &mut Party,
    other: &Party,
    message: &RatchetMessage,
    expected: &[u8],
    steps: &mut Vec<Value>,
) {
    let plaintext = party.session.decrypt(message).expect("decrypt");
    assert_eq!(plaintext, expected);
    let received = party.spec.receive(&message.to_bytes());
    if let Some(spec_plaintext) = &received.plaintext {
        assert_eq!(spec_plaintext, expected, "the spec's key opens it");
    }
    check_braids(party);
    let session = &party.session;
    assert_eq!(session.root_key().as_bytes(), &party.spec.root_key);
    let spec_receiving = party.spec.receiving;
    assert_eq!(
        session
            .receiving_chain()
            .map(|c| (*c.as_bytes(), c.index())),
        spec_receiving,
        "{}: receiving chain differs from the spec's",
        party.name
    );
    steps.push(json!({
        "op": "decrypt",
        "by": party.name,
        "message": hex(message.to_bytes()),
        "plaintext": hex(&plaintext),
        "root_key_after": hex(party.spec.root_key),
        "receiving_chain_key_after": spec_receiving.map(|(ck, _)| hex(ck)),
        "receiving_index_after": spec_receiving.map(|(_, n)| n),
        "skipped_keys_after": session.skipped_key_count(),
        "kem_secret_mixed": received.kem_secret_mixed.map(hex),
        "kem_secret_ready": received.kem_secret_ready.map(hex),
        "braids_after": braids_after(party, other),
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
        kem_one_time: None,
        kem_last_resort: None,
    }
    .verify_classical()
    .expect("bundle");
    let (secret_a, initial) =
        x3dh::initiate(&alice_id, &ALICE_ADDR, &bundle, &BOB_ADDR, &mut rng).expect("initiate");
    let secret_b = x3dh::respond(
        &bob_id,
        &BOB_ADDR,
        &ALICE_ADDR,
        spk.secret(),
        None,
        &initial,
    )
    .expect("respond");
    assert_eq!(secret_a.root_key(), secret_b.root_key());
    let ad = secret_a.associated_data().to_vec();

    let alice_ratchet = SecretKey::generate(&mut rng.clone());
    let alice_session = Session::new_initiator(&secret_a, spk.public().key, &mut rng).unwrap();
    assert_eq!(alice_session.our_ratchet_key(), alice_ratchet.public_key());
    let alice_spec = Model::initiator(
        *secret_a.root_key(),
        &ad,
        alice_ratchet.to_bytes(),
        *spk.public().key.as_bytes(),
    );
    assert_eq!(alice_session.root_key().as_bytes(), &alice_spec.root_key);
    assert_eq!(
        alice_session.sending_chain().map(|c| *c.as_bytes()),
        alice_spec.sending.map(|(ck, _)| ck)
    );
    let initial_state = json!({
        "x3dh_root_key": hex(secret_a.root_key()),
        "associated_data": hex(&ad),
        "bob_signed_prekey_private": hex(spk.secret().to_bytes()),
        "bob_signed_prekey_public": hex(spk.public().key.as_bytes()),
        "alice_first_ratchet_private": hex(alice_ratchet.to_bytes()),
        "alice_first_ratchet_public": hex(alice_ratchet.public_key().as_bytes()),
        "alice_root_key": hex(alice_spec.root_key),
        "alice_sending_chain_key": alice_spec.sending.map(|(ck, _)| hex(ck)),
    });
    let mut alice = Party {
        name: "alice",
        session: alice_session,
        spec: alice_spec,
    };
    let mut bob = Party {
        name: "bob",
        session: Session::new_responder(&secret_b, spk.secret().clone()),
        spec: Model::responder(*secret_b.root_key(), &ad, spk.secret().to_bytes()),
    };
    let mut steps = Vec::new();

    // Alice sends three; Bob sees them as 2, 0, 1.
    let a: Vec<_> = [b"a0".as_slice(), b"a1 longer", b""]
        .iter()
        .map(|p| {
            (
                encrypt(&mut alice, &bob, p, &mut rng, &ad, &mut steps),
                p.to_vec(),
            )
        })
        .collect();
    for i in [2, 0, 1] {
        decrypt(&mut bob, &alice, &a[i].0, &a[i].1, &mut steps);
    }
    // Bob replies twice (a DH ratchet step); Alice sees 1 then 0.
    let b: Vec<_> = [b"b0".as_slice(), b"b1"]
        .iter()
        .map(|p| {
            (
                encrypt(&mut bob, &alice, p, &mut rng, &ad, &mut steps),
                p.to_vec(),
            )
        })
        .collect();
    decrypt(&mut alice, &bob, &b[1].0, &b[1].1, &mut steps);
    decrypt(&mut alice, &bob, &b[0].0, &b[0].1, &mut steps);
    // Alice answers twice; Bob receives only the second, then Bob answers,
    // then the first arrives late (previous-chain skipped key).
    let a3 = encrypt(&mut alice, &bob, b"a3", &mut rng, &ad, &mut steps);
    let a4 = encrypt(&mut alice, &bob, b"a4", &mut rng, &ad, &mut steps);
    decrypt(&mut bob, &alice, &a4, b"a4", &mut steps);
    let b2 = encrypt(&mut bob, &alice, b"b2", &mut rng, &ad, &mut steps);
    decrypt(&mut alice, &bob, &b2, b"b2", &mut steps);
    let a5 = encrypt(&mut alice, &bob, b"a5", &mut rng, &ad, &mut steps);
    decrypt(&mut bob, &alice, &a5, b"a5", &mut steps);
    decrypt(&mut bob, &alice, &a3, b"a3", &mut steps);

    // §4.13: Alice sends until Bob holds her whole epoch-1 key (ten chunks,
    // some already sent above), Bob sends until she holds his ciphertext
    // (alternating with chunks of his own key), then Alice's next send is a
    // hybrid step and Bob, receiving it, mixes the same secret.
    let mut i = 0;
    while bob.session.pq_pending_secret().is_none() {
        let p = format!("pq a{i}");
        let m = encrypt(&mut alice, &bob, p.as_bytes(), &mut rng, &ad, &mut steps);
        decrypt(&mut bob, &alice, &m, p.as_bytes(), &mut steps);
        // Bob encapsulates at his first send after the key completed.
        let p = format!("pq b{i}");
        let m = encrypt(&mut bob, &alice, p.as_bytes(), &mut rng, &ad, &mut steps);
        decrypt(&mut alice, &bob, &m, p.as_bytes(), &mut steps);
        i += 1;
        assert!(i <= 10, "Alice's key never completed");
    }
    let mut j = 0;
    while alice.session.pq_ready_secret().is_none() {
        let p = format!("pq b ct{j}");
        let m = encrypt(&mut bob, &alice, p.as_bytes(), &mut rng, &ad, &mut steps);
        decrypt(&mut alice, &bob, &m, p.as_bytes(), &mut steps);
        j += 1;
        assert!(j < 30, "Bob's ciphertext never completed");
    }
    let (epoch, secret) = alice.session.pq_ready_secret().expect("ready");
    assert_eq!(bob.session.pq_pending_secret(), Some((epoch, secret)));
    let hybrid = encrypt(&mut alice, &bob, b"hybrid", &mut rng, &ad, &mut steps);
    assert_eq!(hybrid.header.pq_epoch, epoch);
    assert_eq!(alice.session.pq_epochs().0, epoch + 1);
    decrypt(&mut bob, &alice, &hybrid, b"hybrid", &mut steps);
    assert_eq!(bob.session.pq_epochs().1, epoch + 1);
    assert!(bob.session.pq_pending_secret().is_none());
    let reply = encrypt(&mut bob, &alice, b"after", &mut rng, &ad, &mut steps);
    decrypt(&mut alice, &bob, &reply, b"after", &mut steps);
    let mixed = |steps: &[Value], op: &str| {
        steps
            .iter()
            .filter(|s| s["op"] == op && !s["kem_secret_mixed"].is_null())
            .count()
    };
    assert_eq!((mixed(&steps, "encrypt"), mixed(&steps, "decrypt")), (1, 1));

    // Then ping-pong until two epochs have completed in each direction
    // (every epoch at 3), so each side's second epoch starts from the
    // advanced one of PQ-S1 and PQ-R1.
    let done = |p: &Party| p.session.pq_epochs() == (3, 3);
    let mut k = 0;
    while !(done(&alice) && done(&bob)) {
        let p = format!("pq2 a{k}");
        let m = encrypt(&mut alice, &bob, p.as_bytes(), &mut rng, &ad, &mut steps);
        decrypt(&mut bob, &alice, &m, p.as_bytes(), &mut steps);
        let p = format!("pq2 b{k}");
        let m = encrypt(&mut bob, &alice, p.as_bytes(), &mut rng, &ad, &mut steps);
        decrypt(&mut alice, &bob, &m, p.as_bytes(), &mut steps);
        k += 1;
        assert!(k <= 100, "two epochs each way did not complete");
    }
    assert_eq!((mixed(&steps, "encrypt"), mixed(&steps, "decrypt")), (4, 4));
    // Each recorded ciphertext is the one its sender's chunks carried.
    let mut encapsulations = 0;
    for (i, step) in steps.iter().enumerate() {
        let Some(ct) = step["encapsulated_ciphertext"].as_str() else {
            continue;
        };
        let by = &step["by"];
        let epoch = step["braids_after"][by.as_str().unwrap()]["e_peer"].as_u64();
        let mut carried = vec![None; 9];
        for later in steps[i..]
            .iter()
            .filter(|s| s["op"] == "encrypt" && &s["by"] == by)
        {
            let header = hex::decode(later["header"].as_str().unwrap()).unwrap();
            let slot = &header[44..];
            let chunk_epoch = u32::from_be_bytes(slot[1..5].try_into().unwrap());
            if slot[0] == 2 && Some(u64::from(chunk_epoch)) == epoch {
                carried[usize::from(slot[5])] = Some(slot[6..].to_vec());
            }
        }
        let carried: Vec<u8> = carried
            .into_iter()
            .flat_map(|c| c.expect("every chunk sent"))
            .collect();
        assert_eq!(
            hex(&carried[..1088]),
            ct,
            "step {i}: ciphertext differs from its chunks"
        );
        encapsulations += 1;
    }
    assert_eq!(encapsulations, 4);

    let vectors = json!({
        "description": "umbra Double Ratchet (docs/PROTOCOL.md §4): X3DH output, then every step of a conversation with out-of-order delivery. Hex everywhere. Messages are encoded as in the spec (version 0x02 || header (178) || ciphertext || tag). Then (§4.13) Alice's first KEM epoch completes, and ping-pong follows until two epochs have completed in each direction; every step records both parties' braids after it (braids_after: e_own, e_peer, own_phase, peer_phase) and every encapsulating send its whole ciphertext.",
        "generator": "protocol/tests/vectors_ratchet.rs",
        "rng": "rand_chacha ChaCha20Rng::seed_from_u64",
        "seed": SEED,
        "initial": initial_state,
        "steps": steps,
    });
    common::check_or_regenerate("ratchet.json", &vectors);
}
