//! Group state, changes and fork choice (docs/PROTOCOL.md §8.7–§8.13):
//! authorization (admin seniority included), every refusal the spec
//! names, pending changes, fork choice by seniority (a removed admin's
//! ground sibling loses), welcomes and sizes. The convergence
//! properties are in `group_log_props.rs`.
//!
//! Must never: decide what a receiver should accept by asking the code
//! under test (refused changes are made with `sign_unchecked`).

use umbra_protocol::consts::{MAX_GROUP_MEMBERS, MAX_MEMBERS_PER_CHANGE, REORG_WINDOW};
use umbra_protocol::group::{
    GroupAction, GroupChange, GroupChangeError, GroupId, GroupLog, GroupState, GroupWelcome,
    LogOutcome, NewMember,
};
use umbra_protocol::wire::{AccountId, Username};

mod group_people;

use group_people::{applied, People};

#[test]
fn create_makes_the_author_the_sole_admin() {
    let p = People::new();
    let log = GroupLog::create(p.create(false), &p.keys[0].public()).unwrap();
    let state = log.state();
    assert_eq!(state.version(), 0);
    assert_eq!(state.members().len(), 3);
    assert!(state.is_admin(&p.account(0)));
    assert!(!state.is_admin(&p.account(1)) && state.is_member(&p.account(1)));
    assert_eq!(state.rotation_point(), 0);
}

#[test]
fn each_action_is_authorized_against_the_parent_state() {
    let p = People::new();
    let mut log = GroupLog::create(p.create(false), &p.keys[0].public()).unwrap();
    let (alice, bob, carol, dave) = (p.account(0), p.account(1), p.account(2), p.account(3));

    // A member who is not an admin may not add, remove, promote, or rename here.
    let s = log.state().clone();
    for action in [
        GroupAction::Add {
            members: vec![p.member(3)],
        },
        GroupAction::Remove {
            accounts: vec![carol],
        },
        GroupAction::Promote { account: carol },
        GroupAction::Rename {
            name: "mine".into(),
        },
    ] {
        let name = action.name();
        let err = GroupChange::build(&p.keys[1], bob, &s, action).unwrap_err();
        assert_eq!(
            err,
            GroupChangeError::NotAuthorized {
                author: bob,
                action: name
            }
        );
    }
    // An outsider may not even leave.
    assert_eq!(
        GroupChange::leave(&p.keys[3], dave, &s).unwrap_err(),
        GroupChangeError::AuthorNotMember(dave)
    );
    // The admin may; and the targets are checked.
    assert_eq!(
        GroupChange::add(&p.keys[0], alice, &s, vec![p.member(1)]).unwrap_err(),
        GroupChangeError::AlreadyMember(bob)
    );
    assert_eq!(
        GroupChange::remove(&p.keys[0], alice, &s, vec![dave]).unwrap_err(),
        GroupChangeError::NotMember(dave)
    );
    assert_eq!(
        GroupChange::remove(&p.keys[0], alice, &s, vec![alice]).unwrap_err(),
        GroupChangeError::CannotRemoveSelf
    );
    assert_eq!(
        GroupChange::promote(&p.keys[0], alice, &s, alice).unwrap_err(),
        GroupChangeError::AlreadyAdmin(alice)
    );
    let promote = GroupChange::promote(&p.keys[0], alice, &s, bob).unwrap();
    applied(log.apply(promote, &p.keys[0].public()).unwrap());
    assert!(log.state().is_admin(&bob));
    // Now bob may rename and remove.
    let rename = GroupChange::rename(&p.keys[1], bob, log.state(), "reading circle").unwrap();
    applied(log.apply(rename, &p.keys[1].public()).unwrap());
    assert_eq!(log.state().name(), "reading circle");
    let remove = GroupChange::remove(&p.keys[1], bob, log.state(), vec![carol]).unwrap();
    applied(log.apply(remove, &p.keys[1].public()).unwrap());
    assert!(!log.state().is_member(&carol));
    assert_eq!(log.state().rotation_point(), log.state().version());
}

