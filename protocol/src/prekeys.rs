//! Signed, one-time and last-resort prekeys, and the bundle a relay hands
//! out so that someone can start a session with an offline peer.
//!
//! The signed prekey is signed by the owner's identity (label
//! [`labels::SIGNED_PREKEY`]) over its id, creation time and key; one-time
//! and last-resort prekeys are unsigned (as in Signal): a relay that swaps
//! one can only make the session fail, because DH1..DH3 still bind both
//! identities and the signed prekey.
//!
//! Must never: let an unverified bundle reach [`crate::x3dh::initiate`]
//! (only [`VerifiedPreKeyBundle`] can), accept a non-strict signature, or
//! print private prekey bytes.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::identity::{IdentityError, IdentityKeyPair, IdentityPublic, Signature};
use crate::keys::{PublicKey, SecretKey};
use crate::labels;
use crate::wire::PreKeyBundleWire;

// The public halves, their signature check, the directory's counts and the
// conversions to and from the wire encoding are in umbra-wire (the relay
// verifies signed prekeys); the private halves and bundles stay here.
pub use umbra_wire::prekeys::{
    signed_prekey_message, OneTimePreKeyPublic, PreKeyError, SignedPreKeyPublic,
    ONE_TIME_PREKEY_BATCH_MAX, ONE_TIME_PREKEY_LOW_WATER, SIGNED_PREKEY_MAX_AGE_SECS,
    SIGNED_PREKEY_MAX_FUTURE_SECS, SIGNED_PREKEY_ROTATION_SECS,
};

/// The private side of a signed prekey. The key is zeroized on drop and
/// `Debug` shows only the public key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedPreKey {
    id: u32,
    created_at: u64,
    key: SecretKey,
    #[serde(with = "crate::identity::serde_signature")]
    signature: Signature,
}

impl SignedPreKey {
    /// Draws a new signed prekey and signs it with `identity`.
    pub fn generate<R: RngCore + CryptoRng>(
        identity: &IdentityKeyPair,
        id: u32,
        created_at: u64,
        rng: &mut R,
    ) -> Self {
        let key = SecretKey::generate(rng);
        let signature = identity.sign(
            labels::SIGNED_PREKEY,
            &signed_prekey_message(id, created_at, &key.public_key()),
        );
        Self {
            id,
            created_at,
            key,
            signature,
        }
    }

    /// The id peers name it by.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Creation time, unix seconds.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// The private key, for [`crate::x3dh::respond`].
    pub fn secret(&self) -> &SecretKey {
        &self.key
    }

    /// Whether it is time to replace it ([`SIGNED_PREKEY_ROTATION_SECS`]).
    pub fn needs_rotation(&self, now: u64) -> bool {
        now.saturating_sub(self.created_at) >= SIGNED_PREKEY_ROTATION_SECS
    }

    /// The public half to upload.
    pub fn public(&self) -> SignedPreKeyPublic {
        SignedPreKeyPublic {
            id: self.id,
            created_at: self.created_at,
            key: self.key.public_key(),
            signature: self.signature,
        }
    }
}

/// A private one-time (or last-resort) prekey. Zeroized on drop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneTimePreKey {
    id: u32,
    key: SecretKey,
}

impl OneTimePreKey {
    /// Draws a new one-time prekey.
    pub fn generate<R: RngCore + CryptoRng>(id: u32, rng: &mut R) -> Self {
        Self {
            id,
            key: SecretKey::generate(rng),
        }
    }

    /// The id peers name it by.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The private key, for [`crate::x3dh::respond`].
    pub fn secret(&self) -> &SecretKey {
        &self.key
    }

    /// The public half to upload.
    pub fn public(&self) -> OneTimePreKeyPublic {
        OneTimePreKeyPublic {
            id: self.id,
            key: self.key.public_key(),
        }
    }
}

