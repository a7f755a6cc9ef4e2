//! The daemon's methods for an interactive client (`umbra chat` through
//! the daemon, or any other UI): the stored conversations with their
//! history, a contact's safety number, read receipts, and a send that
//! returns once the message is in the durable outbox instead of waiting for
//! the relay (the outcome arrives as a `sent` or `send_failed` event).
//!
//! Must never: hand out a message body in any field but `body` (it is
//! untrusted text and the client sanitises exactly that field), or mark
//! anything read that the caller did not name.

use serde::Deserialize;
use serde_json::{json, Value};
use umbra_client_core::{DeliveryStatus, Direction, HistoryEntry, MessageAbout, PeerRef};
use umbra_protocol::wire::Username;

use super::methods::{Daemon, MethodError};
use super::protocol::INVALID_PARAMS;
use crate::output::time_from_unix_ms;

/// Messages per conversation `conversations` returns unless asked for
/// fewer: what `umbra chat` loads at start.
pub const DEFAULT_HISTORY: usize = 500;

/// The most a caller may ask for: one answer stays well under the client's
/// response bound even with long messages.
pub(super) const MAX_HISTORY: usize = 2000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConversationsParams {
    history: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContactParams {
    contact: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnqueueParams {
    to: String,
    message: String,
}

fn failed(e: umbra_client_core::Error, what: String) -> MethodError {
    MethodError::command(&anyhow::Error::new(e).context(what), vec![])
}

/// A contact as the caller named it: `name` or `name#xxxxxxxx`. Anything
/// else fails as the command would (exit 1), naming what was wrong.
fn peer(text: &str) -> Result<PeerRef, MethodError> {
    text.parse().map_err(|e| {
        let error = anyhow::Error::new(umbra_client_core::Error::from(e))
            .context(format!("{text:?} is not a contact's name"));
        MethodError::command(&error, vec![])
    })
}

impl Daemon {
    /// `conversations {history?}`: most recent first, each with its last
    /// `history` messages (oldest first).
    pub(super) async fn conversations(
        &self,
        params: ConversationsParams,
    ) -> Result<Value, MethodError> {
        let limit = params.history.unwrap_or(DEFAULT_HISTORY);
        if limit > MAX_HISTORY {
            return Err(MethodError::rpc(
                INVALID_PARAMS,
                format!("invalid params: history {limit} is over the limit of {MAX_HISTORY}"),
            ));
        }
        let client = self.client();
        let conversations = client
            .conversations()
            .await
            .map_err(|e| failed(e, "listing conversations".into()))?;
        let mut out = Vec::new();
        for conversation in conversations {
            let contact = peer(&conversation.peer)?;
            let history = client.history(&contact, limit).await.map_err(|e| {
                failed(e, format!("loading the history with {}", conversation.peer))
            })?;
            let disappearing = client
                .disappearing_timer(&peer(&conversation.peer)?)
                .await
                .map_err(|e| failed(e, format!("reading the timer with {}", conversation.peer)))?;
            out.push(json!({
                "peer": conversation.peer,
                "unread": conversation.unread,
                "key_changed": conversation.key_changed,
                "disappearing": disappearing,
                "history": with_files(&client, &contact, &history).await?,
            }));
        }
        Ok(json!({"conversations": out}))
    }

    /// `safety_number {contact}`: the current number, whatever the trust.
    pub(super) async fn safety_number(&self, params: ContactParams) -> Result<Value, MethodError> {
        let number = self
            .client()
            .safety_number(&peer(&params.contact)?)
            .await
            .map_err(|e| {
                failed(
                    e,
                    format!("computing the safety number with {}", params.contact),
                )
            })?;
        Ok(json!({"contact": params.contact, "safety_number": number.to_string()}))
    }

    /// `mark_read {contact}`: what opening the conversation in `chat` does
    /// (read receipts to the contact; the messages count as reported).
    pub(super) async fn mark_read(&self, params: ContactParams) -> Result<Value, MethodError> {
        self.client()
            .mark_read(&peer(&params.contact)?)
            .await
            .map_err(|e| failed(e, format!("sending read receipts to {}", params.contact)))?;
        Ok(json!({"marked_read": params.contact}))
    }

    /// `enqueue {to, message}`: encrypt and store in the outbox, answer with
    /// the id at once; the relay's verdict follows as an event.
    pub(super) async fn enqueue(&self, params: EnqueueParams) -> Result<Value, MethodError> {
        let to = Username::parse(&params.to).map_err(|e| {
            let error = anyhow::Error::new(umbra_client_core::Error::from(e))
                .context(format!("sending to {:?}", params.to));
            MethodError::command(&error, vec![])
        })?;
        let id = self
            .client()
            .send_text(&to, &params.message)
            .await
            .map_err(|e| failed(e, format!("sending to {}", params.to)))?;
        Ok(json!({"to": params.to, "id": id.to_hex()}))
    }
}

/// One stored message as `conversations` answers it.
/// The history members, a file message's with its `file` object (as on
/// a `message` record: what `file.get` takes).
async fn with_files(
    client: &umbra_client_core::Client,
    contact: &PeerRef,
    history: &[HistoryEntry],
) -> Result<Vec<Value>, MethodError> {
    let mut out = Vec::with_capacity(history.len());
    for entry in history {
        let mut value = history_value(entry);
        if entry.body.starts_with("[file] ") {
            let file = client
                .file_of(contact, entry)
                .await
                .map_err(|e| failed(e, "reading a stored file message".into()))?;
            if let Some(file) = file {
                value["file"] =
                    serde_json::to_value(crate::output::FileRef::from(&file)).unwrap_or_default();
            }
        }
        out.push(value);
    }
    Ok(out)
}

fn history_value(entry: &HistoryEntry) -> Value {
    let direction = match entry.direction {
        Direction::Incoming => "incoming",
        Direction::Outgoing => "outgoing",
    };
    let at = time_from_unix_ms(entry.received_at_ms)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut value = json!({
        "id": entry.id.to_hex(),
        "direction": direction,
        "status": status_name(entry.status),
        "at": at,
        "body": entry.body,
    });
    add_about(&mut value, &entry.about);
    value
}

/// What messages about a stored message left on it (docs/PROTOCOL.md
/// §10.6), added to its history member only when there is something:
/// `reply_to` (the quoted id), `reactions` (`[{"by": account id in hex,
/// "emoji"}]`), `edited` and `deleted` (true). Added after the others: a
/// client must not require them.
pub fn add_about(value: &mut Value, about: &MessageAbout) {
    if let Some(id) = about.reply_to {
        value["reply_to"] = id.to_hex().into();
    }
    if !about.reactions.is_empty() {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        value["reactions"] = about
            .reactions
            .iter()
            .map(|r| json!({"by": hex(r.by.as_bytes()), "emoji": r.emoji}))
            .collect();
    }
    if about.edited_at_ms.is_some() {
        value["edited"] = true.into();
    }
    if about.deleted {
        value["deleted"] = true.into();
    }
}

pub fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Read => "read",
        DeliveryStatus::Failed => "failed",
    }
}
