//! The chat loop's `/delete-conversation` and `/disappear`: runs them over
//! the backend as tasks (a delete then reads the conversation's stored
//! history back, so the view shows exactly what the store kept whatever
//! the outcome: all erased, or refused before anything was); and the
//! events about a whole conversation (deleted for everyone, its timer
//! changed, messages expired) handed to the state.
//!
//! Must never: block the loop on the relay (it runs as a task), or leave
//! an erased message on screen.

use tokio::sync::mpsc;
use umbra_client_core::Event;

use super::{about, Completion};
use crate::tui::backend::{Backend, StoredHistory};
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
    stored: Result<StoredHistory, String>,
) {
    match stored {
        Ok((entries, files)) => {
            let messages = entries.into_iter().map(about::chat_message).collect();
            state.conversation_reloaded(contact, messages);
            super::show_files(state, contact, files);
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

/// Sets the timer; the change itself is shown when its event arrives
/// (client-core's, or the daemon's record of it).
pub(super) async fn set_timer(
    backend: Backend,
    contact: String,
    seconds: u32,
    done: mpsc::UnboundedSender<Completion>,
) {
    let report = match backend.set_disappearing(&contact, seconds).await {
        Ok(detail) => Completion::Info(detail),
        Err(reason) => Completion::Problem(reason),
    };
    let _ = done.send(report);
}

/// An event about a whole 1:1 conversation.
pub(super) fn apply_event(state: &mut ChatState, event: Event) {
    let now = time::OffsetDateTime::now_utc();
    match event {
        Event::ConversationDeleted {
            with,
            by_peer,
            erased,
        } => state.conversation_deleted(&with, by_peer, erased, now),
        Event::DisappearingTimerChanged {
            with,
            by_peer,
            seconds,
        } => state.timer_changed(&with, by_peer, seconds, now),
        Event::MessagesExpired { with, ids } => {
            let ids: Vec<String> = ids.iter().map(|id| id.to_hex()).collect();
            state.messages_expired(&with, &ids);
        }
        _ => {}
    }
}
