//! Conversation summaries, history entries and the message-id index, as
//! stored.
//!
//! History entries live under ordered slots `HMAC(account) || u64be seq`, so
//! one conversation's messages list in order without revealing whose they
//! are. The index maps a message id to its entry, so receipts can update
//! the status of the message they name.
//!
//! The public [`HistoryEntry`] is not the stored record: a history entry is
//! stored as a private, versioned [`StoredHistoryEntry`] (a postcard enum
//! whose variant index is the entry format version, docs/PROTOCOL.md
//! §12.9), with its own codes for direction and status, so the public type
//! can change without changing what is on disk.
//!
//! Must never: let an incoming receipt change a message of another contact
//! (the index records the contact and is checked), or store a
//! `HistoryEntry` by its own serde form.

use serde::{Deserialize, Serialize};

use crate::conversation::{DeliveryStatus, Direction, HistoryEntry};
use crate::MessageId;

/// A conversation summary (kind `Conversation`, slot = HMAC of the account id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConversationRecord {
    pub(crate) account: [u8; 16],
    pub(crate) username: String,
    /// Stored as an `Option<StoredHistoryEntry>`.
    #[serde(with = "stored_last")]
    pub(crate) last: Option<HistoryEntry>,
    pub(crate) unread: u32,
    pub(crate) last_activity_ms: u64,
}

/// Where a message's history entry is (kind `MessageIndex`, slot = HMAC of
/// direction || account || message id).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct MessageLocation {
    pub(crate) account: [u8; 16],
    pub(crate) seq: u64,
}

/// Local counters (kind `Counters`, singleton).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Counters {
    pub(crate) next_history_seq: u64,
    pub(crate) next_outbox_seq: u64,
}

/// A history entry as stored (kind `History`). The variant index is the
/// entry's format version: a new layout is a new variant, and old variants
/// stay readable.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum StoredHistoryEntry {
    /// Format 0 (the first).
    V1(StoredHistoryEntryV1),
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredHistoryEntryV1 {
    id: MessageId,
    direction: StoredDirection,
    body: String,
    sent_at_ms: u64,
    received_at_ms: u64,
    status: StoredStatus,
    reported: bool,
}

/// Stored codes (postcard variant indices): 0 incoming, 1 outgoing.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum StoredDirection {
    Incoming,
    Outgoing,
}

/// Stored codes: 0 pending, 1 sent, 2 delivered, 3 read, 4 failed.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum StoredStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl From<&HistoryEntry> for StoredHistoryEntry {
    fn from(entry: &HistoryEntry) -> Self {
        StoredHistoryEntry::V1(StoredHistoryEntryV1 {
            id: entry.id,
            direction: match entry.direction {
                Direction::Incoming => StoredDirection::Incoming,
                Direction::Outgoing => StoredDirection::Outgoing,
            },
            body: entry.body.clone(),
            sent_at_ms: entry.sent_at_ms,
            received_at_ms: entry.received_at_ms,
            status: match entry.status {
                DeliveryStatus::Pending => StoredStatus::Pending,
                DeliveryStatus::Sent => StoredStatus::Sent,
                DeliveryStatus::Delivered => StoredStatus::Delivered,
                DeliveryStatus::Read => StoredStatus::Read,
                DeliveryStatus::Failed => StoredStatus::Failed,
            },
            reported: entry.reported,
        })
    }
}

impl From<StoredHistoryEntry> for HistoryEntry {
    fn from(stored: StoredHistoryEntry) -> Self {
        let StoredHistoryEntry::V1(v1) = stored;
        HistoryEntry {
            id: v1.id,
            direction: match v1.direction {
                StoredDirection::Incoming => Direction::Incoming,
                StoredDirection::Outgoing => Direction::Outgoing,
            },
            body: v1.body,
            sent_at_ms: v1.sent_at_ms,
            received_at_ms: v1.received_at_ms,
            status: match v1.status {
                StoredStatus::Pending => DeliveryStatus::Pending,
                StoredStatus::Sent => DeliveryStatus::Sent,
                StoredStatus::Delivered => DeliveryStatus::Delivered,
                StoredStatus::Read => DeliveryStatus::Read,
                StoredStatus::Failed => DeliveryStatus::Failed,
            },
            reported: v1.reported,
        }
    }
}

/// serde for `ConversationRecord::last` through the stored form.
mod stored_last {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::StoredHistoryEntry;
    use crate::conversation::HistoryEntry;

    pub(super) fn serialize<S: Serializer>(
        last: &Option<HistoryEntry>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        last.as_ref().map(StoredHistoryEntry::from).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<HistoryEntry>, D::Error> {
        Ok(Option::<StoredHistoryEntry>::deserialize(d)?.map(HistoryEntry::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(direction: Direction, status: DeliveryStatus) -> HistoryEntry {
        HistoryEntry {
            id: MessageId([7; 16]),
            direction,
            body: "hé".into(),
            sent_at_ms: 300,
            received_at_ms: 1,
            status,
            reported: true,
        }
    }

    #[test]
    fn the_stored_form_has_its_own_pinned_layout() {
        let stored = StoredHistoryEntry::from(&entry(Direction::Outgoing, DeliveryStatus::Read));
        let bytes = postcard::to_stdvec(&stored).unwrap();
        let mut expected = vec![0x00, 0x10]; // variant V1, id length 16
        expected.extend_from_slice(&[7; 16]);
        expected.extend_from_slice(&[0x01, 0x03]); // outgoing, "hé" is 3 bytes
        expected.extend_from_slice("hé".as_bytes());
        expected.extend_from_slice(&[0xac, 0x02, 0x01, 0x03, 0x01]); // 300, 1, read, true
        assert_eq!(bytes, expected);
    }

    #[test]
    fn every_direction_and_status_round_trips() {
        use DeliveryStatus::*;
        for direction in [Direction::Incoming, Direction::Outgoing] {
            for status in [Pending, Sent, Delivered, Read, Failed] {
                let original = entry(direction, status);
                let bytes = postcard::to_stdvec(&StoredHistoryEntry::from(&original)).unwrap();
                let back: StoredHistoryEntry = postcard::from_bytes(&bytes).unwrap();
                assert_eq!(HistoryEntry::from(back), original);
            }
        }
        // An entry format this version does not know is refused, not guessed.
        let mut bytes =
            postcard::to_stdvec(&StoredHistoryEntry::from(&entry(Direction::Incoming, Read)))
                .unwrap();
        bytes[0] = 0x01;
        assert!(postcard::from_bytes::<StoredHistoryEntry>(&bytes).is_err());
    }
}
