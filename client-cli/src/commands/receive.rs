//! `receive`: print everything the relay has queued for us, then exit.
//!
//! Messages are acknowledged to the relay by client-core only after they are
//! stored locally. Every incoming message no command has printed yet is
//! printed: those stored while another command (a `send`) was connected,
//! then this run's. They are marked reported only after printing, so a
//! crash while printing shows them again rather than never. Receipts,
//! refusals of earlier sends, key changes, decryption failures and the
//! messages our other devices sent (`sent_elsewhere`) are printed too: a
//! script must see every one of them.
//!
//! Must never print a contact-controlled string unsanitised (output.rs
//! guarantees it) and never hide a key change.

use std::time::Duration;

use anyhow::Context as _;
use std::collections::HashSet;

use umbra_client_core::{Client, DecryptFailure, Event, KtFailure, MessageId, UnreportedMessage};

use crate::commands::group;
use crate::exit_status::ExitStatus;
use crate::output::{time_from_unix_ms, Delivery, FileRef, Printer, Record};
use crate::session::Session;

pub async fn run(session: &Session, timeout: Duration) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = receive(&client, &mut session.printer(), timeout).await;
    client.shutdown().await;
    result
}

pub(crate) async fn receive<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    // Self-monitoring (PROTOCOL §16.9 item 5) before the queue is read, so
    // its alarm is among what this run prints; it also runs on each
    // connection, where a one-shot command may exit before it finishes.
    match client.check_own_keys().await {
        Ok(_) | Err(umbra_client_core::Error::KeyTransparency(KtFailure::NotPinned)) => {}
        Err(e) => tracing::warn!(error = %e, "key-transparency self-monitoring failed"),
    }
    let events = client
        .receive_until_empty(timeout)
        .await
        .context("receiving from the relay")?;
    // The connection's own monitoring may have raised the same alarm.
    let mut alarms = Vec::new();
    let events: Vec<Event> = events
        .into_iter()
        .filter(|e| {
            if !matches!(e, Event::OwnKeyNotPublishedByMe { .. }) {
                return true;
            }
            if alarms.contains(e) {
                return false;
            }
            alarms.push(e.clone());
            true
        })
        .collect();
    let unreported = client
        .unreported_messages()
        .await
        .context("reading the local history")?;
    let unreported_groups = client
        .unreported_group_messages()
        .await
        .context("reading the local group history")?;
    let mut messages = 0u64;
    // Messages stored by an earlier command (a `send` that was connected
    // when they arrived) come first: they are older than this run's.
    for message in earlier_messages(&unreported, &events) {
        messages += 1;
        printer.emit(&message_record(message))?;
    }
    let earlier_groups = group::unreported::earlier(&unreported_groups, &events);
    if !earlier_groups.is_empty() {
        let groups = group::summaries(client).await?;
        for message in earlier_groups {
            messages += 1;
            printer.emit(&group::unreported::record(message, &groups))?;
        }
    }
    for event in events {
        if matches!(event, Event::Message { .. } | Event::GroupMessage { .. }) {
            messages += 1;
        }
        for record in records_for(client, event).await {
            printer.emit(&record)?;
        }
    }
    printer.emit(&Record::Drained { count: messages })?;
    // Only after printing: a crash in between prints them again next time,
    // which beats never printing them.
    client
        .mark_reported(&unreported)
        .await
        .context("recording the printed messages")?;
    client
        .mark_group_reported(&unreported_groups)
        .await
        .context("recording the printed group messages")?;
    Ok(ExitStatus::Success)
}

