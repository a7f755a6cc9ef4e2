//! The timeline: the only code that reads and writes the pairwise history
//! records (entries, the message-id index, conversation summaries). A
//! manager type in the shape of the name book (docs/ARCHITECTURE.md,
//! "Managers as types"): it holds an `Arc<Vault>`, reads, and adds writes
//! to a [`Txn`] the caller commits. The engine's steps around it (the
//! lock, display names, read receipts) are in `reading.rs`, `inbound.rs`
//! and `outbound.rs`.
//!
//! Every entry appended under a conversation's disappearing timer gets its
//! expiry here, in the same transaction (`crate::disappearing`).
//!
//! Must never: lower a message's delivery status, let a receipt from one
//! contact change another contact's message (the index names the contact),
//! write an entry without its index, ask the relay, take the state lock or
//! emit an event.

use std::sync::Arc;

use crate::conversation::{DeliveryStatus, Direction, HistoryEntry, UnreportedMessage};
use crate::history::{ConversationRecord, Counters, MessageLocation};
use crate::records::{self, Prefix};
use crate::store::{Txn, Vault};
use crate::trust::ContactRecord;
use crate::{Error, MessageId};

/// The pairwise history of every conversation (see the module docs).
pub(crate) struct Timeline {
    vault: Arc<Vault>,
    /// The earliest disappearing-message expiry stamped, for the sweep
    /// (`crate::disappearing`).
    pub(crate) due: Arc<crate::disappearing::Due>,
}

/// An incoming entry no interface has reported yet, with the conversation
/// it belongs to.
pub(crate) struct Unreported {
    /// The contact's account.
    pub(crate) account: [u8; 16],
    /// The name the conversation was last stored under (shown when the
    /// contact record is gone).
    pub(crate) username: String,
    pub(crate) entry: HistoryEntry,
}

impl Timeline {
    pub(crate) fn new(vault: Arc<Vault>) -> Self {
        Self {
            vault,
            due: Arc::default(),
        }
    }

    /// Whether a message `id` from or to `account` is already in history.
    pub(crate) async fn message_known(
        &self,
        direction: Direction,
        account: &[u8; 16],
        id: &MessageId,
    ) -> Result<bool, Error> {
        let index = records::history::index(&self.vault, direction, account, id);
        Ok(self.vault.load(&index).await?.is_some())
    }

    /// Appends an entry to the contact's history, its index and the
    /// conversation summary, taking the next sequence from `counters` (the
    /// caller stores them in the same transaction).
    pub(crate) async fn append(
        &self,
        txn: &mut Txn,
        counters: &mut Counters,
        contact: &ContactRecord,
        entry: HistoryEntry,
        unread: bool,
    ) -> Result<(), Error> {
        let seq = counters.next_history_seq;
        counters.next_history_seq += 1;
        let slot = records::history::entry(&self.vault, &contact.account, seq);
        records::history::save_entry(&self.vault, txn, slot, &entry)?;
        self.vault.save(
            txn,
            records::history::index(&self.vault, entry.direction, &contact.account, &entry.id),
            &MessageLocation {
                account: contact.account,
                seq,
            },
        )?;
        // Under a disappearing timer the entry gets its expiry (§12.18).
        let account = &contact.account;
        crate::disappearing::stamp(&self.vault, &self.due, txn, account, seq, &entry).await?;
        let conv_slot = records::history::conversation(&self.vault, &contact.account);
        let mut conv: ConversationRecord =
            self.vault
                .load(&conv_slot)
                .await?
                .unwrap_or(ConversationRecord {
                    account: contact.account,
                    username: contact.username.clone(),
                    last: None,
                    unread: 0,
                    last_activity_ms: 0,
                });
        conv.username = contact.username.clone();
        conv.last_activity_ms = conv.last_activity_ms.max(entry.received_at_ms);
        conv.last = Some(entry);
        if unread {
            conv.unread = conv.unread.saturating_add(1);
        }
        self.vault.save(txn, conv_slot, &conv)?;
        Ok(())
    }

