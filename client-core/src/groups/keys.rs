//! Sender keys as the client keeps them: ours per group (with its epoch and
//! the members who have it) and each member's that we read with.
//!
//! Our key's epoch is the group version at which we made it. Before we
//! send, a key that anyone outside the current state holds (an account in
//! its `distributed_to` that is not a member now: removed, left, or added
//! on a branch the fork choice dropped), or a device its member's device
//! list no longer names (removed from the account), is replaced by a fresh
//! one, so no one outside the group reads anything sent afterwards. Who holds the key
//! is the rule, not its epoch: after a reorg a key made on the losing
//! branch can have an epoch above the winning branch's rotation point and
//! still be held by a member that branch removed. (A key older than the
//! rotation point is replaced too: a member removed and added again lost
//! every key at its removal.) A new key reaches no one until it is distributed, and it is distributed from its current
//! iteration, so a member added later cannot read what was sent before.
//! Who already has our current key is recorded with it: every send first
//! distributes it (pairwise, signed by our identity) to the members who do
//! not, newly added ones included, in the same fan-out and ahead of the
//! message.
//!
//! For each device of each member (every device has its own chain) we
//! keep the key that arrived last and the one before (messages it sent
//! before it learnt of a removal may still be queued for us), by arrival,
//! not by epoch: a member's fresh key made after a reorg may carry a lower
//! epoch than the one it replaces. A message is read only with a key of
//! the device that sealed it. A removed member's keys, every device's,
//! are dropped at once.
//!
//! Must never: send under a sender key someone outside the current state
//! holds, persist a chain behind one that encrypted (the caller commits the
//! advanced key before the envelopes leave), or accept a distribution not
//! signed by the member it is for.

use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use umbra_protocol::group::{
    ChangeHash, GroupError, GroupMessage, GroupReceiver, GroupReceiverPickle, GroupSender,
    GroupSenderPickle, GroupState, SignedDistribution,
};
use umbra_protocol::identity::{IdentityKeyPair, IdentityPublic};
use umbra_protocol::pairwise::InboundEnvelope;
use umbra_protocol::wire::{AccountId, DeviceId, MAX_DEVICES_PER_ACCOUNT};
use zeroize::Zeroizing;

use crate::records;
use crate::{Error, GroupOpenFailure};

use super::{GroupFailure, GroupId};

/// How many sender keys of one member we keep: the one that arrived last,
/// and the one it replaced (see the module docs).
const KEPT_MEMBER_KEYS: usize = 2;

/// Our sender key in one group (kind `GroupSenderKey`, guarded against
/// rollback: an older copy would encrypt twice under one message key).
/// Each device of ours has its own (docs/PROTOCOL.md §8.2): the record
/// lives in this device's store and is never copied.
#[derive(Clone)]
pub(crate) struct OwnSenderKey {
    /// The group version at which it was made.
    pub(crate) epoch: u64,
    /// The head of our log when it was made (`None` for a key stored
    /// before heads were kept): with the epoch, *where* it was made, which
    /// after a reorganisation may be a state off the canonical chain
    /// (`resend.rs`).
    pub(crate) made_at: Option<ChangeHash>,
    /// The `GroupSender` pickle.
    sender: Vec<u8>,
    /// Member devices that have this key: (account id, device), ascending.
    pub(crate) distributed_to: Vec<([u8; 16], u32)>,
}

/// The stored form of [`OwnSenderKey`] begins with this varint where the
/// previous version's began with the key's epoch: no group reaches version
/// `u64::MAX` (one change per version), so an epoch never reads as it.
/// Then the fields of [`StoredOwnKey`]. The previous version's record
/// (`epoch, sender, distributed_to: [account]`) marks each account's
/// device 1, the only one it sent the key to.
const OWN_KEY_FORMAT_DEVICES: u64 = u64::MAX;

/// The marker of the form that also holds the head the key was made at
/// (what is written now): `u64::MAX - 1`, which no epoch reaches either.
const OWN_KEY_FORMAT_HEAD: u64 = u64::MAX - 1;

#[derive(Serialize)]
struct StoredOwnKeyRef<'a> {
    epoch: u64,
    made_at: Option<&'a ChangeHash>,
    #[serde(with = "serde_bytes")]
    sender: &'a [u8],
    distributed_to: &'a [([u8; 16], u32)],
}

/// The form marked [`OWN_KEY_FORMAT_DEVICES`] (no head).
#[derive(Deserialize)]
struct StoredOwnKey {
    epoch: u64,
    sender: serde_bytes::ByteBuf,
    distributed_to: Vec<([u8; 16], u32)>,
}

