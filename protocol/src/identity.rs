//! Long-term identities: an Ed25519 signing key bound to an X25519 key.
//!
//! An identity is two keys, never one key used in two algorithms (no
//! XEdDSA): the Ed25519 key signs, the X25519 key does Diffie-Hellman, and
//! the Ed25519 key signs a domain-separated encoding of the X25519 public key
//! (the *binding signature*) so that nobody can pair someone else's signing
//! key with their own DH key. Every signature made through this module is
//! prefixed with a label from [`crate::labels`]. The public identity and
//! its checks are defined in umbra-wire and re-exported here.
//!
//! Must never: accept a binding or signature that fails `verify_strict`,
//! print private key bytes in `Debug`, or keep private bytes after drop.

use ed25519_dalek::{Signer, SigningKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::SecretKey;
use crate::labels;

// The public half and its checks are in umbra-wire (the relay verifies
// published identities); the key pair that signs stays here.
pub use umbra_wire::identity::{
    domain_separated, IdentityError, IdentityPublic, Signature, IDENTITY_PUBLIC_LEN,
};
pub(crate) use umbra_wire::identity::{serde_signature, verify_labelled};

/// Signs `msg` under `label` with a raw Ed25519 key (identities and group
/// sender keys share this construction; [`verify_labelled`] checks it).
pub(crate) fn sign_labelled(key: &SigningKey, label: &[u8], msg: &[u8]) -> Signature {
    key.sign(&domain_separated(label, msg))
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
        let public = IdentityPublic::from_parts(signing.verifying_key(), dh_public, binding);
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

    /// The two private 32-byte secrets (Ed25519 seed, X25519 secret), for
    /// the fixed layouts that carry a private identity (the link
    /// provisioning, docs/PROTOCOL.md §15.7). Wiped on drop.
    pub(crate) fn secret_parts(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        (
            Zeroizing::new(self.signing.to_bytes()),
            Zeroizing::new(self.dh.to_bytes()),
        )
    }

    /// The identity with these two private secrets (the inverse of
    /// [`IdentityKeyPair::secret_parts`]); the public half is recomputed.
    pub(crate) fn from_secret_parts(signing_seed: &[u8; 32], dh_secret: &[u8; 32]) -> Self {
        Self::from_parts(
            SigningKey::from_bytes(signing_seed),
            SecretKey::from_bytes(*dh_secret),
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;
    use subtle::ConstantTimeEq;

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

    // Parsing a public identity (lengths, points) is umbra-wire's and tested
    // there (`bad_encodings_are_errors`); this module owns signing.

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
