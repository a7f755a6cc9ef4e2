//! Device lists and the account's devices (docs/PROTOCOL.md §15), as a
//! manager under the [`Client`](crate::Client) facade.
//!
//! For every account the client writes to, its own included, it holds the
//! highest-versioned device list it verified, with the identity it
//! verified under (record kind `DeviceList`, §12.9, `stored.rs`):
//! [`Engine::fetch_device_list`] asks the relay and takes a list only by
//! [`HeldDeviceList::accept`] (it decodes, names the account, verifies
//! under the pinned identity, and is newer than the list held for that
//! identity). A list the identity did not sign, an older one, other bytes
//! under the held version or a version above the relay's limit is relay
//! misbehaviour: it is reported as [`RelayMisbehaved`] and the held list
//! stays. An account with no held list, or whose held list verified under
//! another identity than the pinned one (a key change, an identity reset),
//! has the implicit list `{version 0, [1]}`.
//!
//! The account's own list is published by this device (`own.rs`) after a
//! device joins or is removed, or when the relay serves one our identity
//! did not sign (after an identity reset); listing and removing devices on
//! the relay is `listing.rs`.
//!
//! Must never: store a list that did not pass `HeldDeviceList::accept` or
//! that we did not sign ourselves, let a lower or equal version replace the
//! list held for the same identity, apply a list the relay served for
//! another account, or sign a list naming a device this client removed.

mod listing;
mod own;
mod stored;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_repair;

use std::sync::Arc;

use umbra_protocol::device_list::{DeviceList, DeviceListError, HeldDeviceList};
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::{AccountId, DeviceId, Request, Response};

pub use listing::DeviceInfo;
pub(crate) use stored::StoredDeviceList;

use crate::engine::Engine;
use crate::failure::RelayMisbehaved;
use crate::store::{Txn, Vault};
use crate::{records, Error};

/// The highest list version a relay stores (§15.4: 2^63 − 1, its versions
/// are signed 64-bit integers). A client signs none above it and takes a
/// served one above it as relay misbehaviour.
pub(crate) const MAX_DEVICE_LIST_VERSION: u64 = (1 << 63) - 1;

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

    async fn stored(&self, account: &AccountId) -> Result<StoredDeviceList, Error> {
        let slot = records::devices::slot(&self.vault, account.as_bytes());
        Ok(self.vault.load(&slot).await?.unwrap_or_default())
    }

    async fn store(&self, account: &AccountId, stored: &StoredDeviceList) -> Result<(), Error> {
        let mut txn = Txn::new();
        let slot = records::devices::slot(&self.vault, account.as_bytes());
        self.vault.save(&mut txn, slot, stored)?;
        self.vault.commit(txn).await?;
        Ok(())
    }

    /// The list held for `account`, whatever identity it verified under
    /// (the implicit one if none was verified). A list held under another
    /// identity than the pinned one is dropped by the next
    /// [`Engine::fetch_device_list`] under the pinned one;
    /// [`DeviceManager::held_under`] is the list for one identity.
    pub(crate) async fn held(&self, account: &AccountId) -> Result<HeldDeviceList, Error> {
        Ok(self.stored(account).await?.any_identity())
    }

    /// The list held for `account` under `pinned`: the implicit list if
    /// the held one verified under another identity (§15.3). The fetch
    /// path uses `held_for_fetch`, which also drops such a list.
    #[cfg(test)]
    pub(crate) async fn held_under(
        &self,
        account: &AccountId,
        pinned: &IdentityPublic,
    ) -> Result<HeldDeviceList, Error> {
        Ok(self.stored(account).await?.held_under(pinned))
    }

    /// The list held for `account` under `pinned`, after dropping a held
    /// list that verified under another identity (a key change accepted,
    /// an identity reset), so [`DeviceManager::held`] no longer returns
    /// it either. Durable on return.
    async fn held_for_fetch(
        &self,
        account: &AccountId,
        pinned: &IdentityPublic,
    ) -> Result<HeldDeviceList, Error> {
        let _guard = self.write_lock.lock().await;
        let stored = self.stored(account).await?;
        if let Some(cleared) = stored.without_other_identity(pinned) {
            self.store(account, &cleared).await?;
            return Ok(HeldDeviceList::Implicit);
        }
        Ok(stored.held_under(pinned))
    }

    /// The ids of our account this client asked the relay to remove.
    pub(crate) async fn removed(&self, account: &AccountId) -> Result<Vec<DeviceId>, Error> {
        Ok(self.stored(account).await?.removed().to_vec())
    }

    /// Records `device` as removed (durable on return), before the relay
    /// is asked to remove it: no list naming it is signed afterwards.
    pub(crate) async fn tombstone(
        &self,
        account: &AccountId,
        device: DeviceId,
    ) -> Result<(), Error> {
        let _guard = self.write_lock.lock().await;
        let stored = self.stored(account).await?;
        if stored.removed().contains(&device) {
            return Ok(());
        }
        self.store(account, &stored.with_removed(device)).await
    }

    /// Stores `list`, verified under `identity`, as `account`'s held list
    /// if it is newer than the one held for that identity (durable on
    /// return; a list held under another identity is replaced whatever its
    /// version, the tombstones stay); returns the list held for `identity`
    /// afterwards.
    async fn keep_newer(
        &self,
        account: &AccountId,
        identity: &IdentityPublic,
        list: DeviceList,
    ) -> Result<HeldDeviceList, Error> {
        let _guard = self.write_lock.lock().await;
        let stored = self.stored(account).await?;
        let held = stored.held_under(identity);
        if list.version() <= held.version() {
            return Ok(held);
        }
        self.store(account, &stored.with_list(list.clone(), identity))
            .await?;
        Ok(HeldDeviceList::Verified(list))
    }
}

