//! The welcome an adder sends each new member (docs/PROTOCOL.md §8.11):
//! the full state after the Add, and the Add change itself.
//!
//! The new member never saw the group's history, so it cannot recompute
//! the snapshot; it checks what it can (the Add is signed by the pairwise
//! peer that sent the welcome, that peer is an admin in the snapshot, the
//! snapshot's head, version and group are the Add's, every account the Add
//! adds is a member and no admin in the snapshot, and the Add lists the
//! new member) and trusts the adder for the rest, as the spec says.
//!
//! ```
//! use umbra_protocol::group::{GroupChange, GroupId, GroupLog, GroupPolicy, GroupWelcome, NewMember};
//! use umbra_protocol::identity::IdentityKeyPair;
//! use umbra_protocol::wire::{AccountId, Username};
//!
//! let mut rng = rand::rngs::OsRng;
//! let alice = IdentityKeyPair::generate(&mut rng);
//! let (a, d) = (AccountId::random(&mut rng), AccountId::random(&mut rng));
//! let member = |account, name: &str| NewMember { account, username: Username::parse(name).unwrap() };
//! let create = GroupChange::create(&alice, a, GroupId::random(&mut rng), "team",
//!     GroupPolicy { members_may_rename: false }, vec![member(a, "alice")])?;
//! let mut log = GroupLog::create(create, &alice.public())?;
//! let add = GroupChange::add(&alice, a, log.state(), vec![member(d, "dave")])?;
//! log.apply(add.clone(), &alice.public())?;
//! // The adder sends `Content::GroupWelcome { state, change }` to dave:
//! let welcome = GroupWelcome::new(log.state().clone(), add)?;
//! let (state, change) = (welcome.state_bytes(), welcome.change_bytes().to_vec());
//! // Dave, receiving it over his pairwise session with alice:
//! let received = GroupWelcome::from_parts(&state, &change)?;
//! let daves = GroupLog::from_welcome(&received, a, &alice.public(), d)?;
//! assert_eq!(daves.state(), log.state());
//! # Ok::<(), umbra_protocol::group::GroupChangeError>(())
//! ```
//!
//! Must never: accept a welcome whose Add is not signed by the peer that
//! sent it, or one that does not add the receiver.

use crate::identity::IdentityPublic;
use crate::wire::AccountId;

use super::change::{GroupAction, GroupChange};
use super::change_error::GroupChangeError;
use super::state::GroupState;

/// A snapshot after an Add, with that Add. Travels as
/// `Content::GroupWelcome { state, change }` (the two encodings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupWelcome {
    state: GroupState,
    add: GroupChange,
}

impl GroupWelcome {
    /// Pairs a state with the Add that produced it, checking that they
    /// match (structure only; [`verify`](Self::verify) checks the rest).
    pub fn new(state: GroupState, add: GroupChange) -> Result<Self, GroupChangeError> {
        let welcome = Self { state, add };
        welcome.check_consistent()?;
        Ok(welcome)
    }

    /// Parses the two encodings a `Content::GroupWelcome` carries.
    pub fn from_parts(state: &[u8], change: &[u8]) -> Result<Self, GroupChangeError> {
        Self::new(
            GroupState::from_bytes(state)?,
            GroupChange::from_bytes(change)?,
        )
    }

    /// The snapshot encoding, for `Content::GroupWelcome::state`.
    pub fn state_bytes(&self) -> Vec<u8> {
        self.state.to_bytes()
    }

    /// The Add change's bytes, for `Content::GroupWelcome::change`.
    pub fn change_bytes(&self) -> &[u8] {
        self.add.as_bytes()
    }

    /// The snapshot.
    pub const fn state(&self) -> &GroupState {
        &self.state
    }

    /// The Add.
    pub const fn add(&self) -> &GroupChange {
        &self.add
    }

    fn check_consistent(&self) -> Result<(), GroupChangeError> {
        let GroupAction::Add { members } = self.add.action() else {
            return Err(GroupChangeError::BadWelcome("the change is not an Add"));
        };
        if self.add.group() != self.state.group() {
            return Err(GroupChangeError::WrongGroup {
                expected: *self.state.group(),
                got: *self.add.group(),
            });
        }
        if self.add.hash() != self.state.head() || self.add.version() != self.state.version() {
            return Err(GroupChangeError::BadWelcome(
                "the snapshot is not the state the Add produced",
            ));
        }
        if !self.state.is_admin(&self.add.author()) {
            return Err(GroupChangeError::BadWelcome(
                "the Add's author is not an admin in the snapshot",
            ));
        }
        if members.iter().any(|m| !self.state.is_member(&m.account)) {
            return Err(GroupChangeError::BadWelcome(
                "the snapshot lacks a member the Add adds",
            ));
        }
        // An Add makes no admins (8.9): a snapshot in which an account it
        // adds is one did not come from applying it.
        if members.iter().any(|m| self.state.is_admin(&m.account)) {
            return Err(GroupChangeError::BadWelcome(
                "the snapshot makes an account the Add adds an admin",
            ));
        }
        Ok(())
    }

    /// The receiver's checks: `adder` is the account of the pairwise peer
    /// that sent the welcome, `adder_identity` that session's identity,
    /// `us` the receiver's account.
    pub fn verify(
        &self,
        adder: AccountId,
        adder_identity: &IdentityPublic,
        us: AccountId,
    ) -> Result<(), GroupChangeError> {
        self.check_consistent()?;
        if self.add.author() != adder {
            return Err(GroupChangeError::BadWelcome(
                "the Add was not made by the peer that sent the welcome",
            ));
        }
        let GroupAction::Add { members } = self.add.action() else {
            return Err(GroupChangeError::BadWelcome("the change is not an Add"));
        };
        if !members.iter().any(|m| m.account == us) {
            return Err(GroupChangeError::BadWelcome("the Add does not add us"));
        }
        self.add.verify(adder_identity)
    }
}