#[test]
fn members_may_rename_when_the_policy_says_so() {
    let p = People::new();
    let log = GroupLog::create(p.create(true), &p.keys[0].public()).unwrap();
    let rename = GroupChange::rename(&p.keys[2], p.account(2), log.state(), "ours").unwrap();
    assert_eq!(log.state().apply(&rename).unwrap().name(), "ours");
}

#[test]
fn when_the_last_admin_leaves_the_lowest_remaining_account_becomes_admin() {
    let p = People::new();
    let mut log = GroupLog::create(p.create(false), &p.keys[0].public()).unwrap();
    let leave = GroupChange::leave(&p.keys[0], p.account(0), log.state()).unwrap();
    applied(log.apply(leave, &p.keys[0].public()).unwrap());
    let state = log.state();
    assert!(!state.is_member(&p.account(0)));
    assert!(state.is_admin(&p.account(1)), "bob has the lowest account");
    assert!(!state.is_admin(&p.account(2)));
    assert_eq!(state.rotation_point(), 1);
}

#[test]
fn receivers_refuse_what_the_builders_would_not_make() {
    let p = People::new();
    let create = p.create(false);
    let mut log = GroupLog::create(create.clone(), &p.keys[0].public()).unwrap();
    let s = log.state().clone();
    let (alice, bob) = (p.account(0), p.account(1));

    // A non-admin's Add, correctly signed by that non-admin.
    let forged = GroupChange::sign_unchecked(
        &p.keys[1],
        bob,
        *s.group(),
        1,
        *s.head(),
        GroupAction::Add {
            members: vec![p.member(3)],
        },
    )
    .unwrap();
    assert_eq!(
        log.apply(forged, &p.keys[1].public()).unwrap_err(),
        GroupChangeError::NotAuthorized {
            author: bob,
            action: "add"
        }
    );
    // An admin's change claimed by alice but signed by bob's key.
    let mislabelled = GroupChange::sign_unchecked(
        &p.keys[1],
        alice,
        *s.group(),
        1,
        *s.head(),
        GroupAction::Leave,
    )
    .unwrap();
    assert_eq!(
        log.apply(mislabelled, &p.keys[0].public()).unwrap_err(),
        GroupChangeError::BadSignature
    );
    // One flipped byte anywhere breaks the signature (and the hash).
    let good = GroupChange::rename(&p.keys[0], alice, &s, "renamed").unwrap();
    let mut bytes = good.as_bytes().to_vec();
    let at = bytes.len() - 70;
    bytes[at] ^= 0x01;
    if let Ok(tampered) = GroupChange::from_bytes(&bytes) {
        assert_eq!(
            log.apply(tampered, &p.keys[0].public()).unwrap_err(),
            GroupChangeError::BadSignature
        );
    }
    // A change for another group.
    let other = GroupChange::sign_unchecked(
        &p.keys[0],
        alice,
        GroupId([8; 32]),
        1,
        *s.head(),
        GroupAction::Leave,
    )
    .unwrap();
    assert!(matches!(
        log.apply(other, &p.keys[0].public()).unwrap_err(),
        GroupChangeError::WrongGroup { .. }
    ));
    // Nothing refused changed the log.
    assert_eq!(log.state(), &s);
    applied(log.apply(good, &p.keys[0].public()).unwrap());
}

