//! The newest directory head (docs/PROTOCOL.md §16.7, §16.8, §16.9 item 3):
//! asking the relay for it with the consistency proof from the remembered
//! one, verifying both, and remembering it; and what `umbra directory
//! root` prints.
//!
//! Must never: remember a head that failed a check, or let a later head
//! that does not extend the remembered one pass (a fork or rollback is an
//! error and an alarm event, and the remembered head stays).

use std::sync::Arc;

use umbra_protocol::wire::kt::{ConsistencyProof, KtError, SignedEpochHead, VerifiedHead};
use umbra_protocol::wire::{ErrorCode, Request, Response};

use super::{KtFailure, KtPins, StoredKt};
use crate::engine::Engine;
use crate::store::Txn;
use crate::{records, Error, Event};

/// What a user compares out of band (§16.9 item 6): the pinned keys and
/// the newest head this client verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRoot {
    /// The pinned keys.
    pub pins: KtPins,
    /// The newest verified head's epoch, map root and log root, `None`
    /// before the first.
    pub head: Option<(u64, [u8; 32], [u8; 32])>,
}

/// Decodes and verifies a head's encoding under the pinned directory key.
pub(crate) fn verify_head(pins: &KtPins, bytes: &[u8]) -> Result<VerifiedHead, KtFailure> {
    let (directory, _) = pins.keys()?;
    SignedEpochHead::decode(bytes)
        .and_then(|h| h.verify(&directory))
        .map_err(KtFailure::Proof)
}

impl Engine {
    /// The pinned keys and the newest remembered head (no request).
    pub(crate) async fn directory_root(&self) -> Result<DirectoryRoot, Error> {
        let state = self.kt_state().await?;
        let pins = state.pins();
        let head = match state.head() {
            Some(bytes) => {
                let h = verify_head(&pins, bytes)?;
                Some((h.epoch(), h.map_root().0, h.log_root().0))
            }
            None => None,
        };
        Ok(DirectoryRoot { pins, head })
    }

    /// Asks the relay for its newest head, with the consistency proof from
    /// the remembered one, checks it extends that head, and remembers it.
    pub(crate) async fn kt_refresh_head(self: &Arc<Self>) -> Result<VerifiedHead, Error> {
        let state = self.kt_state().await?;
        let pins = state.pins();
        let remembered = state.head().map(|b| verify_head(&pins, b)).transpose()?;
        let known = remembered.as_ref().map(VerifiedHead::epoch);
        let answer = self
            .request(Request::KtHead {
                known,
                entry_of: None,
            })
            .await;
        let (head, consistency) = match answer {
            Ok(Response::KtHead {
                head, consistency, ..
            }) => (head, consistency),
            Ok(other) => return Err(crate::error::unexpected("KtHead", &other)),
            // The relay has not reached the epoch we remember (§16.13).
            Err(Error::Relay {
                code: ErrorCode::LimitExceeded,
                ..
            }) if known.is_some() => {
                let remembered = known.unwrap_or_default();
                // Its newest epoch, to name in the alarm (the rollback
                // stands whether or not it answers).
                let got = match self
                    .request(Request::KtHead {
                        known: None,
                        entry_of: None,
                    })
                    .await
                {
                    Ok(Response::KtHead { head, .. }) => verify_head(&pins, &head)
                        .map(|h| h.epoch())
                        .unwrap_or_default(),
                    _ => 0,
                };
                return Err(self.kt_alarm(KtError::Rollback { remembered, got }));
            }
            Err(e) => return Err(e),
        };
        let newest = verify_head(&pins, &head)?;
        if let Some(old) = &remembered {
            let proof = match consistency {
                Some(bytes) => ConsistencyProof::decode(&bytes).map_err(KtFailure::Proof)?,
                None if newest.epoch() == old.epoch() => ConsistencyProof {
                    old_size: old.epoch() + 1,
                    new_size: old.epoch() + 1,
                    hashes: Vec::new(),
                },
                None => return Err(KtFailure::Proof(KtError::BadConsistency).into()),
            };
            // Both heads verified under the pinned key, so a consistency
            // proof that fails is as much a second history as a fork.
            if let Err(e) = old.check_extended_by(&newest, &proof) {
                return Err(self.kt_alarm(e));
            }
        }
        if known != Some(newest.epoch()) {
            self.kt_remember(&state, head).await?;
        }
        Ok(newest)
    }

    /// Stores `head` as the newest, unless a newer one was remembered
    /// meanwhile (by a check that ran alongside and verified its own).
    async fn kt_remember(&self, state: &StoredKt, head: Vec<u8>) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let pins = state.pins();
        let now = self.vault.load(&records::kt::slot()).await?;
        let epoch_of = |b: &[u8]| verify_head(&pins, b).map(|h| h.epoch()).ok();
        if let Some(current) = now.as_ref().and_then(StoredKt::head) {
            if epoch_of(current) >= epoch_of(&head) {
                return Ok(());
            }
        }
        let mut record = now.unwrap_or_else(|| state.clone());
        let StoredKt::V1 { head: slot, .. } = &mut record;
        *slot = Some(head);
        let mut txn = Txn::new();
        self.vault.save(&mut txn, records::kt::slot(), &record)?;
        self.vault.commit(txn).await?;
        Ok(())
    }

    /// A fork or rollback: the alarm event, and the error to return.
    pub(super) fn kt_alarm(&self, e: KtError) -> Error {
        tracing::warn!(error = %e, "the relay's key directory contradicts the remembered head");
        self.emit(Event::DirectoryInconsistent {
            reason: e.to_string(),
        });
        KtFailure::Inconsistent(e).into()
    }
}
