//! Sender keys in use: our own [`GroupSender`] (pads, encrypts and signs
//! once per message) and the [`GroupReceiver`] we keep per other member
//! device (verifies and decrypts, with a bounded store of skipped keys).
//!
//! A sender key belongs to one (group, sender device, epoch); the epoch is
//! the group state version at which it was generated, and a sender rotates
//! (a new [`GroupSender`]) before sending whenever its epoch is below the
//! group's rotation point (docs/PROTOCOL.md §8.2).
//!
//! Must never: accept a message whose signature does not verify strictly,
//! decrypt the same iteration twice, keep more than [`MAX_GROUP_SKIPPED_KEYS`]
//! skipped keys, accept a message sealed by anyone but the key's owner, or
//! change receiver state when a message is refused.

use std::collections::BTreeMap;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::chain::{open_with, seal_in_place, ChainKey, MessageKeySeed};
use super::distribution::{DistributionFields, SignedDistribution, VerifiedDistribution};
use super::error::GroupError;
use super::id::GroupId;
use super::message::{
    GroupMessage, GroupMessageHeader, GROUP_HEADER_LEN, MAX_GROUP_PAYLOAD, MIN_GROUP_MESSAGE_LEN,
    SIGNATURE_LEN, TAG_LEN,
};
use crate::consts::{MAX_GROUP_SKIP, MAX_GROUP_SKIPPED_KEYS};
use crate::identity::{sign_labelled, verify_labelled, IdentityKeyPair, IdentityPublic, Signature};
use crate::labels;
use crate::padding;
use crate::pairwise::{InboundEnvelope, GROUP_MESSAGE_TYPE};

/// Our own sender key in one group and epoch. Stored as its
/// [`GroupSenderPickle`](super::GroupSenderPickle); zeroized on drop;
/// `Debug` shows no key.
///
/// ```
/// # use rand::rngs::OsRng;
/// # use umbra_protocol::group::{GroupId, GroupReceiver, GroupSender, SignedDistribution};
/// # use umbra_protocol::identity::IdentityKeyPair;
/// # use umbra_protocol::pairwise::InboundEnvelope;
/// # use umbra_protocol::wire::{AccountId, Address, DeviceId};
/// let (alice, bob) = (IdentityKeyPair::generate(&mut OsRng), IdentityKeyPair::generate(&mut OsRng));
/// let alice_addr = Address { account: AccountId::from_bytes([1; 16]), device: DeviceId(1) };
/// let group = GroupId::random(&mut OsRng);
/// // Alice, at group version 0: a sender key, its distribution (sent to Bob pairwise).
/// let mut sender = GroupSender::generate(group, 0, &mut OsRng);
/// let distribution = sender.distribution(&alice);
/// // Bob: verified against the identity of the pairwise session it came over.
/// let verified = SignedDistribution::verify(distribution.as_bytes(), &alice.public(), &group)?;
/// let mut receiver = GroupReceiver::new(verified);
/// // Alice encrypts once and seals per recipient device.
/// let envelope = sender.encrypt(b"hello group")?.seal_to(&alice, &alice_addr, &bob.public(), &mut OsRng)?;
/// // Bob opens the envelope, looks the receiver up by (header group id, sealed sender address).
/// let inbound = InboundEnvelope::open(&bob, &envelope).expect("sealed for bob");
/// assert_eq!(inbound.group_message().map(|m| *m.group_id()), Some(group));
/// assert_eq!(receiver.decrypt(&inbound)?, b"hello group");
/// # Ok::<(), umbra_protocol::group::GroupError>(())
/// ```
pub struct GroupSender {
    pub(super) group_id: GroupId,
    pub(super) epoch: u64,
    pub(super) chain_id: u32,
    pub(super) signing: SigningKey,
    pub(super) chain: ChainKey,
}

impl GroupSender {
    /// A fresh sender key for `group` at `epoch` (the group state version
    /// now): draws the Ed25519 seed (32 bytes), the chain key (32 bytes)
    /// and the chain id (4 bytes, big-endian) from `rng`, in that order.
    /// Iteration starts at 0.
    pub fn generate<R: RngCore + CryptoRng>(group: GroupId, epoch: u64, rng: &mut R) -> Self {
        let signing = SigningKey::generate(rng);
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        let mut chain_id = [0u8; 4];
        rng.fill_bytes(&mut chain_id);
        Self {
            group_id: group,
            epoch,
            chain_id: u32::from_be_bytes(chain_id),
            signing,
            chain: ChainKey {
                key: *key,
                iteration: 0,
            },
        }
    }

