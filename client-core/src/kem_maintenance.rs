//! The engine's side of ML-KEM prekey maintenance (docs/PROTOCOL.md §12.6):
//! publishing the last-resort KEM prekey and a full batch of one-time ones
//! (at registration, login, link and once per connection), topping one-time
//! ones up (`KemPreKeysLow`, and maintenance below
//! [`KEM_PREKEY_LOW_WATER`]), and rotating the last-resort one on the
//! signed prekey's schedule. The records and rules are in `prekeys/kem.rs`.
//!
//! A relay that predates the KEM frames answers them with `BadFrame` (and
//! closes the connection): that is reported once as
//! [`Event::RelayLacksPostQuantum`] and every later KEM request of this
//! engine fails [`Error::RelayLacksPostQuantum`] without being sent, so the
//! client neither loops on reconnects nor starts a classical session.
//!
//! Must never: upload a KEM prekey whose seed is not yet committed, rotate
//! before the queue was drained, or send a KEM frame to a relay that
//! already refused one.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::kem_prekeys::{
    KemPreKey, KemPreKeyKind, KEM_PREKEY_BATCH_MAX, KEM_PREKEY_LOW_WATER,
};
use umbra_protocol::wire::{ErrorCode, Request, Response};

use crate::engine::Engine;
use crate::prekeys::kem::KemStateInTxn;
use crate::store::Txn;
use crate::{Error, Event};

/// Whether an upload also (re)publishes the current last-resort KEM prekey.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LastResort {
    Publish,
    /// Only when the KEM state is created by this upload.
    IfNew,
}

impl Engine {
    /// Publishes the current last-resort KEM prekey and tops one-time KEM
    /// prekeys up to a full batch ([`KEM_PREKEY_BATCH_MAX`]); creates the
    /// KEM state first if the store has none. Returns how many one-time
    /// ones were uploaded.
    pub(crate) async fn publish_kem_prekeys(self: &Arc<Self>) -> Result<u32, Error> {
        self.upload_kem_prekeys(LastResort::Publish).await
    }

    /// Tops one-time KEM prekeys up to a full batch.
    pub(crate) async fn replenish_kem_prekeys(self: &Arc<Self>) -> Result<u32, Error> {
        self.upload_kem_prekeys(LastResort::IfNew).await
    }

