//! Issuing group changes: create, add, remove, leave, rename, promote.
//!
//! A change is built and signed by our identity on top of the group's head
//! (`GroupChange::build` checks that the state accepts it, so we never
//! send what members refuse), applied to our own log, then sent pairwise
//! to every member of the new state and to those it removes (so their
//! clients know), and as a welcome (the whole new state plus the Add) to
//! those it adds — all in one fan-out, committed with the group and the
//! sessions that sealed it before anything leaves. An addition larger
//! than one change may list is made as several changes.
//!
//! A change of ours that loses the fork choice to a concurrent change
//! (`inbound.rs` notices) is made again on the new head if it still
//! applies and still changes something (`reissue.rs`, through
//! [`Engine::issue_commit`]).
//!
//! Must never: send a change our own log did not accept, or skip a member
//! of the new state (a member that misses a change refuses every later one
//! until it arrives).

use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::consts::MAX_MEMBERS_PER_CHANGE;
use umbra_protocol::content::Content;
use umbra_protocol::group::{
    GroupAction, GroupChange, GroupLog, GroupPolicy, GroupState, LogOutcome, NewMember,
};
use umbra_protocol::wire::{AccountId, Username};

use crate::engine::{now_ms, Engine};
use crate::store::Txn;
use crate::{Error, MessageId, PeerRef};

use super::fanout::{FanoutEntry, FanoutItem, FanoutPurpose};
use super::manager::{Group, Membership};
use super::{GroupChangeKind, GroupFailure, GroupId, GroupSendReport, MemberOutcome, MemberReport};

/// What a change does, as the API's event shows it.
pub(crate) fn change_kind(change: &GroupChange) -> GroupChangeKind {
    match change.action() {
        GroupAction::Create { .. } => GroupChangeKind::Created,
        GroupAction::Add { members } => {
            GroupChangeKind::Added(members.iter().map(|m| m.account).collect())
        }
        GroupAction::Remove { accounts } => GroupChangeKind::Removed(accounts.clone()),
        GroupAction::Leave => GroupChangeKind::Left,
        GroupAction::Rename { name } => GroupChangeKind::Renamed(name.clone()),
        GroupAction::Promote { account } => GroupChangeKind::Promoted(*account),
    }
}

fn refused(e: impl std::fmt::Display) -> Error {
    GroupFailure::Refused(e.to_string()).into()
}

impl Engine {
    /// The account and username a member is named by.
    pub(crate) async fn resolve_member(
        self: &Arc<Self>,
        peer: &PeerRef,
    ) -> Result<(AccountId, Username), Error> {
        if let PeerRef::Name(name) = peer {
            match self.names.binding(name.as_str()).await? {
                Some(b) if b.newcomer.is_some() => {
                    return Err(Error::NameReassigned {
                        username: name.clone(),
                    })
                }
                Some(b) => return Ok((AccountId::from_bytes(b.account), name.clone())),
                None => {
                    self.ensure_connected()?;
                    let account = self.resolve(name).await?;
                    return Ok((account, name.clone()));
                }
            }
        }
        let contact = self.known_contact(peer).await?;
        Ok((AccountId::from_bytes(contact.account), contact.name()?))
    }

    /// The member of `state` that `peer` names.
    async fn member_of(
        self: &Arc<Self>,
        state: &GroupState,
        peer: &PeerRef,
    ) -> Result<AccountId, Error> {
        if let PeerRef::Name(name) = peer {
            let matching: Vec<_> = state
                .members()
                .iter()
                .filter(|m| m.username == *name)
                .collect();
            if let [one] = matching.as_slice() {
                return Ok(one.account);
            }
        }
        let (account, _) = self.resolve_member(peer).await?;
        if !state.is_member(&account) {
            return Err(GroupFailure::NothingToChange("not a member of the group").into());
        }
        Ok(account)
    }

