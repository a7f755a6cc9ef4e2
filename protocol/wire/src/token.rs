//! The bearer token a login yields and `Authenticate` presents.
//!
//! Whoever holds the 32 bytes can act as the account until it expires, so the
//! token is treated like a key: random from the caller's CSPRNG, compared in
//! constant time, wiped on drop, and redacted from `Debug`. The relay stores
//! only a hash of it.
//!
//! Must never: appear in Debug output or logs, or be compared with `==` on bytes.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a [`SessionToken`] in bytes.
pub const SESSION_TOKEN_LEN: usize = 32;

/// A 32-byte session token (a length-prefixed byte string on the wire).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SessionToken(#[serde(with = "crate::keys::serde_bytes_array")] [u8; SESSION_TOKEN_LEN]);

impl SessionToken {
    /// Draws a fresh token.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; SESSION_TOKEN_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps token bytes (for example read back from the client's store).
    pub const fn from_bytes(bytes: [u8; SESSION_TOKEN_LEN]) -> Self {
        Self(bytes)
    }

    /// The secret bytes; callers must not log them.
    pub const fn expose_secret(&self) -> &[u8; SESSION_TOKEN_LEN] {
        &self.0
    }
}

impl ConstantTimeEq for SessionToken {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for SessionToken {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SessionToken {}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}
