//! Deleting a 1:1 conversation from the chat (docs/PROTOCOL.md §12.19):
//! `/delete-conversation [--everyone]` asks first, in the notice's place,
//! the way quitting with a draft does ("… y/n"), and only a `y` asks the
//! event loop to delete it; afterwards the view shows what the store kept.
//! A conversation the contact (or another device of ours) deleted for
//! everyone is emptied as the event arrives, with a line saying who did it.
//!
//! It must never delete without the `y`, never offer to delete a group's
//! conversation (client-core deletes only 1:1 ones), and never keep showing
//! a message client-core erased.

use time::OffsetDateTime;

use super::{Action, ChatMessage, ChatState, Direction, Outgoing, Severity};
use crate::output::{Delivery, Record};

/// A question the next key answers (`y` does it, any other key does not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Delete the conversation with `contact`, for everyone or only here.
    DeleteConversation {
        contact: String,
        /// The name it is shown under (sanitised), for the question.
        shown: String,
        everyone: bool,
    },
}

impl Confirm {
    /// The question, without its `y/n` (the renderer adds that, so it
    /// survives a cut on a narrow screen).
    pub fn question(&self) -> String {
        match self {
            Confirm::DeleteConversation {
                shown,
                everyone: true,
                ..
            } => format!("delete for everyone the conversation with {shown}?"),
            Confirm::DeleteConversation { shown, .. } => {
                format!("delete on this device the conversation with {shown}?")
            }
        }
    }
}

/// `/delete-conversation [--everyone]`: asks about the open conversation.
pub(super) fn delete_conversation(
    state: &mut ChatState,
    args: &str,
) -> Result<Option<Action>, String> {
    let everyone = match args {
        "" => false,
        "--everyone" => true,
        _ => return Err("usage: /delete-conversation [--everyone]".to_owned()),
    };
    let conversation = state
        .open()
        .ok_or("no conversation open: type /open USERNAME first")?;
    if conversation.group.is_some() {
        return Err(
            "a group's conversation cannot be deleted; /delete-conversation is for 1:1 ones"
                .to_owned(),
        );
    }
    state.confirm = Some(Confirm::DeleteConversation {
        contact: conversation.username.clone(),
        shown: conversation.display.to_string(),
        everyone,
    });
    Ok(None)
}

impl ChatState {
    /// The key that answers [`ChatState::confirm`]: `y` does what it
    /// asked, anything else says nothing was done.
    pub(super) fn answer_confirm(&mut self, yes: bool) -> Option<Action> {
        let asked = self.confirm.take()?;
        match (asked, yes) {
            (
                Confirm::DeleteConversation {
                    contact, everyone, ..
                },
                true,
            ) => Some(Action::DeleteConversation { contact, everyone }),
            (Confirm::DeleteConversation { shown, .. }, false) => {
                self.set_notice(
                    Severity::Info,
                    &format!("kept the conversation with {shown}"),
                );
                None
            }
        }
    }

    /// After our own delete of the conversation with `contact`: the
    /// view shows what the store still holds (`stored`, oldest first;
    /// nothing after a delete that went through, everything when it was
    /// refused before erasing), and why in the notice line.
    pub fn conversation_reloaded(&mut self, contact: &str, stored: Vec<ChatMessage>) {
        self.erase_shown(contact, false);
        for message in stored {
            self.load_message(contact, message);
        }
    }

    /// The contact (`by_peer`) or another device of ours deleted the
    /// conversation with `with` for everyone and client-core erased
    /// `erased` entries: the view loses them too, and says who did it.
    pub fn conversation_deleted(
        &mut self,
        with: &str,
        by_peer: bool,
        erased: usize,
        at: OffsetDateTime,
    ) {
        // The contact's delete keeps ours it had not received yet
        // (client-core's `Erase::WhatThePeerHad`); another device's
        // erases everything.
        self.erase_shown(with, by_peer);
        let text = Record::ConversationDeleted {
            with: with.to_owned(),
            by_peer,
            erased,
        }
        .to_human();
        self.next_change_id += 1;
        let id = format!("erased-{}", self.next_change_id);
        self.system_line(with, &id, &text, at);
    }

    /// Drops the messages of `key` from the view; with `keep_unreceived`
    /// our own the contact cannot have had yet stay.
    fn erase_shown(&mut self, key: &str, keep_unreceived: bool) {
        let open = self.is_open(key);
        let Some(conversation) = self.find_mut(key) else {
            return;
        };
        conversation.messages.retain(|m| {
            keep_unreceived
                && matches!(
                    m.direction,
                    Direction::Outgoing(Outgoing::Progress(Delivery::Pending | Delivery::Sent))
                )
        });
        conversation.unread = 0;
        if open {
            self.scroll = 0;
        }
        self.sort();
    }
}
