//! Messages about messages (docs/PROTOCOL.md §10.6): how a reaction, an
//! edit or a delete for everyone changes the stored message it names, the
//! same rule for what arrives and for what we send, 1:1 and in groups.
//!
//! This module is the rule only: it gets the target's history entry and
//! who wrote it, and says what becomes of the entry, or why the reference
//! is refused. Finding the target, storing the result and the events are
//! the inbound and send paths' (`inbound/about.rs`, `groups/about.rs`,
//! `api.rs`); the rule is applied whole or not at all, never partially.
//!
//! Must never: let anyone but a message's author edit or delete it, keep
//! a deleted message's text or reactions, let an older edit replace a
//! newer one, or hold more than [`MAX_REACTIONS_PER_REACTOR`] reactions of
//! one account on one message.

use umbra_protocol::content::Content;
use umbra_protocol::wire::AccountId;
use zeroize::Zeroize;

pub(crate) use send::{as_reply, new_reference, require_known};

use crate::conversation::{HistoryEntry, Reaction};
use crate::MessageId;

mod api;
mod send;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_group;
#[cfg(test)]
mod tests_relay;

/// How long after its target an edit is accepted, on the author's clock
/// (`EDIT_WINDOW`, §10.6): 24 hours, as a courtesy (the author could send
/// a new message instead), not a security property.
pub(crate) const EDIT_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// How long after its target a delete for everyone is accepted, on the
/// author's clock (`DELETE_WINDOW`, §10.6): 24 hours, as for edits.
pub(crate) const DELETE_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// How many different emoji one account may hold on one message (§10.6).
/// The protocol allows several; a bound keeps a hostile member from
/// growing one stored entry without limit (each is up to 64 bytes).
pub const MAX_REACTIONS_PER_REACTOR: usize = 16;

/// The parts of a chat text both paths store, from a `Text` or a
/// `TextReply` (pairwise, or the plaintext of a group message): its id,
/// body, the sender's clock and the message it replies to. Any other
/// content: `None`.
pub(crate) fn text_parts(content: Content) -> Option<(MessageId, String, u64, Option<MessageId>)> {
    match content {
        Content::Text {
            id,
            body,
            sent_at_ms,
        } => Some((id, body, sent_at_ms, None)),
        Content::TextReply {
            id,
            target,
            body,
            sent_at_ms,
        } => Some((id, body, sent_at_ms, Some(target))),
        _ => None,
    }
}

/// What a reference does to its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Adds (`remove: false`) or takes back the reactor's `emoji`.
    React { emoji: String, remove: bool },
    /// Replaces the author's text.
    Edit { body: String },
    /// Erases the author's text for everyone.
    Delete,
}

/// A reaction, edit or delete, from the content that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// Its own id (duplicates are dropped by it).
    pub(crate) id: MessageId,
    /// The message it is about.
    pub(crate) target: MessageId,
    /// The author's clock when it was sent.
    pub(crate) sent_at_ms: u64,
    pub(crate) change: Change,
}

impl Reference {
    /// The reference `content` carries, if it is one (tags 19–21).
    pub(crate) fn of(content: &Content) -> Option<Reference> {
        let (id, target, sent_at_ms, change) = match content {
            Content::Reaction {
                id,
                target,
                emoji,
                remove,
                sent_at_ms,
            } => (
                id,
                target,
                sent_at_ms,
                Change::React {
                    emoji: emoji.clone(),
                    remove: *remove,
                },
            ),
            Content::Edit {
                id,
                target,
                body,
                sent_at_ms,
            } => (id, target, sent_at_ms, Change::Edit { body: body.clone() }),
            Content::DeleteForEveryone {
                id,
                target,
                sent_at_ms,
            } => (id, target, sent_at_ms, Change::Delete),
            _ => return None,
        };
        Some(Reference {
            id: *id,
            target: *target,
            sent_at_ms: *sent_at_ms,
            change,
        })
    }

    /// The content that carries this reference.
    pub(crate) fn content(&self) -> Content {
        let (id, target, sent_at_ms) = (self.id, self.target, self.sent_at_ms);
        match &self.change {
            Change::React { emoji, remove } => Content::Reaction {
                id,
                target,
                emoji: emoji.clone(),
                remove: *remove,
                sent_at_ms,
            },
            Change::Edit { body } => Content::Edit {
                id,
                target,
                body: body.clone(),
                sent_at_ms,
            },
            Change::Delete => Content::DeleteForEveryone {
                id,
                target,
                sent_at_ms,
            },
        }
    }

    /// What an event says it did.
    pub(crate) fn event_change(&self) -> MessageChange {
        match &self.change {
            Change::React { emoji, remove } => MessageChange::Reacted {
                emoji: emoji.clone(),
                removed: *remove,
            },
            Change::Edit { body } => MessageChange::Edited { body: body.clone() },
            Change::Delete => MessageChange::Deleted,
        }
    }
}

/// What a reaction, edit or delete did to a message, as an event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageChange {
    /// A reaction was added, or (`removed`) taken back.
    Reacted {
        /// The emoji (untrusted: sanitise before display).
        emoji: String,
        /// `true`: taken back.
        removed: bool,
    },
    /// The author replaced the text.
    Edited {
        /// The new text (untrusted: sanitise before display).
        body: String,
    },
    /// The author deleted it for everyone: its text is erased.
    Deleted,
}

