//! Who a message is for: an account and one of its devices.
//!
//! Addresses are per device from the first wire version so that adding a
//! second device later needs neither a wire break nor a queue migration.
//! An [`AccountId`] is random and never changes (usernames can); a
//! [`DeviceId`] is small and assigned by the relay, starting at
//! [`DeviceId::PRIMARY`].
//!
//! Must never: derive an account id from a username or anything guessable.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// Length of an [`AccountId`] in bytes.
pub const ACCOUNT_ID_LEN: usize = 16;

/// A random, immutable account identifier (16 bytes on the wire, as a
/// length-prefixed byte string).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountId(#[serde(with = "crate::keys::serde_bytes_array")] [u8; ACCOUNT_ID_LEN]);

impl AccountId {
    /// Draws a fresh id; collisions are negligible at 128 bits.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; ACCOUNT_ID_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps bytes read from storage or the wire.
    pub const fn from_bytes(bytes: [u8; ACCOUNT_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses an id from a slice of exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The 16 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; ACCOUNT_ID_LEN] {
        &self.0
    }

    /// Lower-case hex, the form used in logs and file names.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the 32-character lower- or upper-case hex form.
    pub fn from_hex(text: &str) -> Option<Self> {
        crate::hex_array(text).map(Self)
    }
}

impl std::str::FromStr for AccountId {
    type Err = InvalidAccountId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s).ok_or(InvalidAccountId)
    }
}

/// A string that is not the 32-hex-digit form of an [`AccountId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an account id is 32 hexadecimal digits")]
pub struct InvalidAccountId;

impl std::fmt::Debug for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountId({})", self.to_hex())
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One device of an account (a postcard varint `u32` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceId(pub u32);

impl DeviceId {
    /// The first (and, for now, only) device of every account. Device 0 is
    /// never assigned.
    pub const PRIMARY: DeviceId = DeviceId(1);
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where the relay delivers: one device of one account. Encoded as
/// `account` then `device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address {
    /// The account.
    pub account: AccountId,
    /// The device within it.
    pub device: DeviceId,
}

impl Address {
    /// The address of an account's primary device.
    pub const fn primary(account: AccountId) -> Self {
        Self {
            account,
            device: DeviceId::PRIMARY,
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.account, self.device)
    }
}
