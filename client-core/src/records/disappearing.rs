//! Disappearing-message records (docs/PROTOCOL.md §12.9, §12.18): each
//! conversation's timer, and one expiry per message stored while a timer
//! was on.
//!
//! Must never: name a timer or an expiry slot by anything but the
//! contact's account or the group's id (HMAC'd like every named slot; the
//! two are 16 and 32 bytes, so one never names the other's).

use super::{kind, Slot};
use crate::disappearing::{StoredExpiry, StoredTimer};
use crate::store::Vault;

kind!(
    /// A conversation's timer and the change that set it.
    Timers = DisappearingTimer, StoredTimer
);
kind!(
    /// When one history entry is to be deleted.
    Expiries = Expiry, StoredExpiry
);

/// The slot of `account`'s timer (HMAC of the account id).
pub(crate) fn timer(vault: &Vault, account: &[u8; 16]) -> Slot<Timers> {
    Slot::named(vault, account)
}

/// The slot of the expiry of `account`'s history entry `seq` (the
/// history slot's shape: HMAC of the account id, then u64be `seq`).
pub(crate) fn expiry(vault: &Vault, account: &[u8; 16], seq: u64) -> Slot<Expiries> {
    Slot::ordered(vault, account, seq)
}

/// The slot of `group`'s timer (HMAC of the 32-byte group id).
pub(crate) fn group_timer(vault: &Vault, group: &crate::GroupId) -> Slot<Timers> {
    Slot::named(vault, &group.0)
}

/// The slot of the expiry of `group`'s history entry `seq` (the group
/// history slot's shape: HMAC of the group id, then u64be `seq`).
pub(crate) fn group_expiry(vault: &Vault, group: &crate::GroupId, seq: u64) -> Slot<Expiries> {
    Slot::ordered(vault, &group.0, seq)
}
