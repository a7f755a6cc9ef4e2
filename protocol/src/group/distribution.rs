//! The sender-key distribution (v2): what a member hands every other member
//! over the pairwise channel so they can decrypt and verify its group
//! messages, signed with the member's IDENTITY key so nobody else (another
//! member included) can pass a key off as theirs, and bound to one group
//! and epoch.
//!
//! [`SignedDistribution`] is what the sender makes and sends;
//! [`SignedDistribution::verify`] turns received bytes into a
//! [`VerifiedDistribution`], the only thing a
//! [`GroupReceiver`](super::GroupReceiver) is built from.
//!
//! Must never: build a receiver from unverified bytes, show the chain key
//! in `Debug`, or leave a copy of it unwiped.

use ed25519_dalek::VerifyingKey;
use zeroize::Zeroizing;

use super::chain::ChainKey;
use super::error::GroupError;
use super::id::{GroupId, GROUP_ID_LEN};
use crate::identity::{IdentityKeyPair, IdentityPublic, Signature};
use crate::labels;

/// First byte of a sender-key distribution of this format.
pub const DISTRIBUTION_VERSION: u8 = 2;
/// Length of the signed part: version, group id, u64be epoch, u32be chain
/// id, u32be iteration, chain key (32), signing public key (32).
pub const DISTRIBUTION_SIGNED_LEN: usize = 1 + GROUP_ID_LEN + 8 + 4 + 4 + 32 + 32;
/// Length of an encoded distribution: the signed part and the 64-byte
/// identity signature.
pub const DISTRIBUTION_LEN: usize = DISTRIBUTION_SIGNED_LEN + 64;

/// The fields of a distribution (shared by the signed and verified forms).
#[derive(Clone)]
pub(super) struct DistributionFields {
    pub(super) group_id: GroupId,
    pub(super) epoch: u64,
    pub(super) chain_id: u32,
    pub(super) chain: ChainKey,
    pub(super) signing_public: VerifyingKey,
}

impl DistributionFields {
    fn signed_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(DISTRIBUTION_LEN));
        out.push(DISTRIBUTION_VERSION);
        out.extend_from_slice(&self.group_id.0);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        out.extend_from_slice(&self.chain.iteration.to_be_bytes());
        out.extend_from_slice(&self.chain.key);
        out.extend_from_slice(self.signing_public.as_bytes());
        out
    }

    /// Signs the fields with the sender's identity (§3.2 labelled
    /// signature, label `GROUP_DISTRIBUTION_SIGNATURE`).
    pub(super) fn sign(&self, identity: &IdentityKeyPair) -> SignedDistribution {
        let mut bytes = self.signed_bytes();
        let signature = identity.sign(labels::GROUP_DISTRIBUTION_SIGNATURE, &bytes);
        bytes.extend_from_slice(&signature.to_bytes());
        SignedDistribution { bytes }
    }
}

/// A sender key as the sender hands it out: [`DISTRIBUTION_LEN`] bytes,
/// sent only inside pairwise content (`Content::SenderKeyDistribution`).
/// Holds the chain key: wiped on drop, `Debug` shows only the length.
#[derive(Clone)]
pub struct SignedDistribution {
    bytes: Zeroizing<Vec<u8>>,
}

impl SignedDistribution {
    /// The encoded distribution (secret: send it only pairwise).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks received distribution bytes: length, version, that they are
    /// for `expected_group` (the group the carrying content names), and the
    /// identity signature under `sender_identity`, the identity of the
    /// pairwise session they arrived over. Checks in that order; the first
    /// failure is returned.
    pub fn verify(
        bytes: &[u8],
        sender_identity: &IdentityPublic,
        expected_group: &GroupId,
    ) -> Result<VerifiedDistribution, GroupError> {
        let arr: &[u8; DISTRIBUTION_LEN] = bytes
            .try_into()
            .map_err(|_| GroupError::BadDistributionLength { len: bytes.len() })?;
        if arr[0] != DISTRIBUTION_VERSION {
            return Err(GroupError::UnsupportedVersion(arr[0]));
        }
        let mut group = [0u8; GROUP_ID_LEN];
        group.copy_from_slice(&arr[1..33]);
        if group != expected_group.0 {
            return Err(GroupError::WrongGroup);
        }
        let (signed, signature) = arr.split_at(DISTRIBUTION_SIGNED_LEN);
        let signature =
            Signature::from_slice(signature).map_err(|_| GroupError::BadDistributionSignature)?;
        sender_identity
            .verify_signature(labels::GROUP_DISTRIBUTION_SIGNATURE, signed, &signature)
            .map_err(|_| GroupError::BadDistributionSignature)?;
        let mut epoch = [0u8; 8];
        epoch.copy_from_slice(&arr[33..41]);
        let mut chain_id = [0u8; 4];
        chain_id.copy_from_slice(&arr[41..45]);
        let mut iteration = [0u8; 4];
        iteration.copy_from_slice(&arr[45..49]);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&arr[49..81]);
        let mut signing = [0u8; 32];
        signing.copy_from_slice(&arr[81..113]);
        let signing_public =
            VerifyingKey::from_bytes(&signing).map_err(|_| GroupError::InvalidSigningKey)?;
        Ok(VerifiedDistribution {
            fields: DistributionFields {
                group_id: GroupId(group),
                epoch: u64::from_be_bytes(epoch),
                chain_id: u32::from_be_bytes(chain_id),
                chain: ChainKey {
                    key: *key,
                    iteration: u32::from_be_bytes(iteration),
                },
                signing_public,
            },
            sender: sender_identity.clone(),
        })
    }
}

impl std::fmt::Debug for SignedDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedDistribution")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// A distribution whose identity signature verified: the sender identity it
/// verified under, the group, epoch, chain id, first iteration, chain key
/// and signing key. Build a [`GroupReceiver`](super::GroupReceiver) from it
/// with [`GroupReceiver::new`](super::GroupReceiver::new). Chain key wiped on
/// drop; `Debug` shows no key.
#[derive(Clone)]
pub struct VerifiedDistribution {
    pub(super) fields: DistributionFields,
    pub(super) sender: IdentityPublic,
}

impl VerifiedDistribution {
    /// The group it is for.
    pub fn group_id(&self) -> &GroupId {
        &self.fields.group_id
    }

    /// The sender key's epoch.
    pub fn epoch(&self) -> u64 {
        self.fields.epoch
    }

    /// The sender's chain id.
    pub fn chain_id(&self) -> u32 {
        self.fields.chain_id
    }

    /// The first iteration a receiver built from it can decrypt.
    pub fn iteration(&self) -> u32 {
        self.fields.chain.iteration
    }

    /// The identity that signed it.
    pub fn sender_identity(&self) -> &IdentityPublic {
        &self.sender
    }
}

impl std::fmt::Debug for VerifiedDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedDistribution")
            .field("group_id", &self.fields.group_id)
            .field("epoch", &self.fields.epoch)
            .field("chain_id", &self.fields.chain_id)
            .field("iteration", &self.fields.chain.iteration)
            .finish_non_exhaustive()
    }
}
