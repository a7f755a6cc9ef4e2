//! Which devices of a contact a 1:1 send goes to (docs/PROTOCOL.md §15.3):
//! every device of the held device list, each with its own pairwise
//! session. A device without a session gets a hybrid bundle
//! (`FetchHybridBundle` naming the device, or naming none for device 1 of
//! the implicit list, so an account that never linked a device is written
//! to as before, docs/PROTOCOL.md §12.4); the list is
//! fetched first, verified under the pinned identity (on first contact,
//! the identity the directory publishes, which becomes the pinned one). A
//! device that has published no keys is skipped for this message.
//!
//! Must never: address a device outside the held list, build a session
//! from a bundle of a device the list does not name, or let a bundle with
//! another identity than the pinned one start a session (that is a key
//! change, decided by the caller).

use std::sync::Arc;

use umbra_protocol::device_list::HeldDeviceList;
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::prekeys::VerifiedPreKeyBundle;
use umbra_protocol::wire::{AccountId, DeviceId, Username};

use super::{DeviceBundle, SendPlan};
use crate::engine::Engine;
use crate::identity_checks::CheckStarted;
use crate::sessions::SessionRecord;
use crate::trust::ContactRecord;
use crate::{Error, UnknownPeer};

impl Engine {
    /// The devices of `contact`'s held list with no usable session.
    pub(crate) async fn sessionless_devices(
        &self,
        contact: &ContactRecord,
    ) -> Result<Vec<DeviceId>, Error> {
        let held = self.held_devices(contact).await?;
        let now = self.clock.now_secs();
        let mut missing = Vec::new();
        for &device in held.devices() {
            let usable = self.sessions.usable_of_device(contact, device, now).await?;
            if usable.is_none() {
                missing.push(device);
            }
        }
        Ok(missing)
    }

    /// The usable sessions with the devices of `contact`'s held list, in
    /// device order.
    pub(crate) async fn usable_sessions(
        &self,
        contact: &ContactRecord,
    ) -> Result<Vec<SessionRecord>, Error> {
        let held = self.held_devices(contact).await?;
        let now = self.clock.now_secs();
        let mut records = Vec::new();
        for &device in held.devices() {
            if let Some(r) = self.sessions.usable_of_device(contact, device, now).await? {
                records.push(r);
            }
        }
        Ok(records)
    }

    /// Every stored session with a device of `contact`'s held list (upkeep
    /// such as receipts uses what exists and never fetches a bundle).
    pub(crate) async fn listed_sessions(
        &self,
        contact: &ContactRecord,
    ) -> Result<Vec<SessionRecord>, Error> {
        let held = self.held_devices(contact).await?;
        let mut records = Vec::new();
        for &device in held.devices() {
            if let Some(r) = self.sessions.of_device(contact, device).await? {
                records.push(r);
            }
        }
        Ok(records)
    }

    /// The held device list of `contact`'s account.
    pub(crate) async fn held_devices(
        &self,
        contact: &ContactRecord,
    ) -> Result<HeldDeviceList, Error> {
        self.devices
            .held(&AccountId::from_bytes(contact.account))
            .await
    }

    /// §15.3 rule 1: fetches the list of a contact's account under its
    /// pinned identity; `None` if the account is no contact.
    pub(crate) async fn refresh_device_list(
        self: &Arc<Self>,
        account: &AccountId,
    ) -> Result<Option<HeldDeviceList>, Error> {
        let Some(contact) = self.contact_by_account(account.as_bytes()).await? else {
            return Ok(None);
        };
        Ok(Some(
            self.fetch_device_list(*account, &contact.pinned).await?,
        ))
    }

    /// Fetches `account`'s list under `identity` before a send (§15.3,
    /// rule 1) and returns the list held afterwards. A list the relay served
    /// wrongly fails the send (relay misbehaviour, reported); a fetch that
    /// could not be made (no connection, `RateLimited`, …) sends on the
    /// held list, as a skipped published-identity check does (12.4).
    pub(crate) async fn list_for_sending(
        self: &Arc<Self>,
        account: AccountId,
        identity: &IdentityPublic,
    ) -> Result<HeldDeviceList, Error> {
        match self.fetch_device_list(account, identity).await {
            Ok(held) => Ok(held),
            Err(e @ (Error::Protocol(_) | Error::Store(_))) => Err(e),
            Err(e) => {
                tracing::debug!(error = %crate::error::LogSafe(&e), "device list not fetched; sending on the held list");
                self.devices.held(&account).await
            }
        }
    }

