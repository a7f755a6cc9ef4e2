//! Fork choice over a group's changes (docs/PROTOCOL.md §8.10): the pure
//! logic every member runs so that all of them converge on one head.
//!
//! A [`GroupLog`] holds a trusted base state (the Create's, a welcome's
//! snapshot, or the oldest state still inside the window) and the
//! canonical chain of valid changes above it. The canonical chain starts
//! at the base and, at each state, follows the valid child of lowest
//! **rank** among all children ever seen; its end is the head. A child's
//! rank is its author's standing in that (parent) state — admins first,
//! most senior (lowest `admin_since`) first, then other members by account
//! — and, between children of one author, the lower [`ChangeHash`]. The
//! rank is fixed by the parent state, so grinding a hash only reorders an
//! author's own siblings: it never lets a junior admin (or a removed one)
//! beat a senior admin's change. A child whose author is removed further
//! up a sibling's branch is overruled (it has no effect and displaces
//! nothing, `fork.rs`): an admin removed at one version cannot undo its
//! removal by signing a sibling of an older change it outranked. The
//! chain is a function of the set of changes known, never of their
//! arrival order, so members that have seen the same changes agree. For
//! that, side branches are kept (not dropped) while their branch point is
//! in the window: whether a side branch overrules the canonical one can
//! change as more of it arrives. At most
//! [`REORG_WINDOW`] changes are kept
//! above the base; a change building on something older is `Stale`. A
//! change whose parent has not arrived yet waits (at most
//! [`MAX_PENDING_CHANGES`], at most [`MAX_PENDING_PER_AUTHOR`] of one
//! author, and only if its author is a member of a state the log keeps and
//! its version is at most [`MAX_PENDING_CHANGES`] above the head's), so
//! no one outside the group, and no single member, can fill the queue.
//!
//! ```
//! use umbra_protocol::group::{GroupChange, GroupId, GroupLog, GroupPolicy, LogOutcome, NewMember};
//! use umbra_protocol::identity::IdentityKeyPair;
//! use umbra_protocol::wire::{AccountId, Username};
//!
//! let mut rng = rand::rngs::OsRng;
//! let alice = IdentityKeyPair::generate(&mut rng);
//! let (a, b) = (AccountId::random(&mut rng), AccountId::random(&mut rng));
//! let member = |account, name: &str| NewMember { account, username: Username::parse(name).unwrap() };
//! let create = GroupChange::create(&alice, a, GroupId::random(&mut rng), "team",
//!     GroupPolicy { members_may_rename: false }, vec![member(a, "alice")])?;
//! let mut log = GroupLog::create(create, &alice.public())?;
//! let add = GroupChange::add(&alice, a, log.state(), vec![member(b, "bob")])?;
//! match log.apply(add, &alice.public())? {
//!     LogOutcome::Applied(moved) => assert!(moved.undone.is_empty()),
//!     other => panic!("{other:?}"),
//! }
//! assert!(log.state().is_member(&b));
//! // The stored form (for the client's sealed store) loads back the same.
//! let stored = log.to_pickle();
//! assert_eq!(GroupLog::from_pickle(&stored).unwrap().state(), log.state());
//! # Ok::<(), umbra_protocol::group::GroupChangeError>(())
//! ```
//!
//! Must never: let arrival order decide between two valid changes, apply
//! a change that its parent state refuses, keep more than the bounds say,
//! or accept a change whose signature it has not checked (only the
//! caller's own sealed store is trusted without signatures).

use std::collections::{HashMap, VecDeque};

use super::GroupAction;
use crate::consts::{
    MAX_PENDING_CHANGES, MAX_PENDING_PER_AUTHOR, MAX_REMEMBERED_LOSERS, MAX_SIDE_CHANGES,
    MAX_SIDE_PER_AUTHOR, REORG_WINDOW,
};
use crate::identity::IdentityPublic;

use super::change::{ChangeHash, GroupChange};
use super::change_error::GroupChangeError;
use super::fork::{self, Candidate, Rank};
use super::state::GroupState;
use super::welcome::GroupWelcome;
use crate::wire::AccountId;

/// What [`GroupLog::apply`] did with a valid change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOutcome {
    /// The head moved. If `undone` is not empty this was a reorganisation:
    /// a concurrent change won the fork choice and the undone changes lost.
    Applied(HeadMove),
    /// Valid, but it lost the fork choice to a sibling of lower rank (a
    /// more senior author, or the same author's lower hash) or was
    /// overruled by a sibling whose branch removes its author, or builds
    /// on such a change: the head did not move (it is kept as a side
    /// branch while in the window, and can still become canonical).
    /// Its author's client re-issues it on the head if it still applies.
    Superseded {
        /// The change's hash.
        hash: ChangeHash,
    },
    /// Its parent has not arrived yet; it is applied when the parent is.
    Pending {
        /// The change's hash.
        hash: ChangeHash,
    },
    /// Already known; nothing changed.
    Duplicate {
        /// The change's hash.
        hash: ChangeHash,
    },
}