    /// [`Engine::publish_kem_prekeys`] where a setup step (registration,
    /// login, link) has already succeeded: a relay too old for KEM prekeys
    /// is reported (the event) and leaves the setup standing, since the
    /// account exists either way; any other failure is the caller's.
    pub(crate) async fn publish_kem_prekeys_at_setup(self: &Arc<Self>) -> Result<(), Error> {
        match self.publish_kem_prekeys().await {
            Ok(_) | Err(Error::RelayLacksPostQuantum) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn upload_kem_prekeys(self: &Arc<Self>, last_resort: LastResort) -> Result<u32, Error> {
        self.check_open()?;
        self.refuse_if_relay_lacks_pq()?;
        let _uploading = self.prekey_lock.lock().await;
        let remaining = match self.kem_request(Request::KemPreKeyCount).await? {
            Response::KemPreKeyCount { remaining, .. } => remaining as usize,
            other => return Err(crate::error::unexpected("KemPreKeyCount", &other)),
        };
        let wanted = KEM_PREKEY_BATCH_MAX.saturating_sub(remaining);
        let (last, one_time) = {
            let _guard = self.op_lock.lock().await;
            let now = self.clock.now_secs();
            let mut txn = Txn::new();
            let KemStateInTxn { mut state, created } = self
                .prekeys
                .kem_state_or_initial(&mut txn, &self.identity, now, &mut OsRng)
                .await?;
            let one_time = if wanted > 0 {
                self.prekeys.add_kem_one_time(
                    &mut txn,
                    &mut state,
                    &self.identity,
                    wanted,
                    now,
                    &mut OsRng,
                )?
            } else {
                Vec::new()
            };
            // Seeds first: a key the relay hands out always has its secret here.
            self.vault.commit(txn).await?;
            let last = if last_resort == LastResort::Publish || created {
                let id = state.current_last_resort_id;
                Some(
                    self.prekeys
                        .kem_prekey(KemPreKeyKind::LastResort, id)
                        .await?
                        .ok_or(crate::StoreError::NotInitialized)?,
                )
            } else {
                None
            };
            (last, one_time)
        };
        if last.is_none() && one_time.is_empty() {
            return Ok(0);
        }
        self.kem_request(Request::UploadKemPreKeys {
            last_resort: last.as_ref().map(|k| k.public().to_wire()),
            one_time: one_time.iter().map(|k| k.public().to_wire()).collect(),
        })
        .await?;
        Ok(one_time.len() as u32)
    }

    /// Rotates the last-resort KEM prekey when due (the signed prekey's
    /// schedule) and uploads the new one; deletes the replaced ones whose
    /// retention ran out. Only once the relay said `QueueEmpty` on this
    /// connection, as the signed prekey. Returns whether it rotated.
    pub(crate) async fn rotate_kem_last_resort_if_due(self: &Arc<Self>) -> Result<bool, Error> {
        if !self.caught_up.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let Some(key) = self.rotate_and_expire_kem_last_resort().await? else {
            return Ok(false);
        };
        self.refuse_if_relay_lacks_pq()?;
        self.kem_request(Request::UploadKemPreKeys {
            last_resort: Some(key.public().to_wire()),
            one_time: Vec::new(),
        })
        .await?;
        Ok(true)
    }

    /// The local half of [`Engine::rotate_kem_last_resort_if_due`], in one
    /// transaction; the new key, if it rotated.
    pub(crate) async fn rotate_and_expire_kem_last_resort(
        &self,
    ) -> Result<Option<KemPreKey>, Error> {
        let _guard = self.op_lock.lock().await;
        let Some(mut state) = self.prekeys.kem_state().await? else {
            // Nothing published yet: the first publication creates it.
            return Ok(None);
        };
        let now = self.clock.now_secs();
        let mut txn = Txn::new();
        let upkeep = self.prekeys.upkeep_kem_last_resort(
            &mut txn,
            &mut state,
            &self.identity,
            now,
            &mut OsRng,
        )?;
        if upkeep.changed() {
            self.vault.commit(txn).await?;
        }
        Ok(upkeep.rotated)
    }

    /// The KEM part of [`Engine::maintain`]: rotate if due; publish on the
    /// connection's first run; afterwards top up when below low water.
    /// Failures are logged, not returned, so they never stop the rest of
    /// the maintenance (the next run retries).
    pub(crate) async fn maintain_kem_prekeys(self: &Arc<Self>) {
        if self.relay_lacks_pq.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.rotate_kem_last_resort_if_due().await {
            log_failure(&e, "ML-KEM last-resort prekey rotation failed");
        }
        if !self.kem_published.swap(true, Ordering::SeqCst) {
            match self.publish_kem_prekeys().await {
                Ok(uploaded) => self.report_kem_upload(uploaded),
                Err(e) => {
                    // Retried at the next maintenance of this connection.
                    self.kem_published.store(false, Ordering::SeqCst);
                    log_failure(&e, "ML-KEM prekeys are not published yet");
                }
            }
            return;
        }
        let remaining = match self.kem_request(Request::KemPreKeyCount).await {
            Ok(Response::KemPreKeyCount { remaining, .. }) => remaining as usize,
            Ok(_) => return,
            Err(e) => return log_failure(&e, "ML-KEM prekey count failed"),
        };
        if remaining < KEM_PREKEY_LOW_WATER {
            self.top_up_kem_prekeys_reporting().await;
        }
    }

    /// Tops up one-time KEM prekeys (`KemPreKeysLow`, or low at
    /// maintenance) and reports the outcome as an event or a log line.
    pub(crate) async fn top_up_kem_prekeys_reporting(self: &Arc<Self>) {
        match self.replenish_kem_prekeys().await {
            Ok(uploaded) => self.report_kem_upload(uploaded),
            Err(e) => log_failure(&e, "ML-KEM prekey replenishment failed"),
        }
    }

    fn report_kem_upload(&self, uploaded: u32) {
        if uploaded > 0 {
            self.emit(Event::KemPreKeysReplenished { uploaded });
        }
    }

    /// Fails without sending when the relay already refused a KEM frame.
    pub(crate) fn refuse_if_relay_lacks_pq(&self) -> Result<(), Error> {
        if self.relay_lacks_pq.load(Ordering::SeqCst) {
            return Err(Error::RelayLacksPostQuantum);
        }
        Ok(())
    }

    /// Sends a request only a post-quantum relay knows (`UploadKemPreKeys`,
    /// `KemPreKeyCount`, `FetchHybridBundle`): `BadFrame` means the relay
    /// predates them, which is recorded and reported once.
    pub(crate) async fn kem_request(self: &Arc<Self>, request: Request) -> Result<Response, Error> {
        match self.request(request).await {
            Err(Error::Relay {
                code: ErrorCode::BadFrame,
                ..
            }) => {
                self.mark_relay_lacks_pq();
                Err(Error::RelayLacksPostQuantum)
            }
            other => other,
        }
    }

    fn mark_relay_lacks_pq(&self) {
        if !self.relay_lacks_pq.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                "the relay does not know the ML-KEM prekey frames: it is too old for \
                 post-quantum sessions, and no new session will be started through it"
            );
            self.emit(Event::RelayLacksPostQuantum);
        }
    }
}

/// Tops up one-time KEM prekeys in the background (on `KemPreKeysLow`: the
/// requests' answers need the connection's tasks free to route them).
pub(crate) fn spawn_top_up(engine: std::sync::Weak<Engine>) {
    tokio::spawn(async move {
        if let Some(engine) = engine.upgrade() {
            engine.top_up_kem_prekeys_reporting().await;
        }
    });
}

fn log_failure(error: &Error, what: &str) {
    tracing::warn!(error = %crate::error::LogSafe(error), "{what}");
}
