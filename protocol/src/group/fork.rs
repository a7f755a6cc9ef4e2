//! The fork-choice rule itself (docs/PROTOCOL.md §8.10): which child of
//! each kept state is canonical, given every valid change a group log
//! keeps. [`super::log`] keeps the changes; this file only ranks them.
//!
//! A child's rank is its author's standing in the parent state (admins
//! first, most senior first, then other members by account) and, between
//! one author's children, the lower hash. A child is **overruled** when a
//! sibling's branch (the sibling and its canonical continuation) removes
//! its author: the removal was signed by someone who outranked that
//! author where it was made, so the author's concurrent (or later,
//! back-dated) sibling below it has no effect and displaces nothing,
//! whatever its rank or hash. Overrules conflict when two branches remove
//! each other's authors; the most senior remover (his standing where he
//! signed the Remove) wins, and a child overruled by a more senior
//! remover has its own overrules ignored. The canonical child is the
//! lowest-ranked child that is not overruled (the lowest-ranked of all
//! when every child is, which only removers of equal standing, such as
//! one admin removing two authors on two branches, produce).
//!
//! Must never: depend on anything but the set of changes given (not on
//! arrival order, not on which branch was canonical before), or treat a
//! change as canonical whose parent is not.

use std::collections::HashMap;

use super::change::{ChangeHash, GroupAction, GroupChange};
use super::state::GroupState;
use crate::wire::AccountId;

/// An author's standing in a parent state (§8.10), most favoured first:
/// the variant order is the ranking (derived `Ord`), admins before
/// members, seniors before juniors, then members by account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Standing {
    Admin { since: u64 },
    Member { account: AccountId },
}

/// A change's rank among its siblings: lowest wins. Two siblings share a
/// standing only if they share an author, and then the hash decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Rank(Standing, ChangeHash);

/// The rank of `change` on `parent`, the state it was applied to (its
/// author is a member there: `GroupState::apply` checked).
pub(super) fn rank(parent: &GroupState, change: &GroupChange) -> Rank {
    let author = change.author();
    let standing = match parent.admin_since(&author) {
        Some(since) => Standing::Admin { since },
        None => Standing::Member { account: author },
    };
    Rank(standing, *change.hash())
}

/// What the rule needs of one kept change.
pub(super) struct Candidate<'a> {
    pub change: &'a GroupChange,
    pub rank: Rank,
}

/// The canonical chain above `base` (excluded), oldest first, over the
/// kept changes `nodes` (every one valid on its parent; parents not in
/// `nodes` and not `base` make a change unreachable, never canonical).
pub(super) fn canonical_chain(
    base: &ChangeHash,
    nodes: &HashMap<ChangeHash, Candidate<'_>>,
) -> Vec<ChangeHash> {
    let mut children: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
    for (hash, node) in nodes {
        children
            .entry(*node.change.parent())
            .or_default()
            .push(*hash);
    }
    // Continuations are computed leaves first without recursion: a state
    // is resolved once all its children are. Depth-first post-order with
    // an explicit stack (the tree is at most a few hundred changes deep,
    // but a stack of our own cannot overflow whatever it holds).
    let mut continuation: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
    let mut stack: Vec<(ChangeHash, bool)> = vec![(*base, false)];
    while let Some((at, expanded)) = stack.pop() {
        let kids = children.get(&at).map(Vec::as_slice).unwrap_or(&[]);
        if !expanded {
            stack.push((at, true));
            stack.extend(kids.iter().map(|k| (*k, false)));
            continue;
        }
        let chosen = choose_child(kids, nodes, &continuation);
        let mut chain = Vec::new();
        if let Some(child) = chosen {
            chain.push(child);
            chain.extend_from_slice(&continuation[&child]);
        }
        continuation.insert(at, chain);
    }
    continuation.remove(base).unwrap_or_default()
}

/// The canonical child among `kids` (all children of one state), given
/// each child's own canonical continuation.
///
/// An overrule is a Remove on one child's branch (the child and its
/// continuation) listing another child's author; its strength is the
/// remover's standing in the state the Remove was applied to (on that
/// branch). Overrules take effect most senior remover first, all of one
/// standing together; an overrule whose own branch's child is already
/// overruled by a more senior remover is void. So a removed admin cannot
/// cancel his removal by removing, on a back-dated sibling, the author of
/// the branch that removes him: the senior remover's overrule comes first.
/// This depends only on the set of kids, never on their order.
fn choose_child(
    kids: &[ChangeHash],
    nodes: &HashMap<ChangeHash, Candidate<'_>>,
    continuation: &HashMap<ChangeHash, Vec<ChangeHash>>,
) -> Option<ChangeHash> {
    // Every overrule: (remover's standing, from kid, overruled kid).
    let mut overrules: Vec<(Standing, usize, usize)> = Vec::new();
    for (from, kid) in kids.iter().enumerate() {
        for h in std::iter::once(kid).chain(&continuation[kid]) {
            let node = &nodes[h];
            let GroupAction::Remove { accounts } = node.change.action() else {
                continue;
            };
            for (target, other) in kids.iter().enumerate() {
                if target != from && accounts.contains(&nodes[other].change.author()) {
                    overrules.push((node.rank.0, from, target));
                }
            }
        }
    }
    overrules.sort_unstable_by_key(|(standing, _, _)| *standing);
    let mut overruled = vec![false; kids.len()];
    for group in overrules.chunk_by(|a, b| a.0 == b.0) {
        // Decide the whole group against the state before it, so that
        // overrules of one standing never void each other by order.
        let hits: Vec<usize> = group
            .iter()
            .filter(|(_, from, _)| !overruled[*from])
            .map(|(_, _, target)| *target)
            .collect();
        for target in hits {
            overruled[target] = true;
        }
    }
    let best = |free_only: bool| {
        (0..kids.len())
            .filter(|i| !free_only || !overruled[*i])
            .min_by_key(|i| nodes[&kids[*i]].rank)
            .map(|i| kids[i])
    };
    best(true).or_else(|| best(false))
}
