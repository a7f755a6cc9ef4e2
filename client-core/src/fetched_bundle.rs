//! Checking a prekey bundle the relay hands out before a session starts
//! from it.
//!
//! The relay is not trusted: the bundle must belong to the account that was
//! asked for, its identity binding and signed-prekey signature must verify,
//! and the signed prekey must be fresh — at most
//! [`SIGNED_PREKEY_MAX_AGE_SECS`] old and not from the future — because a
//! relay that kept serving an old bundle would otherwise steer new sessions
//! onto a key whose secret may since have leaked.
//!
//! Must never: return a bundle that was not verified at the current time.

use umbra_protocol::prekeys::{PreKeyBundle, PreKeyError, VerifiedPreKeyBundle};
use umbra_protocol::wire::{AccountId, PreKeyBundleWire, Username};

use crate::failure::{CryptoFailure, RelayMisbehaved};
use crate::Error;

#[cfg(doc)]
use umbra_protocol::prekeys::SIGNED_PREKEY_MAX_AGE_SECS;

const SECS_PER_DAY: u64 = 24 * 60 * 60;

/// Verifies the bundle the relay returned for `account` (known to the user
/// as `name`) at `now` (Unix seconds).
pub(crate) fn verify_fetched_bundle(
    wire: &PreKeyBundleWire,
    account: AccountId,
    name: &Username,
    now: u64,
) -> Result<VerifiedPreKeyBundle, Error> {
    if wire.account != account {
        return Err(Error::Protocol(RelayMisbehaved::WrongBundleAccount));
    }
    bundle_from_wire(wire)?
        .verify_classical_at(now)
        .map_err(|e| match e {
            PreKeyError::SignedPreKeyExpired { created_at, now } => Error::PeerKeysExpired {
                username: name.clone(),
                age_days: now.saturating_sub(created_at) / SECS_PER_DAY,
            },
            other => Error::Crypto(CryptoFailure::InvalidBundle {
                username: name.clone(),
                source: other,
            }),
        })
}

/// Converts the relay's bundle encoding into the protocol's (unverified) bundle.
fn bundle_from_wire(wire: &PreKeyBundleWire) -> Result<PreKeyBundle, Error> {
    PreKeyBundle::try_from(wire).map_err(|e| Error::Crypto(CryptoFailure::BundleIdentity(e)))
}

#[cfg(test)]
mod tests {
    use rand::rngs::OsRng;
    use umbra_protocol::identity::IdentityKeyPair;
    use umbra_protocol::prekeys::SIGNED_PREKEY_MAX_AGE_SECS;

    use super::*;
    use crate::prekey_maintenance::{signed_wire, InitialKeys};

    const NOW: u64 = 1_800_000_000;

    /// A bundle for `account` whose signed prekey was made at `created_at`.
    fn bundle(account: AccountId, created_at: u64) -> PreKeyBundleWire {
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let keys = InitialKeys::generate(&identity, created_at, &mut OsRng);
        PreKeyBundleWire {
            account,
            device: umbra_protocol::wire::DeviceId::PRIMARY,
            identity: identity.public().to_bytes().to_vec(),
            signed_prekey: signed_wire(&keys.signed),
            one_time_prekey: None,
            last_resort: None,
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
}
