//! Prekey records: the bookkeeping singleton, signed prekeys and one-time
//! prekeys by id, and the last-resort prekey.
//!
//! Must never: file a one-time prekey where the last-resort one lives (they
//! share a value type, not a kind), or keep a used one-time prekey.

use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey};

use super::{kind, Slot};
use crate::prekey_maintenance::PreKeyState;
use crate::store::Vault;

kind!(
    /// Next ids, rotation time, replaced keys.
    State = PreKeyState, PreKeyState
);
kind!(
    /// A signed prekey we still accept.
    Signed = SignedPreKey, SignedPreKey
);
kind!(
    /// An unused one-time prekey.
    OneTime = OneTimePreKey, OneTimePreKey
);
kind!(
    /// The last-resort prekey.
    LastResort = LastResortPreKey, OneTimePreKey
);

/// The bookkeeping record's slot.
pub(crate) fn state() -> Slot<State> {
    Slot::singleton()
}

/// The slot of signed prekey `id` (HMAC of its big-endian id).
pub(crate) fn signed(vault: &Vault, id: u32) -> Slot<Signed> {
    Slot::named(vault, &id.to_be_bytes())
}

/// The slot of one-time prekey `id` (HMAC of its big-endian id).
pub(crate) fn one_time(vault: &Vault, id: u32) -> Slot<OneTime> {
    Slot::named(vault, &id.to_be_bytes())
}

/// The last-resort prekey's slot.
pub(crate) fn last_resort() -> Slot<LastResort> {
    Slot::singleton()
}
