//! Disappearing messages on the chat screen (docs/PROTOCOL.md §10.8,
//! §12.18): `/disappear DURATION|off` asks to set the open conversation's
//! timer (a 1:1 conversation's or a group's) (the duration read by the CLI's own parser, so
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

/// `/disappear DURATION|off`: the open conversation's (or group's) timer.
pub(super) fn disappear(state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    if args.is_empty() || args.contains(char::is_whitespace) {
        return Err("usage: /disappear DURATION|off (30s, 5m, 1h, 2d, 1w; at most 4w)".to_owned());
    }
    let seconds = parse_timer(args)?;
    let conversation = state
        .open()
        .ok_or("no conversation open: type /open USERNAME first")?;
    // A group's key (`group:ID`) goes as is: the backend sets the group's
    // timer, for every member (any member may, docs/PROTOCOL.md §8.9).
    if conversation.group.as_ref().is_some_and(|g| !g.active) {
        return Err("you are no longer a member of this group".to_owned());
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

    /// The timer of group `group` changed, by the member `by` or by us
    /// (`None`): shown in its title, and as a line.
    pub fn group_timer_changed(
        &mut self,
        group: &str,
        by: Option<&str>,
        seconds: u32,
        at: OffsetDateTime,
    ) {
        let key = super::group_key(group);
        self.set_timer(&key, seconds);
        let timer = crate::commands::disappearing::format_timer(seconds);
        let text = match by {
            Some(by) => format!("{by} set disappearing messages to {timer}"),
            None => format!("you set disappearing messages to {timer}"),
        };
        self.next_change_id += 1;
        let id = format!("timer-{}", self.next_change_id);
        self.system_line(&key, &id, &text, at);
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
