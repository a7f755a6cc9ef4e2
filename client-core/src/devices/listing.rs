//! The account's devices as the relay knows them (`ListDevices`,
//! `RemoveDevice`, docs/PROTOCOL.md §15.5), beside what the verified own
//! list says of each.
//!
//! Must never: ask the relay to remove this device (it is refused before
//! any request), ask it to remove a device before the tombstone is
//! durable, or report a removal whose list publication failed as done.

use std::sync::Arc;

use umbra_protocol::wire::{DeviceId, ErrorCode, Request, Response};

use super::within_limits;
use crate::engine::Engine;
use crate::failure::DeviceFailure;
use crate::Error;

/// One current device of our account, as [`crate::Client::devices`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// The device id the relay assigned (device 1 exists from registration).
    pub device_id: u32,
    /// When the relay assigned it, Unix seconds.
    pub created_at: u64,
    /// Its latest authentication, Unix seconds rounded down to a whole hour
    /// by the relay; 0 if it never authenticated.
    pub last_seen_at: u64,
    /// Whether it is the device this client runs on.
    pub this_device: bool,
    /// Whether the account's device list verified under our identity names
    /// it (senders encrypt only to listed devices, §15.3). A device just
    /// linked, whose list was not published yet, is current but unlisted.
    pub listed: bool,
}

impl Engine {
    /// The account's current devices, ascending by id: `ListDevices`,
    /// marked against the own list fetched and verified first.
    pub(crate) async fn list_devices(self: &Arc<Self>) -> Result<Vec<DeviceInfo>, Error> {
        self.check_open()?;
        let held = self.fetch_own_device_list().await?;
        let me = self.me().device;
        Ok(self
            .relay_devices()
            .await?
            .into_iter()
            .map(|info| DeviceInfo {
                device_id: info.device.0,
                created_at: info.created_at,
                last_seen_at: info.last_seen_at,
                this_device: info.device == me,
                listed: held.allows(info.device),
            })
            .collect())
    }

    /// `ListDevices`: the account's current devices as the relay says.
    async fn relay_devices(
        self: &Arc<Self>,
    ) -> Result<Vec<umbra_protocol::wire::DeviceInfo>, Error> {
        let response = within_limits(self.request(Request::ListDevices).await?)?;
        let Response::Devices { devices } = response else {
            return Err(crate::error::unexpected("Devices", &response));
        };
        Ok(devices)
    }

    /// The ids of the account's current devices, as the relay says.
    pub(super) async fn current_devices(self: &Arc<Self>) -> Result<Vec<DeviceId>, Error> {
        Ok(self
            .relay_devices()
            .await?
            .into_iter()
            .map(|info| info.device)
            .collect())
    }

    /// Removes another device of the account on the relay (its tokens,
    /// keys and queue go, §15.5), then publishes the own list without it.
    /// The id is kept as a tombstone before the relay is asked, so no list
    /// naming it is ever signed again, whatever becomes of the publication.
    /// This device is refused with [`DeviceFailure::ThisDevice`] before
    /// anything is sent; an id that is neither a current device nor named
    /// by the own list with [`DeviceFailure::Unknown`].
    pub(crate) async fn remove_device(self: &Arc<Self>, device: u32) -> Result<(), Error> {
        self.check_open()?;
        if device == self.me().device.0 {
            return Err(DeviceFailure::ThisDevice(device).into());
        }
        if device == 0 {
            return Err(DeviceFailure::Unknown(device).into());
        }
        let device = DeviceId(device);
        // The own list as the relay serves it now: a removal started on
        // another device whose publication failed is finished here too.
        let listed = self.fetch_own_device_list().await?.allows(device);
        if !listed && !self.current_devices().await?.contains(&device) {
            // No tombstone: an id not assigned yet may be assigned later.
            return Err(DeviceFailure::Unknown(device.0).into());
        }
        self.devices.tombstone(&self.me().account, device).await?;
        match self.request(Request::RemoveDevice { device }).await {
            Ok(Response::Ok) => {}
            Ok(other) => return Err(crate::error::unexpected("Ok", &other)),
            // Gone from the relay already (an earlier removal whose
            // publication failed, or one racing this): finish it.
            Err(Error::Relay {
                code: ErrorCode::UnknownRecipient,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        self.remove_own_device(device).await
    }

    /// Publishes the own list with `device`, a current device of the
    /// account that it does not name yet: what finishes a link whose list
    /// publication failed after the relay enrolled the device
    /// ([`crate::LinkFailure::EnrolledNotListed`]). Only on the user's
    /// word for this one id, never for every device the relay lists (the
    /// relay would then choose who receives the account's messages). A
    /// device this client removed is refused ([`DeviceFailure::Removed`]),
    /// one the relay does not list as current with
    /// [`DeviceFailure::Unknown`].
    pub(crate) async fn list_device(self: &Arc<Self>, device: u32) -> Result<(), Error> {
        self.check_open()?;
        let device = DeviceId(device);
        if device.0 == 0 || !self.current_devices().await?.contains(&device) {
            return Err(DeviceFailure::Unknown(device.0).into());
        }
        self.add_own_device(device).await
    }
}
