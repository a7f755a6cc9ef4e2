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
use umbra_protocol::wire::{AccountId, AccountRef, Request, Response, Username};

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

/// What the relay served that the directory must hold.
#[derive(Clone, Copy)]
pub(crate) enum Served<'a> {
    /// `account`'s 128-byte public identity and, when `Some`, its signed
    /// device list (`Some(None)`: the implicit one); `None` compares the
    /// identity alone, as for a bundle, which comes without the list.
    Account {
        account: AccountId,
        identity: &'a [u8],
        device_list: Option<Option<&'a [u8]>>,
    },
    /// `Resolved`: `username` is held by `account`.
    Username {
        username: &'a Username,
        account: AccountId,
    },
}

impl Served<'_> {
    fn label(&self) -> (KtLabel, AccountRef) {
        match self {
            Served::Account { account, .. } => {
                (KtLabel::Account(*account), AccountRef::Account(*account))
            }
            Served::Username { username, .. } => (
                KtLabel::Username((*username).clone()),
                AccountRef::Username((*username).clone()),
            ),
        }
    }

    /// Whether the proven value is what was served (§16.3).
    fn matches(&self, proven: &LeafValue) -> bool {
        match (self, proven) {
            (
                Served::Account {
                    identity,
                    device_list,
                    ..
                },
                LeafValue::Account {
                    identity: held,
                    device_list: held_list,
                },
            ) => {
                let LeafValue::Account {
                    identity: want,
                    device_list: want_list,
                } = LeafValue::account(Some(identity), device_list.flatten())
                else {
                    return false;
                };
                *held == want && (device_list.is_none() || *held_list == want_list)
            }
            (Served::Username { account, .. }, LeafValue::Username { account: held }) => {
                *held == Some(*account)
            }
            _ => false,
        }
    }

    fn refusal(&self) -> KtFailure {
        match self {
            Served::Account { account, .. } => KtFailure::ValueMismatch { account: *account },
            Served::Username { username, account } => KtFailure::NameMismatch {
                username: username.to_string(),
                account: *account,
            },
        }
    }

    fn account(&self) -> AccountId {
        match self {
            Served::Account { account, .. } | Served::Username { account, .. } => *account,
        }
    }
}

impl Engine {
    /// Checks that the directory's newest value for the label of `served`
    /// is what was served, proven against the newest head. A mismatch is
    /// [`KtFailure::NotYetPublished`] the first time (the value may have
    /// changed after the newest epoch: the caller asks again after one);
    /// once `retried`, it is refused with [`Served::refusal`]'s failure and
    /// an [`Event::DirectoryRefused`].
    pub(crate) async fn kt_check(
        self: &Arc<Self>,
        served: Served<'_>,
        retried: bool,
    ) -> Result<(), Error> {
        let state = self.kt_state().await?;
        let pins = state.pins();
        let (_, vrf) = pins.keys()?;
        let (label, wire_label) = served.label();
        // The lookup's head must be one this client accepts: the newest,
        // reached from the remembered one by a consistency proof. An epoch
        // published between the two requests asks once more.
        let mut attempt = 0;
        let (head, proof) = loop {
            attempt += 1;
            let (head, proof) = match self
                .request(Request::KtLookup {
                    label: wire_label.clone(),
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
        let proven = LookupProof::decode(&proof)
            .and_then(|p| p.verify(&vrf, &label, head.map_root(), head.epoch()))
            .map_err(KtFailure::Proof)?;
        match proven {
            Lookup::Present { latest, .. } if served.matches(&latest.value) => Ok(()),
            _ if !retried => Err(KtFailure::NotYetPublished {
                account: served.account(),
            }
            .into()),
            _ => {
                self.emit(Event::DirectoryRefused {
                    account: served.account(),
                });
                Err(served.refusal().into())
            }
        }
    }

    /// Before what the relay served is used (a fetched bundle's identity at
    /// first contact or a contact's new key; a name resolved at first
    /// contact): the directory must hold it (§16.9 item 2). A value not
    /// held yet is asked again once the relay has published a newer epoch
    /// (waiting at most [`NEXT_EPOCH_WAIT`]); then it is refused. Without
    /// pinned keys there is nothing to check against.
    pub(crate) async fn kt_vet(self: &Arc<Self>, served: Served<'_>) -> Result<(), Error> {
        match self.kt_check(served, false).await {
            Err(Error::KeyTransparency(KtFailure::NotPinned)) => Ok(()),
            Err(Error::KeyTransparency(KtFailure::NotYetPublished { .. })) => {
                let before = self.kt_refresh_head().await?.epoch();
                let deadline = tokio::time::Instant::now() + NEXT_EPOCH_WAIT;
                while self.kt_refresh_head().await?.epoch() == before
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(EPOCH_POLL).await;
                }
                self.kt_check(served, true).await
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
