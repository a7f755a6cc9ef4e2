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

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use time::OffsetDateTime;

use crate::output::{Delivery, Trust};
use crate::sanitize::SafeText;

/// Progress reports kept for ids not yet known locally (see
/// [`ChatState::message_queued`]); bounded so a flood of bogus receipts
/// cannot grow memory.
const MAX_EARLY_REPORTS: usize = 256;

/// Messages kept on screen per conversation. Older ones stay in the local
/// store; the view only has to stay small and fast to draw.
pub const MAX_MESSAGES_SHOWN: usize = 2_000;

/// Longest input line accepted, in characters. Far above any sane chat line,
/// low enough that a stuck key or a huge paste cannot exhaust memory.
pub const MAX_INPUT_CHARS: usize = 8 * 1024;

/// Who wrote a message and, for our own, how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    Incoming { read: bool },
    Outgoing(Outgoing),
}

/// The life of a message we sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    Progress(Delivery),
    Failed(SafeText),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// The message id; for our own messages a local id until the relay
    /// accepted it.
    pub id: String,
    pub direction: Direction,
    pub at: OffsetDateTime,
    pub body: SafeText,
}

/// A contact's new identity key, not yet accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    /// Exactly what is shown; accepting sends this back so the user can only
    /// ever accept the number they were shown.
    pub safety_number: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// The username as the client-core API wants it.
    pub username: String,
    pub display: SafeText,
    pub messages: Vec<ChatMessage>,
    pub unread: usize,
    pub trust: Trust,
    pub key_change: Option<KeyChange>,
    /// The contact said they are typing (ephemeral, cleared on their message).
    pub typing: bool,
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
        }
    }

    pub fn last_activity(&self) -> Option<OffsetDateTime> {
        self.messages.last().map(|m| m.at)
    }

    pub fn sending_blocked(&self) -> bool {
        self.key_change.is_some()
    }

    fn push(&mut self, message: ChatMessage) {
        self.messages.push(message);
        if self.messages.len() > MAX_MESSAGES_SHOWN {
            let excess = self.messages.len() - MAX_MESSAGES_SHOWN;
            self.messages.drain(..excess);
        }
    }
}

/// Applies a progress report: failures always show, progress only forward,
/// and a failed message never turns back into a delivered one.
fn advance(direction: &mut Direction, report: Outgoing) {
    let Direction::Outgoing(current) = direction else {
        return;
    };
    match (&*current, report) {
        (Outgoing::Progress(now), Outgoing::Progress(new)) if new > *now => {
            *current = Outgoing::Progress(new);
        }
        (Outgoing::Progress(_), failed @ Outgoing::Failed(_)) => *current = failed,
        _ => {}
    }
}

/// Link to the relay, as shown in the title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Online,
    Offline,
    /// Another client for this account connected and the relay dropped us.
    /// No retry: the two would keep knocking each other off.
    Replaced,
    /// The relay ended the session for good (e.g. the token was revoked).
    Closed,
}

impl Connection {
    /// Whether the link is gone until the user restarts umbra.
    pub fn ended(self) -> bool {
        matches!(self, Connection::Replaced | Connection::Closed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Info,
    Error,
}

/// A one-line notice above the input (errors, confirmations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub severity: Severity,
    pub text: SafeText,
    /// Connection notices disappear by themselves once the link is back.
    pub about_connection: bool,
}

/// What the event loop must do after a state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Encrypt and send `body` to `to`; report back with `local_id`.
    Send {
        to: String,
        local_id: String,
        body: String,
    },
    /// The user accepted this exact new safety number for `contact`.
    AcceptKey {
        contact: String,
        safety_number: String,
    },
    /// These incoming messages have been shown; send read receipts.
    MarkRead {
        contact: String,
        ids: Vec<String>,
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
    pub input: String,
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
    /// Progress that arrived before the send call returned the message id:
    /// the relay can answer faster than our own task reports back.
    early_reports: HashMap<String, Outgoing>,
}

impl ChatState {
    pub fn new(me: &str, server: &str, now: OffsetDateTime) -> Self {
        Self {
            me: SafeText::line(me),
            server: SafeText::line(server),
            conversations: Vec::new(),
            selected: None,
            input: String::new(),
            scroll: 0,
            connection: Connection::Connecting,
            closed_reason: None,
            notice: None,
            now,
            next_local_id: 0,
            early_reports: HashMap::new(),
        }
    }