    /// The bundles a send to `name` needs: the device list is fetched
    /// (§15.3 rule 1; unless `refreshed`, just fetched by the caller), then a bundle claimed for each listed device
    /// without a usable session; a device without keys is skipped. With
    /// no bundle and no session at all, the first device's refusal.
    pub(super) async fn plan_bundles(
        self: &Arc<Self>,
        name: &Username,
        existing: Option<&ContactRecord>,
        refreshed: bool,
        check: CheckStarted,
    ) -> Result<SendPlan, Error> {
        let (account, identity) = match existing {
            Some(c) => (AccountId::from_bytes(c.account), Some(c.pinned.clone())),
            None => {
                let (account, identity) = self.resolve_published(name).await?;
                // First contact by name: the directory must bind the name
                // to that account (§16.9 item 2).
                self.kt_vet(crate::kt::Served::Username {
                    username: name,
                    account,
                })
                .await?;
                (account, identity)
            }
        };
        if account == self.me().account {
            return Err(Error::unknown(name.clone(), UnknownPeer::Yourself));
        }
        let held = match &identity {
            // `plan_send` fetched it a moment ago.
            Some(_) if refreshed => self.devices.held(&account).await?,
            Some(identity) => self.list_for_sending(account, identity).await?,
            // No published identity to verify a list under: the implicit
            // list (the bundle fetch then answers as before).
            None => self.devices.held(&account).await?,
        };
        let now = self.clock.now_secs();
        let mut bundles = Vec::new();
        let mut first_refusal = None;
        let mut stale = false;
        for &device in held.devices() {
            if let Some(contact) = existing {
                let usable = self.sessions.usable_of_device(contact, device, now).await?;
                if usable.is_some() {
                    continue;
                }
            }
            let fetched = match held {
                // Device 1 of the implicit list: as before devices.
                HeldDeviceList::Implicit => self.fetch_bundle(account, name).await,
                HeldDeviceList::Verified(_) => {
                    self.fetch_device_bundle(account, device, name).await
                }
            };
            match fetched {
                Ok(bundle) => bundles.push(DeviceBundle {
                    device,
                    bundle: Box::new(bundle),
                }),
                Err(
                    e @ Error::UnknownUser {
                        reason: UnknownPeer::NoPublishedKeys,
                        ..
                    },
                ) => {
                    tracing::debug!(device = device.0, "device without keys skipped");
                    first_refusal.get_or_insert(e);
                }
                Err(
                    e @ Error::UnknownUser {
                        reason: UnknownPeer::NotOnRelay,
                        ..
                    },
                ) if matches!(held, HeldDeviceList::Verified(_)) => {
                    // A listed device the relay no longer has (removed
                    // since our list): skipped, and the list fetched again
                    // below (§15.3 rule 1).
                    tracing::debug!(device = device.0, "device unknown to the relay skipped");
                    first_refusal.get_or_insert(e);
                    stale = true;
                }
                Err(e) => return Err(e),
            }
        }
        if stale {
            if let Some(identity) = &identity {
                if let Err(e) = self.fetch_device_list(account, identity).await {
                    tracing::debug!(error = %crate::error::LogSafe(&e), "device list refresh failed");
                }
            }
        }
        let has_sessions = match existing {
            Some(contact) => !self.usable_sessions(contact).await?.is_empty(),
            None => false,
        };
        if bundles.is_empty() && !has_sessions {
            return Err(first_refusal
                .unwrap_or_else(|| Error::unknown(name.clone(), UnknownPeer::NoPublishedKeys)));
        }
        if has_sessions {
            if let Some(contact) = existing {
                // The devices with sessions are written to as well.
                self.check_published_identity(contact).await?;
            }
        }
        let listed_under = match held {
            HeldDeviceList::Verified(_) => identity.map(Box::new),
            HeldDeviceList::Implicit => None,
        };
        Ok(SendPlan::Fresh {
            account,
            listed_under,
            bundles,
            check,
        })
    }

    /// Claims and verifies a hybrid bundle of one device of `account`
    /// (§15.5, `FetchHybridBundle` with the device); see
    /// [`Engine::claim_bundle`].
    pub(crate) async fn fetch_device_bundle(
        self: &Arc<Self>,
        account: AccountId,
        device: DeviceId,
        name: &Username,
    ) -> Result<VerifiedPreKeyBundle, Error> {
        self.claim_bundle(account, Some(device), name).await
    }
}
