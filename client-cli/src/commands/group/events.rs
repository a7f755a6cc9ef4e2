//! client-core's group events as records: what `receive`, `send`,
//! `receive --follow`, the daemon's notifications and `umbra chat` show
//! for a group message or a membership change.
//!
//! client-core names the accounts a change is about by account id; the
//! records name them as the user knows them (the name the group lists, a
//! contact's display name, the name the last state that listed it gave it
//! — a removed member's, as client-core reports it — or the name it wrote
//! under in the group), and fall back to `account xxxxxxxx` for an account
//! none of them knows, never to a guess.
//!
//! Must never: attribute a change to anyone but its author as client-core
//! reports it, or drop a group event a script must see (a removal of this
//! account above all).

use std::collections::HashMap;

use umbra_client_core::{
    AccountId, Client, Event, GroupChangeKind as CoreChange, GroupId, GroupMemberName,
};

use super::summaries;
use super::view::GroupSummary;
use crate::output::{time_from_unix_ms, GroupChangeKind, GroupRef, Record};

/// The records for a group event, or `None` if `event` is not one.
pub(crate) async fn records_for_group(client: &Client, event: &Event) -> Option<Vec<Record>> {
    let now = time::OffsetDateTime::now_utc();
    let groups = || async { summaries(client).await.unwrap_or_default() };
    Some(match event {
        Event::GroupMessage {
            group,
            group_name,
            from,
            id,
            body,
            sent_at_ms,
            received_at_ms,
            reply_to,
            file,
            ..
        } => vec![Record::Message {
            from: from.clone(),
            id: id.to_hex(),
            sent_at: time_from_unix_ms(*sent_at_ms),
            received_at: time_from_unix_ms(*received_at_ms),
            body: body.clone(),
            group: Some(reference(&groups().await, group, group_name)),
            file: file.as_ref().map(crate::output::FileRef::from),
            reply_to: reply_to.map(|id| id.to_hex()),
        }],
        Event::MessageChanged {
            group: Some(group),
            from,
            id,
            target,
            change,
            ..
        } => {
            let group = Some(reference_by_id(&groups().await, group));
            vec![crate::commands::about::changed_record(
                from.clone(),
                *id,
                *target,
                change.clone(),
                group,
            )]
        }
        Event::GroupDisappearingTimerChanged {
            group,
            group_name,
            by,
            seconds,
        } => vec![Record::GroupDisappearingTimer {
            group: reference(&groups().await, group, group_name),
            by: by.clone(),
            seconds: *seconds,
        }],
        Event::GroupMessagesExpired { group, ids } => vec![Record::GroupMessagesExpired {
            group: reference_by_id(&groups().await, group),
            ids: ids.iter().map(|id| id.to_hex()).collect(),
        }],
        Event::MessageChangeRefused {
            group: Some(group),
            from,
            id,
            target,
            reason,
        } => vec![Record::MessageChangeRefused {
            from: from.clone(),
            id: id.to_hex(),
            target: target.to_hex(),
            reason: reason.code().to_owned(),
            group: Some(reference_by_id(&groups().await, group)),
        }],
        Event::GroupMembershipChanged {
            group,
            group_name,
            change,
            by,
            members,
            about,
            old_name,
        } => {
            let groups = groups().await;
            let names = NameBook::new(client, &groups, group, about).await;
            let me = client.whoami();
            let mine = |ids: &[AccountId]| ids.contains(&me.account_id);
            let (kind, about, includes_me) = match change {
                CoreChange::Created => {
                    let others: Vec<String> =
                        members.iter().filter(|m| *m != by).cloned().collect();
                    (GroupChangeKind::Created, others, true)
                }
                CoreChange::Added(ids) => (GroupChangeKind::Added, names.of(ids), mine(ids)),
                CoreChange::Removed(ids) => (GroupChangeKind::Removed, names.of(ids), mine(ids)),
                CoreChange::Left => (
                    GroupChangeKind::Left,
                    vec![by.clone()],
                    *by == me.username.as_str(),
                ),
                CoreChange::Renamed(_) => (GroupChangeKind::Renamed, Vec::new(), false),
                CoreChange::Promoted(id) => (
                    GroupChangeKind::Promoted,
                    names.of(std::slice::from_ref(id)),
                    *id == me.account_id,
                ),
                // A kind this umbra does not know yet: still shown.
                _ => (GroupChangeKind::Changed, Vec::new(), false),
            };
            vec![Record::GroupChange {
                group: reference(&groups, group, group_name),
                change: kind,
                by: by.clone(),
                members: about,
                includes_me,
                old_name: old_name.clone(),
                reissued: None,
                new_name: match change {
                    CoreChange::Renamed(name) => Some(name.clone()),
                    _ => None,
                },
                removed_by: None,
                at: now,
            }]
        }
        Event::RemovedFromGroup {
            group,
            group_name,
            by,
        } => vec![Record::GroupChange {
            group: reference(&groups().await, group, group_name),
            change: GroupChangeKind::Removed,
            by: by.clone(),
            members: vec![client.whoami().username.to_string()],
            includes_me: true,
            old_name: None,
            reissued: None,
            new_name: None,
            removed_by: None,
            at: now,
        }],
        Event::GroupMembershipRestored {
            group,
            group_name,
            by,
            removed_by,
        } => vec![Record::GroupChange {
            group: reference(&groups().await, group, group_name),
            change: GroupChangeKind::Restored,
            by: by.clone(),
            members: vec![client.whoami().username.to_string()],
            includes_me: true,
            old_name: None,
            reissued: None,
            new_name: None,
            removed_by: removed_by.clone(),
            at: now,
        }],
        Event::GroupChangeSuperseded {
            group,
            group_name,
            reissued,
        } => vec![Record::GroupChange {
            group: reference(&groups().await, group, group_name),
            change: GroupChangeKind::Superseded,
            by: client.whoami().username.to_string(),
            members: Vec::new(),
            includes_me: true,
            old_name: None,
            reissued: Some(*reissued),
            new_name: None,
            removed_by: None,
            at: now,
        }],
        // Refused for good after its send said `queued`: the `send_failed`
        // a send prints for a refused member, naming the group.
        Event::GroupDeliveryFailed {
            group,
            id,
            username,
            reason,
            ..
        } => {
            let groups = groups().await;
            let name = groups
                .iter()
                .find(|g| g.id == group.to_hex())
                .map(|g| g.name.clone())
                .unwrap_or_default();
            vec![Record::SendFailed {
                to: username.clone(),
                id: id.to_hex(),
                // The words umbra has always printed for a member's copy.
                reason: format!("the relay refused it: {reason}"),
                group: Some(reference(&groups, group, &name)),
            }]
        }
        // The same receipt also arrives as the 1:1 `DeliveryReceipt` /
        // `ReadReceipt` event (receipts travel pairwise): printed once, from
        // that one.
        Event::GroupReceipt { .. } => Vec::new(),
        // Typing is not a record (the daemon's subscribers get it).
        Event::GroupTyping { .. } => Vec::new(),
        _ => return None,
    })
}

