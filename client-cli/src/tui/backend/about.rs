//! What the chat sends about messages (docs/PROTOCOL.md §10.6) and our
//! typing notices, over either backend: replies, reactions, edits and
//! deletes for everyone, 1:1 or in a group.
//!
//! Must never: send a change client-core's rule refused (it checks our own
//! history first and sends nothing then), or send typing notices behind
//! the account's `typing` setting (client-core drops them when it is off).

use serde_json::json;
use umbra_client_core::{GroupId, MessageChange, MessageId};
use umbra_protocol::wire::Username;

use super::group::{report_sent, GroupSent};
use super::{call, Backend};
use crate::commands::group;
use crate::tui::state::{group_id_of, ChangeRequest};

fn message_id(text: &str) -> Result<MessageId, String> {
    MessageId::from_hex(text).ok_or_else(|| format!("{text:?} is not a message id"))
}

fn username(to: &str) -> Result<Username, String> {
    Username::parse(to).map_err(|e| e.to_string())
}

/// The first id in a daemon's records (the `sent` or `send_failed`).
fn first_id(result: &serde_json::Value) -> Result<String, String> {
    super::records(result)
        .find_map(|r| r["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| "the daemon did not say which id it sent".to_owned())
}

impl Backend {
    /// A reply to a contact; its id, or why it was not queued.
    pub async fn send_reply(&self, to: &str, body: &str, target: &str) -> Result<String, String> {
        let target = message_id(target)?;
        match self {
            Backend::Local(client) => client
                .send_reply(&username(to)?, &target, body)
                .await
                .map(|id| id.to_hex())
                .map_err(|e| e.to_string()),
            Backend::Daemon(rpc) => {
                let params = json!({"to": to, "message": body, "reply_to": target.to_hex()});
                let result = call(rpc, "send", params)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                first_id(&result)
            }
        }
    }

    /// A reply in the group `id` (hex).
    pub async fn send_group_reply(
        &self,
        id: &str,
        body: &str,
        target: &str,
    ) -> Result<(String, GroupSent), String> {
        let target = message_id(target)?;
        match self {
            Backend::Local(client) => {
                let found = group::find(client, id)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let report = client
                    .send_group_reply(&found.id, &target, body)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(report_sent(&report))
            }
            Backend::Daemon(rpc) => {
                let params = json!({"group": id, "message": body, "reply_to": target.to_hex()});
                let result = call(rpc, "group.send", params)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let sent = match result["exit_code"].as_i64() {
                    Some(0) => GroupSent::Reached,
                    _ => GroupSent::Queued,
                };
                Ok((first_id(&result)?, sent))
            }
        }
    }

    /// A reaction, edit or delete for everyone; `Err` is why it was not sent.
    pub async fn send_change(&self, request: &ChangeRequest) -> Result<(), String> {
        let target = message_id(&request.target)?;
        let group = group_id_of(&request.to);
        match self {
            Backend::Local(client) => {
                let sent = match group {
                    Some(id) => {
                        let found = group::find(client, id)
                            .await
                            .map_err(|e| format!("{e:#}"))?;
                        let g = &found.id;
                        match &request.change {
                            MessageChange::Reacted { emoji, removed } => {
                                client.react_in_group(g, &target, emoji, *removed).await
                            }
                            MessageChange::Edited { body } => {
                                client.edit_in_group(g, &target, body).await
                            }
                            MessageChange::Deleted => {
                                client.delete_in_group_for_everyone(g, &target).await
                            }
                        }
                        .map(drop)
                    }
                    None => {
                        let to = username(&request.to)?;
                        match &request.change {
                            MessageChange::Reacted { emoji, removed } => {
                                client.react(&to, &target, emoji, *removed).await
                            }
                            MessageChange::Edited { body } => client.edit(&to, &target, body).await,
                            MessageChange::Deleted => {
                                client.delete_for_everyone(&to, &target).await
                            }
                        }
                        .map(drop)
                    }
                };
                sent.map_err(|e| e.to_string())
            }
            Backend::Daemon(rpc) => {
                let to = group.unwrap_or(&request.to);
                let mut params = json!({"to": to, "id": request.target, "group": group.is_some()});
                let method = match &request.change {
                    MessageChange::Reacted { emoji, removed } => {
                        params["emoji"] = json!(emoji);
                        params["remove"] = json!(removed);
                        "react"
                    }
                    MessageChange::Edited { body } => {
                        params["message"] = json!(body);
                        "edit"
                    }
                    MessageChange::Deleted => {
                        params["for_everyone"] = json!(true);
                        "delete"
                    }
                };
                call(rpc, method, params)
                    .await
                    .map(drop)
                    .map_err(|e| format!("{e:#}"))
            }
        }
    }

    /// Tells `to` (a username or a group's key) we started or stopped
    /// typing. A daemon too old to serve `typing` answers with an error,
    /// which the caller drops like any failed notice.
    pub async fn send_typing(&self, to: &str, started: bool) -> Result<(), String> {
        let group = group_id_of(to);
        match self {
            Backend::Local(client) => match group {
                Some(id) => {
                    let id = GroupId::from_hex(id).ok_or("not a group id")?;
                    client.send_group_typing(&id, started).await
                }
                None => client.send_typing(&username(to)?, started).await,
            }
            .map_err(|e| e.to_string()),
            Backend::Daemon(rpc) => {
                let params = json!({"to": group.unwrap_or(to), "started": started,
                    "group": group.is_some()});
                call(rpc, "typing", params)
                    .await
                    .map(drop)
                    .map_err(|e| format!("{e:#}"))
            }
        }
    }
}
