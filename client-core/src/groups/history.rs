//! Group messages in the local store: every group message sent or received
//! is a history entry of its group, so one that arrives while the
//! application is busy with something else (a `umbra group send` whose
//! connection also receives) is still shown later: it stays listed in
//! [`Client::unreported_group_messages`] until the application marks it
//! reported, as 1:1 messages do (`timeline.rs`).
//!
//! Must never: lose an incoming group message that was acknowledged (its
//! entry is written in the same transaction as the delivery), or store one
//! in clear (the record is sealed; the slot is an HMAC of the group id).

use serde::{Deserialize, Serialize};
use umbra_protocol::wire::AccountId;

use crate::conversation::HistoryEntry;
use crate::engine::Engine;
use crate::history::{Counters, StoredHistoryEntry};
use crate::records;
use crate::store::{Txn, Vault};
use crate::{Client, Error, MessageId};

use super::{history_index, GroupId};

/// One stored group message (kind `GroupHistory`).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct GroupHistoryRecord {
    /// Who wrote it (our own account for ours).
    from_account: [u8; 16],
    /// How the writer was shown when it arrived.
    from: String,
    entry: StoredHistoryEntry,
}

impl GroupHistoryRecord {
    /// `entry` written by `from_account`, shown as `from`.
    pub(crate) fn new(from_account: &AccountId, from: &str, entry: &HistoryEntry) -> Self {
        Self {
            from_account: *from_account.as_bytes(),
            from: from.to_owned(),
            entry: StoredHistoryEntry::from(entry),
        }
    }
}

/// One group message as [`Client::group_history`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHistoryEntry {
    /// Who wrote it, as shown when it arrived (our username for ours).
    pub from: String,
    /// The writer's account.
    pub from_account: AccountId,
    /// The message (direction, body, times, status, reported).
    pub entry: HistoryEntry,
}

/// An incoming group message no interface has reported yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreportedGroupMessage {
    /// The group.
    pub group: GroupId,
    /// Its name now (untrusted: sanitise before display).
    pub group_name: String,
    /// The sender, as shown when it arrived.
    pub from: String,
    /// The sender's account.
    pub from_account: AccountId,
    /// The sender's message id.
    pub id: MessageId,
    /// The text (untrusted: sanitise before display).
    pub body: String,
    /// The sender's clock at sending, Unix milliseconds (untrusted).
    pub sent_at_ms: u64,
    /// When the relay accepted it, Unix milliseconds.
    pub received_at_ms: u64,
    /// For a reply: the group message it quotes (docs/PROTOCOL.md §10.6).
    pub reply_to: Option<MessageId>,
    /// For a file: what `fetch_file` takes (`body` is then a summary).
    pub file: Option<crate::FileInfo>,
    seq: u64,
}

impl Engine {
    /// Adds a group message to `group`'s history in `txn`, with its
    /// location in the message index (`history_index.rs`).
    pub(crate) async fn append_group_history(
        &self,
        txn: &mut Txn,
        counters: &mut Counters,
        group: &GroupId,
        from: (&AccountId, &str),
        entry: &HistoryEntry,
    ) -> Result<(), Error> {
        let seq = counters.next_history_seq;
        append(&self.vault, txn, counters, group, from, entry).await?;
        // Under the group's disappearing timer, its expiry (§12.18).
        let due = &self.timeline.due;
        crate::disappearing::group::stamp(&self.vault, due, txn, group, seq, entry).await?;
        Ok(())
    }
}

/// Adds to `txn` the removal of `group`'s entry `seq` if it is message
/// `id` (an expiry names both, §12.18); the entry removed, if any.
pub(crate) async fn remove_entry(
    vault: &Vault,
    txn: &mut Txn,
    group: &GroupId,
    seq: u64,
    id: &MessageId,
) -> Result<Option<GroupHistoryEntry>, Error> {
    let slot = records::group::history_entry(vault, group, seq);
    let Some(record) = vault.load(&slot).await? else {
        return Ok(None);
    };
    let entry = public_group_entry(record);
    if entry.entry.id != *id {
        return Ok(None);
    }
    vault.remove(txn, slot);
    Ok(Some(entry))
}

