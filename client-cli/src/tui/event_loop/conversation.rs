//! The chat loop's `/delete-conversation`: runs it over the backend as a
//! task, then reads the conversation's stored history back, so the view
//! shows exactly what the store kept whatever the outcome (all erased, or
//! refused before anything was).
//!
//! Must never: block the loop on the relay (it runs as a task), or leave
//! an erased message on screen.

use tokio::sync::mpsc;

use super::{about, Completion};
use crate::tui::backend::Backend;
use crate::tui::state::{ChatState, Severity};

/// Deletes, then reports the outcome with the history left.
pub(super) async fn delete(
    backend: Backend,
    contact: String,
    everyone: bool,
    done: mpsc::UnboundedSender<Completion>,
) {
    let outcome = backend.delete_conversation(&contact, everyone).await;
    let stored = backend.history(&contact).await;
    let _ = done.send(Completion::ConversationDeleted {
        contact,
        outcome,
        stored,
    });
}

/// A delete of ours finished: the view reloaded, the outcome in the
/// notice line (the CLI's sentence, or the error).
pub(super) fn deleted(
    state: &mut ChatState,
    contact: &str,
    outcome: Result<String, String>,
    stored: Result<Vec<umbra_client_core::HistoryEntry>, String>,
) {
    match stored {
        Ok(entries) => {
            let messages = entries.into_iter().map(about::chat_message).collect();
            state.conversation_reloaded(contact, messages);
        }
        Err(why) => {
            state.set_notice(
                Severity::Error,
                &format!("could not reload the conversation with {contact}: {why}"),
            );
            return;
        }
    }
    match outcome {
        Ok(detail) => state.set_notice(Severity::Info, &detail),
        Err(why) => state.set_notice(Severity::Error, &why),
    }
}
