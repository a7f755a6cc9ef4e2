//! Admission checks for the key directory: what a device may publish.
//!
//! The relay serves identities and prekeys to strangers who will trust them
//! only after checking signatures themselves, but it still refuses what is
//! provably wrong — an identity whose X25519 key is not bound by its Ed25519
//! key, a signed prekey not signed by that identity, a batch of one-time
//! prekeys with repeated ids, an ML-KEM prekey of the wrong length or not
//! signed by the device's published identity — so one buggy client cannot
//! poison its own bundle for everyone else.
//!
//! Must never: accept a signed prekey without verifying it strictly under
//! the identity published with it, accept a KEM prekey without verifying it
//! strictly under the identity the device publishes, look inside a KEM key
//! (the relay has no KEM; the initiator checks the key itself), or touch
//! private keys.

use std::collections::HashSet;

use umbra_wire::identity::IdentityPublic;
use umbra_wire::kem_prekeys::{KemPreKeyKind, KemPreKeyPublic};
use umbra_wire::prekeys::SignedPreKeyPublic;
use umbra_wire::{ErrorCode, KemPreKeyWire, PreKeyWire, SignedPreKeyWire, KEM_PREKEY_KEY_LEN};

/// Why a publication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The identity does not parse as the 128-byte public identity encoding.
    #[error("identity is not a valid public identity encoding")]
    MalformedIdentity,
    /// The identity's binding signature does not verify.
    #[error("identity binding signature does not verify")]
    BadIdentityBinding,
    /// The signed prekey's signature does not verify under the identity.
    #[error("signed prekey signature does not verify under the identity")]
    BadSignedPreKey,
    /// Two one-time prekeys in one upload share an id.
    #[error("one-time prekey id {0} appears twice in the upload")]
    DuplicatePreKeyId(u32),
    /// A KEM prekey is not `KEM_PREKEY_KEY_LEN` bytes.
    #[error("KEM prekey {id} is {len} bytes; an ML-KEM-768 key is {KEM_PREKEY_KEY_LEN}")]
    BadKemPreKeyLength {
        /// Its id.
        id: u32,
        /// Its length.
        len: usize,
    },
    /// A KEM prekey's creation time is above what the store keeps (2^63 − 1):
    /// it would be served with another time, and its signature broken.
    #[error("KEM prekey {0} has a creation time above 2^63 - 1")]
    KemPreKeyTimeOutOfRange(u32),
    /// A KEM prekey's signature does not verify under the device's
    /// published identity (or was made for the other kind).
    #[error("{kind} KEM prekey {id} is not signed by this device's published identity")]
    BadKemPreKeySignature {
        /// `"one-time"` or `"last-resort"`.
        kind: &'static str,
        /// Its id.
        id: u32,
    },
}

impl DirectoryError {
    /// The wire code the relay answers with.
    pub const fn code(&self) -> ErrorCode {
        match self {
            DirectoryError::MalformedIdentity
            | DirectoryError::BadIdentityBinding
            | DirectoryError::BadSignedPreKey
            | DirectoryError::BadKemPreKeySignature { .. } => ErrorCode::BadSignature,
            DirectoryError::DuplicatePreKeyId(_)
            | DirectoryError::BadKemPreKeyLength { .. }
            | DirectoryError::KemPreKeyTimeOutOfRange(_) => ErrorCode::BadPreKey,
        }
    }
}

/// Checks an identity and the signed prekey published with it.
pub fn verify_published_keys(
    identity: &[u8],
    signed_prekey: &SignedPreKeyWire,
) -> Result<(), DirectoryError> {
    let identity =
        IdentityPublic::from_bytes(identity).map_err(|_| DirectoryError::MalformedIdentity)?;
    identity
        .verify()
        .map_err(|_| DirectoryError::BadIdentityBinding)?;
    SignedPreKeyPublic::from(signed_prekey)
        .verify(&identity)
        .map_err(|_| DirectoryError::BadSignedPreKey)
}

