//! Checking what the relay served for an account against the directory
//! (docs/PROTOCOL.md §16.3, §16.5, §16.9 item 2): `KtLookup` for the
//! account's leaf, proven against a head that extends the remembered one,
//! whose value must be the one computed from the served identity and
//! device list.
//!
//! Must never: report an account as checked when the proof failed or the
//! value differs; a value the directory does not hold yet is "retry after
//! an epoch", not a pass.

use std::sync::Arc;

use umbra_protocol::wire::kt::{KtError, KtLabel, LeafValue, Lookup, LookupProof, VerifiedHead};
use umbra_protocol::wire::{AccountId, AccountRef, Request, Response};

use super::head::verify_head;
use super::KtFailure;
use crate::engine::Engine;
use crate::{Error, Event};

/// How long a check waits for the relay's next epoch before refusing a
/// value the directory does not hold (a few of the relay's default 1 s
/// epochs, §16.13).
pub(crate) const NEXT_EPOCH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How often it asks for the newest head meanwhile.
const EPOCH_POLL: std::time::Duration = std::time::Duration::from_millis(500);

impl Engine {
    /// Checks that the directory's newest value for `account` is the one
    /// of `identity` (the 128-byte public identity as served) and
    /// `device_list` (the signed list as served, `Some(None)` for the
    /// implicit one; `None`: the identity alone is compared, as for a
    /// bundle, which comes without the list). A mismatch whose proven version is older than the newest
    /// epoch's value could be is [`KtFailure::NotYetPublished`] (the caller
    /// retries after an epoch); a mismatch after a retry is refused with
    /// [`KtFailure::ValueMismatch`] and a [`Event::DirectoryRefused`].
    pub(crate) async fn kt_check_account(
        self: &Arc<Self>,
        account: AccountId,
        identity: Option<&[u8]>,
        device_list: Option<Option<&[u8]>>,
        retried: bool,
    ) -> Result<(), Error> {
        let state = self.kt_state().await?;
        let pins = state.pins();
        let (_, vrf) = pins.keys()?;
        // The lookup's head must be one this client accepts: the newest,
        // reached from the remembered one by a consistency proof. An epoch
        // published between the two requests asks once more.
        let mut attempt = 0;
        let (head, proof) = loop {
            attempt += 1;
            let (head, proof) = match self
                .request(Request::KtLookup {
                    label: AccountRef::Account(account),
                })
                .await?
            {
                Response::KtLookup { head, proof } => (head, proof),
                other => return Err(crate::error::unexpected("KtLookup", &other)),
            };
            if let Some(head) = self.kt_accept_head(&pins, &head).await? {
                break (head, proof);
            }
            if attempt == 2 {
                return Err(KtFailure::Proof(KtError::BadConsistency).into());
            }
        };
        let label = KtLabel::Account(account);
        let proven = LookupProof::decode(&proof)
            .and_then(|p| p.verify(&vrf, &label, head.map_root(), head.epoch()))
            .map_err(KtFailure::Proof)?;
        let served = LeafValue::account(identity, device_list.flatten());
        let matches = |proven: &LeafValue| match (proven, &served) {
            (
                LeafValue::Account {
                    identity: a,
                    device_list: la,
                },
                LeafValue::Account {
                    identity: b,
                    device_list: lb,
                },
            ) => a == b && (device_list.is_none() || la == lb),
            _ => false,
        };
        match proven {
            Lookup::Present { latest, .. } if matches(&latest.value) => Ok(()),
            _ if !retried => Err(KtFailure::NotYetPublished { account }.into()),
            _ => {
                self.emit(Event::DirectoryRefused { account });
                Err(KtFailure::ValueMismatch { account }.into())
            }
        }
    }

    /// Before a fetched bundle's identity is used (first contact, or a
    /// contact's new key): the directory must hold it (§16.9 item 2). A
    /// value not held yet is asked again once the relay has published a
    /// newer epoch (waiting at most [`NEXT_EPOCH_WAIT`]); then it is
    /// refused. Without pinned keys there is nothing to check against.
    pub(crate) async fn kt_vet_identity(
        self: &Arc<Self>,
        account: AccountId,
        identity: &[u8],
    ) -> Result<(), Error> {
        let first = self
            .kt_check_account(account, Some(identity), None, false)
            .await;
        match first {
            Err(Error::KeyTransparency(KtFailure::NotPinned)) => Ok(()),
            Err(Error::KeyTransparency(KtFailure::NotYetPublished { .. })) => {
                let before = self.kt_refresh_head().await?.epoch();
                let deadline = tokio::time::Instant::now() + NEXT_EPOCH_WAIT;
                while self.kt_refresh_head().await?.epoch() == before
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(EPOCH_POLL).await;
                }
                self.kt_check_account(account, Some(identity), None, true)
                    .await
            }
            other => other,
        }
    }

    /// Verifies the head an answer was proven against and requires it to
    /// be the newest, reached from the remembered one (§16.9 item 3):
    /// `None` when the relay published an epoch since (ask again); the
    /// same epoch with another head is a fork.
    pub(super) async fn kt_accept_head(
        self: &Arc<Self>,
        pins: &super::KtPins,
        bytes: &[u8],
    ) -> Result<Option<VerifiedHead>, Error> {
        let head = verify_head(pins, bytes)?;
        let newest = self.kt_refresh_head().await?;
        if newest == head {
            return Ok(Some(head));
        }
        if newest.epoch() == head.epoch() {
            return Err(self.kt_alarm(KtError::Fork {
                epoch: head.epoch(),
            }));
        }
        Ok(None)
    }
}
