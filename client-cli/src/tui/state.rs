//! The chat screen as plain data: conversations, messages, the input line and
//! warnings, plus the pure transitions that keyboard input and client events
//! cause.
//!
//! [`ChatState`] knows nothing about terminals or the network, so every rule
//! of the screen — unread counts, delivery marks, the send block after a key
//! change — is tested without either. Side effects are returned as
//! [`Action`]s for the event loop to carry out.
//!
//! It must never hold contact-controlled text in displayable form except as
//! [`SafeText`], and must never let a message leave (an `Action::Send`) for a
//! contact whose key change has not been accepted.
//!
//! Split by concept: [`conversations`] is the list and the open one,
//! [`messages`] what arrives and how far our own got, [`groups`] what is
//! particular to group conversations (members, changes shown inline),
//! [`reading`] when a conversation counts as read and when to alert,
//! [`status`] the relay link and notices, [`input`] the keys, [`editor`]
//! the draft and its cursor, [`commands`] the slash commands, [`about`] replies, reactions, edits
//! and deletes, [`erase`] deleting a whole conversation, [`disappear`] its
//! disappearing-message timer, [`files`] `/file` and `/save`, [`refused`] the changes to them that were not applied, [`search`] `/search` results, [`typing`] our typing notices; this file holds the state itself and the [`Action`]s it asks for.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::sanitize::SafeText;

mod about;
#[cfg(test)]
mod about_tests;
mod commands;
mod conversations;
mod disappear;
#[cfg(test)]
mod disappear_tests;
mod editor;
mod erase;
#[cfg(test)]
mod erase_tests;
mod files;
#[cfg(test)]
mod files_tests;
#[cfg(test)]
mod group_tests;
mod groups;
mod input;
#[cfg(test)]
mod input_tests;
mod messages;
mod reading;
#[cfg(test)]
mod reading_tests;
mod refused;
mod search;
#[cfg(test)]
mod search_tests;
mod status;
#[cfg(test)]
mod tests;
mod typing;

pub use about::{About, ChangeRequest};
pub use commands::COMMANDS;
pub use conversations::Conversation;
pub use editor::InputLine;
pub use erase::Confirm;
pub use files::{human_size, FileView};
pub use groups::{group_id_of, group_key, GroupPanel, MemberInput};
pub use input::KEYS;
pub use messages::{ChatMessage, Direction, Outgoing};
pub use search::{SearchHit, SEARCH_SHOWN};
pub use status::{Connection, Notice, Severity};

/// What the event loop must do after a state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Encrypt and send `body` to `to` (a username, or a group's key:
    /// [`group_key`]); report back with `local_id`.
    Send {
        to: String,
        local_id: String,
        body: String,
    },
    /// Send `body` to `to` as a reply quoting message `target`.
    Reply {
        to: String,
        local_id: String,
        body: String,
        target: String,
    },
    /// Send a reaction, an edit or a delete for everyone.
    Change(ChangeRequest),
    /// Tell `to` (a username or a group's key) we started or stopped
    /// typing ([`typing`]).
    Typing {
        to: String,
        started: bool,
    },
    /// The user accepted this exact new safety number for `contact`.
    AcceptKey {
        contact: String,
        safety_number: String,
    },
    /// Block (`blocked`) or unblock the contact `contact` (`/block`,
    /// `/unblock`).
    Block {
        contact: String,
        blocked: bool,
    },
    /// Search the stored messages for `text` (`/search`).
    Search {
        text: String,
    },
    /// These incoming messages have been shown; send read receipts
    /// (`contact` is a group's key for a group conversation).
    MarkRead {
        contact: String,
        ids: Vec<String>,
    },
    /// Show the account's devices in the notice line (`/devices`).
    ListDevices,
    /// Delete the 1:1 conversation with `contact` here, or for
    /// `everyone` (`/delete-conversation`, once confirmed).
    DeleteConversation {
        contact: String,
        everyone: bool,
    },
    /// Set the disappearing-message timer of the conversation with
    /// `contact` to `seconds`, 0 off (`/disappear`).
    SetDisappearing {
        contact: String,
        seconds: u32,
    },
    /// Upload the file at `path` and send it to `to` (`/file`); report
    /// back with `local_id`.
    SendFile {
        to: String,
        local_id: String,
        path: std::path::PathBuf,
    },
    /// Save file `id` (shown as `name`) into `dest`, the current
    /// directory if `None` (`/save`).
    SaveFile {
        id: String,
        name: String,
        dest: Option<std::path::PathBuf>,
    },
    Quit,
}

/// Everything the chat screen shows.
#[derive(Clone, Debug)]
pub struct ChatState {
    pub me: SafeText,
    pub server: SafeText,
    /// Most recent activity first.
    pub conversations: Vec<Conversation>,
    /// The open conversation, by username (indices move when lists re-sort).
    pub selected: Option<String>,
    /// The draft being typed, with its cursor and the session's history.
    pub input: InputLine,
    /// The help screen is open, scrolled down this many lines.
    pub help: Option<usize>,
    /// Quitting was asked for with a draft typed: "discard draft? y/n".
    pub confirm_discard: bool,
    /// A question the next key answers (`/delete-conversation`'s).
    pub confirm: Option<Confirm>,
    /// Lines scrolled up from the newest message.
    pub scroll: usize,
    pub connection: Connection,
    /// The relay's reason when `connection` is `Closed`.
    pub closed_reason: Option<SafeText>,
    pub notice: Option<Notice>,
    /// The clock used for "today or earlier" decisions; set by the event loop
    /// so rendering is deterministic.
    pub now: OffsetDateTime,
    next_local_id: u64,
    /// Numbers the inline change lines (apart from `next_local_id`, so a
    /// change never shifts the ids of messages being sent).
    next_change_id: u64,
    /// Progress that arrived before the send call returned the message id:
    /// the relay can answer faster than our own task reports back.
    early_reports: HashMap<String, Outgoing>,
    /// How long the open conversation has been looked at ([`reading`]).
    viewing: Option<reading::Viewing>,
    /// The terminal has focus (true unless it reports losing it).
    pub focused: bool,
    /// A message arrived unseen since the event loop last looked.
    alert: bool,
    /// The last such message, for a desktop notification
    /// ([`reading::Arrived`]).
    alert_about: Option<reading::Arrived>,
    /// Whom we last told we are typing, and when ([`typing`]).
    typing_sent: Option<typing::TypingSent>,
}

impl ChatState {
    pub fn new(me: &str, server: &str, now: OffsetDateTime) -> Self {
        Self {
            me: SafeText::line(me),
            server: SafeText::line(server),
            conversations: Vec::new(),
            selected: None,
            input: InputLine::default(),
            help: None,
            confirm_discard: false,
            confirm: None,
            scroll: 0,
            connection: Connection::Connecting,
            closed_reason: None,
            notice: None,
            now,
            next_local_id: 0,
            next_change_id: 0,
            early_reports: HashMap::new(),
            viewing: None,
            focused: true,
            alert: false,
            alert_about: None,
            typing_sent: None,
        }
    }
}
