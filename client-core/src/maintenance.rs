//! The engine's side of key maintenance: publishing our keys, topping up
//! one-time prekeys, rotating the signed prekey and deleting replaced ones,
//! and the periodic pruning that runs with it: the network and lock steps
//! around the prekey manager (`prekeys.rs`, the only code that reads and
//! writes our prekeys). The bookkeeping rules themselves are in
//! `prekey_maintenance.rs`.
//!
//! Maintenance runs only after the relay has drained our queue on a
//! connection (`QueueEmpty`), never while deliveries made for the current
//! keys may still be waiting.
//!
//! Must never: upload a prekey whose secret is not yet committed, rotate
//! before the queue was drained, or delete the current signed prekey.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::prekeys::{ONE_TIME_PREKEY_BATCH_MAX, ONE_TIME_PREKEY_LOW_WATER};
use umbra_protocol::wire::{Request, Response};

use crate::engine::Engine;
use crate::prekey_maintenance::{one_time_wire, signed_wire};
use crate::store::Txn;
use crate::{Error, Event};

impl Engine {
    /// Publishes identity, current signed prekey and last-resort prekey.
    pub(crate) async fn publish_keys(self: &Arc<Self>) -> Result<(), Error> {
        let (signed, last_resort) = self.prekeys.published().await?;
        self.request(Request::PublishKeys {
            identity: self.identity.public().to_bytes().to_vec(),
            signed_prekey: signed_wire(&signed),
            last_resort: last_resort.as_ref().map(one_time_wire),
        })
        .await?;
        Ok(())
    }

    /// Tops the relay's one-time prekeys up to a full batch. Secrets are
    /// committed before the upload.
    pub(crate) async fn replenish_prekeys(self: &Arc<Self>) -> Result<u32, Error> {
        self.check_open()?;
        let _uploading = self.prekey_lock.lock().await;
        let remaining = match self.request(Request::PreKeyCount).await? {
            Response::PreKeyCount { remaining, .. } => remaining as usize,
            other => return Err(crate::error::unexpected("PreKeyCount", &other)),
        };
        let wanted = ONE_TIME_PREKEY_BATCH_MAX.saturating_sub(remaining);
        if wanted == 0 {
            return Ok(0);
        }
        let keys = {
            let _guard = self.op_lock.lock().await;
            let mut txn = Txn::new();
            let keys = self
                .prekeys
                .add_one_time(&mut txn, wanted, &mut OsRng)
                .await?;
            self.vault.commit(txn).await?;
            keys
        };
        self.request(Request::UploadPreKeys {
            prekeys: keys.iter().map(one_time_wire).collect(),
        })
        .await?;
        Ok(keys.len() as u32)
    }

    /// Rotates the signed prekey when it is due (`SIGNED_PREKEY_ROTATION_SECS`,
    /// 2 days) and publishes the new one, and deletes the replaced signed
    /// prekeys whose retention (counted from their replacement) ran out.
    /// Returns whether it rotated.
    ///
    /// Does nothing until the relay said `QueueEmpty` on this connection:
    /// the messages queued while we were away were made for the keys we
    /// hold now, and are opened before any of them can change.
    pub(crate) async fn rotate_signed_prekey_if_due(self: &Arc<Self>) -> Result<bool, Error> {
        if !self.caught_up.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let rotated = self.rotate_and_expire_signed_prekeys().await?;
        if rotated {
            self.publish_keys().await?;
        }
        Ok(rotated)
    }

    /// The local half of [`Engine::rotate_signed_prekey_if_due`]: rotates if
    /// due and deletes expired replaced keys, in one transaction. Returns
    /// whether it rotated (the new key then needs publishing).
    pub(crate) async fn rotate_and_expire_signed_prekeys(&self) -> Result<bool, Error> {
        let rotated = {
            let _guard = self.op_lock.lock().await;
            let now = self.clock.now_secs();
            let mut txn = Txn::new();
            let upkeep = self
                .prekeys
                .upkeep_signed(&mut txn, &self.identity, now, &mut OsRng)
                .await?;
            if !upkeep.changed() {
                return Ok(false);
            }
            self.vault.commit(txn).await?;
            upkeep.rotated
        };
        Ok(rotated)
    }

    /// Run once the relay's queue is drained (`QueueEmpty`) and hourly
    /// after that: rotate the signed prekey if due, publish or top up the
    /// ML-KEM prekeys (`kem_maintenance.rs`), drop expired seen
    /// markers and kept deliveries, move the group chains we keep for
    /// key requests past what the relay can no longer hold, top up
    /// one-time prekeys if low.
    pub(crate) async fn maintain(self: &Arc<Self>) -> Result<(), Error> {
        self.rotate_signed_prekey_if_due().await?;
        // Its failures are logged, never returned: the X25519 upkeep below
        // must not wait on a relay that lacks the KEM frames.
        self.maintain_kem_prekeys().await;
        crate::inbound::prune_markers(self).await?;
        crate::groups::sent_keys::prune_all(self).await?;
        let remaining = match self.request(Request::PreKeyCount).await? {
            Response::PreKeyCount { remaining, .. } => remaining as usize,
            _ => return Ok(()),
        };
        if remaining < ONE_TIME_PREKEY_LOW_WATER {
            let uploaded = self.replenish_prekeys().await?;
            if uploaded > 0 {
                self.emit(Event::PreKeysReplenished { uploaded });
            }
        }
        Ok(())
    }
}
