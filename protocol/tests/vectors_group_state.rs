//! Test vectors for group state and signed changes (docs/PROTOCOL.md
//! §8.7–§8.11): `docs/test-vectors/group_state.json`.
//!
//! `group_state_vectors` builds, from fixed seeds, a chain create → add →
//! promote → rename → remove → leave → leave (the last admin leaving), a
//! fork of two concurrent renames, and refused changes with their errors,
//! and compares the file with it (`UMBRA_REGENERATE_VECTORS=1` rewrites it).
//! `group_state_vectors_as_a_stranger` reads the committed file and checks
//! it as an independent implementation would: it encodes every change body
//! and every snapshot from the spec's layout, verifies every signature with
//! raw ed25519-dalek over `u64be(len(label)) || label || signed bytes`, and
//! recomputes every hash with raw SHA-256.
//!
//! Must never: let the stranger check call umbra's encoders, hashes or
//! signature checks.

mod common;

use ed25519_dalek::{Signature, VerifyingKey};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use umbra_protocol::consts;
use umbra_protocol::group::{
    self, GroupAction, GroupChange, GroupChangeError, GroupId, GroupPolicy, GroupState, NewMember,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{AccountId, Username};

const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
const GROUP: [u8; 32] = [0x42; 32];

struct People(Vec<IdentityKeyPair>);

impl People {
    fn new() -> Self {
        Self(
            (0..NAMES.len())
                .map(|i| {
                    IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([0x50 + i as u8; 32]))
                })
                .collect(),
        )
    }
}

fn account(i: usize) -> AccountId {
    AccountId::from_bytes([0x10 * (i as u8 + 1); 16])
}

fn member(i: usize) -> NewMember {
    NewMember {
        account: account(i),
        username: Username::parse(NAMES[i]).unwrap(),
    }
}

fn who(account: AccountId) -> usize {
    usize::from(account.as_bytes()[0] / 0x10) - 1
}

fn action_json(action: &GroupAction) -> Value {
    let members = |list: &[NewMember]| -> Vec<Value> {
        list.iter()
            .map(|m| json!({ "account": common::hex(m.account.as_bytes()), "username": m.username.as_str() }))
            .collect()
    };
    match action {
        GroupAction::Create {
            name,
            policy,
            members: list,
        } => json!({ "action": "Create", "name": name,
            "members_may_rename": policy.members_may_rename, "members": members(list) }),
        GroupAction::Add { members: list } => json!({ "action": "Add", "members": members(list) }),
        GroupAction::Remove { accounts } => json!({ "action": "Remove",
            "accounts": accounts.iter().map(|a| common::hex(a.as_bytes())).collect::<Vec<_>>() }),
        GroupAction::Leave => json!({ "action": "Leave" }),
        GroupAction::Rename { name } => json!({ "action": "Rename", "name": name }),
        GroupAction::Promote { account } => {
            json!({ "action": "Promote", "account": common::hex(account.as_bytes()) })
        }
    }
}

fn change_json(p: &People, what: &str, change: &GroupChange) -> Value {
    let bytes = change.as_bytes();
    json!({
        "what": what,
        "group": common::hex(change.group().0),
        "version": change.version(),
        "parent": change.parent().to_hex(),
        "author": common::hex(change.author().as_bytes()),
        "author_identity": common::hex(p.0[who(change.author())].public().to_bytes()),
        "body": action_json(change.action()),
        "signed_len": change.signed_bytes().len(),
        "signature": common::hex(&bytes[bytes.len() - 64..]),
        "hex": common::hex(bytes),
        "hash": change.hash().to_hex(),
    })
}

fn state_json(state: &GroupState) -> Value {
    json!({
        "group": common::hex(state.group().0),
        "version": state.version(),
        "head": state.head().to_hex(),
        "name": state.name(),
        "members_may_rename": state.policy().members_may_rename,
        "members": state.members().iter().map(|m| json!({
            "account": common::hex(m.account.as_bytes()),
            "username": m.username.as_str(),
            "admin": m.admin,
        })).collect::<Vec<_>>(),
        "rotation_point": state.rotation_point(),
        "hex": common::hex(state.to_bytes()),
    })
}

