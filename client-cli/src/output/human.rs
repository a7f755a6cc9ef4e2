//! The human-readable form of a [`Record`]: one line (or an indented
//! block) per record, for a person at a terminal.
//!
//! It must never print a contact-controlled string except through
//! [`SafeText`], and must never let a message body forge a line that looks
//! like another record (continuation lines are indented).

use time::OffsetDateTime;

use super::group::{self, label};
use super::record::{ChangeKind, Delivery, MessageDirection, NameStateLabel, Record};
use crate::sanitize::SafeText;

impl Record {
    /// The human form; every contact-controlled string is sanitised.
    pub fn to_human(&self) -> String {
        let s = SafeText::line;
        if let Some(line) = group::to_human(self) {
            return line;
        }
        match self {
            Record::Message {
                from,
                received_at,
                body,
                group,
                file,
                ..
            } => {
                // The relay's acceptance time, not the sender's claimed clock.
                let header = match group {
                    Some(group) => format!(
                        "[{}] {} {}: ",
                        human_time(*received_at),
                        label(group),
                        s(from)
                    ),
                    None => format!("[{}] {}: ", human_time(*received_at), s(from)),
                };
                let indent = " ".repeat(header.chars().count());
                let mut text = header;
                // Continuation lines are indented so a body cannot forge a
                // line that looks like another sender's message.
                for (i, line) in SafeText::multiline(body).lines().enumerate() {
                    if i > 0 {
                        text.push('\n');
                        text.push_str(&indent);
                    }
                    text.push_str(line);
                }
                if let Some(file) = file {
                    text.push_str(&format!(" (umbra file get {})", s(&file.id)));
                }
                text
            }
            Record::SentElsewhere {
                to,
                sent_at,
                body,
                file,
                ..
            } => {
                // Our own message, but not typed here: said so, so it is
                // never mistaken for one this device sent.
                let header = format!(
                    "[{}] me (another device) to {}: ",
                    human_time(*sent_at),
                    s(to)
                );
                let mut text = indented(header, body);
                if let Some(file) = file {
                    text.push_str(&format!(" (umbra file get {})", s(&file.id)));
                }
                text
            }
            Record::Settings {
                read_receipts,
                typing,
            } => format!(
                "read receipts: {}\ntyping notices: {}",
                on_off(*read_receipts),
                on_off(*typing)
            ),
            Record::Found {
                conversation,
                direction,
                from,
                received_at,
                body,
                group,
                ..
            } => {
                let header = match (group, direction) {
                    (Some(group), _) => format!(
                        "[{}] {} {}: ",
                        human_time(*received_at),
                        label(group),
                        s(from)
                    ),
                    (None, MessageDirection::Outgoing) => format!(
                        "[{}] {} to {}: ",
                        human_time(*received_at),
                        s(from),
                        s(conversation)
                    ),
                    (None, MessageDirection::Incoming) => {
                        format!("[{}] {}: ", human_time(*received_at), s(from))
                    }
                };
                indented(header, body)
            }
            Record::FileSent {
                id,
                file,
                group: Some(group),
                ..
            } => format!(
                "sent {} ({} bytes) to {} ✓ (id {})",
                s(&file.name),
                file.size,
                label(group),
                s(id)
            ),
            Record::FileSent { to, id, file, .. } => format!(
                "sent {} ({} bytes) to {} ✓ (id {})",
                s(&file.name),
                file.size,
                s(to),
                s(id)
            ),
            Record::FileSaved { file, path } => format!(
                "saved {} ({} bytes, verified) to {}",
                s(&file.name),
                file.size,
                s(path)
            ),
            Record::Receipt {
                from, id, status, ..
            } => format!(
                "{} {} message {} ({})",
                s(from),
                match status {
                    Delivery::Read => "read",
                    _ => "received",
                },
                s(id),
                status.mark()
            ),
            Record::KeyChanged {
                contact,
                safety_number,
                ..
            } => format!(
                "WARNING: the identity key of {c} has changed. Messages to {c} are blocked.\n\
                 New safety number: {n}\n\
                 Compare it with {c} in person, then run: umbra verify {c} --accept '{n}'",
                c = s(contact),
                n = s(safety_number)
            ),
            Record::MessageChanged {
                from,
                target,
                change,
                emoji,
                body,
                group,
                ..
            } => {
                let what = match change {
                    ChangeKind::Reacted => format!("reacted {}", s(emoji.as_deref().unwrap_or(""))),
                    ChangeKind::Unreacted => {
                        format!("took back {}", s(emoji.as_deref().unwrap_or("")))
                    }
                    ChangeKind::Edited => format!("edited: {}", s(body.as_deref().unwrap_or(""))),
                    ChangeKind::Deleted => "deleted it for everyone".to_owned(),
                };
                let place = group.as_ref().map(|g| format!("{} ", label(g))).unwrap_or_default();
                format!("{place}{} on message {}: {what}", s(from), s(target))
            }
            Record::MessageChangeRefused {
                from,
                target,
                reason,
                group,
                ..
            } => {
                let place = group.as_ref().map(|g| format!("{} ", label(g))).unwrap_or_default();
                format!(
                    "{place}refused a change by {} to message {}: {}",
                    s(from),
                    s(target),
                    s(reason)
                )
            }
            Record::Sent {
                group: Some(group),
                id,
                ..
            } => format!("sent to {} ✓ (id {})", label(group), s(id)),
            Record::Sent { to, id, .. } => format!("sent to {} ✓ (id {})", s(to), s(id)),
            Record::SendFailed {
                to,
                id,
                reason,
                group: Some(group),
            } => format!(
                "NOT sent to {} in {} (id {}): {}",
                s(to),
                label(group),
                s(id),
                s(reason)
            ),
            Record::SendFailed {
                to, id, reason, ..
            } => {
                format!("NOT sent to {} (id {}): {}", s(to), s(id), s(reason))
            }
            Record::DecryptionFailed { from, reason, .. } => format!(
                "could not decrypt a message from {}: {}",
                from.as_deref()
                    .map_or_else(|| "an unknown sender".to_owned(), |f| s(f).to_string()),
                s(reason)
            ),
            Record::Contact {
                display_name,
                trust,
                name_state,
                account_id,
                ..
            } => match name_state {
                NameStateLabel::Current => format!("{}\t{}", s(display_name), trust.label()),
                NameStateLabel::Contested => format!(
                    "{}\t{}\tname contested by another account: see `umbra verify {}`",
                    s(display_name),
                    trust.label(),
                    s(display_name)
                ),
                NameStateLabel::OtherAccount => format!(
                    "{}\t{}\tnot the contact you know by that name (account {})",
                    s(display_name),
                    trust.label(),
                    s(account_id)
                ),
            },
            Record::NameReassigned {
                contact,
                new_display_name,
                ..
            } => format!(
                "WARNING: the name {c} now belongs to another account, not the {c} you know.\n\
                 Its messages are shown as {n}. Messages to {c} are blocked until you choose:\n\
                 compare safety numbers (umbra verify {c}), then umbra verify {c} --accept 'NUMBER'",
                c = s(contact),
                n = s(new_display_name)
            ),
            Record::SafetyNumber {
                contact,
                safety_number,
                trust,
            } => format!(
                "Safety number with {}: {} ({})",
                s(contact),
                s(safety_number),
                trust.label()
            ),
            Record::DirectoryRoot {
                directory_key,
                vrf_key,
                epoch,
                map_root,
                log_root,
            } => match (epoch, map_root, log_root) {
                (Some(e), Some(m), Some(l)) => format!(
                    "directory key {}\nVRF key {}\nepoch {e}\nmap root {}\nlog root {}",
                    s(directory_key),
                    s(vrf_key),
                    s(m),
                    s(l)
                ),
                _ => format!(
                    "directory key {}\nVRF key {}\nno head verified yet",
                    s(directory_key),
                    s(vrf_key)
                ),
            },
            Record::OwnKeyNotPublishedByMe {
                version,
                epoch,
                reason,
            } => format!(
                "ALARM: the relay's key directory shows {} for this account (version {version}, \
                 epoch {epoch}), which this account never published. Someone may be posing as you; \
                 tell your contacts to compare safety numbers.",
                s(reason)
            ),
            Record::DirectoryAlarm { reason, account_id } => match account_id {
                Some(a) => format!(
                    "ALARM: the relay served keys for account {} that its key directory does not hold; they were refused",
                    s(a)
                ),
                None => format!(
                    "ALARM: the relay's key directory contradicts what this client verified before ({}); compare `umbra directory root` with others",
                    s(reason)
                ),
            },
            Record::Account {
                username,
                device_id,
                server,
                logged_in: true,
                ..
            } => format!("{} (device {device_id}) on {}", s(username), s(server)),
            Record::Account {
                username,
                device_id,
                server,
                logged_in: false,
                ..
            } => format!(
                "{} (device {device_id}) on {}: logged out (umbra login {} resumes)",
                s(username),
                s(server),
                s(username)
            ),
            Record::Drained { count } => match count {
                0 => "no new messages".to_owned(),
                1 => "1 message received".to_owned(),
                n => format!("{n} messages received"),
            },
            Record::Done { detail, .. } => s(detail).to_string(),
            Record::ConversationDeleted {
                with,
                by_peer,
                erased,
            } => {
                let who = if *by_peer {
                    format!("{} deleted the conversation with you", s(with))
                } else {
                    format!(
                        "another device of yours deleted the conversation with {}",
                        s(with)
                    )
                };
                let noun = if *erased == 1 { "message" } else { "messages" };
                format!("{who}: {erased} {noun} erased here")
            }
            Record::MessagesExpired { with, ids } => {
                let noun = if ids.len() == 1 { "message" } else { "messages" };
                format!("{} disappearing {noun} with {} deleted", ids.len(), s(with))
            }
            Record::GroupMessagesExpired { group, ids } => {
                let noun = if ids.len() == 1 { "message" } else { "messages" };
                format!("{} disappearing {noun} in {} deleted", ids.len(), label(group))
            }
            Record::GroupDisappearingTimer { group, by, seconds } => {
                let timer = crate::commands::disappearing::format_timer(*seconds);
                match by {
                    Some(by) => format!(
                        "{} set disappearing messages in {} to {timer}",
                        s(by),
                        label(group)
                    ),
                    None => format!(
                        "you set disappearing messages in {} to {timer}",
                        label(group)
                    ),
                }
            }
            Record::DisappearingTimer {
                with,
                by_peer,
                seconds,
            } => {
                let timer = crate::commands::disappearing::format_timer(*seconds);
                if *by_peer {
                    format!("{} set disappearing messages to {timer}", s(with))
                } else {
                    format!("you set disappearing messages with {} to {timer}", s(with))
                }
            }
            // Our own code, base32 only: the first line, bare, for scripts
            // and for copying.
            Record::LinkCode { link_code } => s(link_code).to_string(),
            Record::Blocked { display_name, .. } => format!("{}\tblocked", s(display_name)),
            Record::Device {
                device_id,
                created_at,
                last_seen_at,
                this_device,
                listed,
            } => {
                let seen = last_seen_at.map_or("never seen".to_owned(), |t| {
                    format!("last seen {}", human_time(t))
                });
                let mut line = format!(
                    "device {device_id}\tadded {}\t{seen}",
                    human_time(*created_at)
                );
                if *this_device {
                    line.push_str("\tthis device");
                }
                if !*listed {
                    line.push_str("\tnot in the device list");
                }
                line
            }
            // Drawn by `group::to_human` above.
            Record::Group { .. } | Record::GroupMember { .. } | Record::GroupChange { .. } => {
                String::new()
            }
        }
    }
}

/// `on` or `off`, as `settings` takes them.
fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// `header` then the sanitised `body`, its continuation lines indented
/// under the first so a body cannot forge a line of another record.
fn indented(header: String, body: &str) -> String {
    let indent = " ".repeat(header.chars().count());
    let mut text = header;
    for (i, line) in SafeText::multiline(body).lines().enumerate() {
        if i > 0 {
            text.push('\n');
            text.push_str(&indent);
        }
        text.push_str(line);
    }
    text
}

/// `YYYY-MM-DD HH:MM UTC`: short, unambiguous, no locale.
pub fn human_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}