#[test]
fn an_add_over_the_member_limit_is_refused() {
    let p = People::new();
    let mut log = GroupLog::create(p.create(false), &p.keys[0].public()).unwrap();
    let alice = p.account(0);
    let mut next = 0x1000u32;
    let mut batch = |n: usize| -> Vec<NewMember> {
        (0..n)
            .map(|_| {
                next += 1;
                let mut bytes = [0xee; 16];
                bytes[12..].copy_from_slice(&next.to_be_bytes());
                NewMember {
                    account: AccountId::from_bytes(bytes),
                    username: Username::parse("member").unwrap(),
                }
            })
            .collect()
    };
    while log.state().members().len() + MAX_MEMBERS_PER_CHANGE <= MAX_GROUP_MEMBERS {
        let add = GroupChange::add(
            &p.keys[0],
            alice,
            log.state(),
            batch(MAX_MEMBERS_PER_CHANGE),
        )
        .unwrap();
        applied(log.apply(add, &p.keys[0].public()).unwrap());
    }
    let room = MAX_GROUP_MEMBERS - log.state().members().len();
    let too_many = batch(room + 1);
    let s = log.state().clone();
    let over = GroupChange::sign_unchecked(
        &p.keys[0],
        alice,
        *s.group(),
        s.version() + 1,
        *s.head(),
        GroupAction::Add { members: too_many },
    )
    .unwrap();
    assert_eq!(
        log.apply(over, &p.keys[0].public()).unwrap_err(),
        GroupChangeError::TooManyMembers {
            count: MAX_GROUP_MEMBERS + 1,
            max: MAX_GROUP_MEMBERS
        }
    );
    let fits = GroupChange::add(&p.keys[0], alice, &s, batch(room)).unwrap();
    applied(log.apply(fits, &p.keys[0].public()).unwrap());
    assert_eq!(log.state().members().len(), MAX_GROUP_MEMBERS);
    // A full group's snapshot still round-trips (a welcome carries it).
    let bytes = log.state().to_bytes();
    assert_eq!(&GroupState::from_bytes(&bytes).unwrap(), log.state());
}

#[test]
fn a_replayed_old_change_is_refused() {
    let p = People::new();
    let mut log = GroupLog::create(p.create(true), &p.keys[0].public()).unwrap();
    let first = GroupChange::rename(&p.keys[0], p.account(0), log.state(), "r0").unwrap();
    applied(log.apply(first.clone(), &p.keys[0].public()).unwrap());
    // Inside the window a replay is a harmless duplicate...
    assert_eq!(
        log.apply(first.clone(), &p.keys[0].public()).unwrap(),
        LogOutcome::Duplicate {
            hash: *first.hash()
        }
    );
    for i in 1..=REORG_WINDOW + 1 {
        let name = format!("r{i}");
        let change = GroupChange::rename(&p.keys[0], p.account(0), log.state(), &name).unwrap();
        applied(log.apply(change, &p.keys[0].public()).unwrap());
    }
    let before = log.state().clone();
    // ...and once it is older than the window it is refused as stale.
    assert_eq!(
        log.apply(first, &p.keys[0].public()).unwrap_err(),
        GroupChangeError::Stale {
            version: 1,
            oldest: log.base().version()
        }
    );
    assert_eq!(log.state(), &before);
}

#[test]
fn a_change_waits_for_its_parent() {
    let p = People::new();
    let create = p.create(true);
    let mut sender = GroupLog::create(create.clone(), &p.keys[0].public()).unwrap();
    let a = GroupChange::rename(&p.keys[0], p.account(0), sender.state(), "one").unwrap();
    applied(sender.apply(a.clone(), &p.keys[0].public()).unwrap());
    let b = GroupChange::rename(&p.keys[1], p.account(1), sender.state(), "two").unwrap();

    let mut late = GroupLog::create(create, &p.keys[0].public()).unwrap();
    assert_eq!(
        late.apply(b.clone(), &p.keys[1].public()).unwrap(),
        LogOutcome::Pending { hash: *b.hash() }
    );
    assert_eq!(late.pending_len(), 1);
    // The pending change survives a reload.
    let mut late = GroupLog::from_pickle(&late.to_pickle()).unwrap();
    assert_eq!(
        applied(late.apply(a.clone(), &p.keys[0].public()).unwrap()),
        vec![*a.hash(), *b.hash()]
    );
    assert_eq!(late.pending_len(), 0);
    assert_eq!(late.state().name(), "two");
}

/// Alice (admin since 0) and bob (promoted at version 1, admin since 1).
fn two_admins(p: &People) -> GroupLog {
    let mut log = GroupLog::create(p.create(false), &p.keys[0].public()).unwrap();
    let promote =
        GroupChange::promote(&p.keys[0], p.account(0), log.state(), p.account(1)).unwrap();
    applied(log.apply(promote, &p.keys[0].public()).unwrap());
    log
}