/// [`Engine::append_group_history`] on `vault`.
pub(crate) async fn append(
    vault: &Vault,
    txn: &mut Txn,
    counters: &mut Counters,
    group: &GroupId,
    from: (&AccountId, &str),
    entry: &HistoryEntry,
) -> Result<(), Error> {
    let seq = counters.next_history_seq;
    counters.next_history_seq += 1;
    let record = GroupHistoryRecord::new(from.0, from.1, entry);
    vault.save(
        txn,
        records::group::history_entry(vault, group, seq),
        &record,
    )?;
    history_index::note(vault, txn, group, from.0, &entry.id, seq).await
}

/// A stored group message found by its id, for a reaction, edit or
/// delete (docs/PROTOCOL.md §10.6).
pub(crate) struct FoundGroupEntry {
    pub(crate) seq: u64,
    pub(crate) from_account: AccountId,
    pub(crate) entry: HistoryEntry,
    record: GroupHistoryRecord,
}

impl FoundGroupEntry {
    fn new(seq: u64, record: GroupHistoryRecord) -> Self {
        Self {
            seq,
            from_account: AccountId::from_bytes(record.from_account),
            entry: HistoryEntry::from(record.entry.clone()),
            record,
        }
    }
}

/// Every stored message of `group` with id `id`, oldest first (ids are
/// unique per sender, so two authors may share one; each author's oldest
/// only). Read through the message index once `group` is indexed; before
/// that, one scan of its history, which with `build` also indexes it in
/// that transaction (`history_index.rs`).
pub(crate) async fn entries_with_id(
    vault: &Vault,
    group: &GroupId,
    id: &MessageId,
    build: Option<&mut Txn>,
) -> Result<Vec<FoundGroupEntry>, Error> {
    if history_index::is_complete(vault, group).await? {
        let mut found = Vec::new();
        for location in history_index::locations(vault, group, id).await? {
            let slot = records::group::history_entry(vault, group, location.seq);
            // Gone (a removed entry's stale location): nothing there.
            let Some(record) = vault.load(&slot).await? else {
                continue;
            };
            let entry = FoundGroupEntry::new(location.seq, record);
            if entry.entry.id == *id && *entry.from_account.as_bytes() == location.author {
                found.push(entry);
            }
        }
        return Ok(found);
    }
    // Stored before the index existed (or never looked up since).
    let prefix = records::group::history_of(vault, group);
    let mut found: Vec<FoundGroupEntry> = Vec::new();
    let mut every = Vec::new();
    for (slot, record) in vault.load_all(&prefix).await? {
        let Some(seq) = records::group::history_seq(&slot) else {
            continue;
        };
        let entry = FoundGroupEntry::new(seq, record);
        every.push((seq, *entry.from_account.as_bytes(), entry.entry.id));
        // As the index keeps it: each author's oldest entry with the id.
        if entry.entry.id == *id && !found.iter().any(|f| f.from_account == entry.from_account) {
            found.push(entry);
        }
    }
    if let Some(txn) = build {
        history_index::build(vault, txn, group, every)?;
    }
    Ok(found)
}

impl Engine {
    /// [`entries_with_id`] in this engine's store.
    pub(crate) async fn group_entries_with_id(
        &self,
        group: &GroupId,
        id: &MessageId,
        build: Option<&mut Txn>,
    ) -> Result<Vec<FoundGroupEntry>, Error> {
        entries_with_id(&self.vault, group, id, build).await
    }

