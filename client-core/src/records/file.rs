//! File records: one per file sent or received, under its local id.
//!
//! Must never: key a record by anything a peer chooses alone (the local id
//! mixes in the direction and the contact's account, so one sender cannot
//! overwrite another's file by reusing a message id).

use super::{kind, Slot};
use crate::files::StoredFile;
use crate::store::Vault;

kind!(
    /// A file's pointer and where it came from, by local id.
    Files = Attachment, StoredFile
);

/// The slot of the file with local id `id`.
pub(crate) fn slot(vault: &Vault, id: &[u8; 8]) -> Slot<Files> {
    Slot::named(vault, id)
}
