//! The group-message format (v2): the fixed header a receiver reads to
//! find its state, the length limits, and [`GroupMessage`], one encrypted
//! and signed message as it is sealed to every recipient device.
//!
//! A group message travels as the inner bytes of a sealed envelope,
//! `0x04 || group message` (docs/PROTOCOL.md §4.11, §8.4): no pairwise
//! ratchet around it, so its plaintext is padded once. [`GroupMessage`]
//! keeps those inner bytes, type byte included, so sealing it for each
//! recipient re-encodes nothing.
//!
//! Must never: treat a parsed header as authenticated (the signature and
//! the AEAD check it later), or panic on any input.

use rand_core::{CryptoRng, RngCore};

use super::error::GroupError;
use super::id::{GroupId, GROUP_ID_LEN};
use crate::identity::{IdentityKeyPair, IdentityPublic};
use crate::pairwise::GROUP_MESSAGE_TYPE;
use crate::sealed;
use crate::wire::Address;

/// First byte of a group message of this format.
pub const GROUP_MESSAGE_VERSION: u8 = 2;
/// Length of the group-message header: version, group id, u64be epoch,
/// u32be chain id, u32be iteration.
pub const GROUP_HEADER_LEN: usize = 1 + GROUP_ID_LEN + 8 + 4 + 4;
/// Poly1305 tag length.
pub(super) const TAG_LEN: usize = 16;
/// Ed25519 signature length.
pub(super) const SIGNATURE_LEN: usize = 64;
/// Largest group plaintext: one padded plaintext (section 6).
pub const MAX_GROUP_PLAINTEXT: usize = crate::padding::MAX_PADDED_LEN;
/// Longest content (client payload, §12.1) one group message carries: what
/// pads to [`MAX_GROUP_PLAINTEXT`]. Longer content is
/// [`GroupError::PlaintextTooLong`] before anything is encrypted.
pub const MAX_GROUP_PAYLOAD: usize = crate::padding::MAX_CONTENT_LEN;
/// Shortest group message the parser accepts: header, empty ciphertext's
/// tag, signature (a conforming sender's is at least one 160-byte bucket
/// longer).
pub const MIN_GROUP_MESSAGE_LEN: usize = GROUP_HEADER_LEN + TAG_LEN + SIGNATURE_LEN;
/// Longest group message.
pub const MAX_GROUP_MESSAGE_LEN: usize = MIN_GROUP_MESSAGE_LEN + MAX_GROUP_PLAINTEXT;
/// Longest sealed inner a group message makes: the type byte and
/// [`MAX_GROUP_MESSAGE_LEN`].
pub const MAX_GROUP_INNER_LEN: usize = 1 + MAX_GROUP_MESSAGE_LEN;

// A maximal group message must fit one sealed envelope (the point of
// sealing it directly instead of inside a pairwise message).
const _: () = assert!(MAX_GROUP_INNER_LEN <= sealed::MAX_INNER_LEN);

/// The fixed-layout header (49 bytes): `version || group id (32) || u64be
/// epoch || u32be chain id || u32be iteration`. Covered by the key
/// derivation, the AEAD associated data and the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupMessageHeader {
    /// The group the message is for.
    pub group_id: GroupId,
    /// The sender key's epoch (the group version it was made at).
    pub epoch: u64,
    /// The sender's chain id within that epoch.
    pub chain_id: u32,
    /// The chain iteration that encrypted it.
    pub iteration: u32,
}

impl GroupMessageHeader {
    /// The 49 header bytes, version first.
    pub fn to_bytes(&self) -> [u8; GROUP_HEADER_LEN] {
        let mut out = [0u8; GROUP_HEADER_LEN];
        out[0] = GROUP_MESSAGE_VERSION;
        out[1..33].copy_from_slice(&self.group_id.0);
        out[33..41].copy_from_slice(&self.epoch.to_be_bytes());
        out[41..45].copy_from_slice(&self.chain_id.to_be_bytes());
        out[45..49].copy_from_slice(&self.iteration.to_be_bytes());
        out
    }

