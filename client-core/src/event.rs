//! What the client tells its user: the event stream.
//!
//! Everything that happens without the user asking — a message arrives, a
//! receipt, a typing notice, a contact's key changes, a message cannot be
//! decrypted, the connection goes up or down — is an [`Event`]. A TUI
//! consumes [`Client::events`](crate::Client::events); a script calls
//! [`Client::receive_until_empty`](crate::Client::receive_until_empty).
//!
//! Must never: carry key material, or hide a failure (a decryption failure is
//! an event, not a silent drop).

use umbra_protocol::wire::{AccountId, Username};

use crate::{Ended, MessageId, SafetyNumber};

mod reason;
#[cfg(test)]
mod tests;

pub use reason::{
    DecryptFailure, GroupOpenFailure, GroupRefusal, Outcome, SendFailure, SharedError,
};

/// The state of the relay connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected, and not trying (before `connect`, after logout).
    Offline,
    /// Opening the WebSocket and authenticating.
    Connecting,
    /// Authenticated; messages flow.
    Connected,
    /// The connection dropped; the next attempt is in `retry_in`.
    Reconnecting {
        /// Delay before the next attempt.
        retry_in: std::time::Duration,
        /// Why the last attempt failed (what the caller of a command
        /// that needed the connection gets as its error).
        cause: SharedError,
    },
    /// The relay closed the connection for good (for example the token
    /// expired or was revoked). No retry happens.
    Closed {
        /// Why, and whose doing it was.
        reason: Ended,
    },
    /// Another connection for this account and device (another process
    /// using the same data, e.g. a second `umbra chat`) logged in, and the
    /// relay closed this one. No retry happens, so the two do not keep
    /// knocking each other off; messages now go to the other connection.
    Replaced,
}

