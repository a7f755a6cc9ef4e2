//! When the open conversation counts as read, and when an incoming message
//! should alert the user (terminal bell, unread count in the window title).
//!
//! A conversation is read once the user has plainly looked at it: it was
//! opened on purpose (`/open`), or it stayed the selected conversation for
//! [`READ_DWELL`] while the terminal had focus, or a key was pressed in it
//! (typing, scrolling). Moving the selection with `↑`/`↓`/`Tab` only starts
//! the dwell.
//!
//! It must never send a read receipt for a conversation the selection only
//! passed over, nor while the terminal reports it has lost focus or the help
//! screen hides the conversation.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use time::{Duration, OffsetDateTime};

use super::{Action, ChatState, Direction};

/// How long a conversation must stay selected, with focus, before it counts
/// as read. Long enough that stepping through the list with `↓` (a few key
/// repeats a second) reads nothing on the way; short enough that stopping to
/// look reads it before the contact wonders whether it arrived.
pub const READ_DWELL: Duration = Duration::milliseconds(1_500);

/// How long the open conversation has been looked at.
#[derive(Clone, Debug)]
pub(super) struct Viewing {
    /// The conversation this is about; stale once the selection moves.
    key: String,
    /// When it became selected (or focus came back).
    since: OffsetDateTime,
    /// The user has looked at it: dwell passed, a key pressed, or opened
    /// on purpose. New messages in it are then read at once.
    settled: bool,
}

impl ChatState {
    /// The viewing record of the open conversation, started now when the
    /// selection moved since (so code that sets `selected` directly never
    /// skips the dwell).
    fn viewing_open(&mut self) -> Option<&mut Viewing> {
        let key = self.selected.clone()?;
        if self.viewing.as_ref().is_none_or(|v| v.key != key) {
            self.viewing = Some(Viewing {
                key,
                since: self.now,
                settled: false,
            });
        }
        self.viewing.as_mut()
    }

    /// The selection moved to the open conversation without the user
    /// choosing it: the dwell starts over.
    pub(super) fn start_dwell(&mut self) {
        self.viewing = None;
        self.viewing_open();
    }

    /// The open conversation was chosen on purpose: it is read at once.
    pub(super) fn settle_open(&mut self) {
        if let Some(viewing) = self.viewing_open() {
            viewing.settled = true;
        }
    }

    /// Whether a message arriving in `key` now is shown to someone looking.
    pub(super) fn is_being_read(&self, key: &str) -> bool {
        self.focused
            && self.help.is_none()
            && self.is_open(key)
            && self
                .viewing
                .as_ref()
                .is_some_and(|v| v.key == key && v.settled)
    }

    /// Marks every unread message of the open conversation read and returns
    /// the receipts to send.
    pub(super) fn read_open(&mut self) -> Option<Action> {
        let key = self.selected.clone()?;
        let conversation = self.find_mut(&key)?;
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
        (!ids.is_empty()).then_some(Action::MarkRead { contact: key, ids })
    }

    /// Advances the clock to `now` and reads the open conversation if the
    /// user has looked at it long enough. The event loop calls this after
    /// every event and when [`ChatState::read_due_at`] passes.
    pub fn settle(&mut self, now: OffsetDateTime) -> Option<Action> {
        self.now = now;
        if !self.focused || self.help.is_some() {
            return None;
        }
        let viewing = self.viewing_open()?;
        // A wall clock set back must not stretch the dwell without end.
        if viewing.since > now {
            viewing.since = now;
        }
        if !viewing.settled && now - viewing.since >= READ_DWELL {
            viewing.settled = true;
        }
        if !viewing.settled {
            return None;
        }
        self.read_open()
    }

    /// When the dwell on the open conversation ends, if it has unread
    /// messages waiting for it; the event loop wakes up then.
    pub fn read_due_at(&self) -> Option<OffsetDateTime> {
        let viewing = self.viewing.as_ref()?;
        let waiting = self.focused
            && !viewing.settled
            && self
                .open()
                .is_some_and(|c| c.username == viewing.key && c.unread > 0);
        waiting.then_some(viewing.since + READ_DWELL)
    }

    /// A key press (before [`ChatState::handle_key`]): anything but moving
    /// the selection or quitting is the user acting in the open
    /// conversation, which reads it.
    pub(super) fn engage(&mut self, key: &KeyEvent) {
        if key.kind == KeyEventKind::Release || self.help.is_some() || self.confirm_discard {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let passive = match key.code {
            KeyCode::Up | KeyCode::Down | KeyCode::Tab | KeyCode::BackTab | KeyCode::Esc => true,
            KeyCode::Char('c') | KeyCode::Char('q') => ctrl,
            _ => false,
        };
        if !passive {
            self.settle_open();
        }
    }

    /// A paste into the draft: the user is acting in the open conversation.
    pub fn engage_paste(&mut self) {
        if self.help.is_none() && !self.confirm_discard {
            self.settle_open();
        }
    }

    /// One key press at `now`, as the event loop feeds it: the clock is set
    /// first (a message sent by this key carries the real time, not the last
    /// clock tick), then the key is applied, then reading is settled.
    pub fn key_at(&mut self, key: KeyEvent, now: OffsetDateTime) -> Vec<Action> {
        self.now = now;
        self.engage(&key);
        let action = self.handle_key(key);
        let mut actions: Vec<Action> = self.settle(now).into_iter().collect();
        actions.extend(action);
        actions.extend(self.typing_notices(now));
        actions
    }

    /// The terminal gained or lost focus (where it reports focus). Coming
    /// back starts the dwell again: a message that arrived while away is
    /// not read before the user has had a look.
    pub fn set_focus(&mut self, focused: bool, now: OffsetDateTime) {
        self.now = now;
        if self.focused == focused {
            return;
        }
        self.focused = focused;
        if focused {
            if let Some(viewing) = self.viewing.as_mut() {
                viewing.since = now;
                viewing.settled = false;
            }
        }
    }

    /// Records that an incoming message arrived where nobody is looking
    /// (another conversation, or the terminal unfocused).
    pub(super) fn note_arrival(&mut self, key: &str) {
        if !self.is_being_read(key) {
            self.alert = true;
            // What a desktop notification may say of it (crate::notify
            // decides how much it shows): the newest message there.
            let found = self.conversations.iter().find(|c| c.username == key);
            self.alert_about = found.and_then(|c| {
                let last = c.messages.last()?;
                let group = c.group.as_ref().map(|_| c.display.to_string());
                let from = match (&last.from, &group) {
                    (Some(from), Some(_)) => from.to_string(),
                    _ => c.display.to_string(),
                };
                Some(Arrived {
                    from,
                    group,
                    body: last.body.to_string(),
                })
            });
        }
    }

    /// Whether something arrived unseen since the last call (the event loop
    /// rings the bell once for it).
    pub fn take_alert(&mut self) -> bool {
        std::mem::take(&mut self.alert)
    }

    /// The last message that arrived unseen since the last call, for a
    /// desktop notification (already sanitised text).
    pub fn take_alert_about(&mut self) -> Option<Arrived> {
        self.alert_about.take()
    }

    /// Unread messages over all conversations (for the window title).
    pub fn unread_total(&self) -> usize {
        self.conversations.iter().map(|c| c.unread).sum()
    }
}

/// A message that arrived unseen, as a notification may name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrived {
    /// The sender as shown.
    pub from: String,
    /// The group's name as shown, for a group message.
    pub group: Option<String>,
    /// Its text as shown.
    pub body: String,
}
