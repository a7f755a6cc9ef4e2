//! Files on the chat screen (docs/PROTOCOL.md §14): `/file PATH` sends
//! one to the open conversation, 1:1 or group (shown at once as ours, pending, with
//! the upload's progress in the notice line), a file message is a line
//! with its name and size, and `/save [^N] [PATH]` saves the newest file
//! (or the N-th message from the bottom) through the code `umbra file get`
//! runs, which saves under client-core's sanitised name only.
//!
//! It must never hold a file name from a contact except as [`SafeText`],
//! never save under a name of its own making (the name to save under is
//! client-core's), and never send a file where a text could not go.

use std::path::PathBuf;

use super::{Action, ChatMessage, ChatState, Direction, Outgoing, Severity};
use crate::output::Delivery;
use crate::sanitize::SafeText;

/// A file as a message shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileView {
    /// client-core's local id: what `umbra file get` takes.
    pub id: String,
    /// The sanitised name, as client-core gave it.
    pub name: SafeText,
    pub size: u64,
}

impl FileView {
    pub fn new(id: &str, name: &str, size: u64) -> Self {
        Self {
            id: id.to_owned(),
            name: SafeText::line(name),
            size,
        }
    }
}

/// A size as people read it: `512 B`, `4.9 KiB`, `5.0 MiB`, `1.2 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Display only: the float's rounding never reaches a decision.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `/file PATH`: sends the file at PATH to the open conversation (a
/// contact, or every member of a group).
pub(super) fn send_file(state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    if args.is_empty() {
        return Err("usage: /file PATH".to_owned());
    }
    state.may_send()?;
    let conversation = state
        .open()
        .ok_or("no conversation open: type /open USERNAME first")?;
    // A group's key (`group:ID`) goes as is: the backend sends to the
    // group it names (uploaded once, the pointer to every member); one we
    // left was refused by `may_send`.
    let to = conversation.username.clone();
    let path = PathBuf::from(args);
    let shown = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.to_owned());
    state.next_local_id += 1;
    let local_id = format!("local-{}", state.next_local_id);
    let now = state.now;
    state.conversation_mut(&to).push(ChatMessage {
        id: local_id.clone(),
        direction: Direction::Outgoing(Outgoing::Progress(Delivery::Pending)),
        at: now,
        body: SafeText::line(&format!("sending {shown}")),
        from: None,
        about: Default::default(),
        file: None,
    });
    state.scroll = 0;
    state.sort();
    Ok(Some(Action::SendFile { to, local_id, path }))
}

/// `/save [^N] [PATH]`: saves the newest file here (or message `^N`'s)
/// into PATH (a directory, or a file name), the current directory by
/// default.
pub(super) fn save(state: &mut ChatState, args: &str) -> Result<Option<Action>, String> {
    let (_, message, rest) = state
        .pick(args, |m| m.file.is_some(), "a file")
        .map_err(|e| {
            if e.starts_with("there is no") {
                "there is no file here to save".to_owned()
            } else {
                e
            }
        })?;
    let file = message.file.ok_or("that message is not a file")?;
    let dest = (!rest.is_empty()).then(|| PathBuf::from(rest));
    Ok(Some(Action::SaveFile {
        id: file.id,
        name: file.name.to_string(),
        dest,
    }))
}

impl ChatState {
    /// Message `id` of conversation `key` carries `file`.
    pub fn set_file(&mut self, key: &str, id: &str, file: FileView) {
        let message = self
            .find_mut(key)
            .and_then(|c| c.messages.iter_mut().find(|m| m.id == id));
        if let Some(message) = message {
            message.body = SafeText::line(&format!("[file] {}", file.name));
            message.file = Some(file);
        }
    }

    /// The file typed as `local_id` left as message `id`.
    pub fn file_sent(&mut self, to: &str, local_id: &str, id: &str, file: FileView) {
        self.message_queued(to, local_id, id);
        self.receipt(to, id, Delivery::Sent);
        self.set_file(to, id, file);
        if self
            .notice
            .as_ref()
            .is_some_and(|n| n.severity == Severity::Info)
        {
            self.notice = None;
        }
    }

    /// How far a transfer got, in the notice line.
    pub fn transfer_progress(&mut self, what: &str, done: u64, total: u64) {
        let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
        self.set_notice(
            Severity::Info,
            &format!(
                "{what}: {percent}% ({} of {})",
                human_size(done),
                human_size(total)
            ),
        );
    }
}
