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
//! can change without changing what is on disk. V2 adds what messages
//! about a message did to it (§10.6: the quoted message, reactions, an
//! edit, a delete); V1 entries written before it still read, as messages
//! nothing was about.
//!
//! Must never: let an incoming receipt change a message of another contact
//! (the index records the contact and is checked), or store a
//! `HistoryEntry` by its own serde form.

use serde::{Deserialize, Serialize};

use umbra_protocol::wire::AccountId;

use crate::conversation::{DeliveryStatus, Direction, HistoryEntry, MessageAbout, Reaction};
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
/// stay readable. Entries are always written as the newest variant.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum StoredHistoryEntry {
    /// Format 0 (the first): what V2 holds before `reply_to`. Read only.
    V1(StoredHistoryEntryV1),
    /// Format 1: V1 and what messages about the message did to it
    /// (docs/PROTOCOL.md §10.6).
    V2(StoredHistoryEntryV2),
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

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredHistoryEntryV2 {
    id: MessageId,
    direction: StoredDirection,
    body: String,
    sent_at_ms: u64,
    received_at_ms: u64,
    status: StoredStatus,
    reported: bool,
    reply_to: Option<MessageId>,
    reactions: Vec<StoredReaction>,
    edited_at_ms: Option<u64>,
    deleted: bool,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredReaction {
    account: [u8; 16],
    emoji: String,
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

impl From<Direction> for StoredDirection {
    fn from(direction: Direction) -> Self {
        match direction {
            Direction::Incoming => StoredDirection::Incoming,
            Direction::Outgoing => StoredDirection::Outgoing,
        }
    }
}

impl From<StoredDirection> for Direction {
    fn from(direction: StoredDirection) -> Self {
        match direction {
            StoredDirection::Incoming => Direction::Incoming,
            StoredDirection::Outgoing => Direction::Outgoing,
        }
    }
}

impl From<DeliveryStatus> for StoredStatus {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => StoredStatus::Pending,
            DeliveryStatus::Sent => StoredStatus::Sent,
            DeliveryStatus::Delivered => StoredStatus::Delivered,
            DeliveryStatus::Read => StoredStatus::Read,
            DeliveryStatus::Failed => StoredStatus::Failed,
        }
    }
}

impl From<StoredStatus> for DeliveryStatus {
    fn from(status: StoredStatus) -> Self {
        match status {
            StoredStatus::Pending => DeliveryStatus::Pending,
            StoredStatus::Sent => DeliveryStatus::Sent,
            StoredStatus::Delivered => DeliveryStatus::Delivered,
            StoredStatus::Read => DeliveryStatus::Read,
            StoredStatus::Failed => DeliveryStatus::Failed,
        }
    }
}

impl From<&HistoryEntry> for StoredHistoryEntry {
    fn from(entry: &HistoryEntry) -> Self {
        let about = &entry.about;
        StoredHistoryEntry::V2(StoredHistoryEntryV2 {
            id: entry.id,
            direction: entry.direction.into(),
            body: entry.body.clone(),
            sent_at_ms: entry.sent_at_ms,
            received_at_ms: entry.received_at_ms,
            status: entry.status.into(),
            reported: entry.reported,
            reply_to: about.reply_to,
            reactions: about
                .reactions
                .iter()
                .map(|r| StoredReaction {
                    account: *r.by.as_bytes(),
                    emoji: r.emoji.clone(),
                })
                .collect(),
            edited_at_ms: about.edited_at_ms,
            deleted: about.deleted,
        })
    }
}

