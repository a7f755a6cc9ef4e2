//! Admission checks for the key directory: what a device may publish.
//!
//! The relay serves identities and prekeys to strangers who will trust them
//! only after checking signatures themselves, but it still refuses what is
//! provably wrong — an identity whose X25519 key is not bound by its Ed25519
//! key, a signed prekey not signed by that identity, a batch of one-time
//! prekeys with repeated ids — so one buggy client cannot poison its own
//! bundle for everyone else.
//!
//! Must never: accept a signed prekey without verifying it strictly under
//! the identity published with it, or touch private keys.

use std::collections::HashSet;

use umbra_wire::identity::IdentityPublic;
use umbra_wire::prekeys::SignedPreKeyPublic;
use umbra_wire::{ErrorCode, PreKeyWire, SignedPreKeyWire};

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
}

impl DirectoryError {
    /// The wire code the relay answers with.
    pub const fn code(&self) -> ErrorCode {
        match self {
            DirectoryError::MalformedIdentity
            | DirectoryError::BadIdentityBinding
            | DirectoryError::BadSignedPreKey => ErrorCode::BadSignature,
            DirectoryError::DuplicatePreKeyId(_) => ErrorCode::BadPreKey,
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
