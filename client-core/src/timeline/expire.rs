//! Deleting expired disappearing messages from a 1:1 conversation
//! (docs/PROTOCOL.md §12.18): the named entries, every message-id index
//! slot that points at one of them (its own, and a reaction's, edit's or
//! delete's about it) and the summary, rebuilt from the entries kept.
//! Part of the timeline, the only code that writes these records; the
//! file records of the deleted entries are the caller's.
//!
//! Must never: delete an entry the caller did not name (id and direction
//! must both match the stored entry), or leave an index slot or a summary
//! that names a deleted entry.

use std::collections::HashSet;

use super::Timeline;
use crate::conversation::{Direction, HistoryEntry};
use crate::store::Txn;
use crate::{Error, MessageId};

impl Timeline {
    /// Adds to `txn` the removal of `account`'s entries named by
    /// `(id, outgoing)` in `expired`, with their index slots, and the
    /// summary rebuilt from what is left (removed when nothing is).
    /// Returns the removed entries, oldest first. The removal itself is
    /// the conversation erase's (`erase.rs`): only the choice differs.
    pub(crate) async fn remove_expired(
        &self,
        txn: &mut Txn,
        account: &[u8; 16],
        expired: &HashSet<(MessageId, bool)>,
    ) -> Result<Vec<HistoryEntry>, Error> {
        self.erase(txn, account, |entry| {
            let outgoing = entry.direction == Direction::Outgoing;
            !expired.contains(&(entry.id, outgoing))
        })
        .await
    }
}

#[cfg(test)]
impl Timeline {
    /// How many message-id index slots name `account`'s conversation
    /// (tests check none is left naming a deleted entry).
    pub(crate) async fn index_slots_of(&self, account: &[u8; 16]) -> usize {
        use crate::records::{self, Prefix};
        let all = Prefix::<records::history::Index>::all();
        let slots = self.vault.load_all(&all).await.expect("index");
        slots.iter().filter(|(_, l)| l.account == *account).count()
    }
}
