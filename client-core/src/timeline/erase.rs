//! Erasing a 1:1 conversation's history (docs/PROTOCOL.md §12.19): the
//! entries, every message-id index slot that points at one of them (a
//! reaction's, edit's or delete's as well as the message's own) and the
//! summary, rebuilt from what is kept or removed with the last entry.
//! Part of the timeline, the only code that writes these records; the
//! file records of the erased entries are the caller's (`files`).
//!
//! Must never: erase an entry of another conversation (the index records
//! the account and is checked), or leave an index slot or a summary that
//! names an erased entry.

use std::collections::HashSet;

use super::Timeline;
use crate::conversation::{DeliveryStatus, Direction, HistoryEntry};
use crate::history::ConversationRecord;
use crate::records::{self, Prefix};
use crate::store::Txn;
use crate::Error;

impl Timeline {
    /// Adds to `txn` the removal of every entry with `account` that `keep`
    /// refuses, with its index slots, and the summary rebuilt from the
    /// entries kept (removed when none is). Returns the erased entries,
    /// oldest first.
    pub(crate) async fn erase(
        &self,
        txn: &mut Txn,
        account: &[u8; 16],
        keep: impl Fn(&HistoryEntry) -> bool,
    ) -> Result<Vec<HistoryEntry>, Error> {
        let prefix = records::history::entries(&self.vault, account);
        let mut erased = Vec::new();
        let mut erased_seqs = HashSet::new();
        let mut kept: Vec<HistoryEntry> = Vec::new();
        for (slot, entry) in records::history::load_entries(&self.vault, &prefix).await? {
            if keep(&entry) {
                kept.push(entry);
                continue;
            }
            if let Some(seq) = records::history::entry_seq(&slot) {
                erased_seqs.insert(seq);
            }
            self.vault.remove(txn, slot);
            erased.push(entry);
        }
        if erased.is_empty() {
            return Ok(erased);
        }
        // Index slots are named by an HMAC of (direction, account, id), so
        // they cannot be listed by conversation: every one is read and
        // those naming an erased entry of this account go. References
        // (reactions, edits, deletes) point at their target's entry.
        let all = Prefix::<records::history::Index>::all();
        for (slot, location) in self.vault.load_all(&all).await? {
            if location.account == *account && erased_seqs.contains(&location.seq) {
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
        Ok(erased)
    }
}
