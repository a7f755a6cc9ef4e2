//! Messages about messages on screen (docs/PROTOCOL.md §10.6): which
//! message a reply quotes, the reactions on a message, whether it was
//! edited or deleted for everyone, and the `/reply`, `/react`, `/edit`
//! and `/delete` commands that send them.
//!
//! Targets are picked as an irssi or weechat user expects without a
//! cursor in the history: the newest message by default, or `^N` for the
//! N-th message counted up from the bottom (`^1` is the newest).
//!
//! It must never hold an emoji or an edited text from a contact except as
//! [`SafeText`], and never ask to edit or delete a message that is not
//! ours (client-core refuses too, but the user deserves a clear line).

use umbra_client_core::MessageChange;

use super::{Action, ChatMessage, ChatState, Direction, Outgoing};
use crate::output::Delivery;
use crate::sanitize::SafeText;

/// Who a reaction of ours is recorded under until the history is reloaded
/// (reactions are counted, never attributed, on screen).
pub(crate) const ME: &str = "me";

/// What messages about a message left on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct About {
    /// The id of the message this one replies to (it may not be loaded).
    pub reply_to: Option<String>,
    /// `(who, emoji)`, in the order added; one per pair.
    pub reactions: Vec<(String, SafeText)>,
    pub edited: bool,
    pub deleted: bool,
}

impl About {
    /// The reactions as `(emoji, count)`, in the order each emoji first came.
    pub fn reaction_counts(&self) -> Vec<(&SafeText, usize)> {
        let mut counts: Vec<(&SafeText, usize)> = Vec::new();
        for (_, emoji) in &self.reactions {
            match counts.iter_mut().find(|(e, _)| *e == emoji) {
                Some((_, n)) => *n += 1,
                None => counts.push((emoji, 1)),
            }
        }
        counts
    }

    /// Applies one change by `by` (an account or a name: only distinctness
    /// matters). Returns the new text for an edit.
    fn apply(&mut self, by: &str, change: &MessageChange) -> Option<SafeText> {
        match change {
            MessageChange::Reacted { emoji, removed } => {
                let emoji = SafeText::line(emoji);
                self.reactions.retain(|(b, e)| !(b == by && *e == emoji));
                if !removed {
                    self.reactions.push((by.to_owned(), emoji));
                }
                None
            }
            MessageChange::Edited { body } => {
                self.edited = true;
                Some(SafeText::multiline(body))
            }
            MessageChange::Deleted => {
                self.deleted = true;
                self.reactions.clear();
                Some(SafeText::multiline(""))
            }
        }
    }
}

/// A change the user asked for, on its way out (see [`Action::Change`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRequest {
    /// A username, or a group's key.
    pub to: String,
    pub target: String,
    pub change: MessageChange,
}

impl ChatState {
    /// The message `id` of conversation `key` replies to `target`.
    pub fn set_reply_to(&mut self, key: &str, id: &str, target: &str) {
        if let Some(message) = self.message_mut(key, id) {
            message.about.reply_to = Some(target.to_owned());
        }
    }

    /// A change from `by` (or ours, once sent, with [`ME`]) reached
    /// message `target` of conversation `key`; one for a message not on
    /// screen changes nothing.
    pub fn message_changed(&mut self, key: &str, by: &str, target: &str, change: &MessageChange) {
        if let Some(message) = self.message_mut(key, target) {
            if let Some(body) = message.about.apply(by, change) {
                message.body = body;
            }
        }
    }

