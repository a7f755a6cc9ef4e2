//! The delivery markers: the only code that reads and writes the
//! per-envelope records (the seen marker, dated by the local clock, and
//! the kept-delivery record of one that failed for a reason that may be
//! local). A manager type in the shape of the name book
//! (docs/ARCHITECTURE.md, "Managers as types"): it holds an `Arc<Vault>`,
//! reads, and adds writes to a [`Txn`] the caller commits. When a delivery
//! is kept, given up or settled is the engine's (`inbound.rs`,
//! `inbound/keep.rs`).
//!
//! Must never: date a marker by anything but the caller's local clock
//! (the relay's timestamp could be set to get a marker pruned and its
//! envelope replayed), name a marker by anything but the envelope's
//! digest, ask the relay, take the state lock or emit an event.

use std::sync::Arc;

use crate::inbound::keep::KeptRecord;
use crate::records::{self, Prefix, Slot};
use crate::store::{StoreError, Txn, Vault};

/// Every envelope's markers (see the module docs).
pub(crate) struct DeliveryMarkers {
    vault: Arc<Vault>,
}

/// Where one envelope's markers live (its digest is computed once).
#[derive(Clone)]
pub(crate) struct EnvelopeMarkers {
    seen: Slot<records::seen::Seen>,
    kept: Slot<records::seen::Kept>,
}

impl DeliveryMarkers {
    pub(crate) fn new(vault: Arc<Vault>) -> Self {
        Self { vault }
    }

    /// The markers of `envelope`.
    pub(crate) fn of(&self, envelope: &[u8]) -> EnvelopeMarkers {
        EnvelopeMarkers {
            seen: records::seen::seen(&self.vault, envelope),
            kept: records::seen::kept(&self.vault, envelope),
        }
    }

    /// Whether the envelope was already processed.
    pub(crate) async fn is_seen(&self, markers: &EnvelopeMarkers) -> Result<bool, StoreError> {
        Ok(self.vault.load(&markers.seen).await?.is_some())
    }

    /// Adds the envelope's seen marker, dated `now_ms` (local clock), to `txn`.
    pub(crate) fn mark_seen(
        &self,
        txn: &mut Txn,
        markers: &EnvelopeMarkers,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.vault.save(txn, markers.seen.clone(), &now_ms)
    }

    /// The envelope's kept-delivery record, if it was kept before.
    pub(crate) async fn kept(
        &self,
        markers: &EnvelopeMarkers,
    ) -> Result<Option<KeptRecord>, StoreError> {
        self.vault.load(&markers.kept).await
    }

    /// Adds the envelope's kept-delivery record to `txn`.
    pub(crate) fn keep(
        &self,
        txn: &mut Txn,
        markers: &EnvelopeMarkers,
        record: &KeptRecord,
    ) -> Result<(), StoreError> {
        self.vault.save(txn, markers.kept.clone(), record)
    }

    /// Adds the deletion of the envelope's kept-delivery record to `txn`.
    pub(crate) fn forget_kept(&self, txn: &mut Txn, markers: &EnvelopeMarkers) {
        self.vault.remove(txn, markers.kept.clone());
    }

    /// Adds to `txn` the deletion of every seen marker dated, and every
    /// kept record first failed, before `cutoff_ms`. Returns how many.
    pub(crate) async fn prune(&self, txn: &mut Txn, cutoff_ms: u64) -> Result<usize, StoreError> {
        let mut pruned = 0usize;
        let seen = self
            .vault
            .load_all(&Prefix::<records::seen::Seen>::all())
            .await?;
        for (slot, seen_at_ms) in seen {
            if seen_at_ms < cutoff_ms {
                self.vault.remove(txn, slot);
                pruned += 1;
            }
        }
        let kept = self
            .vault
            .load_all(&Prefix::<records::seen::Kept>::all())
            .await?;
        for (slot, record) in kept {
            if record.first_failed_at_ms < cutoff_ms {
                self.vault.remove(txn, slot);
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    /// Adds the deletion of the envelope's seen marker to `txn`: what a
    /// replay the marker does not catch looks like (tests only; the
    /// engine forgets a marker only by age).
    #[cfg(test)]
    pub(crate) fn forget_seen_for_tests(&self, txn: &mut Txn, markers: &EnvelopeMarkers) {
        self.vault.remove(txn, markers.seen.clone());
    }
}

#[cfg(test)]
mod tests;
