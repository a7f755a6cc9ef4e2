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
use crate::conversation::{DeliveryStatus, Direction, HistoryEntry};
use crate::history::ConversationRecord;
use crate::records::{self, Prefix};
use crate::store::Txn;
use crate::{Error, MessageId};

impl Timeline {
    /// Adds to `txn` the removal of `account`'s entries named by
    /// `(id, outgoing)` in `expired`, with their index slots, and the
    /// summary rebuilt from what is left (removed when nothing is).
    /// Returns the removed entries, oldest first.
    pub(crate) async fn remove_expired(
        &self,
        txn: &mut Txn,
        account: &[u8; 16],
        expired: &HashSet<(MessageId, bool)>,
    ) -> Result<Vec<HistoryEntry>, Error> {
        let prefix = records::history::entries(&self.vault, account);
        let mut removed = Vec::new();
        let mut removed_seqs = HashSet::new();
        let mut kept: Vec<HistoryEntry> = Vec::new();
        for (slot, entry) in records::history::load_entries(&self.vault, &prefix).await? {
            let outgoing = entry.direction == Direction::Outgoing;
            if !expired.contains(&(entry.id, outgoing)) {
                kept.push(entry);
                continue;
            }
            if let Some(seq) = records::history::entry_seq(&slot) {
                removed_seqs.insert(seq);
            }
            self.vault.remove(txn, slot);
            removed.push(entry);
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        // Index slots are HMACs of (direction, account, id): they cannot be
        // listed by conversation, so every one is read.
        let all = Prefix::<records::history::Index>::all();
        for (slot, location) in self.vault.load_all(&all).await? {
            if location.account == *account && removed_seqs.contains(&location.seq) {
                self.vault.remove(txn, slot);
            }
        }
        let conv_slot = records::history::conversation(&self.vault, account);
        match kept.last() {
            None => self.vault.remove(txn, conv_slot),
            Some(last) => {
                if let Some(conv) = self.vault.load(&conv_slot).await? {
                    let unread = kept
                        .iter()
                        .filter(|e| {
                            e.direction == Direction::Incoming && e.status != DeliveryStatus::Read
                        })
                        .count();
                    let summary = ConversationRecord {
                        last: Some(last.clone()),
                        unread: u32::try_from(unread).unwrap_or(u32::MAX),
                        last_activity_ms: kept.iter().map(|e| e.received_at_ms).max().unwrap_or(0),
                        ..conv
                    };
                    self.vault.save(txn, conv_slot, &summary)?;
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
impl Timeline {
    /// How many message-id index slots name `account`'s conversation
    /// (tests check none is left naming a deleted entry).
    pub(crate) async fn index_slots_of(&self, account: &[u8; 16]) -> usize {
        let all = Prefix::<records::history::Index>::all();
        let slots = self.vault.load_all(&all).await.expect("index");
        slots.iter().filter(|(_, l)| l.account == *account).count()
    }
}
