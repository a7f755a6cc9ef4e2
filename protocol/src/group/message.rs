//! The group-message format: the fixed header a receiver reads to find its
//! state, and the length limits of a whole message.
//!
//! Must never: treat a parsed header as authenticated (it is checked by the
//! signature and the AEAD later), or panic on any input.

use super::distribution::{DistributionId, DISTRIBUTION_ID_LEN};
use super::error::GroupError;

/// First byte of a group message of this format.
pub const GROUP_MESSAGE_VERSION: u8 = 1;
/// Largest group plaintext (a padded plaintext, section "padding").
pub const MAX_GROUP_PLAINTEXT: usize = crate::padding::MAX_PADDED_LEN;
/// Length of the group-message header (version, distribution id, chain id, iteration).
pub const GROUP_HEADER_LEN: usize = 1 + DISTRIBUTION_ID_LEN + 4 + 4;
pub(super) const TAG_LEN: usize = 16;
pub(super) const SIGNATURE_LEN: usize = 64;
/// Shortest group message: header, empty ciphertext's tag, signature.
pub const MIN_GROUP_MESSAGE_LEN: usize = GROUP_HEADER_LEN + TAG_LEN + SIGNATURE_LEN;
/// Longest group message.
pub const MAX_GROUP_MESSAGE_LEN: usize = MIN_GROUP_MESSAGE_LEN + MAX_GROUP_PLAINTEXT;

/// The fixed-layout header: version || distribution id || u32be chain id ||
/// u32be iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupMessageHeader {
    /// Which distribution (group and sender) the message belongs to.
    pub distribution_id: DistributionId,
    /// The sender's chain id within it.
    pub chain_id: u32,
    /// The chain iteration that encrypted it.
    pub iteration: u32,
}

impl GroupMessageHeader {
    pub(super) fn to_bytes(self) -> [u8; GROUP_HEADER_LEN] {
        let mut out = [0u8; GROUP_HEADER_LEN];
        out[0] = GROUP_MESSAGE_VERSION;
        out[1..17].copy_from_slice(&self.distribution_id);
        out[17..21].copy_from_slice(&self.chain_id.to_be_bytes());
        out[21..25].copy_from_slice(&self.iteration.to_be_bytes());
        out
    }

    /// Reads the header of a group message so the caller can find the
    /// receiver state; checks version and length, nothing cryptographic.
    pub fn parse(message: &[u8]) -> Result<Self, GroupError> {
        let len = message.len();
        if !(MIN_GROUP_MESSAGE_LEN..=MAX_GROUP_MESSAGE_LEN).contains(&len) {
            return Err(GroupError::BadMessageLength { len });
        }
        let header: &[u8; GROUP_HEADER_LEN] = message
            .get(..GROUP_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(GroupError::BadMessageLength { len })?;
        if header[0] != GROUP_MESSAGE_VERSION {
            return Err(GroupError::UnsupportedVersion(header[0]));
        }
        let mut distribution_id = [0u8; DISTRIBUTION_ID_LEN];
        distribution_id.copy_from_slice(&header[1..17]);
        let mut chain_id = [0u8; 4];
        chain_id.copy_from_slice(&header[17..21]);
        let mut iteration = [0u8; 4];
        iteration.copy_from_slice(&header[21..25]);
        Ok(Self {
            distribution_id,
            chain_id: u32::from_be_bytes(chain_id),
            iteration: u32::from_be_bytes(iteration),
        })
    }
}