    /// Creates a group named `name` with us (its admin) and `members`,
    /// under `policy` (fixed for the group's life, §8.9).
    pub(crate) async fn create_group(
        self: &Arc<Self>,
        name: &str,
        members: &[PeerRef],
        policy: GroupPolicy,
    ) -> Result<(GroupId, GroupSendReport), Error> {
        self.check_open()?;
        let me = self.me();
        let mut listed = vec![NewMember {
            account: me.account,
            username: me.username.clone(),
        }];
        for peer in members {
            let (account, username) = self.resolve_member(peer).await?;
            if !listed.iter().any(|m| m.account == account) {
                listed.push(NewMember { account, username });
            }
        }
        let max = umbra_protocol::consts::MAX_GROUP_MEMBERS;
        if listed.len() > max {
            return Err(GroupFailure::TooManyMembers {
                count: listed.len(),
                max,
            }
            .into());
        }
        let later = listed.split_off(listed.len().min(MAX_MEMBERS_PER_CHANGE));
        let recipients: Vec<_> = listed
            .iter()
            .filter(|m| m.account != me.account)
            .map(|m| (m.account, m.username.clone()))
            .collect();
        let mut bundles = self.member_bundles(&recipients).await?;
        let id = GroupId::random(&mut OsRng);
        let report = {
            let _guard = self.op_lock.lock().await;
            let change = GroupChange::create(&self.identity, me.account, id, name, policy, listed)
                .map_err(refused)?;
            let log = GroupLog::create(change.clone(), &self.identity.public()).map_err(refused)?;
            let group = Group::new(log);
            self.commit_change(group, &change, &recipients, &[], &mut bundles)
                .await?
        };
        let mut report = self.finish_change(report).await?;
        for chunk in later.chunks(MAX_MEMBERS_PER_CHANGE) {
            let more = self.add_accounts(&id, chunk.to_vec()).await?;
            report.members.extend(more.members);
            report.frame_bytes += more.frame_bytes;
        }
        Ok((id, report))
    }

    /// Adds `members` (in changes of at most `MAX_MEMBERS_PER_CHANGE`).
    pub(crate) async fn add_members(
        self: &Arc<Self>,
        group: &GroupId,
        members: &[PeerRef],
    ) -> Result<GroupSendReport, Error> {
        self.check_open()?;
        let mut new = Vec::new();
        for peer in members {
            let (account, username) = self.resolve_member(peer).await?;
            if !new.iter().any(|m: &NewMember| m.account == account) {
                new.push(NewMember { account, username });
            }
        }
        let mut report: Option<GroupSendReport> = None;
        for chunk in new.chunks(MAX_MEMBERS_PER_CHANGE) {
            let more = self.add_accounts(group, chunk.to_vec()).await?;
            match &mut report {
                Some(r) => {
                    r.members.extend(more.members);
                    r.frame_bytes += more.frame_bytes;
                }
                None => report = Some(more),
            }
        }
        report.ok_or_else(|| GroupFailure::NothingToChange("no member to add").into())
    }

    async fn add_accounts(
        self: &Arc<Self>,
        group: &GroupId,
        new: Vec<NewMember>,
    ) -> Result<GroupSendReport, Error> {
        self.issue(group, move |state| {
            let members: Vec<_> = new
                .iter()
                .filter(|m| !state.is_member(&m.account))
                .cloned()
                .collect();
            if members.is_empty() {
                return Err(GroupFailure::NothingToChange("already members").into());
            }
            Ok(GroupAction::Add { members })
        })
        .await
    }

    /// Removes one member (admins only).
    pub(crate) async fn remove_member(
        self: &Arc<Self>,
        group: &GroupId,
        member: &PeerRef,
    ) -> Result<GroupSendReport, Error> {
        let state = self.groups.require(group).await?;
        let account = self.member_of(state.state(), member).await?;
        self.issue(group, move |_| {
            Ok(GroupAction::Remove {
                accounts: vec![account],
            })
        })
        .await
    }

    /// Leaves the group: members are told, and our keys for it forgotten.
    pub(crate) async fn leave_group(
        self: &Arc<Self>,
        group: &GroupId,
    ) -> Result<GroupSendReport, Error> {
        self.issue(group, |_| Ok(GroupAction::Leave)).await
    }

    /// Renames the group.
    pub(crate) async fn rename_group(
        self: &Arc<Self>,
        group: &GroupId,
        name: &str,
    ) -> Result<GroupSendReport, Error> {
        let name = name.to_owned();
        self.issue(group, move |state| {
            if state.name() == name {
                return Err(GroupFailure::NothingToChange("the group has this name").into());
            }
            Ok(GroupAction::Rename { name: name.clone() })
        })
        .await
    }