    pub fn open(&self) -> Option<&Conversation> {
        let name = self.selected.as_deref()?;
        self.conversations.iter().find(|c| c.username == name)
    }

    fn position(&self, username: &str) -> Option<usize> {
        self.conversations
            .iter()
            .position(|c| c.username == username)
    }

    fn find_mut(&mut self, username: &str) -> Option<&mut Conversation> {
        self.conversations
            .iter_mut()
            .find(|c| c.username == username)
    }

    /// The conversation with `username`, created if new.
    fn conversation_mut(&mut self, username: &str) -> &mut Conversation {
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
    fn sort(&mut self) {
        self.conversations.sort_by(|a, b| {
            b.last_activity()
                .cmp(&a.last_activity())
                .then_with(|| a.username.cmp(&b.username))
        });
    }

    fn is_open(&self, username: &str) -> bool {
        self.selected.as_deref() == Some(username)
    }

    /// An incoming message. Returns a read receipt to send when it landed in
    /// the open conversation (the user is looking at it).
    pub fn receive_message(
        &mut self,
        from: &str,
        id: &str,
        body: &str,
        at: OffsetDateTime,
    ) -> Option<Action> {
        let open = self.is_open(from);
        let conversation = self.conversation_mut(from);
        if conversation.messages.iter().any(|m| m.id == id) {
            // At-least-once delivery: the relay may repeat a message.
            return None;
        }
        conversation.typing = false;
        conversation.push(ChatMessage {
            id: id.to_owned(),
            direction: Direction::Incoming { read: open },
            at,
            body: SafeText::multiline(body),
        });
        if !open {
            conversation.unread += 1;
        }
        self.sort();
        if self.selected.is_none() {
            return self.select(from);
        }
        open.then(|| Action::MarkRead {
            contact: from.to_owned(),
            ids: vec![id.to_owned()],
        })
    }

    /// Progress of one of our messages (relay acceptance or a receipt).
    /// Marks only move forward; progress for an id not yet known is kept
    /// until [`ChatState::message_queued`] introduces it.
    pub fn receipt(&mut self, from: &str, id: &str, status: Delivery) {
        self.report(from, id, Outgoing::Progress(status));
    }

    /// The relay refused message `id` for good.
    pub fn refused(&mut self, to: &str, id: &str, reason: &str) {
        self.report(to, id, Outgoing::Failed(SafeText::line(reason)));
    }

    fn report(&mut self, contact: &str, id: &str, report: Outgoing) {
        let message = self
            .find_mut(contact)
            .and_then(|c| c.messages.iter_mut().find(|m| m.id == id));
        match message {
            Some(message) => advance(&mut message.direction, report),
            None => {
                if self.early_reports.len() < MAX_EARLY_REPORTS {
                    self.early_reports.insert(id.to_owned(), report);
                }
            }
        }
    }

    /// client-core queued the message typed as `local_id` under `id`.
    pub fn message_queued(&mut self, to: &str, local_id: &str, id: &str) {
        let early = self.early_reports.remove(id);
        self.update_outgoing(to, local_id, |message| {
            message.id = id.to_owned();
            if let Some(report) = early {
                advance(&mut message.direction, report);
            }
        });
    }

    /// The relay accepted the message sent as `local_id`, known as `id`
    /// (both reports at once; the event loop gets them separately).
    #[cfg(test)]
    pub fn message_sent(&mut self, to: &str, local_id: &str, id: &str) {
        self.message_queued(to, local_id, id);
        self.receipt(to, id, Delivery::Sent);
    }

    /// Sending `local_id` failed locally; the text stays visible with the reason.
    pub fn message_failed(&mut self, to: &str, local_id: &str, reason: &str) {
        let reason = SafeText::line(reason);
        self.update_outgoing(to, local_id, |message| {
            message.direction = Direction::Outgoing(Outgoing::Failed(reason));
        });
    }

    /// A message from the stored history, oldest first (at start-up).
    pub fn load_message(&mut self, contact: &str, message: ChatMessage) {
        let conversation = self.conversation_mut(contact);
        if conversation.messages.iter().any(|m| m.id == message.id) {
            return;
        }
        if matches!(message.direction, Direction::Incoming { read: false }) {
            conversation.unread += 1;
        }
        conversation.push(message);
        self.sort();
    }

    /// A contact started or stopped typing.
    pub fn typing(&mut self, contact: &str, started: bool) {
        if let Some(conversation) = self.find_mut(contact) {
            conversation.typing = started;
        }
    }

    fn update_outgoing(&mut self, to: &str, local_id: &str, f: impl FnOnce(&mut ChatMessage)) {
        let message = self
            .find_mut(to)
            .and_then(|c| c.messages.iter_mut().find(|m| m.id == local_id));
        if let Some(message) = message {
            f(message);
        }
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

    pub fn set_notice(&mut self, severity: Severity, text: &str) {
        self.notice = Some(Notice {
            severity,
            text: SafeText::line(text),
            about_connection: false,
        });
    }

    /// The relay ended the session for good. Unlike a notice, the status
    /// line this produces cannot be replaced by later notices: it stays until
    /// the user quits.
    pub fn connection_ended(&mut self, connection: Connection, reason: &str) {
        self.connection = connection;
        self.closed_reason = Some(SafeText::line(reason));
        if self.notice.as_ref().is_some_and(|n| n.about_connection) {
            self.notice = None;
        }
    }

    /// The status line shown while the link is gone for good, most
    /// important words first; `wide` screens get the full explanation,
    /// narrow ones a version that fits in two lines of 40 columns.
    pub fn status_line(&self, wide: bool) -> Option<String> {
        let reason = self
            .closed_reason
            .as_ref()
            .map(SafeText::as_str)
            .unwrap_or("the session ended");
        match (self.connection, wide) {
            (Connection::Replaced, true) => Some(format!(
                "⚠ DISCONNECTED: {} connected from another umbra, which gets the messages now. \
                 Nothing is sent from here. Quit (Esc) and restart to take over.",
                self.me
            )),
            (Connection::Replaced, false) => Some(
                "⚠ DISCONNECTED: another umbra took over this account. Restart to reconnect."
                    .into(),
            ),
            (Connection::Closed, true) => Some(format!(
                "⚠ DISCONNECTED by the relay: {reason}. Nothing is sent from here. \
                 Quit (Esc) and restart umbra."
            )),
            (Connection::Closed, false) => {
                Some(format!("⚠ DISCONNECTED: {reason}. Restart umbra."))
            }
            _ => None,
        }
    }

    /// The relay link changed; a problem is shown until the link is back.
    pub fn set_connection(&mut self, connection: Connection, problem: Option<&str>) {
        self.connection = connection;
        self.closed_reason = None;
        match problem {
            Some(text) => {
                self.notice = Some(Notice {
                    severity: Severity::Error,
                    text: SafeText::line(text),
                    about_connection: true,
                });
            }
            None => {
                if self.notice.as_ref().is_some_and(|n| n.about_connection) {
                    self.notice = None;
                }
            }
        }
    }

    /// Opens a conversation; returns read receipts for what it revealed.
    pub fn select(&mut self, username: &str) -> Option<Action> {
        self.selected = Some(username.to_owned());
        self.scroll = 0;
        let conversation = self.conversation_mut(username);
        conversation.unread = 0;
        let ids: Vec<String> = conversation
            .messages
            .iter_mut()
            .filter_map(|m| match &mut m.direction {
                Direction::Incoming { read } if !*read => {
                    *read = true;
                    Some(m.id.clone())
                }
                _ => None,
            })
            .collect();
        (!ids.is_empty()).then(|| Action::MarkRead {
            contact: username.to_owned(),
            ids,
        })
    }

    /// Moves the selection `step` places through the list, wrapping.
    fn select_relative(&mut self, step: isize) -> Option<Action> {
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
        self.select(&name)
    }

    /// Applies one key press.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => Some(Action::Quit),
            KeyCode::Char('c') | KeyCode::Char('q') if ctrl => Some(Action::Quit),
            KeyCode::Char('a') if ctrl => self.accept_key(),
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                None
            }
            KeyCode::Char('w') if ctrl => {
                let kept = self.input.trim_end().rfind(' ').map_or(0, |i| i + 1);
                self.input.truncate(kept);
                None
            }
            KeyCode::Up => self.select_relative(-1),
            KeyCode::Down | KeyCode::Tab => self.select_relative(1),
            KeyCode::BackTab => self.select_relative(-1),
            KeyCode::PageUp => {
                self.scroll = self.scroll.saturating_add(5);
                None
            }
            KeyCode::PageDown => {
                self.scroll = self.scroll.saturating_sub(5);
                None
            }
            KeyCode::Backspace => {
                self.input.pop();
                None
            }
            // Ctrl-J is a line feed: what some terminals (and input typed
            // before raw mode began) send for Enter.
            KeyCode::Enter => self.submit(),
            KeyCode::Char('j') if ctrl => self.submit(),
            KeyCode::Char(c) if !ctrl => {
                self.type_text(&c.to_string());
                None
            }
            _ => None,
        }
    }

