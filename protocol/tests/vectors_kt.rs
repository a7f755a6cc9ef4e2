//! Test vectors for key transparency (docs/PROTOCOL.md §16,
//! `docs/test-vectors/kt.json`).
//!
//! The map roots are recomputed here by hand from §16.3–16.4 with SHA-256
//! directly (a level-by-level fold over the occupied slots, not the
//! library's cached subtree recursion), the log roots from RFC 9162's MTH,
//! and the heads' signatures with ed25519-dalek over §3.2's signed bytes;
//! the library must produce exactly them, and every proof in the file must
//! verify (or, for the refused cases, fail with the error named). Run once
//! with UMBRA_REGENERATE_VECTORS=1 after a deliberate change (see
//! common/mod.rs).

mod common;

use std::collections::BTreeMap;

use common::{check_or_regenerate, hex};
use ed25519_dalek::{Signer, SigningKey};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use umbra_protocol::wire::kt::*;
use umbra_protocol::wire::{AccountId, Username};

const T0: u64 = 1_700_000_000_000;

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// §16.4 by hand: fold the occupied slots up one level at a time.
fn root_by_hand(leaves: &BTreeMap<[u8; 32], [u8; 32]>) -> [u8; 32] {
    let mut empty = vec![[0u8; 32]; 257];
    empty[256] = sha(&[b"umbra/v1/kt/empty"]);
    for d in (0..256).rev() {
        empty[d] = sha(&[b"umbra/v1/kt/node", &empty[d + 1], &empty[d + 1]]);
    }
    let bit = |k: &[u8; 32], i: usize| (k[i / 8] >> (7 - i % 8)) & 1;
    let clear = |mut k: [u8; 32], i: usize| {
        k[i / 8] &= !(0x80u8 >> (i % 8));
        k
    };
    let mut level: BTreeMap<[u8; 32], [u8; 32]> = leaves.clone();
    for depth in (0..256).rev() {
        // Nodes at depth+1 keyed by their index with bits ≥ depth+1 cleared.
        let mut up = BTreeMap::new();
        for (k, h) in &level {
            let parent = clear(*k, depth);
            let mut sib = *k;
            sib[depth / 8] ^= 0x80 >> (depth % 8);
            let s = level.get(&sib).copied().unwrap_or(empty[depth + 1]);
            let node = if bit(k, depth) == 0 {
                sha(&[b"umbra/v1/kt/node", h, &s])
            } else {
                sha(&[b"umbra/v1/kt/node", &s, h])
            };
            up.insert(parent, node);
        }
        level = up;
    }
    level.into_values().next().unwrap_or(empty[0])
}

fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => sha(&[]),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            sha(&[&[1u8], &mth(&leaves[..k]), &mth(&leaves[k..])])
        }
    }
}

fn account(b: u8) -> AccountId {
    AccountId::from_bytes([b; 16])
}

fn name(s: &str) -> KtLabel {
    KtLabel::Username(Username::parse(s).unwrap())
}

struct Publication {
    label: KtLabel,
    value: LeafValue,
}

fn bob_device_list() -> Vec<u8> {
    let mut list = vec![0x01];
    list.extend_from_slice(&[0xb0; 16]);
    list.extend_from_slice(&1u64.to_be_bytes());
    list.push(1);
    list.extend_from_slice(&1u32.to_be_bytes());
    list.extend_from_slice(&[0x5a; 64]);
    list
}

fn epochs() -> Vec<Vec<Publication>> {
    let acct = |b: u8, identity: u8, list: Option<&[u8]>| Publication {
        label: KtLabel::Account(account(b)),
        value: LeafValue::account(Some(&[identity; 128]), list),
    };
    let held = |n: &str, b: u8| Publication {
        label: name(n),
        value: LeafValue::Username {
            account: Some(account(b)),
        },
    };
    let list = bob_device_list();
    vec![
        vec![
            acct(0xa1, 0x11, None),
            held("alice", 0xa1),
            acct(0xb0, 0x22, None),
            held("bob", 0xb0),
        ],
        vec![acct(0xc0, 0x33, None), held("carol", 0xc0)],
        vec![acct(0xb0, 0x22, Some(&list))],
        vec![
            acct(0xa1, 0x12, None),
            Publication {
                label: name("carol"),
                value: LeafValue::Username { account: None },
            },
        ],
    ]
}

