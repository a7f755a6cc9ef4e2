//! The stranger's check of `docs/test-vectors/group_state.json`
//! (docs/PROTOCOL.md §8.7–§8.10), written from the spec's text: it encodes
//! every change body and every snapshot from the spec's layout, verifies
//! every signature with raw ed25519-dalek over
//! `u64be(len(label)) || label || signed bytes`, recomputes every hash with
//! raw SHA-256, and recomputes each fork's winner from §8.10's ranking (the
//! authors' standing in the parent snapshot, then the hash).
//! `vectors_group_state.rs` writes the file.
//!
//! Must never: call umbra's encoders, hashes, signature checks or fork
//! choice.

mod common;

use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

fn fixed(v: &Value, len: usize, out: &mut Vec<u8>) {
    let bytes = unhex(v);
    assert_eq!(bytes.len(), len);
    varint(len as u64, out);
    out.extend_from_slice(&bytes);
}

/// §8.8: the signed bytes, from the change's fields.
fn spec_signed_bytes(c: &Value) -> Vec<u8> {
    let mut out = vec![0x01];
    fixed(&c["group"], 32, &mut out);
    varint(c["version"].as_u64().unwrap(), &mut out);
    fixed(&c["parent"], 32, &mut out);
    fixed(&c["author"], 16, &mut out);
    let body = &c["body"];
    let new_members = |out: &mut Vec<u8>| {
        let list = body["members"].as_array().unwrap();
        varint(list.len() as u64, out);
        for m in list {
            fixed(&m["account"], 16, out);
            string(m["username"].as_str().unwrap(), out);
        }
    };
    match body["action"].as_str().unwrap() {
        "Create" => {
            out.push(0);
            string(body["name"].as_str().unwrap(), &mut out);
            out.push(u8::from(body["members_may_rename"].as_bool().unwrap()));
            new_members(&mut out);
        }
        "Add" => {
            out.push(1);
            new_members(&mut out);
        }
        "Remove" => {
            out.push(2);
            let list = body["accounts"].as_array().unwrap();
            varint(list.len() as u64, &mut out);
            for a in list {
                fixed(a, 16, &mut out);
            }
        }
        "Leave" => out.push(3),
        "Rename" => {
            out.push(4);
            string(body["name"].as_str().unwrap(), &mut out);
        }
        "Promote" => {
            out.push(5);
            fixed(&body["account"], 16, &mut out);
        }
        other => panic!("unknown action {other}"),
    }
    out
}

/// §8.7: the snapshot, from the state's fields.
fn spec_state(s: &Value) -> Vec<u8> {
    let mut out = vec![0x01];
    fixed(&s["group"], 32, &mut out);
    varint(s["version"].as_u64().unwrap(), &mut out);
    fixed(&s["head"], 32, &mut out);
    string(s["name"].as_str().unwrap(), &mut out);
    out.push(u8::from(s["members_may_rename"].as_bool().unwrap()));
    let list = s["members"].as_array().unwrap();
    varint(list.len() as u64, &mut out);
    for m in list {
        fixed(&m["account"], 16, &mut out);
        string(m["username"].as_str().unwrap(), &mut out);
        // Option<u64>: 0x00, or 0x01 then the varint.
        match m["admin_since"].as_u64() {
            None => {
                assert!(m["admin_since"].is_null());
                out.push(0);
            }
            Some(since) => {
                out.push(1);
                varint(since, &mut out);
            }
        }
    }
    varint(s["rotation_point"].as_u64().unwrap(), &mut out);
    out
}

fn labelled(label: &str, msg: &[u8]) -> Vec<u8> {
    let mut out = (label.len() as u64).to_be_bytes().to_vec();
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(msg);
    out
}

fn verifies(identity: &[u8], signed: &[u8], signature: &[u8]) -> bool {
    let key = VerifyingKey::from_bytes(identity[..32].try_into().unwrap()).unwrap();
    let signature = Signature::from_slice(signature).unwrap();
    key.verify_strict(
        &labelled("umbra/v1/group/change-signature", signed),
        &signature,
    )
    .is_ok()
}

fn spec_hash(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"umbra/v1/group/change-hash");
    h.update(bytes);
    hex::encode(h.finalize())
}