/// How the canonical chain changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadMove {
    /// The new head.
    pub head: ChangeHash,
    /// The new state version.
    pub version: u64,
    /// Changes no longer on the chain, newest first.
    pub undone: Vec<GroupChange>,
    /// Changes newly on the chain, oldest first (pending ones that became
    /// applicable included).
    pub applied: Vec<GroupChange>,
}

#[derive(Debug, Clone)]
struct Node {
    change: GroupChange,
    state: GroupState,
    /// Its rank among its siblings, fixed by its parent's state
    /// (`fork::rank`).
    rank: Rank,
}

/// One group's canonical changes and the fork choice over them. Not `Serialize`:
/// its stored form is [`GroupLog::to_pickle`].
#[derive(Debug, Clone)]
pub struct GroupLog {
    base: GroupState,
    /// Every valid change kept above the base: the canonical chain and
    /// the side branches (kept while their branch point is in the window:
    /// a side branch that removes an admin overrules that admin's
    /// siblings below it, §8.10, and can become canonical again).
    nodes: HashMap<ChangeHash, Node>,
    /// The canonical chain above the base, oldest first.
    chain: Vec<ChangeHash>,
    /// Signature-checked changes whose parent is unknown.
    pending: Vec<GroupChange>,
    /// Hashes of recent changes dropped with a side branch that fell below
    /// the window, so that a change building on one is reported
    /// `Superseded`, not left pending.
    losers: VecDeque<ChangeHash>,
}

impl GroupLog {
    /// Starts a log from the group's Create, after checking its signature
    /// with the creator's identity.
    pub fn create(
        change: GroupChange,
        author_identity: &IdentityPublic,
    ) -> Result<Self, GroupChangeError> {
        change.verify(author_identity)?;
        Ok(Self::from_base(GroupState::from_create(&change)?))
    }

    /// Starts a log from a welcome (§8.11), after its checks: `adder` is
    /// the pairwise peer it came from, `us` our own account.
    pub fn from_welcome(
        welcome: &GroupWelcome,
        adder: AccountId,
        adder_identity: &IdentityPublic,
        us: AccountId,
    ) -> Result<Self, GroupChangeError> {
        welcome.verify(adder, adder_identity, us)?;
        Ok(Self::from_base(welcome.state().clone()))
    }

    /// A log whose base is `state`, trusted as is.
    pub fn from_base(state: GroupState) -> Self {
        Self {
            base: state,
            nodes: HashMap::new(),
            chain: Vec::new(),
            pending: Vec::new(),
            losers: VecDeque::new(),
        }
    }

    /// The state at the head.
    pub fn state(&self) -> &GroupState {
        match self.chain.last() {
            Some(hash) => &self.nodes[hash].state,
            None => &self.base,
        }
    }

    /// The head hash.
    pub fn head(&self) -> &ChangeHash {
        self.state().head()
    }

    /// The oldest state kept (changes building on anything older are
    /// `Stale`).
    pub fn base(&self) -> &GroupState {
        &self.base
    }

    /// How many changes wait for their parent.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The state a kept change produced, if it is kept (for re-issuing a
    /// superseded change, or showing history).
    pub fn state_after(&self, hash: &ChangeHash) -> Option<&GroupState> {
        if hash == self.base.head() {
            return Some(&self.base);
        }
        self.nodes.get(hash).map(|n| &n.state)
    }

    /// Whether `hash` is the head of a state this log keeps, or a change
    /// it dropped as a loser: a peer at such a head is not ahead of us
    /// (§8.15).
    pub fn knows_head(&self, hash: &ChangeHash) -> bool {
        self.state_after(hash).is_some() || self.losers.contains(hash)
    }

    /// The canonical changes above the state `have`, oldest first, at most
    /// `max` of them (what a sync answer sends, §8.15); `None` if `have` is
    /// neither the base's head nor on the canonical chain.
    pub fn chain_above(&self, have: &ChangeHash, max: usize) -> Option<Vec<&GroupChange>> {
        let start = if have == self.base.head() {
            0
        } else {
            self.chain.iter().position(|h| h == have)? + 1
        };
        Some(
            self.chain[start..]
                .iter()
                .take(max)
                .filter_map(|h| self.nodes.get(h).map(|n| &n.change))
                .collect(),
        )
    }

