//! The held device lists (kind `DeviceList`, one per account, slot HMAC of
//! the account id): the highest-versioned list this client verified for
//! each account it writes to, its own included, with the identity it
//! verified under, and for the own account the tombstones of the devices
//! this client removed (docs/PROTOCOL.md §12.9, §15.3, §15.4;
//! `crate::devices`).
//!
//! Must never: hold a list that did not verify under the account's pinned
//! identity (the records layer stores what `devices` hands it; only
//! `devices` decides what is verified).

use super::{kind, Slot};
use crate::devices::StoredDeviceList;
use crate::store::Vault;

kind!(
    /// One account's verified device list.
    HeldLists = DeviceList, StoredDeviceList
);

/// The slot of `account`'s held list (HMAC of the account id).
pub(crate) fn slot(vault: &Vault, account: &[u8; 16]) -> Slot<HeldLists> {
    Slot::named(vault, account)
}
