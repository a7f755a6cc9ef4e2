//! The directory: resolving a username to its account and published
//! identity without claiming anything, claiming and verifying a prekey
//! bundle, and the check of a contact's published identity before a send.
//!
//! Must never: accept a bundle that does not verify for the account it was
//! claimed for, or treat a name that now means another account as the old
//! contact.

use std::sync::Arc;
use std::time::Instant;

use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::prekeys::VerifiedPreKeyBundle;
use umbra_protocol::wire::{AccountId, DeviceId, ErrorCode, Request, Response, Username};

use crate::engine::{now_secs, Engine};
use crate::failure::RelayMisbehaved;
use crate::fetched_bundle::verify_fetched_bundle;
use crate::store::Txn;
use crate::trust::{ContactRecord, Observation};
use crate::{Error, UnknownPeer};

impl Engine {
    pub(crate) async fn resolve(self: &Arc<Self>, name: &Username) -> Result<AccountId, Error> {
        match self
            .request(Request::ResolveUsername {
                username: name.clone(),
            })
            .await
        {
            Ok(Response::Resolved { account, .. }) => Ok(account),
            Ok(other) => Err(crate::error::unexpected("Resolved", &other)),
            Err(Error::Relay {
                code: ErrorCode::UnknownUsername | ErrorCode::UnknownRecipient,
                ..
            }) => Err(Error::unknown(name.clone(), UnknownPeer::NotOnRelay)),
            Err(e) => Err(e),
        }
    }

    /// Claims and verifies a hybrid prekey bundle of `account`'s primary
    /// device (known to the user as `name`; the device `FetchBundle` serves).
    pub(crate) async fn fetch_bundle(
        self: &Arc<Self>,
        account: AccountId,
        name: &Username,
    ) -> Result<VerifiedPreKeyBundle, Error> {
        self.claim_bundle(account, None, name).await
    }

    /// Claims and verifies a hybrid bundle (`FetchHybridBundle`, X25519 and
    /// ML-KEM prekeys) of `device` of `account`, or of the device
    /// `FetchBundle` serves when `None`. No keys yet is `NoPublishedKeys`,
    /// an account or device the relay does not know `NotOnRelay`, a bundle
    /// without an ML-KEM prekey [`Error::NoPostQuantumPreKey`], a relay
    /// that does not know the frame [`Error::RelayLacksPostQuantum`]: never
    /// a classical bundle instead.
    pub(crate) async fn claim_bundle(
        self: &Arc<Self>,
        account: AccountId,
        device: Option<DeviceId>,
        name: &Username,
    ) -> Result<VerifiedPreKeyBundle, Error> {
        self.refuse_if_relay_lacks_pq()?;
        let response = self
            .kem_request(Request::FetchHybridBundle { account, device })
            .await
            .map_err(|e| match e {
                Error::Relay {
                    code: ErrorCode::NoPreKeys,
                    ..
                } => Error::unknown(name.clone(), UnknownPeer::NoPublishedKeys),
                Error::Relay {
                    code: ErrorCode::UnknownRecipient | ErrorCode::UnknownUsername,
                    ..
                } => Error::unknown(name.clone(), UnknownPeer::NotOnRelay),
                other => other,
            })?;
        let Response::HybridBundle(wire) = response else {
            return Err(crate::error::unexpected("HybridBundle", &response));
        };
        let bundle = verify_fetched_bundle(&wire, account, name, now_secs())?;
        // The directory must hold the identity served (§16.9 item 2).
        let identity = bundle.identity().to_bytes();
        self.kt_vet(crate::kt::Served::Account {
            account,
            identity: &identity,
            device_list: None,
        })
        .await?;
        Ok(bundle)
    }
    /// Before a send over an existing session: asks the relay which identity
    /// the contact publishes now (once per connection, and again after
    /// [`RECHECK_AFTER`](crate::identity_checks::RECHECK_AFTER)) and refuses
    /// with [`Error::UntrustedKey`] (raising [`Event::KeyChanged`]) if it is
    /// not the pinned one, so a message never goes to a key its owner no
    /// longer holds.
    ///
    /// If the name now belongs to another account, the send is refused
    /// with [`Error::NameReassigned`] and that account becomes the name's
    /// newcomer (docs/PROTOCOL.md §12.13).
    ///
    /// A check that cannot be made (relay unreachable, rate limited, no
    /// published identity) lets the send go ahead as before: it is queued,
    /// and the next send while connected checks again.
    pub(crate) async fn check_published_identity(
        self: &Arc<Self>,
        contact: &ContactRecord,
    ) -> Result<(), Error> {
        if self
            .identity_checks
            .is_fresh(&contact.account, Instant::now())
        {
            return Ok(());
        }
        if !self.relay_reachable().await {
            return Ok(());
        }
        let Ok(username) = Username::parse_canonical(&contact.username) else {
            return Ok(());
        };
        let check = self.identity_checks.start(Instant::now());
        let published = match self.request(Request::ResolveUsername { username }).await {
            Ok(Response::Resolved {
                account,
                identity: Some(identity),
                ..
            }) if account.as_bytes() == &contact.account => identity,
            Ok(Response::Resolved {
                account, identity, ..
            }) if account.as_bytes() != &contact.account => {
                let identity = identity.and_then(|bytes| IdentityPublic::from_bytes(&bytes).ok());
                let name = Username::parse_canonical(&contact.username)?;
                self.note_newcomer(&name, account, identity).await?;
                return Err(Error::NameReassigned { username: name });
            }
            Ok(Response::Resolved { .. }) => return Ok(()),
            Ok(other) => return Err(crate::error::unexpected("Resolved", &other)),
            Err(error) => {
                tracing::debug!(error = %crate::error::LogSafe(&error), "cannot check a contact's identity; sending anyway");
                return Ok(());
            }
        };
        let published = IdentityPublic::from_bytes(&published)
            .map_err(|e| Error::Protocol(RelayMisbehaved::PublishedIdentity(e)))?;
        // The relay answered: now take the state lock and re-read the
        // contact (a concurrent send or receive may have changed it).
        let _guard = self.op_lock.lock().await;
        let mut contact = self
            .contact_by_account(&contact.account)
            .await?
            .unwrap_or_else(|| contact.clone());
        match contact.observe(&published) {
            Observation::Pinned => {
                self.identity_checks.record(contact.account, check);
                Ok(())
            }
            observation => {
                self.identity_checks.forget(&contact.account);
                let mut txn = Txn::new();
                self.names.put_contact(&mut txn, &contact).await?;
                self.vault.commit(txn).await?;
                if observation == Observation::NewlyChanged {
                    self.emit(self.key_changed_event(&contact)?);
                }
                Err(contact.untrusted())
            }
        }
    }
}