impl ConnectionState {
    /// Why the connection ended for good, if it did
    /// ([`ConnectionState::Closed`] or [`ConnectionState::Replaced`]).
    pub fn ended_because(&self) -> Option<Ended> {
        match self {
            ConnectionState::Closed { reason } => Some(reason.clone()),
            ConnectionState::Replaced => Some(Ended::Replaced),
            _ => None,
        }
    }
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The relay's key directory contradicts the newest head this client
    /// verified: it signed two histories for one epoch, or went back
    /// (docs/PROTOCOL.md §16.8, §16.9 item 3). The remembered head is kept;
    /// compare `umbra directory root` with other users.
    DirectoryInconsistent {
        /// What the check found (`Fork` or `Rollback`, with the epochs).
        reason: String,
    },
    /// The relay's key directory holds a version of this account's own
    /// keys that it never published: an identity it does not hold, a device
    /// list its identity did not sign, or its username naming another
    /// account (docs/PROTOCOL.md §16.9 item 5). Raised at every check while
    /// the directory holds it.
    OwnKeyNotPublishedByMe {
        /// The leaf's version.
        version: u64,
        /// The epoch that published it.
        epoch: u64,
        /// What is not ours.
        reason: String,
    },
    /// The relay served keys for `account` that its key directory does not
    /// hold (§16.9 item 2); they were refused.
    DirectoryRefused {
        /// Whose keys.
        account: umbra_protocol::wire::AccountId,
    },
    /// A text or file message arrived (already stored in history).
    Message {
        /// The sender's username.
        from: String,
        /// The sender's message id.
        id: MessageId,
        /// The text, exactly as sent: untrusted, sanitise before display.
        body: String,
        /// The sender's clock when sending, Unix milliseconds (untrusted).
        sent_at_ms: u64,
        /// When the relay accepted it, Unix milliseconds.
        received_at_ms: u64,
        /// The file it carries, for a file message (`body` is then a
        /// one-line summary): fetch it with
        /// [`Client::fetch_file`](crate::Client::fetch_file).
        file: Option<crate::FileInfo>,
        /// For a reply: the message it quotes (ours or the sender's), which
        /// may be unknown here; show the quote as unavailable then.
        reply_to: Option<MessageId>,
    },
    /// Another device of our account sent a 1:1 text or file message
    /// (sent-message sync, docs/PROTOCOL.md §15.8): it is stored in the
    /// conversation with `to` as ours, with the same id, so later edits,
    /// reactions and receipts name it here too.
    SentElsewhere {
        /// The recipient (username as shown).
        to: String,
        /// The message id (the one the recipient got).
        id: MessageId,
        /// The text as sent (a one-line summary for a file).
        body: String,
        /// Our other device's clock when sending, Unix milliseconds.
        sent_at_ms: u64,
        /// The file it carries, for a file message.
        file: Option<crate::FileInfo>,
        /// For a reply: the message it quotes.
        reply_to: Option<MessageId>,
    },
    /// A 1:1 conversation was deleted for everyone (docs/PROTOCOL.md
    /// §12.19) and its history erased from this device: by the contact
    /// (what it had when it deleted; ours it had not received yet stays),
    /// or by another device of ours (all of it). What either side sends
    /// afterwards is shown as usual.
    ConversationDeleted {
        /// The contact (username as shown).
        with: String,
        /// `true` when the contact deleted it, `false` when another device
        /// of our account did.
        by_peer: bool,
        /// How many history entries were erased here.
        erased: usize,
    },
    /// The relay durably accepted one of our messages.
    Sent {
        /// The recipient.
        to: String,
        /// Our message id.
        id: MessageId,
    },
    /// The relay refused one of our messages for good; it will not be retried.
    SendFailed {
        /// The recipient.
        to: String,
        /// Our message id.
        id: MessageId,
        /// Why.
        reason: SendFailure,
    },
    /// A contact's device received our messages.
    DeliveryReceipt {
        /// The contact.
        from: String,
        /// Our message ids.
        ids: Vec<MessageId>,
    },
    /// A contact read our messages.
    ReadReceipt {
        /// The contact.
        from: String,
        /// Our message ids.
        ids: Vec<MessageId>,
    },
    /// A contact started or stopped typing.
    Typing {
        /// The contact.
        from: String,
        /// Whether they are typing now.
        started: bool,
    },
    /// A contact's identity key differs from the pinned one. Sending to them
    /// fails with [`Error::UntrustedKey`](crate::Error::UntrustedKey) until
    /// the user accepts or verifies the new key. Their incoming messages are
    /// still shown, marked by this event.
    KeyChanged {
        /// The contact's name.
        username: Username,
        /// The contact's account.
        account: AccountId,
        /// The safety number with the new key (the one to compare before
        /// accepting or verifying it).
        safety_number: SafetyNumber,
    },
    /// A username the user knows now belongs to (or is claimed by) another
    /// account than the contact it meant: a freed name taken by someone
    /// else, or a contact's old name after a rename. Both contacts stay,
    /// each under its own account; the newcomer is shown as
    /// `name#xxxxxxxx` (its account id's first 8 hex digits), and sending
    /// to `username` fails with
    /// [`Error::NameReassigned`](crate::Error::NameReassigned) until the
    /// user picks one by its safety number
    /// ([`Client::accept_key_change`](crate::Client::accept_key_change) or
    /// [`Client::mark_verified`](crate::Client::mark_verified)). Raised once
    /// per newcomer.
    NameReassigned {
        /// The name.
        username: Username,
        /// The account the user knows by that name.
        known: AccountId,
        /// The account that now holds or claims it.
        newcomer: AccountId,
    },
    /// An envelope could not be decrypted or authenticated. The sender is
    /// unknown when the failure happened before the sealed layer opened.
    ///
    /// If the reason may be local or passing (the relay's directory could
    /// not be asked, a prekey or session is missing), the envelope is kept:
    /// not acknowledged, so the relay delivers it again on the next
    /// connection, and the reason is [`DecryptFailure::Kept`]. After 8
    /// failed attempts over at least a day it is given up and a last event
    /// says it was lost ([`DecryptFailure::Lost`], docs/PROTOCOL.md §12.5).
    DecryptionFailed {
        /// The sender (as shown), if the sealed layer revealed one.
        from: Option<String>,
        /// What went wrong, and what became of the envelope
        /// ([`DecryptFailure::outcome`]).
        reason: DecryptFailure,
    },
    /// A group message arrived.
    GroupMessage {
        /// The group.
        group: crate::GroupId,
        /// The group's name (untrusted: sanitise before display).
        group_name: String,
        /// The sender's username as shown (`name#xxxxxxxx` for a newcomer
        /// on a name the user knows as another account).
        from: String,
        /// The sender's account.
        from_account: umbra_protocol::wire::AccountId,
        /// The sender's message id (receipts name it).
        id: MessageId,
        /// The text, exactly as sent: untrusted, sanitise before display.
        body: String,
        /// The sender's clock when sending, Unix milliseconds (untrusted).
        sent_at_ms: u64,
        /// When the relay accepted it, Unix milliseconds.
        received_at_ms: u64,
        /// For a reply: the group message it quotes, which may be unknown
        /// here (sent before we joined); show the quote as unavailable then.
        reply_to: Option<MessageId>,
        /// For a file: what `fetch_file` takes (its id) and shows (`body`
        /// is then a summary of it).
        file: Option<crate::FileInfo>,
    },
    /// A reaction, an edit or a delete for everyone changed a stored
    /// message (docs/PROTOCOL.md §10.6): the history entry already shows
    /// it ([`HistoryEntry::about`](crate::HistoryEntry::about)). Raised for
    /// what arrives, not for our own.
    MessageChanged {
        /// The group, or `None` for the 1:1 conversation with `from`.
        group: Option<crate::GroupId>,
        /// Who sent the change (username as shown).
        from: String,
        /// Their account.
        from_account: AccountId,
        /// The change's own message id.
        id: MessageId,
        /// The message it changed (ours or theirs).
        target: MessageId,
        /// What it did.
        change: crate::MessageChange,
    },
    /// A reaction, an edit or a delete for everyone that arrived was not
    /// applied (docs/PROTOCOL.md §10.6): the message it names is unknown,
    /// someone other than its author tried to edit or delete it, it was
    /// sent too late, and so on. Nothing changed.
    MessageChangeRefused {
        /// The group, or `None` for the 1:1 conversation with `from`.
        group: Option<crate::GroupId>,
        /// Who sent it (username as shown).
        from: String,
        /// The change's own message id.
        id: MessageId,
        /// The message it named.
        target: MessageId,
        /// Why it was refused.
        reason: crate::ChangeRefusal,
    },
    /// A group's membership, name or admins changed (a change we made, or
    /// one a member made, once applied).
    GroupMembershipChanged {
        /// The group.
        group: crate::GroupId,
        /// Its name after the change.
        group_name: String,
        /// What changed.
        change: crate::GroupChangeKind,
        /// Who made the change (username as shown).
        by: String,
        /// The members after the change (usernames, the group's order).
        members: Vec<String>,
        /// The accounts the change is about, with the username the group
        /// lists them under: the added, removed or promoted accounts, for
        /// a Leave its author (empty for a Create or a Rename). A removed
        /// member, or one who left, is named as the last state that
        /// listed it did.
        about: Vec<crate::GroupMemberName>,
        /// For a rename: the group's name before it (`None` for other
        /// changes, or when the state before is no longer kept).
        old_name: Option<String>,
    },
    /// We were removed from a group: nothing more of it reaches us, and
    /// our sends to it are refused.
    RemovedFromGroup {
        /// The group.
        group: crate::GroupId,
        /// Its name.
        group_name: String,
        /// The admin who removed us.
        by: String,
    },
    /// A change we made lost the fork choice to a concurrent change by
    /// another admin (the fork choice of docs/PROTOCOL.md §8.10 decides).
    /// `reissued`: it was made again on the winning state; otherwise it no
    /// longer applies (for example the member was removed meanwhile).
    /// Raised once per change, when that is decided: a change that could
    /// not be made yet (offline, a lost connection) is kept and tried again,
    /// after a restart too, without an event.
    GroupChangeSuperseded {
        /// The group.
        group: crate::GroupId,
        /// Its name.
        group_name: String,
        /// Whether our change was made again on top of the winner.
        reissued: bool,
    },
    /// We are a member of a group again: a concurrent change won the fork
    /// choice (docs/PROTOCOL.md §8.10) over the Remove of us, or over our
    /// own Leave, and the group's state lists us again (§12.14). Its
    /// messages reach us again and we may send to it (under a fresh sender
    /// key). An undone Leave of ours is made again on the new state: a
    /// [`Event::GroupChangeSuperseded`] follows.
    GroupMembershipRestored {
        /// The group.
        group: crate::GroupId,
        /// Its name.
        group_name: String,
        /// Who made the change that won (username as shown).
        by: String,
        /// The admin whose Remove of us was undone (username as shown);
        /// `None` when it was our own Leave.
        removed_by: Option<String>,
    },
    /// The relay refused for good, in a later round of the outbox pump, what
    /// was queued for one member of a group (a message or change whose send
    /// reported the member `Queued`): it will not reach that member. A
    /// refused sender key is sent again with our next group message.
    GroupDeliveryFailed {
        /// The group.
        group: crate::GroupId,
        /// The message id (a group message's, as its send reported; a
        /// random id for a change).
        id: MessageId,
        /// The member it was for.
        member: umbra_protocol::wire::AccountId,
        /// The member's username when it was queued (a display hint).
        username: String,
        /// Why.
        reason: SendFailure,
    },
    /// A group member started or stopped typing.
    GroupTyping {
        /// The group.
        group: crate::GroupId,
        /// The member (username as shown).
        from: String,
        /// Whether they are typing now.
        started: bool,
    },
    /// A member received or read our group messages (receipts travel
    /// pairwise, as in 1:1; this names the group they belong to).
    GroupReceipt {
        /// The group.
        group: crate::GroupId,
        /// The member.
        from: String,
        /// Our message ids.
        ids: Vec<MessageId>,
        /// `true` for a read receipt, `false` for a delivery receipt.
        read: bool,
    },
    /// The disappearing-message timer of a 1:1 conversation changed
    /// (docs/PROTOCOL.md §10.8, §12.18): messages stored from now on are
    /// deleted `seconds` after they were sent or received (0: off).
    DisappearingTimerChanged {
        /// The contact (username as shown).
        with: String,
        /// `true` when the contact set it; `false` for our own change.
        by_peer: bool,
        /// The timer, 0 when off.
        seconds: u32,
    },
    /// Messages of a 1:1 conversation reached the end of their
    /// disappearing timer and were deleted from this device's store
    /// (docs/PROTOCOL.md §12.18): an interface showing them drops them.
    MessagesExpired {
        /// The contact (username as shown).
        with: String,
        /// The deleted messages' ids, ours and the contact's.
        ids: Vec<MessageId>,
    },
    /// A member (or we) set a group's disappearing-message timer
    /// (docs/PROTOCOL.md §8.9, §12.18): the group's messages stored from
    /// now on are deleted `seconds` after this device stored them.
    GroupDisappearingTimerChanged {
        /// The group.
        group: crate::GroupId,
        /// Its name (untrusted: sanitise before display).
        group_name: String,
        /// The member who set it (username as shown), `None` for us.
        by: Option<String>,
        /// The timer, 0 when off.
        seconds: u32,
    },
    /// Messages of a group reached the end of its disappearing timer and
    /// were deleted from this device's store (§12.18).
    GroupMessagesExpired {
        /// The group.
        group: crate::GroupId,
        /// The deleted messages' ids (ours and the members').
        ids: Vec<MessageId>,
    },
    /// The connection changed state.
    Connection(ConnectionState),
    /// Everything the relay had queued for us has been received.
    QueueEmpty,
    /// New one-time prekeys were uploaded after the relay reported a low count.
    PreKeysReplenished {
        /// How many were uploaded.
        uploaded: u32,
    },
    /// The relay does not know the ML-KEM prekey frames (it answered one
    /// with `BadFrame`): it predates post-quantum sessions, so this device
    /// publishes no post-quantum prekeys there and starts no new session
    /// (umbra never falls back to a classical one). Raised once per client;
    /// the relay must be updated.
    RelayLacksPostQuantum,
    /// New one-time ML-KEM prekeys were uploaded (at a connection's first
    /// maintenance, or after the relay reported a low count).
    KemPreKeysReplenished {
        /// How many were uploaded.
        uploaded: u32,
    },
    /// The event stream fell behind and dropped this many events (only for a
    /// receiver that did not keep up; the store still has every message).
    Lagged {
        /// Events missed.
        missed: u64,
    },
}