    /// The distribution to send (pairwise) to every member, signed by our
    /// identity. From the current iteration: a member that gets it later
    /// cannot decrypt anything sent before.
    pub fn distribution(&self, identity: &IdentityKeyPair) -> SignedDistribution {
        DistributionFields {
            group_id: self.group_id,
            epoch: self.epoch,
            chain_id: self.chain_id,
            chain: self.chain.clone(),
            signing_public: self.signing.verifying_key(),
        }
        .sign(identity)
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The epoch (group version) this key was generated at.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The next iteration this sender will use.
    pub fn iteration(&self) -> u32 {
        self.chain.iteration
    }

    /// Moves the chain forward to `iteration` without encrypting (the
    /// message keys passed over are gone), so a distribution made after
    /// it opens nothing sent before `iteration`. A chain already at or past
    /// it is unchanged: a chain never moves back. Costs one HMAC per step;
    /// the caller bounds `iteration` by what it sent.
    pub fn advance_to(&mut self, iteration: u32) -> Result<(), GroupError> {
        while self.chain.iteration < iteration {
            self.chain = self.chain.next()?;
        }
        Ok(())
    }

    /// True if this key must be replaced before the next send: its epoch is
    /// below the group's rotation point (the version of the last change
    /// that removed anyone), or its chain is exhausted.
    pub fn needs_rotation(&self, rotation_point: u64) -> bool {
        self.epoch < rotation_point || self.chain.iteration == u32::MAX
    }

    /// Pads `payload` (the client payload of §12.1), encrypts and signs it
    /// as one group message, then advances the chain (the used message key
    /// is gone: forward secrecy within the chain). Content longer than
    /// [`MAX_GROUP_PAYLOAD`] is refused here, before anything is sent. On
    /// error the sender is unchanged.
    pub fn encrypt(&mut self, payload: &[u8]) -> Result<GroupMessage, GroupError> {
        if payload.len() > MAX_GROUP_PAYLOAD {
            return Err(GroupError::PlaintextTooLong { len: payload.len() });
        }
        // Iteration u32::MAX has no successor, so it is never used; the
        // receiver refuses it for the same reason.
        let next = self.chain.next()?;
        let header = GroupMessageHeader {
            group_id: self.group_id,
            epoch: self.epoch,
            chain_id: self.chain_id,
            iteration: self.chain.iteration,
        };
        let header_bytes = header.to_bytes();
        let padded = Zeroizing::new(
            padding::pad(payload)
                .map_err(|_| GroupError::PlaintextTooLong { len: payload.len() })?,
        );
        // Built in place, in one buffer: type byte, header, ciphertext, tag,
        // signature; the buffer is what gets sealed to every recipient.
        let mut inner = Vec::with_capacity(1 + MIN_GROUP_MESSAGE_LEN + padded.len());
        inner.push(GROUP_MESSAGE_TYPE);
        inner.extend_from_slice(&header_bytes);
        let start = inner.len();
        inner.extend_from_slice(&padded);
        let tag = seal_in_place(
            &self.chain.message_seed(),
            &header_bytes,
            &mut inner[start..],
        )?;
        inner.extend_from_slice(&tag);
        let signature = sign_labelled(&self.signing, labels::GROUP_MESSAGE_SIGNATURE, &inner[1..]);
        inner.extend_from_slice(&signature.to_bytes());
        self.chain = next;
        Ok(GroupMessage::from_parts(header, inner))
    }
}

impl std::fmt::Debug for GroupSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSender")
            .field("group_id", &self.group_id)
            .field("epoch", &self.epoch)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.iteration)
            .finish_non_exhaustive()
    }
}

/// Another member device's sender key, as we track it: built only from a
/// [`VerifiedDistribution`], so it remembers the identity that signed it
/// and refuses messages sealed by anyone else. Stored as its
/// [`GroupReceiverPickle`](super::GroupReceiverPickle); zeroized on drop;
/// `Debug` shows no key. See [`GroupSender`] for an example.
pub struct GroupReceiver {
    pub(super) group_id: GroupId,
    pub(super) epoch: u64,
    pub(super) chain_id: u32,
    pub(super) sender: IdentityPublic,
    pub(super) signing_public: VerifyingKey,
    pub(super) chain: ChainKey,
    pub(super) skipped: BTreeMap<u32, MessageKeySeed>,
}

impl GroupReceiver {
    /// Starts tracking a sender from its verified distribution.
    pub fn new(distribution: VerifiedDistribution) -> Self {
        let VerifiedDistribution { fields, sender } = distribution;
        Self {
            group_id: fields.group_id,
            epoch: fields.epoch,
            chain_id: fields.chain_id,
            sender,
            signing_public: fields.signing_public,
            chain: fields.chain,
            skipped: BTreeMap::new(),
        }
    }

