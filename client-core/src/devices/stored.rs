//! The stored form of one account's held device list (record kind
//! `DeviceList`, docs/PROTOCOL.md §12.9): the verified list's exact bytes,
//! the identity it verified under, and for the own account the ids this
//! client asked the relay to remove (its tombstones).
//!
//! Must never: hand out a held list for an identity other than the one it
//! verified under (after a key change or an identity reset the account's
//! list is the implicit one until a list of the new identity verifies), or
//! lose a tombstone when the list beside it is replaced.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use umbra_protocol::device_list::{DeviceList, DeviceListError, HeldDeviceList};
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::DeviceId;

/// One account's record. Decoded again on load, so a stored value whose
/// list is not a list is `Corrupt`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "StoredForm", into = "StoredForm")]
pub(crate) struct StoredDeviceList {
    /// The highest-versioned list verified, or that this device signed and
    /// the relay accepted.
    list: Option<DeviceList>,
    /// The identity `list` verified under. `None` only for a record of
    /// format 0, written before the identity was kept: its list is then
    /// checked again under the identity asked about.
    identity: Option<IdentityPublic>,
    /// Own account only: every id this client asked the relay to remove
    /// (§15.5), ascending. Ids are never reused (§15.1), so no list naming
    /// one is ever signed again.
    removed: Vec<DeviceId>,
}

/// The stored form; the variant index is the format number.
#[derive(Serialize, Deserialize)]
enum StoredForm {
    /// Format 0: the list alone.
    V1 { list: Vec<u8> },
    /// Format 1: the list with its identity, and the tombstones.
    V2 {
        list: Option<Vec<u8>>,
        identity: Option<Box<IdentityPublic>>,
        removed: Vec<u32>,
    },
}

impl TryFrom<StoredForm> for StoredDeviceList {
    type Error = DeviceListError;

    fn try_from(form: StoredForm) -> Result<Self, Self::Error> {
        Ok(match form {
            StoredForm::V1 { list } => StoredDeviceList {
                list: Some(DeviceList::decode(&list)?),
                identity: None,
                removed: Vec::new(),
            },
            StoredForm::V2 {
                list,
                identity,
                removed,
            } => {
                let mut removed: Vec<DeviceId> = removed.into_iter().map(DeviceId).collect();
                removed.sort_unstable();
                removed.dedup();
                StoredDeviceList {
                    list: list.as_deref().map(DeviceList::decode).transpose()?,
                    identity: identity.map(|i| *i),
                    removed,
                }
            }
        })
    }
}

impl From<StoredDeviceList> for StoredForm {
    fn from(stored: StoredDeviceList) -> Self {
        StoredForm::V2 {
            list: stored.list.map(|l| l.encode()),
            identity: stored.identity.map(Box::new),
            removed: stored.removed.into_iter().map(|d| d.0).collect(),
        }
    }
}

/// Whether two identities are the same keys (constant time; the binding
/// signature is not part of the identity, §7).
pub(crate) fn same_identity(a: &IdentityPublic, b: &IdentityPublic) -> bool {
    a.key_bytes().ct_eq(&b.key_bytes()).into()
}

impl StoredDeviceList {
    /// A record holding `list`, verified under `identity`, keeping the
    /// tombstones of `self`.
    pub(crate) fn with_list(&self, list: DeviceList, identity: &IdentityPublic) -> Self {
        StoredDeviceList {
            list: Some(list),
            identity: Some(identity.clone()),
            removed: self.removed.clone(),
        }
    }

    /// `self` without its list, if the list verified under another
    /// identity than `pinned` (the tombstones stay); `None` if nothing is
    /// to change.
    pub(crate) fn without_other_identity(&self, pinned: &IdentityPublic) -> Option<Self> {
        if self.list.is_none() || self.held_under(pinned) != HeldDeviceList::Implicit {
            return None;
        }
        Some(StoredDeviceList {
            list: None,
            identity: None,
            removed: self.removed.clone(),
        })
    }

    /// `self` with `device` among the tombstones.
    pub(crate) fn with_removed(&self, device: DeviceId) -> Self {
        let mut out = self.clone();
        if let Err(at) = out.removed.binary_search(&device) {
            out.removed.insert(at, device);
        }
        out
    }

    /// The list held for `pinned`: the stored one if it verified under
    /// that identity, else the implicit list (version 0) of that identity.
    pub(crate) fn held_under(&self, pinned: &IdentityPublic) -> HeldDeviceList {
        let Some(list) = &self.list else {
            return HeldDeviceList::Implicit;
        };
        let ours = match &self.identity {
            Some(identity) => same_identity(identity, pinned),
            None => list.verify(pinned).is_ok(),
        };
        if ours {
            HeldDeviceList::Verified(list.clone())
        } else {
            HeldDeviceList::Implicit
        }
    }

    /// The stored list whatever identity it verified under.
    pub(crate) fn any_identity(&self) -> HeldDeviceList {
        match &self.list {
            Some(list) => HeldDeviceList::Verified(list.clone()),
            None => HeldDeviceList::Implicit,
        }
    }

    /// The tombstones, ascending.
    pub(crate) fn removed(&self) -> &[DeviceId] {
        &self.removed
    }

    /// A record of format 0 holding `list` (tests of the old format).
    #[cfg(test)]
    pub(crate) fn format_0_bytes(list: &DeviceList) -> Vec<u8> {
        postcard::to_allocvec(&StoredForm::V1 {
            list: list.encode(),
        })
        .expect("encode")
    }
}
