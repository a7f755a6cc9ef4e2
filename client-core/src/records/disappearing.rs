//! Disappearing-message records (docs/PROTOCOL.md §12.9, §12.18): each
//! conversation's timer, and one expiry per message stored while a timer
//! was on.
//!
//! Must never: name a timer or an expiry slot by anything but the
//! contact's account (HMAC'd like every named slot).

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
