//! Long-term identities: an Ed25519 signing key bound to an X25519 key.
//!
//! An identity is two keys, never one key used in two algorithms (no
//! XEdDSA): the Ed25519 key signs, the X25519 key does Diffie-Hellman, and
//! the Ed25519 key signs a domain-separated encoding of the X25519 public key
//! (the *binding signature*) so that nobody can pair someone else's signing
//! key with their own DH key. Every signature made through this module is
//! prefixed with a label from [`crate::labels`].
//!
//! Must never: accept a binding or signature that fails `verify_strict`,
//! print private key bytes in `Debug`, or keep private bytes after drop.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::{PublicKey, SecretKey};
use crate::labels;

pub use ed25519_dalek::Signature;

/// Length of [`IdentityPublic::to_bytes`]: Ed25519 key, X25519 key, binding.
pub const IDENTITY_PUBLIC_LEN: usize = 32 + 32 + 64;

/// Why an identity or a signature by one was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The encoded public identity had the wrong length.
    #[error("public identity has {actual} bytes, expected {IDENTITY_PUBLIC_LEN}")]
    BadLength {
        /// Length that was supplied.
        actual: usize,
    },
    /// The 32 signing-key bytes are not a valid Ed25519 point.
    #[error("identity signing key is not a valid Ed25519 public key")]
    InvalidSigningKey,
    /// The signature binding the X25519 key to the signing key is invalid.
    #[error("identity binding signature does not verify")]
    InvalidBinding,
    /// A signature claimed to be by this identity does not verify.
    #[error("signature does not verify under this identity")]
    InvalidSignature,
}

/// The bytes an umbra Ed25519 signature actually covers:
/// `u64be(len(label)) || label || msg`. The length prefix keeps two
/// (label, message) pairs from ever encoding to the same signed bytes.
pub(crate) fn domain_separated(label: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + label.len() + msg.len());
    out.extend_from_slice(&(label.len() as u64).to_be_bytes());
    out.extend_from_slice(label);
    out.extend_from_slice(msg);
    out
}

/// Signs `msg` under `label` with a raw Ed25519 key (identities and group
/// sender keys share this construction).
pub(crate) fn sign_labelled(key: &SigningKey, label: &[u8], msg: &[u8]) -> Signature {
    key.sign(&domain_separated(label, msg))
}

/// Strictly verifies a signature made by [`sign_labelled`].
pub(crate) fn verify_labelled(
    key: &VerifyingKey,
    label: &[u8],
    msg: &[u8],
    sig: &Signature,
) -> bool {
    key.verify_strict(&domain_separated(label, msg), sig)
        .is_ok()
}

/// serde helper: an Ed25519 signature as a 64-byte byte string (postcard:
/// `40` then 64 bytes), the encoding every fixed array in umbra uses.
pub(crate) mod serde_signature {
    use super::Signature;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &Signature, s: S) -> Result<S::Ok, S::Error> {
        crate::keys::serde_bytes_array::serialize(&sig.to_bytes(), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        let bytes: [u8; 64] = crate::keys::serde_bytes_array::deserialize(d)?;
        Ok(Signature::from_bytes(&bytes))
    }
}

/// A private identity. Zeroized on drop; `Debug` shows only the public half.
///
/// Serialized (for the client's encrypted store) as the two 32-byte private
/// keys; the public identity and binding are recomputed on load.
pub struct IdentityKeyPair {
    signing: SigningKey,
    dh: SecretKey,
    public: IdentityPublic,
}

impl IdentityKeyPair {
    /// Draws a new identity: 32 bytes for the Ed25519 seed, then 32 for the
    /// X25519 key, from `rng` in that order.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let signing = SigningKey::generate(rng);
        let dh = SecretKey::generate(rng);
        Self::from_parts(signing, dh)
    }

    fn from_parts(signing: SigningKey, dh: SecretKey) -> Self {
        let dh_public = dh.public_key();
        let binding = sign_labelled(&signing, labels::IDENTITY_BINDING, dh_public.as_bytes());
        let public = IdentityPublic {
            signing: signing.verifying_key(),
            dh: dh_public,
            binding,
        };
        Self {
            signing,
            dh,
            public,
        }
    }

    /// The public identity (keys plus binding signature).
    pub fn public(&self) -> IdentityPublic {
        self.public.clone()
    }

    /// The X25519 private key, for X3DH and sealed sender.
    pub fn dh_secret(&self) -> &SecretKey {
        &self.dh
    }

    /// Ed25519 signature over `u64be(len(label)) || label || msg`.
    pub fn sign(&self, label: &[u8], msg: &[u8]) -> Signature {
        sign_labelled(&self.signing, label, msg)
    }
}

impl std::fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Storage form of [`IdentityKeyPair`]: only private bytes, wiped on drop.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct StoredIdentity {
    #[serde(with = "crate::keys::serde_bytes_array")]
    signing_seed: [u8; 32],
    #[serde(with = "crate::keys::serde_bytes_array")]
    dh_secret: [u8; 32],
}

impl Serialize for IdentityKeyPair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredIdentity {
            signing_seed: self.signing.to_bytes(),
            dh_secret: self.dh.to_bytes(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for IdentityKeyPair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredIdentity::deserialize(d)?;
        Ok(Self::from_parts(
            SigningKey::from_bytes(&stored.signing_seed),
            SecretKey::from_bytes(stored.dh_secret),
        ))
    }
}

