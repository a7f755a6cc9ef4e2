//! The backup state record: the export key the account backup is sealed
//! under, and what the relay last acknowledged (docs/PROTOCOL.md §12.15).
//!
//! Must never: hold a second backup state beside the first (the kind's only
//! slot is the singleton).

use super::{kind, Slot};
use crate::backup::BackupState;

kind!(
    /// The account backup's export key, acknowledged seq and digest.
    Backup = Backup, BackupState
);

/// The backup state's slot.
pub(crate) fn state() -> Slot<Backup> {
    Slot::singleton()
}
