//! The blocked-accounts record (kind `Blocked`, singleton): the accounts
//! this user blocked (docs/PROTOCOL.md §12.9, `crate::blocking`).
//!
//! Must never: hold anything but this device's own choice (no key).

use super::{kind, Slot};
use crate::blocking::StoredBlocked;

kind!(
    /// Which accounts are blocked.
    Blocked = Blocked, StoredBlocked
);

/// The block list's only slot.
pub(crate) fn slot() -> Slot<Blocked> {
    Slot::singleton()
}
