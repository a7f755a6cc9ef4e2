//! Why a group change, a group state snapshot or a welcome was refused.
//!
//! One enum for the whole membership layer (decoding, authorization,
//! fork choice, welcomes), so a client can show the user exactly what
//! failed; docs/PROTOCOL.md §8.8–§8.12 names each variant at the step that
//! produces it, and `docs/test-vectors/group_state.json` pins them.
//!
//! Must never: carry a secret (there is none in this layer) or a message
//! that repeats attacker-chosen text (names are reported by length only).

use crate::wire::{AccountId, WireError};

use super::change::ChangeHash;
use super::GroupId;

/// Why a group change, snapshot or welcome was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupChangeError {
    /// The framing of the change or snapshot failed (size, version,
    /// postcard, trailing bytes, non-canonical).
    #[error(transparent)]
    Frame(#[from] WireError),
    /// Too short to hold a version byte, a body and a 64-byte signature.
    #[error("group change is {len} bytes; at least {min} are needed")]
    Truncated {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A group name that is empty or longer than `MAX_GROUP_NAME_BYTES`.
    #[error("group name is {len} bytes; 1 to {max} are allowed")]
    InvalidName {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A group name with a control character.
    #[error("group name has a control character at byte {position}")]
    NameControlCharacter {
        /// Byte offset of the character.
        position: usize,
    },
    /// A list that must not be empty is.
    #[error("the {field} list is empty")]
    EmptyList {
        /// Which list.
        field: &'static str,
    },
    /// A list longer than one change may carry.
    #[error("the {field} list has {count} entries; at most {max} are allowed")]
    TooManyListed {
        /// Which list.
        field: &'static str,
        /// Entries listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A list of accounts not in strictly ascending order (a duplicate is
    /// the same failure): there is only one encoding of a set.
    #[error("the {field} list is not in strictly ascending account order")]
    NotAscending {
        /// Which list.
        field: &'static str,
    },
    /// A Create whose version is not 0 or whose parent is not 32 zero bytes,
    /// or another change with version 0.
    #[error("version {version} does not fit a {action} change")]
    BadVersionForAction {
        /// The change's action.
        action: &'static str,
        /// Its version.
        version: u64,
    },
    /// A Create whose member list does not include its author.
    #[error("the creator is not in the new group's member list")]
    CreatorNotListed,
    /// The change is for another group.
    #[error("change is for group {got}, not {expected}")]
    WrongGroup {
        /// The group of the state or log.
        expected: GroupId,
        /// The change's group.
        got: GroupId,
    },
    /// The change's parent hash is not this state's head.
    #[error("change builds on {got:?}, not on the state's head {expected:?}")]
    WrongParent {
        /// The state's head.
        expected: ChangeHash,
        /// The change's parent.
        got: ChangeHash,
    },
    /// The change's version is not its parent's plus one.
    #[error("change has version {got}; its parent's successor is {expected}")]
    WrongVersion {
        /// Parent version plus one.
        expected: u64,
        /// The change's version.
        got: u64,
    },
    /// The author is not a member of the parent state.
    #[error("author {0} is not a member of the group")]
    AuthorNotMember(AccountId),
    /// The author may not make this change (not an admin, or renaming
    /// is for admins only in this group).
    #[error("author {author} may not {action} in this group")]
    NotAuthorized {
        /// The author.
        author: AccountId,
        /// The action refused.
        action: &'static str,
    },
    /// An Add lists someone who is already a member.
    #[error("{0} is already a member")]
    AlreadyMember(AccountId),
    /// A Remove or Promote names someone who is not a member.
    #[error("{0} is not a member")]
    NotMember(AccountId),
    /// A Remove lists its own author (an author leaves with Leave).
    #[error("an author cannot remove itself; it leaves with Leave")]
    CannotRemoveSelf,
    /// A Promote names someone who is already an admin.
    #[error("{0} is already an admin")]
    AlreadyAdmin(AccountId),
    /// The change would make the group larger than `MAX_GROUP_MEMBERS`.
    #[error("the group would have {count} members; at most {max} are allowed")]
    TooManyMembers {
        /// Members after the change.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The author's identity signature does not verify.
    #[error("the change's signature does not verify under its author's identity")]
    BadSignature,
    /// The parent is older than the log keeps (`REORG_WINDOW`): an old
    /// change replayed, or one that arrived far too late to take part in
    /// fork choice.
    #[error("change version {version} builds on a state older than the oldest kept ({oldest})")]
    Stale {
        /// The change's version.
        version: u64,
        /// The oldest state version the log still holds.
        oldest: u64,
    },
    /// A change whose parent is unknown claims a version further above
    /// the head than any honest reordering produces (more than
    /// `MAX_PENDING_CHANGES` ahead): it is not held.
    #[error("change version {version} is too far above the head's {head} to wait for its parent")]
    TooFarAhead {
        /// The change's version.
        version: u64,
        /// The head's version.
        head: u64,
    },
    /// A change whose parent is unknown by an author who is not a member of
    /// any state the log keeps, nor added by a change waiting in it: it is
    /// not held (anyone could fill the queue otherwise). A client keeps the
    /// delivery for a later attempt: the Add of its author may come next.
    #[error("author {0} of a change waiting for its parent is not known as a member here")]
    PendingUnknownAuthor(AccountId),
    /// Too many changes wait for their parent already, or are kept off the
    /// canonical chain (in all, or of this change's author, §8.10).
    #[error("{max} changes already wait for their parent or off the canonical chain")]
    PendingFull {
        /// The limit.
        max: usize,
    },
    /// A state snapshot that breaks a state invariant.
    #[error("group state is invalid: {0}")]
    InvalidState(&'static str),
    /// A welcome whose snapshot and Add change do not match, or that is not
    /// for us, or not from the Add's author.
    #[error("group welcome is inconsistent: {0}")]
    BadWelcome(&'static str),
}

impl GroupChangeError {
    /// The variant's name, for logs and vectors (never its contents).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Frame(_) => "Frame",
            Self::Truncated { .. } => "Truncated",
            Self::InvalidName { .. } => "InvalidName",
            Self::NameControlCharacter { .. } => "NameControlCharacter",
            Self::EmptyList { .. } => "EmptyList",
            Self::TooManyListed { .. } => "TooManyListed",
            Self::NotAscending { .. } => "NotAscending",
            Self::BadVersionForAction { .. } => "BadVersionForAction",
            Self::CreatorNotListed => "CreatorNotListed",
            Self::WrongGroup { .. } => "WrongGroup",
            Self::WrongParent { .. } => "WrongParent",
            Self::WrongVersion { .. } => "WrongVersion",
            Self::AuthorNotMember(_) => "AuthorNotMember",
            Self::NotAuthorized { .. } => "NotAuthorized",
            Self::AlreadyMember(_) => "AlreadyMember",
            Self::NotMember(_) => "NotMember",
            Self::CannotRemoveSelf => "CannotRemoveSelf",
            Self::AlreadyAdmin(_) => "AlreadyAdmin",
            Self::TooManyMembers { .. } => "TooManyMembers",
            Self::BadSignature => "BadSignature",
            Self::Stale { .. } => "Stale",
            Self::TooFarAhead { .. } => "TooFarAhead",
            Self::PendingUnknownAuthor(_) => "PendingUnknownAuthor",
            Self::PendingFull { .. } => "PendingFull",
            Self::InvalidState(_) => "InvalidState",
            Self::BadWelcome(_) => "BadWelcome",
        }
    }
}
