//! Disappearing messages in groups (docs/PROTOCOL.md §8.9, §10.8,
//! §12.18): a group has one timer, which any member may set with an
//! `ExpirationTimer` sent as a group message (encrypted once under the
//! sender key, like a text); every member applies the change with the
//! larger `(sent_at_ms, id)`, so all converge whatever order changes
//! crossed in. Each group history entry stored while the timer is on gets
//! an `Expiry` record (format 1, naming the group and the entry's
//! sequence), and the sweep (`disappearing.rs`) deletes the entry and its
//! file record when it runs out.
//!
//! Must never: take a timer change from anyone but a member whose group
//! message opened (the caller, `groups/inbound.rs`, checked that), keep a
//! group message's text after its expiry passed and a sweep ran, or
//! delete an entry the expiry does not name (its id is checked).

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::content::Content;

use super::{apply_change_at, check_seconds, timer_at, Due, StoredExpiry};
use crate::conversation::HistoryEntry;
use crate::engine::{now_ms, Engine};
use crate::groups::manager::Group;
use crate::records;
use crate::store::{StoreError, Txn, Vault};
use crate::{Client, Error, Event, GroupId, GroupSendReport, MessageId};

/// The group's timer: 0 when off or never set.
pub(crate) async fn timer_of(vault: &Vault, group: &GroupId) -> Result<u32, StoreError> {
    timer_at(vault, &records::disappearing::group_timer(vault, group)).await
}

/// Adds to `txn` the expiry of `group`'s entry `seq` if the group's timer
/// is on (called for every group history entry appended), and rings `due`.
pub(crate) async fn stamp(
    vault: &Vault,
    due: &Due,
    txn: &mut Txn,
    group: &GroupId,
    seq: u64,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    let seconds = timer_of(vault, group).await?;
    if seconds == 0 {
        return Ok(());
    }
    let expires_at_ms = now_ms().saturating_add(u64::from(seconds) * 1000);
    vault.save(
        txn,
        records::disappearing::group_expiry(vault, group, seq),
        &StoredExpiry::Group {
            group: group.0,
            seq,
            id: entry.id,
            expires_at_ms,
        },
    )?;
    due.note(expires_at_ms);
    Ok(())
}

/// Adds to `txn` the change in `content` (an `ExpirationTimer`) for
/// `group` if it wins over the one held; whether it did.
pub(crate) async fn apply(
    vault: &Vault,
    txn: &mut Txn,
    group: &GroupId,
    content: &Content,
) -> Result<bool, StoreError> {
    let Content::ExpirationTimer {
        id,
        seconds,
        sent_at_ms,
    } = content
    else {
        return Ok(false);
    };
    let slot = records::disappearing::group_timer(vault, group);
    apply_change_at(vault, txn, slot, (*seconds, *sent_at_ms, *id)).await
}

/// An `ExpirationTimer` in a group message from the member shown as
/// `from`: applied if it wins, with its event; an older or repeated change
/// is dropped.
pub(crate) async fn accept(
    engine: &Engine,
    txn: &mut Txn,
    group: &Group,
    from: &str,
    content: Content,
) -> Result<Vec<Event>, Error> {
    let Content::ExpirationTimer { seconds, .. } = content else {
        return Ok(Vec::new());
    };
    if !apply(&engine.vault, txn, &group.id(), &content).await? {
        return Ok(Vec::new());
    }
    Ok(vec![Event::GroupDisappearingTimerChanged {
        group: group.id(),
        group_name: group.name(),
        by: Some(from.to_owned()),
        seconds,
    }])
}

/// What a sweep found expired in groups: per group, each entry's sequence
/// and id.
#[derive(Default)]
pub(super) struct Expired(BTreeMap<[u8; 32], Vec<(u64, MessageId)>>);

impl Expired {
    pub(super) fn note(&mut self, group: [u8; 32], seq: u64, id: MessageId) {
        self.0.entry(group).or_default().push((seq, id));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds to `txn` the removal of every expired entry still stored (and
    /// of its file record); how many went, and the events saying which.
    pub(super) async fn erase(
        self,
        engine: &Engine,
        txn: &mut Txn,
    ) -> Result<(usize, Vec<Event>), Error> {
        let (mut count, mut events) = (0, Vec::new());
        for (group, entries) in self.0 {
            let group = GroupId(group);
            let mut ids = Vec::new();
            for (seq, id) in entries {
                let removed =
                    crate::groups::history::remove_entry(&engine.vault, txn, &group, seq, &id)
                        .await?;
                let Some(gone) = removed else { continue };
                let file = crate::files::group_file_of(&engine.vault, &group, &gone).await?;
                if let Some(file) = file {
                    let local = crate::files::parse_local_id(&file.id)?;
                    engine
                        .vault
                        .remove(txn, records::file::slot(&engine.vault, &local));
                }
                ids.push(id);
            }
            count += ids.len();
            if !ids.is_empty() {
                events.push(Event::GroupMessagesExpired { group, ids });
            }
        }
        Ok((count, events))
    }
}

impl Engine {
    async fn set_group_disappearing(
        self: &Arc<Self>,
        group: &GroupId,
        seconds: u32,
    ) -> Result<GroupSendReport, Error> {
        self.check_open()?;
        check_seconds(seconds)?;
        let content = Content::ExpirationTimer {
            id: MessageId::random(&mut OsRng),
            seconds,
            sent_at_ms: now_ms(),
        };
        let report = self.send_group_timer(group, content).await?;
        let group_name = self.groups.require(group).await?.name();
        self.emit(Event::GroupDisappearingTimerChanged {
            group: *group,
            group_name,
            by: None,
            seconds,
        });
        Ok(report)
    }
}

/// Disappearing messages in groups.
impl Client {
    /// Sets the group's disappearing-message timer to `seconds` (0 turns
    /// it off; else 1 s to four weeks) here and, as a group message, for
    /// every member (docs/PROTOCOL.md §8.9: any member may). Messages of
    /// the group stored from now on are deleted from each member's store
    /// `seconds` after that member stored them; those already stored keep
    /// what they had. The report is a group send's.
    pub async fn set_group_disappearing(
        &self,
        group: &GroupId,
        seconds: u32,
    ) -> Result<GroupSendReport, Error> {
        self.inner.set_group_disappearing(group, seconds).await
    }

    /// The group's disappearing-message timer in seconds, 0 when off.
    pub async fn group_disappearing_timer(&self, group: &GroupId) -> Result<u32, Error> {
        self.inner.groups.require(group).await?;
        Ok(timer_of(&self.inner.vault, group).await?)
    }
}