/// How records name `group`: its label among this account's groups.
pub(crate) fn reference(groups: &[GroupSummary], group: &GroupId, name: &str) -> GroupRef {
    super::reference_in(groups, &group.to_hex(), name)
}

/// A group's reference by its id alone: its name as this account's groups
/// list it (empty for one it no longer holds).
fn reference_by_id(groups: &[GroupSummary], group: &GroupId) -> GroupRef {
    let id = group.to_hex();
    let name = groups
        .iter()
        .find(|g| g.id == id)
        .map(|g| g.name.clone())
        .unwrap_or_default();
    super::reference_in(groups, &id, &name)
}

/// Messages of a group's history searched for the name of an account a
/// change is about (one that was removed is in no member list any more).
const HISTORY_FOR_NAMES: usize = 500;

/// Account ids to names: the group's members, then contacts, then the
/// names the change's event gives, then who wrote in the group.
struct NameBook {
    names: HashMap<AccountId, String>,
}

impl NameBook {
    async fn new(
        client: &Client,
        groups: &[GroupSummary],
        group: &GroupId,
        about: &[GroupMemberName],
    ) -> Self {
        let mut names = HashMap::new();
        // Weakest first, each overridden by a better source: who wrote in
        // the group, then the name the last state that listed an account
        // gave it (a removed member is in no member list any more), then
        // contacts, then the group's own member list.
        for stored in client
            .group_history(group, HISTORY_FOR_NAMES)
            .await
            .unwrap_or_default()
        {
            names.insert(stored.from_account, stored.from);
        }
        for named in about {
            names.insert(named.account_id, named.username.clone());
        }
        for contact in client.contacts().await.unwrap_or_default() {
            names.insert(contact.account_id, contact.display_name);
        }
        let hex = group.to_hex();
        for member in groups
            .iter()
            .filter(|g| g.id == hex)
            .flat_map(|g| &g.members)
        {
            if let Some(id) = AccountId::from_hex(&member.account_id) {
                names.insert(id, member.username.clone());
            }
        }
        Self { names }
    }

    fn of(&self, ids: &[AccountId]) -> Vec<String> {
        ids.iter()
            .map(|id| {
                self.names.get(id).cloned().unwrap_or_else(|| {
                    let hex = id.to_hex();
                    format!("account {}", &hex[..hex.len().min(8)])
                })
            })
            .collect()
    }
}