    /// Adds to `txn` `found` rewritten with its (changed) entry.
    pub(crate) fn replace_group_entry(
        &self,
        txn: &mut Txn,
        group: &GroupId,
        found: FoundGroupEntry,
    ) -> Result<(), Error> {
        let mut record = found.record;
        record.entry = StoredHistoryEntry::from(&found.entry);
        let slot = records::group::history_entry(&self.vault, group, found.seq);
        self.vault.save(txn, slot, &record)?;
        Ok(())
    }
}

pub(crate) fn public_group_entry(record: GroupHistoryRecord) -> GroupHistoryEntry {
    GroupHistoryEntry {
        from: record.from,
        from_account: AccountId::from_bytes(record.from_account),
        entry: HistoryEntry::from(record.entry),
    }
}

/// Group history.
impl Client {
    /// The last `limit` messages of a group, oldest first.
    pub async fn group_history(
        &self,
        group: &GroupId,
        limit: usize,
    ) -> Result<Vec<GroupHistoryEntry>, Error> {
        let engine = &self.inner;
        engine.groups.require(group).await?;
        let all = engine
            .vault
            .load_all(&records::group::history_of(&engine.vault, group))
            .await?;
        let skip = all.len().saturating_sub(limit);
        Ok(all
            .into_iter()
            .skip(skip)
            .map(|(_, r)| public_group_entry(r))
            .collect())
    }

    /// The file a stored message of `group` carries (`entry` as
    /// [`Client::group_history`] returned it), `None` for a text: how an
    /// interface finds the id to fetch a file shown from group history.
    pub async fn group_file_of(
        &self,
        group: &GroupId,
        entry: &GroupHistoryEntry,
    ) -> Result<Option<crate::FileInfo>, Error> {
        crate::files::group_file_of(&self.inner.vault, group, entry).await
    }

    /// Incoming group messages no interface has shown yet, oldest first
    /// across all groups. Print them, then [`Client::mark_group_reported`]:
    /// a crash in between shows them again, never loses them.
    pub async fn unreported_group_messages(&self) -> Result<Vec<UnreportedGroupMessage>, Error> {
        let engine = &self.inner;
        let mut out = Vec::new();
        for group in engine.groups.all().await? {
            let id = group.id();
            let prefix = records::group::history_of(&engine.vault, &id);
            for (slot, record) in engine.vault.load_all(&prefix).await? {
                let seq = records::group::history_seq(&slot).unwrap_or(u64::MAX);
                let item = public_group_entry(record);
                if item.entry.direction != crate::Direction::Incoming || item.entry.reported {
                    continue;
                }
                let file = crate::files::group_file_of(&engine.vault, &id, &item).await?;
                out.push(UnreportedGroupMessage {
                    file,
                    group: id,
                    group_name: group.name(),
                    from: item.from,
                    from_account: item.from_account,
                    id: item.entry.id,
                    body: item.entry.body,
                    sent_at_ms: item.entry.sent_at_ms,
                    received_at_ms: item.entry.received_at_ms,
                    reply_to: item.entry.about.reply_to,
                    seq,
                });
            }
        }
        out.sort_by_key(|m| m.seq);
        Ok(out)
    }

    /// Records that these group messages were shown.
    pub async fn mark_group_reported(
        &self,
        messages: &[UnreportedGroupMessage],
    ) -> Result<(), Error> {
        let engine = &self.inner;
        engine.check_open()?;
        let _guard = engine.op_lock.lock().await;
        let mut txn = Txn::new();
        for message in messages {
            let slot = records::group::history_entry(&engine.vault, &message.group, message.seq);
            let Some(mut record) = engine.vault.load(&slot).await? else {
                continue;
            };
            let mut entry = HistoryEntry::from(record.entry.clone());
            if entry.reported || entry.id != message.id {
                continue;
            }
            entry.reported = true;
            record.entry = StoredHistoryEntry::from(&entry);
            engine.vault.save(&mut txn, slot, &record)?;
        }
        engine.vault.commit(txn).await?;
        Ok(())
    }
}
