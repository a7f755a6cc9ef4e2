//! The public halves of ML-KEM-768 prekeys and their signature check
//! (docs/PROTOCOL.md 3.9).
//!
//! Unlike X25519 one-time prekeys, every KEM prekey is signed by the
//! owner's identity: the KEM secret is what protects a session against a
//! quantum attacker who recorded it, and an unsigned key could be swapped by
//! the relay for one whose private half it holds. The signature covers the
//! kind (one-time or last-resort), the id, the creation time and the key, so
//! a relay can neither serve a one-time key as the last-resort one (which
//! the initiator would then never expect to be deleted) nor the reverse.
//! The relay checks these signatures before storing; the initiator checks
//! them again, plus FIPS 203's modulus check (umbra-protocol's `kem`).
//!
//! Must never: hold a private key, accept a non-strict signature, or accept
//! a key of any length but [`KEM_PREKEY_KEY_LEN`].

use crate::identity::{IdentityPublic, Signature};
use crate::labels;
use crate::limits::KEM_PREKEY_KEY_LEN;
use crate::prekeys::PreKeyError;
use crate::KemPreKeyWire;

/// A client keeps at least this many one-time KEM prekeys on the relay; the
/// relay sends `KemPreKeysLow` below it (the X25519 threshold, for the
/// same reason: a burst of new contacts while the owner is offline).
pub const KEM_PREKEY_LOW_WATER: usize = 20;
/// Most one-time KEM prekeys in one upload (the wire limit).
pub const KEM_PREKEY_BATCH_MAX: usize = crate::limits::KEM_ONE_TIME_PREKEYS_PER_UPLOAD_MAX;
/// Bytes of [`kem_prekey_message`]: kind, id, time and key.
pub const KEM_PREKEY_MESSAGE_LEN: usize = 1 + 4 + 8 + KEM_PREKEY_KEY_LEN;

/// Which of a device's KEM prekeys this is; signed, and named in the
/// hybrid pre-key message so the responder finds the private half.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum KemPreKeyKind {
    /// Handed out once by the relay; the owner deletes it after first use.
    OneTime = 0x01,
    /// Served when no one-time KEM prekey is left; replaced by the owner
    /// on the signed-prekey schedule.
    LastResort = 0x02,
}

impl KemPreKeyKind {
    /// The byte that encodes it (in the signed message and pre-key messages).
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// The kind a byte encodes, if any.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Self::OneTime),
            0x02 => Some(Self::LastResort),
            _ => None,
        }
    }
}

