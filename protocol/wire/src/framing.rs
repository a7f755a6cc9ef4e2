//! The version-byte-plus-postcard framing shared by wire frames and content.
//!
//! An encoded value is `[version: u8][postcard(value)]`. Decoding checks, in
//! this order: total length against the limit (before parsing anything), a
//! non-empty input, the version byte against the supported range, the
//! postcard body, that no bytes are left over, and that re-encoding the value
//! gives back exactly the input (so every value has one encoding: postcard
//! alone would accept over-long varints).
//!
//! Must never: panic on any input, or parse a body whose version is unsupported.

use std::ops::RangeInclusive;

use serde::{de::DeserializeOwned, Serialize};

use super::error_code::ErrorCode;

/// Why bytes could not be turned into a frame, or a frame into bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Zero bytes: not even a version byte.
    #[error("empty frame: no version byte")]
    Empty,
    /// The input (or the encoding of a value) exceeds the size limit.
    #[error("frame is {len} bytes; at most {max} are allowed")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The version byte is outside the supported range.
    #[error("unsupported version {got}; this side supports versions {min} to {max}")]
    UnsupportedVersion {
        /// The version found.
        got: u8,
        /// Oldest supported.
        min: u8,
        /// Newest supported.
        max: u8,
    },
    /// The peer sent the version-rejection notice: it cannot read our version.
    #[error("peer rejected our version; it supports versions {min} to {max}")]
    PeerRejectedVersion {
        /// The peer's oldest supported version.
        min: u8,
        /// The peer's newest supported version.
        max: u8,
    },
    /// The body is not a valid postcard encoding of the expected type.
    #[error("malformed frame body: {0}")]
    Malformed(#[source] postcard::Error),
    /// A valid value was followed by extra bytes.
    #[error("{count} trailing bytes after the frame body")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The body decodes, but not from its one canonical encoding (for
    /// example an over-long varint).
    #[error("frame body is not canonically encoded")]
    NonCanonical,
    /// The value could not be serialized.
    #[error("could not encode frame: {0}")]
    Encode(#[source] postcard::Error),
}

impl WireError {
    /// The code a relay reports for this failure.
    pub const fn code(&self) -> ErrorCode {
        match self {
            WireError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            WireError::UnsupportedVersion { .. } | WireError::PeerRejectedVersion { .. } => {
                ErrorCode::UnsupportedVersion
            }
            WireError::Empty
            | WireError::Malformed(_)
            | WireError::TrailingBytes { .. }
            | WireError::NonCanonical
            | WireError::Encode(_) => ErrorCode::BadFrame,
        }
    }
}

/// Writes `[version][postcard(value)]`, refusing results over `max_len`.
/// Public because umbra-protocol frames its encrypted content the same way.
pub fn encode_versioned<T: Serialize>(
    version: u8,
    value: &T,
    max_len: usize,
) -> Result<Vec<u8>, WireError> {
    let out = postcard::to_extend(value, vec![version]).map_err(WireError::Encode)?;
    if out.len() > max_len {
        return Err(WireError::TooLarge {
            len: out.len(),
            max: max_len,
        });
    }
    Ok(out)
}

/// Checks length and version, returning the version and the body.
pub(crate) fn split_version(
    bytes: &[u8],
    max_len: usize,
    supported: RangeInclusive<u8>,
) -> Result<(u8, &[u8]), WireError> {
    if bytes.len() > max_len {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if !supported.contains(&version) {
        return Err(WireError::UnsupportedVersion {
            got: version,
            min: *supported.start(),
            max: *supported.end(),
        });
    }
    Ok((version, body))
}

/// Reads `[version][postcard(value)]` under the rules in the module docs.
/// Public because umbra-protocol frames its encrypted content the same way.
pub fn decode_versioned<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
    supported: RangeInclusive<u8>,
) -> Result<T, WireError> {
    let (_, body) = split_version(bytes, max_len, supported)?;
    let (value, rest): (T, &[u8]) =
        postcard::take_from_bytes(body).map_err(WireError::Malformed)?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes { count: rest.len() });
    }
    let canonical = postcard::to_allocvec(&value).map_err(WireError::Encode)?;
    if canonical != body {
        return Err(WireError::NonCanonical);
    }
    Ok(value)
}
