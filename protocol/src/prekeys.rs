//! Signed, one-time and last-resort prekeys, and the bundle a relay hands
//! out so that someone can start a session with an offline peer.
//!
//! The signed prekey is signed by the owner's identity (label
//! [`labels::SIGNED_PREKEY`]) over its id, creation time and key; one-time
//! and last-resort prekeys are unsigned (as in Signal): a relay that swaps
//! one can only make the session fail, because DH1..DH3 still bind both
//! identities and the signed prekey.
//!
//! A bundle also carries the owner's signed ML-KEM-768 prekeys (a one-time
//! one while the relay has any, and the last-resort one), which make the
//! session hybrid (PQXDH, docs/PROTOCOL.md 3.9, 3.10). Unlike X25519
//! one-time prekeys they are signed, kind included: the KEM secret is what
//! protects the session against a quantum attacker, so a relay must not be
//! able to substitute a key whose private half it holds. A bundle without
//! one is refused by [`PreKeyBundle::verify`] ([`PreKeyError::NoKemPreKey`]):
//! no silent downgrade to a classical session.
//!
//! Must never: let an unverified bundle reach [`crate::x3dh::initiate_hybrid`]
//! (only [`VerifiedPreKeyBundle`] can), accept a non-strict signature,
//! accept a KEM prekey served under the other kind, or print private prekey
//! bytes.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::identity::{IdentityError, IdentityKeyPair, IdentityPublic, Signature};
use crate::kem_prekeys::{KemPreKeyKind, KemPreKeyPublic, VerifiedKemPreKey};
use crate::keys::{PublicKey, SecretKey};
use crate::labels;
use crate::wire::{HybridBundleWire, PreKeyBundleWire};

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

    /// The private key, for the responder side of key agreement (§3).
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

    /// The private key, for the responder side of key agreement (§3).
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

/// Which of a device's signed ML-KEM prekeys an initiator encapsulated to,
/// as the hybrid pre-key message names it: the kind byte and the id
/// (docs/PROTOCOL.md 3.9). The responder looks up the private half by it
/// and deletes a one-time one after the first message decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KemPreKeyRef {
    /// One-time (deleted after first use) or last-resort (kept).
    pub kind: KemPreKeyKind,
    /// The owner-chosen id, unique per device and kind.
    pub id: u32,
}

impl KemPreKeyRef {
    /// The reference of a verified served KEM prekey.
    pub fn of(prekey: &VerifiedKemPreKey) -> Self {
        Self {
            kind: prekey.kind(),
            id: prekey.id(),
        }
    }
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
    /// One signed one-time ML-KEM prekey, if the relay had any left. Its
    /// `kind` must be [`KemPreKeyKind::OneTime`].
    #[serde(with = "kem_serde::one_time")]
    pub kem_one_time: Option<KemPreKeyPublic>,
    /// The signed last-resort ML-KEM prekey. Its `kind` must be
    /// [`KemPreKeyKind::LastResort`].
    #[serde(with = "kem_serde::last_resort")]
    pub kem_last_resort: Option<KemPreKeyPublic>,
}

/// Why a relay's hybrid bundle does not convert into a [`PreKeyBundle`]
/// (before any signature is checked): the bytes of one field do not parse.
/// The relay's fault, or the publishing device's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BundleParseError {
    /// The identity is not a 128-byte public identity.
    #[error("bundle identity does not parse: {0}")]
    Identity(#[from] IdentityError),
    /// The one-time ML-KEM prekey is not 1184 bytes.
    #[error("one-time ML-KEM prekey: {0}")]
    KemOneTime(PreKeyError),
    /// The last-resort ML-KEM prekey is not 1184 bytes.
    #[error("last-resort ML-KEM prekey: {0}")]
    KemLastResort(PreKeyError),
}

/// Checks one served KEM prekey: served as `kind` (the field it came in),
/// signed by `identity` over that kind, and a valid encapsulation key.
fn verify_kem_prekey(
    identity: &IdentityPublic,
    kind: KemPreKeyKind,
    prekey: &KemPreKeyPublic,
) -> Result<VerifiedKemPreKey, PreKeyError> {
    // The kind a key is used as is the kind its signature must cover: a
    // one-time key served in the last-resort field (or labelled with the
    // other kind) does not verify.
    if prekey.kind != kind {
        return Err(PreKeyError::BadKemPreKeySignature);
    }
    VerifiedKemPreKey::verify(prekey, identity)
}

/// How a signed creation time compares with the initiator's clock.
enum Freshness {
    Fresh,
    /// More than [`SIGNED_PREKEY_MAX_FUTURE_SECS`] ahead of `now`.
    FromFuture,
    /// More than [`SIGNED_PREKEY_MAX_AGE_SECS`] before `now`.
    Expired,
}

/// The one age rule for signed prekeys and last-resort KEM prekeys.
fn freshness(created_at: u64, now: u64) -> Freshness {
    if created_at > now.saturating_add(SIGNED_PREKEY_MAX_FUTURE_SECS) {
        Freshness::FromFuture
    } else if now.saturating_sub(created_at) > SIGNED_PREKEY_MAX_AGE_SECS {
        Freshness::Expired
    } else {
        Freshness::Fresh
    }
}

