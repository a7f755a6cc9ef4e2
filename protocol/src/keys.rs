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
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Errors from raw key operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The peer's X25519 point is of low order, so the DH output is not
    /// contributory (all-zero or otherwise predictable).
    #[error("peer X25519 key is a low-order point; the Diffie-Hellman result is not contributory")]
    NonContributory,
    /// A byte string had the wrong length for a key.
    #[error("key has {actual} bytes, expected {expected}")]
    BadLength {
        /// Expected length in bytes.
        expected: usize,
        /// Length that was supplied.
        actual: usize,
    },
}

/// An X25519 public key (32 bytes, little-endian u-coordinate as in RFC 7748).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey(#[serde(with = "serde_bytes_array")] [u8; 32]);

impl PublicKey {
    /// Wraps 32 bytes received from a peer. No check happens here: the
    /// low-order check is made at every Diffie-Hellman, where it matters.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadLength {
            expected: 32,
            actual: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The 32-byte encoding.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32-byte encoding, by value.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

impl From<&x25519_dalek::PublicKey> for PublicKey {
    fn from(value: &x25519_dalek::PublicKey) -> Self {
        Self(value.to_bytes())
    }
}

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
        PublicKey::from(&x25519_dalek::PublicKey::from(&self.0))
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

/// serde helper: encode `[u8; N]` as a byte string (compact in postcard and
/// readable as an array in JSON vectors).
///
/// Many of these arrays are secrets (chain, root and message keys, stored
/// identity seeds), so decoding copies the bytes straight into the array:
/// no intermediate heap buffer is left behind unzeroized, and nothing is
/// allocated for an input of the wrong length.
pub(crate) mod serde_bytes_array {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use zeroize::Zeroize;

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        d.deserialize_bytes(ArrayVisitor::<N>)
    }

    struct ArrayVisitor<const N: usize>;

    impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
        type Value = [u8; N];

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a byte string of exactly {N} bytes")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<[u8; N], E> {
            v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
        }

        fn visit_byte_buf<E: Error>(self, mut v: Vec<u8>) -> Result<[u8; N], E> {
            let out = self.visit_bytes(&v);
            v.zeroize();
            out
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut out = [0u8; N];
            for (i, slot) in out.iter_mut().enumerate() {
                match seq.next_element::<u8>()? {
                    Some(b) => *slot = b,
                    None => {
                        out.zeroize();
                        return Err(A::Error::invalid_length(i, &self));
                    }
                }
            }
            if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                out.zeroize();
                return Err(A::Error::invalid_length(N + 1, &self));
            }
            Ok(out)
        }
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

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Wrapped(#[serde(with = "serde_bytes_array")] [u8; 4]);

    #[test]
    fn fixed_arrays_roundtrip_and_refuse_other_lengths() {
        let v = Wrapped([1, 2, 3, 4]);
        let bytes = postcard::to_stdvec(&v).unwrap();
        assert_eq!(bytes, [4, 1, 2, 3, 4]);
        assert_eq!(postcard::from_bytes::<Wrapped>(&bytes).unwrap(), v);
        assert!(postcard::from_bytes::<Wrapped>(&[3, 1, 2, 3]).is_err());
        assert!(postcard::from_bytes::<Wrapped>(&[5, 1, 2, 3, 4, 5]).is_err());
        // A length prefix larger than the input fails without allocating.
        assert!(postcard::from_bytes::<Wrapped>(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, "[1,2,3,4]");
        assert_eq!(serde_json::from_str::<Wrapped>(&json).unwrap(), v);
        assert!(serde_json::from_str::<Wrapped>("[1,2,3]").is_err());
        assert!(serde_json::from_str::<Wrapped>("[1,2,3,4,5]").is_err());
    }

    fn hex_literal(s: &[u8]) -> Vec<u8> {
        hex::decode(s).unwrap()
    }
}
