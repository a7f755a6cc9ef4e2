//! Outbox records: sealed envelopes waiting for the relay, by sequence.
//!
//! Must never: name the recipient in the slot (it is only the sequence
//! number, so the queue order is the send order).

use super::{kind, Slot};
use crate::outbox::OutboxEntry;

kind!(
    /// One sealed envelope waiting for the relay's acceptance.
    Outbox = Outbox, OutboxEntry
);

/// The slot of outbox entry `seq` (its big-endian number, unhashed).
pub(crate) fn slot(seq: u64) -> Slot<Outbox> {
    Slot::from_bytes(seq.to_be_bytes().to_vec())
}