/// Which extra prekey (if any) an initiator used, so the responder can find
/// its private half and, for a one-time key, delete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PreKeyRef {
    /// A one-time prekey: the responder deletes it after first use.
    OneTime(u32),
    /// The last-resort prekey, used when one-time prekeys ran out; the
    /// responder keeps it until it replaces it.
    LastResort(u32),
}

/// A bundle as served by the relay. Not usable until verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreKeyBundle {
    /// The owner's public identity.
    pub identity: IdentityPublic,
    /// The owner's current signed prekey.
    pub signed_prekey: SignedPreKeyPublic,
    /// One one-time prekey, if the relay had any left.
    pub one_time_prekey: Option<OneTimePreKeyPublic>,
    /// The last-resort prekey, served when no one-time prekey is left.
    pub last_resort: Option<OneTimePreKeyPublic>,
}

impl PreKeyBundle {
    /// Verifies the identity binding and the signed prekey signature, both
    /// strictly. Does not look at the clock; see [`PreKeyBundle::verify_at`].
    pub fn verify(self) -> Result<VerifiedPreKeyBundle, PreKeyError> {
        self.identity.verify()?;
        self.signed_prekey.verify(&self.identity)?;
        let extra = match (self.one_time_prekey, self.last_resort) {
            (Some(otk), _) => Some((PreKeyRef::OneTime(otk.id), otk.key)),
            (None, Some(lr)) => Some((PreKeyRef::LastResort(lr.id), lr.key)),
            (None, None) => None,
        };
        Ok(VerifiedPreKeyBundle {
            identity: self.identity,
            signed_prekey: self.signed_prekey,
            extra_prekey: extra,
        })
    }

    /// [`PreKeyBundle::verify`] plus freshness: refuses a signed prekey older
    /// than [`SIGNED_PREKEY_MAX_AGE_SECS`] or more than
    /// [`SIGNED_PREKEY_MAX_FUTURE_SECS`] in the future at `now` (unix secs).
    pub fn verify_at(self, now: u64) -> Result<VerifiedPreKeyBundle, PreKeyError> {
        let created_at = self.signed_prekey.created_at;
        let verified = self.verify()?;
        if created_at > now.saturating_add(SIGNED_PREKEY_MAX_FUTURE_SECS) {
            return Err(PreKeyError::SignedPreKeyFromFuture { created_at, now });
        }
        if now.saturating_sub(created_at) > SIGNED_PREKEY_MAX_AGE_SECS {
            return Err(PreKeyError::SignedPreKeyExpired { created_at, now });
        }
        Ok(verified)
    }
}

impl TryFrom<&PreKeyBundleWire> for PreKeyBundle {
    type Error = IdentityError;

    /// The relay's encoding of a bundle as the (still unverified) protocol
    /// bundle; fails only if the identity bytes do not parse.
    fn try_from(wire: &PreKeyBundleWire) -> Result<Self, IdentityError> {
        Ok(Self {
            identity: IdentityPublic::from_bytes(&wire.identity)?,
            signed_prekey: (&wire.signed_prekey).into(),
            one_time_prekey: wire.one_time_prekey.map(Into::into),
            last_resort: wire.last_resort.map(Into::into),
        })
    }
}

/// A bundle whose signatures verified. The only input
/// [`crate::x3dh::initiate`] accepts; it can be built only by
/// [`PreKeyBundle::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPreKeyBundle {
    identity: IdentityPublic,
    signed_prekey: SignedPreKeyPublic,
    extra_prekey: Option<(PreKeyRef, PublicKey)>,
}

impl VerifiedPreKeyBundle {
    /// The responder's verified identity.
    pub fn identity(&self) -> &IdentityPublic {
        &self.identity
    }

    /// The verified signed prekey (also the responder's first ratchet key).
    pub fn signed_prekey(&self) -> &SignedPreKeyPublic {
        &self.signed_prekey
    }