    /// The entry of message `id` from or to `account`, with its sequence.
    pub(crate) async fn find(
        &self,
        direction: Direction,
        account: &[u8; 16],
        id: &MessageId,
    ) -> Result<Option<(u64, HistoryEntry)>, Error> {
        let index = records::history::index(&self.vault, direction, account, id);
        let Some(location) = self.vault.load(&index).await? else {
            return Ok(None);
        };
        let slot = records::history::entry(&self.vault, &location.account, location.seq);
        let entry = records::history::load_entry(&self.vault, &slot).await?;
        // The index names the entry's own id; anything else (a reference's
        // id, which points at its target) is not the message asked for.
        Ok(entry
            .filter(|e| e.id == *id && e.direction == direction)
            .map(|e| (location.seq, e)))
    }

    /// Adds to `txn` the entry `seq` of `account` rewritten as `entry`
    /// (same id and direction: a reaction, edit or delete, §10.6), and the
    /// summary's copy if it is the last message, so a deleted text is
    /// erased there too.
    pub(crate) async fn replace(
        &self,
        txn: &mut Txn,
        account: &[u8; 16],
        seq: u64,
        entry: &HistoryEntry,
    ) -> Result<(), Error> {
        let slot = records::history::entry(&self.vault, account, seq);
        records::history::save_entry(&self.vault, txn, slot, entry)?;
        let conv_slot = records::history::conversation(&self.vault, account);
        if let Some(mut conv) = self.vault.load(&conv_slot).await? {
            if let Some(last) = conv
                .last
                .as_mut()
                .filter(|l| l.id == entry.id && l.direction == entry.direction)
            {
                *last = entry.clone();
                self.vault.save(txn, conv_slot, &conv)?;
            }
        }
        Ok(())
    }

    /// Adds to `txn` the index slot of a reaction, edit or delete `id`
    /// sent `direction` with `account`, pointing at its target's entry
    /// `seq`: a copy of it that comes again is then known
    /// ([`Timeline::message_known`]) and dropped (§10.6).
    pub(crate) fn note_reference(
        &self,
        txn: &mut Txn,
        direction: Direction,
        account: &[u8; 16],
        id: &MessageId,
        seq: u64,
    ) -> Result<(), Error> {
        self.vault.save(
            txn,
            records::history::index(&self.vault, direction, account, id),
            &MessageLocation {
                account: *account,
                seq,
            },
        )?;
        Ok(())
    }

    /// Raises the status of one of our messages to `account` (never lowers
    /// it; `Failed` only from `Pending`). Whether it changed.
    pub(crate) async fn update_status(
        &self,
        txn: &mut Txn,
        account: &[u8; 16],
        id: &MessageId,
        status: DeliveryStatus,
    ) -> Result<bool, Error> {
        let index = records::history::index(&self.vault, Direction::Outgoing, account, id);
        let Some(location) = self.vault.load(&index).await? else {
            return Ok(false);
        };
        let slot = records::history::entry(&self.vault, &location.account, location.seq);
        let Some(mut entry) = records::history::load_entry(&self.vault, &slot).await? else {
            return Ok(false);
        };
        let advance = match (entry.status, status) {
            (_, DeliveryStatus::Failed) => entry.status == DeliveryStatus::Pending,
            (DeliveryStatus::Failed, _) => false,
            (old, new) => new > old,
        };
        if !advance {
            return Ok(false);
        }
        entry.status = status;
        records::history::save_entry(&self.vault, txn, slot, &entry)?;
        let conv_slot = records::history::conversation(&self.vault, account);
        if let Some(mut conv) = self.vault.load(&conv_slot).await? {
            if conv
                .last
                .as_ref()
                .is_some_and(|l| l.id == *id && l.direction == Direction::Outgoing)
            {
                conv.last = Some(entry);
                self.vault.save(txn, conv_slot, &conv)?;
            }
        }
        Ok(true)
    }

    /// Every conversation summary, in slot order.
    pub(crate) async fn summaries(&self) -> Result<Vec<ConversationRecord>, Error> {
        Ok(self
            .vault
            .load_all(&Prefix::<records::history::Conversations>::all())
            .await?
            .into_iter()
            .map(|(_, conv)| conv)
            .collect())
    }

