//! The hand-off: the group committer offers each committed envelope to its
//! recipient's connection on this node, a bounded channel of small
//! envelopes the delivery loop pushes without reading them back.
//!
//! The queue stays the source of truth: a full channel, a large envelope
//! or a gap in sequence numbers makes the loop read the store instead, and
//! only the recipient's Ack deletes.
//!
//! Must never: wait (the committer calls it right after a commit), hold
//! more than [`HANDOFF_CAPACITY`] envelopes per connection or more bytes
//! across the node than `connection::hand_off_budget` allows, or hand off
//! anything that has not committed.

use umbra_wire::Address;

use super::Hub;
use crate::connection::hand_off_budget::Charge;
use crate::store::group_commit::HandOff;
use crate::store::{Seq, UnixMillis};

/// Committed envelopes waiting per connection for its delivery loop; beyond
/// this the loop reads them from the store.
pub const HANDOFF_CAPACITY: usize = 16;
/// Larger envelopes are never handed off (read from the store), so a
/// connection's hand-off channel holds at most 256 KiB.
pub const MAX_HANDOFF_ENVELOPE: usize = 16 * 1024;

/// A committed message handed to its recipient's connection.
pub struct Handed {
    /// Its sequence number in the recipient's queue.
    pub seq: Seq,
    /// When the relay accepted it.
    pub received_at_ms: UnixMillis,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// Its bytes in the node's hand-off budget, given back when dropped.
    _charge: Charge,
}

impl HandOff for Hub {
    fn hand_off(
        &self,
        recipient: Address,
        seq: Seq,
        received_at_ms: UnixMillis,
        envelope: Vec<u8>,
    ) {
        // Too large, or the node's channels hold enough: read from the store.
        let Some(charge) = (envelope.len() <= MAX_HANDOFF_ENVELOPE)
            .then(|| self.hand_off_budget.charge(envelope.len()))
            .flatten()
        else {
            return;
        };
        let mut entries = self.lock();
        let Some(entry) = entries.by_address.get_mut(&recipient) else {
            return;
        };
        let handed = Handed {
            seq,
            received_at_ms,
            envelope,
            _charge: charge,
        };
        // Full: the loop is behind and reads the store once woken.
        if entry.hand_off.try_send(handed).is_ok() {
            entry.handed = entry.handed.max(seq);
        }
    }
}