    /// The message a reply quotes, if it is on screen.
    pub fn quoted<'a>(&'a self, key: &str, target: &str) -> Option<&'a ChatMessage> {
        self.conversations
            .iter()
            .find(|c| c.username == key)?
            .messages
            .iter()
            .find(|m| m.id == target)
    }

    fn message_mut(&mut self, key: &str, id: &str) -> Option<&mut ChatMessage> {
        self.find_mut(key)?.messages.iter_mut().find(|m| m.id == id)
    }

    /// The target of a command in the open conversation: `^N` (the N-th
    /// message from the bottom) at the start of `args`, or the newest one
    /// `fits`. Returns the key, the message and the rest of `args`.
    pub(super) fn pick<'a>(
        &self,
        args: &'a str,
        fits: impl Fn(&ChatMessage) -> bool,
        what: &str,
    ) -> Result<(String, ChatMessage, &'a str), String> {
        let conversation = self
            .open()
            .ok_or("no conversation open: type /open USERNAME first")?;
        let messages = conversation
            .messages
            .iter()
            .rev()
            .filter(|m| m.direction != Direction::Change);
        let (message, rest) = match args.strip_prefix('^') {
            Some(after) => {
                let (n, rest) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
                let n: usize = match n {
                    "" => 1,
                    n => n.parse().map_err(|_| format!("^{n} is not a number"))?,
                };
                let message = messages
                    .clone()
                    .nth(n.saturating_sub(1))
                    .filter(|m| fits(m))
                    .ok_or(format!("message ^{n} is not {what}"))?;
                (message, rest.trim())
            }
            None => (
                messages
                    .clone()
                    .find(|m| fits(m))
                    .ok_or(format!("there is no {what} here"))?,
                args,
            ),
        };
        if message.id.starts_with("local-") {
            return Err("that message is still being sent; try again in a moment".into());
        }
        Ok((conversation.username.clone(), message.clone(), rest))
    }

    /// Sends-side checks shared with a plain message.
    pub(super) fn may_send(&self) -> Result<(), String> {
        if self.connection.ended() {
            return Err("not sent: disconnected; restart umbra to send".into());
        }
        match self.open() {
            Some(c) if c.group.as_ref().is_some_and(|g| !g.active) => Err(format!(
                "not sent: you are no longer a member of {}",
                c.display
            )),
            Some(c) if c.sending_blocked() => Err(format!(
                "not sent: {}'s key changed; verify it, then press Ctrl-A to accept",
                c.display
            )),
            _ => Ok(()),
        }
    }
}

fn live(m: &ChatMessage) -> bool {
    !m.about.deleted
}

fn ours(m: &ChatMessage) -> bool {
    live(m) && matches!(m.direction, Direction::Outgoing(Outgoing::Progress(_)))
}

/// `/reply [^N] TEXT`: by default to the newest message from the others.
pub(super) fn reply(state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    state.may_send()?;
    let incoming = |m: &ChatMessage| live(m) && matches!(m.direction, Direction::Incoming { .. });
    let explicit = args.starts_with('^');
    let (to, target, text) = state.pick(
        args,
        |m| if explicit { live(m) } else { incoming(m) },
        "a message to reply to",
    )?;
    if text.is_empty() {
        return Err("usage: /reply [^N] TEXT".into());
    }
    state.next_local_id += 1;
    let local_id = format!("local-{}", state.next_local_id);
    let now = state.now;
    state.conversation_mut(&to).push(ChatMessage {
        id: local_id.clone(),
        direction: Direction::Outgoing(Outgoing::Progress(Delivery::Pending)),
        at: now,
        body: SafeText::multiline(text),
        from: None,
        about: About {
            reply_to: Some(target.id.clone()),
            ..About::default()
        },
        file: None,
    });
    state.scroll = 0;
    state.sort();
    Ok(Some(Action::Reply {
        to,
        local_id,
        body: text.to_owned(),
        target: target.id,
    }))
}

/// `/react [^N] EMOJI` on the newest message (either side's).
pub(super) fn react(state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    reaction(state, args, false)
}

/// `/unreact [^N] EMOJI` takes our reaction back.
pub(super) fn unreact(state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    reaction(state, args, true)
}

fn reaction(state: &mut ChatState, args: &str, removed: bool) -> Result<Option<Action>, String> {
    state.may_send()?;
    let (to, target, emoji) = state.pick(args, live, "a message to react to")?;
    if emoji.is_empty() || emoji.contains(char::is_whitespace) {
        return Err("usage: /react [^N] EMOJI (one emoji, no spaces)".into());
    }
    Ok(Some(Action::Change(ChangeRequest {
        to,
        target: target.id,
        change: MessageChange::Reacted {
            emoji: emoji.to_owned(),
            removed,
        },
    })))
}

/// `/edit [^N] TEXT`: by default our newest message.
pub(super) fn edit(state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    state.may_send()?;
    let (to, target, text) = state.pick(args, ours, "a message of yours")?;
    if text.is_empty() {
        return Err("usage: /edit [^N] TEXT".into());
    }
    Ok(Some(Action::Change(ChangeRequest {
        to,
        target: target.id,
        change: MessageChange::Edited {
            body: text.to_owned(),
        },
    })))
}

/// `/delete [^N]`: deletes our newest message for everyone.
pub(super) fn delete(state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    state.may_send()?;
    let (to, target, rest) = state.pick(args, ours, "a message of yours")?;
    if !rest.is_empty() {
        return Err("usage: /delete [^N] (deletes for everyone)".into());
    }
    Ok(Some(Action::Change(ChangeRequest {
        to,
        target: target.id,
        change: MessageChange::Deleted,
    })))
}

impl ChatState {
    /// Our change left: show it as the others will see it.
    pub fn change_sent(&mut self, request: &ChangeRequest) {
        self.message_changed(&request.to, ME, &request.target, &request.change);
    }
}
