//! Publishing our own account's device list (docs/PROTOCOL.md §15.4): after
//! a device is enrolled (the link flow calls [`Engine::add_own_device`]) or
//! removed ([`Engine::remove_own_device`]), or when the relay serves a list
//! our identity did not sign (after an identity reset, 12.15), this device
//! signs a list with one version more than the highest it knows and
//! publishes it: on `StaleDeviceList` it builds again on the list that beat
//! it, on `UnknownRecipient` it leaves out the listed devices the relay no
//! longer has (`ListDevices`).
//!
//! Must never: publish a list not built on a list verified under our own
//! identity (or the implicit one), leave this device out of the list it
//! publishes, name a device this client removed (its tombstones), sign a
//! version above 2^63 − 1 or the same version twice, store a list the
//! relay refused, or retry without bound.

use std::sync::Arc;

use umbra_protocol::device_list::{sign_device_list, HeldDeviceList};
use umbra_protocol::wire::{DeviceId, ErrorCode, Request, Response};

use super::{within_limits, Served, MAX_DEVICE_LIST_VERSION};
use crate::engine::Engine;
use crate::failure::DeviceFailure;
use crate::Error;

/// How many publications a change of the own list makes before giving up
/// ([`DeviceFailure::PublishContended`]): each `StaleDeviceList` means
/// another device published meanwhile, which a person's devices rarely do
/// more than once at a time.
pub(crate) const MAX_PUBLISH_ATTEMPTS: usize = 4;

/// What a publication changes in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListChange {
    /// The device joins the list.
    Add(DeviceId),
    /// The device leaves the list.
    Remove(DeviceId),
    /// Nothing: the list is published again only to supersede one our
    /// identity did not sign.
    Keep,
}

