//! Which welcomes a group send carries again (docs/PROTOCOL.md §8.15,
//! "Welcomes sent again"), and building each at most once per send.
//!
//! A member that lacks our sender key may never have had its welcome (it
//! was not sent: no session then), so the send puts the welcome of the
//! latest Add we made that lists it ahead of the key. After a rotation
//! every member lacks the new key, and a welcome holds a state snapshot
//! (up to 62 KiB), so resending to all of them on every rotation cost one
//! snapshot per member each time. Two cuts, neither sending a member less
//! than it may lack:
//!
//! - a member that was given a key of ours made at or after that Add's
//!   version (the key we held before this send: its epoch and whom it
//!   went to) had the welcome in the same fan-out, ahead of that key, or
//!   held the state itself; it is not sent again;
//! - the welcomes that do go are built once per Add (one snapshot encoding
//!   for all the members one Add brought in), not once per member.
//!
//! Must never: skip a member whose only welcome could have been lost
//! for want of a session (it was given no key after the Add), or send a
//! welcome to someone our current state does not list.

use std::collections::HashMap;

use umbra_protocol::content::Content;
use umbra_protocol::group::ChangeHash;
use umbra_protocol::wire::AccountId;

use super::keys::OwnSenderKey;
use super::manager::Group;

/// Who had the key we held before this send, and from which version.
pub(crate) struct Reached {
    epoch: u64,
    given: Vec<[u8; 16]>,
}

impl Reached {
    /// From the stored key, before it is rotated (none: nobody).
    pub(crate) fn before(stored: Option<&OwnSenderKey>) -> Self {
        match stored {
            Some(key) => Self {
                epoch: key.epoch,
                given: key.accounts(),
            },
            None => Self {
                epoch: 0,
                given: Vec::new(),
            },
        }
    }

    /// Whether `member` was given a key made at or after `version`.
    fn since(&self, member: &AccountId, version: u64) -> bool {
        self.epoch >= version && self.given.binary_search(member.as_bytes()).is_ok()
    }
}

/// The welcomes of one send, by the Add they are of.
pub(crate) struct Welcomes<'a> {
    group: &'a Group,
    me: AccountId,
    reached: Reached,
    built: HashMap<ChangeHash, Content>,
    /// How many snapshots were encoded (for the count in BENCHMARKS.md).
    pub(crate) encoded: usize,
}

impl<'a> Welcomes<'a> {
    pub(crate) fn new(group: &'a Group, me: AccountId, reached: Reached) -> Self {
        Self {
            group,
            me,
            reached,
            built: HashMap::new(),
            encoded: 0,
        }
    }

    /// The welcome to send `member` ahead of our key, if it may lack it.
    pub(crate) fn for_member(&mut self, member: &AccountId) -> Option<Content> {
        let add = super::sync::latest_add_by(&self.group.log, member, &self.me)?;
        if !self.group.state().is_member(member) || self.reached.since(member, add.version()) {
            return None;
        }
        if let Some(content) = self.built.get(add.hash()) {
            return Some(content.clone());
        }
        let content = super::sync::welcome_again(self.group, member, &self.me)?;
        self.encoded += 1;
        self.built.insert(*add.hash(), content.clone());
        Some(content)
    }
}
