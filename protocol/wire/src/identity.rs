//! Public identities and the strict Ed25519 checks of signatures made by them.
//!
//! An identity is an Ed25519 signing key bound to an X25519 key by a
//! signature over the X25519 key (label [`labels::IDENTITY_BINDING`]). The
//! relay refuses to publish an identity whose binding does not verify, so
//! the public half and its checks live here; the private
//! `IdentityKeyPair` that makes the signatures is in umbra-protocol.
//!
//! Must never: hold a private key, or accept a signature that fails
//! `verify_strict`.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::{Choice, ConstantTimeEq};

use crate::keys::PublicKey;
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
/// `u64be(len(label)) || label || msg` (docs/PROTOCOL.md). The length
/// prefix keeps two (label, message) pairs from ever encoding to the same
/// signed bytes. Signers (in umbra-protocol) sign exactly these bytes.
pub fn domain_separated(label: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + label.len() + msg.len());
    out.extend_from_slice(&(label.len() as u64).to_be_bytes());
    out.extend_from_slice(label);
    out.extend_from_slice(msg);
    out
}

/// Strictly verifies an Ed25519 signature over [`domain_separated`]`(label,
/// msg)` (identities and group sender keys share this construction).
pub fn verify_labelled(key: &VerifyingKey, label: &[u8], msg: &[u8], sig: &Signature) -> bool {
    key.verify_strict(&domain_separated(label, msg), sig)
        .is_ok()
}

/// serde helper: an Ed25519 signature as a 64-byte byte string (postcard:
/// `40` then 64 bytes), the encoding every fixed array in umbra uses.
#[doc(hidden)]
pub mod serde_signature {
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
    /// Assembles an identity from its three parts, as the key pair that made
    /// the binding does. Checks nothing, like [`IdentityPublic::from_bytes`].
    pub fn from_parts(signing: VerifyingKey, dh: PublicKey, binding: Signature) -> Self {
        Self {
            signing,
            dh,
            binding,
        }
    }

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
    use ed25519_dalek::{Signer, SigningKey};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// A key pair made the way umbra-protocol's `IdentityKeyPair` makes one,
    /// from raw dalek keys (this crate has no private identity type).
    fn identity(seed: u64) -> (SigningKey, IdentityPublic) {
        let signing = SigningKey::generate(&mut ChaCha20Rng::seed_from_u64(seed));
        let dh = PublicKey::from_bytes([seed as u8; 32]);
        let binding = signing.sign(&domain_separated(labels::IDENTITY_BINDING, dh.as_bytes()));
        let public = IdentityPublic::from_parts(signing.verifying_key(), dh, binding);
        (signing, public)
    }

    #[test]
    fn genuine_binding_verifies_and_roundtrips() {
        let (_, public) = identity(1);
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
    fn swapped_dh_key_breaks_binding() {
        let (_, a) = identity(1);
        let (_, b) = identity(2);
        let mut mixed = a.to_bytes();
        mixed[32..64].copy_from_slice(b.dh_key().as_bytes());
        let mixed = IdentityPublic::from_bytes(&mixed).unwrap();
        assert_eq!(mixed.verify(), Err(IdentityError::InvalidBinding));
    }

    #[test]
    fn signatures_are_label_and_message_bound() {
        let (signing, public) = identity(3);
        let sig = signing.sign(&domain_separated(labels::SIGNED_PREKEY, b"msg"));
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
    fn bad_encodings_are_errors() {
        for len in [0usize, 1, 127, 129] {
            assert_eq!(
                IdentityPublic::from_bytes(&vec![0u8; len]),
                Err(IdentityError::BadLength { actual: len })
            );
        }
        // y = 2 is not the encoding of a point on edwards25519.
        let mut not_a_point = identity(4).1.to_bytes();
        not_a_point[..32].copy_from_slice(&{
            let mut y = [0u8; 32];
            y[0] = 2;
            y
        });
        assert_eq!(
            IdentityPublic::from_bytes(&not_a_point),
            Err(IdentityError::InvalidSigningKey)
        );
    }

    #[test]
    fn domain_separation_prefixes_the_label_length() {
        assert_eq!(
            domain_separated(b"ab", b"c"),
            [0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b', b'c']
        );
    }
}
