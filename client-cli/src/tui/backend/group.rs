//! The group operations of `umbra chat`'s [`Backend`]: the groups with
//! their members (and history) at start and after a change, and sending to
//! a group. Both backends read one JSON shape, the daemon's
//! `group.conversations` answer: the local one builds it with the very
//! function the daemon answers with, so the screen cannot differ between
//! the two.
//!
//! Must never: hand the screen a name except for it to sanitise, or report
//! a group message as sent before every member's copy was accepted.

use serde_json::{json, Value};
use umbra_client_core::MemberOutcome;

use super::{call, Backend};
use crate::commands::group;
use crate::daemon::chat::DEFAULT_HISTORY;
use crate::output::Delivery;
use crate::sanitize::SafeText;
use crate::tui::state::Outgoing;

/// One member as the conversation header needs it.
pub struct StoredMember {
    pub username: String,
    pub admin: bool,
    pub me: bool,
}

/// One stored group message.
pub struct StoredGroupMessage {
    pub id: String,
    /// `None` for our own.
    pub from: Option<String>,
    pub outgoing: bool,
    pub status: String,
    pub at: time::OffsetDateTime,
    pub body: String,
    /// Shown to the user already (here, or printed by `receive`).
    pub reported: bool,
    /// Its reply target, reactions, edit and delete.
    pub about: umbra_client_core::MessageAbout,
    /// The file a file message carries (what `/save` takes).
    pub file: Option<crate::output::FileRef>,
}

/// One group, as `group.conversations` lists it.
pub struct StoredGroup {
    pub id: String,
    pub display_name: String,
    pub active: bool,
    /// Whether any member may rename it (absent from an older daemon:
    /// false, what the header showed before).
    pub members_may_rename: bool,
    /// Its disappearing-message timer in seconds, 0 when off (absent from
    /// an older daemon: off).
    pub disappearing: u32,
    pub members: Vec<StoredMember>,
    pub history: Vec<StoredGroupMessage>,
}

/// How far a group message got when the send call returned.
pub enum GroupSent {
    /// Every member's copy was accepted.
    Reached,
    /// Some copies wait in the queue; nothing refused so far.
    Queued,
    /// These members did not get it (the others did or will).
    Failed(String),
}

impl GroupSent {
    /// The delivery mark it stands for, if it changes the pending one.
    pub fn report(&self) -> Option<Outgoing> {
        match self {
            GroupSent::Reached => Some(Outgoing::Progress(Delivery::Sent)),
            GroupSent::Queued => None,
            GroupSent::Failed(why) => Some(Outgoing::Failed(SafeText::line(why))),
        }
    }
}

impl Backend {
    /// Every group with its members and the last messages.
    pub async fn groups(&self, history: usize) -> anyhow::Result<Vec<StoredGroup>> {
        let value = match self {
            Backend::Local(client) => crate::daemon::groups::conversations(client, history).await?,
            Backend::Daemon(rpc) => {
                call(rpc, "group.conversations", json!({"history": history})).await?
            }
        };
        Ok(parse_groups(&value))
    }

    /// The groups as they are now, without history (after a change).
    pub async fn group(&self, id: &str) -> Option<StoredGroup> {
        let groups = self.groups(0).await.ok()?;
        groups.into_iter().find(|g| g.id == id)
    }

    /// Read receipts for these messages of the group `id` to their senders;
    /// they count as reported.
    pub async fn mark_group_read(&self, id: &str, ids: &[String]) -> Result<(), String> {
        match self {
            Backend::Local(client) => crate::daemon::groups::mark_read(client, id, ids)
                .await
                .map(drop)
                .map_err(|e| format!("{e:#}")),
            Backend::Daemon(rpc) => call(rpc, "group.mark_read", json!({"group": id, "ids": ids}))
                .await
                .map(drop)
                .map_err(|e| format!("{e:#}")),
        }
    }