/// The bytes a KEM-prekey signature covers (after the label):
/// `kind (1) || u32be(id) || u64be(created_at) || key (1184)`.
pub fn kem_prekey_message(
    kind: KemPreKeyKind,
    id: u32,
    created_at: u64,
    key: &[u8; KEM_PREKEY_KEY_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEM_PREKEY_MESSAGE_LEN);
    out.push(kind.byte());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&created_at.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The public half of a KEM prekey as uploaded and served, with the kind
/// its place on the wire gave it. Its key has the right length; whether
/// the signature holds is [`KemPreKeyPublic::verify`]'s question.
#[derive(Clone, PartialEq, Eq)]
pub struct KemPreKeyPublic {
    /// One-time or last-resort.
    pub kind: KemPreKeyKind,
    /// Owner-chosen id, unique per device and kind.
    pub id: u32,
    /// Creation time, unix seconds.
    pub created_at: u64,
    /// The ML-KEM-768 encapsulation key.
    pub key: Box<[u8; KEM_PREKEY_KEY_LEN]>,
    /// Identity signature over [`kem_prekey_message`].
    pub signature: Signature,
}

impl KemPreKeyPublic {
    /// Reads a wire key of the given kind; fails only on a wrong key length.
    pub fn from_wire(kind: KemPreKeyKind, wire: &KemPreKeyWire) -> Result<Self, PreKeyError> {
        let key: [u8; KEM_PREKEY_KEY_LEN] =
            wire.key
                .as_slice()
                .try_into()
                .map_err(|_| PreKeyError::BadKemPreKeyLength {
                    actual: wire.key.len(),
                })?;
        Ok(Self {
            kind,
            id: wire.id,
            created_at: wire.created_at,
            key: Box::new(key),
            signature: Signature::from_bytes(&wire.signature),
        })
    }

    /// The wire form (the kind is where it is sent).
    pub fn to_wire(&self) -> KemPreKeyWire {
        KemPreKeyWire {
            id: self.id,
            created_at: self.created_at,
            key: self.key.to_vec(),
            signature: self.signature.to_bytes(),
        }
    }

    /// Strictly verifies the signature under `identity`.
    pub fn verify(&self, identity: &IdentityPublic) -> Result<(), PreKeyError> {
        identity
            .verify_signature(
                labels::KEM_PREKEY,
                &kem_prekey_message(self.kind, self.id, self.created_at, &self.key),
                &self.signature,
            )
            .map_err(|_| PreKeyError::BadKemPreKeySignature)
    }
}

impl std::fmt::Debug for KemPreKeyPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KemPreKeyPublic")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::domain_separated;
    use crate::keys::PublicKey;
    use ed25519_dalek::{Signer, SigningKey};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn identity(signing: &SigningKey) -> IdentityPublic {
        let dh = PublicKey::from_bytes([9; 32]);
        let binding = signing.sign(&domain_separated(labels::IDENTITY_BINDING, dh.as_bytes()));
        IdentityPublic::from_parts(signing.verifying_key(), dh, binding)
    }

    fn signed(signing: &SigningKey, kind: KemPreKeyKind, id: u32) -> KemPreKeyPublic {
        let key = Box::new([id as u8; KEM_PREKEY_KEY_LEN]);
        let msg = kem_prekey_message(kind, id, 1_700_000_000, &key);
        KemPreKeyPublic {
            kind,
            id,
            created_at: 1_700_000_000,
            key,
            signature: signing.sign(&domain_separated(labels::KEM_PREKEY, &msg)),
        }
    }

    #[test]
    fn verifies_only_under_its_identity_kind_and_fields() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let alice = SigningKey::generate(&mut rng);
        let mallory = SigningKey::generate(&mut rng);
        let key = signed(&alice, KemPreKeyKind::OneTime, 5);
        assert_eq!(key.verify(&identity(&alice)), Ok(()));
        assert_eq!(
            key.verify(&identity(&mallory)),
            Err(PreKeyError::BadKemPreKeySignature)
        );
        for tamper in [
            |k: &mut KemPreKeyPublic| k.kind = KemPreKeyKind::LastResort,
            |k: &mut KemPreKeyPublic| k.id ^= 1,
            |k: &mut KemPreKeyPublic| k.created_at += 1,
            |k: &mut KemPreKeyPublic| k.key[1000] ^= 1,
        ] {
            let mut bad = key.clone();
            tamper(&mut bad);
            assert_eq!(
                bad.verify(&identity(&alice)),
                Err(PreKeyError::BadKemPreKeySignature)
            );
        }
    }

    #[test]
    fn wire_round_trip_and_length_check() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let alice = SigningKey::generate(&mut rng);
        let key = signed(&alice, KemPreKeyKind::LastResort, 9);
        let wire = key.to_wire();
        assert_eq!(
            KemPreKeyPublic::from_wire(KemPreKeyKind::LastResort, &wire).unwrap(),
            key
        );
        let mut short = wire;
        short.key.pop();
        assert_eq!(
            KemPreKeyPublic::from_wire(KemPreKeyKind::OneTime, &short).unwrap_err(),
            PreKeyError::BadKemPreKeyLength { actual: 1183 }
        );
        assert_eq!(
            KemPreKeyKind::from_byte(0x02),
            Some(KemPreKeyKind::LastResort)
        );
        assert_eq!(KemPreKeyKind::from_byte(0x00), None);
    }
}