fn err_name(e: &KtError) -> String {
    format!("{e:?}")
        .split([' ', '{', '('])
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn kt_vectors() {
    let vrf = VrfSecretKey::generate(&mut ChaCha20Rng::from_seed([0x56; 32]));
    let pk = vrf.public_key();
    let dir_seed = [0x44u8; 32];
    let dir = DirectorySigningKey::from_seed(&dir_seed);
    let dir_pk = dir.public_key();
    let dalek = SigningKey::from_bytes(&dir_seed);

    let mut map = KtMap::new();
    let mut log = EpochLog::new();
    let mut by_hand: BTreeMap<[u8; 32], [u8; 32]> = BTreeMap::new();
    let mut chains: BTreeMap<[u8; 32], (u64, [u8; 32])> = BTreeMap::new();
    let mut labels: Vec<KtLabel> = Vec::new();
    let mut entries: Vec<[u8; 32]> = Vec::new();
    let mut epoch_json = Vec::new();
    let mut heads = Vec::new();
    for (e, pubs) in epochs().into_iter().enumerate() {
        let e = e as u64;
        let mut pubs_json = Vec::new();
        for p in pubs {
            let (index, _) = vrf.evaluate(&p.label);
            let record = map.publish(index, p.value, e).unwrap();
            let (n, prev) = chains.get(&index.0).copied().unwrap_or((0, [0; 32]));
            let c = sha(&[
                b"umbra/v1/kt/version",
                &(n + 1).to_be_bytes(),
                &e.to_be_bytes(),
                &p.value.encode(),
                &prev,
            ]);
            assert_eq!(record.version, n + 1);
            assert_eq!(chain_hash(&record, &prev), c);
            chains.insert(index.0, (n + 1, c));
            by_hand.insert(index.0, sha(&[b"umbra/v1/kt/leaf", &index.0, &c]));
            if !labels.contains(&p.label) {
                labels.push(p.label.clone());
            }
            pubs_json.push(json!({
                "label": hex(p.label.encode()),
                "value": hex(p.value.encode()),
                "version": n + 1,
                "chain": hex(c),
            }));
        }
        let root = map.root();
        assert_eq!(root.0, root_by_hand(&by_hand), "epoch {e}");
        let entry = EpochEntry {
            epoch: e,
            published_at_ms: T0 + 5000 * e,
            map_root: root,
        };
        let mut entry_bytes = vec![0x01];
        entry_bytes.extend_from_slice(&e.to_be_bytes());
        entry_bytes.extend_from_slice(&(T0 + 5000 * e).to_be_bytes());
        entry_bytes.extend_from_slice(&root.0);
        assert_eq!(entry.encode().to_vec(), entry_bytes);
        log.push(&entry_bytes);
        entries.push(sha(&[&[0u8], &entry_bytes]));
        let log_root = mth(&entries);
        assert_eq!(log.root(e + 1).unwrap().0, log_root);
        let head = dir.sign_head(&entry, &log).unwrap();
        let mut signed = entry_bytes.clone();
        signed.extend_from_slice(&log_root);
        let label = b"umbra/v1/kt/epoch-head";
        let sig = dalek.sign(&[&(label.len() as u64).to_be_bytes()[..], label, &signed].concat());
        assert_eq!(head.signature, sig.to_bytes());
        let verified = SignedEpochHead::decode(&head.encode())
            .unwrap()
            .verify(&dir_pk)
            .unwrap();
        epoch_json.push(json!({
            "epoch": e,
            "published_at_ms": T0 + 5000 * e,
            "publications": pubs_json,
            "map_root": hex(root.0),
            "entry": hex(entry_bytes),
            "log_root": hex(log_root),
            "head": hex(head.encode()),
        }));
        heads.push((head, verified));
    }
    let (_, last) = heads[3].clone();

    let mut vrf_json = Vec::new();
    let dave = KtLabel::Account(account(0xd0));
    for label in labels.iter().chain([&dave, &name("dave")]) {
        let (index, proof) = vrf.evaluate(label);
        assert_eq!(pk.verify(label, &proof), Ok(index));
        let alpha = [b"umbra/v1/kt/vrf-input".as_slice(), &label.encode()].concat();
        vrf_json.push(json!({
            "label": hex(label.encode()),
            "alpha": hex(alpha),
            "proof": hex(proof.0),
            "index": hex(index.0),
        }));
    }

    let mut lookups = Vec::new();
    for label in [
        KtLabel::Account(account(0xb0)),
        name("carol"),
        name("alice"),
        dave.clone(),
        name("dave"),
    ] {
        let proof = map.prove_lookup(&vrf, &label);
        let bytes = proof.encode();
        let result = LookupProof::decode(&bytes)
            .unwrap()
            .verify(&pk, &label, last.map_root(), 3)
            .unwrap();
        let result = match result {
            Lookup::Present { latest, chain } => json!({
                "present": true, "version": latest.version, "epoch": latest.epoch,
                "value": hex(latest.value.encode()), "chain": hex(chain),
            }),
            Lookup::Absent => json!({ "present": false }),
        };
        lookups.push(json!({"label": hex(label.encode()), "head_epoch": 3, "proof": hex(bytes), "result": result}));
    }

    let mut histories = Vec::new();
    for (label, first) in [
        (KtLabel::Account(account(0xb0)), 1),
        (name("carol"), 1),
        (KtLabel::Account(account(0xa1)), 2),
    ] {
        let bytes = map.prove_history(&vrf, &label, first).unwrap().encode();
        let h = HistoryProof::decode(&bytes)
            .unwrap()
            .verify(&pk, &label, last.map_root(), 3)
            .unwrap();
        let versions: Vec<Value> = h
            .versions
            .iter()
            .map(|(r, c)| json!({"version": r.version, "epoch": r.epoch, "value": hex(r.value.encode()), "chain": hex(c)}))
            .collect();
        histories.push(json!({"label": hex(label.encode()), "head_epoch": 3, "first": first, "proof": hex(bytes), "versions": versions}));
    }

    let inclusion = log.inclusion_proof(1, 4).unwrap();
    last.check_includes(heads[1].1.entry(), &inclusion).unwrap();
    let consistency = log.consistency_proof(2, 4).unwrap();
    heads[1].1.check_extended_by(&last, &consistency).unwrap();
    let consistency_1_3 = log.consistency_proof(1, 3).unwrap();
    heads[0]
        .1
        .check_extended_by(&heads[2].1, &consistency_1_3)
        .unwrap();

    // Refused cases: (what, label, head epoch, bytes, error).
    let bob = KtLabel::Account(account(0xb0));
    let bob_proof = map.prove_lookup(&vrf, &bob).encode();
    let mut rejects = Vec::new();
    let lookup_reject = |why: &str, label: &KtLabel, epoch: usize, bytes: Vec<u8>| {
        let head = &heads[epoch].1;
        let err = LookupProof::decode(&bytes)
            .and_then(|p| p.verify(&pk, label, head.map_root(), head.epoch()))
            .unwrap_err();
        json!({"kind": "lookup", "why": why, "label": hex(label.encode()), "head_epoch": epoch, "bytes": hex(bytes), "error": err_name(&err)})
    };
    rejects.push(lookup_reject(
        "bob's proof against epoch 2's root (alice changed in 3)",
        &bob,
        2,
        bob_proof.clone(),
    ));
    rejects.push(lookup_reject(
        "bob's version 2 (epoch 2) against the head of epoch 1",
        &bob,
        1,
        bob_proof.clone(),
    ));
    rejects.push(lookup_reject(
        "bob's proof offered for alice",
        &KtLabel::Account(account(0xa1)),
        3,
        bob_proof.clone(),
    ));
    let mut tampered = bob_proof.clone();
    let last_byte = tampered.len() - 1;
    tampered[last_byte] ^= 0x01;
    rejects.push(lookup_reject(
        "last byte of the deepest sibling flipped",
        &bob,
        3,
        tampered,
    ));
    let mut tampered = bob_proof.clone();
    tampered[1 + 80 + 16 + 1] ^= 0x01;
    rejects.push(lookup_reject(
        "a byte of the value's identity hash flipped",
        &bob,
        3,
        tampered,
    ));
    let mut absent = map.prove_lookup(&vrf, &dave).encode();
    absent[1 + 80 + 31] ^= 0x01;
    rejects.push(lookup_reject(
        "a bitmap bit set without its hash",
        &dave,
        3,
        absent,
    ));
    let mut spelled_out = map.prove_lookup(&vrf, &dave).encode();
    spelled_out[1 + 80 + 31] |= 0x01;
    spelled_out.extend_from_slice(empty_hash(256));
    rejects.push(lookup_reject(
        "an empty neighbour spelled out (bit 255 set, E[256] given)",
        &dave,
        3,
        spelled_out,
    ));
    let claimed_absent = [
        &[0x00][..],
        &bob_proof[1..81],
        &map.prove_lookup(&vrf, &dave).encode()[81..],
    ]
    .concat();
    rejects.push(lookup_reject(
        "bob claimed absent with dave's path",
        &bob,
        3,
        claimed_absent,
    ));

    let mut history = map.prove_history(&vrf, &bob, 1).unwrap().encode();
    history[80 + 8] = 0x01;
    let err = HistoryProof::decode(&history)
        .and_then(|p| p.verify(&pk, &bob, last.map_root(), 3))
        .unwrap_err();
    rejects.push(json!({"kind": "history", "why": "first version 1 with a non-zero prior link", "label": hex(bob.encode()), "head_epoch": 3, "bytes": hex(history), "error": err_name(&err)}));

    let mut head = heads[2].0.encode();
    head[81] ^= 0x01;
    let err = SignedEpochHead::decode(&head)
        .and_then(|h| h.verify(&dir_pk))
        .unwrap_err();
    rejects.push(json!({"kind": "head", "why": "first signature byte flipped", "bytes": hex(head), "error": err_name(&err)}));
    let mut head = heads[3].0.encode();
    head[17] ^= 0x01;
    let err = SignedEpochHead::decode(&head)
        .and_then(|h| h.verify(&dir_pk))
        .unwrap_err();
    rejects.push(json!({"kind": "head", "why": "map root changed under the signature", "bytes": hex(head), "error": err_name(&err)}));

    let mut truncated = consistency.clone();
    truncated.hashes.pop();
    let err = ConsistencyProof::decode(&truncated.encode())
        .and_then(|p| p.verify(heads[1].1.log_root(), last.log_root()))
        .unwrap_err();
    rejects.push(json!({"kind": "consistency", "why": "last hash dropped (count adjusted)", "old_epoch": 1, "new_epoch": 3, "bytes": hex(truncated.encode()), "error": err_name(&err)}));
    let cut = consistency.encode();
    let err = ConsistencyProof::decode(&cut[..cut.len() - 32]).unwrap_err();
    rejects.push(json!({"kind": "consistency", "why": "last hash cut off (count kept)", "old_epoch": 1, "new_epoch": 3, "bytes": hex(&cut[..cut.len() - 32]), "error": err_name(&err)}));
    let mut forged = inclusion.clone();
    forged.hashes[0][0] ^= 0x01;
    let err = last
        .check_includes(heads[1].1.entry(), &forged)
        .unwrap_err();
    rejects.push(json!({"kind": "inclusion", "why": "first path hash flipped", "entry_epoch": 1, "head_epoch": 3, "bytes": hex(forged.encode()), "error": err_name(&err)}));

    let empty: Vec<Value> = [256usize, 255, 0]
        .iter()
        .map(|d| json!({"depth": d, "hash": hex(empty_hash(*d))}))
        .collect();
    let generated = json!({
        "description": "umbra KT v1 (docs/PROTOCOL.md section 16): VRF, map, proofs, heads, RFC 9162 log",
        "vrf_secret_key": hex(*vrf.to_bytes()),
        "vrf_public_key": hex(pk.to_bytes()),
        "directory_seed": hex(dir_seed),
        "directory_public_key": hex(dir_pk.to_bytes()),
        "bob_device_list": hex(bob_device_list()),
        "empty_hashes": empty,
        "vrf": vrf_json,
        "epochs": epoch_json,
        "lookups": lookups,
        "histories": histories,
        "inclusion": {"entry_epoch": 1, "head_epoch": 3, "proof": hex(inclusion.encode())},
        "consistency": [
            {"old_epoch": 1, "new_epoch": 3, "proof": hex(consistency.encode())},
            {"old_epoch": 0, "new_epoch": 2, "proof": hex(consistency_1_3.encode())},
        ],
        "rejects": rejects,
    });
    check_or_regenerate("kt.json", &generated);
}
