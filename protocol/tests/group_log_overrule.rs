//! A removed admin's back-dated sibling is overruled (docs/PROTOCOL.md
//! §8.10): an admin removed at version `v` signs, after its removal, a
//! sibling of an older change at `u < v` that it outranked (a member's, or
//! its own with a ground hash). It has no effect and displaces nothing, in
//! every delivery order: also when it arrives first and is canonical for
//! a while, since the side branch holding the Remove is kept and wins once
//! the Remove arrives. Side branches are bounded (`MAX_SIDE_PER_AUTHOR`).
//!
//! Must never: decide the expected head with the log under test (it is
//! the Remove's, by construction of the scenario).

use umbra_protocol::consts::MAX_SIDE_PER_AUTHOR;
use umbra_protocol::group::{GroupChange, GroupChangeError, GroupLog, GroupState, LogOutcome};

mod group_people;

use group_people::People;

/// Every order of `items` (Heap's algorithm).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn heap<T: Clone>(k: usize, a: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, a, out);
            let j = if k % 2 == 0 { i } else { 0 };
            a.swap(j, k - 1);
        }
    }
    let mut out = Vec::new();
    heap(items.len(), &mut items.to_vec(), &mut out);
    out
}

/// Alice (admin since 0) promotes bob (admin since 1); carol is a member
/// and members may rename. Returns the log and its state.
fn start(p: &People) -> (GroupLog, GroupState) {
    let mut log = GroupLog::create(p.create(true), &p.keys[0].public()).unwrap();
    let promote =
        GroupChange::promote(&p.keys[0], p.account(0), log.state(), p.account(1)).unwrap();
    log.apply(promote, &p.keys[0].public()).unwrap();
    let state = log.state().clone();
    (log, state)
}

/// The history after `first` (the change at `u`, on `parent`): an
/// alice rename, then alice's Remove of bob. Returns those two changes.
fn then_remove_bob(p: &People, parent: &GroupState, first: &GroupChange) -> Vec<GroupChange> {
    let after = parent.apply(first).unwrap();
    let rename = GroupChange::rename(&p.keys[0], p.account(0), &after, "alice's").unwrap();
    let after = after.apply(&rename).unwrap();
    let remove = GroupChange::remove(&p.keys[0], p.account(0), &after, vec![p.account(1)]).unwrap();
    vec![rename, remove]
}

