//! The private halves of ML-KEM-768 prekeys, and the verified public KEM
//! prekey an initiator may encapsulate to (docs/PROTOCOL.md 3.9).
//!
//! A device publishes signed one-time KEM prekeys (deleted after first use)
//! and one signed last-resort KEM prekey (replaced on the signed-prekey
//! schedule). The public halves and their signature check are in umbra-wire,
//! because the relay verifies them before storing; this module adds the
//! private key (stored as its 64-byte FIPS 203 seed) and FIPS 203's
//! encapsulation-key check, which needs the KEM.
//!
//! Must never: let an unverified KEM key reach an encapsulation (only
//! [`VerifiedKemPreKey`] can), print a seed, or serialize one unzeroized.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

use crate::identity::{IdentityKeyPair, IdentityPublic, Signature};
use crate::kem::{KemKeyPair, KemPublicKey, KEM_SEED_LEN};
use crate::labels;
use crate::prekeys::PreKeyError;

pub use umbra_wire::kem_prekeys::{
    kem_prekey_message, KemPreKeyKind, KemPreKeyPublic, KEM_PREKEY_BATCH_MAX, KEM_PREKEY_LOW_WATER,
};

/// A private KEM prekey: kind, id, creation time, the key pair and the
/// identity's signature over its public half. The seed zeroizes on drop;
/// `Debug` shows only the public values.
#[derive(Clone)]
pub struct KemPreKey {
    kind: KemPreKeyKind,
    id: u32,
    created_at: u64,
    keypair: KemKeyPair,
    signature: Signature,
}

impl KemPreKey {
    /// Draws a new KEM key pair and signs its public half with `identity`.
    pub fn generate<R: RngCore + CryptoRng>(
        identity: &IdentityKeyPair,
        kind: KemPreKeyKind,
        id: u32,
        created_at: u64,
        rng: &mut R,
    ) -> Self {
        let keypair = KemKeyPair::generate(rng);
        let signature = identity.sign(
            labels::KEM_PREKEY,
            &kem_prekey_message(kind, id, created_at, keypair.public().as_bytes()),
        );
        Self {
            kind,
            id,
            created_at,
            keypair,
            signature,
        }
    }

    /// One-time or last-resort.
    pub fn kind(&self) -> KemPreKeyKind {
        self.kind
    }

    /// The id peers name it by.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Creation time, unix seconds.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// The key pair, for the responder's decapsulation.
    pub fn keypair(&self) -> &KemKeyPair {
        &self.keypair
    }

    /// Whether a last-resort key is due for replacement (the signed-prekey
    /// schedule, [`crate::prekeys::SIGNED_PREKEY_ROTATION_SECS`]).
    pub fn needs_rotation(&self, now: u64) -> bool {
        now.saturating_sub(self.created_at) >= crate::prekeys::SIGNED_PREKEY_ROTATION_SECS
    }

    /// The signed public half to upload.
    pub fn public(&self) -> KemPreKeyPublic {
        KemPreKeyPublic {
            kind: self.kind,
            id: self.id,
            created_at: self.created_at,
            key: Box::new(*self.keypair.public().as_bytes()),
            signature: self.signature,
        }
    }
}

impl std::fmt::Debug for KemPreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KemPreKey")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("public", self.keypair.public())
            .finish_non_exhaustive()
    }
}

/// The stored form, in postcard: `kind (u8), id (varint u32), created_at
/// (varint u64), seed (64-byte string), signature (64-byte string)`. The
/// public key is recomputed from the seed on load.
#[derive(Serialize, Deserialize)]
struct StoredKemPreKey {
    kind: u8,
    id: u32,
    created_at: u64,
    #[serde(with = "serde_bytes")]
    seed: Vec<u8>,
    #[serde(with = "crate::identity::serde_signature")]
    signature: Signature,
}