    /// Reads the header of a whole group message (no type byte) so the
    /// caller can find the receiver state; checks length and version,
    /// nothing cryptographic.
    pub fn parse(message: &[u8]) -> Result<Self, GroupError> {
        let len = message.len();
        if !(MIN_GROUP_MESSAGE_LEN..=MAX_GROUP_MESSAGE_LEN).contains(&len) {
            return Err(GroupError::BadMessageLength { len });
        }
        let h: &[u8; GROUP_HEADER_LEN] = message
            .get(..GROUP_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(GroupError::BadMessageLength { len })?;
        if h[0] != GROUP_MESSAGE_VERSION {
            return Err(GroupError::UnsupportedVersion(h[0]));
        }
        let mut group = [0u8; GROUP_ID_LEN];
        group.copy_from_slice(&h[1..33]);
        let mut epoch = [0u8; 8];
        epoch.copy_from_slice(&h[33..41]);
        let mut chain_id = [0u8; 4];
        chain_id.copy_from_slice(&h[41..45]);
        let mut iteration = [0u8; 4];
        iteration.copy_from_slice(&h[45..49]);
        Ok(Self {
            group_id: GroupId(group),
            epoch: u64::from_be_bytes(epoch),
            chain_id: u32::from_be_bytes(chain_id),
            iteration: u32::from_be_bytes(iteration),
        })
    }
}

/// One group message: `header || ciphertext || signature`, kept with the
/// sealed-inner type byte in front so it is sealed to each recipient
/// without copying or re-encoding it. Not secret (it is ciphertext).
///
/// ```
/// # use rand::rngs::OsRng;
/// # use umbra_protocol::group::{GroupId, GroupSender};
/// # use umbra_protocol::identity::IdentityKeyPair;
/// # use umbra_protocol::wire::{AccountId, Address, DeviceId};
/// let alice = IdentityKeyPair::generate(&mut OsRng);
/// let alice_addr = Address { account: AccountId::from_bytes([1; 16]), device: DeviceId(1) };
/// let bob = IdentityKeyPair::generate(&mut OsRng);
/// let mut sender = GroupSender::generate(GroupId::random(&mut OsRng), 0, &mut OsRng);
/// let message = sender.encrypt(b"client payload (12.1)")?;
/// // One envelope per recipient device, each handed to the relay for it.
/// let envelope = message.seal_to(&alice, &alice_addr, &bob.public(), &mut OsRng)?;
/// # let _ = envelope;
/// # Ok::<(), umbra_protocol::group::GroupError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct GroupMessage {
    header: GroupMessageHeader,
    /// `GROUP_MESSAGE_TYPE || header || ciphertext || signature`.
    inner: Vec<u8>,
}

impl GroupMessage {
    /// Parses a group message (header checks only, as
    /// [`GroupMessageHeader::parse`]).
    pub fn from_bytes(message: &[u8]) -> Result<Self, GroupError> {
        let header = GroupMessageHeader::parse(message)?;
        let mut inner = Vec::with_capacity(1 + message.len());
        inner.push(GROUP_MESSAGE_TYPE);
        inner.extend_from_slice(message);
        Ok(Self { header, inner })
    }

    /// Built by the sender from inner bytes it wrote itself.
    pub(super) fn from_parts(header: GroupMessageHeader, inner: Vec<u8>) -> Self {
        Self { header, inner }
    }

    /// The parsed header. Not authenticated until a receiver decrypted the
    /// message: use [`GroupMessageHeader::group_id`] to find the receiver
    /// state (with the sealed sender), nothing more.
    pub fn header(&self) -> &GroupMessageHeader {
        &self.header
    }

    /// The group the header names.
    pub fn group_id(&self) -> &GroupId {
        &self.header.group_id
    }

    /// The group message bytes (header, ciphertext, signature).
    pub fn as_bytes(&self) -> &[u8] {
        self.inner.get(1..).unwrap_or_default()
    }

    /// The sealed-envelope inner bytes: `0x04 || group message`.
    pub fn sealed_inner(&self) -> &[u8] {
        &self.inner
    }

    /// Seals this message for one recipient device (section 5): the relay
    /// sees neither the sender nor that this is a group message. One call
    /// per recipient device; the result goes to the relay addressed to
    /// that device.
    pub fn seal_to<R: RngCore + CryptoRng>(
        &self,
        ours: &IdentityKeyPair,
        our_address: &Address,
        recipient: &IdentityPublic,
        rng: &mut R,
    ) -> Result<Vec<u8>, GroupError> {
        sealed::seal(ours, our_address, recipient, &self.inner, rng).map_err(GroupError::Sealed)
    }
}

impl std::fmt::Debug for GroupMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMessage")
            .field("header", &self.header)
            .field("len", &self.as_bytes().len())
            .finish()
    }
}
