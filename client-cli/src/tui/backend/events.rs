//! A running daemon's notifications, turned back into the events the chat
//! loop handles ([`ChatEvent`]): a 1:1 record becomes the client-core
//! [`Event`] it was printed from, a group record stays a record (group
//! events are read as records on both paths), and a reason client-core
//! types arrives as the daemon's words ([`ChatEvent::Notice`]).
//!
//! Must never: fail on a record it does not know (a newer daemon may send
//! more types; they are skipped), or let a group's typing pass for the
//! member's 1:1 typing.

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::Value;
use umbra_client_core::{Event, MessageId};

use super::{connection_view, unix_ms, ChatEvent, ConnectionView};
use crate::output::{Delivery, Record};
/// The daemon's notifications as the events the chat loop handles. Record
/// types the chat does not show (and ones a newer daemon may add) are
/// skipped, as every daemon client must.
pub fn daemon_events(
    initial: ConnectionView,
    notifications: tokio::sync::mpsc::UnboundedReceiver<Value>,
) -> BoxStream<'static, ChatEvent> {
    let rest = futures_util::stream::unfold(notifications, |mut rx| async move {
        let record = rx.recv().await?;
        let events: Vec<ChatEvent> = if let Some(typing) = group_typing(&record) {
            vec![ChatEvent::Core(typing)]
        } else if is_about_group(&record) {
            group_record(&record)
                .map(ChatEvent::Group)
                .into_iter()
                .collect()
        } else {
            event_from_record(&record).into_iter().collect()
        };
        Some((events, rx))
    })
    .flat_map(futures_util::stream::iter);
    futures_util::stream::iter(vec![ChatEvent::Connection(initial)])
        .chain(rest)
        .boxed()
}

/// Whether a notification is about a group (a group message, a change,
/// the outcome of a group send, typing in a group).
fn is_about_group(value: &Value) -> bool {
    value.get("group").is_some_and(|g| !g.is_null()) || value["type"] == "group_change"
}

/// A `typing` notification in a group as the event the chat shows in
/// that group's title (never as the member's 1:1 typing); `None` for
/// anything else, or a malformed one.
fn group_typing(value: &Value) -> Option<Event> {
    if value["type"] != "typing" {
        return None;
    }
    let group = umbra_client_core::GroupId::from_hex(value["group"]["id"].as_str()?)?;
    Some(Event::GroupTyping {
        group,
        from: value["from"].as_str()?.to_owned(),
        started: value["started"].as_bool()?,
    })
}

/// A group notification as its record. Group typing has none (it is
/// [`group_typing`]'s), and must not pass for the member's 1:1 typing. A
/// malformed one is dropped too.
fn group_record(value: &Value) -> Option<Record> {
    if value["type"] == "typing" {
        return None;
    }
    serde_json::from_value(value.clone()).ok()
}

/// A record's `file` object as client-core's, if it has one.
pub(super) fn file_of(value: &Value) -> Option<umbra_client_core::FileInfo> {
    serde_json::from_value::<crate::output::FileRef>(value.clone())
        .ok()
        .map(|f| umbra_client_core::FileInfo {
            id: f.id,
            name: f.name,
            size: f.size,
            media_type: f.media_type,
        })
}

