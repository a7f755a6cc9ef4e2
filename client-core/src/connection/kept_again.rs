//! The deliveries this connection kept (not acknowledged, docs/PROTOCOL.md
//! §12.5), with their envelopes as the relay sent them, so that they can
//! be processed again on the same connection when something they waited
//! for arrives: the Add of a member whose sender key and messages were
//! held for a membership we missed (§8.15), and with its key the
//! messages it opens. Without them the relay pushes a kept envelope again
//! only after a new `Authenticate`, which meant a reconnect.
//!
//! What is kept is the sealed envelope (ciphertext for this device, as on
//! the wire) with its relay sequence number, in memory: never a
//! plaintext, and nothing that is not also still at the relay. Processing
//! one again is the same as the relay pushing it again: nothing of it is
//! committed unless it is accepted, and its `Ack` goes out only after
//! that commit, so a crash in between loses nothing.
//!
//! At most [`KEPT_AGAIN_MAX`] envelopes and [`KEPT_AGAIN_MAX_BYTES`] bytes
//! are kept; one that does not fit is not kept here, and the connection
//! then falls back to reconnecting soon so that the relay pushes it again.
//! A new connection starts empty: the relay pushes every unacknowledged
//! envelope again on it.
//!
//! Must never: keep a plaintext, keep an envelope past the connection it
//! came on, or grow past its bounds.

use std::collections::BTreeMap;

use crate::consts::GROUP_HELD_TOTAL;

/// At most this many kept envelopes: as many as items may be held for
/// membership in all (`GROUP_HELD_TOTAL`), the cause this is for.
pub(super) const KEPT_AGAIN_MAX: usize = GROUP_HELD_TOTAL;

/// At most this many envelope bytes (a held text is a few KiB; 256 of the
/// largest envelopes would be 24 MiB).
pub(super) const KEPT_AGAIN_MAX_BYTES: usize = 4 * 1024 * 1024;

/// One kept delivery, as the relay pushed it.
pub(super) struct KeptEnvelope {
    pub(super) seq: u64,
    pub(super) envelope: Vec<u8>,
    pub(super) received_at_ms: u64,
}

/// The kept deliveries of the current connection, by relay sequence.
#[derive(Default)]
pub(super) struct KeptAgain {
    by_seq: BTreeMap<u64, KeptEnvelope>,
    bytes: usize,
    /// A kept delivery did not fit since the last [`KeptAgain::take`]: it
    /// is processed again only when the relay pushes it again.
    missed: bool,
}

impl KeptAgain {
    /// A new connection: the relay pushes everything unacknowledged again.
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Keeps `kept` (a delivery just kept), if it fits.
    pub(super) fn keep(&mut self, kept: KeptEnvelope) {
        self.forget(kept.seq);
        let len = kept.envelope.len();
        if self.by_seq.len() >= KEPT_AGAIN_MAX || self.bytes + len > KEPT_AGAIN_MAX_BYTES {
            self.missed = true;
            return;
        }
        self.bytes += len;
        self.by_seq.insert(kept.seq, kept);
    }

    /// Forgets `seq` (it was acknowledged).
    pub(super) fn forget(&mut self, seq: u64) {
        if let Some(gone) = self.by_seq.remove(&seq) {
            self.bytes -= gone.envelope.len();
        }
    }

    /// Every kept delivery, in relay order (a sender key before the
    /// messages it opens), and whether one did not fit since the last take.
    pub(super) fn take(&mut self) -> (Vec<KeptEnvelope>, bool) {
        let missed = std::mem::take(&mut self.missed);
        self.bytes = 0;
        let all = std::mem::take(&mut self.by_seq).into_values().collect();
        (all, missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(seq: u64, len: usize) -> KeptEnvelope {
        KeptEnvelope {
            seq,
            envelope: vec![0; len],
            received_at_ms: 0,
        }
    }

    #[test]
    fn kept_in_relay_order_within_both_bounds() {
        let mut again = KeptAgain::default();
        again.keep(kept(9, 10));
        again.keep(kept(3, 10));
        again.keep(kept(9, 10));
        let (all, missed) = again.take();
        assert_eq!(all.iter().map(|k| k.seq).collect::<Vec<_>>(), vec![3, 9]);
        assert!(!missed);
        for seq in 0..KEPT_AGAIN_MAX as u64 {
            again.keep(kept(seq, 1));
        }
        again.keep(kept(u64::MAX, 1));
        let (all, missed) = again.take();
        assert_eq!((all.len(), missed), (KEPT_AGAIN_MAX, true));
        again.keep(kept(1, KEPT_AGAIN_MAX_BYTES - 1));
        again.keep(kept(2, 1));
        again.forget(1);
        again.keep(kept(3, KEPT_AGAIN_MAX_BYTES));
        let (all, missed) = again.take();
        assert_eq!(all.iter().map(|k| k.seq).collect::<Vec<_>>(), vec![2]);
        assert!(missed, "the second large one did not fit");
        again.keep(kept(4, 1));
        again.clear();
        assert!(again.take().0.is_empty());
    }
}
