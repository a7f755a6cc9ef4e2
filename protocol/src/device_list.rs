//! Signing an account's device list, and the rule by which a sender takes
//! one (docs/PROTOCOL.md §15.2, §15.3).
//!
//! The list's encoding and its signature check are umbra-wire's
//! ([`DeviceList`], re-exported here), because the relay may check the
//! signature too; signing needs the private identity, so it is here. A
//! client holds, per account it writes to, the highest-versioned list it
//! verified ([`HeldDeviceList`]) and encrypts to those devices only: that
//! is what keeps a relay from adding a device of its own (it cannot sign)
//! or reviving a removed one (an older version never replaces a newer).
//!
//! Must never: take a list that did not verify under the pinned identity,
//! or let a lower or equal version replace the held one.

use crate::identity::IdentityKeyPair;
use crate::labels;
use crate::wire::identity::IdentityPublic;
use crate::wire::{AccountId, DeviceId};

pub use crate::wire::device_list::{DeviceList, DeviceListError, DEVICE_LIST_FORMAT};

/// Signs a list of `account`'s devices with the account identity.
pub fn sign_device_list(
    identity: &IdentityKeyPair,
    account: AccountId,
    version: u64,
    devices: Vec<DeviceId>,
) -> Result<DeviceList, DeviceListError> {
    let signed = DeviceList::signed_bytes(&account, version, &devices)?;
    let signature = identity.sign(labels::DEVICE_LIST, &signed);
    DeviceList::from_parts(account, version, devices, signature)
}

/// What a client holds for one account: a verified list, or the implicit
/// `{version 0, devices [1]}` of an account that never published one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeldDeviceList {
    /// No list verified yet: device 1 only (§15.3).
    Implicit,
    /// The highest-versioned list verified so far.
    Verified(DeviceList),
}

impl HeldDeviceList {
    /// The version held (0 for the implicit list).
    pub fn version(&self) -> u64 {
        match self {
            Self::Implicit => 0,
            Self::Verified(list) => list.version(),
        }
    }

    /// The devices a sender may encrypt to.
    pub fn devices(&self) -> &[DeviceId] {
        match self {
            Self::Implicit => &[DeviceId::PRIMARY],
            Self::Verified(list) => list.devices(),
        }
    }

    /// Whether a bundle or envelope for `device` may be used (§15.3 rule 3).
    pub fn allows(&self, device: DeviceId) -> bool {
        self.devices().contains(&device)
    }

    /// §15.3 rule 2: the list in `bytes`, as the relay served it for
    /// `account`, if it decodes, names `account`, verifies strictly under
    /// the `pinned` identity and is newer than the one held. On success the
    /// caller stores the returned value in place of `self`; on any error it
    /// keeps `self` (and reports a [`DeviceListError::BadSignature`] or
    /// [`DeviceListError::NotNewer`] below the held version as relay
    /// misbehaviour).
    pub fn accept(
        &self,
        account: &AccountId,
        pinned: &IdentityPublic,
        bytes: &[u8],
    ) -> Result<HeldDeviceList, DeviceListError> {
        let list = DeviceList::decode(bytes)?;
        if list.account() != account {
            return Err(DeviceListError::WrongAccount);
        }
        list.verify(pinned)?;
        if list.version() <= self.version() {
            return Err(DeviceListError::NotNewer {
                held: self.version(),
                got: list.version(),
            });
        }
        Ok(Self::Verified(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn ids(v: &[u32]) -> Vec<DeviceId> {
        v.iter().copied().map(DeviceId).collect()
    }

    #[test]
    fn accepts_only_newer_lists_signed_by_the_pinned_identity() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let owner = IdentityKeyPair::generate(&mut rng);
        let relay = IdentityKeyPair::generate(&mut rng);
        let account = AccountId::from_bytes([0xa1; 16]);
        let held = HeldDeviceList::Implicit;
        assert!(held.allows(DeviceId(1)) && !held.allows(DeviceId(2)));

        let v2 = sign_device_list(&owner, account, 2, ids(&[1, 2])).unwrap();
        let held = held
            .accept(&account, &owner.public(), &v2.encode())
            .unwrap();
        assert!(held.allows(DeviceId(2)));

        // A relay adding device 3 cannot sign with the owner's identity.
        let injected = sign_device_list(&relay, account, 3, ids(&[1, 2, 3])).unwrap();
        assert_eq!(
            held.accept(&account, &owner.public(), &injected.encode()),
            Err(DeviceListError::BadSignature)
        );
        // The owner's own list, served for another account.
        let other = AccountId::from_bytes([0xb0; 16]);
        assert_eq!(
            held.accept(&other, &owner.public(), &v2.encode()),
            Err(DeviceListError::WrongAccount)
        );

        // Device 2 removed in version 3; re-serving version 2 revives nothing.
        let v3 = sign_device_list(&owner, account, 3, ids(&[1])).unwrap();
        let held = held
            .accept(&account, &owner.public(), &v3.encode())
            .unwrap();
        assert!(!held.allows(DeviceId(2)));
        assert_eq!(
            held.accept(&account, &owner.public(), &v2.encode()),
            Err(DeviceListError::NotNewer { held: 3, got: 2 })
        );
        assert_eq!(
            held.accept(&account, &owner.public(), &v3.encode()),
            Err(DeviceListError::NotNewer { held: 3, got: 3 })
        );

        // One flipped bit anywhere in the signed part breaks the signature.
        let mut flipped = v3.encode();
        flipped[20] ^= 1;
        assert_eq!(
            HeldDeviceList::Implicit.accept(&account, &owner.public(), &flipped),
            Err(DeviceListError::BadSignature)
        );
    }
}
