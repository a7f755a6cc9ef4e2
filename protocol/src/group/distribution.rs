//! The sender-key distribution: what a member hands every other member
//! (over the pairwise channel) so they can decrypt and verify its messages.
//!
//! Must never: show the chain key in `Debug`, or leave a copy of it unwiped.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::chain::ChainKey;
use super::error::GroupError;

/// First byte of a sender-key distribution of this format.
pub const DISTRIBUTION_VERSION: u8 = 1;
/// Length of a distribution id.
pub const DISTRIBUTION_ID_LEN: usize = 16;
/// Length of the group-message header (version, distribution id, chain id, iteration).
pub const GROUP_HEADER_LEN: usize = 1 + DISTRIBUTION_ID_LEN + 4 + 4;
/// Length of an encoded [`SenderKeyDistribution`].
pub const DISTRIBUTION_LEN: usize = 1 + DISTRIBUTION_ID_LEN + 4 + 4 + 32 + 32;
/// Identifies one sender's chain within one group (chosen by the caller,
/// e.g. random per group and member).
pub type DistributionId = [u8; DISTRIBUTION_ID_LEN];

/// A sender key as handed to group members (over the pairwise channel,
/// never in the clear). Holds a chain key: zeroized on drop, redacted Debug.
#[derive(Clone, Serialize, Deserialize)]
pub struct SenderKeyDistribution {
    pub(super) distribution_id: DistributionId,
    pub(super) chain_id: u32,
    pub(super) chain: ChainKey,
    pub(super) signing_public: VerifyingKey,
}

impl SenderKeyDistribution {
    /// The distribution id.
    pub fn distribution_id(&self) -> &DistributionId {
        &self.distribution_id
    }

    /// The chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The first iteration a receiver built from it can decrypt.
    pub fn iteration(&self) -> u32 {
        self.chain.iteration
    }

    /// `version || distribution id (16) || u32be chain id || u32be iteration
    /// || chain key (32) || Ed25519 public key (32)` (89 bytes). The result
    /// holds a secret; it is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(DISTRIBUTION_LEN));
        out.push(DISTRIBUTION_VERSION);
        out.extend_from_slice(&self.distribution_id);
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        out.extend_from_slice(&self.chain.iteration.to_be_bytes());
        out.extend_from_slice(&self.chain.key);
        out.extend_from_slice(self.signing_public.as_bytes());
        out
    }

    /// Parses [`SenderKeyDistribution::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        let arr: &[u8; DISTRIBUTION_LEN] = bytes
            .try_into()
            .map_err(|_| GroupError::BadDistributionLength { len: bytes.len() })?;
        if arr[0] != DISTRIBUTION_VERSION {
            return Err(GroupError::UnsupportedVersion(arr[0]));
        }
        let mut distribution_id = [0u8; DISTRIBUTION_ID_LEN];
        distribution_id.copy_from_slice(&arr[1..17]);
        let mut chain_id = [0u8; 4];
        chain_id.copy_from_slice(&arr[17..21]);
        let mut iteration = [0u8; 4];
        iteration.copy_from_slice(&arr[21..25]);
        // A wiped local: the chain key is copied into the result below.
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&arr[25..57]);
        let mut signing = [0u8; 32];
        signing.copy_from_slice(&arr[57..89]);
        let signing_public =
            VerifyingKey::from_bytes(&signing).map_err(|_| GroupError::InvalidSigningKey)?;
        Ok(Self {
            distribution_id,
            chain_id: u32::from_be_bytes(chain_id),
            chain: ChainKey {
                key: *key,
                iteration: u32::from_be_bytes(iteration),
            },
            signing_public,
        })
    }
}

impl std::fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("distribution_id", &self.distribution_id)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.iteration)
            .finish_non_exhaustive()
    }
}
