//! Disappearing messages on the chat screen (docs/PROTOCOL.md §10.8,
//! §12.18): `/disappear DURATION|off` asks to set the open 1:1
//! conversation's timer (the duration read by the CLI's own parser, so
//! `umbra disappearing` and the chat take the same words), the timer shown
//! in the conversation's title, a line when either side changes it, and
//! the messages client-core deleted at their expiry dropped from the view.
//!
//! It must never show a timer client-core did not report, and never keep
//! showing a message client-core expired.

use time::OffsetDateTime;

use super::{Action, ChatState};
use crate::commands::disappearing::parse_timer;
use crate::output::Record;

/// `/disappear DURATION|off`: the open 1:1 conversation's timer.
pub(super) fn disappear(state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    if args.is_empty() || args.contains(char::is_whitespace) {
        return Err("usage: /disappear DURATION|off (30s, 5m, 1h, 2d, 1w; at most 4w)".to_owned());
    }
    let seconds = parse_timer(args)?;
    let conversation = state
        .open()
        .ok_or("no conversation open: type /open USERNAME first")?;
    if conversation.group.is_some() {
        return Err("disappearing messages are for 1:1 conversations, not groups".to_owned());
    }
    Ok(Some(Action::SetDisappearing {
        contact: conversation.username.clone(),
        seconds,
    }))
}

impl ChatState {
    /// The timer of the conversation with `contact` as stored (at start).
    pub fn set_timer(&mut self, contact: &str, seconds: u32) {
        self.conversation_mut(contact).disappearing = seconds;
    }

    /// The timer of the conversation with `with` changed, by the contact
    /// (`by_peer`) or by us: shown in its title, and as a line.
    pub fn timer_changed(&mut self, with: &str, by_peer: bool, seconds: u32, at: OffsetDateTime) {
        self.set_timer(with, seconds);
        let text = Record::DisappearingTimer {
            with: with.to_owned(),
            by_peer,
            seconds,
        }
        .to_human();
        self.next_change_id += 1;
        let id = format!("timer-{}", self.next_change_id);
        self.system_line(with, &id, &text, at);
    }

    /// client-core deleted these messages of the conversation with `with`
    /// at their expiry.
    pub fn messages_expired(&mut self, with: &str, ids: &[String]) {
        let Some(conversation) = self.find_mut(with) else {
            return;
        };
        conversation.messages.retain(|m| !ids.contains(&m.id));
        conversation.unread = conversation
            .messages
            .iter()
            .filter(|m| matches!(m.direction, super::Direction::Incoming { read: false }))
            .count();
        self.sort();
    }
}