impl Drop for StoredKemPreKey {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

impl Serialize for KemPreKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredKemPreKey {
            kind: self.kind.byte(),
            id: self.id,
            created_at: self.created_at,
            seed: self.keypair.seed().to_vec(),
            signature: self.signature,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for KemPreKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let stored = StoredKemPreKey::deserialize(deserializer)?;
        let kind = KemPreKeyKind::from_byte(stored.kind)
            .ok_or_else(|| D::Error::custom("unknown KEM prekey kind"))?;
        let seed: Zeroizing<[u8; KEM_SEED_LEN]> = Zeroizing::new(
            stored
                .seed
                .as_slice()
                .try_into()
                .map_err(|_| D::Error::custom("KEM prekey seed is not 64 bytes"))?,
        );
        Ok(Self {
            kind,
            id: stored.id,
            created_at: stored.created_at,
            keypair: KemKeyPair::from_seed(&seed),
            signature: stored.signature,
        })
    }
}

/// A KEM prekey whose signature verified under the bundle's identity and
/// whose key passed FIPS 203's check: the only kind an initiator
/// encapsulates to. It keeps the signed creation time, so freshness can be
/// judged after verification (`PreKeyBundle::verify_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKemPreKey {
    kind: KemPreKeyKind,
    id: u32,
    created_at: u64,
    key: KemPublicKey,
}

impl VerifiedKemPreKey {
    /// Verifies `public` (strict signature, then the modulus check).
    pub fn verify(
        public: &KemPreKeyPublic,
        identity: &IdentityPublic,
    ) -> Result<Self, PreKeyError> {
        public.verify(identity)?;
        let key = KemPublicKey::from_bytes(public.key.as_slice())
            .map_err(|_| PreKeyError::InvalidKemPreKey)?;
        Ok(Self {
            kind: public.kind,
            id: public.id,
            created_at: public.created_at,
            key,
        })
    }

    /// One-time or last-resort.
    pub fn kind(&self) -> KemPreKeyKind {
        self.kind
    }

    /// The id the hybrid pre-key message names.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Creation time, unix seconds, as signed.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// The encapsulation key.
    pub fn key(&self) -> &KemPublicKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn signed_stored_and_verified() {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let mallory = IdentityKeyPair::generate(&mut OsRng);
        let key = KemPreKey::generate(&alice, KemPreKeyKind::OneTime, 3, 1_700_000_000, &mut OsRng);
        let public = key.public();
        let verified = VerifiedKemPreKey::verify(&public, &alice.public()).unwrap();
        assert_eq!(verified.key(), key.keypair().public());
        assert_eq!(verified.id(), 3);
        assert_eq!(verified.created_at(), 1_700_000_000);
        assert_eq!(
            VerifiedKemPreKey::verify(&public, &mallory.public()).unwrap_err(),
            PreKeyError::BadKemPreKeySignature
        );
        // Served under the other kind: the signature covers the kind.
        let mut swapped = public.clone();
        swapped.kind = KemPreKeyKind::LastResort;
        assert_eq!(
            VerifiedKemPreKey::verify(&swapped, &alice.public()).unwrap_err(),
            PreKeyError::BadKemPreKeySignature
        );
        let bytes = postcard::to_allocvec(&key).unwrap();
        let back: KemPreKey = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.public(), public);
        assert!(!format!("{key:?}").contains(&hex::encode(&key.keypair().seed()[..8])));
    }

    #[test]
    fn a_signed_key_failing_the_modulus_check_is_refused() {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let mut raw = [0u8; 1184];
        raw[0] = 0xff;
        raw[1] = 0x0f;
        let signature = alice.sign(
            labels::KEM_PREKEY,
            &kem_prekey_message(KemPreKeyKind::LastResort, 1, 5, &raw),
        );
        let public = KemPreKeyPublic {
            kind: KemPreKeyKind::LastResort,
            id: 1,
            created_at: 5,
            key: Box::new(raw),
            signature,
        };
        assert_eq!(
            VerifiedKemPreKey::verify(&public, &alice.public()).unwrap_err(),
            PreKeyError::InvalidKemPreKey
        );
    }
}