/// Delivers `order` to a fresh copy of `log`; every change must be taken
/// (applied, pending, superseded), none refused.
fn deliver(log: &GroupLog, p: &People, order: &[GroupChange]) -> GroupLog {
    let mut log = log.clone();
    for change in order {
        let outcome = log.apply(change.clone(), &p.public(change.author()));
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    log
}

#[test]
fn a_removed_admins_sibling_of_a_members_change_is_overruled_in_every_order() {
    let p = People::new();
    let (log, parent) = start(&p);
    // Carol renames at u; alice later removes bob. Bob, removed, signs a
    // sibling of carol's rename: as an admin of that parent state he
    // outranks carol, which used to undo the rename and his removal.
    let by_carol = GroupChange::rename(&p.keys[2], p.account(2), &parent, "carol's").unwrap();
    let mut all = vec![by_carol.clone()];
    all.extend(then_remove_bob(&p, &parent, &by_carol));
    let remove = all.last().unwrap().clone();
    let by_bob = GroupChange::rename(&p.keys[1], p.account(1), &parent, "bob's").unwrap();
    all.push(by_bob.clone());
    for order in permutations(&all) {
        let log = deliver(&log, &p, &order);
        assert_eq!(log.head(), remove.hash(), "order {order:?}");
        assert!(!log.state().is_member(&p.account(1)));
        assert_eq!(log.state().name(), "alice's");
        assert_eq!(log.pending_len(), 0);
        // The stored form reloads to the same choice.
        let reloaded = GroupLog::from_pickle(&log.to_pickle()).unwrap();
        assert_eq!(reloaded.head(), remove.hash());
    }
}

#[test]
fn a_removed_admins_ground_sibling_of_its_own_change_is_overruled_in_every_order() {
    let p = People::new();
    let (log, parent) = start(&p);
    let own = GroupChange::rename(&p.keys[1], p.account(1), &parent, "bob's").unwrap();
    let mut all = vec![own.clone()];
    all.extend(then_remove_bob(&p, &parent, &own));
    let remove = all.last().unwrap().clone();
    // His own change's sibling, ground below it: the lower hash would win
    // between one author's siblings if nothing looked past the branch.
    let ground = (0u32..)
        .map(|i| GroupChange::rename(&p.keys[1], p.account(1), &parent, &format!("g{i}")).unwrap())
        .find(|c| c.hash() < own.hash())
        .unwrap();
    let on_ground = {
        let after = parent.apply(&ground).unwrap();
        GroupChange::rename(&p.keys[1], p.account(1), &after, "still here").unwrap()
    };
    all.push(ground);
    all.push(on_ground);
    for order in permutations(&all) {
        let log = deliver(&log, &p, &order);
        assert_eq!(log.head(), remove.hash(), "order {order:?}");
        assert!(!log.state().is_member(&p.account(1)));
        assert_eq!(log.pending_len(), 0);
    }
}

#[test]
fn the_overruled_branch_leaves_the_chain_when_the_remove_arrives() {
    // The order that needs side branches: bob's sibling first (canonical:
    // nothing removes him yet), carol's rename (a side branch), then the
    // rest of that branch; the Remove makes it canonical.
    let p = People::new();
    let (mut log, parent) = start(&p);
    let by_carol = GroupChange::rename(&p.keys[2], p.account(2), &parent, "carol's").unwrap();
    let rest = then_remove_bob(&p, &parent, &by_carol);
    let by_bob = GroupChange::rename(&p.keys[1], p.account(1), &parent, "bob's").unwrap();
    let bob_id = p.keys[1].public();
    assert!(matches!(
        log.apply(by_bob.clone(), &bob_id).unwrap(),
        LogOutcome::Applied(_)
    ));
    assert!(matches!(
        log.apply(by_carol.clone(), &p.keys[2].public()).unwrap(),
        LogOutcome::Superseded { .. }
    ));
    assert!(matches!(
        log.apply(rest[0].clone(), &p.keys[0].public()).unwrap(),
        LogOutcome::Superseded { .. }
    ));
    match log.apply(rest[1].clone(), &p.keys[0].public()).unwrap() {
        LogOutcome::Applied(moved) => {
            assert_eq!(moved.undone, vec![by_bob]);
            assert_eq!(
                moved.applied,
                vec![by_carol, rest[0].clone(), rest[1].clone()]
            );
        }
        other => panic!("expected a reorganisation, got {other:?}"),
    }
}

#[test]
fn one_author_keeps_at_most_its_share_of_side_changes() {
    let p = People::new();
    let (mut log, parent) = start(&p);
    // Alice's change wins at the parent; carol signs sibling after sibling.
    let by_alice = GroupChange::rename(&p.keys[0], p.account(0), &parent, "alice's").unwrap();
    log.apply(by_alice.clone(), &p.keys[0].public()).unwrap();
    let carol = p.keys[2].public();
    for i in 0..MAX_SIDE_PER_AUTHOR {
        let c = GroupChange::rename(&p.keys[2], p.account(2), &parent, &format!("c{i}")).unwrap();
        assert!(matches!(
            log.apply(c, &carol).unwrap(),
            LogOutcome::Superseded { .. }
        ));
    }
    let one_more = GroupChange::rename(&p.keys[2], p.account(2), &parent, "more").unwrap();
    assert_eq!(
        log.apply(one_more, &carol),
        Err(GroupChangeError::PendingFull {
            max: MAX_SIDE_PER_AUTHOR
        })
    );
    assert_eq!(log.head(), by_alice.hash());
    // Alice's own changes are not held back by carol's share.
    let next = GroupChange::rename(&p.keys[0], p.account(0), log.state(), "next").unwrap();
    assert!(matches!(
        log.apply(next, &p.keys[0].public()).unwrap(),
        LogOutcome::Applied(_)
    ));
}

#[test]
fn a_removed_admins_back_dated_remove_of_the_member_he_outranked_is_overruled_in_every_order() {
    // Bob's sibling of carol's rename removes carol: carol's branch then
    // removes bob (alice's Remove) and bob's removes carol, so both
    // children are overruled. Alice (admin since 0) outranks bob (since
    // 1) as a remover, so bob's overrule of carol is ignored and the head
    // stays alice's Remove; rank alone would pick bob's branch.
    let p = People::new();
    let (log, parent) = start(&p);
    let by_carol = GroupChange::rename(&p.keys[2], p.account(2), &parent, "carol's").unwrap();
    let mut all = vec![by_carol.clone()];
    all.extend(then_remove_bob(&p, &parent, &by_carol));
    let remove = all.last().unwrap().clone();
    let by_bob =
        GroupChange::remove(&p.keys[1], p.account(1), &parent, vec![p.account(2)]).unwrap();
    all.push(by_bob);
    for order in permutations(&all) {
        let log = deliver(&log, &p, &order);
        assert_eq!(log.head(), remove.hash(), "order {order:?}");
        assert!(!log.state().is_member(&p.account(1)));
        assert!(log.state().is_member(&p.account(2)));
        assert_eq!(log.pending_len(), 0);
        let reloaded = GroupLog::from_pickle(&log.to_pickle()).unwrap();
        assert_eq!(reloaded.head(), remove.hash());
    }
}
