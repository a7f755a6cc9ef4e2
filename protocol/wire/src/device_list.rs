//! The signed device list of an account (docs/PROTOCOL.md §15.2): which
//! devices senders may encrypt to, signed by the account identity.
//!
//! Every device of an account holds the same identity, and a signed prekey
//! does not name its device, so a relay that could say on its own which
//! devices an account has could add one of its own or keep a removed one
//! receiving. The account signs this list instead; senders accept a list
//! only if it verifies under the identity they pinned and its version is
//! higher than the one they hold (§15.3). The relay may run the same
//! signature check before storing one (§15.4), which is why the encoding
//! and the check live here and only the signing, which needs the private
//! identity, is in umbra-protocol (`device_list`).
//!
//! Must never: accept a list that breaks the encoding rules (a decoded list
//! always re-encodes to the same bytes), or call a list valid without
//! `verify_strict` of its signature.

use crate::address::{AccountId, DeviceId, ACCOUNT_ID_LEN};
use crate::identity::{verify_labelled, IdentityPublic, Signature};
use crate::labels;
use crate::limits::{MAX_DEVICES_PER_ACCOUNT, MAX_DEVICE_LIST_BYTES};

/// The format byte this code writes and reads.
pub const DEVICE_LIST_FORMAT: u8 = 0x01;
/// `format (1) || account (16) || version (8) || count (1)`.
pub const DEVICE_LIST_HEADER_LEN: usize = 1 + ACCOUNT_ID_LEN + 8 + 1;
/// Bytes of the Ed25519 signature at the end.
pub const DEVICE_LIST_SIGNATURE_LEN: usize = 64;

/// Why bytes are not a device list, or a list is not the account's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceListError {
    /// Shorter than the fixed header.
    #[error("device list of {len} bytes is shorter than its {DEVICE_LIST_HEADER_LEN}-byte header")]
    Truncated {
        /// Bytes supplied.
        len: usize,
    },
    /// A format byte this version does not read.
    #[error("device list format {0:#04x} is not supported")]
    UnknownFormat(u8),
    /// Version 0, which only the implicit list of §15.3 has.
    #[error("device list version 0 is reserved for the implicit list")]
    ZeroVersion,
    /// No devices, or more than an account may have.
    #[error("device list names {count} devices; 1 to {MAX_DEVICES_PER_ACCOUNT} are allowed")]
    BadCount {
        /// The count given.
        count: usize,
    },
    /// The length does not match the count.
    #[error("device list of {actual} bytes; its count requires {expected}")]
    BadLength {
        /// Bytes supplied.
        actual: usize,
        /// `90 + 4 × count`.
        expected: usize,
    },
    /// Device id 0, which is never assigned.
    #[error("device list names device 0")]
    ZeroDevice,
    /// Ids not strictly ascending (so possibly repeated).
    #[error("device list ids are not strictly ascending")]
    NotAscending,
    /// The signature does not verify under the identity given.
    #[error("device list signature does not verify under the account identity")]
    BadSignature,
    /// The list names another account than the one asked about.
    #[error("device list names another account")]
    WrongAccount,
    /// Not newer than the list already held (a rollback, or a repeat).
    #[error("device list version {got} is not above the version {held} already held")]
    NotNewer {
        /// The version already held.
        held: u64,
        /// The version offered.
        got: u64,
    },
}

/// A decoded device list. Decoding checks the encoding only; call
/// [`DeviceList::verify`] (or umbra-protocol's sender rule) before trusting it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceList {
    account: AccountId,
    version: u64,
    devices: Vec<DeviceId>,
    signature: Signature,
}

impl DeviceList {
    /// The bytes the signature covers (everything before it, §15.2) for these
    /// fields, after checking them as decoding would.
    pub fn signed_bytes(
        account: &AccountId,
        version: u64,
        devices: &[DeviceId],
    ) -> Result<Vec<u8>, DeviceListError> {
        check_fields(version, devices)?;
        Ok(encode_fields(account, version, devices))
    }

    /// Assembles a list from its fields and a signature over
    /// [`DeviceList::signed_bytes`], checking the fields (not the signature).
    pub fn from_parts(
        account: AccountId,
        version: u64,
        devices: Vec<DeviceId>,
        signature: Signature,
    ) -> Result<Self, DeviceListError> {
        check_fields(version, &devices)?;
        Ok(Self {
            account,
            version,
            devices,
            signature,
        })
    }

