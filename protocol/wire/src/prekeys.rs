//! The public halves of prekeys, their signature check, the directory's
//! counts, and the one conversion between them and their wire encoding.
//!
//! The signed prekey is signed by the owner's identity (label
//! [`labels::SIGNED_PREKEY`]) over its id, creation time and key; the relay
//! verifies that signature before publishing one, so the check lives here.
//! One-time and last-resort prekeys are unsigned (as in Signal). The private
//! halves, and bundle verification for an initiator, are in umbra-protocol.
//!
//! Must never: hold a private key, or accept a non-strict signature.

use serde::{Deserialize, Serialize};

use crate::identity::{IdentityError, IdentityPublic, Signature};
use crate::keys::PublicKey;
use crate::labels;
use crate::{PreKeyWire, SignedPreKeyWire};

/// A client replaces its signed prekey after this long (2 days).
pub const SIGNED_PREKEY_ROTATION_SECS: u64 = 2 * 24 * 60 * 60;
/// An initiator refuses a signed prekey older than this (14 days).
pub const SIGNED_PREKEY_MAX_AGE_SECS: u64 = 14 * 24 * 60 * 60;
/// Clock skew tolerated for a signed prekey's creation time (1 hour).
pub const SIGNED_PREKEY_MAX_FUTURE_SECS: u64 = 60 * 60;
/// Most one-time prekeys in one upload (Signal's limit): the wire limit
/// itself, under the name the prekey code has always used.
pub const ONE_TIME_PREKEY_BATCH_MAX: usize = crate::limits::ONE_TIME_PREKEYS_PER_UPLOAD_MAX;
/// A client uploads a new batch when the relay holds fewer than this; the
/// relay's default `prekey_low_water` notice threshold is the same number.
pub const ONE_TIME_PREKEY_LOW_WATER: usize = 20;

/// Why a prekey bundle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PreKeyError {
    /// The bundle's identity binding does not verify.
    #[error("bundle identity is invalid: {0}")]
    Identity(#[from] IdentityError),
    /// The signed prekey's signature does not verify under the identity.
    #[error("signed prekey signature does not verify under the bundle identity")]
    BadSignedPreKeySignature,
    /// The signed prekey is older than [`SIGNED_PREKEY_MAX_AGE_SECS`].
    #[error("signed prekey created at {created_at} is too old at {now}")]
    SignedPreKeyExpired {
        /// The prekey's creation time (unix seconds).
        created_at: u64,
        /// The time of the check (unix seconds).
        now: u64,
    },
    /// The signed prekey claims to be created in the future.
    #[error("signed prekey created at {created_at} is in the future at {now}")]
    SignedPreKeyFromFuture {
        /// The prekey's creation time (unix seconds).
        created_at: u64,
        /// The time of the check (unix seconds).
        now: u64,
    },
    /// The bundle carries no ML-KEM prekey: a classical-only bundle, which
    /// umbra refuses instead of silently starting a session a quantum
    /// attacker could later read (docs/PROTOCOL.md 1.4). The peer's client
    /// predates post-quantum prekeys, or the relay stripped them.
    #[error("bundle has no ML-KEM prekey; a classical-only session is refused")]
    NoKemPreKey,
    /// A KEM prekey's signature does not verify under the bundle identity
    /// (also a one-time key served as the last-resort one, or the reverse).
    #[error("ML-KEM prekey signature does not verify under the bundle identity")]
    BadKemPreKeySignature,
    /// A KEM prekey is not 1184 bytes.
    #[error("ML-KEM prekey is {actual} bytes; it must be 1184")]
    BadKemPreKeyLength {
        /// Its length.
        actual: usize,
    },
    /// A KEM prekey fails FIPS 203's encapsulation-key check.
    #[error("ML-KEM prekey fails the FIPS 203 modulus check")]
    InvalidKemPreKey,
    /// The last-resort KEM prekey is older than
    /// [`SIGNED_PREKEY_MAX_AGE_SECS`] (it rotates with the signed prekey,
    /// so it has the same limit). The owner's device has not refreshed its
    /// keys, or the relay serves an old one.
    #[error("last-resort ML-KEM prekey created at {created_at} is too old at {now}")]
    KemPreKeyExpired {
        /// The prekey's creation time (unix seconds).
        created_at: u64,
        /// The time of the check (unix seconds).
        now: u64,
    },
    /// The last-resort KEM prekey claims to be created more than
    /// [`SIGNED_PREKEY_MAX_FUTURE_SECS`] in the future.
    #[error("last-resort ML-KEM prekey created at {created_at} is in the future at {now}")]
    KemPreKeyFromFuture {
        /// The prekey's creation time (unix seconds).
        created_at: u64,
        /// The time of the check (unix seconds).
        now: u64,
    },
}

/// The bytes a signed-prekey signature covers (after the label):
/// `u32be(id) || u64be(created_at) || x25519_public (32)`.
pub fn signed_prekey_message(id: u32, created_at: u64, key: &PublicKey) -> [u8; 44] {
    let mut out = [0u8; 44];
    out[..4].copy_from_slice(&id.to_be_bytes());
    out[4..12].copy_from_slice(&created_at.to_be_bytes());
    out[12..].copy_from_slice(key.as_bytes());
    out
}

