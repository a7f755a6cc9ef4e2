//! The wire form of one Double Ratchet message: version, header, ciphertext.
//!
//! ```text
//! offset  len   field
//!      0    1   version = 0x02
//!      1  178   header (see header.rs)
//!    179   n+16 ChaCha20-Poly1305 ciphertext of the n-byte (padded) plaintext, then the tag
//! ```
//!
//! The minimum encoding is 195 bytes (empty plaintext). Version 0x01 (the
//! 40-byte header before the post-quantum step) is refused as
//! [`RatchetMessageError::UnsupportedVersion`]. There is no upper bound
//! at this layer: the sealed envelope that carries a ratchet message is
//! bounded by the wire limits before it gets here.
//!
//! Must never: panic on any input, or accept an unknown version.

use super::header::{Header, HeaderError, HEADER_LEN};
use super::message_key::TAG_LEN;
use super::pq::ChunkError;

/// Version byte of the ratchet message format described above.
pub const RATCHET_MESSAGE_VERSION: u8 = 0x02;

/// Smallest valid encoding: version, header and a bare tag.
pub const MIN_RATCHET_MESSAGE_LEN: usize = 1 + HEADER_LEN + TAG_LEN;

/// Why bytes are not a ratchet message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RatchetMessageError {
    /// Shorter than version + header + tag.
    #[error("ratchet message has {actual} bytes, at least {MIN_RATCHET_MESSAGE_LEN} are needed")]
    Truncated {
        /// Length that was supplied.
        actual: usize,
    },
    /// A version byte this implementation does not speak.
    #[error("unsupported ratchet message version {0:#04x}")]
    UnsupportedVersion(u8),
    /// The header's PQ chunk slot breaks its layout (§4.3).
    #[error("malformed ratchet header: {0}")]
    MalformedChunk(ChunkError),
}

/// A header plus the AEAD output (ciphertext followed by the 16-byte tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatchetMessage {
    /// Cleartext, authenticated header.
    pub header: Header,
    /// `ciphertext || tag`.
    pub ciphertext: Vec<u8>,
}

impl RatchetMessage {
    /// Length of [`RatchetMessage::to_bytes`]'s output.
    pub fn encoded_len(&self) -> usize {
        1 + HEADER_LEN + self.ciphertext.len()
    }

    /// The versioned encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut out);
        out
    }

    /// Appends the versioned encoding to `out` (lets a wrapping layer avoid a copy).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(RATCHET_MESSAGE_VERSION);
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&self.ciphertext);
    }

    /// Parses the versioned encoding. Checks structure only; authenticity is
    /// established by `Session::decrypt`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RatchetMessageError> {
        if bytes.len() < MIN_RATCHET_MESSAGE_LEN {
            return Err(RatchetMessageError::Truncated {
                actual: bytes.len(),
            });
        }
        let (version, rest) = bytes.split_at(1);
        if version != [RATCHET_MESSAGE_VERSION] {
            return Err(RatchetMessageError::UnsupportedVersion(
                version.first().copied().unwrap_or_default(),
            ));
        }
        let (header, ciphertext) = rest.split_at(HEADER_LEN);
        let header = Header::decode(header).map_err(|e| match e {
            HeaderError::Chunk(chunk) => RatchetMessageError::MalformedChunk(chunk),
            HeaderError::Length { .. } => RatchetMessageError::Truncated {
                actual: bytes.len(),
            },
        })?;
        Ok(RatchetMessage {
            header,
            ciphertext: ciphertext.to_vec(),
        })
    }
}
