//! Signed, hash-chained group changes (docs/PROTOCOL.md §8.8).
//!
//! A [`GroupChange`] names its group, its version, the hash of the state it
//! builds on (its parent), its author's account and one [`GroupAction`],
//! and is signed by the author's identity key. Its [`ChangeHash`] (SHA-256
//! over a label and every byte, signature included) becomes the head of the
//! state it produces, so each change is bound to the exact state before it.
//!
//! This module only encodes, decodes, signs and checks structure (lists
//! sorted, within limits, names valid). Whether the author may make the
//! change is [`GroupState::apply`]'s job; which of two concurrent changes
//! wins is [`GroupLog`](super::GroupLog)'s.
//!
//! ```
//! use umbra_protocol::group::{GroupChange, GroupId, GroupPolicy, NewMember};
//! use umbra_protocol::identity::IdentityKeyPair;
//! use umbra_protocol::wire::{AccountId, Username};
//!
//! let mut rng = rand::rngs::OsRng;
//! let alice = IdentityKeyPair::generate(&mut rng);
//! let alice_account = AccountId::random(&mut rng);
//! let bob_account = AccountId::random(&mut rng);
//! let members = vec![
//!     NewMember { account: alice_account, username: Username::parse("alice").unwrap() },
//!     NewMember { account: bob_account, username: Username::parse("bob").unwrap() },
//! ];
//! let create = GroupChange::create(
//!     &alice, alice_account, GroupId::random(&mut rng), "friends",
//!     GroupPolicy { members_may_rename: true }, members,
//! )?;
//! // What travels (inside `Content::GroupControl`) is the signed bytes.
//! let received = GroupChange::from_bytes(create.as_bytes())?;
//! received.verify(&alice.public())?;
//! assert_eq!(received.hash(), create.hash());
//! # Ok::<(), umbra_protocol::group::GroupChangeError>(())
//! ```
//!
//! Must never: accept bytes that do not re-encode to themselves, accept a
//! signature that fails strict verification, or hash anything but the
//! exact bytes received.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::consts::{MAX_GROUP_MEMBERS, MAX_MEMBERS_PER_CHANGE};
use crate::identity::{IdentityKeyPair, IdentityPublic, Signature};
use crate::labels;
use crate::wire::{self, AccountId, Username};

use super::change_error::GroupChangeError;
use super::state::{validate_group_name, GroupPolicy, GroupState};
use super::GroupId;

/// The change format version this code writes and reads.
pub const GROUP_CHANGE_VERSION: u8 = 0x01;
/// Length of an Ed25519 signature, the change's last bytes.
pub const CHANGE_SIGNATURE_LEN: usize = 64;
/// Largest encoded change: a Remove of every other member of a full group
/// (1 023 × 17 bytes) plus header and signature is under 17.6 KiB; the
/// limit leaves room and still fits any content comfortably.
pub const MAX_GROUP_CHANGE_BYTES: usize = 24 * 1024;

/// SHA-256 of a change (§8.8): the head of the state it produces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChangeHash(#[serde(with = "crate::keys::serde_bytes_array")] pub [u8; 32]);

impl ChangeHash {
    /// The parent of a Create: 32 zero bytes.
    pub const ZERO: ChangeHash = ChangeHash([0; 32]);

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for ChangeHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChangeHash({})", self.to_hex())
    }
}

impl std::fmt::Display for ChangeHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A member as a Create or Add lists it: the account (authoritative) and
/// the username to show (a hint from the author).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMember {
    /// The member's account.
    pub account: AccountId,
    /// Its username when the change was made.
    pub username: Username,
}

/// What a change does. Each variant's doc starts with its postcard tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupAction {
    /// Tag 0: a new group; its author is the sole admin.
    Create {
        /// The group's name.
        name: String,
        /// Fixed for the group's life.
        policy: GroupPolicy,
        /// Every first member, the author included, ascending by account.
        members: Vec<NewMember>,
    },
    /// Tag 1: members added (admins only).
    Add {
        /// The new members, ascending by account.
        members: Vec<NewMember>,
    },
    /// Tag 2: members removed (admins only; not the author).
    Remove {
        /// Who is removed, ascending.
        accounts: Vec<AccountId>,
    },
    /// Tag 3: the author leaves.
    Leave,
    /// Tag 4: a new name (admins, or anyone if the policy allows).
    Rename {
        /// The new name.
        name: String,
    },
    /// Tag 5: a member becomes an admin (admins only).
    Promote {
        /// The member promoted.
        account: AccountId,
    },
}

impl GroupAction {
    /// The action's name, for errors and logs.
    pub const fn name(&self) -> &'static str {
        match self {
            GroupAction::Create { .. } => "create",
            GroupAction::Add { .. } => "add",
            GroupAction::Remove { .. } => "remove",
            GroupAction::Leave => "leave",
            GroupAction::Rename { .. } => "rename",
            GroupAction::Promote { .. } => "promote",
        }
    }
}

/// The signed part after the version byte, fields in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ChangeBody {
    group: GroupId,
    version: u64,
    parent: ChangeHash,
    author: AccountId,
    action: GroupAction,
}

