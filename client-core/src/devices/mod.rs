//! Device lists and the account's devices (docs/PROTOCOL.md §15), as a
//! manager under the [`Client`](crate::Client) facade.
//!
//! For every account the client writes to, its own included, it holds the
//! highest-versioned device list it verified (record kind `DeviceList`,
//! §12.9): [`Engine::fetch_device_list`] asks the relay and takes a list
//! only by [`HeldDeviceList::accept`] (it decodes, names the account,
//! verifies under the pinned identity, and is newer). A list the identity
//! did not sign or an older one is relay misbehaviour: it is reported as
//! [`RelayMisbehaved`] and the held list stays. An account with no held
//! list has the implicit list `{version 0, [1]}`.
//!
//! The account's own list is published by this device (`own.rs`) after a
//! device joins or is removed; listing and removing devices on the relay is
//! `listing.rs`.
//!
//! Must never: store a list that did not pass `HeldDeviceList::accept` or
//! that we did not sign ourselves, let a lower or equal version replace the
//! held one, or apply a list the relay served for another account.

mod listing;
mod own;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use umbra_protocol::device_list::{DeviceList, DeviceListError, HeldDeviceList};
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::{AccountId, Request, Response};

pub use listing::DeviceInfo;

use crate::engine::Engine;
use crate::failure::RelayMisbehaved;
use crate::store::{Txn, Vault};
use crate::{records, Error};

/// A held list as stored: the verified list's exact bytes (§15.2). Decoded
/// again on load, so a stored value that is not a list is `Corrupt`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "StoredForm", into = "StoredForm")]
pub(crate) struct StoredDeviceList(DeviceList);

/// The stored form; the variant index is the format number (format 0).
#[derive(Serialize, Deserialize)]
enum StoredForm {
    V1 { list: Vec<u8> },
}

impl TryFrom<StoredForm> for StoredDeviceList {
    type Error = DeviceListError;

    fn try_from(form: StoredForm) -> Result<Self, Self::Error> {
        let StoredForm::V1 { list } = form;
        DeviceList::decode(&list).map(StoredDeviceList)
    }
}

impl From<StoredDeviceList> for StoredForm {
    fn from(stored: StoredDeviceList) -> Self {
        StoredForm::V1 {
            list: stored.0.encode(),
        }
    }
}

/// The held device lists, and the locks that keep their updates whole.
pub(crate) struct DeviceManager {
    vault: Arc<Vault>,
    /// Serialises reading, comparing and writing a held list, so two
    /// fetches finishing at once never store the older of their lists.
    write_lock: tokio::sync::Mutex<()>,
    /// Serialises this client's publications of its own list (`own.rs`).
    publish_lock: tokio::sync::Mutex<()>,
}

impl DeviceManager {
    pub(crate) fn new(vault: Arc<Vault>) -> Self {
        Self {
            vault,
            write_lock: tokio::sync::Mutex::new(()),
            publish_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The list held for `account` (the implicit one if none was verified).
    pub(crate) async fn held(&self, account: &AccountId) -> Result<HeldDeviceList, Error> {
        let slot = records::devices::slot(&self.vault, account.as_bytes());
        Ok(match self.vault.load(&slot).await? {
            Some(StoredDeviceList(list)) => HeldDeviceList::Verified(list),
            None => HeldDeviceList::Implicit,
        })
    }

    /// Stores `list` as `account`'s held list if it is newer than the one
    /// held now (durable on return); returns the list held afterwards.
    async fn keep_newer(
        &self,
        account: &AccountId,
        list: DeviceList,
    ) -> Result<HeldDeviceList, Error> {
        let _guard = self.write_lock.lock().await;
        let held = self.held(account).await?;
        if list.version() <= held.version() {
            return Ok(held);
        }
        let mut txn = Txn::new();
        let slot = records::devices::slot(&self.vault, account.as_bytes());
        self.vault
            .save(&mut txn, slot, &StoredDeviceList(list.clone()))?;
        self.vault.commit(txn).await?;
        Ok(HeldDeviceList::Verified(list))
    }
}

/// `response` if it keeps the limits of §9.9, else the relay's fault.
pub(crate) fn within_limits(response: Response) -> Result<Response, Error> {
    response
        .check_limits()
        .map_err(|e| Error::Protocol(RelayMisbehaved::ResponseOverLimit(e)))?;
    Ok(response)
}

impl Engine {
    /// §15.3 rule 2: asks the relay for `account`'s device list and takes it
    /// if it verifies under `pinned` (the contact's pinned identity, or our
    /// own for our account) and is newer than the held one, storing it.
    /// Returns the list held afterwards: the new one, or the held one when
    /// the relay serves none or the same version.
    ///
    /// A list the identity did not sign ([`RelayMisbehaved::ForgedDeviceList`]),
    /// an older version ([`RelayMisbehaved::DeviceListRollback`]) or a list
    /// that does not decode or names another account
    /// ([`RelayMisbehaved::MalformedDeviceList`]) is an error, and the held
    /// list stays.
    pub(crate) async fn fetch_device_list(
        self: &Arc<Self>,
        account: AccountId,
        pinned: &IdentityPublic,
    ) -> Result<HeldDeviceList, Error> {
        let response = within_limits(self.request(Request::FetchDeviceList { account }).await?)?;
        let Response::DeviceList { list } = response else {
            return Err(crate::error::unexpected("DeviceList", &response));
        };
        let held = self.devices.held(&account).await?;
        // A relay that serves no list cannot undo one verified before.
        let Some(bytes) = list else {
            return Ok(held);
        };
        match held.accept(&account, pinned, &bytes) {
            Ok(HeldDeviceList::Verified(list)) => self.devices.keep_newer(&account, list).await,
            // `accept` returns a verified list or an error.
            Ok(HeldDeviceList::Implicit) => Ok(held),
            Err(DeviceListError::NotNewer { held: h, got }) if got == h => Ok(held),
            Err(DeviceListError::NotNewer { held, got }) => {
                Err(Error::Protocol(RelayMisbehaved::DeviceListRollback {
                    account,
                    held,
                    got,
                }))
            }
            Err(DeviceListError::BadSignature) => {
                Err(Error::Protocol(RelayMisbehaved::ForgedDeviceList {
                    account,
                }))
            }
            Err(source) => Err(Error::Protocol(RelayMisbehaved::MalformedDeviceList {
                account,
                source,
            })),
        }
    }

    /// Our own account's list, fetched and verified under our identity.
    pub(crate) async fn fetch_own_device_list(self: &Arc<Self>) -> Result<HeldDeviceList, Error> {
        let account = self.me().account;
        let identity = self.identity.public();
        self.fetch_device_list(account, &identity).await
    }
}
