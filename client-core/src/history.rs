//! Conversation summaries, history entries and the message-id index, as
//! stored.
//!
//! History entries live under ordered slots `HMAC(account) || u64be seq`, so
//! one conversation's messages list in order without revealing whose they
//! are. The index maps a message id to its entry, so receipts can update
//! the status of the message they name.
//!
//! Must never: let an incoming receipt change a message of another contact
//! (the index records the contact and is checked).

use serde::{Deserialize, Serialize};

use crate::conversation::HistoryEntry;

/// A conversation summary (kind `Conversation`, slot = HMAC of the account id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConversationRecord {
    pub(crate) account: [u8; 16],
    pub(crate) username: String,
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