    /// The extra prekey X3DH will use: the one-time key if the bundle had
    /// one, else the last-resort key, else none.
    pub fn extra_prekey(&self) -> Option<(PreKeyRef, PublicKey)> {
        self.extra_prekey
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn bundle(id: &IdentityKeyPair, created_at: u64) -> PreKeyBundle {
        PreKeyBundle {
            identity: id.public(),
            signed_prekey: SignedPreKey::generate(id, 7, created_at, &mut OsRng).public(),
            one_time_prekey: Some(OneTimePreKey::generate(1, &mut OsRng).public()),
            last_resort: Some(OneTimePreKey::generate(2, &mut OsRng).public()),
        }
    }

    #[test]
    fn genuine_bundle_verifies_and_prefers_one_time_key() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let b = bundle(&id, 1000);
        let otk = b.one_time_prekey.unwrap();
        let v = b.verify().unwrap();
        assert_eq!(v.extra_prekey(), Some((PreKeyRef::OneTime(1), otk.key)));
    }

    #[test]
    fn last_resort_used_when_no_one_time_key() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let mut b = bundle(&id, 1000);
        b.one_time_prekey = None;
        let lr = b.last_resort.unwrap();
        assert_eq!(
            b.verify().unwrap().extra_prekey(),
            Some((PreKeyRef::LastResort(2), lr.key))
        );
    }

    #[test]
    fn signed_prekey_from_other_identity_is_rejected() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let other = IdentityKeyPair::generate(&mut OsRng);
        let mut b = bundle(&id, 1000);
        b.signed_prekey = SignedPreKey::generate(&other, 7, 1000, &mut OsRng).public();
        assert_eq!(b.verify(), Err(PreKeyError::BadSignedPreKeySignature));
    }

    #[test]
    fn signed_fields_are_covered() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let mut by_id = bundle(&id, 1000);
        by_id.signed_prekey.id ^= 1;
        assert_eq!(by_id.verify(), Err(PreKeyError::BadSignedPreKeySignature));
        let mut by_time = bundle(&id, 1000);
        by_time.signed_prekey.created_at += 1;
        assert_eq!(by_time.verify(), Err(PreKeyError::BadSignedPreKeySignature));
    }

    #[test]
    fn a_bundle_survives_its_wire_form_and_a_bad_identity_is_refused() {
        use crate::wire::{AccountId, DeviceId, PreKeyBundleWire};
        let id = IdentityKeyPair::generate(&mut OsRng);
        let b = bundle(&id, 1000);
        let mut wire = PreKeyBundleWire {
            account: AccountId::from_bytes([1; crate::wire::ACCOUNT_ID_LEN]),
            device: DeviceId(1),
            identity: b.identity.to_bytes().to_vec(),
            signed_prekey: (&b.signed_prekey).into(),
            one_time_prekey: b.one_time_prekey.map(Into::into),
            last_resort: b.last_resort.map(Into::into),
        };
        let back = PreKeyBundle::try_from(&wire).unwrap();
        assert_eq!(back, b);
        assert!(back.verify().is_ok());
        wire.identity.pop();
        assert_eq!(
            PreKeyBundle::try_from(&wire),
            Err(IdentityError::BadLength { actual: 127 })
        );
    }

    #[test]
    fn freshness_window_is_enforced() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let t = 10_000_000;
        assert!(bundle(&id, t)
            .verify_at(t + SIGNED_PREKEY_MAX_AGE_SECS)
            .is_ok());
        assert!(matches!(
            bundle(&id, t).verify_at(t + SIGNED_PREKEY_MAX_AGE_SECS + 1),
            Err(PreKeyError::SignedPreKeyExpired { .. })
        ));
        assert!(matches!(
            bundle(&id, t + SIGNED_PREKEY_MAX_FUTURE_SECS + 1).verify_at(t),
            Err(PreKeyError::SignedPreKeyFromFuture { .. })
        ));
    }

    #[test]
    fn rotation_due_after_two_days() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let spk = SignedPreKey::generate(&id, 1, 100, &mut OsRng);
        assert!(!spk.needs_rotation(100 + SIGNED_PREKEY_ROTATION_SECS - 1));
        assert!(spk.needs_rotation(100 + SIGNED_PREKEY_ROTATION_SECS));
    }
}
