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
use std::sync::OnceLock;

pub(crate) use umbra_wire::keys::serde_bytes_array;
pub use umbra_wire::keys::{KeyError, PublicKey};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// An X25519 private key. Zeroized on drop; `Debug` prints nothing secret.
///
/// Its public key is computed at most once per key (a base-point
/// multiplication costs as much as a fifth of a DH) and kept beside it, so
/// X3DH's responder and the ratchet session it starts, which both need the
/// signed prekey's public key, do not each recompute it. The cache holds
/// only public bytes; clones carry it along.
#[derive(Clone)]
pub struct SecretKey {
    secret: x25519_dalek::StaticSecret,
    public: OnceLock<PublicKey>,
}

/// The serde form of [`SecretKey`], unchanged from when it was the derived
/// newtype `SecretKey(StaticSecret)`: the cached public key is never stored.
#[derive(Serialize)]
#[serde(rename = "SecretKey")]
struct StoredRef<'a>(&'a x25519_dalek::StaticSecret);

#[derive(Deserialize)]
#[serde(rename = "SecretKey")]
struct Stored(x25519_dalek::StaticSecret);

impl Serialize for SecretKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredRef(&self.secret).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Stored::deserialize(d).map(|Stored(secret)| Self::wrap(secret))
    }
}

impl SecretKey {
    fn wrap(secret: x25519_dalek::StaticSecret) -> Self {
        Self {
            secret,
            public: OnceLock::new(),
        }
    }

    /// Draws a fresh key. Production code passes `rand::rngs::OsRng`; tests and
    /// vector generators pass a seeded RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let key = Self::wrap(x25519_dalek::StaticSecret::from(bytes));
        bytes.zeroize();
        key
    }

    /// Rebuilds a key from its 32 stored bytes (clamping happens inside X25519).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self::wrap(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The 32 private bytes, for persistence only. The caller owns zeroizing them.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The matching public key, computed on first use and then remembered.
    pub fn public_key(&self) -> PublicKey {
        *self.public.get_or_init(|| {
            PublicKey::from_bytes(x25519_dalek::PublicKey::from(&self.secret).to_bytes())
        })
    }

    /// X25519(self, peer). Fails if the result is not contributory, which is
    /// exactly the case of a low-order (small-subgroup) peer point.
    pub fn diffie_hellman(&self, peer: &PublicKey) -> Result<SharedSecret, KeyError> {
        let shared = self
            .secret
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

    /// The form of `SecretKey` before it cached its public key.
    mod before {
        #[derive(serde::Serialize, serde::Deserialize)]
        pub struct SecretKey(pub x25519_dalek::StaticSecret);
    }

    #[test]
    fn serde_form_is_the_old_newtype_and_public_key_is_the_same() {
        let key = SecretKey::from_bytes([0x24; 32]);
        let old = before::SecretKey(x25519_dalek::StaticSecret::from([0x24; 32]));
        let expected_public = x25519_dalek::PublicKey::from(&old.0).to_bytes();
        assert_eq!(
            postcard::to_stdvec(&key).unwrap(),
            postcard::to_stdvec(&old).unwrap()
        );
        // Stored before or after the public key was computed: same bytes.
        assert_eq!(key.public_key().to_bytes(), expected_public);
        assert_eq!(
            serde_json::to_string(&key).unwrap(),
            serde_json::to_string(&old).unwrap()
        );
        let stored = postcard::to_stdvec(&old).unwrap();
        let loaded: SecretKey = postcard::from_bytes(&stored).unwrap();
        assert_eq!(loaded.to_bytes(), key.to_bytes());
        assert_eq!(loaded.public_key().to_bytes(), expected_public);
        let cloned = key.clone();
        assert_eq!(cloned.public_key().to_bytes(), expected_public);
        let fresh = SecretKey::generate(&mut OsRng);
        assert_eq!(
            fresh.public_key().to_bytes(),
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(fresh.to_bytes()))
                .to_bytes()
        );
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