/// Checks one change entry; returns its hash.
fn check_change(c: &Value) -> String {
    let bytes = unhex(&c["hex"]);
    let signed = spec_signed_bytes(c);
    assert_eq!(bytes.len(), signed.len() + 64, "{}", c["what"]);
    assert_eq!(&bytes[..signed.len()], &signed[..], "{}: body", c["what"]);
    assert_eq!(c["signed_len"].as_u64().unwrap() as usize, signed.len());
    let signature = &bytes[signed.len()..];
    assert_eq!(signature, &unhex(&c["signature"])[..]);
    assert!(
        verifies(&unhex(&c["author_identity"]), &signed, signature),
        "{}: signature",
        c["what"]
    );
    let hash = spec_hash(&bytes);
    assert_eq!(c["hash"].as_str().unwrap(), hash, "{}: hash", c["what"]);
    hash
}

#[test]
fn group_state_vectors_as_a_stranger() {
    let file = common::committed("group_state.json");
    // §8.7-§8.10's numbers, as literals.
    let limits = [
        ("MAX_GROUP_MEMBERS", 1024),
        ("MAX_MEMBERS_PER_CHANGE", 64),
        ("REORG_WINDOW", 32),
        ("MAX_PENDING_CHANGES", 64),
        ("MAX_REMEMBERED_LOSERS", 64),
        ("MAX_SIDE_CHANGES", 64),
        ("MAX_SIDE_PER_AUTHOR", 16),
        ("MAX_GROUP_CHANGE_BYTES", 24_576),
        ("MAX_GROUP_STATE_BYTES", 63_488),
    ];
    for (name, value) in limits {
        assert_eq!(file["limits"][name], json!(value), "{name}");
    }
    assert_eq!(file["limits"].as_object().unwrap().len(), limits.len());
    let mut previous = "00".repeat(32);
    for (i, step) in file["chain"].as_array().unwrap().iter().enumerate() {
        let c = &step["change"];
        assert_eq!(
            c["parent"].as_str().unwrap(),
            previous,
            "step {i}: hash chain"
        );
        assert_eq!(c["version"].as_u64().unwrap(), i as u64);
        let hash = check_change(c);
        let s = &step["state"];
        assert_eq!(s["head"].as_str().unwrap(), hash, "step {i}: head");
        assert_eq!(s["version"].as_u64().unwrap(), i as u64);
        assert_eq!(unhex(&s["hex"]), spec_state(s), "step {i}: snapshot");
        previous = hash;
    }
    // The last admin left at version 6: the one remaining member is its
    // admin from then on.
    let chain = file["chain"].as_array().unwrap();
    let last = &chain.last().unwrap()["state"];
    let members = last["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["admin_since"], json!(6));

    // Fork choice: the lowest rank wins, the rank being the author's
    // standing in the parent state (admins by admin_since ascending, then
    // members by account ascending), then the hash (bytewise; hex of equal
    // length sorts the same).
    let forks = file["forks"].as_array().unwrap();
    assert_eq!(forks.len(), 3);
    for fork in forks {
        let parent = &chain[fork["parent_version"].as_u64().unwrap() as usize]["state"];
        let standing = |author: &str| -> (u8, u64, String) {
            let m = parent["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["account"].as_str() == Some(author))
                .expect("the author is a member of the parent");
            match m["admin_since"].as_u64() {
                Some(since) => (0, since, String::new()),
                None => (1, 0, author.to_owned()),
            }
        };
        let ranked: Vec<((u8, u64, String), String)> = fork["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                assert_eq!(c["parent"], parent["head"], "{}: siblings", fork["what"]);
                (standing(c["author"].as_str().unwrap()), check_change(c))
            })
            .collect();
        let (_, best) = ranked.iter().min().unwrap();
        assert_eq!(fork["winner"].as_str().unwrap(), best, "{}", fork["what"]);
    }
    // The first fork is the one seniority exists for: the loser's hash is
    // the lower one.
    let first = forks[0]["changes"].as_array().unwrap();
    assert!(first[1]["hash"].as_str() < first[0]["hash"].as_str());
    assert_eq!(forks[0]["winner"], first[0]["hash"]);

    // Overruling: a branch's child is out when another branch removes its
    // author, the most senior remover's overrule first (an overruled
    // child's own overrules are void); the lowest rank among the rest
    // wins (§8.10).
    let overrules = file["overrules"].as_array().unwrap();
    assert_eq!(overrules.len(), 3);
    for o in overrules {
        let parent = &chain[o["parent_version"].as_u64().unwrap() as usize]["state"];
        let branches = o["branches"].as_array().unwrap();
        let mut firsts = Vec::new();
        for branch in branches {
            let mut previous = parent["head"].as_str().unwrap().to_owned();
            for c in branch.as_array().unwrap() {
                assert_eq!(
                    c["parent"].as_str().unwrap(),
                    previous,
                    "{}: a chain",
                    o["what"]
                );
                previous = check_change(c);
            }
            let first = &branch[0];
            let author = first["author"].as_str().unwrap();
            let m = parent["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["account"].as_str() == Some(author))
                .expect("the author is a member of the parent");
            let standing = match m["admin_since"].as_u64() {
                Some(since) => (0u8, since, String::new()),
                None => (1, 0, author.to_owned()),
            };
            firsts.push((standing, first["hash"].as_str().unwrap().to_owned(), author));
        }
        // Every overrule: (remover's standing, from branch, overruled
        // branch). No branch here promotes anyone, so the remover's
        // standing where he signed is his standing in the parent.
        let standing_of = |who: &str| {
            let m = parent["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["account"].as_str() == Some(who))
                .expect("the remover is a member of the parent");
            match m["admin_since"].as_u64() {
                Some(since) => (0u8, since, String::new()),
                None => (1, 0, who.to_owned()),
            }
        };
        let mut edges = Vec::new();
        for (j, branch) in branches.iter().enumerate() {
            for c in branch.as_array().unwrap() {
                assert_ne!(c["body"]["action"], "Promote", "{}", o["what"]);
                if c["body"]["action"] != "Remove" {
                    continue;
                }
                let accounts = c["body"]["accounts"].as_array().unwrap();
                for (i, first) in firsts.iter().enumerate() {
                    if i != j && accounts.iter().any(|a| a == first.2) {
                        edges.push((standing_of(c["author"].as_str().unwrap()), j, i));
                    }
                }
            }
        }
        // Most senior remover first, one standing at a time; an overrule
        // from an overruled child is void.
        edges.sort();
        let mut overruled = vec![false; branches.len()];
        let mut at = 0;
        while at < edges.len() {
            let same = edges[at..]
                .iter()
                .take_while(|e| e.0 == edges[at].0)
                .count();
            let hits: Vec<usize> = edges[at..at + same]
                .iter()
                .filter(|e| !overruled[e.1])
                .map(|e| e.2)
                .collect();
            for i in hits {
                overruled[i] = true;
            }
            at += same;
        }
        let free: Vec<usize> = (0..branches.len()).filter(|&i| !overruled[i]).collect();
        let best = free
            .iter()
            .min_by_key(|&&i| (firsts[i].0.clone(), firsts[i].1.clone()))
            .copied()
            .expect("a child not overruled");
        assert_eq!(
            o["winner"].as_str().unwrap(),
            firsts[best].1,
            "{}",
            o["what"]
        );
        let last = branches[best].as_array().unwrap().last().unwrap();
        assert_eq!(o["head"], last["hash"], "{}", o["what"]);
        // Each is a case the rank alone would decide the other way.
        let by_rank = (0..branches.len())
            .min_by_key(|&i| (firsts[i].0.clone(), firsts[i].1.clone()))
            .unwrap();
        assert_ne!(by_rank, best, "{}: overruling decides", o["what"]);
    }

    // The refusals the spec names, and one the stranger can see itself.
    let errors: Vec<&str> = file["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            "NotAuthorized",
            "AuthorNotMember",
            "BadSignature",
            "WrongParent",
            "WrongGroup",
            "AlreadyAdmin",
            "NotAuthorized",
            "Frame/UnsupportedVersion",
            "Truncated"
        ]
    );
    let flipped = &file["refused"][2];
    let bytes = unhex(&flipped["hex"]);
    let (signed, signature) = bytes.split_at(bytes.len() - 64);
    assert!(!verifies(
        &unhex(&flipped["author_identity"]),
        signed,
        signature
    ));
}
