//! Prekeys as the relay stores and hands them out.
//!
//! The relay is a directory: it keeps what clients publish and serves it to
//! whoever wants to start a session, without needing to understand it beyond
//! the signed prekey's signature check. Identity keys therefore travel as an
//! opaque byte string (the identity module's encoding); prekey public keys
//! are X25519 [`PublicKey`]s.
//!
//! Must never: carry a private key.

use serde::{Deserialize, Serialize};

use super::address::{AccountId, DeviceId};
use crate::keys::PublicKey;

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// A one-time or last-resort prekey: `id` (varint u32), then `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreKeyWire {
    /// Identifier chosen by the owner, unique per device and kind.
    pub id: u32,
    /// The X25519 public key.
    pub key: PublicKey,
}

/// The medium-term signed prekey: `id`, `created_at` (Unix seconds),
/// `key`, `signature` (64-byte Ed25519 signature by the identity key over
/// the encoding the prekeys module defines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPreKeyWire {
    /// Identifier chosen by the owner.
    pub id: u32,
    /// When the owner created it, in Unix seconds.
    pub created_at: u64,
    /// The X25519 public key.
    pub key: PublicKey,
    /// Signature by the owner's identity key.
    #[serde(with = "crate::keys::serde_bytes_array")]
    pub signature: [u8; SIGNATURE_LEN],
}

/// A signed ML-KEM-768 prekey (docs/PROTOCOL.md 3.9): `id` (varint u32),
/// `created_at` (varint u64, Unix seconds), `key` (byte string, exactly
/// `KEM_PREKEY_KEY_LEN` bytes), `signature` (64 bytes). Whether it is a
/// one-time or the last-resort key is given by where it travels, and is
/// also covered by the signature, so a relay cannot serve one as the other.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KemPreKeyWire {
    /// Identifier chosen by the owner, unique per device and kind.
    pub id: u32,
    /// When the owner created it, in Unix seconds.
    pub created_at: u64,
    /// The ML-KEM-768 encapsulation key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// Signature by the owner's identity key.
    #[serde(with = "crate::keys::serde_bytes_array")]
    pub signature: [u8; SIGNATURE_LEN],
}

impl std::fmt::Debug for KemPreKeyWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KemPreKeyWire")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("key_len", &self.key.len())
            .finish_non_exhaustive()
    }
}

/// A bundle for a hybrid (PQXDH) session: the classical bundle plus the
/// device's ML-KEM prekeys. A one-time KEM prekey is handed out at most
/// once; the last-resort KEM prekey is always included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HybridBundleWire {
    /// The X25519 part, exactly as `Bundle` serves it.
    pub bundle: PreKeyBundleWire,
    /// A one-time ML-KEM prekey, consumed by this fetch, if any were left.
    pub kem_one_time: Option<KemPreKeyWire>,
    /// The signed last-resort ML-KEM prekey, if the device published one.
    pub kem_last_resort: Option<KemPreKeyWire>,
}

/// Everything needed to start a session with one device, as the relay
/// serves it. A one-time prekey is handed out at most once; the initiator
/// falls back to the last-resort prekey only when none was left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreKeyBundleWire {
    /// Whose bundle this is.
    pub account: AccountId,
    /// Which device of the account.
    pub device: DeviceId,
    /// The identity public key, in the identity module's encoding.
    #[serde(with = "serde_bytes")]
    pub identity: Vec<u8>,
    /// The current signed prekey.
    pub signed_prekey: SignedPreKeyWire,
    /// A one-time prekey, consumed by this fetch, if any were left.
    pub one_time_prekey: Option<PreKeyWire>,
    /// The last-resort prekey, if the device published one; always included
    /// so the initiator never has to ask twice.
    pub last_resort: Option<PreKeyWire>,
}
