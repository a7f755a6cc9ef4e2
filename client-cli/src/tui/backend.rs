//! What `umbra chat` talks to: its own unlocked client-core [`Client`], or
//! a running `umbra daemon` that holds the data directory (JSON-RPC over
//! its socket). The screen, keys and state are the same for both; only
//! these few operations differ, and the daemon's event notifications are
//! turned back into client-core [`Event`]s ([`events`]) so one loop handles both; those
//! whose reason client-core types (a refused send, a key change, a
//! decryption failure, the connection) arrive as the words the daemon sent
//! ([`ChatEvent::Notice`], [`ChatEvent::Connection`]).
//!
//! Must never: accept a key other than the one whose number was shown
//! (locally the number is compared before accepting; through the daemon
//! `verify --accept NUMBER` makes the daemon do the same check), or show a
//! daemon record's text anywhere but through the state's sanitising paths.

use std::sync::Arc;

use serde_json::{json, Value};
use umbra_client_core::{
    Client, DeliveryStatus, Direction as CoreDirection, Event, FileInfo, HistoryEntry, MessageId,
    PeerRef, SafetyNumber,
};
use umbra_protocol::wire::Username;

pub mod about;
mod commands;
mod connection;
mod conversation;
pub mod devices;
mod events;
mod files;
pub mod group;

pub use connection::{connection_view, ConnectionView};
pub use conversation::StoredHistory;
pub use events::daemon_events;

use crate::commands::contacts::trust_of;
use crate::daemon::channel::RpcChannel;
use crate::daemon::chat::DEFAULT_HISTORY;
use crate::daemon::client::RpcError;
use crate::output::{Record, Trust};

/// What the chat loop reacts to: a client-core event, or a group record
/// (a daemon's notifications arrive as records, and group events are read
/// as records on both paths so the screen handles them one way).
#[derive(Debug, PartialEq)]
pub enum ChatEvent {
    Core(Event),
    Group(Record),
    /// A daemon's `send_failed`, `key_changed` or `decryption_failed`: its
    /// reason in the words the daemon sent; or its `message_changed` or
    /// `message_change_refused`.
    Notice(Record),
    /// The connection state (a daemon's, in its words).
    Connection(ConnectionView),
}

/// One contact as the conversation list needs it.
pub struct ContactRow {
    pub display_name: String,
    pub trust: Trust,
}

/// One stored conversation.
pub struct StoredConversation {
    pub peer: String,
    pub key_changed: bool,
    /// The disappearing-message timer in seconds, 0 off.
    pub disappearing: u32,
    pub history: Vec<HistoryEntry>,
    /// The files the file messages among `history` carry.
    pub files: Vec<(MessageId, FileInfo)>,
}

/// How accepting a changed key ended.
pub enum KeyDecision {
    Accepted,
    /// The key changed again after the number on screen was shown.
    MovedOn(String),
    Problem(String),
}

#[derive(Clone)]
pub enum Backend {
    Local(Client),
    Daemon(Arc<RpcChannel>),
}

impl Backend {
    pub async fn contacts(&self) -> anyhow::Result<Vec<ContactRow>> {
        match self {
            Backend::Local(client) => Ok(client
                .contacts()
                .await?
                .into_iter()
                .map(|c| ContactRow {
                    display_name: c.display_name,
                    trust: trust_of(c.trust),
                })
                .collect()),
            Backend::Daemon(rpc) => {
                let result = call(rpc, "contacts", json!({})).await?;
                Ok(records(&result)
                    .filter(|r| r["type"] == "contact")
                    .filter_map(|r| {
                        Some(ContactRow {
                            display_name: r["display_name"].as_str()?.to_owned(),
                            trust: serde_json::from_value(r["trust"].clone()).ok()?,
                        })
                    })
                    .collect())
            }
        }
    }

    pub async fn conversations(&self) -> anyhow::Result<Vec<StoredConversation>> {
        match self {
            Backend::Local(client) => {
                let mut out = Vec::new();
                for conversation in client.conversations().await? {
                    let peer: PeerRef = conversation.peer.parse()?;
                    let history = client.history(&peer, DEFAULT_HISTORY).await?;
                    let disappearing = client.disappearing_timer(&peer).await?;
                    let files = local_files(client, &peer, &history).await?;
                    out.push(StoredConversation {
                        peer: conversation.peer,
                        key_changed: conversation.key_changed,
                        disappearing,
                        history,
                        files,
                    });
                }
                Ok(out)
            }
            Backend::Daemon(rpc) => {
                let result = call(rpc, "conversations", json!({})).await?;
                let list = result["conversations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                Ok(list
                    .iter()
                    .filter_map(|c| {
                        Some(StoredConversation {
                            peer: c["peer"].as_str()?.to_owned(),
                            key_changed: c["key_changed"].as_bool().unwrap_or(false),
                            // An older daemon does not say: off, until an
                            // event says otherwise.
                            disappearing: c["disappearing"]
                                .as_u64()
                                .and_then(|s| u32::try_from(s).ok())
                                .unwrap_or(0),
                            history: c["history"]
                                .as_array()?
                                .iter()
                                .filter_map(history_entry)
                                .collect(),
                            files: daemon_files(&c["history"]),
                        })
                    })
                    .collect())
            }
        }
    }

