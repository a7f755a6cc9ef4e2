//! The chat loop's side effects: each [`Action`] the state asks for starts
//! as a spawned task whose result comes back as a [`Completion`], so the
//! loop never waits for the network.
//!
//! Must never: run an action's network work on the loop itself, or drop a
//! failure without a completion that says so (typing notices aside: a lost
//! one only delays what the other side sees). Moved out of event_loop.rs
//! unchanged, to keep that file under 600 lines.

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{about, commands, conversation, devices, files, group, Completion};
use crate::tui::backend::{Backend, KeyDecision};
use crate::tui::state::{group_id_of, Action};

/// Starts the work an action asks for; results come back as [`Completion`]s.
pub(super) fn perform(
    backend: &Backend,
    action: Action,
    done: &mpsc::UnboundedSender<Completion>,
    tasks: &mut JoinSet<()>,
) {
    let backend = backend.clone();
    let done = done.clone();
    match action {
        Action::Send { to, local_id, body } if group_id_of(&to).is_some() => {
            tasks.spawn(group::send(backend, to, local_id, body, done));
        }
        Action::Reply {
            to,
            local_id,
            body,
            target,
        } => {
            tasks.spawn(about::reply(backend, to, local_id, body, target, done));
        }
        Action::Change(request) => {
            tasks.spawn(about::change(backend, request, done));
        }
        Action::Typing { to, started } => {
            tasks.spawn(about::typing(backend, to, started));
        }
        Action::Block { contact, blocked } => {
            tasks.spawn(commands::set_blocked(backend, contact, blocked, done));
        }
        Action::Search { text } => {
            tasks.spawn(commands::search(backend, text, done));
        }
        Action::Send { to, local_id, body } => {
            tasks.spawn(async move {
                let report = match backend.send_text(&to, &body).await {
                    Ok(id) => Completion::Queued { to, local_id, id },
                    Err(reason) => Completion::SendFailed {
                        to,
                        local_id,
                        reason,
                    },
                };
                let _ = done.send(report);
            });
        }
        // In a group, each sender gets a receipt for its own messages.
        Action::MarkRead { contact, ids } if group_id_of(&contact).is_some() => {
            tasks.spawn(async move {
                let id = group_id_of(&contact).unwrap_or_default();
                if let Err(error) = backend.mark_group_read(id, &ids).await {
                    let _ = done.send(Completion::Problem(format!(
                        "could not send read receipts in the group: {error}"
                    )));
                }
            });
        }
        Action::MarkRead { contact, .. } => {
            tasks.spawn(async move {
                if let Err(error) = backend.mark_read(&contact).await {
                    let _ = done.send(Completion::Problem(format!(
                        "could not send read receipts to {contact}: {error}"
                    )));
                }
            });
        }
        Action::AcceptKey {
            contact,
            safety_number,
        } => {
            tasks.spawn(async move {
                let report = match backend.accept_key(&contact, &safety_number).await {
                    KeyDecision::Accepted => Completion::KeyAccepted { contact },
                    KeyDecision::MovedOn(safety_number) => Completion::KeyMovedOn {
                        contact,
                        safety_number,
                    },
                    KeyDecision::Problem(text) => Completion::Problem(text),
                };
                let _ = done.send(report);
            });
        }
        Action::ListDevices => drop(tasks.spawn(devices::list(backend, done))),
        Action::DeleteConversation { contact, everyone } => {
            tasks.spawn(conversation::delete(backend, contact, everyone, done));
        }
        Action::SetDisappearing { contact, seconds } => {
            tasks.spawn(conversation::set_timer(backend, contact, seconds, done));
        }
        Action::SendFile { to, local_id, path } => {
            tasks.spawn(files::send(backend, to, local_id, path, done));
        }
        Action::SaveFile { id, name, dest } => {
            tasks.spawn(files::save(backend, id, name, dest, done));
        }
        Action::Quit => {}
    }
}
