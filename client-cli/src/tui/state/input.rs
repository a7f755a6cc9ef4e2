//! The input line and the keyboard: typing, editing, `/open`, accepting a
//! changed key and sending what was typed.
//!
//! It must never let control characters into the input line, never grow it
//! past [`MAX_INPUT_CHARS`], and never return an `Action::Send` for a
//! contact whose key change has not been accepted or after the relay ended
//! the session.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{Action, ChatMessage, ChatState, Direction, Outgoing, Severity};
use crate::output::Delivery;
use crate::sanitize::SafeText;

/// Longest input line accepted, in characters. Far above any sane chat line,
/// low enough that a stuck key or a huge paste cannot exhaust memory.
pub const MAX_INPUT_CHARS: usize = 8 * 1024;

impl ChatState {
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
            // A group is opened by the name it is shown under; anything
            // else names a contact.
            let name = self
                .conversations
                .iter()
                .find(|c| c.group.is_some() && c.display.as_str() == name)
                .map_or_else(|| name.to_owned(), |c| c.username.clone());
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
        if conversation.group.as_ref().is_some_and(|g| !g.active) {
            let name = conversation.display.clone();
            self.set_notice(
                Severity::Error,
                &format!("not sent: you are no longer a member of {name}"),
            );
            return None;
        }
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
            from: None,
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
