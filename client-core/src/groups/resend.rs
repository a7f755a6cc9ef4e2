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
//! - a member that was given a key of ours made at or after that Add (the
//!   key we held before this send: the head it was made at and whom it
//!   went to) had the welcome in the same fan-out, ahead of that key, or
//!   held the state itself; it is not sent again. "At or after" is on the
//!   canonical chain: the head the key was made at must be the Add's or a
//!   later state of the chain. After a reorganisation that head can be a
//!   state of a losing branch whose version is at or above the Add's
//!   (made again on the winning head, or made there by another device of
//!   ours) although that branch never held the Add: the member then went
//!   without this Add's welcome, and gets it. A key stored before heads
//!   were kept proves nothing and skips no one;
//! - the welcomes that do go are built once per Add (one snapshot encoding
//!   for all the members one Add brought in), not once per member.
//!
//! Must never: skip a member whose only welcome could have been lost
//! for want of a session (it was given no key made on the canonical chain
//! at or after the Add), or send a welcome to someone our current state
//! does not list.

use std::collections::HashMap;

use umbra_protocol::content::Content;
use umbra_protocol::group::{ChangeHash, GroupChange, GroupLog};
use umbra_protocol::wire::AccountId;

use super::keys::OwnSenderKey;
use super::manager::Group;

/// Who had the key we held before this send, and where it was made.
pub(crate) struct Reached {
    /// The head our log had when the key was made (none: no key, or one
    /// stored before heads were kept).
    made_at: Option<ChangeHash>,
    given: Vec<[u8; 16]>,
}

impl Reached {
    /// From the stored key, before it is rotated (none: nobody).
    pub(crate) fn before(stored: Option<&OwnSenderKey>) -> Self {
        match stored {
            Some(key) => Self {
                made_at: key.made_at,
                given: key.accounts(),
            },
            None => Self {
                made_at: None,
                given: Vec::new(),
            },
        }
    }

    /// Whether `member` was given a key made at `add` or at a later state
    /// of `log`'s canonical chain (`add` is on it).
    fn since(&self, log: &GroupLog, member: &AccountId, add: &GroupChange) -> bool {
        let Some(head) = &self.made_at else {
            return false;
        };
        self.given.binary_search(member.as_bytes()).is_ok() && made_on_chain_after(log, head, add)
    }
}

/// Whether `head` is `add`'s hash or a later state of `log`'s canonical
/// chain, on which `add` lies. A head off the chain (a side branch, a
/// dropped loser) or below the window says nothing of `add`, whatever its
/// version: it may be a losing branch's, which never held `add`.
fn made_on_chain_after(log: &GroupLog, head: &ChangeHash, add: &GroupChange) -> bool {
    if head == add.hash() {
        return true;
    }
    // `chain_above` answers only for the base's head or a canonical state.
    let canonical = log.chain_above(head, 0).is_some();
    let version = log.state_after(head).map(|s| s.version());
    canonical && version.is_some_and(|v| v >= add.version())
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
        if !self.group.state().is_member(member) || self.reached.since(&self.group.log, member, add)
        {
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
