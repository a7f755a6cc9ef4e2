//! What the chat loop's background tasks report when they finish (or, for
//! a transfer, as they go), and how each report reaches the state. Moved
//! out of event_loop.rs to keep that file under 600 lines.
//!
//! Must never: drop a report without showing it (a failure is always a
//! notice or a mark on the message it is about).

use super::{commands, conversation, group};
use crate::output::Record;
use crate::tui::state::{ChatState, Outgoing, Severity};

/// What a background task reports when it finishes.
pub(crate) enum Completion {
    Queued {
        to: String,
        local_id: String,
        id: String,
    },
    /// A group message left (or failed for some members) as `id`.
    GroupQueued {
        to: String,
        local_id: String,
        id: String,
        report: Option<Outgoing>,
    },
    SendFailed {
        to: String,
        local_id: String,
        reason: String,
    },
    KeyAccepted {
        contact: String,
    },
    /// The key changed again after the number on screen was shown.
    KeyMovedOn {
        contact: String,
        safety_number: String,
    },
    /// A reaction, edit or delete left.
    Changed(crate::tui::state::ChangeRequest),
    /// A `/block` or `/unblock` was done: what the CLI says for it.
    BlockChanged(String),
    /// What a `/search` for `query` found.
    Found {
        query: String,
        records: Vec<Record>,
    },
    Problem(String),
    /// Something to show in the notice line, not an error (`/devices`).
    Info(String),
    /// A `/delete-conversation` ended (the CLI's sentence, or why not),
    /// and what the store holds of the conversation now.
    ConversationDeleted {
        contact: String,
        outcome: Result<String, String>,
        stored: Result<crate::tui::backend::StoredHistory, String>,
    },
    /// A transfer (`what`: "sending report.pdf") got this far.
    Progress {
        what: String,
        done: u64,
        total: u64,
    },
    /// The file typed as `local_id` left as message `id`.
    FileSent {
        to: String,
        local_id: String,
        id: String,
        file: crate::tui::state::FileView,
    },
}

pub(super) fn apply_completion(state: &mut ChatState, done: Completion) {
    match done {
        Completion::Queued { to, local_id, id } => state.message_queued(&to, &local_id, &id),
        Completion::GroupQueued {
            to,
            local_id,
            id,
            report,
        } => group::queued(state, &to, &local_id, &id, report),
        Completion::SendFailed {
            to,
            local_id,
            reason,
        } => state.message_failed(&to, &local_id, &reason),
        Completion::KeyAccepted { contact } => {
            state.key_accepted(&contact);
            state.set_notice(
                Severity::Info,
                &format!("accepted {contact}'s new key; compare safety numbers to verify it"),
            );
        }
        Completion::KeyMovedOn {
            contact,
            safety_number,
        } => {
            state.key_changed(&contact, &safety_number);
            state.set_notice(
                Severity::Error,
                &format!("{contact}'s key changed again; nothing accepted — check the new number"),
            );
        }
        Completion::Changed(request) => state.change_sent(&request),
        Completion::BlockChanged(detail) => commands::show_block(state, &detail),
        Completion::Found { query, records } => commands::show_found(state, &query, &records),
        Completion::Problem(text) => state.set_notice(Severity::Error, &text),
        Completion::Info(text) => state.set_notice(Severity::Info, &text),
        Completion::ConversationDeleted {
            contact,
            outcome,
            stored,
        } => conversation::deleted(state, &contact, outcome, stored),
        Completion::Progress { what, done, total } => state.transfer_progress(&what, done, total),
        Completion::FileSent {
            to,
            local_id,
            id,
            file,
        } => state.file_sent(&to, &local_id, &id, file),
    }
}