    /// Makes a member an admin.
    pub(crate) async fn promote(
        self: &Arc<Self>,
        group: &GroupId,
        member: &PeerRef,
    ) -> Result<GroupSendReport, Error> {
        let state = self.groups.require(group).await?;
        let account = self.member_of(state.state(), member).await?;
        self.issue(group, move |state| {
            if state.is_admin(&account) {
                return Err(GroupFailure::NothingToChange("already an admin").into());
            }
            Ok(GroupAction::Promote { account })
        })
        .await
    }

    /// Builds `action` on the head, applies it, and fans it out.
    pub(crate) async fn issue<F>(
        self: &Arc<Self>,
        group: &GroupId,
        action: F,
    ) -> Result<GroupSendReport, Error>
    where
        F: Fn(&GroupState) -> Result<GroupAction, Error>,
    {
        let pending = self.issue_commit(group, action, None).await?;
        self.finish_change(pending).await
    }

    /// Builds `action` on the head, applies it and commits it with its
    /// fan-out (not yet handed to the relay). `reissuing`: the superseded
    /// change of ours this one makes again, taken off the group's list in
    /// the same commit, so a failure before it leaves the change listed
    /// and a crash after it never makes it twice.
    pub(super) async fn issue_commit<F>(
        self: &Arc<Self>,
        group: &GroupId,
        action: F,
        reissuing: Option<&[u8]>,
    ) -> Result<PendingChange, Error>
    where
        F: Fn(&GroupState) -> Result<GroupAction, Error>,
    {
        self.check_open()?;
        let me = self.me();
        let current = self.groups.require(group).await?;
        current.require_active()?;
        // Network first: bundles of everyone the change must reach.
        let mut wanted = recipients_of(current.state(), None, &me.account);
        if let GroupAction::Add { members } = action(current.state())? {
            wanted.extend(members.iter().map(|m| (m.account, m.username.clone())));
        }
        let mut bundles = self.member_bundles(&wanted).await?;
        let pending = {
            let _guard = self.op_lock.lock().await;
            let mut group = self.groups.require(group).await?;
            group.require_active()?;
            if let Some(bytes) = reissuing {
                group.superseded.retain(|b| b.as_slice() != bytes);
            }
            let change = GroupChange::build(
                &self.identity,
                me.account,
                group.state(),
                action(group.state())?,
            )
            .map_err(|e| match e {
                umbra_protocol::group::GroupChangeError::NotAuthorized { .. } => {
                    Error::from(GroupFailure::NotAdmin)
                }
                other => refused(other),
            })?;
            let parent = group.state().clone();
            match group
                .log
                .apply(change.clone(), &self.identity.public())
                .map_err(refused)?
            {
                LogOutcome::Applied(_) => {}
                other => return Err(refused(format!("our own change did not apply: {other:?}"))),
            }
            let recipients = recipients_of(group.state(), Some(&parent), &me.account);
            let added: Vec<AccountId> = match change.action() {
                GroupAction::Add { members } => members.iter().map(|m| m.account).collect(),
                _ => Vec::new(),
            };
            self.commit_change(group, &change, &recipients, &added, &mut bundles)
                .await
        };
        pending
    }

