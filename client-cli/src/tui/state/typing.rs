//! Our typing notices: while the draft holds a message for the open
//! conversation we tell the other side we are typing, at most once per
//! [`TYPING_REFRESH`], and that we stopped once the draft is sent, cleared
//! or left for another conversation, or once it has not changed for
//! [`TYPING_IDLE`] (the user paused without sending; Signal stops after
//! the same few seconds). Typing on after such a pause starts again.
//!
//! It must never send a notice for a `/command` being typed (that is not a
//! message), nor more than one start per [`TYPING_REFRESH`] per
//! conversation while typing goes on, however fast the keys come, nor a start for a key that
//! did not change the draft after an idle stop (moving the cursor is not
//! typing). Whether notices are sent at all is the account's `typing`
//! setting, which client-core applies.

use time::{Duration, OffsetDateTime};

use super::{Action, ChatState};

/// How often a start notice is repeated while typing goes on: the other
/// side's indicator lapses without one (Signal repeats every few seconds).
pub const TYPING_REFRESH: Duration = Duration::seconds(5);

/// How long an unchanged draft counts as still being typed: after this
/// long without a change, a stop is sent.
pub const TYPING_IDLE: Duration = Duration::seconds(3);

/// What we last told the open conversation about our typing.
#[derive(Clone, Debug)]
pub(super) struct TypingSent {
    /// The conversation (a username or a group's key).
    to: String,
    /// When the last start left; `None` after an idle stop.
    started: Option<OffsetDateTime>,
    /// The draft as last seen, and when it last changed.
    draft: String,
    edited: OffsetDateTime,
}

impl ChatState {
    /// The typing notices the draft as it is now calls for.
    pub fn typing_notices(&mut self, now: OffsetDateTime) -> Vec<Action> {
        let draft = self.input.text().to_owned();
        let composing =
            !draft.trim().is_empty() && (!draft.starts_with('/') || draft.starts_with("//"));
        let here = self
            .open()
            .filter(|c| !c.sending_blocked() && c.group.as_ref().is_none_or(|g| g.active))
            .map(|c| c.username.clone())
            .filter(|_| composing && !self.connection.ended());
        let mut actions = Vec::new();
        match (self.typing_sent.take(), here) {
            (Some(mut sent), Some(here)) if sent.to == here => {
                let changed = sent.draft != draft;
                if changed {
                    sent.draft = draft;
                    sent.edited = now;
                }
                let start = match sent.started {
                    Some(at) => now - at >= TYPING_REFRESH,
                    None => changed,
                };
                if start {
                    sent.started = Some(now);
                    actions.push(Action::Typing {
                        to: here,
                        started: true,
                    });
                }
                self.typing_sent = Some(sent);
            }
            (previous, here) => {
                if let Some(TypingSent {
                    to,
                    started: Some(_),
                    ..
                }) = previous
                {
                    actions.push(Action::Typing { to, started: false });
                }
                if let Some(to) = here {
                    self.typing_sent = Some(TypingSent {
                        to: to.clone(),
                        started: Some(now),
                        draft,
                        edited: now,
                    });
                    actions.push(Action::Typing { to, started: true });
                }
            }
        }
        actions
    }

    /// When the draft will have been left unchanged for [`TYPING_IDLE`]
    /// while the other side thinks we are typing; the event loop wakes
    /// up then and calls [`ChatState::typing_idle`].
    pub fn typing_idle_at(&self) -> Option<OffsetDateTime> {
        let sent = self.typing_sent.as_ref()?;
        sent.started.map(|_| sent.edited + TYPING_IDLE)
    }

    /// The stop notice owed at `now` for a draft left unchanged since
    /// [`TYPING_IDLE`] ago, if any.
    pub fn typing_idle(&mut self, now: OffsetDateTime) -> Option<Action> {
        let sent = self.typing_sent.as_mut()?;
        if sent.started.is_none() || now - sent.edited < TYPING_IDLE {
            return None;
        }
        sent.started = None;
        Some(Action::Typing {
            to: sent.to.clone(),
            started: false,
        })
    }
}