fn error_name(e: &GroupChangeError) -> String {
    match e {
        GroupChangeError::Frame(w) => format!(
            "Frame/{}",
            format!("{w:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
        ),
        other => other.name().to_owned(),
    }
}

#[test]
fn group_state_vectors() {
    let p = People::new();
    let k = |i: usize| &p.0[i];
    let mut chain: Vec<(GroupChange, GroupState)> = Vec::new();
    let create = GroupChange::create(
        k(0),
        account(0),
        GroupId(GROUP),
        "book club",
        GroupPolicy {
            members_may_rename: false,
        },
        vec![member(0), member(1), member(2)],
    )
    .unwrap();
    let s0 = GroupState::from_create(&create).unwrap();
    chain.push((create, s0));
    let steps: Vec<(&str, usize, GroupAction)> = vec![
        (
            "alice adds dave",
            0,
            GroupAction::Add {
                members: vec![member(3)],
            },
        ),
        (
            "alice promotes bob",
            0,
            GroupAction::Promote {
                account: account(1),
            },
        ),
        (
            "bob renames the group",
            1,
            GroupAction::Rename {
                name: "reading circle".into(),
            },
        ),
        (
            "alice removes carol",
            0,
            GroupAction::Remove {
                accounts: vec![account(2)],
            },
        ),
        (
            "alice leaves (bob is still an admin)",
            0,
            GroupAction::Leave,
        ),
        (
            "bob, the last admin, leaves: dave becomes admin",
            1,
            GroupAction::Leave,
        ),
    ];
    let mut whats = vec!["alice creates the group with bob and carol"];
    for (what, author, action) in steps {
        let state = &chain.last().unwrap().1;
        let change = GroupChange::build(k(author), account(author), state, action).unwrap();
        let next = state.apply(&change).unwrap();
        change.verify(&k(author).public()).unwrap();
        chain.push((change, next));
        whats.push(what);
    }
    let chain_json: Vec<Value> = chain
        .iter()
        .zip(&whats)
        .map(|((c, s), what)| json!({ "change": change_json(&p, what, c), "state": state_json(s) }))
        .collect();

    // Two admins rename the state after the promotion at the same time.
    let fork_parent = &chain[2].1;
    let a = GroupChange::rename(k(0), account(0), fork_parent, "alice's name").unwrap();
    let b = GroupChange::rename(k(1), account(1), fork_parent, "bob's name").unwrap();
    let winner = if a.hash() < b.hash() { &a } else { &b };
    let fork = json!({
        "parent_version": fork_parent.version(),
        "changes": [change_json(&p, "alice renames", &a), change_json(&p, "bob renames", &b)],
        "winner": winner.hash().to_hex(),
    });

    // Refused changes: decoded, signature checked with `author_identity`,
    // then applied to chain[applied_to].state.
    let s0 = &chain[0].1;
    let s1 = &chain[1].1;
    let s3 = &chain[3].1;
    let mut flipped = chain[1].0.as_bytes().to_vec();
    *flipped.last_mut().unwrap() ^= 0x01;
    let mut version_two = chain[1].0.as_bytes().to_vec();
    version_two[0] = 0x02;
    let unchecked = |i: usize, group: [u8; 32], state: &GroupState, action| {
        GroupChange::sign_unchecked(
            k(i),
            account(i),
            GroupId(group),
            state.version() + 1,
            *state.head(),
            action,
        )
        .unwrap()
    };
    let refused: Vec<(&str, Vec<u8>, usize, usize)> = vec![
        (
            "carol, not an admin, adds erin",
            unchecked(
                2,
                GROUP,
                s0,
                GroupAction::Add {
                    members: vec![member(4)],
                },
            )
            .as_bytes()
            .to_vec(),
            2,
            0,
        ),
        (
            "erin, not a member, renames",
            unchecked(
                4,
                GROUP,
                s0,
                GroupAction::Rename {
                    name: "mine".into(),
                },
            )
            .as_bytes()
            .to_vec(),
            4,
            0,
        ),
        (
            "the add of dave with its last signature byte flipped",
            flipped,
            0,
            0,
        ),
        (
            "the add of dave replayed on version 3",
            chain[1].0.as_bytes().to_vec(),
            0,
            3,
        ),
        (
            "a leave for another group",
            unchecked(0, [0x43; 32], s1, GroupAction::Leave)
                .as_bytes()
                .to_vec(),
            0,
            1,
        ),
        (
            "alice promotes bob twice (on version 3)",
            unchecked(
                0,
                GROUP,
                s3,
                GroupAction::Promote {
                    account: account(1),
                },
            )
            .as_bytes()
            .to_vec(),
            0,
            3,
        ),
        ("change format version 2", version_two, 0, 0),
        ("ten bytes", vec![1; 10], 0, 0),
    ];
    let refused: Vec<Value> = refused
        .into_iter()
        .map(|(what, bytes, author, applied_to)| {
            let error = GroupChange::from_bytes(&bytes)
                .and_then(|c| c.verify(&k(author).public()).map(|()| c))
                .and_then(|c| chain[applied_to].1.apply(&c))
                .expect_err("refused vectors are refused");
            json!({
                "what": what,
                "hex": common::hex(&bytes),
                "author_identity": common::hex(k(author).public().to_bytes()),
                "applied_to": applied_to,
                "error": error_name(&error),
            })
        })
        .collect();

    let vectors = json!({
        "description": "umbra group state and signed changes; see docs/PROTOCOL.md §8.7-§8.11. A change is 0x01 || postcard(body) || Ed25519 signature (64) by the author's identity over u64be(len(label)) || label || (everything before the signature), label umbra/v1/group/change-signature; its hash is SHA-256(umbra/v1/group/change-hash || all its bytes). 'state' is the state after each change (snapshot encoding in 'hex'). Refused changes are decoded, their signature checked with author_identity, then applied to chain[applied_to].state; 'error' is the first failure.",
        "labels": {
            "signature": "umbra/v1/group/change-signature",
            "hash": "umbra/v1/group/change-hash",
        },
        "limits": {
            "MAX_GROUP_MEMBERS": consts::MAX_GROUP_MEMBERS,
            "MAX_MEMBERS_PER_CHANGE": consts::MAX_MEMBERS_PER_CHANGE,
            "REORG_WINDOW": consts::REORG_WINDOW,
            "MAX_PENDING_CHANGES": consts::MAX_PENDING_CHANGES,
            "MAX_REMEMBERED_LOSERS": consts::MAX_REMEMBERED_LOSERS,
            "MAX_GROUP_CHANGE_BYTES": group::MAX_GROUP_CHANGE_BYTES,
            "MAX_GROUP_STATE_BYTES": group::MAX_GROUP_STATE_BYTES,
        },
        "chain": chain_json,
        "fork": fork,
        "refused": refused,
    });
    common::check_or_regenerate("group_state.json", &vectors);
}

// ----- the stranger: §8.7/§8.8 from the text ---------------------------------

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
        out.push(u8::from(m["admin"].as_bool().unwrap()));
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
        ("MAX_GROUP_CHANGE_BYTES", 24_576),
        ("MAX_GROUP_STATE_BYTES", 57_344),
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
    // The last admin left: the one remaining member is its admin.
    let last = &file["chain"].as_array().unwrap().last().unwrap()["state"];
    let members = last["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["admin"], json!(true));

    // Fork choice: the lower hash, compared bytewise, wins.
    let fork = &file["fork"];
    let hashes: Vec<String> = fork["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(check_change)
        .collect();
    assert_eq!(hashes.len(), 2);
    let lowest = hashes.iter().min().unwrap();
    assert_eq!(fork["winner"].as_str().unwrap(), lowest);

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
