//! Checking a prekey bundle the relay hands out before a session starts
//! from it.
//!
//! The relay is not trusted: the bundle must belong to the account that was
//! asked for, its identity binding and signed-prekey signature must verify,
//! and the signed prekey must be fresh — at most
//! [`SIGNED_PREKEY_MAX_AGE_SECS`] old and not from the future — because a
//! relay that kept serving an old bundle would otherwise steer new sessions
//! onto a key whose secret may since have leaked. It must also carry a
//! signed ML-KEM prekey (docs/PROTOCOL.md §1.4, §3.9): a bundle without one
//! is refused as [`Error::NoPostQuantumPreKey`], never used for a classical
//! session, whether the peer's client is old or a relay stripped the key.
//!
//! Must never: return a bundle that was not verified at the current time,
//! or one without a verified ML-KEM prekey.

use umbra_protocol::prekeys::{BundleParseError, PreKeyBundle, PreKeyError, VerifiedPreKeyBundle};
use umbra_protocol::wire::{AccountId, HybridBundleWire, Username};

use crate::failure::{CryptoFailure, RelayMisbehaved};
use crate::Error;

#[cfg(doc)]
use umbra_protocol::prekeys::SIGNED_PREKEY_MAX_AGE_SECS;

const SECS_PER_DAY: u64 = 24 * 60 * 60;

/// Verifies the hybrid bundle the relay returned for `account` (known to
/// the user as `name`) at `now` (Unix seconds).
pub(crate) fn verify_fetched_bundle(
    wire: &HybridBundleWire,
    account: AccountId,
    name: &Username,
    now: u64,
) -> Result<VerifiedPreKeyBundle, Error> {
    if wire.bundle.account != account {
        return Err(Error::Protocol(RelayMisbehaved::WrongBundleAccount));
    }
    let invalid = |source| {
        Error::Crypto(CryptoFailure::InvalidBundle {
            username: name.clone(),
            source,
        })
    };
    let bundle = PreKeyBundle::try_from(wire).map_err(|e| match e {
        BundleParseError::Identity(e) => Error::Crypto(CryptoFailure::BundleIdentity(e)),
        BundleParseError::KemOneTime(e) | BundleParseError::KemLastResort(e) => invalid(e),
    })?;
    bundle.verify_at(now).map_err(|e| match e {
        PreKeyError::SignedPreKeyExpired { created_at, now } => Error::PeerKeysExpired {
            username: name.clone(),
            age_days: now.saturating_sub(created_at) / SECS_PER_DAY,
        },
        // The downgrade refusal: no classical session instead.
        PreKeyError::NoKemPreKey => Error::NoPostQuantumPreKey {
            username: name.clone(),
            device: wire.bundle.device,
        },
        other => invalid(other),
    })
}

#[cfg(test)]
mod tests {
    use rand::rngs::OsRng;
    use umbra_protocol::identity::IdentityKeyPair;
    use umbra_protocol::prekeys::SIGNED_PREKEY_MAX_AGE_SECS;

    use super::*;
    use crate::prekey_maintenance::{signed_wire, InitialKeys};
    use crate::prekeys::kem::KemPreKeyState;
    use umbra_protocol::wire::{DeviceId, PreKeyBundleWire};

    const NOW: u64 = 1_800_000_000;

    /// A bundle for `account` whose signed prekey was made at `created_at`,
    /// with a last-resort ML-KEM prekey.
    fn bundle(account: AccountId, created_at: u64) -> HybridBundleWire {
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let keys = InitialKeys::generate(&identity, created_at, &mut OsRng);
        let (_, kem) = KemPreKeyState::initial(&identity, created_at, &mut OsRng);
        HybridBundleWire {
            bundle: PreKeyBundleWire {
                account,
                device: umbra_protocol::wire::DeviceId::PRIMARY,
                identity: identity.public().to_bytes().to_vec(),
                signed_prekey: signed_wire(&keys.signed),
                one_time_prekey: None,
                last_resort: None,
            },
            kem_one_time: None,
            kem_last_resort: Some(kem.public().to_wire()),
        }
    }

