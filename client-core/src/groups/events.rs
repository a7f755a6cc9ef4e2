//! The membership events of a group, built in one place for the changes we
//! make (`control.rs`) and those that arrive (`inbound.rs`): what changed,
//! who did it, the names of the accounts it is about and, for a rename, the
//! name before; and the event that says we are a member again after the
//! fork choice undid our removal (docs/PROTOCOL.md §12.14).
//!
//! A removed member is in no member list after its removal: its name comes
//! from the last state that listed it (the change's parent), so the user
//! sees who was removed, not an account id.
//!
//! Must never: name an account by anything but a group state that listed
//! it (the hint its adder wrote), or raise an event for a change the log
//! did not apply.

use umbra_protocol::group::{GroupAction, GroupChange, GroupState};
use umbra_protocol::wire::AccountId;

use super::control::change_kind;
use super::manager::{Group, Membership};
use crate::Event;

/// An account a membership change is about, with the username the group
/// lists it under (a display hint written by whoever added it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberName {
    /// The account (authoritative).
    pub account_id: AccountId,
    /// The username the group listed it under: for a removed member, or
    /// one who left, the last state that listed it.
    pub username: String,
}

/// The name `account` has in `group`'s states: the head, then the
/// oldest state kept (a member who left is still listed there), else its
/// account id.
pub(crate) fn name_in(group: &Group, account: &AccountId) -> String {
    group
        .log
        .base()
        .member(account)
        .or_else(|| group.state().member(account))
        .map(|m| m.username.as_str().to_owned())
        .unwrap_or_else(|| account.to_string())
}

/// [`Event::GroupMembershipChanged`] for `change`, applied to `group`'s
/// log, made by `by` (as shown).
pub(crate) fn membership_event(group: &Group, change: &GroupChange, by: &str) -> Event {
    let before = group.log.state_after(change.parent());
    let after = group
        .log
        .state_after(change.hash())
        .unwrap_or(group.state());
    let accounts: Vec<(AccountId, Option<&GroupState>)> = match change.action() {
        GroupAction::Add { members } => members.iter().map(|m| (m.account, Some(after))).collect(),
        GroupAction::Promote { account } => vec![(*account, Some(after))],
        GroupAction::Remove { accounts } => accounts.iter().map(|a| (*a, before)).collect(),
        GroupAction::Leave => vec![(change.author(), before)],
        GroupAction::Create { .. } | GroupAction::Rename { .. } => Vec::new(),
    };
    let about = accounts
        .into_iter()
        .map(|(account, state)| GroupMemberName {
            account_id: account,
            username: state
                .and_then(|s| s.member(&account))
                .map(|m| m.username.as_str().to_owned())
                .unwrap_or_else(|| name_in(group, &account)),
        })
        .collect();
    let old_name = match change.action() {
        GroupAction::Rename { .. } => before.map(|s| s.name().to_owned()),
        _ => None,
    };
    Event::GroupMembershipChanged {
        group: group.id(),
        group_name: group.name(),
        change: change_kind(change),
        by: by.to_owned(),
        members: group.member_names(),
        about,
        old_name,
    }
}

/// [`Event::GroupMembershipRestored`] for `group`, whose head state lists
/// us again while `membership` (what it was) says we are out: `winner`
/// made the change that won over our removal or Leave.
pub(crate) fn restored_event(
    group: &Group,
    membership: Membership,
    winner: Option<AccountId>,
) -> Event {
    Event::GroupMembershipRestored {
        group: group.id(),
        group_name: group.name(),
        by: winner.map(|w| name_in(group, &w)).unwrap_or_default(),
        removed_by: match membership {
            Membership::Removed(by) => Some(name_in(group, &AccountId::from_bytes(by))),
            Membership::Active | Membership::Left => None,
        },
    }
}
