//! Messages on screen: incoming ones, the history loaded at start, and the
//! delivery marks of our own as client-core and the relay report progress.
//!
//! It must never move a delivery mark backwards or turn a failed message
//! back into a delivered one, must never show a repeated delivery twice, and
//! must never let reports for unknown ids grow memory without bound.

use time::OffsetDateTime;

use super::{Action, ChatState};
use crate::output::Delivery;
use crate::sanitize::SafeText;

/// Progress reports kept for ids not yet known locally (see
/// [`ChatState::message_queued`]); bounded so a flood of bogus receipts
/// cannot grow memory.
pub(super) const MAX_EARLY_REPORTS: usize = 256;

/// Who wrote our own message that another device of this account sent
/// (sent-message sync), as the conversation shows it.
pub const OTHER_DEVICE: &str = "me (other device)";

/// Who wrote a message and, for our own, how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    Incoming {
        read: bool,
    },
    Outgoing(Outgoing),
    /// A line about the conversation itself (a group membership change,
    /// a refused change to a message), written by umbra, not by a person.
    Change,
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
    /// In a group, who wrote an incoming message (in a 1:1 conversation
    /// the contact is the conversation's own name); on our own message,
    /// [`OTHER_DEVICE`] when another device of this account sent it (drawn
    /// instead of `me`), else `None`.
    pub from: Option<SafeText>,
    /// Its reply target, reactions, edit and delete ([`super::about`]).
    pub about: super::About,
    /// The file it carries, for a file message ([`super::files`]).
    pub file: Option<super::FileView>,
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

impl ChatState {
    /// An incoming message. Returns a read receipt to send when it landed in
    /// the open conversation while the user is looking at it
    /// ([`super::reading`]).
    pub fn receive_message(
        &mut self,
        from: &str,
        id: &str,
        body: &str,
        at: OffsetDateTime,
    ) -> Option<Action> {
        self.receive_in(from, None, id, body, at)
    }

    /// An incoming message for the conversation `key`, written by `sender`
    /// when that is not the conversation itself (a group member).
    pub(super) fn receive_in(
        &mut self,
        key: &str,
        sender: Option<SafeText>,
        id: &str,
        body: &str,
        at: OffsetDateTime,
    ) -> Option<Action> {
        let from = key;
        let open = self.is_being_read(from);
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
            from: sender,
            about: Default::default(),
            file: None,
        });
        if !open {
            conversation.unread += 1;
        }
        self.note_arrival(from);
        self.sort();
        if self.selected.is_none() {
            self.browse(from);
            return None;
        }
        open.then(|| Action::MarkRead {
            contact: from.to_owned(),
            ids: vec![id.to_owned()],
        })
    }

    /// Our own message that another device of this account sent to `to`
    /// (client-core stored it in that conversation already): shown once,
    /// as ours, marked [`OTHER_DEVICE`]. It is not unread and owes no read
    /// receipt; a receipt for it that came first is applied.
    pub fn sent_elsewhere(&mut self, to: &str, id: &str, body: &str, at: OffsetDateTime) {
        let early = self.early_reports.remove(id);
        let conversation = self.conversation_mut(to);
        if conversation.messages.iter().any(|m| m.id == id) {
            return;
        }
        let mut direction = Direction::Outgoing(Outgoing::Progress(Delivery::Sent));
        if let Some(report) = early {
            advance(&mut direction, report);
        }
        conversation.push(ChatMessage {
            id: id.to_owned(),
            direction,
            at,
            body: SafeText::multiline(body),
            from: Some(SafeText::line(OTHER_DEVICE)),
            about: Default::default(),
            file: None,
        });
        self.sort();
        if self.selected.is_none() {
            self.browse(to);
        }
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
        // A receipt for a group message comes from the member, pairwise:
        // the message is in the group's conversation, not the member's.
        let holder = match self.find_mut(contact) {
            Some(c) if c.messages.iter().any(|m| m.id == id) => Some(contact.to_owned()),
            _ => self
                .conversations
                .iter()
                .find(|c| c.group.is_some() && c.messages.iter().any(|m| m.id == id))
                .map(|c| c.username.clone()),
        };
        let message = holder
            .and_then(|key| self.find_mut(&key))
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

    /// A line by umbra about the conversation `key` ([`Direction::Change`]),
    /// known as `id`: shown once however often it is reported.
    pub(super) fn system_line(&mut self, key: &str, id: &str, text: &str, at: OffsetDateTime) {
        let conversation = self.conversation_mut(key);
        if conversation.messages.iter().any(|m| m.id == id) {
            return;
        }
        conversation.push(ChatMessage {
            id: id.to_owned(),
            direction: Direction::Change,
            at,
            body: SafeText::line(text),
            from: None,
            about: Default::default(),
            file: None,
        });
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
}
