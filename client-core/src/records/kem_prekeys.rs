//! ML-KEM prekey records (docs/PROTOCOL.md §12.9, kinds 33 to 35): the
//! bookkeeping singleton, one-time KEM prekeys by id, and last-resort KEM
//! prekeys (the current one and the replaced ones still held) by id.
//!
//! Must never: file a one-time KEM prekey where last-resort ones live (they
//! share a value type, not a kind), or keep a used one-time one.

use umbra_protocol::kem_prekeys::KemPreKey;

use super::{kind, Slot};
use crate::prekeys::kem::StoredKemState;
use crate::store::Vault;

kind!(
    /// Next ids, the current last-resort KEM prekey, the replaced ones held.
    State = KemPreKeyState, StoredKemState
);
kind!(
    /// An unused one-time KEM prekey.
    OneTime = KemOneTimePreKey, KemPreKey
);
kind!(
    /// A last-resort KEM prekey, current or replaced and still held.
    LastResort = KemLastResortPreKey, KemPreKey
);

/// The bookkeeping record's slot.
pub(crate) fn state() -> Slot<State> {
    Slot::singleton()
}

/// The slot of one-time KEM prekey `id` (HMAC of its big-endian id).
pub(crate) fn one_time(vault: &Vault, id: u32) -> Slot<OneTime> {
    Slot::named(vault, &id.to_be_bytes())
}

/// The slot of last-resort KEM prekey `id` (HMAC of its big-endian id).
pub(crate) fn last_resort(vault: &Vault, id: u32) -> Slot<LastResort> {
    Slot::named(vault, &id.to_be_bytes())
}