#[test]
fn seniority_is_the_version_an_admin_became_one() {
    let p = People::new();
    let mut log = two_admins(&p);
    let s = log.state();
    assert_eq!(s.admin_since(&p.account(0)), Some(0));
    assert_eq!(s.admin_since(&p.account(1)), Some(1));
    assert_eq!(s.admin_since(&p.account(2)), None);
    // The last admins leave: the lowest remaining account is promoted at
    // the version of the Leave that orphaned the group.
    for i in [0, 1] {
        let leave = GroupChange::leave(&p.keys[i], p.account(i), log.state()).unwrap();
        applied(log.apply(leave, &p.keys[i].public()).unwrap());
    }
    assert_eq!(log.state().admin_since(&p.account(2)), Some(3));
}

#[test]
fn an_admin_may_remove_only_junior_admins() {
    let p = People::new();
    let mut log = two_admins(&p);
    let (alice, bob) = (p.account(0), p.account(1));
    let s = log.state().clone();
    // Bob's builder refuses, and so does every receiver of a signed one.
    let refused = GroupChangeError::NotAuthorized {
        author: bob,
        action: "remove",
    };
    assert_eq!(
        GroupChange::remove(&p.keys[1], bob, &s, vec![alice]).unwrap_err(),
        refused
    );
    let forged = GroupChange::sign_unchecked(
        &p.keys[1],
        bob,
        *s.group(),
        s.version() + 1,
        *s.head(),
        GroupAction::Remove {
            accounts: vec![alice, p.account(2)],
        },
    )
    .unwrap();
    assert_eq!(log.apply(forged, &p.keys[1].public()).unwrap_err(), refused);
    assert_eq!(log.state(), &s);
    // Bob may still remove a member; alice may remove bob.
    GroupChange::remove(&p.keys[1], bob, &s, vec![p.account(2)]).unwrap();
    let remove = GroupChange::remove(&p.keys[0], alice, &s, vec![bob]).unwrap();
    applied(log.apply(remove, &p.keys[0].public()).unwrap());
    assert!(!log.state().is_member(&bob));
}

#[test]
fn concurrent_admin_changes_converge_on_the_senior_admins() {
    let p = People::new();
    let mut alice = two_admins(&p);
    let mut bob = alice.clone();
    // Both admins change the same state at once.
    let by_alice = GroupChange::rename(&p.keys[0], p.account(0), alice.state(), "A").unwrap();
    let by_bob =
        GroupChange::remove(&p.keys[1], p.account(1), bob.state(), vec![p.account(2)]).unwrap();
    alice.apply(by_alice.clone(), &p.keys[0].public()).unwrap();
    bob.apply(by_bob.clone(), &p.keys[1].public()).unwrap();
    let at_alice = alice.apply(by_bob.clone(), &p.keys[1].public()).unwrap();
    let at_bob = bob.apply(by_alice.clone(), &p.keys[0].public()).unwrap();
    // Alice is the senior admin: her change wins whatever the hashes.
    assert_eq!(alice.head(), by_alice.hash());
    assert_eq!(bob.head(), by_alice.hash());
    assert_eq!(alice.state(), bob.state());
    // Bob, whose own change lost, sees it undone (and re-issues it).
    match at_bob {
        LogOutcome::Applied(moved) => {
            assert_eq!(moved.undone, vec![by_bob.clone()]);
            assert_eq!(moved.applied, vec![by_alice.clone()]);
        }
        other => panic!("expected a reorganisation, got {other:?}"),
    }
    assert_eq!(
        at_alice,
        LogOutcome::Superseded {
            hash: *by_bob.hash()
        }
    );
}

/// Bob's renames of `state` until one hashes below `below`.
fn ground_below(p: &People, state: &GroupState, below: &GroupChange) -> GroupChange {
    (0u32..)
        .map(|i| GroupChange::rename(&p.keys[1], p.account(1), state, &format!("b{i}")).unwrap())
        .find(|c| c.hash() < below.hash())
        .unwrap()
}

