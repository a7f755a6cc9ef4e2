//! The conversation list and the open conversation: who is listed, in what
//! order, which one is open, and each contact's trust and pending key change.
//!
//! It must never lose track of the open conversation when the list re-sorts
//! (selection is by username, not index), and must never clear a key change
//! except when the event loop confirms the new key was accepted.

use time::OffsetDateTime;

use super::{Action, ChatMessage, ChatState};
use crate::output::Trust;
use crate::sanitize::SafeText;

/// Messages kept on screen per conversation. Older ones stay in the local
/// store; the view only has to stay small and fast to draw.
pub const MAX_MESSAGES_SHOWN: usize = 2_000;

/// A contact's new identity key, not yet accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    /// Exactly what is shown; accepting sends this back so the user can only
    /// ever accept the number they were shown.
    pub safety_number: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// The key the state finds it by: the username as the client-core API
    /// wants it, or for a group `group:` and its id
    /// ([`super::group_key`]; usernames have no `:`, so the two never meet).
    pub username: String,
    pub display: SafeText,
    pub messages: Vec<ChatMessage>,
    pub unread: usize,
    pub trust: Trust,
    pub key_change: Option<KeyChange>,
    /// The contact said they are typing (ephemeral, cleared on their message).
    pub typing: bool,
    /// Set for a group conversation: its members and whether we are in it.
    pub group: Option<super::GroupPanel>,
    /// The disappearing-message timer in seconds, 0 off ([`super::disappear`]).
    pub disappearing: u32,
}

impl Conversation {
    fn new(username: &str) -> Self {
        Self {
            username: username.to_owned(),
            display: SafeText::line(username),
            messages: Vec::new(),
            unread: 0,
            trust: Trust::Unverified,
            key_change: None,
            typing: false,
            group: None,
            disappearing: 0,
        }
    }

    pub fn last_activity(&self) -> Option<OffsetDateTime> {
        self.messages.last().map(|m| m.at)
    }

    /// Sending is blocked by a key change, or in a group we are no
    /// longer in.
    pub fn sending_blocked(&self) -> bool {
        self.key_change.is_some() || self.group.as_ref().is_some_and(|g| !g.active)
    }

    pub(super) fn push(&mut self, message: ChatMessage) {
        self.messages.push(message);
        if self.messages.len() > MAX_MESSAGES_SHOWN {
            let excess = self.messages.len() - MAX_MESSAGES_SHOWN;
            self.messages.drain(..excess);
        }
    }
}

impl ChatState {
    pub fn open(&self) -> Option<&Conversation> {
        let name = self.selected.as_deref()?;
        self.conversations.iter().find(|c| c.username == name)
    }

    fn position(&self, username: &str) -> Option<usize> {
        self.conversations
            .iter()
            .position(|c| c.username == username)
    }

    pub(super) fn find_mut(&mut self, username: &str) -> Option<&mut Conversation> {
        self.conversations
            .iter_mut()
            .find(|c| c.username == username)
    }

    /// The conversation with `username`, created if new.
    pub(super) fn conversation_mut(&mut self, username: &str) -> &mut Conversation {
        let index = match self.position(username) {
            Some(i) => i,
            None => {
                self.conversations.push(Conversation::new(username));
                self.conversations.len() - 1
            }
        };
        &mut self.conversations[index]
    }

    /// Adds a contact without messages (from the contact list at start).
    pub fn add_contact(&mut self, username: &str, trust: Trust) {
        let conversation = self.conversation_mut(username);
        conversation.trust = trust;
        self.sort();
        if self.selected.is_none() {
            self.selected = self.conversations.first().map(|c| c.username.clone());
        }
    }

    /// Most recent first; contacts without messages after, by name.
    pub(super) fn sort(&mut self) {
        self.conversations.sort_by(|a, b| {
            b.last_activity()
                .cmp(&a.last_activity())
                .then_with(|| a.username.cmp(&b.username))
        });
    }

    pub(super) fn is_open(&self, username: &str) -> bool {
        self.selected.as_deref() == Some(username)
    }

    /// A contact's identity key changed: warn and block sending.
    pub fn key_changed(&mut self, contact: &str, safety_number: &str) {
        let conversation = self.conversation_mut(contact);
        conversation.trust = Trust::Changed;
        conversation.key_change = Some(KeyChange {
            safety_number: safety_number.to_owned(),
        });
    }

    /// The new key was accepted (here or by `umbra verify --accept`).
    pub fn key_accepted(&mut self, contact: &str) {
        if let Some(conversation) = self.find_mut(contact) {
            conversation.key_change = None;
            conversation.trust = Trust::Unverified;
        }
    }

    /// Opens a conversation on purpose (`/open`); returns read receipts
    /// for what it revealed.
    pub fn select(&mut self, username: &str) -> Option<Action> {
        self.browse(username);
        self.settle_open();
        self.read_open()
    }

    /// Makes `username` the selected conversation without reading it: it
    /// counts as read only after the dwell ([`super::reading`]).
    pub fn browse(&mut self, username: &str) {
        self.selected = Some(username.to_owned());
        self.scroll = 0;
        self.conversation_mut(username);
        self.start_dwell();
    }

    /// Moves the selection `step` places through the list, wrapping.
    pub(super) fn select_relative(&mut self, step: isize) -> Option<Action> {
        let len = self.conversations.len();
        if len == 0 {
            return None;
        }
        let current = self
            .selected
            .as_deref()
            .and_then(|name| self.position(name))
            .unwrap_or(0);
        let len_i = isize::try_from(len).unwrap_or(isize::MAX);
        let current_i = isize::try_from(current).unwrap_or(0);
        let next = usize::try_from((current_i + step).rem_euclid(len_i)).unwrap_or(0);
        let name = self.conversations.get(next)?.username.clone();
        // Passing over a conversation reads nothing; dwelling on it does.
        self.browse(&name);
        None
    }
}
