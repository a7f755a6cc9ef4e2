//! Stored forms ("pickles") of session state: versioned types of their own,
//! separate from the in-memory structs, in the manner of vodozemac's
//! `SessionPickle`.
//!
//! An in-memory type (`ratchet::Session`, `PairwiseSession`,
//! `SessionRecord`) may gain, lose or reorder fields freely; what a store
//! holds is its pickle, whose layout is fixed per format version and written
//! down in docs/PROTOCOL.md §4.9. Bytes are `version (1) || postcard(pickle)`;
//! a version this code does not know is [`PickleError::UnknownVersion`], never
//! a decode failure deep inside.
//!
//! Pickles hold raw secrets (root, chain, message and ratchet keys): each
//! pickle type zeroizes them on drop and its `Debug` prints nothing secret.
//! The encoded bytes are as secret as the session; the caller stores them
//! encrypted.
//!
//! Must never: decode bytes of an unknown version as if they were known,
//! accept a pickle that breaks a bound the live type keeps (e.g. more
//! skipped keys than `MAX_SKIPPED_KEYS`), or print key bytes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

/// The pickle format version this code writes and reads (docs/PROTOCOL.md
/// §4.9). A change to any pickle's layout gets a new number.
pub const PICKLE_VERSION: u8 = 0x01;

/// Why pickle bytes do not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// No bytes at all.
    #[error("empty pickle")]
    Empty,
    /// A leading version byte this code does not read (a newer or an
    /// unsupported older format).
    #[error(
        "pickle format version {found} is not supported (this code reads version {supported})"
    )]
    UnknownVersion {
        /// The version byte found.
        found: u8,
        /// The one this code reads.
        supported: u8,
    },
    /// The body after the version byte does not decode (truncated, trailing
    /// bytes, a wrong field).
    #[error("pickle does not decode: {0}")]
    Malformed(String),
    /// It decodes but describes a state the live type never has.
    #[error("pickle holds an impossible state: {0}")]
    Invalid(&'static str),
}

/// `PICKLE_VERSION || postcard(value)`, in a buffer wiped on drop.
pub(crate) fn encode<T: Serialize>(value: &T) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![PICKLE_VERSION]);
    // Serializing plain structs of integers, byte arrays, Vecs and Options
    // into a Vec cannot fail.
    #[allow(clippy::expect_used)]
    let body = Zeroizing::new(postcard::to_stdvec(value).expect("pickle structs serialize"));
    out.extend_from_slice(&body);
    out
}

/// Checks the version byte, then decodes the whole rest (trailing bytes are
/// an error).
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PickleError> {
    let (version, body) = bytes.split_first().ok_or(PickleError::Empty)?;
    if *version != PICKLE_VERSION {
        return Err(PickleError::UnknownVersion {
            found: *version,
            supported: PICKLE_VERSION,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| PickleError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PickleError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}

/// A fixed-length byte array in a pickle: postcard byte string (varint
/// length, then the bytes), the length checked on decode. Zeroized on drop
/// by the pickle that holds it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Bytes<const N: usize>(
    #[serde(with = "crate::keys::serde_bytes_array")] pub(crate) [u8; N],
);

impl<const N: usize> zeroize::Zeroize for Bytes<N> {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}
