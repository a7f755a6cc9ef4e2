//! Test vectors for group state and signed changes (docs/PROTOCOL.md
//! §8.7–§8.11): `docs/test-vectors/group_state.json`.
//!
//! `group_state_vectors` builds, from fixed seeds, a chain create → add →
//! promote → rename → remove → leave → leave (the last admin leaving),
//! forks whose winner is decided by seniority and not by the lower hash (a
//! removed admin's sibling ground to a lower hash, two members), one where
//! the hash decides (one author's two siblings), and refused changes with
//! their errors (a junior admin removing a senior one among them), and
//! compares the file with it (`UMBRA_REGENERATE_VECTORS=1` rewrites it).
//! The stranger's check of the committed file is
//! `vectors_group_state_stranger.rs`.
//!
//! Must never: write a fork whose winner the file does not let a reader
//! recompute from the spec's rule (every fork's parent is a chain state).

mod common;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
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
            "admin_since": m.admin_since,
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

    // Forks on the state after the promotion (alice admin since 0, bob
    // admin since 2, carol and dave members).
    let fork_parent = &chain[2].1;
    let remove_bob = GroupChange::remove(k(0), account(0), fork_parent, vec![account(1)]).unwrap();
    // Bob grinds his sibling until its hash is below alice's Remove: what
    // §8.10 used to let a removed admin win.
    let ground = (0u32..)
        .map(|i| GroupChange::rename(k(1), account(1), fork_parent, &format!("bob {i}")).unwrap())
        .find(|c| c.hash() < remove_bob.hash())
        .unwrap();
    let renames = [
        GroupChange::rename(k(0), account(0), fork_parent, "alice's name").unwrap(),
        GroupChange::rename(k(0), account(0), fork_parent, "alice's other name").unwrap(),
    ];
    let lower = renames.iter().min_by_key(|c| *c.hash()).unwrap();
    let leaves = [
        GroupChange::leave(k(2), account(2), fork_parent).unwrap(),
        GroupChange::leave(k(3), account(3), fork_parent).unwrap(),
    ];
    let fork = |what: &str, changes: &[(&str, &GroupChange)], winner: &GroupChange| {
        json!({
            "what": what,
            "parent_version": fork_parent.version(),
            "changes": changes.iter().map(|(w, c)| change_json(&p, w, c)).collect::<Vec<_>>(),
            "winner": winner.hash().to_hex(),
        })
    };
    let forks = vec![
        fork(
            "alice (admin since 0) removes bob (admin since 2); bob's rename on the same state has the lower hash and still loses",
            &[("alice removes bob", &remove_bob), ("bob renames (hash ground below alice's)", &ground)],
            &remove_bob,
        ),
        fork(
            "alice renames twice on the same state: between one author's siblings the lower hash wins",
            &[("alice renames", &renames[0]), ("alice renames again", &renames[1])],
            lower,
        ),
        fork(
            "carol and dave, members, leave on the same state: the lower account wins",
            &[("carol leaves", &leaves[0]), ("dave leaves", &leaves[1])],
            &leaves[0],
        ),
    ];

    // Overruled siblings (§8.10): each branch is a child of the fork
    // parent followed by its continuation; a child whose author a sibling's
    // branch removes has no effect, whatever its rank or hash.
    let bob_renames = GroupChange::rename(k(1), account(1), fork_parent, "bob's name").unwrap();
    let carol_leaves = &leaves[0];
    let then_remove_bob = |first: &GroupChange| {
        let after = fork_parent.apply(first).unwrap();
        let rename = GroupChange::rename(k(0), account(0), &after, "alice's").unwrap();
        let after = after.apply(&rename).unwrap();
        let remove = GroupChange::remove(k(0), account(0), &after, vec![account(1)]).unwrap();
        vec![first.clone(), rename, remove]
    };
    let own_branch = then_remove_bob(&bob_renames);
    let ground_own = (0u32..)
        .map(|i| GroupChange::rename(k(1), account(1), fork_parent, &format!("again {i}")).unwrap())
        .find(|c| c.hash() < bob_renames.hash())
        .unwrap();
    let carol_branch = then_remove_bob(carol_leaves);
    let bob_sibling = GroupChange::rename(k(1), account(1), fork_parent, "bob's sibling").unwrap();
    let bob_removes_carol =
        GroupChange::remove(k(1), account(1), fork_parent, vec![account(2)]).unwrap();
    let branch_json = |changes: &[GroupChange], what: &str| -> Value {
        changes
            .iter()
            .enumerate()
            .map(|(i, c)| change_json(&p, &format!("{what} [{i}]"), c))
            .collect()
    };
    let overrule = |what: &str, branches: Vec<(&[GroupChange], &str)>, winner: &[GroupChange]| {
        json!({
            "what": what,
            "parent_version": fork_parent.version(),
            "branches": branches.iter().map(|(b, w)| branch_json(b, w)).collect::<Vec<_>>(),
            "winner": winner[0].hash().to_hex(),
            "head": winner.last().unwrap().hash().to_hex(),
        })
    };
    let overrules = vec![
        overrule(
            "bob (admin since 2) renames, alice renames and removes him; bob, removed, signs a sibling of his own rename with a lower hash: overruled",
            vec![
                (own_branch.as_slice(), "bob renames, then alice"),
                (std::slice::from_ref(&ground_own), "bob's ground sibling"),
            ],
            &own_branch,
        ),
        overrule(
            "carol (a member) leaves, alice renames and removes bob; bob, removed, signs a sibling of carol's Leave (he outranks her there): overruled",
            vec![
                (carol_branch.as_slice(), "carol leaves, then alice"),
                (std::slice::from_ref(&bob_sibling), "bob's sibling"),
            ],
            &carol_branch,
        ),
        overrule(
            "carol (a member) leaves, alice (admin since 0) renames and removes bob; bob, removed, signs a sibling of carol's Leave removing carol: both children are overruled, alice's Remove is the senior remover's, so bob's overrule is void",
            vec![
                (carol_branch.as_slice(), "carol leaves, then alice"),
                (std::slice::from_ref(&bob_removes_carol), "bob removes carol"),
            ],
            &carol_branch,
        ),
    ];
    assert!(ground_own.hash() < bob_renames.hash());

    // Refused changes: decoded, signature checked with `author_identity`,
    // then applied to chain[applied_to].state.
    let s0 = &chain[0].1;
    let s1 = &chain[1].1;
    let s2 = &chain[2].1;
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
        (
            "bob (admin since 2) removes alice (admin since 0, senior)",
            unchecked(
                1,
                GROUP,
                s2,
                GroupAction::Remove {
                    accounts: vec![account(0)],
                },
            )
            .as_bytes()
            .to_vec(),
            1,
            2,
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
                .expect_err(what);
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
        "description": "umbra group state and signed changes; see docs/PROTOCOL.md §8.7-§8.11. A change is 0x01 || postcard(body) || Ed25519 signature (64) by the author's identity over u64be(len(label)) || label || (everything before the signature), label umbra/v1/group/change-signature; its hash is SHA-256(umbra/v1/group/change-hash || all its bytes). 'state' is the state after each change (snapshot encoding in 'hex'; admin_since null for a member who is not an admin). Each fork's changes are siblings on chain[parent_version].state; 'winner' is the one of lowest rank (8.10: the author's standing in that state, admins by admin_since ascending before members by account ascending, then the lower hash). Each overrule's branches are children of chain[parent_version].state, each followed by its continuation (each change the child of the one before); a child is overruled when another branch holds a Remove listing its author, overrules taking effect by the remover's standing in the state the Remove was applied to (most senior first, those of one standing together) and an overrule from an already overruled child being void; 'winner' is the first change (and 'head' the last) of the branch whose child ranks lowest among those not overruled (8.10). Refused changes are decoded, their signature checked with author_identity, then applied to chain[applied_to].state; 'error' is the first failure.",
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
            "MAX_SIDE_CHANGES": consts::MAX_SIDE_CHANGES,
            "MAX_SIDE_PER_AUTHOR": consts::MAX_SIDE_PER_AUTHOR,
            "MAX_GROUP_CHANGE_BYTES": group::MAX_GROUP_CHANGE_BYTES,
            "MAX_GROUP_STATE_BYTES": group::MAX_GROUP_STATE_BYTES,
        },
        "chain": chain_json,
        "forks": forks,
        "overrules": overrules,
        "refused": refused,
    });
    common::check_or_regenerate("group_state.json", &vectors);
}