    fn bob() -> Username {
        Username::parse("bob").expect("valid name")
    }

    #[test]
    fn a_fresh_bundle_verifies() {
        let account = AccountId::random(&mut OsRng);
        let wire = bundle(account, NOW - 3 * SECS_PER_DAY);
        assert!(verify_fetched_bundle(&wire, account, &bob(), NOW).is_ok());
    }

    #[test]
    fn a_signed_prekey_older_than_fourteen_days_is_refused() {
        let account = AccountId::random(&mut OsRng);
        let wire = bundle(account, NOW - SIGNED_PREKEY_MAX_AGE_SECS - SECS_PER_DAY);
        match verify_fetched_bundle(&wire, account, &bob(), NOW) {
            Err(Error::PeerKeysExpired { username, age_days }) => {
                assert_eq!(username, bob());
                assert_eq!(age_days, 15);
            }
            other => panic!("expected PeerKeysExpired, got {other:?}"),
        }
        // Exactly at the limit is still accepted.
        let wire = bundle(account, NOW - SIGNED_PREKEY_MAX_AGE_SECS);
        assert!(verify_fetched_bundle(&wire, account, &bob(), NOW).is_ok());
    }

    #[test]
    fn a_signed_prekey_from_the_future_is_refused() {
        let account = AccountId::random(&mut OsRng);
        let wire = bundle(account, NOW + 2 * 60 * 60);
        // The peer's keys are at fault, and the error says whose.
        match verify_fetched_bundle(&wire, account, &bob(), NOW) {
            Err(Error::Crypto(CryptoFailure::InvalidBundle { username, .. })) => {
                assert_eq!(username, bob());
            }
            other => panic!("expected InvalidBundle, got {other:?}"),
        }
    }

    #[test]
    fn another_accounts_bundle_is_refused() {
        let wire = bundle(AccountId::random(&mut OsRng), NOW);
        // The relay is at fault: it served a bundle nobody asked for.
        assert!(matches!(
            verify_fetched_bundle(&wire, AccountId::random(&mut OsRng), &bob(), NOW),
            Err(Error::Protocol(RelayMisbehaved::WrongBundleAccount))
        ));
    }

    #[test]
    fn a_bundle_without_an_ml_kem_prekey_is_refused_naming_the_device() {
        let account = AccountId::random(&mut OsRng);
        let mut wire = bundle(account, NOW);
        wire.bundle.device = DeviceId(3);
        wire.kem_last_resort = None;
        match verify_fetched_bundle(&wire, account, &bob(), NOW) {
            Err(e @ Error::NoPostQuantumPreKey { .. }) => {
                let Error::NoPostQuantumPreKey { username, device } = &e else {
                    unreachable!()
                };
                assert_eq!((username, *device), (&bob(), DeviceId(3)));
                assert_eq!(
                    e.to_string(),
                    "bob (device 3) publishes no post-quantum prekey: its client or the relay is \
                     out of date; umbra will not start a classical session"
                );
            }
            other => panic!("expected NoPostQuantumPreKey, got {other:?}"),
        }
    }

    #[test]
    fn a_kem_prekey_served_in_the_wrong_field_is_an_invalid_bundle() {
        let account = AccountId::random(&mut OsRng);
        let mut wire = bundle(account, NOW);
        // The last-resort key served as a one-time one: its signature
        // covers the kind, so it does not verify.
        wire.kem_one_time = wire.kem_last_resort.take();
        assert!(matches!(
            verify_fetched_bundle(&wire, account, &bob(), NOW),
            Err(Error::Crypto(CryptoFailure::InvalidBundle {
                source: PreKeyError::BadKemPreKeySignature,
                ..
            }))
        ));
    }
}
