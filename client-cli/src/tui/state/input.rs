//! The keyboard: editing the draft, slash commands, the help screen, the
//! discard-draft question and other y/n questions, accepting a changed key and sending.
//!
//! [`KEYS`] is the list the help screen shows; it sits next to
//! [`ChatState::handle_key`] so the two are changed together.
//!
//! It must never let control characters other than a line break into the
//! draft, never send a line starting with `/` unless it was escaped as
//! `//`, never drop a non-empty draft without asking, and never return an
//! `Action::Send` for a contact whose key change has not been accepted or
//! after the relay ended the session.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::commands::{parse, Parsed};
use super::{Action, ChatMessage, ChatState, Direction, Outgoing, Severity};
use crate::output::Delivery;
use crate::sanitize::SafeText;

#[cfg(test)]
pub use super::editor::MAX_INPUT_CHARS;

/// Keys and what they do, as the help screen lists them.
pub const KEYS: &[(&str, &str)] = &[
    ("Enter", "send the draft (or run the /command)"),
    ("Alt-Enter, Shift-Enter", "new line in the draft"),
    (
        "←/→, Home/End, Ctrl-E",
        "move in the draft (Home/End: this line)",
    ),
    ("Ctrl-←/→, Alt-b/Alt-f", "move by word"),
    ("Backspace, Delete", "delete before / at the cursor"),
    (
        "Ctrl-W, Ctrl-U",
        "delete the word before / all before the cursor",
    ),
    ("Ctrl-P, Ctrl-N", "previous / next sent line (this session)"),
    ("↑/↓, Tab/Shift-Tab", "switch conversation"),
    ("PgUp/PgDn", "scroll the conversation"),
    ("Ctrl-A", "accept a changed key (after comparing numbers)"),
    ("?", "this help, when the draft is empty"),
    ("//text", "send a message that starts with /"),
    (
        "Esc, Ctrl-C, Ctrl-Q",
        "quit (asks first if a draft would be lost)",
    ),
];

/// Lines the help screen moves per PgUp/PgDn.
const HELP_PAGE: usize = 5;

impl ChatState {
    /// Applies one key press.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        if self.confirm_discard {
            return self.answer_discard(key.code, ctrl);
        }
        if self.confirm.is_some() {
            let yes = matches!(key.code, KeyCode::Char('y' | 'Y')) && !ctrl;
            return self.answer_confirm(yes);
        }
        if let Some(scroll) = self.help {
            return self.help_key(key.code, ctrl, scroll);
        }
        match key.code {
            KeyCode::Esc => return self.quit(),
            KeyCode::Char('c') | KeyCode::Char('q') if ctrl => return self.quit(),
            KeyCode::Char('a') if ctrl => return self.accept_key(),
            KeyCode::Char('e') if ctrl => self.input.end(),
            KeyCode::Char('u') if ctrl => self.input.kill_to_start(),
            KeyCode::Char('w') if ctrl => self.input.delete_word_before(),
            KeyCode::Char('p') if ctrl => self.input.history_previous(),
            KeyCode::Char('n') if ctrl => self.input.history_next(),
            KeyCode::Left if ctrl || alt => self.input.word_left(),
            KeyCode::Right if ctrl || alt => self.input.word_right(),
            KeyCode::Char('b') if alt && !ctrl => self.input.word_left(),
            KeyCode::Char('f') if alt && !ctrl => self.input.word_right(),
            KeyCode::Left => self.input.left(),
            KeyCode::Right => self.input.right(),
            KeyCode::Home => self.input.home(),
            KeyCode::End => self.input.end(),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::Up => return self.select_relative(-1),
            KeyCode::Down | KeyCode::Tab => return self.select_relative(1),
            KeyCode::BackTab => return self.select_relative(-1),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(5),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(5),
            // Alt-Enter is what terminals report reliably; Shift-Enter only
            // arrives where the terminal distinguishes it.
            KeyCode::Enter if alt || shift => self.input.insert("\n"),
            // Ctrl-J is a line feed: what some terminals (and input typed
            // before raw mode began) send for Enter.
            KeyCode::Enter => return self.submit(),
            KeyCode::Char('j') if ctrl => return self.submit(),
            KeyCode::Char('?') if !ctrl && self.input.is_empty() => self.help = Some(0),
            KeyCode::Char(c) if !ctrl => self.type_text(&c.to_string()),
            _ => {}
        }
        None
    }

    /// Typed text goes into the draft at the cursor, minus controls and
    /// line breaks.
    pub fn type_text(&mut self, text: &str) {
        self.input.insert(SafeText::line(text).as_str());
    }

    /// A bracketed paste keeps its line breaks (it is sent as one message
    /// with them); other controls are dropped.
    pub fn paste(&mut self, text: &str) {
        if self.confirm_discard || self.confirm.is_some() || self.help.is_some() {
            return;
        }
        let clean = SafeText::multiline(&text.replace("\r\n", "\n"));
        self.input.insert(clean.as_str());
    }

    fn quit(&mut self) -> Option<Action> {
        if self.input.text().trim().is_empty() {
            return Some(Action::Quit);
        }
        self.confirm_discard = true;
        None
    }

    /// `y` (or Ctrl-C again) drops the draft and quits; anything else
    /// keeps it.
    fn answer_discard(&mut self, code: KeyCode, ctrl: bool) -> Option<Action> {
        self.confirm_discard = false;
        match code {
            KeyCode::Char('y') | KeyCode::Char('Y') if !ctrl => Some(Action::Quit),
            KeyCode::Char('c') if ctrl => Some(Action::Quit),
            _ => None,
        }
    }

    fn help_key(&mut self, code: KeyCode, ctrl: bool, scroll: usize) -> Option<Action> {
        match code {
            KeyCode::Char('c') | KeyCode::Char('q') if ctrl => return self.quit(),
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') | KeyCode::Char('?') => {
                self.help = None
            }
            KeyCode::Up => self.help = Some(scroll.saturating_sub(1)),
            KeyCode::Down => self.help = Some(scroll.saturating_add(1)),
            KeyCode::PageUp => self.help = Some(scroll.saturating_sub(HELP_PAGE)),
            KeyCode::PageDown => self.help = Some(scroll.saturating_add(HELP_PAGE)),
            _ => {}
        }
        None
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
        let typed = self.input.text().trim().to_owned();
        if typed.is_empty() {
            return None;
        }
        let text = match parse(&typed) {
            Parsed::Command(command, args) => {
                return match command.run(self, args) {
                    Ok(action) => {
                        self.input.commit_to_history(&typed);
                        action
                    }
                    Err(error) => {
                        self.set_notice(Severity::Error, &error);
                        None
                    }
                };
            }
            Parsed::Unknown(name) => {
                // Never sent: a typo'd command is not a message.
                self.set_notice(
                    Severity::Error,
                    &format!("unknown command /{name}: /help lists them; //text sends /text"),
                );
                return None;
            }
            Parsed::Message(text) => text.to_owned(),
        };
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
            about: Default::default(),
            file: None,
        });
        self.input.commit_to_history(&typed);
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