impl From<StoredHistoryEntry> for HistoryEntry {
    fn from(stored: StoredHistoryEntry) -> Self {
        match stored {
            // Written before messages about messages: nothing was about it.
            StoredHistoryEntry::V1(v1) => HistoryEntry {
                id: v1.id,
                direction: v1.direction.into(),
                body: v1.body,
                sent_at_ms: v1.sent_at_ms,
                received_at_ms: v1.received_at_ms,
                status: v1.status.into(),
                reported: v1.reported,
                about: MessageAbout::default(),
            },
            StoredHistoryEntry::V2(v2) => HistoryEntry {
                id: v2.id,
                direction: v2.direction.into(),
                body: v2.body,
                sent_at_ms: v2.sent_at_ms,
                received_at_ms: v2.received_at_ms,
                status: v2.status.into(),
                reported: v2.reported,
                about: MessageAbout {
                    reply_to: v2.reply_to,
                    reactions: v2
                        .reactions
                        .into_iter()
                        .map(|r| Reaction {
                            by: AccountId::from_bytes(r.account),
                            emoji: r.emoji,
                        })
                        .collect(),
                    edited_at_ms: v2.edited_at_ms,
                    deleted: v2.deleted,
                },
            },
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
            about: MessageAbout::default(),
        }
    }

    /// The bytes a V1 entry was stored as before V2 existed (the layout
    /// the first version of this test pinned).
    fn v1_bytes() -> Vec<u8> {
        let mut bytes = vec![0x00, 0x10]; // variant V1, id length 16
        bytes.extend_from_slice(&[7; 16]);
        bytes.extend_from_slice(&[0x01, 0x03]); // outgoing, "hé" is 3 bytes
        bytes.extend_from_slice("hé".as_bytes());
        bytes.extend_from_slice(&[0xac, 0x02, 0x01, 0x03, 0x01]); // 300, 1, read, true
        bytes
    }

    #[test]
    fn a_v1_entry_stored_before_v2_still_reads() {
        let stored: StoredHistoryEntry = postcard::from_bytes(&v1_bytes()).unwrap();
        assert!(matches!(stored, StoredHistoryEntry::V1(_)));
        assert_eq!(
            HistoryEntry::from(stored),
            entry(Direction::Outgoing, DeliveryStatus::Read)
        );
        // A conversation summary holding a V1 entry reads too.
        let mut summary = vec![1; 16]; // the account: a plain array, no length

        summary.extend_from_slice(&[0x03, b'b', b'o', b'b', 0x01]); // "bob", Some
        summary.extend_from_slice(&v1_bytes());
        summary.extend_from_slice(&[0x02, 0x05]); // unread 2, last activity 5
        let conv: ConversationRecord = postcard::from_bytes(&summary).unwrap();
        assert_eq!(
            conv.last,
            Some(entry(Direction::Outgoing, DeliveryStatus::Read))
        );
        assert_eq!((conv.unread, conv.last_activity_ms), (2, 5));
    }

    #[test]
    fn the_stored_form_has_its_own_pinned_layout() {
        let mut original = entry(Direction::Outgoing, DeliveryStatus::Read);
        original.about = MessageAbout {
            reply_to: Some(MessageId([8; 16])),
            reactions: vec![Reaction {
                by: AccountId::from_bytes([9; 16]),
                emoji: "👍".into(),
            }],
            edited_at_ms: Some(301),
            deleted: false,
        };
        let bytes = postcard::to_stdvec(&StoredHistoryEntry::from(&original)).unwrap();
        let mut expected = v1_bytes();
        expected[0] = 0x01; // variant V2, then V1's fields
        expected.extend_from_slice(&[0x01, 0x10]); // reply_to: Some, 16 bytes
        expected.extend_from_slice(&[8; 16]);
        expected.push(0x01); // one reaction: its account (a plain array), emoji
        expected.extend_from_slice(&[9; 16]);
        expected.extend_from_slice(&[0x04, 0xf0, 0x9f, 0x91, 0x8d]); // "👍"
        expected.extend_from_slice(&[0x01, 0xad, 0x02, 0x00]); // edited at 301, not deleted
        assert_eq!(bytes, expected);
        let back: StoredHistoryEntry = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(HistoryEntry::from(back), original);
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
        bytes[0] = 0x02;
        assert!(postcard::from_bytes::<StoredHistoryEntry>(&bytes).is_err());
    }
}