/// The form marked [`OWN_KEY_FORMAT_HEAD`].
#[derive(Deserialize)]
struct StoredOwnKeyHead {
    epoch: u64,
    made_at: Option<ChangeHash>,
    sender: serde_bytes::ByteBuf,
    distributed_to: Vec<([u8; 16], u32)>,
}

impl Serialize for OwnSenderKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&OWN_KEY_FORMAT_HEAD)?;
        tuple.serialize_element(&StoredOwnKeyRef {
            epoch: self.epoch,
            made_at: self.made_at.as_ref(),
            sender: &self.sender,
            distributed_to: &self.distributed_to,
        })?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for OwnSenderKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The format marker and the fields, or the legacy epoch, sender
        // and accounts.
        deserializer.deserialize_tuple(3, OwnKeyVisitor)
    }
}

struct OwnKeyVisitor;

impl<'de> serde::de::Visitor<'de> for OwnKeyVisitor {
    type Value = OwnSenderKey;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("our sender key")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<OwnSenderKey, A::Error> {
        use serde::de::Error as _;
        let missing = || A::Error::custom("truncated sender key");
        let first: u64 = seq.next_element()?.ok_or_else(missing)?;
        if first == OWN_KEY_FORMAT_HEAD {
            let s: StoredOwnKeyHead = seq.next_element()?.ok_or_else(missing)?;
            return Ok(OwnSenderKey {
                epoch: s.epoch,
                made_at: s.made_at,
                sender: s.sender.into_vec(),
                distributed_to: s.distributed_to,
            });
        }
        if first == OWN_KEY_FORMAT_DEVICES {
            let s: StoredOwnKey = seq.next_element()?.ok_or_else(missing)?;
            return Ok(OwnSenderKey {
                epoch: s.epoch,
                made_at: None,
                sender: s.sender.into_vec(),
                distributed_to: s.distributed_to,
            });
        }
        let sender: serde_bytes::ByteBuf = seq.next_element()?.ok_or_else(missing)?;
        let accounts: Vec<[u8; 16]> = seq.next_element()?.ok_or_else(missing)?;
        let mut distributed_to: Vec<_> = accounts
            .into_iter()
            .map(|a| (a, DeviceId::PRIMARY.0))
            .collect();
        distributed_to.sort_unstable();
        distributed_to.dedup();
        Ok(OwnSenderKey {
            epoch: first,
            made_at: None,
            sender: sender.into_vec(),
            distributed_to,
        })
    }
}

impl Drop for OwnSenderKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.sender);
    }
}

impl OwnSenderKey {
    /// A fresh key for `group` at its current version.
    pub(crate) fn fresh(state: &GroupState) -> Self {
        let epoch = state.version();
        let sender = GroupSender::generate(*state.group(), epoch, &mut OsRng);
        Self {
            epoch,
            made_at: Some(*state.head()),
            sender: sender.pickle().encode().to_vec(),
            distributed_to: Vec::new(),
        }
    }

    /// Ours to send with in `state`: the stored key unless an account that
    /// is not a member of `state` has it (checked before
    /// [`retain_members`](Self::retain_members) forgets who they were), it
    /// predates the rotation point, or its chain is used up (or there is
    /// none), then a fresh one. The first is the rule that keeps outsiders
    /// out, also across a reorg; the second stays because a member removed
    /// and added again dropped every key when it was removed, yet is still
    /// listed as having ours: a fresh key reaches it again.
    pub(crate) fn for_sending(
        stored: Option<OwnSenderKey>,
        state: &GroupState,
    ) -> Result<Self, Error> {
        Ok(match stored {
            Some(key)
                if !key.held_outside(state)
                    && !key.sender()?.needs_rotation(state.rotation_point()) =>
            {
                key
            }
            _ => Self::fresh(state),
        })
    }

    /// Whether an account that is not a member of `state` has this key.
    fn held_outside(&self, state: &GroupState) -> bool {
        self.distributed_to
            .iter()
            .any(|(a, _)| !state.is_member(&AccountId::from_bytes(*a)))
    }

    /// Whether a device that its account's held device list no longer
    /// names has this key (`listed` says whether a list names a device):
    /// the member removed that device, whose client still holds the
    /// account identity every envelope to the member is sealed to, so the
    /// key is not sent with again (docs/PROTOCOL.md §8.12, §15.3). Checked
    /// beside [`for_sending`](Self::for_sending)'s membership rule.
    pub(crate) fn held_by_unlisted(&self, listed: impl Fn(&AccountId, DeviceId) -> bool) -> bool {
        self.distributed_to
            .iter()
            .any(|(a, d)| !listed(&AccountId::from_bytes(*a), DeviceId(*d)))
    }

    pub(crate) fn sender(&self) -> Result<GroupSender, Error> {
        let pickle = GroupSenderPickle::decode(&self.sender).map_err(records::group::bad_key)?;
        Ok(GroupSender::from_pickle(&pickle).map_err(records::group::bad_key)?)
    }