    /// True if `distribution` (from the same member) should replace this
    /// receiver: a later epoch, or the same epoch with another chain (the
    /// sender lost its key or exhausted the chain). An older epoch or the
    /// same chain again is not (re-reading a chain from an earlier
    /// iteration would allow replays).
    pub fn replaced_by(&self, distribution: &VerifiedDistribution) -> bool {
        distribution.epoch() > self.epoch
            || (distribution.epoch() == self.epoch && distribution.chain_id() != self.chain_id)
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The sender key's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The sender's chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The identity that signed the distribution (the only one whose sealed
    /// envelopes this receiver opens).
    pub fn sender_identity(&self) -> &IdentityPublic {
        &self.sender
    }

    /// The next iteration expected in order.
    pub fn iteration(&self) -> u32 {
        self.chain.iteration
    }

    /// Number of message keys held for messages not yet received.
    pub fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    /// Verifies, decrypts and unpads the group message an opened sealed
    /// envelope carries, returning the client payload. The caller found
    /// this receiver by (the header's group id, the envelope's sealed sender
    /// address); the envelope's sealed identity must be the one that signed
    /// the distribution, else [`GroupError::WrongSender`]. On any error the
    /// receiver is left exactly as it was.
    pub fn decrypt(&mut self, inbound: &InboundEnvelope) -> Result<Vec<u8>, GroupError> {
        let message = inbound
            .group_message()
            .ok_or(GroupError::NotAGroupMessage)?;
        let same: bool = inbound
            .sender()
            .to_bytes()
            .ct_eq(&self.sender.to_bytes())
            .into();
        if !same {
            return Err(GroupError::WrongSender);
        }
        self.decrypt_message(message)
    }

    /// [`GroupReceiver::decrypt`] without the sealed-sender check, for
    /// vector and property tests that have no envelope.
    #[cfg(feature = "low-level-api")]
    pub fn decrypt_unsealed(&mut self, message: &GroupMessage) -> Result<Vec<u8>, GroupError> {
        self.decrypt_message(message)
    }

    #[cfg(test)]
    pub(super) fn decrypt_unsealed_inner(
        &mut self,
        message: &GroupMessage,
    ) -> Result<Vec<u8>, GroupError> {
        self.decrypt_message(message)
    }

    fn decrypt_message(&mut self, message: &GroupMessage) -> Result<Vec<u8>, GroupError> {
        let header = message.header();
        if header.group_id != self.group_id {
            return Err(GroupError::WrongGroup);
        }
        if header.epoch != self.epoch {
            return Err(GroupError::WrongEpoch {
                expected: self.epoch,
                got: header.epoch,
            });
        }
        if header.chain_id != self.chain_id {
            return Err(GroupError::WrongChain {
                expected: self.chain_id,
                got: header.chain_id,
            });
        }
        let bytes = message.as_bytes();
        let len = bytes.len();
        let split = len
            .checked_sub(SIGNATURE_LEN)
            .filter(|s| *s >= GROUP_HEADER_LEN + TAG_LEN)
            .ok_or(GroupError::BadMessageLength { len })?;
        let (signed, signature) = bytes.split_at(split);
        let signature =
            Signature::from_slice(signature).map_err(|_| GroupError::BadMessageLength { len })?;
        if !verify_labelled(
            &self.signing_public,
            labels::GROUP_MESSAGE_SIGNATURE,
            signed,
            &signature,
        ) {
            return Err(GroupError::BadSignature);
        }
        let header_bytes = header.to_bytes();
        let ciphertext = signed.get(GROUP_HEADER_LEN..).unwrap_or_default();
        let iteration = header.iteration;

        if iteration < self.chain.iteration {
            let seed = self
                .skipped
                .get(&iteration)
                .ok_or(GroupError::Replay(iteration))?;
            let payload = unpadded(open_with(seed, &header_bytes, ciphertext)?)?;
            self.skipped.remove(&iteration);
            return Ok(payload);
        }
        if iteration == u32::MAX {
            return Err(GroupError::ChainExhausted);
        }
        if iteration - self.chain.iteration > MAX_GROUP_SKIP {
            return Err(GroupError::TooFarAhead {
                current: self.chain.iteration,
                iteration,
            });
        }
        // Walk a copy of the chain; commit only once the message decrypted
        // and unpadded.
        let mut chain = self.chain.clone();
        let mut newly_skipped = Vec::new();
        while chain.iteration < iteration {
            newly_skipped.push((chain.iteration, chain.message_seed()));
            chain = chain.next()?;
        }
        let payload = unpadded(open_with(&chain.message_seed(), &header_bytes, ciphertext)?)?;
        self.chain = chain.next()?;
        self.skipped.extend(newly_skipped);
        while self.skipped.len() > MAX_GROUP_SKIPPED_KEYS {
            self.skipped.pop_first();
        }
        Ok(payload)
    }
}

fn unpadded(padded: Zeroizing<Vec<u8>>) -> Result<Vec<u8>, GroupError> {
    padding::unpad(&padded).map_err(GroupError::Padding)
}

impl std::fmt::Debug for GroupReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupReceiver")
            .field("group_id", &self.group_id)
            .field("epoch", &self.epoch)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.iteration)
            .field("skipped", &self.skipped.len())
            .finish_non_exhaustive()
    }
}
