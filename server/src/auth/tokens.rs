//! Session tokens: minting on login, hashing for storage, expiry.
//!
//! A token is 32 random bytes handed to the client once; the relay keeps only
//! `SHA-256(token)` with an expiry, so a leaked database does not let anyone
//! authenticate. Lookup is by hash (an index probe on a value an attacker
//! cannot choose to match), and the store never compares raw tokens.
//!
//! Must never: store, log or Debug-print a raw token, or accept an expired one.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use umbra_wire::SessionToken;

/// Domain prefix hashed before the token, so this hash can never collide in
/// meaning with a SHA-256 of the same bytes used elsewhere.
pub const TOKEN_HASH_LABEL: &[u8] = b"umbra/v1/relay/token-hash";

/// The stored form of a token: `SHA-256(TOKEN_HASH_LABEL || token)`.
#[derive(Clone, Copy)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a presented token.
    pub fn of(token: &SessionToken) -> TokenHash {
        let mut h = Sha256::new();
        h.update(TOKEN_HASH_LABEL);
        h.update(token.expose_secret());
        TokenHash(h.finalize().into())
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for TokenHash {}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Even the hash is a lookup key into the token table; keep it out of logs.
        f.write_str("TokenHash(<redacted>)")
    }
}

/// A freshly minted token: the secret for the client, the hash and expiry for the store.
#[derive(Debug)]
pub struct IssuedToken {
    /// Give this to the client, once.
    pub token: SessionToken,
    /// Store this.
    pub hash: TokenHash,
    /// Unix seconds from which the token is refused.
    pub expires_at: u64,
}

/// Mints a token valid for `ttl` from `now_unix`.
pub fn issue<R: RngCore + CryptoRng>(rng: &mut R, now_unix: u64, ttl: Duration) -> IssuedToken {
    let token = SessionToken::random(rng);
    let hash = TokenHash::of(&token);
    IssuedToken {
        token,
        hash,
        expires_at: now_unix.saturating_add(ttl.as_secs()),
    }
}

/// Whether a token with this expiry is still valid at `now_unix`.
pub fn is_live(expires_at: u64, now_unix: u64) -> bool {
    now_unix < expires_at
}

/// How long an expired token's hash is kept before the expiry task purges
/// it. Within this window `Authenticate` with the expired token answers
/// `TokenExpired` ("log in again") rather than `AuthFailed`; the hash itself
/// authenticates nothing once expired.
pub const EXPIRED_TOKEN_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The purge cutoff at `now_unix`: tokens with `expires_at <= cutoff` have
/// been expired for at least [`EXPIRED_TOKEN_RETENTION`].
pub fn purge_cutoff(now_unix: u64) -> u64 {
    now_unix.saturating_sub(EXPIRED_TOKEN_RETENTION.as_secs())
}

/// The wall clock as Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The wall clock as Unix milliseconds (0 if the clock is before 1970;
/// saturating far past any real date).
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use sha2::{Digest, Sha256};

    #[test]
    fn hash_is_labelled_sha256_of_the_token() {
        let token = SessionToken::from_bytes([7u8; 32]);
        let mut expected = Sha256::new();
        expected.update(b"umbra/v1/relay/token-hash");
        expected.update([7u8; 32]);
        let expected: [u8; 32] = expected.finalize().into();
        assert_eq!(TokenHash::of(&token).0, expected);
        assert_ne!(
            TokenHash::of(&token),
            TokenHash::of(&SessionToken::from_bytes([8u8; 32]))
        );
    }

    #[test]
    fn issued_tokens_are_distinct_and_expire() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let a = issue(&mut rng, 1_000, Duration::from_secs(60));
        let b = issue(&mut rng, 1_000, Duration::from_secs(60));
        assert_ne!(a.token, b.token);
        assert_eq!(a.hash, TokenHash::of(&a.token));
        assert_eq!(a.expires_at, 1_060);
        assert!(is_live(a.expires_at, 1_059));
        assert!(
            !is_live(a.expires_at, 1_060),
            "expired exactly at expires_at"
        );
    }

    #[test]
    fn expired_hashes_are_purged_only_after_the_retention_window() {
        let day = 24 * 60 * 60;
        let now = 100 * day;
        assert_eq!(purge_cutoff(now), 70 * day);
        assert_eq!(purge_cutoff(5), 0, "no underflow near the epoch");
    }

    #[test]
    fn debug_output_never_shows_token_material() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let issued = issue(&mut rng, 0, Duration::from_secs(1));
        let text = format!("{issued:?}");
        let hex_token: String = issued
            .token
            .expose_secret()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!text.contains(&hex_token));
        assert!(text.contains("redacted"));
        assert!(!text.contains(&format!("{:?}", issued.token.expose_secret())));
    }
}
