//! The Double Ratchet message header and its fixed 178-byte encoding
//! (message version 0x02).
//!
//! ```text
//! offset  len  field
//!      0   32  ratchet_key            sender's current X25519 ratchet public key
//!     32    4  previous_chain_length  u32be, messages sent on the sender's previous chain
//!     36    4  message_number         u32be, index of this message in the current chain
//!     40    4  pq_epoch               u32be, the sender's KEM epoch its DH step for this
//!                                     chain mixed (0: a classical step), §4.13
//!     44  134  chunk                  the PQ chunk slot (pq/chunk.rs)
//! ```
//!
//! The header travels in the clear (inside the sealed-sender envelope) and is
//! authenticated as part of the AEAD associated data:
//! `AD = X3DH associated data || type || version || encoded header`.
//!
//! Must never: accept a length other than exactly 178 bytes or a malformed
//! chunk slot, or be trusted before the AEAD tag that covers it has verified.

use super::pq::{Chunk, ChunkError, CHUNK_SLOT_LEN};
use crate::keys::PublicKey;

/// Encoded length of a [`Header`].
pub const HEADER_LEN: usize = 44 + CHUNK_SLOT_LEN;

/// Why bytes are not a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not exactly [`HEADER_LEN`] bytes.
    #[error("ratchet header has {actual} bytes, expected {HEADER_LEN}")]
    Length {
        /// Length that was supplied.
        actual: usize,
    },
    /// The chunk slot breaks its layout.
    #[error("ratchet header's PQ chunk: {0}")]
    Chunk(#[from] ChunkError),
}

/// What the receiver needs to find or derive the message key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The sender's current ratchet public key.
    pub ratchet_key: PublicKey,
    /// Number of messages the sender sent on its previous sending chain (PN).
    pub previous_chain_length: u32,
    /// This message's index in the current sending chain (N).
    pub message_number: u32,
    /// The sender's KEM epoch mixed into the DH step that started this
    /// chain, 0 if that step was classical.
    pub pq_epoch: u32,
    /// The chunk of an encapsulation key or ciphertext this message carries.
    pub chunk: Chunk,
}

impl Header {
    /// The fixed encoding.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..32].copy_from_slice(self.ratchet_key.as_bytes());
        out[32..36].copy_from_slice(&self.previous_chain_length.to_be_bytes());
        out[36..40].copy_from_slice(&self.message_number.to_be_bytes());
        out[40..44].copy_from_slice(&self.pq_epoch.to_be_bytes());
        out[44..].copy_from_slice(&self.chunk.encode());
        out
    }

    /// Parses exactly [`HEADER_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        let bytes: &[u8; HEADER_LEN] = bytes.try_into().map_err(|_| HeaderError::Length {
            actual: bytes.len(),
        })?;
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[at..at + 4]);
            u32::from_be_bytes(b)
        };
        let mut key_bytes = [0u8; 32];
        key_bytes.copy_from_slice(&bytes[..32]);
        let mut slot = [0u8; CHUNK_SLOT_LEN];
        slot.copy_from_slice(&bytes[44..]);
        Ok(Header {
            ratchet_key: PublicKey::from_bytes(key_bytes),
            previous_chain_length: u32_at(32),
            message_number: u32_at(36),
            pq_epoch: u32_at(40),
            chunk: Chunk::decode(&slot)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_fixed_layout_and_round_trips() {
        let header = Header {
            ratchet_key: PublicKey::from_bytes([7; 32]),
            previous_chain_length: 0x0102_0304,
            message_number: 0x0a0b_0c0d,
            pq_epoch: 0x1122_3344,
            chunk: Chunk::NONE,
        };
        let bytes = header.encode();
        assert_eq!(HEADER_LEN, 178);
        assert_eq!(&bytes[..32], &[7; 32]);
        assert_eq!(
            &bytes[32..44],
            &[1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0x11, 0x22, 0x33, 0x44]
        );
        assert!(bytes[44..].iter().all(|&b| b == 0));
        assert_eq!(Header::decode(&bytes), Ok(header));
    }

    #[test]
    fn wrong_lengths_and_bad_slots_are_rejected() {
        assert_eq!(
            Header::decode(&[0; HEADER_LEN - 1]),
            Err(HeaderError::Length {
                actual: HEADER_LEN - 1
            })
        );
        assert_eq!(
            Header::decode(&[0; HEADER_LEN + 1]),
            Err(HeaderError::Length {
                actual: HEADER_LEN + 1
            })
        );
        let mut bytes = [0u8; HEADER_LEN];
        bytes[44] = 9;
        assert_eq!(
            Header::decode(&bytes),
            Err(HeaderError::Chunk(ChunkError::UnknownKind(9)))
        );
    }
}