/// Whether a bundle without an ML-KEM prekey may verify.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KemPolicy {
    Required,
    /// `verify_classical`'s (`low-level-api` only): for the classical
    /// vectors and baseline benchmark, never for a client.
    #[cfg(feature = "low-level-api")]
    ClassicalAllowed,
}

impl PreKeyBundle {
    /// Verifies, in order and strictly: the identity binding, the signed
    /// prekey signature, the one-time KEM prekey (if served) and the
    /// last-resort KEM prekey (if served), each signed over the kind of the
    /// field it came in and a valid ML-KEM-768 key; then refuses a bundle
    /// with neither ([`PreKeyError::NoKemPreKey`]: no silent downgrade).
    /// Does not look at the clock; see [`PreKeyBundle::verify_at`].
    pub fn verify(self) -> Result<VerifiedPreKeyBundle, PreKeyError> {
        self.verify_with(KemPolicy::Required)
    }

    /// [`PreKeyBundle::verify`] plus freshness: refuses a signed prekey older
    /// than [`SIGNED_PREKEY_MAX_AGE_SECS`] or more than
    /// [`SIGNED_PREKEY_MAX_FUTURE_SECS`] in the future at `now` (unix secs),
    /// and a served last-resort KEM prekey by the same two limits
    /// ([`PreKeyError::KemPreKeyExpired`], [`PreKeyError::KemPreKeyFromFuture`]).
    /// One-time KEM prekeys have no age limit (docs/PROTOCOL.md 3.5).
    pub fn verify_at(self, now: u64) -> Result<VerifiedPreKeyBundle, PreKeyError> {
        self.verify_at_with(now, KemPolicy::Required)
    }

    /// [`PreKeyBundle::verify`] without the KEM requirement: a bundle
    /// without ML-KEM prekeys verifies (served ones are still checked).
    /// Only with the `low-level-api` feature: the classical test vectors
    /// and the classical baseline benchmark need classical sessions, and no
    /// client may start one (that is the downgrade a relay could force by
    /// stripping the KEM prekeys), so it is not part of the ordinary API.
    #[cfg(feature = "low-level-api")]
    pub fn verify_classical(self) -> Result<VerifiedPreKeyBundle, PreKeyError> {
        self.verify_with(KemPolicy::ClassicalAllowed)
    }

    /// [`PreKeyBundle::verify_at`] without the KEM requirement; see
    /// [`PreKeyBundle::verify_classical`] (also `low-level-api` only).
    #[cfg(feature = "low-level-api")]
    pub fn verify_classical_at(self, now: u64) -> Result<VerifiedPreKeyBundle, PreKeyError> {
        self.verify_at_with(now, KemPolicy::ClassicalAllowed)
    }

    fn verify_at_with(
        self,
        now: u64,
        policy: KemPolicy,
    ) -> Result<VerifiedPreKeyBundle, PreKeyError> {
        let created_at = self.signed_prekey.created_at;
        // Read before verification consumes the bundle; judged only after
        // its signature (which covers the time) verified.
        let kem_last_resort_created = self.kem_last_resort.as_ref().map(|k| k.created_at);
        let verified = self.verify_with(policy)?;
        match freshness(created_at, now) {
            Freshness::Fresh => {}
            Freshness::FromFuture => {
                return Err(PreKeyError::SignedPreKeyFromFuture { created_at, now })
            }
            Freshness::Expired => return Err(PreKeyError::SignedPreKeyExpired { created_at, now }),
        }
        // The last-resort KEM prekey is replaced on the signed prekey's
        // schedule and its old private half kept as long, so it has the
        // signed prekey's limits: a stale one means the owner stopped
        // refreshing, or the relay replays a key the owner may no longer
        // hold. Checked whenever served, even when a one-time KEM prekey is
        // the one used: an honest owner never publishes a stale one beside a
        // fresh signed prekey.
        if let Some(created_at) = kem_last_resort_created {
            match freshness(created_at, now) {
                Freshness::Fresh => {}
                Freshness::FromFuture => {
                    return Err(PreKeyError::KemPreKeyFromFuture { created_at, now })
                }
                Freshness::Expired => {
                    return Err(PreKeyError::KemPreKeyExpired { created_at, now })
                }
            }
        }
        Ok(verified)
    }

    fn verify_with(self, policy: KemPolicy) -> Result<VerifiedPreKeyBundle, PreKeyError> {
        self.identity.verify()?;
        self.signed_prekey.verify(&self.identity)?;
        let kem_one_time = self
            .kem_one_time
            .as_ref()
            .map(|k| verify_kem_prekey(&self.identity, KemPreKeyKind::OneTime, k))
            .transpose()?;
        let kem_last_resort = self
            .kem_last_resort
            .as_ref()
            .map(|k| verify_kem_prekey(&self.identity, KemPreKeyKind::LastResort, k))
            .transpose()?;
        // The one-time KEM prekey if served (forward secrecy for the KEM
        // part too), else the last-resort one.
        let kem_prekey = kem_one_time.or(kem_last_resort);
        if kem_prekey.is_none() && policy == KemPolicy::Required {
            return Err(PreKeyError::NoKemPreKey);
        }
        let extra = match (self.one_time_prekey, self.last_resort) {
            (Some(otk), _) => Some((PreKeyRef::OneTime(otk.id), otk.key)),
            (None, Some(lr)) => Some((PreKeyRef::LastResort(lr.id), lr.key)),
            (None, None) => None,
        };
        Ok(VerifiedPreKeyBundle {
            identity: self.identity,
            signed_prekey: self.signed_prekey,
            extra_prekey: extra,
            kem_prekey,
        })
    }
}