/// One signed change, with the exact bytes it was made or received as.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupChange {
    body: ChangeBody,
    bytes: Vec<u8>,
    hash: ChangeHash,
}

impl std::fmt::Debug for GroupChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupChange")
            .field("group", &self.body.group)
            .field("version", &self.body.version)
            .field("parent", &self.body.parent)
            .field("author", &self.body.author)
            .field("action", &self.body.action.name())
            .field("hash", &self.hash)
            .finish()
    }
}

/// `SHA-256(GROUP_CHANGE_HASH || bytes)`.
fn hash_of(bytes: &[u8]) -> ChangeHash {
    let mut hasher = Sha256::new();
    hasher.update(labels::GROUP_CHANGE_HASH);
    hasher.update(bytes);
    ChangeHash(hasher.finalize().into())
}

impl GroupChange {
    /// Builds and signs the Create of a new group. `members` must include
    /// the author (with its username); the order does not matter, they
    /// are sorted here.
    pub fn create(
        identity: &IdentityKeyPair,
        author: AccountId,
        group: GroupId,
        name: &str,
        policy: GroupPolicy,
        mut members: Vec<NewMember>,
    ) -> Result<Self, GroupChangeError> {
        members.sort_by_key(|m| m.account);
        let change = Self::sign(
            identity,
            ChangeBody {
                group,
                version: 0,
                parent: ChangeHash::ZERO,
                author,
                action: GroupAction::Create {
                    name: name.to_owned(),
                    policy,
                    members,
                },
            },
        )?;
        // The creator's own client must never send what a member refuses.
        GroupState::from_create(&change)?;
        Ok(change)
    }

    /// Builds and signs `action` by `author` on top of `state`, and checks
    /// that `state` accepts it, so a client never sends a change its own
    /// members would refuse. Lists are sorted here.
    pub fn build(
        identity: &IdentityKeyPair,
        author: AccountId,
        state: &GroupState,
        mut action: GroupAction,
    ) -> Result<Self, GroupChangeError> {
        match &mut action {
            GroupAction::Create { .. } => {
                return Err(GroupChangeError::BadVersionForAction {
                    action: "create",
                    version: state.version() + 1,
                })
            }
            GroupAction::Add { members } => members.sort_by_key(|m| m.account),
            GroupAction::Remove { accounts } => accounts.sort(),
            _ => {}
        }
        let change = Self::sign(
            identity,
            ChangeBody {
                group: *state.group(),
                version: state.version() + 1,
                parent: *state.head(),
                author,
                action,
            },
        )?;
        state.apply(&change)?;
        Ok(change)
    }

    /// [`build`](Self::build) of an Add.
    pub fn add(
        identity: &IdentityKeyPair,
        author: AccountId,
        state: &GroupState,
        members: Vec<NewMember>,
    ) -> Result<Self, GroupChangeError> {
        Self::build(identity, author, state, GroupAction::Add { members })
    }

    /// [`build`](Self::build) of a Remove.
    pub fn remove(
        identity: &IdentityKeyPair,
        author: AccountId,
        state: &GroupState,
        accounts: Vec<AccountId>,
    ) -> Result<Self, GroupChangeError> {
        Self::build(identity, author, state, GroupAction::Remove { accounts })
    }

    /// [`build`](Self::build) of a Leave.
    pub fn leave(
        identity: &IdentityKeyPair,
        author: AccountId,
        state: &GroupState,
    ) -> Result<Self, GroupChangeError> {
        Self::build(identity, author, state, GroupAction::Leave)
    }

    /// [`build`](Self::build) of a Rename.
    pub fn rename(
        identity: &IdentityKeyPair,
        author: AccountId,
        state: &GroupState,
        name: &str,
    ) -> Result<Self, GroupChangeError> {
        let name = name.to_owned();
        Self::build(identity, author, state, GroupAction::Rename { name })
    }

    /// [`build`](Self::build) of a Promote.
    pub fn promote(
        identity: &IdentityKeyPair,
        author: AccountId,
        state: &GroupState,
        account: AccountId,
    ) -> Result<Self, GroupChangeError> {
        Self::build(identity, author, state, GroupAction::Promote { account })
    }

    /// Signs any structurally valid change without asking a state whether
    /// it may be made: for vectors and tests of what receivers refuse
    /// (a non-admin's Add, a change over the member limit). Never in a
    /// client.
    #[cfg(feature = "low-level-api")]
    pub fn sign_unchecked(
        identity: &IdentityKeyPair,
        author: AccountId,
        group: GroupId,
        version: u64,
        parent: ChangeHash,
        action: GroupAction,
    ) -> Result<Self, GroupChangeError> {
        let body = ChangeBody {
            group,
            version,
            parent,
            author,
            action,
        };
        Self::sign(identity, body)
    }