#[test]
fn a_removed_admins_ground_sibling_loses_in_either_order() {
    let p = People::new();
    let start = two_admins(&p);
    let parent = start.state().clone();
    let remove =
        GroupChange::remove(&p.keys[0], p.account(0), &parent, vec![p.account(1)]).unwrap();
    // Bob, about to be removed, signs a sibling with a lower hash and a
    // change on top of it (what the lowest-hash rule let him win).
    let ground = ground_below(&p, &parent, &remove);
    let after = parent.apply(&ground).unwrap();
    let on_top = GroupChange::rename(&p.keys[1], p.account(1), &after, "still here").unwrap();
    let orders = [
        [&remove, &ground, &on_top],
        [&ground, &on_top, &remove],
        [&on_top, &ground, &remove],
    ];
    for order in orders {
        let mut log = start.clone();
        for change in order {
            log.apply(change.clone(), &p.public(change.author()))
                .unwrap();
        }
        assert_eq!(log.head(), remove.hash());
        assert!(!log.state().is_member(&p.account(1)));
        assert_eq!(log.pending_len(), 0);
    }
}

#[test]
fn between_one_authors_siblings_the_lower_hash_wins() {
    let p = People::new();
    let log = two_admins(&p);
    let s = log.state();
    let one = GroupChange::rename(&p.keys[1], p.account(1), s, "one").unwrap();
    let two = GroupChange::rename(&p.keys[1], p.account(1), s, "two").unwrap();
    let lower = if one.hash() < two.hash() { &one } else { &two };
    for order in [[&one, &two], [&two, &one]] {
        let mut log = log.clone();
        for change in order {
            log.apply(change.clone(), &p.keys[1].public()).unwrap();
        }
        assert_eq!(log.head(), lower.hash());
    }
    // A member's change applies while it is alone...
    let by_carol = GroupChange::leave(&p.keys[2], p.account(2), s).unwrap();
    let mut log = log.clone();
    log.apply(by_carol.clone(), &p.keys[2].public()).unwrap();
    assert_eq!(log.head(), by_carol.hash());
    // ...and any admin's change beats it, whatever the hashes.
    log.apply(one.clone(), &p.keys[1].public()).unwrap();
    assert_eq!(log.head(), one.hash());
}

#[test]
fn a_welcome_starts_a_new_members_log() {
    let p = People::new();
    let mut log = GroupLog::create(p.create(false), &p.keys[0].public()).unwrap();
    let add = GroupChange::add(&p.keys[0], p.account(0), log.state(), vec![p.member(3)]).unwrap();
    applied(log.apply(add.clone(), &p.keys[0].public()).unwrap());
    let welcome = GroupWelcome::new(log.state().clone(), add).unwrap();
    let received =
        GroupWelcome::from_parts(&welcome.state_bytes(), welcome.change_bytes()).unwrap();
    let dave =
        GroupLog::from_welcome(&received, p.account(0), &p.keys[0].public(), p.account(3)).unwrap();
    assert_eq!(dave.state(), log.state());
    // Later changes by others apply on top of the snapshot.
    let mut dave = dave;
    let promote =
        GroupChange::promote(&p.keys[0], p.account(0), log.state(), p.account(1)).unwrap();
    applied(dave.apply(promote, &p.keys[0].public()).unwrap());
    let rename = GroupChange::rename(&p.keys[1], p.account(1), dave.state(), "later").unwrap();
    applied(dave.apply(rename, &p.keys[1].public()).unwrap());
    assert_eq!(dave.state().name(), "later");
    // Not for erin; not from bob; not signed by the claimed adder.
    assert!(matches!(
        GroupLog::from_welcome(&received, p.account(0), &p.keys[0].public(), p.account(4)),
        Err(GroupChangeError::BadWelcome(_))
    ));
    assert!(matches!(
        GroupLog::from_welcome(&received, p.account(1), &p.keys[1].public(), p.account(3)),
        Err(GroupChangeError::BadWelcome(_))
    ));
    assert_eq!(
        GroupLog::from_welcome(&received, p.account(0), &p.keys[1].public(), p.account(3))
            .unwrap_err(),
        GroupChangeError::BadSignature
    );
}

