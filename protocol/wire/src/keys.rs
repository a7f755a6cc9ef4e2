//! Public X25519 keys as they travel between clients and the relay, and the
//! serde encoding of every fixed-size byte array in umbra.
//!
//! The relay stores and serves these keys without ever combining them with a
//! private key, so this crate holds only the public half; the private
//! [`SecretKey`](https://docs.rs/umbra-protocol) and the Diffie-Hellman that
//! refuses low-order points live in umbra-protocol's `keys` module.
//!
//! Must never: hold a private key, or allocate an unzeroized buffer while
//! decoding a fixed array (many such arrays elsewhere are secrets).

use serde::{Deserialize, Serialize};

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

/// serde helper: encode `[u8; N]` as a byte string (compact in postcard and
/// readable as an array in JSON vectors).
///
/// Many of these arrays are secrets (chain, root and message keys, stored
/// identity seeds), so decoding copies the bytes straight into the array:
/// no intermediate heap buffer is left behind unzeroized, and nothing is
/// allocated for an input of the wrong length.
#[doc(hidden)]
pub mod serde_bytes_array {
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

    #[test]
    fn public_key_parses_exactly_32_bytes() {
        let key = PublicKey::from_slice(&[7u8; 32]).unwrap();
        assert_eq!(key.to_bytes(), [7u8; 32]);
        assert_eq!(
            PublicKey::from_slice(&[7u8; 31]),
            Err(KeyError::BadLength {
                expected: 32,
                actual: 31
            })
        );
        assert_eq!(format!("{key:?}"), "PublicKey(0707070707070707…)");
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
}
