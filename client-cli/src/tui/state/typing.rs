//! Our typing notices: while the draft holds a message for the open
//! conversation we tell the other side we are typing, at most once per
//! [`TYPING_REFRESH`], and that we stopped once the draft is sent, cleared
//! or left for another conversation.
//!
//! It must never send a notice for a `/command` being typed (that is not a
//! message), nor more than one start per [`TYPING_REFRESH`] per
//! conversation, however fast the keys come. Whether notices are sent at
//! all is the account's `typing` setting, which client-core applies.

use time::{Duration, OffsetDateTime};

use super::{Action, ChatState};

/// How often a start notice is repeated while typing goes on: the other
/// side's indicator lapses without one (Signal repeats every few seconds).
pub const TYPING_REFRESH: Duration = Duration::seconds(5);

impl ChatState {
    /// The typing notices the draft as it is now calls for.
    pub fn typing_notices(&mut self, now: OffsetDateTime) -> Vec<Action> {
        let draft = self.input.text();
        let composing =
            !draft.trim().is_empty() && (!draft.starts_with('/') || draft.starts_with("//"));
        let here = self
            .open()
            .filter(|c| !c.sending_blocked() && c.group.as_ref().is_none_or(|g| g.active))
            .map(|c| c.username.clone())
            .filter(|_| composing && !self.connection.ended());
        let mut actions = Vec::new();
        match (self.typing_sent.take(), here) {
            (Some((to, at)), Some(here)) if to == here => {
                if now - at >= TYPING_REFRESH {
                    self.typing_sent = Some((here.clone(), now));
                    actions.push(Action::Typing {
                        to: here,
                        started: true,
                    });
                } else {
                    self.typing_sent = Some((to, at));
                }
            }
            (previous, here) => {
                if let Some((to, _)) = previous {
                    actions.push(Action::Typing { to, started: false });
                }
                self.typing_sent = here.clone().map(|h| (h, now));
                if let Some(to) = here {
                    actions.push(Action::Typing { to, started: true });
                }
            }
        }
        actions
    }
}