    /// Takes in one change from `change.author()`, whose identity the
    /// caller knows as `author_identity`. Refusals leave the log as it was.
    pub fn apply(
        &mut self,
        change: GroupChange,
        author_identity: &IdentityPublic,
    ) -> Result<LogOutcome, GroupChangeError> {
        if change.group() != self.base.group() {
            return Err(GroupChangeError::WrongGroup {
                expected: *self.base.group(),
                got: *change.group(),
            });
        }
        let hash = *change.hash();
        if self.is_known(&hash) {
            return Ok(LogOutcome::Duplicate { hash });
        }
        change.verify(author_identity)?;
        self.admit_pending(&change)?;
        // A change can only push its author (or everyone) over the side
        // allowance if enough is on the chain or the side already to move
        // there; only then is the log copied to undo the insertion.
        // (Held pending changes may join with it: counted too.)
        let author = change.author();
        let (side, side_by_author) = self.side_counts(&author);
        let by_author = |a: &AccountId| -> usize {
            let kept = self.nodes.values().filter(|n| &n.change.author() == a);
            kept.count() + self.pending.iter().filter(|p| &p.author() == a).count()
        };
        let near = self.nodes.len() + self.pending.len() >= MAX_SIDE_CHANGES
            || by_author(&author) >= MAX_SIDE_PER_AUTHOR;
        let before = near.then(|| self.clone());
        let outcome = self.insert_checked(change)?;
        if let Some(before) = before {
            let (side_after, by_author_after) = self.side_counts(&author);
            let on_chain = self.chain.contains(&hash);
            // Refused (kept by the client, tried again later, 12.14): the
            // author would keep more side changes than its share, or the
            // change lands off the chain with the side allowance used up.
            let over_author =
                by_author_after > MAX_SIDE_PER_AUTHOR && by_author_after > side_by_author;
            let over_all = !on_chain && side_after > MAX_SIDE_CHANGES && side_after > side;
            if over_author || over_all {
                *self = before;
                return Err(GroupChangeError::PendingFull {
                    max: if over_author {
                        MAX_SIDE_PER_AUTHOR
                    } else {
                        MAX_SIDE_CHANGES
                    },
                });
            }
        }
        Ok(outcome)
    }

    /// Kept changes off the canonical chain: in all, and by `author`.
    fn side_counts(&self, author: &AccountId) -> (usize, usize) {
        let side = self.nodes.iter().filter(|(h, _)| !self.chain.contains(h));
        side.fold((0, 0), |(all, by), (_, n)| {
            (all + 1, by + usize::from(&n.change.author() == author))
        })
    }

    /// For a change whose parent is unknown (it would be held pending):
    /// refuses it unless its author is a member of a kept state and its
    /// version is near the head, and keeps one author below its share of
    /// the queue. Checked on arrival only: a reloaded log holds what was
    /// admitted.
    fn admit_pending(&self, change: &GroupChange) -> Result<(), GroupChangeError> {
        let parent = change.parent();
        if self.losers.contains(parent)
            || self.state_after(parent).is_some()
            || change.version() <= self.base.version()
        {
            // Not held pending: superseded, applied, or stale.
            return Ok(());
        }
        let author = change.author();
        // A member of a kept state, or added by a change that waits too
        // (itself admitted by this rule): the Add may arrive after the
        // new member's first change.
        let member_somewhere = self.base.is_member(&author)
            || self.nodes.values().any(|n| n.state.is_member(&author))
            || self.pending.iter().any(|p| match p.action() {
                GroupAction::Add { members } => members.iter().any(|m| m.account == author),
                _ => false,
            });
        if !member_somewhere {
            return Err(GroupChangeError::PendingUnknownAuthor(author));
        }
        let head = self.state().version();
        if change.version() > head.saturating_add(MAX_PENDING_CHANGES as u64) {
            return Err(GroupChangeError::TooFarAhead {
                version: change.version(),
                head,
            });
        }
        let by_author = self.pending.iter().filter(|p| p.author() == author).count();
        if by_author >= MAX_PENDING_PER_AUTHOR {
            return Err(GroupChangeError::PendingFull {
                max: MAX_PENDING_PER_AUTHOR,
            });
        }
        Ok(())
    }

    fn is_known(&self, hash: &ChangeHash) -> bool {
        hash == self.base.head()
            || self.nodes.contains_key(hash)
            || self.pending.iter().any(|p| p.hash() == hash)
            || self.losers.contains(hash)
    }

