//! Group records: each group's state, our sender key per group (and the
//! distributions of it we sent), the members' sender keys we keep, and
//! fan-outs waiting for the relay.
//!
//! Every slot that names a group or a member is an HMAC of its id, and
//! every value is sealed like any record, so a group's name, members and
//! keys are never readable at rest (docs/PROTOCOL.md §12.9).
//!
//! Must never: name a group or member in clear in a slot, or key a
//! member's sender key by anything but (group, member account).

use super::{kind, Prefix, Slot};
use crate::groups::fanout::FanoutEntry;
use crate::groups::history::GroupHistoryRecord;
use crate::groups::history_index::GroupIndexRecord;
use crate::groups::keys::{OwnSenderKey, ReceiverKeys};
use crate::groups::manager::GroupRecord;
use crate::groups::sent_keys::SentDistributions;
use crate::groups::GroupId;
use crate::store::{RecordKind, StoreError, Vault};
use crate::MessageId;

kind!(
    /// One group: its state chain and our membership.
    Groups = Group, GroupRecord
);
kind!(
    /// Our sender key in one group.
    OwnKeys = GroupSenderKey, OwnSenderKey
);
kind!(
    /// A member's sender keys we keep in one group.
    MemberKeys = GroupReceiverKey, ReceiverKeys
);
kind!(
    /// Our latest sender keys in one group as far back as the relay can
    /// still hold a message under them, and whom we sent them (§8.16).
    SentKeys = GroupSentDistribution, SentDistributions
);
kind!(
    /// One fan-out waiting for the relay.
    Fanout = Fanout, FanoutEntry
);

kind!(
    /// One group message, sent or received.
    History = GroupHistory, GroupHistoryRecord
);

/// The slot of group message `seq` of `group` (HMAC of the group id, then
/// the u64be sequence: one group's messages list in order).
pub(crate) fn history_entry(vault: &Vault, group: &GroupId, seq: u64) -> Slot<History> {
    Slot::ordered(vault, &group.0, seq)
}

/// Every stored message of `group`, in order.
pub(crate) fn history_of(vault: &Vault, group: &GroupId) -> Prefix<History> {
    Prefix::named(vault, &group.0)
}

kind!(
    /// Group message id → its entries' sequences, and each group's mark
    /// that every entry of it is indexed.
    MessageIndex = GroupMessageIndex, GroupIndexRecord
);

/// The index slot of message id `id` in `group` (HMAC of group id ||
/// message id: whose message it is stays inside the sealed value, so one
/// read finds every author's entry with that id).
pub(crate) fn message_index(vault: &Vault, group: &GroupId, id: &MessageId) -> Slot<MessageIndex> {
    let mut name = Vec::with_capacity(group.0.len() + id.0.len());
    name.extend_from_slice(&group.0);
    name.extend_from_slice(&id.0);
    Slot::named(vault, &name)
}

/// The slot of `group`'s "every entry is indexed" mark (HMAC of the group
/// id alone: a name shorter than any message index slot's, so never one).
pub(crate) fn index_complete(vault: &Vault, group: &GroupId) -> Slot<MessageIndex> {
    Slot::named(vault, &group.0)
}

/// The sequence number at the end of a group history slot.
pub(crate) fn history_seq(slot: &Slot<History>) -> Option<u64> {
    let bytes = slot.as_bytes();
    bytes
        .len()
        .checked_sub(8)
        .and_then(|start| bytes.get(start..))
        .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
        .map(u64::from_be_bytes)
}

/// The slot of group `group` (HMAC of its id).
pub(crate) fn group(vault: &Vault, group: &GroupId) -> Slot<Groups> {
    Slot::named(vault, &group.0)
}

/// Our sender key's slot in `group` (HMAC of the group id).
pub(crate) fn own_key(vault: &Vault, group: &GroupId) -> Slot<OwnKeys> {
    Slot::named(vault, &group.0)
}

/// The slot of the distributions of our sender keys we sent in `group`
/// (HMAC of the group id).
pub(crate) fn sent_distributions(vault: &Vault, group: &GroupId) -> Slot<SentKeys> {
    Slot::named(vault, &group.0)
}

/// The slot of `member`'s sender keys in `group` (HMAC of group id ||
/// account id).
pub(crate) fn member_keys(vault: &Vault, group: &GroupId, member: &[u8; 16]) -> Slot<MemberKeys> {
    let mut name = Vec::with_capacity(group.0.len() + 16);
    name.extend_from_slice(&group.0);
    name.extend_from_slice(member);
    Slot::named(vault, &name)
}

/// The slot of fan-out `seq` (its big-endian number, unhashed: the order
/// is the send order, as in the outbox).
pub(crate) fn fanout(seq: u64) -> Slot<Fanout> {
    Slot::from_bytes(seq.to_be_bytes().to_vec())
}

/// The sequence number of a fan-out slot.
pub(crate) fn fanout_seq(slot: &Slot<Fanout>) -> Option<u64> {
    <[u8; 8]>::try_from(slot.as_bytes())
        .ok()
        .map(u64::from_be_bytes)
}

/// Every group we know.
pub(crate) fn all_groups() -> Prefix<Groups> {
    Prefix::all()
}

/// A group log whose stored pickle does not load.
pub(crate) fn bad_log(source: umbra_protocol::pickle::PickleError) -> StoreError {
    StoreError::BadPickle {
        kind: RecordKind::Group,
        source,
    }
}

/// A sender key whose stored pickle does not load.
pub(crate) fn bad_key(source: umbra_protocol::pickle::PickleError) -> StoreError {
    StoreError::BadPickle {
        kind: RecordKind::GroupSenderKey,
        source,
    }
}
