//! The outbox: sealed envelopes waiting for the relay to accept them.
//!
//! An entry is written in the same store transaction as the ratchet session
//! that produced it, before the envelope leaves the client. After a crash or
//! while offline, the same bytes are sent again — never a re-encryption, which
//! would use the same message key for a second plaintext. An entry is deleted
//! only when the relay's `SendResult` accepted it (or refused it for good).
//!
//! Must never: hold plaintext, or be deleted before the relay's answer.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::MessageId;

/// One queued envelope (stored sealed, kind `Outbox`, slot = u64be sequence).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct OutboxEntry {
    /// Our message id, to update history and emit events.
    pub(crate) id: MessageId,
    /// Recipient account id bytes.
    pub(crate) to_account: [u8; 16],
    /// Recipient username at the time of sending (for events).
    pub(crate) to_username: String,
    /// The sealed envelope, exactly as it will be sent.
    #[serde(with = "serde_bytes")]
    pub(crate) envelope: Vec<u8>,
    /// Local time it was queued, Unix milliseconds.
    pub(crate) queued_at_ms: u64,
    /// Whether this is a user-visible message (receipts are not in history).
    pub(crate) visible: bool,
}

/// A message still waiting for the relay, as
/// [`Client::pending_outbox`](crate::Client::pending_outbox) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMessage {
    /// Our message id.
    pub id: MessageId,
    /// The recipient's username.
    pub to: String,
    /// When it was queued, Unix milliseconds.
    pub queued_at_ms: u64,
    /// SHA-256 of the sealed envelope that will be (re)sent: lets a caller
    /// check that a resend carries the very same ciphertext.
    pub envelope_sha256: [u8; 32],
}

impl OutboxEntry {
    pub(crate) fn describe(&self) -> PendingMessage {
        PendingMessage {
            id: self.id,
            to: self.to_username.clone(),
            queued_at_ms: self.queued_at_ms,
            envelope_sha256: Sha256::digest(&self.envelope).into(),
        }
    }
}