    /// The newest `limit` entries with `account`, oldest first.
    pub(crate) async fn latest(
        &self,
        account: &[u8; 16],
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, Error> {
        let prefix = records::history::entries(&self.vault, account);
        let all = records::history::load_entries(&self.vault, &prefix).await?;
        let skip = all.len().saturating_sub(limit);
        Ok(all.into_iter().skip(skip).map(|(_, e)| e).collect())
    }

    /// Hands `account`'s entries to `visit` newest first, with their slot,
    /// opening one only when `visit` asks (the search, search.rs); `visit`
    /// returns whether to go on.
    pub(crate) async fn scan_newest_first(
        &self,
        account: &[u8; 16],
        mut visit: impl FnMut(
            &[u8],
            &mut dyn FnMut() -> Result<HistoryEntry, crate::store::StoreError>,
        ) -> Result<bool, crate::store::StoreError>,
    ) -> Result<(), Error> {
        let prefix = records::history::entries(&self.vault, account);
        self.vault
            .scan_all_newest_first(&prefix, |slot, open| {
                visit(slot, &mut || open().map(HistoryEntry::from))
            })
            .await?;
        Ok(())
    }

    /// Incoming entries not yet reported, in arrival order (the history
    /// sequence is global, so it orders across conversations).
    pub(crate) async fn unreported(&self) -> Result<Vec<Unreported>, Error> {
        let mut found: Vec<(u64, Unreported)> = Vec::new();
        for conv in self.summaries().await? {
            let prefix = records::history::entries(&self.vault, &conv.account);
            for (slot, entry) in records::history::load_entries(&self.vault, &prefix).await? {
                if entry.direction != Direction::Incoming || entry.reported {
                    continue;
                }
                let seq = records::history::entry_seq(&slot).unwrap_or(u64::MAX);
                let account = conv.account;
                let username = conv.username.clone();
                found.push((
                    seq,
                    Unreported {
                        account,
                        username,
                        entry,
                    },
                ));
            }
        }
        found.sort_by_key(|(seq, _)| *seq);
        Ok(found.into_iter().map(|(_, m)| m).collect())
    }

    /// Adds to `txn` the `reported` flag of each listed message (entry and,
    /// where it is the last one, the summary).
    pub(crate) async fn mark_reported(
        &self,
        txn: &mut Txn,
        messages: &[UnreportedMessage],
    ) -> Result<(), Error> {
        for message in messages {
            let account = *message.account_id.as_bytes();
            let index =
                records::history::index(&self.vault, Direction::Incoming, &account, &message.id);
            let Some(location) = self.vault.load(&index).await? else {
                continue;
            };
            let slot = records::history::entry(&self.vault, &location.account, location.seq);
            let Some(mut entry) = records::history::load_entry(&self.vault, &slot).await? else {
                continue;
            };
            if entry.reported {
                continue;
            }
            entry.reported = true;
            records::history::save_entry(&self.vault, txn, slot, &entry)?;
            let conv_slot = records::history::conversation(&self.vault, &account);
            if let Some(mut conv) = self.vault.load(&conv_slot).await? {
                if let Some(last) = conv
                    .last
                    .as_mut()
                    .filter(|l| l.id == message.id && l.direction == Direction::Incoming)
                {
                    last.reported = true;
                    self.vault.save(txn, conv_slot, &conv)?;
                }
            }
        }
        Ok(())
    }

    /// Adds to `txn` marking every incoming message from `account` read
    /// and reported, and its summary's unread count zero. Returns the ids
    /// that were not read before (the read receipt to send).
    pub(crate) async fn mark_read(
        &self,
        txn: &mut Txn,
        account: &[u8; 16],
    ) -> Result<Vec<MessageId>, Error> {
        let prefix = records::history::entries(&self.vault, account);
        let mut ids = Vec::new();
        for (slot, mut entry) in records::history::load_entries(&self.vault, &prefix).await? {
            if entry.direction == Direction::Incoming
                && (entry.status != DeliveryStatus::Read || !entry.reported)
            {
                if entry.status != DeliveryStatus::Read {
                    ids.push(entry.id);
                }
                entry.status = DeliveryStatus::Read;
                // Read on screen is reported: `receive` need not show it again.
                entry.reported = true;
                records::history::save_entry(&self.vault, txn, slot, &entry)?;
            }
        }
        let conv_slot = records::history::conversation(&self.vault, account);
        if let Some(mut conv) = self.vault.load(&conv_slot).await? {
            conv.unread = 0;
            if let Some(last) = conv.last.as_mut() {
                if last.direction == Direction::Incoming {
                    last.status = DeliveryStatus::Read;
                    last.reported = true;
                }
            }
            self.vault.save(txn, conv_slot, &conv)?;
        }
        Ok(ids)
    }
}

mod erase;
mod expire;
#[cfg(test)]
mod tests;
