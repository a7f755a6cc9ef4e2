//! Deliveries kept unacknowledged, and the markers that expire.
//!
//! A delivery that failed for a reason that may be local or passing (the
//! directory could not be asked, a prekey or session is missing) is not
//! acknowledged: the relay delivers it again after the next authentication.
//! Each failed attempt is counted in a `KeptDelivery` record; once it has
//! failed [`KEPT_DELIVERY_MAX_ATTEMPTS`] times *and* its first failure is
//! [`KEPT_DELIVERY_MIN_AGE`] old, it is given up: marked seen, acknowledged,
//! and reported as lost, so one bad envelope cannot be retried forever.
//!
//! Seen markers (dated by the local clock, never by the relay's timestamp,
//! which a hostile relay could set to 0 to get a marker pruned and then
//! replay its envelope) are pruned after [`SEEN_MARKER_LIFETIME`], and
//! kept-delivery records after the same time ([`prune_markers`]).
//!
//! Must never: give a delivery up before both limits are reached, or keep a
//! record for an envelope that was acknowledged.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Processed, Rejected};
use crate::consts::{
    millis, KEPT_DELIVERY_MAX_ATTEMPTS, KEPT_DELIVERY_MIN_AGE, SEEN_MARKER_LIFETIME,
};
use crate::engine::Engine;
use crate::markers::EnvelopeMarkers;
use crate::store::Txn;
use crate::{DecryptFailure, Error, Event};

/// How often a delivery has failed (kind `KeptDelivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeptRecord {
    /// Failed attempts so far.
    pub(crate) attempts: u32,
    /// When the first attempt failed, Unix milliseconds (local clock).
    pub(crate) first_failed_at_ms: u64,
}

impl KeptRecord {
    /// Whether a delivery with this record is given up (both limits reached).
    pub(crate) fn exhausted(&self, now_ms: u64) -> bool {
        self.attempts >= KEPT_DELIVERY_MAX_ATTEMPTS
            && now_ms.saturating_sub(self.first_failed_at_ms) >= millis(KEPT_DELIVERY_MIN_AGE)
    }
}

/// One envelope's markers and its kept-delivery record, if it has one.
pub(super) struct Kept {
    markers: EnvelopeMarkers,
    record: Option<KeptRecord>,
}

impl Kept {
    pub(super) async fn load(engine: &Engine, markers: EnvelopeMarkers) -> Result<Self, Error> {
        let record = engine.markers.kept(&markers).await?;
        Ok(Self { markers, record })
    }

    /// Adds the record's deletion to `txn` (the delivery is settled).
    pub(super) fn forget(&self, engine: &Engine, txn: &mut Txn) {
        if self.record.is_some() {
            engine.markers.forget_kept(txn, &self.markers);
        }
    }

    /// One more failed attempt: keep the delivery (not acknowledged) or, if
    /// both limits are reached, give it up (acknowledged, reported lost).
    pub(super) async fn retry_or_give_up(
        self,
        engine: &Engine,
        rejected: Rejected,
    ) -> Result<Processed, Error> {
        let now = engine.clock.now_ms();
        let record = match self.record {
            Some(r) => KeptRecord {
                attempts: r.attempts.saturating_add(1),
                first_failed_at_ms: r.first_failed_at_ms,
            },
            None => KeptRecord {
                attempts: 1,
                first_failed_at_ms: now,
            },
        };
        if record.exhausted(now) {
            finish(engine, &self).await?;
            // The code, not the words: they may name the claimed sender.
            tracing::warn!(reason = rejected.reason.code(), "kept delivery given up");
            let hours = now.saturating_sub(record.first_failed_at_ms) / 3_600_000;
            return Ok(Processed::acked(vec![Event::DecryptionFailed {
                from: rejected.from,
                reason: DecryptFailure::Lost {
                    cause: Box::new(rejected.reason),
                    attempts: record.attempts,
                    hours,
                },
            }]));
        }
        let mut txn = Txn::new();
        engine.markers.keep(&mut txn, &self.markers, &record)?;
        engine.vault.commit(txn).await?;
        tracing::debug!(
            reason = rejected.reason.code(),
            attempts = record.attempts,
            "delivery kept"
        );
        Ok(Processed {
            events: vec![Event::DecryptionFailed {
                from: rejected.from,
                reason: DecryptFailure::Kept {
                    cause: Box::new(rejected.reason),
                    attempt: record.attempts,
                },
            }],
            ack: false,
        })
    }
}

/// Settles a delivery that will not be applied: only its seen marker is
/// committed (and its kept record deleted), dated by the local clock.
pub(super) async fn finish(engine: &Engine, kept: &Kept) -> Result<(), Error> {
    let mut txn = Txn::new();
    let now = engine.clock.now_ms();
    engine.markers.mark_seen(&mut txn, &kept.markers, now)?;
    kept.forget(engine, &mut txn);
    engine.vault.commit(txn).await?;
    Ok(())
}

/// Deletes seen markers and kept-delivery records that are older than the
/// relay's message lifetime: the relay has expired their envelopes.
pub(crate) async fn prune_markers(engine: &Arc<Engine>) -> Result<(), Error> {
    let _guard = engine.op_lock.lock().await;
    let cutoff = engine
        .clock
        .now_ms()
        .saturating_sub(millis(SEEN_MARKER_LIFETIME));
    let mut txn = Txn::new();
    let pruned = engine.markers.prune(&mut txn, cutoff).await?;
    if pruned > 0 {
        engine.vault.commit(txn).await?;
        tracing::debug!(pruned, "expired markers pruned");
    }
    Ok(())
}