    pub(crate) fn set_sender(&mut self, sender: &GroupSender) {
        zeroize::Zeroize::zeroize(&mut self.sender);
        self.sender = sender.pickle().encode().to_vec();
    }

    /// The signed distribution of the key as it is now (from its current
    /// iteration: nothing already sent can be read with it).
    pub(crate) fn distribution(&self, identity: &IdentityKeyPair) -> Result<Vec<u8>, Error> {
        let sender = self.sender()?;
        Ok(sender.distribution(identity).as_bytes().to_vec())
    }

    /// Whether `device` of `member` has this key.
    pub(crate) fn has(&self, member: &AccountId, device: DeviceId) -> bool {
        self.distributed_to
            .binary_search(&(*member.as_bytes(), device.0))
            .is_ok()
    }

    /// The accounts one of whose devices has this key, ascending.
    pub(crate) fn accounts(&self) -> Vec<[u8; 16]> {
        let mut out: Vec<[u8; 16]> = self.distributed_to.iter().map(|(a, _)| *a).collect();
        out.dedup();
        out
    }

    pub(crate) fn mark_distributed(&mut self, member: &AccountId, device: DeviceId) {
        let mark = (*member.as_bytes(), device.0);
        if let Err(at) = self.distributed_to.binary_search(&mark) {
            self.distributed_to.insert(at, mark);
        }
    }

    /// Forgets that `device` of `member` has this key (the item that
    /// carried it was refused): the next send distributes it again.
    /// Whether it was marked.
    pub(crate) fn unmark_distributed(&mut self, member: &AccountId, device: DeviceId) -> bool {
        match self
            .distributed_to
            .binary_search(&(*member.as_bytes(), device.0))
        {
            Ok(at) => {
                self.distributed_to.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Keeps only members still in `state` (a removed member that is added
    /// again must get the current key again).
    pub(crate) fn retain_members(&mut self, state: &GroupState) {
        self.distributed_to
            .retain(|(a, _)| state.is_member(&AccountId::from_bytes(*a)));
    }

    /// Encrypts one client payload (padded by the protocol), advancing
    /// the chain. A payload too long for a group message is refused here,
    /// before anything is stored or sent.
    pub(crate) fn encrypt(&mut self, payload: &[u8]) -> Result<GroupMessage, Error> {
        let mut sender = self.sender()?;
        let message = sender.encrypt(payload).map_err(|e| match e {
            GroupError::PlaintextTooLong { len } => Error::MessageTooLarge {
                len,
                max: umbra_protocol::group::MAX_GROUP_PAYLOAD,
            },
            other => GroupFailure::Refused(other.to_string()).into(),
        })?;
        self.set_sender(&sender);
        Ok(message)
    }
}

/// One member key we keep.
#[derive(Clone, Serialize, Deserialize)]
struct MemberKey {
    epoch: u64,
    chain_id: u32,
    /// The `GroupReceiver` pickle.
    #[serde(with = "serde_bytes")]
    receiver: Vec<u8>,
}

impl Drop for MemberKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.receiver);
    }
}

/// The keys of one device of a member, oldest arrival first.
#[derive(Clone, Serialize, Deserialize)]
struct DeviceKeys {
    device: u32,
    keys: Vec<MemberKey>,
}

/// A member's sender keys in one group (kind `GroupReceiverKey`): per
/// device of the member (each device has its own chain, docs/PROTOCOL.md
/// §8.2), [`KEPT_MEMBER_KEYS`] per device in order of arrival, the device
/// whose key arrived last at the end. At most [`MAX_DEVICES_PER_ACCOUNT`]
/// devices: the one whose key arrived longest ago goes first.
#[derive(Clone, Default)]
pub(crate) struct ReceiverKeys {
    devices: Vec<DeviceKeys>,
}

/// The stored form's format byte (then the per-device keys, postcard). A
/// store written before devices holds one member's keys as a bare
/// sequence of at most [`KEPT_MEMBER_KEYS`] keys, so its first byte (the
/// sequence length) is 0, 1 or 2, which no format byte is; those keys are
/// device 1's (the only device whose group messages that version read).
const KEYS_FORMAT_DEVICES: u8 = 0x40;

impl Serialize for ReceiverKeys {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&KEYS_FORMAT_DEVICES)?;
        tuple.serialize_element(&self.devices)?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for ReceiverKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // At most 1 + KEPT_MEMBER_KEYS elements: the legacy length and
        // its keys, or the format byte and the devices.
        deserializer.deserialize_tuple(1 + KEPT_MEMBER_KEYS, KeysVisitor)
    }
}

struct KeysVisitor;