/// The unreported messages that this run's events do not already carry.
pub(crate) fn earlier_messages<'a>(
    unreported: &'a [UnreportedMessage],
    events: &[Event],
) -> Vec<&'a UnreportedMessage> {
    let in_this_run: HashSet<MessageId> = events
        .iter()
        .filter_map(|event| match event {
            Event::Message { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    unreported
        .iter()
        .filter(|message| !in_this_run.contains(&message.id))
        .collect()
}

pub(crate) fn message_record(message: &UnreportedMessage) -> Record {
    Record::Message {
        from: message.from.clone(),
        id: message.id.to_hex(),
        sent_at: time_from_unix_ms(message.sent_at_ms),
        received_at: time_from_unix_ms(message.received_at_ms),
        body: message.body.clone(),
        group: None,
        file: message.file.as_ref().map(FileRef::from),
        reply_to: message.reply_to.map(|id| id.to_hex()),
    }
}

/// What to print for one event. Connection changes, typing notices and
/// prekey housekeeping are not a script's business and print nothing.
pub async fn records_for(client: &Client, event: Event) -> Vec<Record> {
    if let Some(records) = crate::commands::group::events::records_for_group(client, &event).await {
        return records;
    }
    records_of(event)
}

/// The records of an event that is not about a group: everything it
/// prints comes with the event (typed reasons, the new safety number).
pub(crate) fn records_of(event: Event) -> Vec<Record> {
    let now = time::OffsetDateTime::now_utc();
    match event {
        Event::Message {
            from,
            id,
            body,
            sent_at_ms,
            received_at_ms,
            file,
            reply_to,
        } => vec![Record::Message {
            from,
            id: id.to_hex(),
            sent_at: time_from_unix_ms(sent_at_ms),
            received_at: time_from_unix_ms(received_at_ms),
            body,
            group: None,
            file: file.as_ref().map(FileRef::from),
            reply_to: reply_to.map(|id| id.to_hex()),
        }],
        Event::SentElsewhere {
            to,
            id,
            body,
            sent_at_ms,
            file,
            reply_to,
        } => vec![Record::SentElsewhere {
            to,
            id: id.to_hex(),
            sent_at: time_from_unix_ms(sent_at_ms),
            body,
            file: file.as_ref().map(FileRef::from),
            reply_to: reply_to.map(|id| id.to_hex()),
        }],
        Event::MessageChanged {
            from,
            id,
            target,
            change,
            group: None,
            ..
        } => vec![crate::commands::about::changed_record(
            from, id, target, change, None,
        )],
        Event::MessageChangeRefused {
            from,
            id,
            target,
            reason,
            group: None,
        } => vec![Record::MessageChangeRefused {
            from,
            id: id.to_hex(),
            target: target.to_hex(),
            reason: reason.code().to_owned(),
            group: None,
        }],
        Event::ConversationDeleted {
            with,
            by_peer,
            erased,
        } => vec![Record::ConversationDeleted {
            with,
            by_peer,
            erased,
        }],
        Event::DisappearingTimerChanged {
            with,
            by_peer,
            seconds,
        } => vec![Record::DisappearingTimer {
            with,
            by_peer,
            seconds,
        }],
        Event::MessagesExpired { with, ids } => vec![Record::MessagesExpired {
            with,
            ids: ids.iter().map(MessageId::to_hex).collect(),
        }],
        Event::Sent { to, id } => vec![Record::Sent {
            to,
            id: id.to_hex(),
            sent_at: now,
            group: None,
        }],
        Event::SendFailed { to, id, reason } => vec![Record::SendFailed {
            to,
            id: id.to_hex(),
            reason: reason.to_string(),
            group: None,
        }],
        Event::DeliveryReceipt { from, ids } => receipts(from, ids, Delivery::Delivered, now),
        Event::ReadReceipt { from, ids } => receipts(from, ids, Delivery::Read, now),
        Event::KeyChanged {
            username,
            account,
            safety_number,
        } => vec![Record::KeyChanged {
            contact: username.to_string(),
            safety_number: safety_number.to_string(),
            account_id: Some(account.to_hex()),
        }],
        Event::DecryptionFailed { from, reason } => vec![decryption_failed(from, &reason)],
        Event::OwnKeyNotPublishedByMe {
            version,
            epoch,
            reason,
        } => vec![Record::OwnKeyNotPublishedByMe {
            version,
            epoch,
            reason,
        }],
        Event::DirectoryInconsistent { reason } => vec![Record::DirectoryAlarm {
            reason,
            account_id: None,
        }],
        Event::DirectoryRefused { account } => vec![Record::DirectoryAlarm {
            reason: "keys the key directory does not hold".to_owned(),
            account_id: Some(account.to_hex()),
        }],
        Event::NameReassigned {
            username,
            known,
            newcomer,
        } => {
            let hex = newcomer.to_hex();
            vec![Record::NameReassigned {
                contact: username.to_string(),
                known_account_id: known.to_hex(),
                new_account_id: hex.clone(),
                new_display_name: format!("{username}#{}", &hex[..8]),
            }]
        }
        Event::Lagged { missed } => {
            // Messages among them are still printed (from the store, as
            // unreported); receipts and notices are not: say so.
            eprintln!(
                "warning: {missed} events were dropped before printing; messages among them \
                 are printed from the local history, receipts and notices are not"
            );
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// A `decryption_failed` record: the reason's words, its code and what
/// became of the envelope (docs/CLI.md).
pub(crate) fn decryption_failed(from: Option<String>, reason: &DecryptFailure) -> Record {
    Record::DecryptionFailed {
        from,
        reason: reason.to_string(),
        reason_code: Some(reason.code().to_owned()),
        outcome: Some(reason.outcome().code().to_owned()),
    }
}

fn receipts(
    from: String,
    ids: Vec<umbra_client_core::MessageId>,
    status: Delivery,
    at: time::OffsetDateTime,
) -> Vec<Record> {
    ids.into_iter()
        .map(|id| Record::Receipt {
            from: from.clone(),
            id: id.to_hex(),
            status,
            at,
        })
        .collect()
}

#[cfg(test)]
mod reason_tests;
#[cfg(test)]
mod tests {
    use super::*;

    fn unreported(id: u8, body: &str) -> UnreportedMessage {
        UnreportedMessage {
            from: "alice".into(),
            account_id: umbra_protocol::wire::AccountId::from_bytes([0; 16]),
            id: MessageId([id; 16]),
            body: body.into(),
            sent_at_ms: 1,
            received_at_ms: 2,
            file: None,
            reply_to: None,
        }
    }

    fn arrived(id: u8) -> Event {
        Event::Message {
            from: "alice".into(),
            id: MessageId([id; 16]),
            body: "now".into(),
            sent_at_ms: 3,
            received_at_ms: 4,
            file: None,
            reply_to: None,
        }
    }

    #[test]
    fn messages_stored_by_an_earlier_command_are_printed_once() {
        let stored = [unreported(1, "while sending"), unreported(2, "just now")];
        // Message 2 arrived in this run and is printed from its event;
        // message 1 only exists in the store and must not be skipped.
        let earlier = earlier_messages(&stored, &[arrived(2), Event::QueueEmpty]);
        assert_eq!(
            earlier.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            vec!["while sending"]
        );
        assert!(earlier_messages(&stored, &[arrived(1), arrived(2)]).is_empty());
        assert_eq!(earlier_messages(&stored, &[]).len(), 2);
    }

    #[test]
    fn an_earlier_message_prints_like_a_received_one() {
        let record = message_record(&unreported(7, "hello"));
        let Record::Message { from, id, body, .. } = record else {
            panic!("not a message record");
        };
        assert_eq!((from.as_str(), body.as_str()), ("alice", "hello"));
        assert_eq!(id, "07".repeat(16));
    }
}
