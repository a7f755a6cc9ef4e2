//! A reaction, edit or delete that arrived and that client-core refused
//! (docs/PROTOCOL.md §10.6: its message unknown, not its sender's to edit,
//! too late, ...), shown as a line in the conversation it was sent in, so
//! the user knows the sender tried and that nothing changed.
//!
//! It must never change the message the refused change named, never show
//! the same refusal twice (a daemon and the client may both report it, and
//! delivery is at least once), and never create a conversation for it:
//! a refusal from someone we have no conversation with is a notice.

use time::OffsetDateTime;

use super::{ChatState, Severity};

/// The refusal codes (`ChangeRefusal::code`, the `reason` of a
/// `message_change_refused` record) in words; an unknown code (a newer
/// client's) is shown as it is.
pub fn refusal_words(code: &str) -> &str {
    match code {
        "unknown_target" => "no such message here",
        "not_the_author" => "not their message",
        "not_editable" => "not an editable text",
        "outside_edit_window" => "too late to edit",
        "outside_delete_window" => "too late to delete",
        "superseded" => "a newer edit is shown",
        "target_deleted" => "the message was deleted",
        "too_many_reactions" => "too many reactions",
        other => other,
    }
}

impl ChatState {
    /// `from`'s change `change_id` in the conversation `key` (a username,
    /// or a group's key) was refused for `reason` (a refusal code).
    pub fn change_refused(
        &mut self,
        key: &str,
        from: &str,
        change_id: &str,
        reason: &str,
        at: OffsetDateTime,
    ) {
        let text = format!("refused {from}'s change: {}", refusal_words(reason));
        if self.find_mut(key).is_none() {
            self.set_notice(Severity::Info, &text);
            return;
        }
        self.system_line(key, &format!("refused-{change_id}"), &text, at);
    }
}
