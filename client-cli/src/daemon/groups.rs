//! The daemon's `group.*` methods. The command-like ones (`group.create`,
//! `group.add`, ..., `group.send`) run exactly the code of the `umbra
//! group` subcommand of the same name and answer with the records it
//! prints and its exit status; `group.enqueue` and `group.conversations`
//! are what an interactive client (`umbra chat`) needs on top.
//!
//! Must never: take a group name for a group it does not name
//! unambiguously (the same resolution as the command line), hand out a
//! message body or group name in any field but the documented ones, or
//! accept params the command line would refuse (the same limits apply).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{json, Value};
use umbra_client_core::{
    AccountId, Client, DeliveryStatus, Direction, GroupHistoryEntry, HistoryEntry, MemberOutcome,
    MessageId,
};

use super::chat::{status_name, DEFAULT_HISTORY, MAX_HISTORY};
use super::methods::{json_lines, parse, timeout_param, Daemon, MethodError};
use super::protocol::{INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::cli::{GroupCommand, GroupWait};
use crate::commands::group::{self, outcome_reason};
use crate::output::{time_from_unix_ms, Printer};

/// `timeout` when a group method's params leave it out, as `--timeout`.
const DEFAULT_TIMEOUT_SECS: u64 = 30;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateParams {
    name: String,
    members: Vec<String>,
    #[serde(default)]
    members_may_rename: bool,
    timeout: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberParams {
    group: String,
    member: String,
    timeout: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveParams {
    group: String,
    timeout: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameParams {
    group: String,
    new_name: String,
    timeout: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupParams {
    group: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendParams {
    group: String,
    message: String,
    timeout: Option<u64>,
    #[serde(default)]
    reply_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkReadParams {
    group: String,
    ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationsParams {
    history: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnqueueParams {
    group: String,
    message: String,
}

/// The method, params and wait (before the client's grace) that run
/// `command` through a daemon; reads stdin for `group send GROUP -`.
pub fn request_for(command: &GroupCommand) -> anyhow::Result<(&'static str, Value, Duration)> {
    let secs = |wait: &GroupWait| Duration::from_secs(wait.timeout);
    Ok(match command {
        GroupCommand::Create {
            name,
            members,
            members_may_rename,
            wait,
        } => (
            "group.create",
            {
                let mut params = json!({"name": name, "members": members, "timeout": wait.timeout});
                // Sent only when set: the default is the daemon's too.
                if *members_may_rename {
                    params["members_may_rename"] = json!(true);
                }
                params
            },
            secs(wait),
        ),
        GroupCommand::Add {
            group,
            member,
            wait,
        } => (
            "group.add",
            json!({"group": group, "member": member, "timeout": wait.timeout}),
            secs(wait),
        ),
        GroupCommand::Remove {
            group,
            member,
            wait,
        } => (
            "group.remove",
            json!({"group": group, "member": member, "timeout": wait.timeout}),
            secs(wait),
        ),
        GroupCommand::Promote {
            group,
            member,
            wait,
        } => (
            "group.promote",
            json!({"group": group, "member": member, "timeout": wait.timeout}),
            secs(wait),
        ),
        GroupCommand::Leave { group, wait } => (
            "group.leave",
            json!({"group": group, "timeout": wait.timeout}),
            secs(wait),
        ),
        GroupCommand::Rename {
            group,
            new_name,
            wait,
        } => (
            "group.rename",
            json!({"group": group, "new_name": new_name, "timeout": wait.timeout}),
            secs(wait),
        ),
        GroupCommand::Members { group } => {
            ("group.members", json!({"group": group}), Duration::ZERO)
        }
        GroupCommand::List => ("group.list", json!({}), Duration::ZERO),
        GroupCommand::Send {
            group,
            message,
            timeout,
            reply_to,
        } => (
            "group.send",
            json!({"group": group, "message": group::send::message_text(message)?,
                   "timeout": timeout, "reply_to": reply_to}),
            Duration::from_secs(*timeout),
        ),
    })
}

/// A method's `timeout`, bounded as `--timeout` is, as the clap args.
fn wait(timeout: Option<u64>) -> Result<GroupWait, MethodError> {
    let secs = timeout_param(timeout, DEFAULT_TIMEOUT_SECS)?;
    Ok(GroupWait {
        timeout: secs.as_secs(),
    })
}

/// The command a method stands for, from its params.
fn command(method: &str, params: Value) -> Result<GroupCommand, MethodError> {
    Ok(match method {
        "group.create" => {
            let p: CreateParams = parse(params)?;
            if p.members.is_empty() {
                return Err(MethodError::rpc(
                    INVALID_PARAMS,
                    "invalid params: members must name at least one member",
                ));
            }
            GroupCommand::Create {
                name: p.name,
                members: p.members,
                members_may_rename: p.members_may_rename,
                wait: wait(p.timeout)?,
            }
        }
        "group.add" | "group.remove" | "group.promote" => {
            let p: MemberParams = parse(params)?;
            let (group, member, wait) = (p.group, p.member, wait(p.timeout)?);
            match method {
                "group.add" => GroupCommand::Add {
                    group,
                    member,
                    wait,
                },
                "group.remove" => GroupCommand::Remove {
                    group,
                    member,
                    wait,
                },
                _ => GroupCommand::Promote {
                    group,
                    member,
                    wait,
                },
            }
        }
        "group.leave" => {
            let p: LeaveParams = parse(params)?;
            GroupCommand::Leave {
                group: p.group,
                wait: wait(p.timeout)?,
            }
        }
        "group.rename" => {
            let p: RenameParams = parse(params)?;
            GroupCommand::Rename {
                group: p.group,
                new_name: p.new_name,
                wait: wait(p.timeout)?,
            }
        }
        "group.members" => GroupCommand::Members {
            group: parse::<GroupParams>(params)?.group,
        },
        "group.list" => {
            parse::<NoParams>(params)?;
            GroupCommand::List
        }
        "group.send" => {
            let p: SendParams = parse(params)?;
            GroupCommand::Send {
                group: p.group,
                message: p.message,
                timeout: timeout_param(p.timeout, DEFAULT_TIMEOUT_SECS)?.as_secs(),
                reply_to: p.reply_to,
            }
        }
        other => {
            return Err(MethodError::rpc(
                METHOD_NOT_FOUND,
                format!("no method {other:?}"),
            ))
        }
    })
}

impl Daemon {
    /// Every `group.*` method.
    pub(super) async fn group_method(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Value, MethodError> {
        let client = self.client();
        match method {
            "group.enqueue" => return enqueue(&client, parse(params)?).await,
            "group.mark_read" => {
                let p: MarkReadParams = parse(params)?;
                return match mark_read(&client, &p.group, &p.ids).await {
                    Ok(marked) => Ok(json!({"marked_read": marked})),
                    Err(e) => Err(MethodError::command(&e, vec![])),
                };
            }
            "group.conversations" => {
                let p: ConversationsParams = parse(params)?;
                let limit = p.history.unwrap_or(DEFAULT_HISTORY);
                if limit > MAX_HISTORY {
                    return Err(MethodError::rpc(
                        INVALID_PARAMS,
                        format!(
                            "invalid params: history {limit} is over the limit of {MAX_HISTORY}"
                        ),
                    ));
                }
                return conversations(&client, limit)
                    .await
                    .map_err(|e| MethodError::command(&e, vec![]));
            }
            _ => {}
        }
        let command = command(method, params)?;
        let mut printer = Printer::new(true, Vec::new());
        let result = group::execute(&client, &mut printer, &command).await;
        let records = json_lines(&printer.into_inner());
        match result {
            Ok(status) => Ok(json!({"records": records, "exit_code": status.code()})),
            Err(e) => Err(MethodError::command(&e, records)),
        }
    }
}

/// An incoming message nobody has read or been shown.
fn is_unread(entry: &HistoryEntry) -> bool {
    entry.direction == Direction::Incoming
        && entry.status != DeliveryStatus::Read
        && !entry.reported
}

/// One stored group message as `group.conversations` answers it.
fn history_value(stored: &GroupHistoryEntry) -> Value {
    let entry = &stored.entry;
    let at = time_from_unix_ms(entry.received_at_ms)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut value = json!({
        "id": entry.id.to_hex(),
        "direction": if entry.direction == Direction::Incoming { "incoming" } else { "outgoing" },
        "status": status_name(entry.status),
        "at": at,
        "body": entry.body,
        "reported": entry.reported,
    });
    if entry.direction == Direction::Incoming {
        value["from"] = stored.from.clone().into();
    }
    super::chat::add_about(&mut value, &entry.about);
    value
}

/// `group.mark_read {group, ids}`: what opening a group in `chat` does:
/// a read receipt to each sender of these messages (pairwise, only the
/// sender learns it), and they count as reported.
pub async fn mark_read(client: &Client, group_text: &str, ids: &[String]) -> anyhow::Result<usize> {
    let found = group::find(client, group_text).await?;
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let history = client
        .group_history(&found.id, MAX_HISTORY)
        .await
        .context("reading the group's history")?;
    let mut by_sender: HashMap<AccountId, Vec<MessageId>> = HashMap::new();
    for stored in history.iter().filter(|s| {
        s.entry.direction == Direction::Incoming && wanted.contains(s.entry.id.to_hex().as_str())
    }) {
        by_sender
            .entry(stored.from_account)
            .or_default()
            .push(stored.entry.id);
    }
    for (sender, ids) in &by_sender {
        client
            .mark_group_read(sender, ids)
            .await
            .context("sending read receipts")?;
    }
    let shown: Vec<_> = client
        .unreported_group_messages()
        .await
        .context("reading the local group history")?
        .into_iter()
        .filter(|m| m.group == found.id && wanted.contains(m.id.to_hex().as_str()))
        .collect();
    client
        .mark_group_reported(&shown)
        .await
        .context("recording the shown group messages")?;
    Ok(by_sender.values().map(Vec::len).sum())
}

/// The `message` records of stored group messages this run's events do
/// not carry (the daemon's `receive`, as `umbra receive` prints them).
pub(super) async fn earlier_group_records(
    client: &Client,
    unreported: &[umbra_client_core::UnreportedGroupMessage],
    events: &[umbra_client_core::Event],
) -> Vec<crate::output::Record> {
    let earlier = group::unreported::earlier(unreported, events);
    if earlier.is_empty() {
        return Vec::new();
    }
    let groups = group::summaries(client).await.unwrap_or_default();
    earlier
        .into_iter()
        .map(|m| group::unreported::record(m, &groups))
        .collect()
}

/// `group.enqueue {group, message}`: sends at once and answers with the
/// id and how far each member's copy got (the chat's delivery mark).
async fn enqueue(client: &Client, params: EnqueueParams) -> Result<Value, MethodError> {
    let fail = |e: anyhow::Error| MethodError::command(&e, vec![]);
    if params.message.trim().is_empty() {
        return Err(fail(
            crate::exit_status::Failure::user("the message is empty").into(),
        ));
    }
    let found = group::find(client, &params.group).await.map_err(fail)?;
    let report = client
        .send_group_text(&found.id, &params.message)
        .await
        .map_err(|e| {
            fail(anyhow::Error::new(e).context(format!(
                "sending to the group {}",
                found.reference.display_name
            )))
        })?;
    let count = |wanted: fn(&MemberOutcome) -> bool| {
        report.members.iter().filter(|m| wanted(&m.outcome)).count()
    };
    let failed: Vec<Value> = report
        .failed()
        .map(|m| json!({"member": m.username, "reason": outcome_reason(&m.outcome)}))
        .collect();
    Ok(json!({
        "group": found.summary.id,
        "id": report.id.to_hex(),
        "reached": count(|o| *o == MemberOutcome::Reached),
        "queued": count(|o| *o == MemberOutcome::Queued),
        "failed": failed,
    }))
}

/// `group.conversations`: every group with its members and its last
/// `history` messages (oldest first), in the shape `umbra chat` loads
/// (through the daemon or, calling this directly, on its own).
pub async fn conversations(client: &Client, history: usize) -> anyhow::Result<Value> {
    let groups = group::summaries(client).await?;
    let labels = group::resolve::display_names(&groups);
    let mut out = Vec::with_capacity(groups.len());
    for summary in &groups {
        let label = labels
            .get(&summary.id)
            .map_or(summary.name.as_str(), String::as_str);
        let members: Vec<Value> = summary
            .members
            .iter()
            .map(|m| {
                json!({"username": m.username, "account_id": m.account_id,
                       "admin": m.admin, "me": m.me})
            })
            .collect();
        let id = umbra_client_core::GroupId::from_hex(&summary.id)
            .ok_or_else(|| anyhow::anyhow!("a group id that is not hex"))?;
        let stored = if history == 0 {
            Vec::new()
        } else {
            client
                .group_history(&id, history)
                .await
                .with_context(|| format!("loading the history of {label}"))?
        };
        let unread = stored.iter().filter(|e| is_unread(&e.entry)).count();
        let mut entries: Vec<Value> = Vec::with_capacity(stored.len());
        for entry in &stored {
            let mut value = history_value(entry);
            // A file message's `file`, as on a `message` record (only a
            // `[file] …` summary can be one).
            if entry.entry.body.starts_with("[file] ") {
                let file = client
                    .group_file_of(&id, entry)
                    .await
                    .with_context(|| format!("reading a stored file message of {label}"))?;
                if let Some(file) = file {
                    value["file"] = serde_json::to_value(crate::output::FileRef::from(&file))
                        .unwrap_or_default();
                }
            }
            entries.push(value);
        }
        out.push(json!({
            "group": summary.reference(label),
            "active": summary.active,
            "admin": summary.admin,
            "members_may_rename": summary.members_may_rename,
            "disappearing": client
                .group_disappearing_timer(&id)
                .await
                .with_context(|| format!("reading the disappearing timer of {label}"))?,
            "members": members,
            "unread": unread,
            "history": entries,
        }));
    }
    Ok(json!({"groups": out}))
}

/// The `typing` notification for a member typing in a group: the 1:1
/// shape with the group object added.
pub(super) async fn typing_value(
    client: &Client,
    group: &umbra_client_core::GroupId,
    from: &str,
    started: bool,
) -> Value {
    let groups = group::summaries(client).await.unwrap_or_default();
    let name = groups
        .iter()
        .find(|g| g.id == group.to_hex())
        .map(|g| g.name.clone())
        .unwrap_or_default();
    let group = group::events::reference(&groups, group, &name);
    json!({"type": "typing", "from": from, "started": started, "group": group})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_become_the_commands_the_cli_parses() {
        let create = command(
            "group.create",
            json!({"name": "family", "members": ["bob", "carol"]}),
        )
        .unwrap();
        assert!(matches!(
            create,
            GroupCommand::Create { ref members, wait: GroupWait { timeout: 30 }, .. }
                if members == &["bob", "carol"]
        ));
        assert!(matches!(
            command(
                "group.remove",
                json!({"group": "family", "member": "bob", "timeout": 3})
            )
            .unwrap(),
            GroupCommand::Remove {
                wait: GroupWait { timeout: 3 },
                ..
            }
        ));
        assert!(matches!(
            command("group.list", json!({})).unwrap(),
            GroupCommand::List
        ));
        // Admin-only unless asked, as on the command line.
        assert!(matches!(
            create,
            GroupCommand::Create {
                members_may_rename: false,
                ..
            }
        ));
        let open = command(
            "group.create",
            json!({"name": "club", "members": ["bob"], "members_may_rename": true}),
        )
        .unwrap();
        assert!(matches!(
            open,
            GroupCommand::Create {
                members_may_rename: true,
                ..
            }
        ));
        // And back: `group create --members-may-rename` through a daemon
        // asks for it; without the flag the param is not sent at all.
        let (method, params, _) = request_for(&open).unwrap();
        assert_eq!(method, "group.create");
        assert_eq!(params["members_may_rename"], true);
        let (_, params, _) = request_for(&create).unwrap();
        assert!(params.get("members_may_rename").is_none(), "{params}");
    }

    #[test]
    fn bad_params_are_invalid_params_not_a_panic() {
        for (method, params) in [
            ("group.create", json!({"name": "family", "members": []})),
            ("group.create", json!({"name": "family"})),
            ("group.add", json!({"group": "family"})),
            ("group.leave", json!({"group": "family", "password": "x"})),
            ("group.list", json!({"group": "family"})),
            (
                "group.send",
                json!({"group": "g", "message": "m", "timeout": u64::MAX}),
            ),
        ] {
            let error = command(method, params).expect_err(method);
            assert_eq!(error.code, INVALID_PARAMS, "{method}");
        }
        let error = command("group.fly", json!({})).err().unwrap();
        assert_eq!(error.code, METHOD_NOT_FOUND);
    }
}
