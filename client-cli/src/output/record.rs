//! The records themselves: every type and field the `--json` output has,
//! and the enumerations inside them, exactly as docs/CLI.md documents them.
//!
//! This is the schema scripts depend on. It must never rename, remove or
//! change the meaning of a record type, field or enumeration value (only
//! additions are allowed), and must never render anything: that is
//! [`super::json`] and [`super::human`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use super::group::{GroupChangeKind, GroupRef};

/// How far a contact has verified identity keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// Key seen and used, never compared out of band.
    Unverified,
    /// The user compared the safety number and marked it verified.
    Verified,
    /// The key changed since it was last accepted; sending is blocked.
    Changed,
}

impl Trust {
    pub fn label(self) -> &'static str {
        match self {
            Trust::Unverified => "unverified",
            Trust::Verified => "verified",
            Trust::Changed => "KEY CHANGED",
        }
    }
}

/// How far an outgoing message has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Written locally, not yet acknowledged by the relay.
    Pending,
    /// The relay acknowledged it (stored durably).
    Sent,
    /// The recipient's device acknowledged it.
    Delivered,
    /// The recipient opened it.
    Read,
}

impl Delivery {
    /// The mark shown next to an outgoing message.
    pub fn mark(self) -> &'static str {
        match self {
            Delivery::Pending => "…",
            Delivery::Sent => "✓",
            Delivery::Delivered => "✓✓",
            Delivery::Read => "✓✓ read",
        }
    }
}

/// What a contact's username means to the user (`contact` records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameStateLabel {
    /// The name means this contact.
    Current,
    /// The name means this contact, but another account claims it.
    Contested,
    /// The name means another account; this one is told apart by its label.
    OtherAccount,
}