    /// Pasted or typed text goes into the input line, minus controls.
    pub fn type_text(&mut self, text: &str) {
        let clean = SafeText::line(text);
        let room = MAX_INPUT_CHARS.saturating_sub(self.input.chars().count());
        self.input.extend(clean.as_str().chars().take(room));
    }

    fn accept_key(&mut self) -> Option<Action> {
        let conversation = self.open()?;
        let change = conversation.key_change.as_ref()?;
        Some(Action::AcceptKey {
            contact: conversation.username.clone(),
            safety_number: change.safety_number.clone(),
        })
    }

    fn submit(&mut self) -> Option<Action> {
        let text = self.input.trim().to_owned();
        if text.is_empty() {
            return None;
        }
        if let Some(rest) = text.strip_prefix("/open ") {
            let name = rest.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                self.set_notice(Severity::Error, "usage: /open USERNAME");
                return None;
            }
            self.input.clear();
            let name = name.to_owned();
            let action = self.select(&name);
            self.sort();
            return action;
        }
        if self.connection.ended() {
            // Sending would reconnect and knock the other client off in
            // turn; the typed text is kept.
            self.set_notice(
                Severity::Error,
                "not sent: disconnected (see the red line); restart umbra to send",
            );
            return None;
        }
        let Some(conversation) = self.open() else {
            self.set_notice(
                Severity::Error,
                "no conversation open: type /open USERNAME first",
            );
            return None;
        };
        if conversation.sending_blocked() {
            let name = conversation.display.clone();
            self.set_notice(
                Severity::Error,
                &format!("not sent: {name}'s key changed; verify it, then press Ctrl-A to accept"),
            );
            return None;
        }
        let to = conversation.username.clone();
        self.next_local_id += 1;
        let local_id = format!("local-{}", self.next_local_id);
        let now = self.now;
        let conversation = self.conversation_mut(&to);
        conversation.push(ChatMessage {
            id: local_id.clone(),
            direction: Direction::Outgoing(Outgoing::Progress(Delivery::Pending)),
            at: now,
            body: SafeText::multiline(&text),
        });
        self.input.clear();
        self.scroll = 0;
        // An earlier complaint is resolved by a successful send; a
        // connection problem is not, and stays until the link is back.
        if self.notice.as_ref().is_some_and(|n| !n.about_connection) {
            self.notice = None;
        }
        self.sort();
        Some(Action::Send {
            to,
            local_id,
            body: text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn type_line(state: &mut ChatState, text: &str) -> Option<Action> {
        for c in text.chars() {
            state.handle_key(key(KeyCode::Char(c)));
        }
        state.handle_key(key(KeyCode::Enter))
    }

    fn state_with(contacts: &[&str]) -> ChatState {
        let mut state = ChatState::new("alice", "http://127.0.0.1:7878", NOW);
        for c in contacts {
            state.add_contact(c, Trust::Unverified);
        }
        state
    }

    #[test]
    fn typing_and_enter_sends_to_the_open_conversation() {
        let mut state = state_with(&["bob"]);
        let action = type_line(&mut state, "hello bob");
        assert_eq!(
            action,
            Some(Action::Send {
                to: "bob".into(),
                local_id: "local-1".into(),
                body: "hello bob".into()
            })
        );
        assert!(state.input.is_empty());
        let message = &state.open().unwrap().messages[0];
        assert_eq!(
            message.direction,
            Direction::Outgoing(Outgoing::Progress(Delivery::Pending))
        );
    }

    #[test]
    fn delivery_marks_advance_and_never_go_back() {
        let mut state = state_with(&["bob"]);
        type_line(&mut state, "hi");
        state.message_sent("bob", "local-1", "m1");
        state.receipt("bob", "m1", Delivery::Read);
        state.receipt("bob", "m1", Delivery::Delivered);
        assert_eq!(
            state.open().unwrap().messages[0].direction,
            Direction::Outgoing(Outgoing::Progress(Delivery::Read))
        );
    }

    #[test]
    fn relay_acceptance_that_outruns_the_send_call_is_not_lost() {
        let mut state = state_with(&["bob"]);
        type_line(&mut state, "hi");
        state.receipt("bob", "m1", Delivery::Sent);
        state.message_queued("bob", "local-1", "m1");
        assert_eq!(
            state.open().unwrap().messages[0].direction,
            Direction::Outgoing(Outgoing::Progress(Delivery::Sent))
        );
    }

    #[test]
    fn relay_refusal_marks_the_message_failed_for_good() {
        let mut state = state_with(&["bob"]);
        type_line(&mut state, "hi");
        state.message_queued("bob", "local-1", "m1");
        state.refused("bob", "m1", "queue full");
        state.receipt("bob", "m1", Delivery::Delivered);
        assert_eq!(
            state.open().unwrap().messages[0].direction,
            Direction::Outgoing(Outgoing::Failed(SafeText::line("queue full")))
        );
    }

    #[test]
    fn early_reports_are_bounded() {
        let mut state = state_with(&["bob"]);
        for i in 0..(MAX_EARLY_REPORTS + 50) {
            state.receipt("bob", &format!("bogus-{i}"), Delivery::Read);
        }
        assert_eq!(state.early_reports.len(), MAX_EARLY_REPORTS);
    }

    #[test]
    fn history_counts_unread_and_skips_duplicates() {
        let mut state = state_with(&[]);
        let message = ChatMessage {
            id: "h1".into(),
            direction: Direction::Incoming { read: false },
            at: NOW,
            body: SafeText::multiline("old"),
        };
        state.load_message("bob", message.clone());
        state.load_message("bob", message);
        assert_eq!(state.conversations[0].messages.len(), 1);
        assert_eq!(state.conversations[0].unread, 1);
    }

    #[test]
    fn typing_indicator_clears_when_the_message_arrives() {
        let mut state = state_with(&["bob"]);
        state.typing("bob", true);
        assert!(state.open().unwrap().typing);
        state.receive_message("bob", "b1", "hi", NOW);
        assert!(!state.open().unwrap().typing);
    }

    #[test]
    fn failed_send_keeps_the_text_and_shows_why() {
        let mut state = state_with(&["bob"]);
        type_line(&mut state, "hi");
        state.message_failed("bob", "local-1", "relay unreachable");
        let message = &state.open().unwrap().messages[0];
        assert_eq!(message.body.as_str(), "hi");
        assert_eq!(
            message.direction,
            Direction::Outgoing(Outgoing::Failed(SafeText::line("relay unreachable")))
        );
    }

    #[test]
    fn messages_elsewhere_count_as_unread_until_opened() {
        let mut state = state_with(&["bob", "carol"]);
        assert_eq!(state.selected.as_deref(), Some("bob"));
        assert_eq!(state.receive_message("carol", "c1", "one", NOW), None);
        assert_eq!(state.receive_message("carol", "c2", "two", NOW), None);
        let carol = state.conversations.iter().find(|c| c.username == "carol");
        assert_eq!(carol.unwrap().unread, 2);
        let action = state.select("carol");
        assert_eq!(
            action,
            Some(Action::MarkRead {
                contact: "carol".into(),
                ids: vec!["c1".into(), "c2".into()]
            })
        );
        assert_eq!(state.open().unwrap().unread, 0);
    }

    #[test]
    fn message_in_the_open_conversation_is_read_at_once() {
        let mut state = state_with(&["bob"]);
        let action = state.receive_message("bob", "b1", "hi", NOW);
        assert_eq!(
            action,
            Some(Action::MarkRead {
                contact: "bob".into(),
                ids: vec!["b1".into()]
            })
        );
        assert_eq!(state.open().unwrap().unread, 0);
    }

    #[test]
    fn duplicate_deliveries_are_shown_once() {
        let mut state = state_with(&["bob", "carol"]);
        state.receive_message("carol", "c1", "one", NOW);
        state.receive_message("carol", "c1", "one", NOW);
        let carol = state.conversations.iter().find(|c| c.username == "carol");
        assert_eq!(carol.unwrap().messages.len(), 1);
        assert_eq!(carol.unwrap().unread, 1);
    }

    #[test]
    fn most_recent_conversation_is_listed_first() {
        let mut state = state_with(&["bob", "carol"]);
        state.receive_message("carol", "c1", "one", NOW);
        assert_eq!(state.conversations[0].username, "carol");
        // The open conversation stays open although its index moved.
        assert_eq!(state.selected.as_deref(), Some("bob"));
    }

    #[test]
    fn key_change_blocks_sending_until_accepted_with_the_shown_number() {
        let mut state = state_with(&["bob"]);
        state.key_changed("bob", "11111 22222");
        assert_eq!(type_line(&mut state, "secret plan"), None);
        assert_eq!(state.input, "secret plan", "blocked text is kept");
        assert!(state.open().unwrap().messages.is_empty());
        assert_eq!(state.notice.as_ref().unwrap().severity, Severity::Error);

        assert_eq!(
            state.handle_key(ctrl('a')),
            Some(Action::AcceptKey {
                contact: "bob".into(),
                safety_number: "11111 22222".into()
            })
        );
        // Nothing is unblocked until the event loop confirms the acceptance.
        assert!(state.open().unwrap().sending_blocked());
        state.key_accepted("bob");
        assert!(matches!(
            state.handle_key(key(KeyCode::Enter)),
            Some(Action::Send { .. })
        ));
    }

    #[test]
    fn a_replaced_connection_blocks_sending_and_keeps_its_status_line() {
        let mut state = state_with(&["bob"]);
        state.select("bob");
        state.connection_ended(
            Connection::Replaced,
            "another umbra for this account connected",
        );
        for wide in [true, false] {
            assert!(state.status_line(wide).unwrap().contains("another umbra"));
        }
        // Sending would reconnect and knock the other client off.
        assert_eq!(type_line(&mut state, "still there?"), None);
        assert_eq!(state.input, "still there?", "typed text is kept");
        state.set_notice(Severity::Info, "something else");
        assert!(state.status_line(true).is_some(), "notices do not hide it");
        // A fresh connection (after a restart of the client) clears it.
        state.set_connection(Connection::Online, None);
        assert_eq!(state.status_line(true), None);
    }

    #[test]
    fn a_closed_connection_says_why() {
        let mut state = state_with(&["bob"]);
        state.connection_ended(Connection::Closed, "token revoked\x1b[2J");
        for wide in [true, false] {
            let line = state.status_line(wide).unwrap();
            assert!(line.contains("token revoked"), "{line}");
            assert!(!line.contains('\x1b'), "{line}");
        }
    }

    #[test]
    fn ctrl_a_without_a_key_change_does_nothing() {
        let mut state = state_with(&["bob"]);
        assert_eq!(state.handle_key(ctrl('a')), None);
    }

    #[test]
    fn open_command_starts_a_conversation() {
        let mut state = state_with(&[]);
        assert_eq!(type_line(&mut state, "hi"), None, "nobody to send to");
        state.input.clear();
        assert_eq!(type_line(&mut state, "/open dave"), None);
        assert_eq!(state.selected.as_deref(), Some("dave"));
        assert!(
            matches!(type_line(&mut state, "yo"), Some(Action::Send { to, .. }) if to == "dave")
        );
    }

    #[test]
    fn arrows_cycle_through_conversations() {
        let mut state = state_with(&["bob", "carol", "dave"]);
        state.handle_key(key(KeyCode::Down));
        assert_eq!(state.selected.as_deref(), Some("carol"));
        state.handle_key(key(KeyCode::Up));
        state.handle_key(key(KeyCode::Up));
        assert_eq!(state.selected.as_deref(), Some("dave"));
    }

    #[test]
    fn connection_problems_clear_when_the_link_is_back_but_other_notices_stay() {
        let mut state = state_with(&["bob"]);
        state.set_connection(Connection::Connecting, Some("relay connection lost"));
        assert!(state.notice.is_some());
        state.set_connection(Connection::Online, None);
        assert_eq!(state.notice, None);
        assert_eq!(state.connection, Connection::Online);

        state.set_notice(Severity::Error, "could not decrypt");
        state.set_connection(Connection::Online, None);
        assert!(state.notice.is_some());
    }

    #[test]
    fn the_view_keeps_only_the_newest_messages() {
        let mut state = state_with(&["bob", "carol"]);
        for i in 0..(MAX_MESSAGES_SHOWN + 5) {
            state.receive_message("carol", &format!("c{i}"), "x", NOW);
        }
        let carol = state
            .conversations
            .iter()
            .find(|c| c.username == "carol")
            .unwrap();
        assert_eq!(carol.messages.len(), MAX_MESSAGES_SHOWN);
        assert_eq!(carol.messages[0].id, "c5");
        assert_eq!(
            carol.unread,
            MAX_MESSAGES_SHOWN + 5,
            "unread counts every message"
        );
    }

    #[test]
    fn quit_keys() {
        let mut state = state_with(&[]);
        assert_eq!(state.handle_key(key(KeyCode::Esc)), Some(Action::Quit));
        assert_eq!(state.handle_key(ctrl('c')), Some(Action::Quit));
    }

    #[test]
    fn pasted_controls_never_reach_the_input() {
        let mut state = state_with(&["bob"]);
        state.type_text("a\x1b[2Jb\nc");
        assert_eq!(state.input, "ab c");
    }

    #[test]
    fn input_is_bounded() {
        let mut state = state_with(&["bob"]);
        state.type_text(&"x".repeat(MAX_INPUT_CHARS + 10));
        assert_eq!(state.input.chars().count(), MAX_INPUT_CHARS);
    }

    #[test]
    fn ctrl_w_deletes_the_last_word() {
        let mut state = state_with(&["bob"]);
        state.type_text("one two three");
        state.handle_key(ctrl('w'));
        assert_eq!(state.input, "one two ");
    }
}
