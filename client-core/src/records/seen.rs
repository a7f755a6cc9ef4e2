//! Per-envelope markers: "already processed" (with the time it arrived) and
//! "kept after a failure that may be local", both named by the envelope's
//! SHA-256.
//!
//! Must never: name a marker by anything a relay could link to a sender
//! (only the envelope's digest, HMAC'd).

use sha2::{Digest, Sha256};

use super::{kind, Slot};
use crate::inbound::keep::KeptRecord;
use crate::store::Vault;

kind!(
    /// An envelope already processed: the time it was received.
    Seen = Seen, u64
);
kind!(
    /// A delivery kept unacknowledged.
    Kept = KeptDelivery, KeptRecord
);

/// "env:" || SHA-256 of the envelope: both markers' name.
fn envelope_name(envelope: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest(envelope);
    let mut name = Vec::with_capacity(4 + 32);
    name.extend_from_slice(b"env:");
    name.extend_from_slice(&digest);
    name
}

/// The seen marker's slot for `envelope`.
pub(crate) fn seen(vault: &Vault, envelope: &[u8]) -> Slot<Seen> {
    Slot::named(vault, &envelope_name(envelope))
}

/// The kept record's slot for `envelope`.
pub(crate) fn kept(vault: &Vault, envelope: &[u8]) -> Slot<Kept> {
    Slot::named(vault, &envelope_name(envelope))
}