#[test]
fn a_full_groups_welcome_fits_one_pairwise_message() {
    use umbra_protocol::{content, padding, payload};
    let p = People::new();
    let alice = p.account(0);
    let mut log = GroupLog::create(p.create(false), &p.keys[0].public()).unwrap();
    // Every member with the longest username there is (32 characters).
    let long = |n: u32| NewMember {
        account: {
            let mut bytes = [0xdd; 16];
            bytes[12..].copy_from_slice(&n.to_be_bytes());
            AccountId::from_bytes(bytes)
        },
        username: Username::parse(&format!("m{n:031}")).unwrap(),
    };
    let mut n = 0;
    let mut last_add = None;
    while log.state().members().len() < MAX_GROUP_MEMBERS {
        let room = MAX_GROUP_MEMBERS - log.state().members().len();
        let batch: Vec<NewMember> = (0..room.min(MAX_MEMBERS_PER_CHANGE))
            .map(|_| {
                n += 1;
                long(n)
            })
            .collect();
        let add = GroupChange::add(&p.keys[0], alice, log.state(), batch).unwrap();
        applied(log.apply(add.clone(), &p.keys[0].public()).unwrap());
        last_add = Some(add);
    }
    let welcome = GroupWelcome::new(log.state().clone(), last_add.unwrap()).unwrap();
    let encoded = content::encode(&content::Content::GroupWelcome {
        state: welcome.state_bytes(),
        change: welcome.change_bytes().to_vec(),
    })
    .unwrap();
    // The client payload adds its header and the longest username (12.1).
    assert!(
        encoded.len() + payload::PAYLOAD_FIXED_LEN + 32 <= padding::MAX_CONTENT_LEN,
        "a full welcome is {} bytes",
        encoded.len()
    );
}

#[test]
fn only_members_near_the_head_may_wait_and_each_only_for_its_share() {
    use umbra_protocol::consts::{MAX_PENDING_CHANGES, MAX_PENDING_PER_AUTHOR};
    use umbra_protocol::group::ChangeHash;
    let p = People::new();
    let mut log = GroupLog::create(p.create(true), &p.keys[0].public()).unwrap();
    let group = *log.state().group();
    let (bob, dave) = (p.account(1), p.account(3));
    let orphan = |who: usize, version: u64, n: u8| {
        GroupChange::sign_unchecked(
            &p.keys[who],
            p.account(who),
            group,
            version,
            ChangeHash([n; 32]),
            GroupAction::Leave,
        )
        .unwrap()
    };
    // Dave was never a member: nothing of his is held.
    assert_eq!(
        log.apply(orphan(3, 5, 1), &p.keys[3].public()).unwrap_err(),
        GroupChangeError::PendingUnknownAuthor(dave)
    );
    // A member's change claiming a version far above the head is not held.
    let far = MAX_PENDING_CHANGES as u64 + 1;
    assert_eq!(
        log.apply(orphan(1, far, 2), &p.keys[1].public())
            .unwrap_err(),
        GroupChangeError::TooFarAhead {
            version: far,
            head: 0
        }
    );
    // Bob may hold his share of the queue, no more.
    for n in 0..MAX_PENDING_PER_AUTHOR {
        let change = orphan(1, 2, 10 + n as u8);
        assert!(matches!(
            log.apply(change, &p.keys[1].public()).unwrap(),
            LogOutcome::Pending { .. }
        ));
    }
    assert_eq!(
        log.apply(orphan(1, 2, 99), &p.keys[1].public())
            .unwrap_err(),
        GroupChangeError::PendingFull {
            max: MAX_PENDING_PER_AUTHOR
        }
    );
    assert_eq!(log.pending_len(), MAX_PENDING_PER_AUTHOR);
    // Alice's reordered changes still wait for their parent.
    let first = GroupChange::rename(&p.keys[0], p.account(0), log.state(), "one").unwrap();
    let after = log.state().apply(&first).unwrap();
    let second = GroupChange::rename(&p.keys[0], p.account(0), &after, "two").unwrap();
    assert!(matches!(
        log.apply(second.clone(), &p.keys[0].public()).unwrap(),
        LogOutcome::Pending { .. }
    ));
    assert_eq!(
        applied(log.apply(first.clone(), &p.keys[0].public()).unwrap()),
        vec![*first.hash(), *second.hash()]
    );
    assert!(log.state().is_member(&bob));
}