/// The public half of a signed prekey, as uploaded and served in bundles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPreKeyPublic {
    /// Owner-chosen id.
    pub id: u32,
    /// Creation time, unix seconds.
    pub created_at: u64,
    /// The X25519 public key.
    pub key: PublicKey,
    /// Identity signature over [`signed_prekey_message`].
    #[serde(with = "crate::identity::serde_signature")]
    pub signature: Signature,
}

impl SignedPreKeyPublic {
    /// Strictly verifies the signature under `identity`.
    pub fn verify(&self, identity: &IdentityPublic) -> Result<(), PreKeyError> {
        identity
            .verify_signature(
                labels::SIGNED_PREKEY,
                &signed_prekey_message(self.id, self.created_at, &self.key),
                &self.signature,
            )
            .map_err(|_| PreKeyError::BadSignedPreKeySignature)
    }
}

/// The public half of a one-time or last-resort prekey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimePreKeyPublic {
    /// Owner-chosen id.
    pub id: u32,
    /// The X25519 public key.
    pub key: PublicKey,
}

// The one place the key types and their wire encodings meet. Both
// directions are lossless: the wire form keeps the signature as its 64
// bytes, and ed25519-dalek 2 parses any 64 bytes as a `Signature` (its
// scalar is checked when verifying, not here).

impl From<&SignedPreKeyPublic> for SignedPreKeyWire {
    fn from(public: &SignedPreKeyPublic) -> Self {
        Self {
            id: public.id,
            created_at: public.created_at,
            key: public.key,
            signature: public.signature.to_bytes(),
        }
    }
}

impl From<SignedPreKeyPublic> for SignedPreKeyWire {
    fn from(public: SignedPreKeyPublic) -> Self {
        Self::from(&public)
    }
}

impl From<&SignedPreKeyWire> for SignedPreKeyPublic {
    fn from(wire: &SignedPreKeyWire) -> Self {
        Self {
            id: wire.id,
            created_at: wire.created_at,
            key: wire.key,
            signature: Signature::from_bytes(&wire.signature),
        }
    }
}

impl From<SignedPreKeyWire> for SignedPreKeyPublic {
    fn from(wire: SignedPreKeyWire) -> Self {
        Self::from(&wire)
    }
}

impl From<OneTimePreKeyPublic> for PreKeyWire {
    fn from(public: OneTimePreKeyPublic) -> Self {
        Self {
            id: public.id,
            key: public.key,
        }
    }
}

impl From<PreKeyWire> for OneTimePreKeyPublic {
    fn from(wire: PreKeyWire) -> Self {
        Self {
            id: wire.id,
            key: wire.key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::domain_separated;
    use ed25519_dalek::{Signer, SigningKey};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn signed(signing: &SigningKey, id: u32, created_at: u64) -> SignedPreKeyPublic {
        let key = PublicKey::from_bytes([id as u8; 32]);
        let msg = signed_prekey_message(id, created_at, &key);
        SignedPreKeyPublic {
            id,
            created_at,
            key,
            signature: signing.sign(&domain_separated(labels::SIGNED_PREKEY, &msg)),
        }
    }

    fn identity(signing: &SigningKey) -> IdentityPublic {
        let dh = PublicKey::from_bytes([9; 32]);
        let binding = signing.sign(&domain_separated(labels::IDENTITY_BINDING, dh.as_bytes()));
        IdentityPublic::from_parts(signing.verifying_key(), dh, binding)
    }

    #[test]
    fn signed_prekey_verifies_only_under_its_identity_and_fields() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let alice = SigningKey::generate(&mut rng);
        let mallory = SigningKey::generate(&mut rng);
        let spk = signed(&alice, 7, 1_700_000_000);
        assert_eq!(spk.verify(&identity(&alice)), Ok(()));
        assert_eq!(
            spk.verify(&identity(&mallory)),
            Err(PreKeyError::BadSignedPreKeySignature)
        );
        for tamper in [
            |s: &mut SignedPreKeyPublic| s.id ^= 1,
            |s: &mut SignedPreKeyPublic| s.created_at += 1,
            |s: &mut SignedPreKeyPublic| s.key = PublicKey::from_bytes([0xee; 32]),
        ] {
            let mut bad = spk.clone();
            tamper(&mut bad);
            assert_eq!(
                bad.verify(&identity(&alice)),
                Err(PreKeyError::BadSignedPreKeySignature)
            );
        }
    }

    #[test]
    fn wire_conversions_are_lossless_and_keep_the_signature_valid() {
        let alice = SigningKey::generate(&mut ChaCha20Rng::seed_from_u64(8));
        let spk = signed(&alice, 3, 42);
        let wire = SignedPreKeyWire::from(&spk);
        assert_eq!(wire.signature, spk.signature.to_bytes());
        assert_eq!(wire.created_at, 42);
        let back = SignedPreKeyPublic::from(wire);
        assert_eq!(back, spk);
        assert_eq!(back.verify(&identity(&alice)), Ok(()));
        // The two serde encodings are the same bytes, so a vector of one is
        // a vector of the other.
        assert_eq!(
            postcard::to_stdvec(&spk).unwrap(),
            postcard::to_stdvec(&wire).unwrap()
        );

        let otk = OneTimePreKeyPublic {
            id: 5,
            key: PublicKey::from_bytes([5; 32]),
        };
        let wire = PreKeyWire::from(otk);
        assert_eq!((wire.id, wire.key), (otk.id, otk.key));
        assert_eq!(OneTimePreKeyPublic::from(wire), otk);
    }
}
