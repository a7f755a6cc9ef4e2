//! Group log properties (docs/PROTOCOL.md §8.10): convergence under any
//! delivery order, a removed admin's siblings never winning whatever their
//! hashes, and decoders that never panic.
//!
//! Must never: build an expected head with the log under test (the
//! convergence property ranks siblings itself, from §8.10's text).

use std::collections::HashMap;

use proptest::prelude::*;
use umbra_protocol::consts::REORG_WINDOW;
use umbra_protocol::group::{
    ChangeHash, GroupAction, GroupChange, GroupChangeError, GroupLog, GroupState, GroupWelcome,
};
use umbra_protocol::wire::AccountId;

mod group_people;

use group_people::People;

// ----- convergence -------------------------------------------------------

/// One random step of the generator: build on state `parent % len`, by
/// person `author`, action `kind` with `target`.
type Step = (usize, usize, u8, usize);

/// A tree of valid changes from random steps (invalid steps are skipped),
/// each built on an earlier state; returns the create, the changes, and
/// the state each of them (and the create) produced, by hash.
fn tree(
    p: &People,
    steps: &[Step],
) -> (
    GroupChange,
    Vec<GroupChange>,
    HashMap<ChangeHash, GroupState>,
) {
    let create = p.create(true);
    let mut states = vec![GroupState::from_create(&create).unwrap()];
    let mut changes = Vec::new();
    for &(parent, author, kind, target) in steps {
        let state = states[parent % states.len()].clone();
        let (who, key) = (p.account(author % 5), &p.keys[author % 5]);
        let action = match kind % 5 {
            0 => GroupAction::Add {
                members: vec![p.member(target % 5)],
            },
            1 => GroupAction::Remove {
                accounts: vec![p.account(target % 5)],
            },
            2 => GroupAction::Leave,
            3 => GroupAction::Rename {
                name: format!("name {target}"),
            },
            _ => GroupAction::Promote {
                account: p.account(target % 5),
            },
        };
        if let Ok(change) = GroupChange::build(key, who, &state, action) {
            states.push(state.apply(&change).unwrap());
            changes.push(change);
        }
    }
    let by_head = states.into_iter().map(|s| (*s.head(), s)).collect();
    (create, changes, by_head)
}

/// §8.10's rank of `c` on its parent state: admins by `admin_since`,
/// then other members by account, then the hash; lowest wins.
fn rank(parent: &GroupState, c: &GroupChange) -> (u8, u64, [u8; 16], ChangeHash) {
    let author = c.author();
    let member = parent
        .members()
        .iter()
        .find(|m| m.account == author)
        .unwrap();
    match member.admin_since {
        Some(since) => (0, since, [0; 16], *c.hash()),
        None => (1, 0, *author.as_bytes(), *c.hash()),
    }
}

/// The head the rule of §8.10 picks, computed without the log: from the
/// create, follow the child of lowest rank among those not overruled (a
/// child is overruled when a sibling's branch, the sibling and its own
/// canonical continuation, removes its author; if every child is, the
/// lowest rank of all).
fn expected_head(
    create: &GroupChange,
    changes: &[GroupChange],
    states: &HashMap<ChangeHash, GroupState>,
) -> ChangeHash {
    fn continuation(
        at: &ChangeHash,
        changes: &[GroupChange],
        states: &HashMap<ChangeHash, GroupState>,
    ) -> Vec<GroupChange> {
        let kids: Vec<&GroupChange> = changes.iter().filter(|c| c.parent() == at).collect();
        let branches: Vec<Vec<GroupChange>> = kids
            .iter()
            .map(|k| {
                let mut branch = vec![(*k).clone()];
                branch.extend(continuation(k.hash(), changes, states));
                branch
            })
            .collect();
        let removes = |branch: &[GroupChange], who: AccountId| {
            branch.iter().any(|c| match c.action() {
                GroupAction::Remove { accounts } => accounts.contains(&who),
                _ => false,
            })
        };
        let overruled =
            |i: usize| (0..kids.len()).any(|j| j != i && removes(&branches[j], kids[i].author()));
        let pick = |pool: Vec<usize>| pool.into_iter().min_by_key(|&i| rank(&states[at], kids[i]));
        let free: Vec<usize> = (0..kids.len()).filter(|&i| !overruled(i)).collect();
        match pick(free).or_else(|| pick((0..kids.len()).collect())) {
            Some(i) => branches[i].clone(),
            None => Vec::new(),
        }
    }
    continuation(create.hash(), changes, states)
        .last()
        .map_or(*create.hash(), |c| *c.hash())
}

/// `changes` in the order the random `keys` give (key i shifted by i, so
/// equal keys still give one order).
fn shuffled<'a>(changes: &'a [GroupChange], keys: &[u32]) -> Vec<&'a GroupChange> {
    let mut delivery: Vec<(u32, &GroupChange)> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (keys[i % keys.len()].wrapping_add(i as u32), c))
        .collect();
    delivery.sort_by_key(|(k, _)| *k);
    delivery.into_iter().map(|(_, c)| c).collect()
}