fn event_from_record(record: &Value) -> Option<ChatEvent> {
    let text = |field: &str| record[field].as_str().map(str::to_owned);
    let id = |field: &str| record[field].as_str().and_then(MessageId::from_hex);
    let event = match record["type"].as_str().unwrap_or_default() {
        "message" => (|| {
            Some(Event::Message {
                from: text("from")?,
                id: id("id")?,
                body: text("body")?,
                sent_at_ms: unix_ms(&record["sent_at"]).unwrap_or(0),
                received_at_ms: unix_ms(&record["received_at"])?,
                file: file_of(&record["file"]),
                reply_to: id("reply_to"),
            })
        })(),
        "sent_elsewhere" => (|| {
            Some(Event::SentElsewhere {
                to: text("to")?,
                id: id("id")?,
                body: text("body")?,
                sent_at_ms: unix_ms(&record["sent_at"])?,
                file: file_of(&record["file"]),
                reply_to: id("reply_to"),
            })
        })(),
        "conversation_deleted" => (|| {
            Some(Event::ConversationDeleted {
                with: text("with")?,
                by_peer: record["by_peer"].as_bool()?,
                erased: usize::try_from(record["erased"].as_u64()?).ok()?,
            })
        })(),
        "disappearing_timer" => (|| {
            Some(Event::DisappearingTimerChanged {
                with: text("with")?,
                by_peer: record["by_peer"].as_bool()?,
                seconds: u32::try_from(record["seconds"].as_u64()?).ok()?,
            })
        })(),
        "messages_expired" => (|| {
            Some(Event::MessagesExpired {
                with: text("with")?,
                // A malformed id is skipped; the others still go.
                ids: record["ids"]
                    .as_array()?
                    .iter()
                    .filter_map(|id| id.as_str().and_then(MessageId::from_hex))
                    .collect(),
            })
        })(),
        "sent" => (|| {
            Some(Event::Sent {
                to: text("to")?,
                id: id("id")?,
            })
        })(),
        // A change to a stored message is shown from its record as a
        // group's is (event_loop::about).
        "send_failed"
        | "key_changed"
        | "decryption_failed"
        | "message_changed"
        | "message_change_refused" => {
            return serde_json::from_value(record.clone())
                .ok()
                .map(ChatEvent::Notice)
        }
        "receipt" => (|| {
            let (from, ids) = (text("from")?, vec![id("id")?]);
            match serde_json::from_value::<Delivery>(record["status"].clone()).ok()? {
                Delivery::Read => Some(Event::ReadReceipt { from, ids }),
                _ => Some(Event::DeliveryReceipt { from, ids }),
            }
        })(),
        "typing" => (|| {
            Some(Event::Typing {
                from: text("from")?,
                started: record["started"].as_bool()?,
            })
        })(),
        "lagged" => record["missed"]
            .as_u64()
            .map(|missed| Event::Lagged { missed }),
        "connection" => return connection_view(record).map(ChatEvent::Connection),
        _ => None,
    };
    event.map(ChatEvent::Core)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn daemon_records_become_the_events_the_chat_shows() {
        let id = "07".repeat(16);
        let message = json!({"type": "message", "from": "bob", "id": id, "body": "hi",
            "sent_at": "2026-12-01T10:00:00.5Z", "received_at": "2026-12-01T10:00:01Z"});
        assert_eq!(
            event_from_record(&message),
            Some(ChatEvent::Core(Event::Message {
                from: "bob".into(),
                id: MessageId([7; 16]),
                body: "hi".into(),
                sent_at_ms: 1_796_119_200_500,
                received_at_ms: 1_796_119_201_000,
                file: None,
                reply_to: None,
            }))
        );
        let read = json!({"type": "receipt", "from": "bob", "id": id, "status": "read",
            "at": "2026-12-01T10:00:01Z"});
        assert_eq!(
            event_from_record(&read),
            Some(ChatEvent::Core(Event::ReadReceipt {
                from: "bob".into(),
                ids: vec![MessageId([7; 16])]
            }))
        );
        let closed = json!({"type": "connection", "state": "closed", "reason": "revoked",
            "reason_code": "session_refused"});
        assert_eq!(
            event_from_record(&closed),
            Some(ChatEvent::Connection(ConnectionView::Closed {
                reason: "revoked".into()
            }))
        );
        // Reasons arrive as the daemon's words, with the number it sent.
        let changed = json!({"type": "key_changed", "contact": "bob",
            "safety_number": "12345 67890"});
        assert_eq!(
            event_from_record(&changed),
            Some(ChatEvent::Notice(Record::KeyChanged {
                contact: "bob".into(),
                safety_number: "12345 67890".into(),
                account_id: None,
            }))
        );
        let failed = json!({"type": "decryption_failed", "from": null,
            "reason": "message for a session this device does not have",
            "reason_code": "no_session", "outcome": "rejected"});
        assert!(matches!(
            event_from_record(&failed),
            Some(ChatEvent::Notice(Record::DecryptionFailed { from: None, reason, .. }))
                if reason == "message for a session this device does not have"
        ));
        // A change the daemon's client refused is shown as a line too.
        let refused = json!({"type": "message_change_refused", "from": "bob",
            "id": "09".repeat(16), "target": id, "reason": "not_the_author"});
        assert!(matches!(
            event_from_record(&refused),
            Some(ChatEvent::Notice(Record::MessageChangeRefused { from, reason, group: None, .. }))
                if from == "bob" && reason == "not_the_author"
        ));
        // A delete for everyone empties the open conversation live.
        let deleted = json!({"type": "conversation_deleted", "with": "bob", "by_peer": true,
            "erased": 3});
        assert_eq!(
            event_from_record(&deleted),
            Some(ChatEvent::Core(Event::ConversationDeleted {
                with: "bob".into(),
                by_peer: true,
                erased: 3,
            }))
        );
        assert!(
            event_from_record(&json!({"type": "conversation_deleted", "with": "bob"})).is_none()
        );
        // A timer change and an expiry, for the title and the view.
        let timer = json!({"type": "disappearing_timer", "with": "bob", "by_peer": true,
            "seconds": 3600});
        assert_eq!(
            event_from_record(&timer),
            Some(ChatEvent::Core(Event::DisappearingTimerChanged {
                with: "bob".into(),
                by_peer: true,
                seconds: 3600,
            }))
        );
        let expired = json!({"type": "messages_expired", "with": "bob", "ids": [id]});
        assert_eq!(
            event_from_record(&expired),
            Some(ChatEvent::Core(Event::MessagesExpired {
                with: "bob".into(),
                ids: vec![MessageId([7; 16])],
            }))
        );
        let bad = json!({"type": "messages_expired", "with": "bob", "ids": ["zz", id]});
        assert_eq!(
            event_from_record(&bad),
            Some(ChatEvent::Core(Event::MessagesExpired {
                with: "bob".into(),
                ids: vec![MessageId([7; 16])],
            })),
            "a bad id is skipped, the good one still goes"
        );
        // Unknown types and malformed records are skipped, not errors.
        assert!(event_from_record(&json!({"type": "from_the_future"})).is_none());
        assert!(event_from_record(&json!({"type": "message", "from": "bob"})).is_none());
        assert!(event_from_record(&json!({"type": "key_changed"})).is_none());
    }

    #[test]
    fn a_daemon_sent_elsewhere_record_becomes_the_event() {
        let record = Record::SentElsewhere {
            to: "bob".into(),
            id: "07".repeat(16),
            sent_at: crate::output::time_from_unix_ms(1_796_119_200_500),
            body: "from the laptop".into(),
            file: None,
            reply_to: Some("08".repeat(16)),
        };
        let value: Value = serde_json::from_str(&record.to_json_line().unwrap()).unwrap();
        assert_eq!(
            event_from_record(&value),
            Some(ChatEvent::Core(Event::SentElsewhere {
                to: "bob".into(),
                id: MessageId([7; 16]),
                body: "from the laptop".into(),
                sent_at_ms: 1_796_119_200_500,
                file: None,
                reply_to: Some(MessageId([8; 16])),
            }))
        );
        let malformed = json!({"type": "sent_elsewhere", "to": "bob"});
        assert!(event_from_record(&malformed).is_none());
    }

    #[test]
    fn group_notifications_are_read_as_group_records() {
        let group = json!({"id": "ab".repeat(32), "name": "fam", "display_name": "fam"});
        let message = json!({"type": "message", "from": "bob", "id": "07".repeat(16),
            "body": "hi", "sent_at": "2026-12-01T10:00:00Z",
            "received_at": "2026-12-01T10:00:01Z", "group": group});
        assert!(is_about_group(&message));
        assert!(matches!(
            group_record(&message),
            Some(Record::Message { group: Some(_), .. })
        ));
        let change = json!({"type": "group_change", "group": group, "change": "added",
            "by": "alice", "members": ["carol"], "includes_me": false,
            "at": "2026-12-01T10:00:01Z"});
        assert!(matches!(
            group_record(&change),
            Some(Record::GroupChange { .. })
        ));
        // Typing in a group must not pass for bob's 1:1 typing.
        let typing = json!({"type": "typing", "from": "bob", "started": true, "group": group});
        assert!(is_about_group(&typing));
        assert!(group_record(&typing).is_none());
        let direct = json!({"type": "typing", "from": "bob", "started": true});
        assert!(!is_about_group(&direct));
        // It is the group's typing, shown in the group's title.
        assert_eq!(
            group_typing(&typing),
            Some(Event::GroupTyping {
                group: umbra_client_core::GroupId::from_hex(&"ab".repeat(32)).unwrap(),
                from: "bob".into(),
                started: true,
            })
        );
        assert_eq!(group_typing(&direct), None);
        // A restored membership is a change record like the others.
        let restored = json!({"type": "group_change", "group": group, "change": "restored",
            "by": "alice", "members": ["carol"], "includes_me": true, "removed_by": "bob",
            "at": "2026-12-01T10:00:01Z"});
        assert!(matches!(
            group_record(&restored),
            Some(Record::GroupChange {
                change: crate::output::GroupChangeKind::Restored,
                ..
            })
        ));
    }
}
