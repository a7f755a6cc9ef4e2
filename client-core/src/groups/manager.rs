//! The group manager: the only code that reads and writes group records
//! (each group's change log and our membership), our sender keys and the
//! members' sender keys. A manager type in the shape of the name book
//! (docs/ARCHITECTURE.md, "Managers as types"): it holds an `Arc<Vault>`,
//! reads, and adds writes to a [`Txn`] the caller commits.
//!
//! Must never: ask the relay, take the state lock, emit an event, or hand
//! out a group we are no longer a member of as one we may send to.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use umbra_protocol::group::{GroupLog, GroupState};
use umbra_protocol::wire::AccountId;

use crate::records;
use crate::store::{Txn, Vault};
use crate::{Error, MessageId};

use super::keys::{OwnSenderKey, ReceiverKeys};
use super::{GroupFailure, GroupId, GroupInfo, GroupMemberInfo};

/// How many of our latest group message ids a group remembers, so a
/// pairwise receipt naming one can be shown with its group: a receipt
/// comes soon after the message, and older ones are still shown, without
/// the group.
pub(crate) const RECENT_SENT_IDS: usize = 256;

/// Whether we are in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Membership {
    /// A member: we receive and may send.
    Active,
    /// We left.
    Left,
    /// An admin removed us (its account).
    Removed([u8; 16]),
}

/// One group (kind `Group`, slot = HMAC of the group id).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    /// The group's change log: base state, recent changes, fork choice
    /// (`GroupLog::to_pickle`).
    #[serde(with = "serde_bytes")]
    pub(crate) log: Vec<u8>,
    pub(crate) membership: Membership,
    /// Our latest group message ids, oldest first (for receipts).
    pub(crate) recent_sent: Vec<MessageId>,
    /// Our changes that lost the fork choice, to make again on the head.
    pub(crate) superseded: Vec<serde_bytes::ByteBuf>,
}

/// A group record with its log loaded.
pub(crate) struct Group {
    pub(crate) log: GroupLog,
    pub(crate) membership: Membership,
    pub(crate) recent_sent: Vec<MessageId>,
    pub(crate) superseded: Vec<serde_bytes::ByteBuf>,
}

impl Group {
    /// A group we just created or joined.
    pub(crate) fn new(log: GroupLog) -> Self {
        Self {
            log,
            membership: Membership::Active,
            recent_sent: Vec::new(),
            superseded: Vec::new(),
        }
    }

    pub(crate) fn state(&self) -> &GroupState {
        self.log.state()
    }

    pub(crate) fn id(&self) -> GroupId {
        *self.state().group()
    }

    pub(crate) fn name(&self) -> String {
        self.state().name().to_owned()
    }

    /// Fails unless we are still a member.
    pub(crate) fn require_active(&self) -> Result<(), Error> {
        match self.membership {
            Membership::Active => Ok(()),
            _ => Err(GroupFailure::NotAMember.into()),
        }
    }

    /// Remembers one of our message ids for its receipts.
    pub(crate) fn note_sent(&mut self, id: MessageId) {
        self.recent_sent.push(id);
        let excess = self.recent_sent.len().saturating_sub(RECENT_SENT_IDS);
        self.recent_sent.drain(..excess);
    }

    /// The public view.
    pub(crate) fn info(&self) -> GroupInfo {
        GroupInfo {
            id: self.id(),
            name: self.name(),
            version: self.state().version(),
            active: self.membership == Membership::Active,
            member_count: self.state().members().len(),
            members_may_rename: self.state().policy().members_may_rename,
        }
    }

    /// The members, `me` marked.
    pub(crate) fn members(&self, me: &AccountId) -> Vec<GroupMemberInfo> {
        self.state()
            .members()
            .iter()
            .map(|m| GroupMemberInfo {
                account_id: m.account,
                username: m.username.as_str().to_owned(),
                admin: m.is_admin(),
                is_me: &m.account == me,
            })
            .collect()
    }

    /// Usernames of the members, in the group's order (for events).
    pub(crate) fn member_names(&self) -> Vec<String> {
        self.state()
            .members()
            .iter()
            .map(|m| m.username.as_str().to_owned())
            .collect()
    }
}

/// Groups, their changes and sender keys in the store (see the module docs).
pub(crate) struct GroupManager {
    vault: Arc<Vault>,
    /// Serialises fan-out rounds (a send and the outbox pump), so the same
    /// stored items are never handed to the relay twice at once.
    pub(crate) fanout_lock: tokio::sync::Mutex<()>,
    /// Serialises the rounds that make our superseded changes again
    /// (`reissue.rs`), so no change is decided twice.
    pub(crate) reissue_lock: tokio::sync::Mutex<()>,
    /// When we last asked or answered each member about each group
    /// (`sync.rs`, the rate limits of §8.15).
    pub(crate) sync: super::sync::SyncLimits,
    /// Items from senders our state does not list, held until a sync
    /// brings their Add (`held.rs`).
    pub(crate) held: super::held::Held,
    /// When we last asked or answered each member for a sender key
    /// (`key_request.rs`, the limits of §8.16).
    pub(crate) key_requests: super::key_request::KeyRequestLimits,
    /// When each member's device list was last fetched for a group
    /// operation (`members.rs`, §15.3 rule 1: at most once per
    /// `RECHECK_AFTER`). In memory only.
    pub(crate) member_lists: crate::identity_checks::IdentityChecks,
}