/// A public identity: Ed25519 key, X25519 key, binding signature.
///
/// Parsing ([`IdentityPublic::from_bytes`], serde) only checks the encoding;
/// call [`IdentityPublic::verify`] before trusting one received from a peer.
/// Serialized as one 128-byte string (see [`IdentityPublic::to_bytes`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IdentityPublic {
    signing: VerifyingKey,
    dh: PublicKey,
    binding: Signature,
}

impl IdentityPublic {
    /// Strictly verifies the binding signature of the X25519 key.
    pub fn verify(&self) -> Result<(), IdentityError> {
        if verify_labelled(
            &self.signing,
            labels::IDENTITY_BINDING,
            self.dh.as_bytes(),
            &self.binding,
        ) {
            Ok(())
        } else {
            Err(IdentityError::InvalidBinding)
        }
    }

    /// The X25519 key-agreement key.
    pub fn dh_key(&self) -> &PublicKey {
        &self.dh
    }

    /// The 32-byte Ed25519 signing key.
    pub fn signing_key_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Strictly verifies `sig` over `u64be(len(label)) || label || msg`.
    pub fn verify_signature(
        &self,
        label: &[u8],
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), IdentityError> {
        if verify_labelled(&self.signing, label, msg, sig) {
            Ok(())
        } else {
            Err(IdentityError::InvalidSignature)
        }
    }

    /// `ed25519_public (32) || x25519_public (32) || binding_signature (64)`.
    pub fn to_bytes(&self) -> [u8; IDENTITY_PUBLIC_LEN] {
        let mut out = [0u8; IDENTITY_PUBLIC_LEN];
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..64].copy_from_slice(self.dh.as_bytes());
        out[64..].copy_from_slice(&self.binding.to_bytes());
        out
    }

    /// The 64 key bytes without the binding signature (what safety numbers
    /// cover, because only the keys, not one particular signature, are the
    /// identity).
    pub fn key_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(self.dh.as_bytes());
        out
    }

    /// Parses the 128-byte encoding. Does not verify the binding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let arr: &[u8; IDENTITY_PUBLIC_LEN] =
            bytes.try_into().map_err(|_| IdentityError::BadLength {
                actual: bytes.len(),
            })?;
        let (signing, rest) = arr.split_at(32);
        let (dh, binding) = rest.split_at(32);
        let signing =
            VerifyingKey::try_from(signing).map_err(|_| IdentityError::InvalidSigningKey)?;
        let dh = PublicKey::from_slice(dh).map_err(|_| IdentityError::BadLength {
            actual: bytes.len(),
        })?;
        let binding = Signature::from_slice(binding).map_err(|_| IdentityError::InvalidBinding)?;
        Ok(Self {
            signing,
            dh,
            binding,
        })
    }
}

impl ConstantTimeEq for IdentityPublic {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.to_bytes().ct_eq(&other.to_bytes())
    }
}

impl Serialize for IdentityPublic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for IdentityPublic {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: [u8; IDENTITY_PUBLIC_LEN] = crate::keys::serde_bytes_array::deserialize(d)?;
        Self::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn fresh_identity_verifies_and_roundtrips() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let public = id.public();
        public.verify().unwrap();
        let parsed = IdentityPublic::from_bytes(&public.to_bytes()).unwrap();
        assert_eq!(parsed, public);
        assert!(bool::from(parsed.ct_eq(&public)));
        let encoded = postcard::to_stdvec(&public).unwrap();
        assert_eq!(
            postcard::from_bytes::<IdentityPublic>(&encoded).unwrap(),
            public
        );
    }

    #[test]
    fn keypair_storage_roundtrip_keeps_identity() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let stored = postcard::to_stdvec(&id).unwrap();
        let loaded: IdentityKeyPair = postcard::from_bytes(&stored).unwrap();
        assert_eq!(loaded.public(), id.public());
        assert_eq!(loaded.dh_secret().to_bytes(), id.dh_secret().to_bytes());
    }

    #[test]
    fn swapped_dh_key_breaks_binding() {
        let a = IdentityKeyPair::generate(&mut OsRng).public();
        let b = IdentityKeyPair::generate(&mut OsRng).public();
        let mut mixed = a.to_bytes();
        mixed[32..64].copy_from_slice(b.dh_key().as_bytes());
        let mixed = IdentityPublic::from_bytes(&mixed).unwrap();
        assert_eq!(mixed.verify(), Err(IdentityError::InvalidBinding));
    }

    #[test]
    fn signatures_are_label_bound() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let sig = id.sign(labels::SIGNED_PREKEY, b"msg");
        let public = id.public();
        public
            .verify_signature(labels::SIGNED_PREKEY, b"msg", &sig)
            .unwrap();
        assert_eq!(
            public.verify_signature(labels::IDENTITY_BINDING, b"msg", &sig),
            Err(IdentityError::InvalidSignature)
        );
        assert_eq!(
            public.verify_signature(labels::SIGNED_PREKEY, b"msh", &sig),
            Err(IdentityError::InvalidSignature)
        );
    }

    #[test]
    fn bad_lengths_are_errors() {
        for len in [0usize, 1, 127, 129] {
            assert_eq!(
                IdentityPublic::from_bytes(&vec![0u8; len]),
                Err(IdentityError::BadLength { actual: len })
            );
        }
    }

    #[test]
    fn debug_shows_no_private_bytes() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let shown = format!("{id:?}");
        for secret in [id.signing.to_bytes(), id.dh.to_bytes()] {
            assert!(!shown.contains(&hex::encode(secret)), "{shown}");
            assert!(!shown.contains(&format!("{secret:?}")), "{shown}");
        }
    }
}