impl ListChange {
    /// `devices` (ascending) with the change applied, `me` kept in and
    /// the ids of `left_out` left out, still ascending and without repeats.
    fn apply(self, devices: &[DeviceId], me: DeviceId, left_out: &[DeviceId]) -> Vec<DeviceId> {
        let mut out: Vec<DeviceId> = devices.to_vec();
        out.push(me);
        match self {
            ListChange::Add(device) => out.push(device),
            ListChange::Remove(device) => out.retain(|d| *d != device),
            ListChange::Keep => {}
        }
        out.retain(|d| *d == me || !left_out.contains(d));
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Our own list as last fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnView {
    /// The list held for our identity.
    pub(crate) held: HeldDeviceList,
    /// The version of a list the relay serves that our identity did not
    /// sign, which the next publication must exceed (§15.3).
    pub(crate) unsigned: Option<u64>,
}

impl OwnView {
    /// A view of `held` alone (no unsigned list served).
    pub(crate) fn of(held: HeldDeviceList) -> Self {
        Self {
            held,
            unsigned: None,
        }
    }
}

impl Engine {
    /// Our own account's list, fetched and verified under our identity. A
    /// served list our identity did not sign (the old identity's after a
    /// reset, or a relay's forgery) is superseded: our list is published
    /// again with a version above it.
    pub(crate) async fn fetch_own_device_list(self: &Arc<Self>) -> Result<HeldDeviceList, Error> {
        let view = self.fetch_own_view().await?;
        if view.unsigned.is_none() {
            return Ok(view.held);
        }
        let _guard = self.devices.publish_lock.lock().await;
        let view = self.fetch_own_view().await?;
        self.publish_own_from(view, ListChange::Keep).await
    }

    /// What the relay serves as our list, judged under our identity.
    pub(crate) async fn fetch_own_view(self: &Arc<Self>) -> Result<OwnView, Error> {
        let account = self.me().account;
        let identity = self.identity.public();
        Ok(match self.fetch_served(account, &identity).await? {
            Served::Taken(held) | Served::Unchanged(held) => OwnView::of(held),
            Served::Unsigned { held, version } => {
                tracing::warn!(
                    version,
                    "the relay serves an own device list this identity did not sign (honest after \
                     an identity reset); publishing ours above it"
                );
                OwnView {
                    held,
                    unsigned: Some(version),
                }
            }
        })
    }

    /// Publishes our account's device list with `device` added (called by
    /// the link flow once the relay enrolled it). Nothing is published if
    /// the verified list already names it. Needs a live connection; must
    /// not be called holding `op_lock` (it never takes it, but it waits
    /// for the relay). A device this client removed is refused
    /// ([`DeviceFailure::Removed`]).
    pub(crate) async fn add_own_device(self: &Arc<Engine>, device: DeviceId) -> Result<(), Error> {
        self.change_own_list(ListChange::Add(device)).await
    }

    /// Publishes our account's device list without `device` (after the
    /// relay removed it, or for a device that is gone). Nothing is
    /// published if the verified list does not name it.
    pub(crate) async fn remove_own_device(
        self: &Arc<Engine>,
        device: DeviceId,
    ) -> Result<(), Error> {
        if device == self.me().device {
            return Err(DeviceFailure::ThisDevice(device.0).into());
        }
        self.change_own_list(ListChange::Remove(device)).await
    }

    async fn change_own_list(self: &Arc<Engine>, change: ListChange) -> Result<(), Error> {
        let _guard = self.devices.publish_lock.lock().await;
        let view = self.fetch_own_view().await?;
        self.publish_own_from(view, change).await.map(|_| ())
    }

    /// Publishes `change` on top of `view` (the own list as last seen),
    /// fetching and building again on `StaleDeviceList` and leaving out the
    /// devices the relay no longer has on `UnknownRecipient`, at most
    /// [`MAX_PUBLISH_ATTEMPTS`] times. Returns the list held afterwards.
    /// The caller holds `publish_lock`.
    pub(super) async fn publish_own_from(
        self: &Arc<Engine>,
        mut view: OwnView,
        change: ListChange,
    ) -> Result<HeldDeviceList, Error> {
        let me = self.me();
        let identity = self.identity.public();
        let removed = self.devices.removed(&me.account).await?;
        if let ListChange::Add(device) = change {
            if removed.contains(&device) {
                return Err(DeviceFailure::Removed(device.0).into());
            }
        }
        // Listed devices the relay says are not current: left out of this
        // change's lists (only ever fewer devices, so a lying relay gains
        // nothing), never made tombstones on its word.
        let mut gone: Vec<DeviceId> = Vec::new();
        for _ in 0..MAX_PUBLISH_ATTEMPTS {
            let mut left_out = removed.clone();
            left_out.extend(&gone);
            let devices = change.apply(view.held.devices(), me.device, &left_out);
            if devices == view.held.devices() && view.unsigned.is_none() {
                return Ok(view.held);
            }
            let floor = view.held.version().max(view.unsigned.unwrap_or(0));
            let version = floor
                .checked_add(1)
                .filter(|v| *v <= MAX_DEVICE_LIST_VERSION)
                .ok_or(DeviceFailure::VersionExhausted { version: floor })?;
            let list = sign_device_list(&self.identity, me.account, version, devices.clone())
                .map_err(DeviceFailure::List)?;
            let published = self
                .request(Request::PublishDeviceList {
                    list: list.encode(),
                })
                .await;
            match published.and_then(within_limits) {
                Ok(Response::Ok) => {
                    return self.devices.keep_newer(&me.account, &identity, list).await
                }
                Ok(other) => return Err(crate::error::unexpected("Ok", &other)),
                Err(Error::Relay {
                    code: ErrorCode::StaleDeviceList,
                    ..
                }) => {
                    tracing::debug!(
                        version,
                        "own device list was stale; building on the newer one"
                    );
                    view = self.fetch_own_view().await?;
                }
                Err(
                    e @ Error::Relay {
                        code: ErrorCode::UnknownRecipient,
                        ..
                    },
                ) => {
                    // A listed device is no longer current (removed, here
                    // or on another device, without the list after it).
                    let current = self.current_devices().await?;
                    let before = gone.len();
                    gone.extend(
                        devices
                            .iter()
                            .filter(|d| !current.contains(d) && **d != me.device),
                    );
                    if gone.len() == before {
                        // Every listed device is current: nothing to leave out.
                        return Err(e);
                    }
                    tracing::debug!(
                        version,
                        "own device list named removed devices; leaving them out"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Err(DeviceFailure::PublishContended {
            attempts: MAX_PUBLISH_ATTEMPTS,
        }
        .into())
    }
}
