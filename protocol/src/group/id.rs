//! The group identifier: 32 random bytes chosen by the group's creator. One
//! type for every layer that names a group (content, changes, sender keys,
//! group-message headers), so a 32-byte id cannot be confused with another
//! 32-byte value or shortened somewhere.
//!
//! Must never: be derived from anything guessable (the relay must not link
//! groups by id; it never sees one, but a predictable id would let an
//! outsider aim a forged change at a known group).

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// Length of a [`GroupId`] in bytes.
pub const GROUP_ID_LEN: usize = 32;

/// Identifies one group (random, 32 bytes, chosen by its creator).
/// Serialized (postcard) as a byte string: `0x20` then the 32 bytes (the
/// length is checked on decode).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(#[serde(with = "crate::keys::serde_bytes_array")] pub [u8; GROUP_ID_LEN]);

impl GroupId {
    /// Draws a fresh id; collisions are negligible at 256 bits.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; GROUP_ID_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; GROUP_ID_LEN] {
        &self.0
    }

    /// Lower-case hex (64 digits).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the 64-digit hex form (either case); `None` otherwise.
    pub fn from_hex(text: &str) -> Option<Self> {
        crate::wire::hex_array(text).map(Self)
    }
}

impl std::fmt::Debug for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupId({})", self.to_hex())
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_postcard_is_a_32_byte_string() {
        let id = GroupId([0xab; GROUP_ID_LEN]);
        assert_eq!(id.to_hex().len(), 64);
        assert_eq!(GroupId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(GroupId::from_hex(&id.to_hex().to_uppercase()), Some(id));
        assert_eq!(GroupId::from_hex(&id.to_hex()[..62]), None);
        let mut expected = vec![0x20];
        expected.extend_from_slice(&[0xab; GROUP_ID_LEN]);
        assert_eq!(postcard::to_stdvec(&id).unwrap(), expected);
        assert!(postcard::from_bytes::<GroupId>(&expected[..32]).is_err());
    }
}