    /// Sends to the group `id`; the message id and how far it got, or why
    /// it was not sent.
    pub async fn send_group_text(
        &self,
        id: &str,
        body: &str,
    ) -> Result<(String, GroupSent), String> {
        match self {
            Backend::Local(client) => {
                let found = group::find(client, id)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let report = client
                    .send_group_text(&found.id, body)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(report_sent(&report))
            }
            Backend::Daemon(rpc) => {
                let result = call(rpc, "group.enqueue", json!({"group": id, "message": body}))
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let message = result["id"]
                    .as_str()
                    .ok_or_else(|| "the daemon did not say which id it sent".to_owned())?;
                let failed: Vec<String> = result["failed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        format!(
                            "{}: {}",
                            f["member"].as_str().unwrap_or("?"),
                            f["reason"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                let queued = result["queued"].as_u64().unwrap_or(0) > 0;
                Ok((message.to_owned(), sent(failed, queued)))
            }
        }
    }
}

/// The default history the chat loads per group.
pub const GROUP_HISTORY: usize = DEFAULT_HISTORY;

/// client-core's report of a group send as the message's id and outcome.
pub(super) fn report_sent(report: &umbra_client_core::GroupSendReport) -> (String, GroupSent) {
    let failed: Vec<String> = report
        .failed()
        .map(|m| format!("{}: {}", m.username, group::outcome_reason(&m.outcome)))
        .collect();
    let queued = report
        .members
        .iter()
        .any(|m| m.outcome == MemberOutcome::Queued);
    (report.id.to_hex(), sent(failed, queued))
}

fn sent(failed: Vec<String>, queued: bool) -> GroupSent {
    if !failed.is_empty() {
        GroupSent::Failed(format!("not sent to {}", failed.join(", ")))
    } else if queued {
        GroupSent::Queued
    } else {
        GroupSent::Reached
    }
}

/// `group.conversations`'s answer as the chat's groups; malformed entries
/// are skipped.
pub fn parse_groups(value: &Value) -> Vec<StoredGroup> {
    value["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| {
            Some(StoredGroup {
                id: g["group"]["id"].as_str()?.to_owned(),
                display_name: g["group"]["display_name"].as_str()?.to_owned(),
                active: g["active"].as_bool().unwrap_or(false),
                members_may_rename: g["members_may_rename"].as_bool().unwrap_or(false),
                disappearing: g["disappearing"]
                    .as_u64()
                    .and_then(|s| u32::try_from(s).ok())
                    .unwrap_or(0),
                members: g["members"]
                    .as_array()?
                    .iter()
                    .filter_map(|m| {
                        Some(StoredMember {
                            username: m["username"].as_str()?.to_owned(),
                            admin: m["admin"].as_bool().unwrap_or(false),
                            me: m["me"].as_bool().unwrap_or(false),
                        })
                    })
                    .collect(),
                history: g["history"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(history_entry)
                    .collect(),
            })
        })
        .collect()
}

fn history_entry(value: &Value) -> Option<StoredGroupMessage> {
    let at = time::OffsetDateTime::parse(
        value["at"].as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    Some(StoredGroupMessage {
        id: value["id"].as_str()?.to_owned(),
        from: value["from"].as_str().map(str::to_owned),
        outgoing: value["direction"].as_str()? == "outgoing",
        status: value["status"].as_str().unwrap_or("sent").to_owned(),
        at,
        body: value["body"].as_str()?.to_owned(),
        reported: value["reported"].as_bool().unwrap_or(true),
        about: super::about_of(value),
        file: serde_json::from_value(value["file"].clone()).ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_answer_becomes_the_groups_the_chat_shows() {
        let value = json!({"groups": [
            {"group": {"id": "ab", "name": "fam", "display_name": "fam#abababab"},
             "active": true, "admin": true, "unread": 0, "members_may_rename": true,
             "members": [{"username": "alice", "account_id": "00", "admin": true, "me": true},
                         {"username": "bob", "account_id": "01", "admin": false, "me": false}],
             "history": [{"id": "m1", "direction": "incoming", "from": "bob",
                          "status": "delivered", "at": "2026-11-23T12:00:00Z", "body": "hi"}]},
            {"group": {"id": "cd"}},
        ]});
        let groups = parse_groups(&value);
        assert_eq!(groups.len(), 1, "the malformed entry is skipped");
        let group = &groups[0];
        assert_eq!(group.display_name, "fam#abababab");
        assert!(group.members_may_rename);
        assert_eq!(group.members.len(), 2);
        assert!(group.members[0].me && group.members[0].admin);
        assert_eq!(group.history[0].from.as_deref(), Some("bob"));
        assert!(!group.history[0].outgoing);
    }
}