    /// Parses the exact encoding of §15.2, refusing in the order it lists.
    pub fn decode(bytes: &[u8]) -> Result<Self, DeviceListError> {
        if bytes.len() < DEVICE_LIST_HEADER_LEN {
            return Err(DeviceListError::Truncated { len: bytes.len() });
        }
        let (header, rest) = bytes.split_at(DEVICE_LIST_HEADER_LEN);
        if header[0] != DEVICE_LIST_FORMAT {
            return Err(DeviceListError::UnknownFormat(header[0]));
        }
        let mut account = [0u8; ACCOUNT_ID_LEN];
        account.copy_from_slice(&header[1..1 + ACCOUNT_ID_LEN]);
        let mut version = [0u8; 8];
        version.copy_from_slice(&header[1 + ACCOUNT_ID_LEN..1 + ACCOUNT_ID_LEN + 8]);
        let version = u64::from_be_bytes(version);
        if version == 0 {
            return Err(DeviceListError::ZeroVersion);
        }
        let count = usize::from(header[DEVICE_LIST_HEADER_LEN - 1]);
        if count == 0 || count > MAX_DEVICES_PER_ACCOUNT {
            return Err(DeviceListError::BadCount { count });
        }
        let expected = DEVICE_LIST_HEADER_LEN + 4 * count + DEVICE_LIST_SIGNATURE_LEN;
        if bytes.len() != expected {
            return Err(DeviceListError::BadLength {
                actual: bytes.len(),
                expected,
            });
        }
        let (ids, signature) = rest.split_at(4 * count);
        let devices: Vec<DeviceId> = ids
            .chunks_exact(4)
            .map(|c| DeviceId(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        let signature =
            Signature::from_slice(signature).map_err(|_| DeviceListError::BadSignature)?;
        Self::from_parts(AccountId::from_bytes(account), version, devices, signature)
    }

    /// The encoding of §15.2: [`DeviceList::signed_bytes`] then the signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_part();
        out.extend_from_slice(&self.signature.to_bytes());
        debug_assert!(out.len() <= MAX_DEVICE_LIST_BYTES);
        out
    }

    /// Strictly verifies the signature under `identity` (the account's).
    pub fn verify(&self, identity: &IdentityPublic) -> Result<(), DeviceListError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&identity.signing_key_bytes())
            .map_err(|_| DeviceListError::BadSignature)?;
        if verify_labelled(
            &key,
            labels::DEVICE_LIST,
            &self.signed_part(),
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(DeviceListError::BadSignature)
        }
    }

    /// The account the list is for.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The list's version (at least 1).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The devices, strictly ascending.
    pub fn devices(&self) -> &[DeviceId] {
        &self.devices
    }

    /// Whether `device` is one of the list's devices.
    pub fn contains(&self, device: DeviceId) -> bool {
        self.devices.binary_search(&device).is_ok()
    }

    fn signed_part(&self) -> Vec<u8> {
        encode_fields(&self.account, self.version, &self.devices)
    }
}

/// `format || account || u64be(version) || count || u32be(id)…`, for fields
/// already checked by [`check_fields`] (so the count fits one byte).
fn encode_fields(account: &AccountId, version: u64, devices: &[DeviceId]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_DEVICE_LIST_BYTES);
    out.push(DEVICE_LIST_FORMAT);
    out.extend_from_slice(account.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.push(devices.len() as u8);
    for device in devices {
        out.extend_from_slice(&device.0.to_be_bytes());
    }
    out
}

/// The field rules of §15.2 that do not depend on the byte length.
fn check_fields(version: u64, devices: &[DeviceId]) -> Result<(), DeviceListError> {
    if version == 0 {
        return Err(DeviceListError::ZeroVersion);
    }
    if devices.is_empty() || devices.len() > MAX_DEVICES_PER_ACCOUNT {
        return Err(DeviceListError::BadCount {
            count: devices.len(),
        });
    }
    if devices.iter().any(|d| d.0 == 0) {
        return Err(DeviceListError::ZeroDevice);
    }
    if devices.windows(2).any(|w| w[0] >= w[1]) {
        return Err(DeviceListError::NotAscending);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(devices: &[u32]) -> Result<DeviceList, DeviceListError> {
        DeviceList::from_parts(
            AccountId::from_bytes([7; 16]),
            3,
            devices.iter().copied().map(DeviceId).collect(),
            Signature::from_bytes(&[0; 64]),
        )
    }

    #[test]
    fn field_rules() {
        assert!(list(&[1, 2, 9]).is_ok());
        assert_eq!(list(&[]), Err(DeviceListError::BadCount { count: 0 }));
        assert_eq!(
            list(&[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            Err(DeviceListError::BadCount { count: 9 })
        );
        assert_eq!(list(&[0, 1]), Err(DeviceListError::ZeroDevice));
        assert_eq!(list(&[1, 1]), Err(DeviceListError::NotAscending));
        assert_eq!(list(&[2, 1]), Err(DeviceListError::NotAscending));
    }

    #[test]
    fn round_trip_and_length() {
        let l = list(&[1, 4]).unwrap();
        let bytes = l.encode();
        assert_eq!(bytes.len(), 90 + 4 * 2);
        assert_eq!(DeviceList::decode(&bytes), Ok(l));
        let full = list(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap().encode();
        assert_eq!(full.len(), MAX_DEVICE_LIST_BYTES);
    }

    #[test]
    fn decode_refusals_in_order() {
        let good = list(&[1, 4]).unwrap().encode();
        assert_eq!(
            DeviceList::decode(&good[..25]),
            Err(DeviceListError::Truncated { len: 25 })
        );
        let mut b = good.clone();
        b[0] = 2;
        assert_eq!(
            DeviceList::decode(&b),
            Err(DeviceListError::UnknownFormat(2))
        );
        let mut b = good.clone();
        b[17..25].copy_from_slice(&[0; 8]);
        assert_eq!(DeviceList::decode(&b), Err(DeviceListError::ZeroVersion));
        let mut b = good.clone();
        b[25] = 9;
        assert_eq!(
            DeviceList::decode(&b),
            Err(DeviceListError::BadCount { count: 9 })
        );
        assert_eq!(
            DeviceList::decode(&good[..good.len() - 1]),
            Err(DeviceListError::BadLength {
                actual: 97,
                expected: 98
            })
        );
        let mut b = good.clone();
        b.push(0);
        assert!(matches!(
            DeviceList::decode(&b),
            Err(DeviceListError::BadLength { .. })
        ));
    }
}