/// One line of output.
/// What a `message_changed` record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A reaction was added.
    Reacted,
    /// A reaction was taken back.
    Unreacted,
    /// The author replaced the text.
    Edited,
    /// The author deleted it for everyone (its text is erased).
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// An incoming message.
    Message {
        from: String,
        id: String,
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        received_at: OffsetDateTime,
        body: String,
        /// The group it was sent to; absent for a message to this account alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupRef>,
        /// The file a file message carries (`body` is then a one-line
        /// summary); absent for a text message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<FileRef>,
        /// For a reply: the id of the message it quotes (which may be
        /// unknown here); absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    /// A 1:1 message another device of this account sent (sent-message
    /// sync): stored here as ours, in the conversation with `to`.
    SentElsewhere {
        to: String,
        id: String,
        /// The other device's clock when sending (for a file message the
        /// relay's acceptance time: a pointer carries no clock).
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
        /// The exact text (untrusted: it came over the network); for a
        /// file message a one-line summary.
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<FileRef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    /// A 1:1 conversation was deleted for everyone and erased here: by
    /// the contact `with` (`by_peer`), or by another device of ours.
    ConversationDeleted {
        with: String,
        by_peer: bool,
        /// How many messages were erased here.
        erased: usize,
    },
    /// The disappearing-message timer of the conversation with `with`
    /// changed: set by the contact (`by_peer`) or by us (docs/CLI.md).
    DisappearingTimer {
        with: String,
        by_peer: bool,
        /// The timer in seconds; 0 when off.
        seconds: u32,
    },
    /// Messages with `with` reached the end of their disappearing timer
    /// and were deleted from this device's store.
    MessagesExpired {
        with: String,
        /// Their ids, ours and the contact's.
        ids: Vec<String>,
    },
    /// A group's disappearing-message timer was set, by the member `by`
    /// (absent for our own change): its messages stored from now on are
    /// deleted that long after this device stored them.
    GroupDisappearingTimer {
        group: GroupRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// The timer in seconds; 0 when off.
        seconds: u32,
    },
    /// Messages of `group` reached the end of its disappearing timer and
    /// were deleted from this device's store.
    GroupMessagesExpired {
        group: GroupRef,
        /// Their ids, ours and the members'.
        ids: Vec<String>,
    },
    /// A reaction, edit or delete for everyone changed a stored message
    /// (ours or the sender's).
    MessageChanged {
        from: String,
        /// The change's own message id.
        id: String,
        /// The message it changed.
        target: String,
        change: ChangeKind,
        /// For a reaction: the emoji (untrusted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emoji: Option<String>,
        /// For an edit: the new text (untrusted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// The group, for a group message; absent for a 1:1 one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupRef>,
    },
    /// A reaction, edit or delete that arrived was refused; nothing changed.
    MessageChangeRefused {
        from: String,
        id: String,
        target: String,
        /// Why, as a code (`unknown_target`, `not_the_author`, ...).
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupRef>,
    },
    /// A delivery or read receipt for a message this account sent.
    Receipt {
        from: String,
        id: String,
        status: Delivery,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A contact's identity key changed; messages to them are blocked until
    /// the new key is accepted (`umbra verify NAME --accept NUMBER`).
    KeyChanged {
        contact: String,
        safety_number: String,
        /// The contact's account (32 hex digits); absent from a daemon
        /// that predates it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
    },
    /// `send` succeeded: the relay has the message.
    Sent {
        to: String,
        id: String,
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
        /// A group message: `to` is the group's name, and every member's
        /// copy was accepted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupRef>,
    },
    /// The relay refused one of our messages for good.
    SendFailed {
        to: String,
        id: String,
        reason: String,
        /// A group message: `to` is the member whose copy was refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupRef>,
    },
    /// An incoming envelope could not be decrypted or authenticated.
    /// `from` is null when the sender could not be determined.
    DecryptionFailed {
        from: Option<String>,
        reason: String,
        /// The cause, machine-readable (client-core's
        /// `DecryptFailure::code`); absent from a daemon that predates it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason_code: Option<String>,
        /// `"rejected"`, `"kept"` (it comes again) or `"lost"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
    },
    /// One row of `contacts`.
    Contact {
        username: String,
        account_id: String,
        trust: Trust,
        /// How the contact is shown: `username`, or `username#xxxxxxxx` when
        /// the name means another account to the user.
        display_name: String,
        /// `"current"`, `"contested"` or `"other_account"`.
        name_state: NameStateLabel,
    },
    /// A name the user knows now belongs to (or is claimed by) another
    /// account; sending to it is blocked until the user picks one.
    NameReassigned {
        contact: String,
        known_account_id: String,
        new_account_id: String,
        /// How the newcomer is shown (`contact#xxxxxxxx`).
        new_display_name: String,
    },
    /// `verify`: the safety number for a contact.
    SafetyNumber {
        contact: String,
        safety_number: String,
        trust: Trust,
    },
    /// `directory root`: the pinned key-transparency keys and the newest
    /// head verified (each hash 64 hex digits), `epoch` and the roots
    /// absent before the first head.
    DirectoryRoot {
        directory_key: String,
        vrf_key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        map_root: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_root: Option<String>,
    },
    /// The relay's key directory holds a version of this account's own
    /// keys it never published (PROTOCOL §16.9 item 5).
    OwnKeyNotPublishedByMe {
        version: u64,
        epoch: u64,
        reason: String,
    },
    /// The relay's key directory contradicts what this client verified (a
    /// fork or rollback), or served keys for `account_id` it does not hold.
    DirectoryAlarm {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
    },
    /// `whoami`.
    Account {
        username: String,
        account_id: String,
        device_id: u32,
        server: String,
        /// False after `logout`: the keys are here, the relay session is not.
        logged_in: bool,
    },
    /// The end of `receive`: everything waiting was printed.
    Drained { count: u64 },
    /// A state change the user asked for (login, logout, register, verify,
    /// the group commands).
    Done {
        action: String,
        detail: String,
        /// The group a `group_*` action changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupRef>,
    },
    /// `link`: the link code to enter on the new device (`link-accept`),
    /// printed before `link` waits for it. A secret for five minutes: whoever
    /// holds it can join the account.
    LinkCode { link_code: String },
    /// `file send`: the relay accepted the message carrying the file.
    FileSent {
        to: String,
        /// The message id.
        id: String,
        file: FileRef,
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
        /// A file sent to a group (`file send --group`): `to` is the
        /// group's name, and every member's copy was accepted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupRef>,
    },
    /// `file get`: the file verified and was saved at `path`.
    FileSaved { file: FileRef, path: String },
    /// One row of `group list`.
    Group {
        id: String,
        name: String,
        /// `name`, or `name#xxxxxxxx` when another group has the same name.
        display_name: String,
        members: u64,
        /// Whether this account is an admin of it.
        admin: bool,
        /// False once this account left or was removed (listed, read-only).
        active: bool,
        version: u64,
        /// Any member may rename the group, not only admins.
        members_may_rename: bool,
    },
    /// One row of `group members`.
    GroupMember {
        group: GroupRef,
        username: String,
        account_id: String,
        admin: bool,
        /// This account.
        me: bool,
    },
    /// Someone changed a group's membership or name.
    GroupChange {
        /// The group as it is after the change.
        group: GroupRef,
        change: GroupChangeKind,
        /// Who made the change.
        by: String,
        /// Whom it is about: created with, added, removed, promoted; for
        /// `left`, the one who left.
        members: Vec<String>,
        /// This account is among `members` (`removed`: it is out of the group).
        includes_me: bool,
        /// `renamed`: the name before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old_name: Option<String>,
        /// `superseded`: whether the change was made again on the winner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reissued: Option<bool>,
        /// `renamed`: the name the change gave (the group object carries
        /// the name the group has when the record is made).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_name: Option<String>,
        /// `restored`: the admin whose removal of this account the fork
        /// choice undid (absent when it was this account's own leave).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removed_by: Option<String>,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// `search`: a stored message whose text contains the query. The
    /// fields of `message`, plus the conversation it is in and whether it
    /// was sent or received.
    Found {
        /// The contact's name for a 1:1 message, the group's display name
        /// for a group message.
        conversation: String,
        direction: MessageDirection,
        /// Who wrote it (this account's username for a sent message).
        from: String,
        id: String,
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        received_at: OffsetDateTime,
        body: String,
        /// The group it was sent to; absent for a 1:1 message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupRef>,
    },
    /// `settings`: this device's privacy switches, as they are after the
    /// command.
    Settings {
        /// Whether reading a conversation sends read receipts.
        read_receipts: bool,
        /// Whether typing notices are sent (and others' shown).
        typing: bool,
    },
    /// `blocked`: one blocked contact.
    Blocked {
        username: String,
        account_id: String,
        /// How the contact is shown (as in `contact` records).
        display_name: String,
    },
    /// `devices`: one current device of the account.
    Device {
        device_id: u32,
        /// When the relay assigned the id.
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
        /// Its latest login to the relay, rounded down to the hour by the
        /// relay; absent if it never logged in.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "time::serde::rfc3339::option"
        )]
        last_seen_at: Option<OffsetDateTime>,
        /// Whether it is the device running this command.
        this_device: bool,
        /// Whether the account's signed device list names it (contacts
        /// encrypt only to listed devices).
        listed: bool,
    },
}

/// Whether a stored message was received or sent (`found` records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageDirection {
    Incoming,
    Outgoing,
}

/// A file in a message: what `file get` takes and what it will save.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The local id (16 hex digits) `file get` takes; never the key.
    pub id: String,
    /// The sanitised file name (safe to save under; still shown sanitised).
    pub name: String,
    /// Plaintext bytes.
    pub size: u64,
    /// The sender's MIME type (a hint, untrusted).
    pub media_type: String,
}

impl From<&umbra_client_core::FileInfo> for FileRef {
    fn from(info: &umbra_client_core::FileInfo) -> Self {
        Self {
            id: info.id.clone(),
            name: info.name.clone(),
            size: info.size,
            media_type: info.media_type.clone(),
        }
    }
}

/// Converts Unix milliseconds to a timestamp. Values outside the range a
/// timestamp can hold (a sender's clock is untrusted) become the Unix epoch
/// rather than an error, so one odd message cannot stop `receive`.
pub fn time_from_unix_ms(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
