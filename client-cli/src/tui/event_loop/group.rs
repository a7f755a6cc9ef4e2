//! The chat loop's group work: loading the groups at start, applying group
//! records (messages, membership changes, the outcome of our sends) to the
//! screen, and sending what was typed in a group conversation.
//!
//! Must never show a change without refreshing the member list it changed
//! (the header would lie about who reads along), or put a group message in
//! any conversation but its group's.

use tokio::sync::mpsc;

use super::Completion;
use crate::output::{change_sentence, Delivery, Record};
use crate::sanitize::SafeText;
use crate::tui::backend::group::{StoredGroup, GROUP_HISTORY};
use crate::tui::backend::Backend;
use crate::tui::state::{
    group_id_of, group_key, Action, ChatMessage, ChatState, Direction, FileView, MemberInput,
    Outgoing,
};

/// Every group and its stored messages, before the screen opens. Groups
/// that cannot be read leave a notice; the 1:1 chats still open.
pub(super) async fn load(backend: &Backend, state: &mut ChatState) {
    let groups = match backend.groups(GROUP_HISTORY).await {
        Ok(groups) => groups,
        Err(error) => {
            state.set_notice(
                crate::tui::state::Severity::Error,
                &format!("could not list groups: {error:#}"),
            );
            return;
        }
    };
    for group in groups {
        show_group(state, &group);
        let key = group_key(&group.id);
        for entry in group.history {
            let direction = if entry.outgoing {
                Direction::Outgoing(Outgoing::Progress(match entry.status.as_str() {
                    "pending" => Delivery::Pending,
                    "delivered" => Delivery::Delivered,
                    "read" => Delivery::Read,
                    _ => Delivery::Sent,
                }))
            } else {
                Direction::Incoming {
                    read: entry.status == "read" || entry.reported,
                }
            };
            state.load_message(
                &key,
                ChatMessage {
                    id: entry.id,
                    direction,
                    at: entry.at,
                    body: SafeText::multiline(&entry.body),
                    from: entry.from.as_deref().map(SafeText::line),
                    about: super::about::from_history(&entry.about),
                    file: entry
                        .file
                        .as_ref()
                        .map(|f| FileView::new(&f.id, &f.name, f.size)),
                },
            );
        }
    }
}

fn show_group(state: &mut ChatState, group: &StoredGroup) {
    let members: Vec<MemberInput<'_>> = group
        .members
        .iter()
        .map(|m| MemberInput {
            name: &m.username,
            admin: m.admin,
            me: m.me,
        })
        .collect();
    state.set_group(&group.id, &group.display_name, &members, group.active);
    state.set_group_policy(&group.id, group.members_may_rename);
    state.set_timer(&group_key(&group.id), group.disappearing);
}

/// Brings the group's header (name, members, whether we are in it) up to
/// date; a group the backend no longer lists keeps what it showed.
async fn refresh(backend: &Backend, state: &mut ChatState, id: &str) {
    if let Some(group) = backend.group(id).await {
        show_group(state, &group);
    }
}

/// One group record from the client or the daemon.
pub(super) async fn apply_record(
    backend: &Backend,
    state: &mut ChatState,
    record: Record,
) -> Option<Action> {
    match record {
        Record::Message {
            from,
            id,
            body,
            received_at,
            group: Some(group),
            file,
            reply_to,
            ..
        } => {
            if state.find_group(&group.id).is_none() {
                refresh(backend, state, &group.id).await;
            }
            let action = state.receive_group_message(&group.id, &from, &id, &body, received_at);
            if let Some(target) = reply_to {
                state.set_reply_to(&group_key(&group.id), &id, &target);
            }
            if let Some(file) = file {
                let view = FileView::new(&file.id, &file.name, file.size);
                state.set_file(&group_key(&group.id), &id, view);
            }
            action
        }
        Record::GroupDisappearingTimer { group, by, seconds } => {
            let now = time::OffsetDateTime::now_utc();
            state.group_timer_changed(&group.id, by.as_deref(), seconds, now);
            None
        }
        Record::GroupMessagesExpired { group, ids } => {
            state.messages_expired(&group_key(&group.id), &ids);
            None
        }
        changed @ (Record::MessageChanged { .. } | Record::MessageChangeRefused { .. }) => {
            super::about::apply_record(state, &changed);
            None
        }
        change @ Record::GroupChange { .. } => {
            let text = change_sentence(&change).unwrap_or_default();
            let Record::GroupChange { group, at, .. } = change else {
                return None;
            };
            refresh(backend, state, &group.id).await;
            state.group_change(&group.id, &text, at);
            None
        }
        Record::Sent {
            id,
            group: Some(group),
            ..
        } => {
            state.receipt(&group_key(&group.id), &id, Delivery::Sent);
            None
        }
        Record::SendFailed {
            to,
            id,
            reason,
            group: Some(group),
        } => {
            state.refused(
                &group_key(&group.id),
                &id,
                &format!("not sent to {to}: {reason}"),
            );
            None
        }
        Record::Receipt {
            from, id, status, ..
        } => {
            state.receipt(&from, &id, status);
            None
        }
        _ => None,
    }
}

/// Sends what was typed in the group conversation `key`.
pub(super) async fn send(
    backend: Backend,
    key: String,
    local_id: String,
    body: String,
    done: mpsc::UnboundedSender<Completion>,
) {
    let id = group_id_of(&key).unwrap_or_default().to_owned();
    let report = match backend.send_group_text(&id, &body).await {
        Ok((id, sent)) => Completion::GroupQueued {
            to: key,
            local_id,
            id,
            report: sent.report(),
        },
        Err(reason) => Completion::SendFailed {
            to: key,
            local_id,
            reason,
        },
    };
    let _ = done.send(report);
}

/// The group message typed as `local_id` left as `id`, as far as `report`.
pub(super) fn queued(
    state: &mut ChatState,
    key: &str,
    local_id: &str,
    id: &str,
    report: Option<Outgoing>,
) {
    state.message_queued(key, local_id, id);
    match report {
        Some(Outgoing::Progress(delivery)) => state.receipt(key, id, delivery),
        Some(Outgoing::Failed(reason)) => state.refused(key, id, reason.as_str()),
        None => {}
    }
}