/// A served list, judged against the list held for the identity asked
/// about.
enum Served {
    /// Newer and verified: held now.
    Taken(HeldDeviceList),
    /// None served, or the held list's exact bytes again.
    Unchanged(HeldDeviceList),
    /// It does not verify under the identity (`held` is the list held for
    /// the identity; `version` the served list's).
    Unsigned { held: HeldDeviceList, version: u64 },
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
    /// if it verifies under `pinned` and is newer than the list held for
    /// that identity, storing it. `pinned` is the contact's pinned identity
    /// (a caller holding the contact record passes its `pinned`, as
    /// `refresh_device_list` does, never a directory answer), on a first
    /// contact the identity the directory publishes (which becomes the
    /// pinned one); for our own account use
    /// [`Engine::fetch_own_device_list`]. Returns the list held afterwards:
    /// the new one, or the held one when the relay serves none or the same
    /// list.
    ///
    /// A list the identity did not sign ([`RelayMisbehaved::ForgedDeviceList`]),
    /// an older version ([`RelayMisbehaved::DeviceListRollback`]), other
    /// bytes under the held version
    /// ([`RelayMisbehaved::DeviceListEquivocation`]), a version above the
    /// relay's limit ([`RelayMisbehaved::DeviceListVersionOverLimit`]) or a
    /// list that does not decode or names another account
    /// ([`RelayMisbehaved::MalformedDeviceList`]) is an error, and the held
    /// list stays.
    pub(crate) async fn fetch_device_list(
        self: &Arc<Self>,
        account: AccountId,
        pinned: &IdentityPublic,
    ) -> Result<HeldDeviceList, Error> {
        match self.fetch_served(account, pinned).await? {
            Served::Taken(held) | Served::Unchanged(held) => Ok(held),
            Served::Unsigned { .. } => Err(Error::Protocol(RelayMisbehaved::ForgedDeviceList {
                account,
            })),
        }
    }

    /// Fetches `account`'s list and judges it under `pinned` (§15.3 rule
    /// 2), storing it if it is taken.
    async fn fetch_served(
        self: &Arc<Self>,
        account: AccountId,
        pinned: &IdentityPublic,
    ) -> Result<Served, Error> {
        let response = within_limits(self.request(Request::FetchDeviceList { account }).await?)?;
        let Response::DeviceList { list } = response else {
            return Err(crate::error::unexpected("DeviceList", &response));
        };
        let held = self.devices.held_for_fetch(&account, pinned).await?;
        // A relay that serves no list cannot undo one verified before.
        let Some(bytes) = list else {
            return Ok(Served::Unchanged(held));
        };
        let malformed =
            |source| Error::Protocol(RelayMisbehaved::MalformedDeviceList { account, source });
        let served = DeviceList::decode(&bytes).map_err(malformed)?;
        if served.version() > MAX_DEVICE_LIST_VERSION {
            return Err(Error::Protocol(
                RelayMisbehaved::DeviceListVersionOverLimit {
                    account,
                    version: served.version(),
                },
            ));
        }
        match held.accept(&account, pinned, &bytes) {
            Ok(HeldDeviceList::Verified(list)) => Ok(Served::Taken(
                self.devices.keep_newer(&account, pinned, list).await?,
            )),
            // `accept` returns a verified list or an error.
            Ok(HeldDeviceList::Implicit) => Ok(Served::Unchanged(held)),
            Err(DeviceListError::NotNewer { held: h, got }) if got == h => match &held {
                HeldDeviceList::Verified(list) if list.encode() == bytes => {
                    Ok(Served::Unchanged(held))
                }
                // The held version with other bytes: two lists under one
                // version, which a relay taking only strictly higher
                // versions (§15.4) never stores.
                _ => Err(Error::Protocol(RelayMisbehaved::DeviceListEquivocation {
                    account,
                    version: got,
                })),
            },
            Err(DeviceListError::NotNewer { held, got }) => {
                Err(Error::Protocol(RelayMisbehaved::DeviceListRollback {
                    account,
                    held,
                    got,
                }))
            }
            Err(DeviceListError::BadSignature) => Ok(Served::Unsigned {
                held,
                version: served.version(),
            }),
            Err(source) => Err(malformed(source)),
        }
    }
}
