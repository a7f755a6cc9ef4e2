//! The Double Ratchet message header and its fixed 40-byte encoding.
//!
//! ```text
//! offset  len  field
//!      0   32  ratchet_key            sender's current X25519 ratchet public key
//!     32    4  previous_chain_length  u32be, messages sent on the sender's previous chain
//!     36    4  message_number         u32be, index of this message in the current chain
//! ```
//!
//! The header travels in the clear (inside the sealed-sender envelope) and is
//! authenticated as part of the AEAD associated data:
//! `AD = X3DH associated data || encoded header`.
//!
//! Must never: accept a length other than exactly 40 bytes, or be trusted
//! before the AEAD tag that covers it has verified.

use serde::{Deserialize, Serialize};

use crate::keys::PublicKey;

/// Encoded length of a [`Header`].
pub const HEADER_LEN: usize = 40;

/// A header was not exactly [`HEADER_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ratchet header has {actual} bytes, expected {HEADER_LEN}")]
pub struct HeaderLengthError {
    /// Length that was supplied.
    pub actual: usize,
}

/// What the receiver needs to find or derive the message key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The sender's current ratchet public key.
    pub ratchet_key: PublicKey,
    /// Number of messages the sender sent on its previous sending chain (PN).
    pub previous_chain_length: u32,
    /// This message's index in the current sending chain (N).
    pub message_number: u32,
}

impl Header {
    /// The fixed 40-byte encoding.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..32].copy_from_slice(self.ratchet_key.as_bytes());
        out[32..36].copy_from_slice(&self.previous_chain_length.to_be_bytes());
        out[36..].copy_from_slice(&self.message_number.to_be_bytes());
        out
    }

    /// Parses exactly 40 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderLengthError> {
        let bytes: &[u8; HEADER_LEN] = bytes.try_into().map_err(|_| HeaderLengthError {
            actual: bytes.len(),
        })?;
        let (key, rest) = bytes.split_at(32);
        let (pn, n) = rest.split_at(4);
        let mut key_bytes = [0u8; 32];
        key_bytes.copy_from_slice(key);
        let mut pn_bytes = [0u8; 4];
        pn_bytes.copy_from_slice(pn);
        let mut n_bytes = [0u8; 4];
        n_bytes.copy_from_slice(n);
        Ok(Header {
            ratchet_key: PublicKey::from_bytes(key_bytes),
            previous_chain_length: u32::from_be_bytes(pn_bytes),
            message_number: u32::from_be_bytes(n_bytes),
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
        };
        let bytes = header.encode();
        assert_eq!(&bytes[..32], &[7; 32]);
        assert_eq!(&bytes[32..], &[1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(Header::decode(&bytes), Ok(header));
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        assert_eq!(
            Header::decode(&[0; 39]),
            Err(HeaderLengthError { actual: 39 })
        );
        assert_eq!(
            Header::decode(&[0; 41]),
            Err(HeaderLengthError { actual: 41 })
        );
    }
}