/// Delivers `changes` in order as a client does: one the log does not hold
/// yet for a passing reason (`PendingFull`, `PendingUnknownAuthor`: kept,
/// not acknowledged) comes again after the rest, until none is left; any
/// other refusal fails the property.
fn deliver_keeping(
    log: &mut GroupLog,
    p: &People,
    mut changes: Vec<GroupChange>,
) -> Result<(), TestCaseError> {
    while !changes.is_empty() {
        let before = changes.len();
        let mut kept = Vec::new();
        for change in changes.drain(..) {
            match log.apply(change.clone(), &p.public(change.author())) {
                Ok(_) => {}
                Err(GroupChangeError::PendingFull { .. })
                | Err(GroupChangeError::PendingUnknownAuthor(_)) => kept.push(change),
                Err(e) => prop_assert!(false, "refused: {e:?}"),
            }
        }
        // Each pass applies at least the kept change whose parent is known
        // by now (the earliest missing one), so this ends.
        prop_assert!(kept.len() < before, "no progress: {} kept", kept.len());
        changes = kept;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_delivery_order_with_duplicates_converges(
        steps in prop::collection::vec((0usize..40, 0usize..5, 0u8..5, 0usize..5), 1..24),
        orders in prop::collection::vec(prop::collection::vec(any::<u32>(), 48), 3),
    ) {
        let p = People::new();
        let (create, changes, states) = tree(&p, &steps);
        let expected = expected_head(&create, &changes, &states);
        let mut heads = Vec::new();
        for keys in &orders {
            // Every change once, plus the first few again.
            let twice: Vec<GroupChange> =
                changes.iter().chain(changes.iter().take(4)).cloned().collect();
            let delivery = shuffled(&twice, keys);
            let mut log = GroupLog::create(create.clone(), &p.keys[0].public()).unwrap();
            let delivery: Vec<GroupChange> = delivery.into_iter().cloned().collect();
            deliver_keeping(&mut log, &p, delivery)?;
            prop_assert_eq!(log.pending_len(), 0);
            prop_assert_eq!(log.head(), &expected);
            // The stored form reloads to the same log.
            let reloaded = GroupLog::from_pickle(&log.to_pickle()).unwrap();
            prop_assert_eq!(reloaded.state(), log.state());
            heads.push(log.state().clone());
        }
        let first = &heads[0];
        prop_assert!(heads.iter().all(|h| h == first));
    }

    #[test]
    fn a_chain_longer_than_the_window_converges_in_any_order(
        keys in prop::collection::vec(any::<u32>(), REORG_WINDOW + 13),
    ) {
        // The base moves up while changes arrive out of order; every one
        // of them still waits for its parent instead of going stale.
        let p = People::new();
        let create = p.create(true);
        let mut state = GroupState::from_create(&create).unwrap();
        let mut chain = Vec::new();
        for i in 0..keys.len() {
            let name = format!("n{i}");
            let change = GroupChange::rename(&p.keys[0], p.account(0), &state, &name).unwrap();
            state = state.apply(&change).unwrap();
            chain.push(change);
        }
        let mut order: Vec<(u32, usize)> = keys.iter().copied().zip(0..).collect();
        order.sort();
        let mut log = GroupLog::create(create, &p.keys[0].public()).unwrap();
        let delivery = order.into_iter().map(|(_, i)| chain[i].clone()).collect();
        deliver_keeping(&mut log, &p, delivery)?;
        prop_assert_eq!(log.state(), &state);
        prop_assert_eq!(log.pending_len(), 0);
        prop_assert_eq!(log.base().version(), (keys.len() - REORG_WINDOW) as u64);
    }

    #[test]
    fn a_removed_admins_siblings_never_win(
        renames in 0usize..4,
        junior in 1usize..3,
        names in prop::collection::vec(any::<u32>(), 1..12),
        keys in prop::collection::vec(any::<u32>(), 40),
    ) {
        // Alice promotes bob, then carol (admins since 0, 1, 2), and a few
        // renames follow. A senior admin removes `junior`; the junior signs
        // many siblings of that Remove (random names: random hashes, most
        // sets holding some below the Remove's) and a change on each.
        let p = People::new();
        let create = p.create(false);
        let mut state = GroupState::from_create(&create).unwrap();
        let mut prefix = Vec::new();
        for i in 1..=2 {
            let c = GroupChange::promote(&p.keys[0], p.account(0), &state, p.account(i)).unwrap();
            state = state.apply(&c).unwrap();
            prefix.push(c);
        }
        for i in 0..renames {
            let c = GroupChange::rename(&p.keys[0], p.account(0), &state, &format!("r{i}")).unwrap();
            state = state.apply(&c).unwrap();
            prefix.push(c);
        }
        let senior = junior - 1;
        let remove = GroupChange::remove(
            &p.keys[senior], p.account(senior), &state, vec![p.account(junior)],
        ).unwrap();
        let mut attack = vec![remove.clone()];
        for name in &names {
            let sibling = GroupChange::rename(
                &p.keys[junior], p.account(junior), &state, &format!("mine {name}"),
            ).unwrap();
            let after = state.apply(&sibling).unwrap();
            attack.push(GroupChange::leave(&p.keys[0], p.account(0), &after).unwrap());
            attack.push(sibling);
        }
        let mut log = GroupLog::create(create, &p.keys[0].public()).unwrap();
        for c in &prefix {
            log.apply(c.clone(), &p.keys[0].public()).unwrap();
        }
        // (More than MAX_PENDING_PER_AUTHOR of alice's Leaves can arrive
        // before their siblings: kept and delivered again, as a client does.)
        let delivery = shuffled(&attack, &keys).into_iter().cloned().collect();
        deliver_keeping(&mut log, &p, delivery)?;
        prop_assert_eq!(log.head(), remove.hash());
        prop_assert!(!log.state().is_member(&p.account(junior)));
        prop_assert_eq!(log.pending_len(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = GroupChange::from_bytes(&bytes);
        let _ = GroupState::from_bytes(&bytes);
        let _ = GroupWelcome::from_parts(&bytes, &bytes);
        let _ = GroupLog::from_pickle(&bytes);
    }
}
