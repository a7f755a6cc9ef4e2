//! The file manager: sending a file (encrypt while uploading the blob, then
//! send its pointer in an end-to-end encrypted message) and fetching one
//! (download, verify and decrypt into a temporary file beside the
//! destination, moved into place only once the whole blob verified),
//! docs/PROTOCOL.md §14 and §12.16.
//!
//! Every file, sent or received, gets a record (kind `Attachment`) under a
//! local id: 8 bytes derived from the direction, the contact's account and
//! the message id, shown as 16 hex digits. That id is what an interface
//! shows and what [`Client::fetch_file`](crate::Client::fetch_file) takes;
//! the pointer (key, blob id, digest) stays in the record.
//!
//! Must never: hold a whole file in memory (both directions stream one
//! chunk at a time), save under a peer's file name without
//! `sanitize_file_name`, leave a partial or unverified file at the
//! destination, overwrite an existing file, or show or log a file key.

mod fetch;
mod group;
mod inbound;
mod send;
mod transfer;

pub(crate) use group::{accept_group, group_file_of};
pub(crate) use inbound::{accept, Arrived};
pub(crate) use send::TRANSFER_IDLE;
pub(crate) use transfer::{download, upload};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use umbra_protocol::content::FilePointer;

use crate::conversation::Direction;
use crate::records;
use crate::store::Vault;
use crate::{Error, GroupId, MessageId};

/// A file as an interface shows it. Names from others are sanitised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The local id (16 hex digits): what `fetch_file` takes.
    pub id: String,
    /// The file name, sanitised (`sanitize_file_name`): safe to save under.
    pub name: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// The MIME type the sender gave (untrusted).
    pub media_type: String,
}

/// How far a transfer got, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Blob bytes uploaded or downloaded so far.
    pub done: u64,
    /// The blob's whole length.
    pub total: u64,
}

/// A file record as stored (kind `Attachment`). The variant index is the
/// record's format version.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum StoredFile {
    /// Format 0: a file of a 1:1 conversation.
    V1(StoredFileV1),
    /// Format 1: a file of a group (`group.rs`), its local id derived with
    /// the group's id so it never names a 1:1 file of the same sender.
    Group(StoredGroupFile),
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredGroupFile {
    /// The group it was sent to.
    group: [u8; 32],
    /// The file as a 1:1 one is kept, `account` being its author.
    file: StoredFileV1,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredFileV1 {
    /// 0 received, 1 sent.
    direction: u8,
    /// The contact's account.
    account: [u8; 16],
    /// The pointer exactly as it travelled (its own file name unsanitised).
    pointer: FilePointer,
    /// The sanitised name to save under.
    name: String,
}

impl StoredFile {
    pub(crate) fn new(direction: Direction, account: [u8; 16], pointer: FilePointer) -> Self {
        StoredFile::V1(StoredFileV1::new(direction, account, pointer))
    }

    /// A file of `group` written by `account` (us for `Outgoing`).
    pub(crate) fn for_group(
        group: &GroupId,
        direction: Direction,
        account: [u8; 16],
        pointer: FilePointer,
    ) -> Self {
        StoredFile::Group(StoredGroupFile {
            group: group.0,
            file: StoredFileV1::new(direction, account, pointer),
        })
    }

    fn v1(&self) -> &StoredFileV1 {
        match self {
            StoredFile::V1(v1) => v1,
            StoredFile::Group(g) => &g.file,
        }
    }

    /// The local id: [`local_id`], or [`group_local_id`] for a group's.
    pub(crate) fn local_id(&self) -> [u8; 8] {
        let v1 = self.v1();
        let direction = v1.direction();
        match self {
            StoredFile::V1(_) => local_id(direction, &v1.account, &v1.pointer.id),
            StoredFile::Group(g) => {
                group_local_id(&GroupId(g.group), direction, &v1.account, &v1.pointer.id)
            }
        }
    }

    pub(crate) fn pointer(&self) -> &FilePointer {
        &self.v1().pointer
    }

    pub(crate) fn info(&self) -> FileInfo {
        let v1 = self.v1();
        FileInfo {
            id: hex::encode(self.local_id()),
            name: v1.name.clone(),
            size: v1.pointer.size,
            media_type: v1.pointer.content_type.clone(),
        }
    }
}

impl StoredFileV1 {
    fn new(direction: Direction, account: [u8; 16], pointer: FilePointer) -> Self {
        let name = umbra_protocol::attachment::sanitize_file_name(&pointer.file_name);
        StoredFileV1 {
            direction: match direction {
                Direction::Incoming => 0,
                Direction::Outgoing => 1,
            },
            account,
            pointer,
            name,
        }
    }

    fn direction(&self) -> Direction {
        if self.direction == 0 {
            Direction::Incoming
        } else {
            Direction::Outgoing
        }
    }
}

impl std::fmt::Debug for StoredFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pointer holds the file key: only what the user sees.
        f.debug_tuple("StoredFile").field(&self.info()).finish()
    }
}

/// The local id of the file in message `id` from or to `account`.
pub(crate) fn local_id(direction: Direction, account: &[u8; 16], id: &MessageId) -> [u8; 8] {
    let mut hash = Sha256::new();
    hash.update(b"umbra/v1/local-file-id");
    hash.update([match direction {
        Direction::Incoming => b'i',
        Direction::Outgoing => b'o',
    }]);
    hash.update(account);
    hash.update(id.0);
    let digest = hash.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// The local id of the file in group message `id` of `group`, written by
/// `account` (docs/PROTOCOL.md §12.16): the group's id goes into the hash,
/// so a member cannot replace the record of a 1:1 file (or of another
/// group's) by reusing its message id.
pub(crate) fn group_local_id(
    group: &GroupId,
    direction: Direction,
    account: &[u8; 16],
    id: &MessageId,
) -> [u8; 8] {
    let mut hash = Sha256::new();
    hash.update(b"umbra/v1/local-group-file-id");
    hash.update(group.0);
    hash.update([match direction {
        Direction::Incoming => b'i',
        Direction::Outgoing => b'o',
    }]);
    hash.update(account);
    hash.update(id.0);
    let digest = hash.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// The local id in `text` (16 hex digits), if it is one.
pub(crate) fn parse_local_id(text: &str) -> Result<[u8; 8], Error> {
    let unknown = || Error::File(crate::FileFailure::Unknown(text.chars().take(40).collect()));
    let bytes = hex::decode(text.trim()).map_err(|_| unknown())?;
    bytes.try_into().map_err(|_| unknown())
}

/// The file that came with message `id` from or to `account`, if any.
pub(crate) async fn file_of_message(
    vault: &Vault,
    direction: Direction,
    account: &[u8; 16],
    id: &MessageId,
) -> Result<Option<FileInfo>, Error> {
    let slot = records::file::slot(vault, &local_id(direction, account, id));
    Ok(vault.load(&slot).await?.map(|f: StoredFile| f.info()))
}

/// The text a file message shows where a message body goes (history,
/// conversation lists).
pub(crate) fn summary(name: &str, size: u64) -> String {
    format!("[file] {name} ({size} bytes)")
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_group;
#[cfg(test)]
mod tests_history;