impl<'de> serde::de::Visitor<'de> for KeysVisitor {
    type Value = ReceiverKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member's sender keys")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ReceiverKeys, A::Error> {
        use serde::de::Error as _;
        let missing = || A::Error::custom("truncated member keys");
        let first: u8 = seq.next_element()?.ok_or_else(missing)?;
        match first {
            KEYS_FORMAT_DEVICES => {
                let devices: Vec<DeviceKeys> = seq.next_element()?.ok_or_else(missing)?;
                Ok(ReceiverKeys { devices })
            }
            n if usize::from(n) <= KEPT_MEMBER_KEYS => {
                let mut keys = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    keys.push(seq.next_element()?.ok_or_else(missing)?);
                }
                let devices = if keys.is_empty() {
                    Vec::new()
                } else {
                    vec![DeviceKeys {
                        device: DeviceId::PRIMARY.0,
                        keys,
                    }]
                };
                Ok(ReceiverKeys { devices })
            }
            other => Err(A::Error::custom(format_args!(
                "unknown member keys format {other}"
            ))),
        }
    }
}

impl ReceiverKeys {
    /// Takes in a distribution that `device` of a member (whose identity
    /// the pairwise session authenticated as `identity`) sent for `group`.
    pub(crate) fn accept(
        &mut self,
        payload: &[u8],
        identity: &IdentityPublic,
        group: &GroupId,
        device: DeviceId,
    ) -> Result<(), GroupFailure> {
        let distribution = SignedDistribution::verify(payload, identity, group)
            .map_err(|e| GroupFailure::Refused(e.to_string()))?;
        let (epoch, chain_id) = (distribution.epoch(), distribution.chain_id());
        let mut held = match self.devices.iter().position(|d| d.device == device.0) {
            Some(at) => self.devices.remove(at),
            None => DeviceKeys {
                device: device.0,
                keys: Vec::new(),
            },
        };
        if !held
            .keys
            .iter()
            .any(|k| k.epoch == epoch && k.chain_id == chain_id)
        {
            let receiver = GroupReceiver::new(distribution);
            held.keys.push(MemberKey {
                epoch,
                chain_id,
                receiver: receiver.pickle().encode().to_vec(),
            });
            // Oldest arrival first (see the module docs: not by epoch).
            let excess = held.keys.len().saturating_sub(KEPT_MEMBER_KEYS);
            held.keys.drain(..excess);
        }
        // (A resend of a key we have keeps our chain: it may be ahead.)
        // The device whose key arrived last goes to the end.
        self.devices.push(held);
        let excess = self.devices.len().saturating_sub(MAX_DEVICES_PER_ACCOUNT);
        self.devices.drain(..excess);
        Ok(())
    }

    /// Whether we hold any key of the member's devices.
    pub(crate) fn is_empty(&self) -> bool {
        self.devices.iter().all(|d| d.keys.is_empty())
    }

    /// Decrypts the group message `inbound` carries with the key of the
    /// sending device (the sealed sender's, never a header field) that
    /// its header names, returning the client payload; the key's advance
    /// is kept only if it opened.
    pub(crate) fn decrypt(
        &mut self,
        inbound: &InboundEnvelope,
    ) -> Result<Zeroizing<Vec<u8>>, Failed> {
        let header = inbound
            .group_message()
            .map(|m| *m.header())
            .ok_or(Failed::Bad(GroupOpenFailure::NotGroupMessage))?;
        let device = inbound.sender_address().device;
        let Some(key) = self
            .devices
            .iter_mut()
            .filter(|d| d.device == device.0)
            .flat_map(|d| d.keys.iter_mut())
            .find(|k| k.epoch == header.epoch && k.chain_id == header.chain_id)
        else {
            return Err(Failed::NoKey);
        };
        let mut receiver = GroupReceiverPickle::decode(&key.receiver)
            .and_then(|p| GroupReceiver::from_pickle(&p))
            .map_err(|e| Failed::Bad(GroupOpenFailure::StoredKey(e)))?;
        let plain = receiver.decrypt(inbound).map_err(|e| match e {
            GroupError::Replay(_) => Failed::Replay,
            other => Failed::Bad(GroupOpenFailure::Refused(other)),
        })?;
        zeroize::Zeroize::zeroize(&mut key.receiver);
        key.receiver = receiver.pickle().encode().to_vec();
        Ok(Zeroizing::new(plain))
    }
}

/// Why a group message did not open.
#[derive(Debug)]
pub(crate) enum Failed {
    /// No key of ours matches its epoch and chain: the sender's distribution
    /// has not arrived (or was refused).
    NoKey,
    /// Its iteration was already read: a redelivery or a replay.
    Replay,
    /// It does not open or verify.
    Bad(GroupOpenFailure),
}

#[cfg(test)]
#[path = "tests_keys.rs"]
mod tests;
