//! Files in groups (docs/PROTOCOL.md §12.16): the blob is encrypted and
//! uploaded once, as for a 1:1 file, and its `FilePointer` goes to every
//! member as the plaintext of one sealed group message (§8.4), so each
//! member fetches the same blob with the same key. Sent and received
//! group files get an `Attachment` record under a local id derived with
//! the group's id ([`super::group_local_id`]).
//!
//! Must never: upload before we know the group can be sent to (a blob
//! nobody is told of is wasted upload and relay space), store a second
//! record or history entry for a pointer, or take a pointer from anyone
//! but a member whose message opened under its own sender key (the
//! caller, `groups/inbound.rs`, has checked that).

use std::path::Path;
use std::sync::Arc;

use umbra_protocol::content::{Content, FilePointer};

use super::{records, summary, FileInfo, Progress, StoredFile};
use crate::conversation::{Direction, HistoryEntry};
use crate::engine::Engine;
use crate::groups::about::Member;
use crate::groups::manager::Group;
use crate::history::Counters;
use crate::inbound::Failure;
use crate::store::{Txn, Vault};
use crate::{Error, Event, GroupHistoryEntry, GroupId, GroupSendReport};

impl Engine {
    /// Uploads `path` and sends its pointer to every member of `group`,
    /// named `name` (default: the file's own name), sanitised.
    pub(crate) async fn send_group_file(
        self: &Arc<Self>,
        group: &GroupId,
        path: &Path,
        name: Option<&str>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(GroupSendReport, FileInfo), Error> {
        self.check_open()?;
        // A group we left or do not know is refused before the upload.
        let sendable = async {
            self.groups.require(group).await?.require_active()?;
            Ok(())
        };
        let pointer = self.upload_file(path, name, progress, sendable).await?;
        let me = *self.me().account.as_bytes();
        let info = StoredFile::for_group(group, Direction::Outgoing, me, pointer.clone()).info();
        let report = self.send_group_pointer(group, pointer).await?;
        Ok((report, info))
    }

    /// Writes to `txn` the record of a file of `group` written by
    /// `account` (us for `Outgoing`); its info, for the history entry and
    /// the event.
    pub(crate) fn store_group_file(
        &self,
        txn: &mut Txn,
        group: &GroupId,
        direction: Direction,
        account: [u8; 16],
        pointer: FilePointer,
    ) -> Result<FileInfo, Error> {
        let stored = StoredFile::for_group(group, direction, account, pointer);
        let slot = records::file::slot(&self.vault, &stored.local_id());
        self.vault.save(txn, slot, &stored)?;
        Ok(stored.info())
    }
}

/// A `FilePointer` from `member` in a sealed group message of `group`:
/// its record and history entry (the body a summary, as in 1:1), and a
/// delivery receipt to the sender, pairwise, as for a group text.
pub(crate) async fn accept_group(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    group: &Group,
    member: Member<'_>,
    pointer: FilePointer,
    received_at_ms: u64,
) -> Result<Vec<Event>, Failure> {
    let group_id = group.id();
    let id = pointer.id;
    let account = *member.account.as_bytes();
    let mut counters: Counters = engine.counters().await?;
    let info = engine.store_group_file(txn, &group_id, Direction::Incoming, account, pointer)?;
    // A pointer carries no clock: the relay's acceptance time stands in.
    let body = summary(&info.name, info.size);
    let entry = HistoryEntry::incoming(id, body.clone(), received_at_ms, received_at_ms, None);
    let from = (&member.account, member.from);
    engine
        .append_group_history(txn, &mut counters, &group_id, from, &entry)
        .await?;
    let receipt = vec![Content::DeliveryReceipt { ids: vec![id] }];
    crate::groups::sync::receipt(engine, txn, &mut counters, member.contact, receipt).await?;
    engine.put_counters(txn, &counters)?;
    Ok(vec![Event::GroupMessage {
        group: group_id,
        group_name: group.name(),
        from: member.from.to_owned(),
        from_account: member.account,
        id,
        body,
        sent_at_ms: received_at_ms,
        received_at_ms,
        reply_to: None,
        file: Some(info),
    }])
}

/// The file a stored message of `group` carries (`None` for a text).
pub(crate) async fn group_file_of(
    vault: &Vault,
    group: &GroupId,
    entry: &GroupHistoryEntry,
) -> Result<Option<FileInfo>, Error> {
    let (direction, account) = (entry.entry.direction, entry.from_account.as_bytes());
    let local = super::group_local_id(group, direction, account, &entry.entry.id);
    let slot = records::file::slot(vault, &local);
    Ok(vault.load(&slot).await?.map(|f: StoredFile| f.info()))
}