    /// The number to show, or why there is none.
    pub async fn safety_number_text(&self, contact: &str) -> String {
        let number = match self {
            Backend::Local(client) => match contact.parse::<PeerRef>() {
                Ok(peer) => client
                    .safety_number(&peer)
                    .await
                    .map(|n| n.to_string())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Backend::Daemon(rpc) => {
                match call(rpc, "safety_number", json!({"contact": contact})).await {
                    Ok(result) => result["safety_number"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| "the daemon sent none".to_owned()),
                    Err(e) => Err(format!("{e:#}")),
                }
            }
        };
        number.unwrap_or_else(|why| format!("unavailable ({why})"))
    }

    /// Queues a message; its id, or why it was not queued.
    pub async fn send_text(&self, to: &str, body: &str) -> Result<String, String> {
        match self {
            Backend::Local(client) => client
                .send_text(&Username::parse(to).map_err(|e| e.to_string())?, body)
                .await
                .map(|id| id.to_hex())
                .map_err(|e| e.to_string()),
            Backend::Daemon(rpc) => {
                let result = call(rpc, "enqueue", json!({"to": to, "message": body}))
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                result["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "the daemon did not say which id it queued".to_owned())
            }
        }
    }

    pub async fn mark_read(&self, contact: &str) -> Result<(), String> {
        match self {
            Backend::Local(client) => {
                let peer: PeerRef = contact.parse().map_err(|e| format!("{e}"))?;
                client.mark_read(&peer).await.map_err(|e| e.to_string())
            }
            Backend::Daemon(rpc) => call(rpc, "mark_read", json!({"contact": contact}))
                .await
                .map(drop)
                .map_err(|e| format!("{e:#}")),
        }
    }

    /// Accepts only if the key is still the one whose number was shown.
    pub async fn accept_key(&self, contact: &str, shown: &str) -> KeyDecision {
        let current = self.safety_number_text(contact).await;
        if current != shown {
            return KeyDecision::MovedOn(current);
        }
        match self {
            Backend::Local(client) => {
                let (Ok(name), Some(number)) =
                    (Username::parse(contact), SafetyNumber::parse(shown))
                else {
                    return KeyDecision::Problem(format!(
                        "{contact} cannot be accepted here; use `umbra verify` for it"
                    ));
                };
                // client-core checks the number again under its state lock.
                match client.accept_key_change(&name, &number).await {
                    Ok(()) => KeyDecision::Accepted,
                    Err(e) => {
                        KeyDecision::Problem(format!("could not accept {contact}'s key: {e}"))
                    }
                }
            }
            // The daemon's `verify` refuses a number that is not the
            // current one, under client-core's lock as above.
            Backend::Daemon(rpc) => {
                match call(rpc, "verify", json!({"username": contact, "accept": shown})).await {
                    Ok(_) => KeyDecision::Accepted,
                    Err(e) => {
                        KeyDecision::Problem(format!("could not accept {contact}'s key: {e:#}"))
                    }
                }
            }
        }
    }

    pub async fn shutdown(&self) {
        if let Backend::Local(client) = self {
            client.shutdown().await;
        }
    }
}

/// The files of the file messages in `history` (a file message's body is
/// client-core's `[file] …` summary; only those are looked up).
async fn local_files(
    client: &Client,
    peer: &PeerRef,
    history: &[HistoryEntry],
) -> Result<Vec<(MessageId, FileInfo)>, umbra_client_core::Error> {
    let mut files = Vec::new();
    for entry in history.iter().filter(|e| e.body.starts_with("[file] ")) {
        if let Some(file) = client.file_of(peer, entry).await? {
            files.push((entry.id, file));
        }
    }
    Ok(files)
}

/// The `file` members of a daemon's history entries.
fn daemon_files(history: &Value) -> Vec<(MessageId, FileInfo)> {
    history
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let id = MessageId::from_hex(v["id"].as_str()?)?;
            Some((id, events::file_of(&v["file"])?))
        })
        .collect()
}

/// A call whose daemon-side failure is an error like any other.
async fn call(rpc: &RpcChannel, method: &str, params: Value) -> anyhow::Result<Value> {
    rpc.call(method, params)
        .await?
        .map_err(|e: RpcError| e.into_failure().into())
}

