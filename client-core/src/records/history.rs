//! History records: entries by (account, sequence), the message-id index
//! that finds them, and each conversation's summary.
//!
//! Must never: let an incoming and an outgoing message with the same id
//! share an index slot (the direction is part of its name).

use super::{kind, Prefix, Slot};
use crate::conversation::{Direction, HistoryEntry};
use crate::history::{ConversationRecord, MessageLocation, StoredHistoryEntry};
use crate::store::{StoreError, Txn, Vault};
use crate::MessageId;

kind!(
    /// One history entry, in its versioned stored form.
    History = History, StoredHistoryEntry
);
kind!(
    /// Message id → history entry.
    Index = MessageIndex, MessageLocation
);
kind!(
    /// A conversation summary: last message, unread count.
    Conversations = Conversation, ConversationRecord
);

/// The slot of `account`'s history entry `seq`.
pub(crate) fn entry(vault: &Vault, account: &[u8; 16], seq: u64) -> Slot<History> {
    Slot::ordered(vault, account, seq)
}

/// Every history entry of `account`, in sequence order.
pub(crate) fn entries(vault: &Vault, account: &[u8; 16]) -> Prefix<History> {
    Prefix::named(vault, account)
}

/// The sequence number at the end of a history slot.
pub(crate) fn entry_seq(slot: &Slot<History>) -> Option<u64> {
    let bytes = slot.as_bytes();
    bytes
        .len()
        .checked_sub(8)
        .and_then(|start| bytes.get(start..))
        .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
        .map(u64::from_be_bytes)
}

/// The index slot of message `id` from or to `account`.
pub(crate) fn index(
    vault: &Vault,
    direction: Direction,
    account: &[u8; 16],
    id: &MessageId,
) -> Slot<Index> {
    let mut name = Vec::with_capacity(1 + 16 + 16);
    name.push(match direction {
        Direction::Incoming => b'i',
        Direction::Outgoing => b'o',
    });
    name.extend_from_slice(account);
    name.extend_from_slice(&id.0);
    Slot::named(vault, &name)
}

/// The slot of `account`'s conversation summary.
pub(crate) fn conversation(vault: &Vault, account: &[u8; 16]) -> Slot<Conversations> {
    Slot::named(vault, account)
}

/// The history entry at `slot`, if any.
pub(crate) async fn load_entry(
    vault: &Vault,
    slot: &Slot<History>,
) -> Result<Option<HistoryEntry>, StoreError> {
    Ok(vault.load(slot).await?.map(HistoryEntry::from))
}

/// Every history entry under `prefix`, in sequence order.
pub(crate) async fn load_entries(
    vault: &Vault,
    prefix: &Prefix<History>,
) -> Result<Vec<(Slot<History>, HistoryEntry)>, StoreError> {
    Ok(vault
        .load_all(prefix)
        .await?
        .into_iter()
        .map(|(slot, stored)| (slot, HistoryEntry::from(stored)))
        .collect())
}

/// Adds `entry`'s stored form at `slot` to `txn`.
pub(crate) fn save_entry(
    vault: &Vault,
    txn: &mut Txn,
    slot: Slot<History>,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    vault.save(txn, slot, &StoredHistoryEntry::from(entry))
}