impl GroupManager {
    pub(crate) fn new(vault: Arc<Vault>) -> Self {
        Self {
            vault,
            fanout_lock: tokio::sync::Mutex::new(()),
            reissue_lock: tokio::sync::Mutex::new(()),
            sync: super::sync::SyncLimits::default(),
            member_lists: crate::identity_checks::IdentityChecks::default(),
            held: super::held::Held::default(),
            key_requests: super::key_request::KeyRequestLimits::default(),
        }
    }

    /// The group `id`, if we know it.
    pub(crate) async fn get(&self, id: &GroupId) -> Result<Option<Group>, Error> {
        let Some(record) = self
            .vault
            .load(&records::group::group(&self.vault, id))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(load(record)?))
    }

    /// The group `id`, or [`GroupFailure::UnknownGroup`].
    pub(crate) async fn require(&self, id: &GroupId) -> Result<Group, Error> {
        self.get(id)
            .await?
            .ok_or_else(|| GroupFailure::UnknownGroup(*id).into())
    }

    /// Adds the group's write to `txn`.
    pub(crate) fn put(&self, txn: &mut Txn, group: &Group) -> Result<(), Error> {
        let record = GroupRecord {
            log: group.log.to_pickle().to_vec(),
            membership: group.membership,
            recent_sent: group.recent_sent.clone(),
            superseded: group.superseded.clone(),
        };
        self.vault.save(
            txn,
            records::group::group(&self.vault, &group.id()),
            &record,
        )?;
        Ok(())
    }

    /// Every group we know, by name then id.
    pub(crate) async fn all(&self) -> Result<Vec<Group>, Error> {
        let mut out = Vec::new();
        for (_, record) in self.vault.load_all(&records::group::all_groups()).await? {
            out.push(load(record)?);
        }
        out.sort_by_key(|g| (g.name(), g.id()));
        Ok(out)
    }

    /// The one group called `name` (exactly), or why there is not one.
    pub(crate) async fn by_name(&self, name: &str) -> Result<GroupId, Error> {
        let found: Vec<GroupId> = self
            .all()
            .await?
            .into_iter()
            .filter(|g| g.name() == name)
            .map(|g| g.id())
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(GroupFailure::NoSuchName(name.to_owned()).into()),
            many => Err(GroupFailure::AmbiguousName {
                name: name.to_owned(),
                count: many.len(),
            }
            .into()),
        }
    }

    /// The typing event for a notice from `member` in `group`, if it is
    /// a current member of a group we are in.
    pub(crate) async fn typing_event(
        &self,
        group: &GroupId,
        member: &AccountId,
        from: String,
        started: bool,
    ) -> Result<Option<crate::Event>, Error> {
        Ok(match self.get(group).await? {
            Some(g) if g.membership == Membership::Active && g.state().is_member(member) => {
                Some(crate::Event::GroupTyping {
                    group: *group,
                    from,
                    started,
                })
            }
            _ => None,
        })
    }

    /// Our sender key in `group`, if we made one.
    pub(crate) async fn own_key(&self, group: &GroupId) -> Result<Option<OwnSenderKey>, Error> {
        Ok(self
            .vault
            .load(&records::group::own_key(&self.vault, group))
            .await?)
    }

    pub(crate) fn put_own_key(
        &self,
        txn: &mut Txn,
        group: &GroupId,
        key: &OwnSenderKey,
    ) -> Result<(), Error> {
        self.vault
            .save(txn, records::group::own_key(&self.vault, group), key)?;
        Ok(())
    }

    /// The sender keys of `member` in `group` we keep.
    pub(crate) async fn member_keys(
        &self,
        group: &GroupId,
        member: &AccountId,
    ) -> Result<Option<ReceiverKeys>, Error> {
        Ok(self
            .vault
            .load(&records::group::member_keys(
                &self.vault,
                group,
                member.as_bytes(),
            ))
            .await?)
    }

    pub(crate) fn put_member_keys(
        &self,
        txn: &mut Txn,
        group: &GroupId,
        member: &AccountId,
        keys: &ReceiverKeys,
    ) -> Result<(), Error> {
        self.vault.save(
            txn,
            records::group::member_keys(&self.vault, group, member.as_bytes()),
            keys,
        )?;
        Ok(())
    }

    /// Forgets `member`'s sender keys in `group` (it was removed or left:
    /// nothing it sends is read again).
    pub(crate) fn drop_member_keys(&self, txn: &mut Txn, group: &GroupId, member: &AccountId) {
        self.vault.remove(
            txn,
            records::group::member_keys(&self.vault, group, member.as_bytes()),
        );
    }

    /// Forgets every key of `group` (we left or were removed): `members`
    /// are the accounts whose keys we may hold.
    pub(crate) fn drop_all_keys(&self, txn: &mut Txn, group: &GroupId, members: &[AccountId]) {
        for member in members {
            self.drop_member_keys(txn, group, member);
        }
        self.vault
            .remove(txn, records::group::own_key(&self.vault, group));
        self.vault
            .remove(txn, records::group::sent_distributions(&self.vault, group));
    }
}

fn load(record: GroupRecord) -> Result<Group, Error> {
    let log = GroupLog::from_pickle(&record.log).map_err(records::group::bad_log)?;
    Ok(Group {
        log,
        membership: record.membership,
        recent_sent: record.recent_sent,
        superseded: record.superseded,
    })
}
