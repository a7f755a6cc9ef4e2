//! Typed X25519 key material shared by every layer of the protocol.
//!
//! Raw `[u8; 32]` arrays make it easy to pass a private key where a public one
//! belongs, or to forget the low-order check on a peer's key. These types make
//! both mistakes hard: a [`PublicKey`] can only be combined with a
//! [`SecretKey`] through [`SecretKey::diffie_hellman`], which refuses
//! non-contributory results (a low-order peer point would make the shared
//! secret predictable).
//!
//! Must never: print secret bytes in `Debug`, leave secret bytes in memory
//! after drop, or return a shared secret computed from a low-order point.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

pub(crate) use umbra_wire::keys::serde_bytes_array;
pub use umbra_wire::keys::{KeyError, PublicKey};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// An X25519 private key. Zeroized on drop; `Debug` prints nothing secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct SecretKey(x25519_dalek::StaticSecret);

impl SecretKey {
    /// Draws a fresh key. Production code passes `rand::rngs::OsRng`; tests and
    /// vector generators pass a seeded RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let key = Self(x25519_dalek::StaticSecret::from(bytes));
        bytes.zeroize();
        key
    }

    /// Rebuilds a key from its 32 stored bytes (clamping happens inside X25519).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The 32 private bytes, for persistence only. The caller owns zeroizing them.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_bytes(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }

    /// X25519(self, peer). Fails if the result is not contributory, which is
    /// exactly the case of a low-order (small-subgroup) peer point.
    pub fn diffie_hellman(&self, peer: &PublicKey) -> Result<SharedSecret, KeyError> {
        let shared = self
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer.to_bytes()));
        if !shared.was_contributory() {
            return Err(KeyError::NonContributory);
        }
        Ok(SharedSecret(shared.to_bytes()))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// A 32-byte X25519 output. Only ever fed into a KDF; zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret([u8; 32]);

impl SharedSecret {
    /// The raw output, to feed into HKDF.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn dh_agrees_both_ways() {
        let a = SecretKey::generate(&mut OsRng);
        let b = SecretKey::generate(&mut OsRng);
        let ab = a.diffie_hellman(&b.public_key()).unwrap();
        let ba = b.diffie_hellman(&a.public_key()).unwrap();
        assert_eq!(ab.as_bytes(), ba.as_bytes());
    }

    #[test]
    fn low_order_points_are_rejected() {
        let a = SecretKey::generate(&mut OsRng);
        // Identity point and the order-2 point (u = 0 and u = 1) plus a
        // known order-8 point from the libsodium blocklist.
        let mut order8 = [0u8; 32];
        order8.copy_from_slice(&hex_literal(
            b"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        ));
        for p in [
            [0u8; 32],
            {
                let mut one = [0u8; 32];
                one[0] = 1;
                one
            },
            order8,
        ] {
            assert_eq!(
                a.diffie_hellman(&PublicKey::from_bytes(p)).unwrap_err(),
                KeyError::NonContributory
            );
        }
    }

    #[test]
    fn debug_hides_secret() {
        let a = SecretKey::from_bytes([0x42; 32]);
        let s = format!("{a:?}");
        assert!(!s.contains("42, 42") && !s.contains("4242"), "{s}");
        let shared = SharedSecret([0x42; 32]);
        assert_eq!(format!("{shared:?}"), "SharedSecret(<redacted>)");
    }

    fn hex_literal(s: &[u8]) -> Vec<u8> {
        hex::decode(s).unwrap()
    }
}
