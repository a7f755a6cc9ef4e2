//! Conversations and their history as the user sees them.
//!
//! A conversation is everything exchanged with one contact: a summary (last
//! message, unread count) for a list view and the ordered history.
//!
//! Must never: hold anything but what the user could read on screen (no keys).

use serde::{Deserialize, Serialize};

use crate::MessageId;

/// Who wrote a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The contact wrote it.
    Incoming,
    /// We wrote it.
    Outgoing,
}

/// How far one of our messages got. Ordered: each state implies the earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DeliveryStatus {
    /// Encrypted and stored in the outbox, not yet accepted by the relay.
    Pending,
    /// The relay durably accepted it.
    Sent,
    /// The contact's device received it.
    Delivered,
    /// The contact read it.
    Read,
    /// The relay refused it for good.
    Failed,
}

/// One message in a conversation, as the API hands it out. Not the stored
/// record (that is a private, versioned form in `history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The message id (the sender's).
    pub id: MessageId,
    /// Who wrote it.
    pub direction: Direction,
    /// The text (untrusted when incoming: sanitise before display).
    pub body: String,
    /// The sender's clock at sending, Unix milliseconds.
    pub sent_at_ms: u64,
    /// When it was received (incoming: relay acceptance time; outgoing: local time).
    pub received_at_ms: u64,
    /// Delivery progress; incoming messages are always `Delivered` or `Read`.
    pub status: DeliveryStatus,
    /// Incoming: whether an interface has shown the message to the user
    /// ([`Client::mark_reported`](crate::Client::mark_reported), or
    /// [`Client::mark_read`](crate::Client::mark_read)). A message that
    /// arrived while the client was busy with something else stays `false`
    /// until then, so it can still be reported. Outgoing: always `true`.
    pub reported: bool,
    /// What messages about this one did to it: the message it quotes, its
    /// reactions, an edit, a delete for everyone (docs/PROTOCOL.md §10.6).
    pub about: MessageAbout,
}

/// The state messages about a message left on it (docs/PROTOCOL.md §10.6).
/// Empty for a message nobody replied to, reacted to, edited or deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageAbout {
    /// For a reply: the id of the message it quotes, which may be unknown
    /// here (sent before we could read, or never arrived): show the quote
    /// as unavailable then.
    pub reply_to: Option<MessageId>,
    /// The reactions, in the order they were added; at most one of each
    /// (account, emoji) pair.
    pub reactions: Vec<Reaction>,
    /// Edited: the author's clock when it sent the edit whose text `body`
    /// now holds, Unix milliseconds (untrusted).
    pub edited_at_ms: Option<u64>,
    /// Deleted for everyone by its author: `body` is empty (the text was
    /// erased from the store) and `reactions` too; it stays as a
    /// placeholder so that replies quoting it still make sense.
    pub deleted: bool,
}

/// One reaction on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// Who reacted (our own account for ours).
    pub by: umbra_protocol::wire::AccountId,
    /// The emoji: 1 to 64 bytes, no white space or control character
    /// (untrusted: that it is one emoji is not checked).
    pub emoji: String,
}

impl HistoryEntry {
    /// Our own message as it enters history when it is queued: pending,
    /// received "now" (our clock at sending) and already reported, since we
    /// wrote it. One constructor for the 1:1, group and file send paths, so
    /// they cannot drift apart.
    pub(crate) fn outgoing(id: MessageId, body: String, sent_at_ms: u64) -> Self {
        Self {
            id,
            direction: Direction::Outgoing,
            body,
            sent_at_ms,
            received_at_ms: sent_at_ms,
            status: DeliveryStatus::Pending,
            reported: true,
            about: MessageAbout::default(),
        }
    }

    /// A message that arrived from the peer or a group member: delivered,
    /// not reported yet, `about` empty but for the quoted message.
    pub(crate) fn incoming(
        id: MessageId,
        body: String,
        sent_at_ms: u64,
        received_at_ms: u64,
        reply_to: Option<MessageId>,
    ) -> Self {
        Self {
            id,
            direction: Direction::Incoming,
            body,
            sent_at_ms,
            received_at_ms,
            status: DeliveryStatus::Delivered,
            reported: false,
            about: MessageAbout {
                reply_to,
                ..MessageAbout::default()
            },
        }
    }
}

/// An incoming message no interface has reported to the user yet, as
/// [`Client::unreported_messages`](crate::Client::unreported_messages) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreportedMessage {
    /// The sender's username.
    pub from: String,
    /// The sender's account.
    pub account_id: umbra_protocol::wire::AccountId,
    /// The message id.
    pub id: MessageId,
    /// The text (untrusted: sanitise before display).
    pub body: String,
    /// The sender's clock at sending, Unix milliseconds (untrusted).
    pub sent_at_ms: u64,
    /// When it was received, Unix milliseconds.
    pub received_at_ms: u64,
    /// The file, for a file message (`body` is then a one-line summary).
    pub file: Option<crate::FileInfo>,
    /// For a reply: the message it quotes (docs/PROTOCOL.md §10.6).
    pub reply_to: Option<MessageId>,
}

/// A conversation summary for a list view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The contact's username.
    pub peer: String,
    /// The newest message, if any.
    pub last_message: Option<HistoryEntry>,
    /// Incoming messages not yet marked read.
    pub unread: u32,
    /// The newest activity, Unix milliseconds (0 if none).
    pub last_activity_ms: u64,
    /// Whether the contact's key changed and awaits the user's decision.
    pub key_changed: bool,
}
