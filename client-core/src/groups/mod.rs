//! Group chats: sender-key groups whose membership is a signed hash chain
//! of changes (docs/PROTOCOL.md §8), as the client runs them.
//!
//! One concept per file:
//! - `api`: the group methods of [`Client`](crate::Client);
//! - [`manager`]: the [`GroupManager`](manager::GroupManager), the store-only
//!   manager that owns every group record (state chain, our membership),
//!   our sender keys and the members' (the shape of "Managers as types",
//!   docs/ARCHITECTURE.md): it reads and adds writes to a transaction, and
//!   never asks the relay, takes the state lock or emits an event;
//! - [`keys`]: our sender key per group and epoch (rotated before the first
//!   send after a removal), who has it, and the members' keys we keep;
//! - [`fanout`]: the sealed envelopes of one operation to many members,
//!   stored before they leave, packed into as few `Send` frames as fit;
//! - [`members`]: a pairwise session with each member (first contact as in
//!   1:1: the directory, trust on first use, key-change warnings);
//! - [`control`]: issuing changes (create, add, remove, leave, rename,
//!   promote);
//! - `reissue`: making a change of ours that lost the fork choice again,
//!   kept until it is made or refused for good;
//! - [`events`]: the membership events (names of the accounts a change is
//!   about, the name before a rename, our membership restored);
//! - [`history`]: group messages in the store, and what no interface has
//!   reported yet;
//! - [`send`]: group messages, typing and what a send reports per member;
//! - [`sync`]: catching up: asking a member for the changes we missed
//!   (`GroupSync`) and answering such a request, rate limited;
//! - [`key_request`]: asking a member for its sender key again
//!   (`GroupKeyRequest`) when its message does not open, and answering
//!   with a fresh distribution from the iteration asked, rate limited;
//! - [`sent_keys`]: our last sender keys' chains, kept only as far back as
//!   the relay can still hold a message under them;
//! - [`inbound`]: what arrives for a group (changes, welcomes, sender keys,
//!   group messages, typing).
//!
//! Must never: send a group message under a sender key a removed member
//! holds, accept a change or a message from someone who is not a member of
//! the state it applies to, or let a new member read what was sent before
//! they joined.

pub(crate) mod about;
mod api;
pub(crate) mod control;
pub(crate) mod events;
pub(crate) mod fanout;
pub(crate) mod held;
pub(crate) mod history;
pub(crate) mod history_index;
pub(crate) mod inbound;
pub(crate) mod key_request;
pub(crate) mod keys;
pub(crate) mod manager;
pub(crate) mod members;
mod receipts;
mod reissue;
mod resend;
pub(crate) mod send;
pub(crate) mod sent_keys;
pub(crate) mod sync;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_devices;
#[cfg(test)]
mod tests_events;
#[cfg(test)]
mod tests_held;
#[cfg(test)]
mod tests_held_reopen;
#[cfg(test)]
mod tests_history_index;
#[cfg(test)]
mod tests_key_request;
#[cfg(test)]
mod tests_overrule;
#[cfg(test)]
mod tests_overrule_restart;
#[cfg(test)]
mod tests_reissue;
#[cfg(test)]
mod tests_resend;
#[cfg(test)]
mod tests_review;
#[cfg(test)]
mod tests_sync;
#[cfg(test)]
mod tests_sync_review;

use umbra_protocol::wire::{AccountId, ErrorCode};

pub use events::GroupMemberName;
pub use history::{GroupHistoryEntry, UnreportedGroupMessage};
pub use umbra_protocol::group::{GroupId, GroupPolicy};

use crate::MessageId;

/// One group as [`Client::groups`](crate::Client::groups) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's id (how every call names it).
    pub id: GroupId,
    /// Its name (untrusted: chosen by a member; sanitise before display).
    pub name: String,
    /// The state version (0 at creation, +1 per change).
    pub version: u64,
    /// Whether we are still a member (a group we left or were removed
    /// from stays listed, read-only).
    pub active: bool,
    /// How many members it has.
    pub member_count: usize,
    /// Whether any member may rename it (fixed at its creation), not only
    /// its admins.
    pub members_may_rename: bool,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberInfo {
    /// The member's account (authoritative).
    pub account_id: AccountId,
    /// The username it had when it was added or last seen (a display
    /// hint: names move, accounts do not).
    pub username: String,
    /// Whether it may add, remove and promote members.
    pub admin: bool,
    /// Whether this member is us.
    pub is_me: bool,
}

/// What became of a group send or change for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOutcome {
    /// The relay durably queued it for the member.
    Reached,
    /// Stored in our fan-out queue: the relay could not take it now (no
    /// connection, a retryable refusal); it is resent until it can.
    Queued,
    /// The relay refused it for good.
    Refused(ErrorCode),
    /// Not sent: no pairwise session could be made with the member (its
    /// key changed, it is not on the relay, it has no keys...).
    NotSent(String),
}

impl MemberOutcome {
    /// Whether the member was reached or will be.
    pub fn is_ok(&self) -> bool {
        matches!(self, MemberOutcome::Reached | MemberOutcome::Queued)
    }
}

/// One member's line in a [`GroupSendReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReport {
    /// The member.
    pub account_id: AccountId,
    /// Its username (display hint).
    pub username: String,
    /// What happened.
    pub outcome: MemberOutcome,
}

/// What a group send or change did, member by member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSendReport {
    /// The group.
    pub group: GroupId,
    /// Our message id (a group message's; a random id for a change).
    pub id: MessageId,
    /// Every other member, in the group's order.
    pub members: Vec<MemberReport>,
    /// Bytes of the `Send` frames this call put on the wire (0 when
    /// everything was queued).
    pub frame_bytes: usize,
}

impl GroupSendReport {
    /// Members the relay accepted it for.
    pub fn reached(&self) -> impl Iterator<Item = &MemberReport> {
        self.members
            .iter()
            .filter(|m| m.outcome == MemberOutcome::Reached)
    }

    /// Members it was not sent to, or the relay refused it for.
    pub fn failed(&self) -> impl Iterator<Item = &MemberReport> {
        self.members.iter().filter(|m| !m.outcome.is_ok())
    }
}

/// What a membership change did, in [`Event::GroupMembershipChanged`](crate::Event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupChangeKind {
    /// The group was created (with these members).
    Created,
    /// These accounts joined.
    Added(Vec<AccountId>),
    /// These accounts were removed.
    Removed(Vec<AccountId>),
    /// The change's author left.
    Left,
    /// The group got this name.
    Renamed(String),
    /// This account became an admin.
    Promoted(AccountId),
}

/// Why a group operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupFailure {
    /// No group with this id is known here.
    #[error("no such group {0}")]
    UnknownGroup(GroupId),
    /// No group has this name.
    #[error("no group is called {0:?}")]
    NoSuchName(String),
    /// Several groups have this name: name it by id.
    #[error("{count} groups are called {name:?}; name one by its id")]
    AmbiguousName {
        /// The name asked for.
        name: String,
        /// How many groups have it.
        count: usize,
    },
    /// We left the group or were removed from it.
    #[error("you are no longer a member of this group")]
    NotAMember,
    /// Only an admin may do this.
    #[error("only a group admin may do this")]
    NotAdmin,
    /// The change would change nothing (already a member, not a member,
    /// already an admin, the same name).
    #[error("nothing to change: {0}")]
    NothingToChange(&'static str),
    /// More members than a group may have.
    #[error("a group has at most {max} members; this would make {count}")]
    TooManyMembers {
        /// The count it would reach.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The group protocol refused the change or message.
    #[error("group protocol: {0}")]
    Refused(String),
}