fn records(result: &Value) -> impl Iterator<Item = &Value> {
    result["records"].as_array().into_iter().flatten()
}

fn history_entry(value: &Value) -> Option<HistoryEntry> {
    let direction = match value["direction"].as_str()? {
        "incoming" => CoreDirection::Incoming,
        "outgoing" => CoreDirection::Outgoing,
        _ => return None,
    };
    let status = match value["status"].as_str()? {
        "pending" => DeliveryStatus::Pending,
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => return None,
    };
    let at = unix_ms(value.get("at")?)?;
    Some(HistoryEntry {
        id: MessageId::from_hex(value["id"].as_str()?)?,
        direction,
        body: value["body"].as_str()?.to_owned(),
        sent_at_ms: at,
        received_at_ms: at,
        status,
        reported: true,
        about: about_of(value),
    })
}

/// The `reply_to`, `reactions`, `edited` and `deleted` members of a
/// daemon's history entry (daemon::chat::add_about); malformed parts are
/// left out.
pub(super) fn about_of(value: &Value) -> umbra_client_core::MessageAbout {
    let account = |hex: &str| {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        Some(umbra_protocol::wire::AccountId::from_bytes(
            bytes.try_into().ok()?,
        ))
    };
    umbra_client_core::MessageAbout {
        reply_to: value["reply_to"].as_str().and_then(MessageId::from_hex),
        reactions: value["reactions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some(umbra_client_core::Reaction {
                    by: account(r["by"].as_str()?)?,
                    emoji: r["emoji"].as_str()?.to_owned(),
                })
            })
            .collect(),
        edited_at_ms: value["edited"].as_bool().unwrap_or(false).then_some(0),
        deleted: value["deleted"].as_bool().unwrap_or(false),
    }
}

/// An RFC 3339 string as Unix milliseconds.
fn unix_ms(value: &Value) -> Option<u64> {
    let at = time::OffsetDateTime::parse(
        value.as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_history_entry_keeps_its_reply_reactions_edit_and_delete() {
        let entry = json!({"id": "07".repeat(16), "direction": "incoming", "status": "read",
            "at": "2026-12-01T10:00:01Z", "body": "hi", "reply_to": "08".repeat(16),
            "reactions": [{"by": "0a".repeat(16), "emoji": "👍"}, {"by": "short", "emoji": "x"}],
            "edited": true, "deleted": false});
        let about = history_entry(&entry).unwrap().about;
        assert_eq!(about.reply_to, Some(MessageId([8; 16])));
        assert_eq!(about.reactions.len(), 1, "a malformed reaction is left out");
        assert_eq!(about.reactions[0].emoji, "👍");
        assert!(about.edited_at_ms.is_some() && !about.deleted);
        // An older daemon sends none of them: nothing about it.
        let plain = json!({"id": "07".repeat(16), "direction": "outgoing", "status": "sent",
            "at": "2026-12-01T10:00:01Z", "body": "hi"});
        assert_eq!(history_entry(&plain).unwrap().about, Default::default());
    }

    #[test]
    fn a_daemons_stored_file_messages_name_their_files() {
        let history = json!([
            {"id": "01".repeat(16), "body": "[file] menu.pdf (12 bytes)",
             "file": {"id": "00112233aabbccdd", "name": "menu.pdf", "size": 12,
                      "media_type": "application/pdf"}},
            {"id": "02".repeat(16), "body": "a text"},
            {"id": "zz", "file": {"id": "00112233aabbccdd", "name": "x", "size": 1,
                                  "media_type": ""}},
            {"id": "03".repeat(16), "file": {"name": "no id"}}
        ]);
        let files = daemon_files(&history);
        assert_eq!(files.len(), 1, "texts and malformed entries name none");
        assert_eq!(files[0].0, MessageId([1; 16]));
        assert_eq!(
            (files[0].1.id.as_str(), files[0].1.size),
            ("00112233aabbccdd", 12)
        );
        assert!(daemon_files(&json!(null)).is_empty());
    }

    #[test]
    fn stored_messages_from_the_daemon_keep_direction_status_and_time() {
        let entry = history_entry(&json!({"id": "01".repeat(16), "direction": "outgoing",
            "status": "delivered", "at": "1970-01-01T00:00:02Z", "body": "x"}))
        .expect("parses");
        assert_eq!(
            (entry.direction, entry.status, entry.received_at_ms),
            (CoreDirection::Outgoing, DeliveryStatus::Delivered, 2000)
        );
        assert!(history_entry(&json!({"id": "zz", "direction": "outgoing",
            "status": "sent", "at": "1970-01-01T00:00:02Z", "body": "x"}))
        .is_none());
    }
}