    /// Under the lock: seals `change` to `recipients` (a welcome to those
    /// in `added`), applies its effects on our keys and membership, and
    /// commits the group, sessions and fan-out together.
    pub(crate) async fn commit_change(
        &self,
        mut group: Group,
        change: &GroupChange,
        recipients: &[(AccountId, Username)],
        added: &[AccountId],
        bundles: &mut super::members::Bundles,
    ) -> Result<PendingChange, Error> {
        let me = self.me();
        let id = group.id();
        let mut sessions = self.member_sessions(recipients, bundles).await?;
        let mut items = Vec::new();
        for (account, username) in recipients {
            let content = if added.contains(account) {
                Content::GroupWelcome {
                    state: group.state().to_bytes(),
                    change: change.as_bytes().to_vec(),
                }
            } else {
                Content::GroupControl {
                    change: change.as_bytes().to_vec(),
                }
            };
            // Every device of the member's list we have a session with.
            for (device, envelope) in sessions.seal(self, account, content)? {
                items.push(FanoutItem {
                    to_account: *account.as_bytes(),
                    to_device: device.0,
                    to_username: username.as_str().to_owned(),
                    envelope,
                    sender_key_epoch: None,
                });
            }
        }
        let mut txn = Txn::new();
        self.apply_own_effects(&mut txn, &mut group, change).await?;
        sessions.store(self, &mut txn).await?;
        self.groups.put(&mut txn, &group)?;
        let mut counters = self.counters().await?;
        let entry = FanoutEntry {
            id: MessageId::random(&mut OsRng),
            group: id,
            purpose: FanoutPurpose::Control,
            items,
            queued_at_ms: now_ms(),
        };
        let seq = self.queue_fanout(&mut txn, &mut counters, &entry)?;
        self.put_counters(&mut txn, &counters)?;
        self.vault.commit(txn).await?;
        for event in sessions.events.drain(..) {
            self.emit(event);
        }
        self.emit(super::events::membership_event(
            &group,
            change,
            me.username.as_str(),
        ));
        Ok(PendingChange {
            seq,
            report: GroupSendReport {
                group: id,
                id: entry.id,
                members: recipients
                    .iter()
                    .map(|(account, username)| MemberReport {
                        account_id: *account,
                        username: username.as_str().to_owned(),
                        outcome: match sessions.failed.get(account.as_bytes()) {
                            Some(reason) => MemberOutcome::NotSent(reason.clone()),
                            None => MemberOutcome::Queued,
                        },
                    })
                    .collect(),
                frame_bytes: 0,
            },
        })
    }

    /// What a change we made does to our own records: a Leave forgets the
    /// group's keys; a Remove forgets the removed members' keys (our next
    /// send rotates ours, as the rotation point moved).
    async fn apply_own_effects(
        &self,
        txn: &mut Txn,
        group: &mut Group,
        change: &GroupChange,
    ) -> Result<(), Error> {
        let id = group.id();
        match change.action() {
            GroupAction::Leave => {
                group.membership = Membership::Left;
                let members: Vec<_> = group.state().members().iter().map(|m| m.account).collect();
                self.groups.drop_all_keys(txn, &id, &members);
            }
            GroupAction::Remove { accounts } => {
                for account in accounts {
                    self.groups.drop_member_keys(txn, &id, account);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// After the commit: hands the fan-out to the relay and fills in the
    /// report.
    pub(crate) async fn finish_change(
        self: &Arc<Self>,
        pending: PendingChange,
    ) -> Result<GroupSendReport, Error> {
        let PendingChange { seq, mut report } = pending;
        // Only now, with the change durable, may the connection start (an
        // offline change waits in the fan-out queue).
        self.ensure_connected()?;
        let round = self.send_fanout(seq, false).await?;
        merge_round(&mut report, round);
        Ok(report)
    }
}

/// A change committed but not yet handed to the relay.
pub(crate) struct PendingChange {
    pub(crate) seq: u64,
    pub(crate) report: GroupSendReport,
}

/// Fills each member's outcome from a fan-out round (its last item's).
pub(crate) fn merge_round(report: &mut GroupSendReport, round: super::fanout::Round) {
    for (account, _, outcome) in round.outcomes {
        if let Some(line) = report
            .members
            .iter_mut()
            .find(|m| m.account_id.as_bytes() == &account)
        {
            // A member's items succeed together or the worst one counts.
            if line.outcome.is_ok() {
                line.outcome = outcome;
            }
        }
    }
    report.frame_bytes += round.frame_bytes;
}

/// Everyone a change must reach: the members of `state` and of `parent`
/// (a removed member learns it was removed), ourselves excepted.
pub(crate) fn recipients_of(
    state: &GroupState,
    parent: Option<&GroupState>,
    me: &AccountId,
) -> Vec<(AccountId, Username)> {
    let mut out: Vec<(AccountId, Username)> = state
        .members()
        .iter()
        .map(|m| (m.account, m.username.clone()))
        .collect();
    if let Some(parent) = parent {
        for m in parent.members() {
            if !state.is_member(&m.account) {
                out.push((m.account, m.username.clone()));
            }
        }
    }
    out.retain(|(a, _)| a != me);
    out
}