/// Checks that a one-time prekey upload has distinct ids (the count limit is
/// checked by the wire layer).
pub fn check_prekey_batch(prekeys: &[PreKeyWire]) -> Result<(), DirectoryError> {
    let mut seen = HashSet::with_capacity(prekeys.len());
    for prekey in prekeys {
        if !seen.insert(prekey.id) {
            return Err(DirectoryError::DuplicatePreKeyId(prekey.id));
        }
    }
    Ok(())
}

/// Checks a KEM prekey upload against the identity the device publishes:
/// every key exactly `KEM_PREKEY_KEY_LEN` bytes with a storable creation
/// time, distinct one-time ids, and every signature strict under
/// `identity` over its kind (`0x01` for `one_time`, `0x02` for
/// `last_resort`). The first failure refuses the whole upload; the cheap
/// checks run before any signature. (The count limit is the wire layer's.)
pub fn check_kem_upload(
    identity: &IdentityPublic,
    last_resort: Option<&KemPreKeyWire>,
    one_time: &[KemPreKeyWire],
) -> Result<(), DirectoryError> {
    let keys = || {
        one_time
            .iter()
            .map(|key| (KemPreKeyKind::OneTime, key))
            .chain(last_resort.map(|key| (KemPreKeyKind::LastResort, key)))
    };
    let mut seen = HashSet::with_capacity(one_time.len());
    for key in one_time {
        if !seen.insert(key.id) {
            return Err(DirectoryError::DuplicatePreKeyId(key.id));
        }
    }
    let mut parsed = Vec::with_capacity(one_time.len() + 1);
    for (kind, key) in keys() {
        if i64::try_from(key.created_at).is_err() {
            return Err(DirectoryError::KemPreKeyTimeOutOfRange(key.id));
        }
        let public = KemPreKeyPublic::from_wire(kind, key).map_err(|_| {
            DirectoryError::BadKemPreKeyLength {
                id: key.id,
                len: key.key.len(),
            }
        })?;
        parsed.push(public);
    }
    for public in &parsed {
        public
            .verify(identity)
            .map_err(|_| DirectoryError::BadKemPreKeySignature {
                kind: match public.kind {
                    KemPreKeyKind::OneTime => "one-time",
                    KemPreKeyKind::LastResort => "last-resort",
                },
                id: public.id,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use umbra_protocol::identity::IdentityKeyPair;
    use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey};

    fn wire(spk: &SignedPreKey) -> SignedPreKeyWire {
        spk.public().into()
    }

    #[test]
    fn genuine_keys_pass_and_any_tampering_fails() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let alice = IdentityKeyPair::generate(&mut rng);
        let mallory = IdentityKeyPair::generate(&mut rng);
        let spk = wire(&SignedPreKey::generate(&alice, 1, 1_700_000_000, &mut rng));
        let identity = alice.public().to_bytes();
        assert_eq!(verify_published_keys(&identity, &spk), Ok(()));

        let foreign = mallory.public().to_bytes();
        assert_eq!(
            verify_published_keys(&foreign, &spk),
            Err(DirectoryError::BadSignedPreKey)
        );

        let mut bumped = spk;
        bumped.created_at += 1;
        assert_eq!(
            verify_published_keys(&identity, &bumped),
            Err(DirectoryError::BadSignedPreKey)
        );

        let mut broken_binding = identity;
        broken_binding[127] ^= 1;
        assert!(verify_published_keys(&broken_binding, &spk).is_err());

        assert_eq!(
            verify_published_keys(&identity[..100], &spk),
            Err(DirectoryError::MalformedIdentity)
        );
        assert_eq!(
            DirectoryError::BadSignedPreKey.code(),
            ErrorCode::BadSignature
        );
    }

    /// A KEM prekey of `kind` signed by `identity` (the relay never looks
    /// inside the key, so any 1184 bytes do).
    fn kem(identity: &IdentityKeyPair, kind: KemPreKeyKind, id: u32) -> KemPreKeyWire {
        let key = [id as u8; KEM_PREKEY_KEY_LEN];
        let msg = umbra_wire::kem_prekeys::kem_prekey_message(kind, id, 1_700_000_000, &key);
        KemPreKeyWire {
            id,
            created_at: 1_700_000_000,
            key: key.to_vec(),
            signature: identity
                .sign(umbra_wire::labels::KEM_PREKEY, &msg)
                .to_bytes(),
        }
    }

    #[test]
    fn kem_prekeys_must_be_signed_by_the_identity_for_their_kind() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let alice = IdentityKeyPair::generate(&mut rng);
        let mallory = IdentityKeyPair::generate(&mut rng);
        let me = alice.public();
        let one_time: Vec<_> = (1..=3)
            .map(|id| kem(&alice, KemPreKeyKind::OneTime, id))
            .collect();
        let last_resort = kem(&alice, KemPreKeyKind::LastResort, 9);
        assert_eq!(check_kem_upload(&me, Some(&last_resort), &one_time), Ok(()));
        assert_eq!(check_kem_upload(&me, None, &[]), Ok(()));

        // One key signed by someone else spoils the upload.
        let mut forged = one_time.clone();
        forged[1] = kem(&mallory, KemPreKeyKind::OneTime, 2);
        let refused = check_kem_upload(&me, Some(&last_resort), &forged);
        assert_eq!(
            refused,
            Err(DirectoryError::BadKemPreKeySignature {
                kind: "one-time",
                id: 2
            })
        );
        assert_eq!(refused.unwrap_err().code(), ErrorCode::BadSignature);
        // A one-time key offered as the last-resort one, and the reverse.
        let swapped = kem(&alice, KemPreKeyKind::OneTime, 9);
        assert_eq!(
            check_kem_upload(&me, Some(&swapped), &one_time),
            Err(DirectoryError::BadKemPreKeySignature {
                kind: "last-resort",
                id: 9
            })
        );
        assert!(check_kem_upload(&me, None, std::slice::from_ref(&last_resort)).is_err());
        // Any signed field changed.
        let mut bumped = one_time[0].clone();
        bumped.created_at += 1;
        assert!(check_kem_upload(&me, None, &[bumped]).is_err());
        let mut flipped = one_time[0].clone();
        flipped.key[1000] ^= 1;
        assert!(check_kem_upload(&me, None, &[flipped]).is_err());
    }

    #[test]
    fn kem_prekeys_of_the_wrong_length_time_or_repeated_ids_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let alice = IdentityKeyPair::generate(&mut rng);
        let me = alice.public();
        let good = kem(&alice, KemPreKeyKind::OneTime, 1);
        let mut short = kem(&alice, KemPreKeyKind::OneTime, 2);
        short.key.pop();
        let refused = check_kem_upload(&me, None, &[good.clone(), short]);
        assert_eq!(
            refused,
            Err(DirectoryError::BadKemPreKeyLength { id: 2, len: 1183 })
        );
        assert_eq!(refused.unwrap_err().code(), ErrorCode::BadPreKey);
        let mut long = kem(&alice, KemPreKeyKind::LastResort, 3);
        long.key.push(0);
        assert_eq!(
            check_kem_upload(&me, Some(&long), &[]),
            Err(DirectoryError::BadKemPreKeyLength { id: 3, len: 1185 })
        );
        assert_eq!(
            check_kem_upload(&me, None, &[good.clone(), good.clone()]),
            Err(DirectoryError::DuplicatePreKeyId(1))
        );
        let mut late = good;
        late.created_at = u64::MAX;
        assert_eq!(
            check_kem_upload(&me, None, &[late]),
            Err(DirectoryError::KemPreKeyTimeOutOfRange(1))
        );
    }

    #[test]
    fn duplicate_prekey_ids_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let mut key = |id| PreKeyWire::from(OneTimePreKey::generate(id, &mut rng).public());
        let batch = vec![key(1), key(2), key(1)];
        assert_eq!(
            check_prekey_batch(&batch),
            Err(DirectoryError::DuplicatePreKeyId(1))
        );
        assert_eq!(check_prekey_batch(&batch[..2]), Ok(()));
    }
}