    /// Everything after the signature check (also used to reload a pickle).
    fn insert_checked(&mut self, change: GroupChange) -> Result<LogOutcome, GroupChangeError> {
        let hash = *change.hash();
        if self.losers.contains(change.parent()) {
            // Built on a change that lost: it can never be on the chain.
            self.lose(hash);
            return Ok(LogOutcome::Superseded { hash });
        }
        let Some(parent) = self.state_after(change.parent()) else {
            if change.version() <= self.base.version() {
                return Err(GroupChangeError::Stale {
                    version: change.version(),
                    oldest: self.base.version(),
                });
            }
            if self.pending.len() >= MAX_PENDING_CHANGES {
                return Err(GroupChangeError::PendingFull {
                    max: MAX_PENDING_CHANGES,
                });
            }
            self.pending.push(change);
            return Ok(LogOutcome::Pending { hash });
        };
        let state = parent.apply(&change)?;
        let rank = fork::rank(parent, &change);
        self.nodes.insert(
            hash,
            Node {
                change,
                state,
                rank,
            },
        );
        self.adopt_pending(hash);
        Ok(self.choose(&hash))
    }

    /// Applies waiting changes whose parent is now known, transitively.
    /// One that its parent refuses is dropped: it can never apply.
    fn adopt_pending(&mut self, added: ChangeHash) {
        let mut parents = vec![added];
        while let Some(parent) = parents.pop() {
            let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.parent() == &parent);
            self.pending = rest;
            for change in ready {
                let parent_state = &self.nodes[&parent].state;
                let Ok(state) = parent_state.apply(&change) else {
                    continue;
                };
                let rank = fork::rank(parent_state, &change);
                let hash = *change.hash();
                self.nodes.insert(
                    hash,
                    Node {
                        change,
                        state,
                        rank,
                    },
                );
                parents.push(hash);
            }
        }
    }

    /// Recomputes the canonical chain (fork.rs's rule over every kept
    /// change), prunes below the window, and says how the head moved (for
    /// the change `added`).
    fn choose(&mut self, added: &ChangeHash) -> LogOutcome {
        let candidates: HashMap<ChangeHash, Candidate<'_>> = self
            .nodes
            .iter()
            .map(|(hash, node)| {
                let candidate = Candidate {
                    change: &node.change,
                    rank: node.rank,
                };
                (*hash, candidate)
            })
            .collect();
        let chain = fork::canonical_chain(self.base.head(), &candidates);
        let common = self
            .chain
            .iter()
            .zip(&chain)
            .take_while(|(a, b)| a == b)
            .count();
        let undone: Vec<GroupChange> = self.chain[common..]
            .iter()
            .rev()
            .map(|h| self.nodes[h].change.clone())
            .collect();
        let applied: Vec<GroupChange> = chain[common..]
            .iter()
            .map(|h| self.nodes[h].change.clone())
            .collect();
        self.chain = chain;
        // What is off the chain stays: a side branch can become canonical
        // again (when a removal further up it arrives, or the branch that
        // beat it is overruled), so dropping it would let arrival order
        // decide. The window bounds how long it stays (prune).
        self.prune();
        if applied.is_empty() && undone.is_empty() {
            return LogOutcome::Superseded { hash: *added };
        }
        let state = self.state();
        LogOutcome::Applied(HeadMove {
            head: *state.head(),
            version: state.version(),
            undone,
            applied,
        })
    }

    /// Remembers `hash` as a loser and drops, transitively, the pending
    /// changes built on it (they lost with it).
    fn lose(&mut self, hash: ChangeHash) {
        let mut lost = vec![hash];
        while let Some(hash) = lost.pop() {
            self.losers.push_back(hash);
            if self.losers.len() > MAX_REMEMBERED_LOSERS {
                self.losers.pop_front();
            }
            let (children, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.parent() == &hash);
            self.pending = rest;
            lost.extend(children.iter().map(|c| *c.hash()));
        }
    }

    /// Moves the base up while more than `REORG_WINDOW` changes are above
    /// it, dropping every branch that no longer descends from it.
    fn prune(&mut self) {
        while self.chain.len() > REORG_WINDOW {
            let first = self.chain.remove(0);
            let Some(node) = self.nodes.remove(&first) else {
                return;
            };
            self.base = node.state;
            let mut keep: HashMap<ChangeHash, Node> = HashMap::new();
            let mut frontier = vec![first];
            while let Some(parent) = frontier.pop() {
                let kids: Vec<ChangeHash> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.change.parent() == &parent)
                    .map(|(h, _)| *h)
                    .collect();
                for kid in kids {
                    if let Some(n) = self.nodes.remove(&kid) {
                        keep.insert(kid, n);
                        frontier.push(kid);
                    }
                }
            }
            let dropped: Vec<ChangeHash> = self.nodes.keys().copied().collect();
            self.nodes = keep;
            for hash in dropped {
                self.lose(hash);
            }
            let oldest = self.base.version();
            self.pending.retain(|p| p.version() > oldest);
        }
    }
}

// The stored form (to_pickle, from_pickle): `log_pickle.rs`.
#[path = "log_pickle.rs"]
mod stored;
