//! The backup state record: the export key the account backup is sealed
//! under, and what the relay last acknowledged (docs/PROTOCOL.md §12.15);
//! and beside it, the export key of a password change whose answer never
//! came (kind `PendingExportKey`), until a login says which key is the
//! relay's.
//!
//! Why the pending key is a kind of its own and not a new field of
//! `BackupState`: postcard is not self-describing, so a field added to the
//! struct would make every `Backup` record written by an earlier version
//! fail to decode (a missing trailing field is an unexpected end of
//! input). A separate singleton leaves the `Backup` layout as it was; a
//! store without one simply has no change pending.
//!
//! Must never: hold a second backup state beside the first (each kind's
//! only slot is its singleton).

use super::{kind, Slot};
use crate::backup::{BackupState, ExportKey};

kind!(
    /// The account backup's export key, acknowledged seq and digest.
    Backup = Backup, BackupState
);

kind!(
    /// The new password's export key while the change's outcome is unknown.
    Pending = PendingExportKey, ExportKey
);

/// The backup state's slot.
pub(crate) fn state() -> Slot<Backup> {
    Slot::singleton()
}

/// The pending export key's slot.
pub(crate) fn pending() -> Slot<Pending> {
    Slot::singleton()
}