    fn sign(identity: &IdentityKeyPair, body: ChangeBody) -> Result<Self, GroupChangeError> {
        validate_body(&body)?;
        let mut bytes = wire::encode_versioned(
            GROUP_CHANGE_VERSION,
            &body,
            MAX_GROUP_CHANGE_BYTES - CHANGE_SIGNATURE_LEN,
        )?;
        let signature = identity.sign(labels::GROUP_CHANGE_SIGNATURE, &bytes);
        bytes.extend_from_slice(&signature.to_bytes());
        let hash = hash_of(&bytes);
        Ok(Self { body, bytes, hash })
    }

    /// Parses a change and checks its structure (not its signature, not
    /// its authorization). Every byte string gives a change or a named
    /// error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GroupChangeError> {
        if bytes.len() > MAX_GROUP_CHANGE_BYTES {
            return Err(wire::WireError::TooLarge {
                len: bytes.len(),
                max: MAX_GROUP_CHANGE_BYTES,
            }
            .into());
        }
        // Version byte, a body of at least a few bytes, the signature.
        let min = 2 + CHANGE_SIGNATURE_LEN;
        if bytes.len() < min {
            return Err(GroupChangeError::Truncated {
                len: bytes.len(),
                min,
            });
        }
        let signed = &bytes[..bytes.len() - CHANGE_SIGNATURE_LEN];
        let body: ChangeBody = wire::decode_versioned(
            signed,
            MAX_GROUP_CHANGE_BYTES,
            GROUP_CHANGE_VERSION..=GROUP_CHANGE_VERSION,
        )?;
        validate_body(&body)?;
        Ok(Self {
            body,
            bytes: bytes.to_vec(),
            hash: hash_of(bytes),
        })
    }

    /// Checks the author's signature with the identity the receiver knows
    /// for `author()` (§8.8: the pairwise peer, or its pinned identity).
    pub fn verify(&self, author_identity: &IdentityPublic) -> Result<(), GroupChangeError> {
        let (signed, signature) = self.bytes.split_at(self.bytes.len() - CHANGE_SIGNATURE_LEN);
        let signature =
            Signature::from_slice(signature).map_err(|_| GroupChangeError::BadSignature)?;
        author_identity
            .verify_signature(labels::GROUP_CHANGE_SIGNATURE, signed, &signature)
            .map_err(|_| GroupChangeError::BadSignature)
    }

    /// The exact encoded bytes (what `Content::GroupControl` carries).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes the signature covers (everything before it).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - CHANGE_SIGNATURE_LEN]
    }

    /// The change's hash, the head of the state it produces.
    pub const fn hash(&self) -> &ChangeHash {
        &self.hash
    }

    /// The group it changes.
    pub const fn group(&self) -> &GroupId {
        &self.body.group
    }

    /// The version of the state it produces (parent's plus one; 0 for a
    /// Create).
    pub const fn version(&self) -> u64 {
        self.body.version
    }

    /// The head of the state it builds on.
    pub const fn parent(&self) -> &ChangeHash {
        &self.body.parent
    }

    /// Whose identity signed it.
    pub const fn author(&self) -> AccountId {
        self.body.author
    }

    /// What it does.
    pub const fn action(&self) -> &GroupAction {
        &self.body.action
    }
}

/// Structure only: what can be checked without the parent state.
fn validate_body(body: &ChangeBody) -> Result<(), GroupChangeError> {
    let is_create = matches!(body.action, GroupAction::Create { .. });
    if is_create != (body.version == 0) || (is_create && body.parent != ChangeHash::ZERO) {
        return Err(GroupChangeError::BadVersionForAction {
            action: body.action.name(),
            version: body.version,
        });
    }
    match &body.action {
        GroupAction::Create { name, members, .. } => {
            validate_group_name(name)?;
            check_new_members("members", members)?;
            if !members.iter().any(|m| m.account == body.author) {
                return Err(GroupChangeError::CreatorNotListed);
            }
            Ok(())
        }
        GroupAction::Add { members } => check_new_members("members", members),
        GroupAction::Remove { accounts } => {
            check_list("accounts", accounts.iter().copied(), MAX_GROUP_MEMBERS)?;
            if accounts.contains(&body.author) {
                return Err(GroupChangeError::CannotRemoveSelf);
            }
            Ok(())
        }
        GroupAction::Rename { name } => validate_group_name(name),
        GroupAction::Leave | GroupAction::Promote { .. } => Ok(()),
    }
}

fn check_new_members(field: &'static str, members: &[NewMember]) -> Result<(), GroupChangeError> {
    check_list(
        field,
        members.iter().map(|m| m.account),
        MAX_MEMBERS_PER_CHANGE,
    )
}

/// Non-empty, at most `max`, strictly ascending (so no duplicates and one
/// encoding per set).
fn check_list(
    field: &'static str,
    accounts: impl ExactSizeIterator<Item = AccountId>,
    max: usize,
) -> Result<(), GroupChangeError> {
    let count = accounts.len();
    if count == 0 {
        return Err(GroupChangeError::EmptyList { field });
    }
    if count > max {
        return Err(GroupChangeError::TooManyListed { field, count, max });
    }
    let mut previous: Option<AccountId> = None;
    for account in accounts {
        if previous.is_some_and(|p| p >= account) {
            return Err(GroupChangeError::NotAscending { field });
        }
        previous = Some(account);
    }
    Ok(())
}
