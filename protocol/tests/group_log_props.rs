//! Group log properties (docs/PROTOCOL.md §8.10): convergence under any
//! delivery order, and decoders that never panic.
//!
//! Must never: build an expected head with the log under test (the
//! convergence property computes the winner chain independently).

use std::collections::HashMap;

use proptest::prelude::*;
use umbra_protocol::consts::REORG_WINDOW;
use umbra_protocol::group::{
    ChangeHash, GroupAction, GroupChange, GroupLog, GroupState, GroupWelcome,
};

mod group_people;

use group_people::People;

// ----- convergence -------------------------------------------------------

/// One random step of the generator: build on state `parent % len`, by
/// person `author`, action `kind` with `target`.
type Step = (usize, usize, u8, usize);

/// A tree of valid changes from random steps (invalid steps are skipped),
/// each built on an earlier state; returns the create and the changes.
fn tree(p: &People, steps: &[Step]) -> (GroupChange, Vec<GroupChange>) {
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
    (create, changes)
}

/// The head the rule of §8.10 picks, computed without the log: from the
/// create, follow the child with the lowest hash.
fn expected_head(create: &GroupChange, changes: &[GroupChange]) -> ChangeHash {
    let mut best: HashMap<ChangeHash, ChangeHash> = HashMap::new();
    for c in changes {
        let entry = best.entry(*c.parent()).or_insert(*c.hash());
        if c.hash() < entry {
            *entry = *c.hash();
        }
    }
    let mut at = *create.hash();
    while let Some(next) = best.get(&at) {
        at = *next;
    }
    at
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_delivery_order_with_duplicates_converges(
        steps in prop::collection::vec((0usize..40, 0usize..5, 0u8..5, 0usize..5), 1..24),
        orders in prop::collection::vec(prop::collection::vec(any::<u32>(), 48), 3),
    ) {
        let p = People::new();
        let (create, changes) = tree(&p, &steps);
        let expected = expected_head(&create, &changes);
        let mut heads = Vec::new();
        for keys in &orders {
            // Every change once, plus the first few again, in an order
            // given by the random keys.
            let mut delivery: Vec<(u32, &GroupChange)> = changes
                .iter()
                .chain(changes.iter().take(4))
                .enumerate()
                .map(|(i, c)| (keys[i % keys.len()].wrapping_add(i as u32), c))
                .collect();
            delivery.sort_by_key(|(k, _)| *k);
            let mut log = GroupLog::create(create.clone(), &p.keys[0].public()).unwrap();
            for (_, change) in delivery {
                let outcome = log.apply(change.clone(), &p.public(change.author()));
                prop_assert!(outcome.is_ok(), "{outcome:?}");
            }
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
        for (_, i) in order {
            let outcome = log.apply(chain[i].clone(), &p.keys[0].public());
            prop_assert!(outcome.is_ok(), "{outcome:?}");
        }
        prop_assert_eq!(log.state(), &state);
        prop_assert_eq!(log.pending_len(), 0);
        prop_assert_eq!(log.base().version(), (keys.len() - REORG_WINDOW) as u64);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = GroupChange::from_bytes(&bytes);
        let _ = GroupState::from_bytes(&bytes);
        let _ = GroupWelcome::from_parts(&bytes, &bytes);
        let _ = GroupLog::from_pickle(&bytes);
    }
}
