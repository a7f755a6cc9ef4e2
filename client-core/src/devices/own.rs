//! Publishing our own account's device list (docs/PROTOCOL.md §15.4): after
//! a device is enrolled (the link flow calls [`Engine::add_own_device`]) or
//! removed ([`Engine::remove_own_device`]), this device signs a list with
//! one version more than the highest it knows and publishes it, retrying on
//! `StaleDeviceList` on top of the list that beat it.
//!
//! Must never: publish a list not built on a list verified under our own
//! identity (or the implicit one), leave this device out of the list it
//! publishes, store a list the relay refused, or retry without bound.

use std::sync::Arc;

use umbra_protocol::device_list::{sign_device_list, HeldDeviceList};
use umbra_protocol::wire::{DeviceId, ErrorCode, Request, Response};

use super::within_limits;
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
}

impl ListChange {
    /// `devices` (ascending) with the change applied and `me` kept in,
    /// still ascending and without repeats.
    fn apply(self, devices: &[DeviceId], me: DeviceId) -> Vec<DeviceId> {
        let mut out: Vec<DeviceId> = devices.to_vec();
        out.push(me);
        match self {
            ListChange::Add(device) => out.push(device),
            ListChange::Remove(device) => out.retain(|d| *d != device),
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl Engine {
    /// Publishes our account's device list with `device` added (called by
    /// the link flow once the relay enrolled it). Nothing is published if
    /// the verified list already names it. Needs a live connection; must
    /// not be called holding `op_lock` (it never takes it, but it waits
    /// for the relay).
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
        let view = self.fetch_own_device_list().await?;
        self.publish_own_from(view, change).await.map(|_| ())
    }

    /// Publishes `change` on top of `view` (the own list as last seen),
    /// fetching and building again on `StaleDeviceList`, at most
    /// [`MAX_PUBLISH_ATTEMPTS`] times. Returns the list held afterwards.
    pub(super) async fn publish_own_from(
        self: &Arc<Engine>,
        mut view: HeldDeviceList,
        change: ListChange,
    ) -> Result<HeldDeviceList, Error> {
        let me = self.me();
        for _ in 0..MAX_PUBLISH_ATTEMPTS {
            let devices = change.apply(view.devices(), me.device);
            if devices == view.devices() {
                return Ok(view);
            }
            // Saturating: a relay refuses a version past 2^63 - 1 anyway.
            let version = view.version().saturating_add(1);
            let list = sign_device_list(&self.identity, me.account, version, devices)
                .map_err(DeviceFailure::List)?;
            let published = self
                .request(Request::PublishDeviceList {
                    list: list.encode(),
                })
                .await;
            match published.and_then(within_limits) {
                Ok(Response::Ok) => return self.devices.keep_newer(&me.account, list).await,
                Ok(other) => return Err(crate::error::unexpected("Ok", &other)),
                Err(Error::Relay {
                    code: ErrorCode::StaleDeviceList,
                    ..
                }) => {
                    tracing::debug!(
                        version,
                        "own device list was stale; building on the newer one"
                    );
                    view = self.fetch_own_device_list().await?;
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
