//! The chat loop's part in messages about messages (docs/PROTOCOL.md
//! §10.6): reading them from the stored history and from events or daemon
//! records, and sending the replies and changes the user typed, plus our
//! typing notices.
//!
//! Must never show a contact's emoji or edited text except through the
//! state (which holds them as SafeText), or report a refused change as made.

use tokio::sync::mpsc;
use umbra_client_core::{
    DeliveryStatus, Direction as CoreDirection, HistoryEntry, MessageAbout, MessageChange,
};

use super::Completion;
use crate::output::{time_from_unix_ms, ChangeKind, Delivery, Record};
use crate::sanitize::SafeText;
use crate::tui::backend::Backend;
use crate::tui::state::{
    group_id_of, group_key, About, ChangeRequest, ChatMessage, ChatState, Direction, Outgoing,
};

/// A stored 1:1 entry as the screen shows it.
pub(super) fn chat_message(entry: HistoryEntry) -> ChatMessage {
    let direction = match entry.direction {
        CoreDirection::Incoming => Direction::Incoming {
            read: entry.status == DeliveryStatus::Read,
        },
        CoreDirection::Outgoing => Direction::Outgoing(match entry.status {
            DeliveryStatus::Pending => Outgoing::Progress(Delivery::Pending),
            DeliveryStatus::Sent => Outgoing::Progress(Delivery::Sent),
            DeliveryStatus::Delivered => Outgoing::Progress(Delivery::Delivered),
            DeliveryStatus::Read => Outgoing::Progress(Delivery::Read),
            DeliveryStatus::Failed => Outgoing::Failed(SafeText::line("refused by the relay")),
        }),
    };
    ChatMessage {
        id: entry.id.to_hex(),
        direction,
        at: time_from_unix_ms(entry.received_at_ms),
        body: SafeText::multiline(&entry.body),
        from: None,
        about: from_history(&entry.about),
        file: None,
    }
}

/// A stored entry's replies, reactions, edit and delete as the screen shows them.
pub(super) fn from_history(about: &MessageAbout) -> About {
    About {
        reply_to: about.reply_to.map(|id| id.to_hex()),
        reactions: about
            .reactions
            .iter()
            .map(|r| (account_key(&r.by), SafeText::line(&r.emoji)))
            .collect(),
        edited: about.edited_at_ms.is_some(),
        deleted: about.deleted,
    }
}

/// Who reacted, as the state tells reactions apart.
pub(super) fn account_key(account: &umbra_protocol::wire::AccountId) -> String {
    account
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `message_changed` or `message_change_refused` record (a daemon's, or
/// a group event's) applied to the screen; other records are left alone.
/// Returns whether it was one.
pub(super) fn apply_record(state: &mut ChatState, record: &Record) -> bool {
    if let Record::MessageChangeRefused {
        from,
        id,
        reason,
        group,
        ..
    } = record
    {
        let key = group
            .as_ref()
            .map_or_else(|| from.clone(), |g| group_key(&g.id));
        state.change_refused(&key, from, id, reason, time::OffsetDateTime::now_utc());
        return true;
    }
    let Record::MessageChanged {
        from,
        target,
        change,
        emoji,
        body,
        group,
        ..
    } = record
    else {
        return false;
    };
    let change = match change {
        ChangeKind::Reacted | ChangeKind::Unreacted => MessageChange::Reacted {
            emoji: emoji.clone().unwrap_or_default(),
            removed: *change == ChangeKind::Unreacted,
        },
        ChangeKind::Edited => MessageChange::Edited {
            body: body.clone().unwrap_or_default(),
        },
        ChangeKind::Deleted => MessageChange::Deleted,
    };
    let key = group
        .as_ref()
        .map_or_else(|| from.clone(), |g| group_key(&g.id));
    state.message_changed(&key, from, target, &change);
    true
}

/// Sends a reply typed as `local_id`.
pub(super) async fn reply(
    backend: Backend,
    to: String,
    local_id: String,
    body: String,
    target: String,
    done: mpsc::UnboundedSender<Completion>,
) {
    let report = match group_id_of(&to) {
        Some(id) => match backend.send_group_reply(id, &body, &target).await {
            Ok((id, sent)) => Completion::GroupQueued {
                to,
                local_id,
                id,
                report: sent.report(),
            },
            Err(reason) => Completion::SendFailed {
                to,
                local_id,
                reason,
            },
        },
        None => match backend.send_reply(&to, &body, &target).await {
            Ok(id) => Completion::Queued { to, local_id, id },
            Err(reason) => Completion::SendFailed {
                to,
                local_id,
                reason,
            },
        },
    };
    let _ = done.send(report);
}

/// Sends a reaction, edit or delete; it shows once client-core took it.
pub(super) async fn change(
    backend: Backend,
    request: ChangeRequest,
    done: mpsc::UnboundedSender<Completion>,
) {
    let report = match backend.send_change(&request).await {
        Ok(()) => Completion::Changed(request),
        Err(reason) => Completion::Problem(format!("not changed: {reason}")),
    };
    let _ = done.send(report);
}

/// Sends a typing notice; a failure is not worth a line on screen (the
/// notice is ephemeral and the next one is seconds away).
pub(super) async fn typing(backend: Backend, to: String, started: bool) {
    let _ = backend.send_typing(&to, started).await;
}