impl TryFrom<&PreKeyBundleWire> for PreKeyBundle {
    type Error = IdentityError;

    /// The relay's encoding of a classical bundle as the (still unverified)
    /// protocol bundle, with no KEM prekeys (so [`PreKeyBundle::verify`]
    /// refuses it); fails only if the identity bytes do not parse.
    fn try_from(wire: &PreKeyBundleWire) -> Result<Self, IdentityError> {
        Ok(Self {
            identity: IdentityPublic::from_bytes(&wire.identity)?,
            signed_prekey: (&wire.signed_prekey).into(),
            one_time_prekey: wire.one_time_prekey.map(Into::into),
            last_resort: wire.last_resort.map(Into::into),
            kem_one_time: None,
            kem_last_resort: None,
        })
    }
}

impl TryFrom<&HybridBundleWire> for PreKeyBundle {
    type Error = BundleParseError;

    /// The relay's answer to `FetchHybridBundle` as the (still unverified)
    /// protocol bundle. Each KEM prekey gets the kind of the field it came
    /// in, which its signature must cover. Fails only if the identity or a
    /// KEM key does not parse (a wrong length); signatures, the FIPS 203
    /// key check and a missing KEM prekey are [`PreKeyBundle::verify`]'s.
    fn try_from(wire: &HybridBundleWire) -> Result<Self, BundleParseError> {
        let mut bundle = PreKeyBundle::try_from(&wire.bundle)?;
        bundle.kem_one_time = wire
            .kem_one_time
            .as_ref()
            .map(|k| KemPreKeyPublic::from_wire(KemPreKeyKind::OneTime, k))
            .transpose()
            .map_err(BundleParseError::KemOneTime)?;
        bundle.kem_last_resort = wire
            .kem_last_resort
            .as_ref()
            .map(|k| KemPreKeyPublic::from_wire(KemPreKeyKind::LastResort, k))
            .transpose()
            .map_err(BundleParseError::KemLastResort)?;
        Ok(bundle)
    }
}

/// Serde of a bundle's KEM prekeys as their wire form (the kind is the
/// field's), so a `PreKeyBundle` keeps its postcard round trip.
mod kem_serde {
    use crate::kem_prekeys::{KemPreKeyKind, KemPreKeyPublic};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use umbra_wire::KemPreKeyWire;

    fn ser<S: Serializer>(key: &Option<KemPreKeyPublic>, s: S) -> Result<S::Ok, S::Error> {
        key.as_ref().map(KemPreKeyPublic::to_wire).serialize(s)
    }

    fn de<'de, D: Deserializer<'de>>(
        kind: KemPreKeyKind,
        d: D,
    ) -> Result<Option<KemPreKeyPublic>, D::Error> {
        Option::<KemPreKeyWire>::deserialize(d)?
            .map(|w| KemPreKeyPublic::from_wire(kind, &w).map_err(serde::de::Error::custom))
            .transpose()
    }

    pub(super) mod one_time {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(
            key: &Option<KemPreKeyPublic>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            ser(key, s)
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<KemPreKeyPublic>, D::Error> {
            de(KemPreKeyKind::OneTime, d)
        }
    }

    pub(super) mod last_resort {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(
            key: &Option<KemPreKeyPublic>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            ser(key, s)
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<KemPreKeyPublic>, D::Error> {
            de(KemPreKeyKind::LastResort, d)
        }
    }
}

/// A bundle whose signatures verified. The only input
/// [`crate::x3dh::initiate_hybrid`] accepts; it can be built only by
/// [`PreKeyBundle::verify`] (which guarantees a KEM prekey) or, with the
/// `low-level-api` feature (vectors and benchmarks),
/// `PreKeyBundle::verify_classical`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPreKeyBundle {
    identity: IdentityPublic,
    signed_prekey: SignedPreKeyPublic,
    extra_prekey: Option<(PreKeyRef, PublicKey)>,
    kem_prekey: Option<VerifiedKemPreKey>,
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

    /// The ML-KEM prekey PQXDH encapsulates to: the one-time one if the
    /// bundle had one, else the last-resort one. Always present for a
    /// bundle from [`PreKeyBundle::verify`]; absent only for a classical
    /// bundle from `PreKeyBundle::verify_classical` (`low-level-api` only).
    pub fn kem_prekey(&self) -> Option<&VerifiedKemPreKey> {
        self.kem_prekey.as_ref()
    }
}

#[cfg(test)]
mod tests;