/// Why a reaction, edit or delete was not applied (§10.6). The delivery
/// that carried it is still acknowledged: the refusal is an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeRefusal {
    /// No such message in the conversation (never arrived, arrived before
    /// we could read, or a mistyped id). Not held for later: in order
    /// delivery means it will not come.
    #[error("unknown target")]
    UnknownTarget,
    /// An edit or delete of a message someone else wrote.
    #[error("not the author")]
    NotTheAuthor,
    /// An edit or delete of something that is not a text (a file), or an
    /// edit of a deleted message.
    #[error("not an editable text")]
    NotEditable,
    /// An edit sent more than 24 hours after its target, or before it.
    #[error("outside the edit window")]
    OutsideEditWindow,
    /// A delete sent more than 24 hours after its target, or before it.
    #[error("outside the delete window")]
    OutsideDeleteWindow,
    /// An edit older than the one the message already shows.
    #[error("superseded")]
    Superseded,
    /// A reaction to a deleted message.
    #[error("deleted target")]
    TargetDeleted,
    /// A reaction beyond [`MAX_REACTIONS_PER_REACTOR`] of one account on
    /// one message.
    #[error("too many reactions")]
    TooManyReactions,
}

impl ChangeRefusal {
    /// A stable code for logs and JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            ChangeRefusal::UnknownTarget => "unknown_target",
            ChangeRefusal::NotTheAuthor => "not_the_author",
            ChangeRefusal::NotEditable => "not_editable",
            ChangeRefusal::OutsideEditWindow => "outside_edit_window",
            ChangeRefusal::OutsideDeleteWindow => "outside_delete_window",
            ChangeRefusal::Superseded => "superseded",
            ChangeRefusal::TargetDeleted => "target_deleted",
            ChangeRefusal::TooManyReactions => "too_many_reactions",
        }
    }
}

/// The target as its conversation holds it.
pub(crate) struct Target<'a> {
    pub(crate) entry: &'a mut HistoryEntry,
    /// Whether the reference's sender wrote it.
    pub(crate) by_sender: bool,
    /// Whether it is a text (plain or reply), not a file.
    pub(crate) is_text: bool,
}

/// Applies `reference` from `sender` to `target`: whether the entry
/// changed (a reaction it already has, or a delete of a deleted message,
/// changes nothing), or why it is refused (then the entry is untouched).
pub(crate) fn apply(
    target: Target<'_>,
    sender: &AccountId,
    reference: &Reference,
) -> Result<bool, ChangeRefusal> {
    let Target {
        entry,
        by_sender,
        is_text,
    } = target;
    let about = &mut entry.about;
    match &reference.change {
        Change::React { emoji, remove } => {
            if about.deleted {
                return Err(ChangeRefusal::TargetDeleted);
            }
            let held = |r: &Reaction| r.by == *sender && r.emoji == *emoji;
            if *remove {
                let before = about.reactions.len();
                about.reactions.retain(|r| !held(r));
                return Ok(about.reactions.len() != before);
            }
            if about.reactions.iter().any(held) {
                return Ok(false);
            }
            let mine = about.reactions.iter().filter(|r| r.by == *sender).count();
            if mine >= MAX_REACTIONS_PER_REACTOR {
                return Err(ChangeRefusal::TooManyReactions);
            }
            about.reactions.push(Reaction {
                by: *sender,
                emoji: emoji.clone(),
            });
            Ok(true)
        }
        Change::Edit { body } => {
            if !by_sender {
                return Err(ChangeRefusal::NotTheAuthor);
            }
            if !is_text || about.deleted {
                return Err(ChangeRefusal::NotEditable);
            }
            if !within(entry.sent_at_ms, reference.sent_at_ms, EDIT_WINDOW_MS) {
                return Err(ChangeRefusal::OutsideEditWindow);
            }
            // The newest edit wins wherever it arrives first; an equal
            // time loses too, so every receiver keeps the first of a tie
            // (a sender's messages arrive in the order sent).
            if about
                .edited_at_ms
                .is_some_and(|at| reference.sent_at_ms <= at)
            {
                return Err(ChangeRefusal::Superseded);
            }
            entry.body.zeroize();
            entry.body = body.clone();
            about.edited_at_ms = Some(reference.sent_at_ms);
            Ok(true)
        }
        Change::Delete => {
            if !by_sender {
                return Err(ChangeRefusal::NotTheAuthor);
            }
            if about.deleted {
                return Ok(false);
            }
            if !is_text {
                return Err(ChangeRefusal::NotEditable);
            }
            if !within(entry.sent_at_ms, reference.sent_at_ms, DELETE_WINDOW_MS) {
                return Err(ChangeRefusal::OutsideDeleteWindow);
            }
            // Erased, not hidden: the stored record is rewritten with the
            // empty text, and the old one is wiped from memory.
            entry.body.zeroize();
            entry.body = String::new();
            about.reactions.clear();
            about.deleted = true;
            Ok(true)
        }
    }
}

/// `0 <= at - since <= window`, on the author's clock.
fn within(since: u64, at: u64, window: u64) -> bool {
    at.checked_sub(since).is_some_and(|d| d <= window)
}
