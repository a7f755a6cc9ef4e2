//! Fan-out: the sealed envelopes of one group operation (a group message,
//! a change, sender keys) to many members, stored before they leave and
//! handed to the relay in as few `Send` frames as fit.
//!
//! A [`FanoutEntry`] is written in the same store transaction as the key
//! state that produced its envelopes (our sender key's advanced chain, the
//! pairwise sessions that sealed a change), so a crash resends the same
//! bytes and never encrypts twice under one message key — as the 1:1
//! outbox does (`outbox.rs`). Each item is for one device of one member
//! (every device of its held list, docs/PROTOCOL.md §8.14). [`pack`] splits the pending items into frames
//! within [`MAX_FRAME_BYTES`] and [`MAX_RECIPIENTS_PER_SEND`], keeping the
//! items' order (a member's sender key travels before the first message
//! under it, and the relay queues a frame's envelopes in order). Each
//! envelope's outcome is the relay's own, per member: accepted and refused
//! items leave the entry, items the relay could not take now stay for the
//! outbox pump's next round. A refusal is never silent: the call that sent
//! the fan-out reports it per member, and a later round (the outbox pump's)
//! raises [`Event::GroupDeliveryFailed`](crate::Event) for it. A refused
//! item that carried our sender key un-marks that member in the key, in the
//! same transaction that settles the item, so the next send distributes the
//! key to it again instead of sending messages it cannot read.
//!
//! Must never: send an item before its entry is committed, drop an item the
//! relay did not settle, drop a refusal without reporting it, or reorder two
//! items for the same member.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use umbra_protocol::wire::{
    AccountId, Address, DeviceId, ErrorCode, OutgoingEnvelope, Request, Response, SendOutcome,
    MAX_FRAME_BYTES, MAX_RECIPIENTS_PER_SEND,
};

use crate::engine::Engine;
use crate::failure::RelayMisbehaved;
use crate::records::{self, Prefix, Slot};
use crate::store::Txn;
use crate::{Error, MessageId};

use super::{GroupId, MemberOutcome};

/// Bytes of a `Send` frame around its envelopes: the wire version, a
/// request id (a varint of at most 10 bytes), the frame and request tags
/// and the envelope count (a varint of at most 3 bytes for 1,024). Checked
/// against the real encoder in the tests below.
pub(crate) const SEND_FRAME_OVERHEAD: usize = 1 + 10 + 2 + 3;

/// One envelope for one device of one member.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct FanoutItem {
    /// The member's account id bytes.
    pub(crate) to_account: [u8; 16],
    /// The device of that account it is sealed for (docs/PROTOCOL.md
    /// §8.14: every device of the member's held list gets its own).
    pub(crate) to_device: u32,
    /// The member's username when queued (for reports).
    pub(crate) to_username: String,
    /// The sealed envelope, exactly as it will be sent.
    #[serde(with = "serde_bytes")]
    pub(crate) envelope: Vec<u8>,
    /// The epoch of our sender key, if this item distributes it (a refusal
    /// un-marks the device in that key, so it is sent again).
    pub(crate) sender_key_epoch: Option<u64>,
}

impl FanoutItem {
    fn outgoing(&self) -> OutgoingEnvelope {
        OutgoingEnvelope {
            to: self.address(),
            envelope: self.envelope.clone(),
        }
    }

    fn address(&self) -> Address {
        Address {
            account: AccountId::from_bytes(self.to_account),
            device: DeviceId(self.to_device),
        }
    }

    /// Its size inside a `Send` frame.
    fn encoded_len(&self) -> usize {
        outgoing_len(self.envelope.len())
    }
}

/// The size of an `OutgoingEnvelope` of `envelope_len` bytes inside a
/// `Send` frame (postcard: address, length varint, bytes).
pub(crate) fn outgoing_len(envelope_len: usize) -> usize {
    // Account id as a 16-byte string (1 + 16), device varint (<= 5),
    // envelope length varint (<= 3 below 2 MiB) and the bytes.
    17 + 5 + 3 + envelope_len
}

/// What a fan-out carries, for events and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum FanoutPurpose {
    /// A group message (and the sender keys sent ahead of it).
    Message,
    /// A group change, welcome or sender keys: nothing the user sees.
    Control,
}

/// One fan-out waiting for the relay (kind `Fanout`, slot = u64be sequence).
#[derive(Clone)]
pub(crate) struct FanoutEntry {
    /// Our message id (a group message's) or a random id.
    pub(crate) id: MessageId,
    /// The group, for events.
    pub(crate) group: GroupId,
    pub(crate) purpose: FanoutPurpose,
    /// Items not yet settled by the relay, in send order.
    pub(crate) items: Vec<FanoutItem>,
    /// Local time it was queued, Unix milliseconds.
    pub(crate) queued_at_ms: u64,
}

/// The stored form's format byte, then [`StoredFanout`] (postcard). An
/// entry written before devices starts with `0x10`, the length of its
/// message id (postcard's byte-string prefix), which no format byte is;
/// its items are for each member's device 1, the only one that version
/// sent to (as the 1:1 outbox's legacy entries, `outbox.rs`).
const FANOUT_FORMAT_DEVICES: u8 = 1;
/// The first byte of an entry written before devices (see above).
const LEGACY_FIRST_BYTE: u8 = 0x10;

#[derive(Serialize, Deserialize)]
struct StoredFanout {
    id: MessageId,
    group: GroupId,
    purpose: FanoutPurpose,
    items: Vec<FanoutItem>,
    queued_at_ms: u64,
}

/// An entry written before devices, after its id. Read only.
#[derive(Deserialize)]
struct LegacyRest {
    group: GroupId,
    purpose: FanoutPurpose,
    items: Vec<LegacyItem>,
    queued_at_ms: u64,
}

/// An item written before devices: for the member's device 1.
#[derive(Deserialize)]
struct LegacyItem {
    to_account: [u8; 16],
    to_username: String,
    #[serde(with = "serde_bytes")]
    envelope: Vec<u8>,
    sender_key_epoch: Option<u64>,
}

impl Serialize for FanoutEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&FANOUT_FORMAT_DEVICES)?;
        tuple.serialize_element(&StoredFanout {
            id: self.id,
            group: self.group,
            purpose: self.purpose,
            items: self.items.clone(),
            queued_at_ms: self.queued_at_ms,
        })?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for FanoutEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The format byte and the fields, or the legacy id's length byte,
        // its 16 bytes and the other fields.
        deserializer.deserialize_tuple(3, EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> serde::de::Visitor<'de> for EntryVisitor {
    type Value = FanoutEntry;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a group fan-out")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<FanoutEntry, A::Error> {
        use serde::de::Error as _;
        let missing = || A::Error::custom("truncated group fan-out");
        let first: u8 = seq.next_element()?.ok_or_else(missing)?;
        match first {
            FANOUT_FORMAT_DEVICES => {
                let s: StoredFanout = seq.next_element()?.ok_or_else(missing)?;
                Ok(FanoutEntry {
                    id: s.id,
                    group: s.group,
                    purpose: s.purpose,
                    items: s.items,
                    queued_at_ms: s.queued_at_ms,
                })
            }
            LEGACY_FIRST_BYTE => {
                let id: [u8; 16] = seq.next_element()?.ok_or_else(missing)?;
                let rest: LegacyRest = seq.next_element()?.ok_or_else(missing)?;
                Ok(FanoutEntry {
                    id: MessageId(id),
                    group: rest.group,
                    purpose: rest.purpose,
                    items: rest
                        .items
                        .into_iter()
                        .map(|i| FanoutItem {
                            to_account: i.to_account,
                            to_device: DeviceId::PRIMARY.0,
                            to_username: i.to_username,
                            envelope: i.envelope,
                            sender_key_epoch: i.sender_key_epoch,
                        })
                        .collect(),
                    queued_at_ms: rest.queued_at_ms,
                })
            }
            other => Err(A::Error::custom(format_args!(
                "unknown group fan-out format {other}"
            ))),
        }
    }
}

/// Splits `items` into consecutive runs, each fitting one `Send` frame:
/// at most `max_count` envelopes and `max_bytes` bytes encoded. An item too
/// large for any frame gets a run of its own (the relay refuses it alone).
pub(crate) fn pack(
    items: &[FanoutItem],
    max_bytes: usize,
    max_count: usize,
) -> Vec<std::ops::Range<usize>> {
    let lens: Vec<usize> = items.iter().map(FanoutItem::encoded_len).collect();
    pack_lengths(&lens, max_bytes, max_count)
}

/// [`pack`] over the encoded lengths ([`outgoing_len`]) of the envelopes
/// to send, in order: also the 1:1 outbox's packing of one message's
/// envelopes to a contact's devices (`outbound/pump.rs`).
pub(crate) fn pack_lengths(
    lens: &[usize],
    max_bytes: usize,
    max_count: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut bytes = SEND_FRAME_OVERHEAD;
    for (i, &len) in lens.iter().enumerate() {
        let full = i - start >= max_count || bytes + len > max_bytes;
        if i > start && full {
            runs.push(start..i);
            start = i;
            bytes = SEND_FRAME_OVERHEAD;
        }
        bytes += len;
    }
    if start < lens.len() {
        runs.push(start..lens.len());
    }
    runs
}

/// What one fan-out round did, per item (in item order).
pub(crate) struct Round {
    /// Each settled or attempted item's member and outcome.
    pub(crate) outcomes: Vec<([u8; 16], String, MemberOutcome)>,
    /// Whether items remain for a later round.
    pub(crate) unfinished: bool,
    /// The wire bytes of the `Send` frames this round used.
    pub(crate) frame_bytes: usize,
}

/// An item the relay refused for good in a round, for its event.
struct Refusal {
    member: [u8; 16],
    device: u32,
    username: String,
    code: ErrorCode,
    sender_key_epoch: Option<u64>,
}

impl Engine {
    /// Adds `entry` to `txn` under a fresh sequence number (the caller
    /// commits it together with the key state that sealed its items).
    pub(crate) fn queue_fanout(
        &self,
        txn: &mut Txn,
        counters: &mut crate::history::Counters,
        entry: &FanoutEntry,
    ) -> Result<u64, Error> {
        let seq = counters.next_outbox_seq;
        counters.next_outbox_seq += 1;
        self.vault.save(txn, records::group::fanout(seq), entry)?;
        Ok(seq)
    }

    /// Sends what is left of fan-out `seq`, frame by frame, and removes
    /// every item the relay settled. A frame the relay could not take now
    /// (connection lost, retryable refusal) ends the round with the rest
    /// left for the outbox pump. With `announce` (no caller reports the
    /// round: the outbox pump), each refusal raises
    /// [`Event::GroupDeliveryFailed`](crate::Event).
    pub(crate) async fn send_fanout(
        self: &Arc<Self>,
        seq: u64,
        announce: bool,
    ) -> Result<Round, Error> {
        let _sending = self.groups.fanout_lock.lock().await;
        let slot = records::group::fanout(seq);
        let mut round = Round {
            outcomes: Vec::new(),
            unfinished: false,
            frame_bytes: 0,
        };
        let Some(entry) = self.vault.load(&slot).await? else {
            return Ok(round);
        };
        let mut left = Vec::new();
        let runs = pack(&entry.items, MAX_FRAME_BYTES, MAX_RECIPIENTS_PER_SEND);
        let mut stopped: Option<Error> = None;
        for run in runs {
            let batch = &entry.items[run];
            if stopped.is_some() {
                queue_all(&mut round, &mut left, batch);
                continue;
            }
            let request = Request::Send {
                messages: batch.iter().map(FanoutItem::outgoing).collect(),
            };
            round.frame_bytes += send_frame_len(&request);
            match self.request(request).await {
                Ok(Response::SendResult { results }) if results.len() == batch.len() => {
                    for (item, result) in batch.iter().zip(results) {
                        let outcome = match result {
                            SendOutcome::Accepted { .. } => MemberOutcome::Reached,
                            SendOutcome::Rejected { code } if code.is_retryable() => {
                                left.push(item.clone());
                                MemberOutcome::Queued
                            }
                            SendOutcome::Rejected { code } => {
                                if code == ErrorCode::UnknownRecipient {
                                    // A device of the member's list the
                                    // relay no longer has (removed, §15.5):
                                    // its list is fetched again before the
                                    // next send (§15.3 rule 1), which
                                    // rotates a key that device held
                                    // (§8.12).
                                    self.groups.member_lists.forget(&item.to_account);
                                }
                                MemberOutcome::Refused(code)
                            }
                        };
                        round.outcomes.push(note(item, outcome));
                    }
                }
                Ok(Response::SendResult { .. }) => {
                    stopped = Some(Error::Protocol(RelayMisbehaved::EmptySendResult));
                    queue_all(&mut round, &mut left, batch);
                }
                Ok(other) => {
                    stopped = Some(crate::error::unexpected("SendResult", &other));
                    queue_all(&mut round, &mut left, batch);
                }
                Err(Error::Relay { code, .. }) if !code.is_retryable() => {
                    // The whole frame was refused for good (a limit): each
                    // of its items fails with that code.
                    for item in batch {
                        round
                            .outcomes
                            .push(note(item, MemberOutcome::Refused(code)));
                    }
                }
                Err(e) => {
                    stopped = Some(e);
                    queue_all(&mut round, &mut left, batch);
                }
            }
        }
        round.unfinished = !left.is_empty();
        let refusals = refusals(&entry.items, &round);
        let (group, id) = (entry.group, entry.id);
        self.settle_fanout(slot, entry, left, &refusals).await?;
        if let Some(e) = stopped {
            tracing::debug!(error = %crate::error::LogSafe(&e), "fan-out paused");
        }
        if announce {
            for refusal in refusals {
                self.emit(crate::Event::GroupDeliveryFailed {
                    group,
                    id,
                    member: AccountId::from_bytes(refusal.member),
                    username: refusal.username,
                    reason: crate::SendFailure::Refused(refusal.code),
                });
            }
        }
        Ok(round)
    }

    /// Rewrites the entry with only the unsettled items, or deletes it; a
    /// refused item that carried our sender key un-marks its member in the
    /// key (same transaction), so the next send distributes it again.
    async fn settle_fanout(
        &self,
        slot: Slot<records::group::Fanout>,
        mut entry: FanoutEntry,
        left: Vec<FanoutItem>,
        refusals: &[Refusal],
    ) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        let lost_keys: Vec<_> = refusals
            .iter()
            .filter_map(|r| Some((r.member, r.device, r.sender_key_epoch?)))
            .collect();
        if !lost_keys.is_empty() {
            if let Some(mut key) = self.groups.own_key(&entry.group).await? {
                let mut changed = false;
                for (member, device, epoch) in lost_keys {
                    if key.epoch == epoch {
                        let member = AccountId::from_bytes(member);
                        changed |= key.unmark_distributed(&member, DeviceId(device));
                    }
                }
                if changed {
                    self.groups.put_own_key(&mut txn, &entry.group, &key)?;
                }
            }
        }
        if left.is_empty() {
            self.vault.remove(&mut txn, slot);
        } else {
            entry.items = left;
            self.vault.save(&mut txn, slot, &entry)?;
        }
        self.vault.commit(txn).await?;
        self.outbox_changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Every fan-out still waiting, oldest first (the outbox pump sends
    /// them after the pairwise outbox).
    pub(crate) async fn pump_fanouts(self: &Arc<Self>) -> Result<(), Error> {
        // Changes of ours that lost the fork choice, made again first; one
        // that could not be made now (offline, a fetch that failed) stays
        // listed, and its failure pauses the pump after the fan-outs.
        let deferred = self.reissue_superseded().await?;
        let pending = self
            .vault
            .load_all(&Prefix::<records::group::Fanout>::all())
            .await?;
        for (slot, _) in pending {
            let Some(seq) = records::group::fanout_seq(&slot) else {
                continue;
            };
            let round = self.send_fanout(seq, true).await?;
            if round.unfinished {
                return Err(Error::relay(
                    ErrorCode::Internal,
                    "group fan-out paused; will retry".into(),
                    None,
                ));
            }
        }
        match deferred {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether any fan-out is still waiting (for `flush_outbox`).
    pub(crate) async fn fanouts_pending(&self) -> Result<bool, Error> {
        Ok(!self
            .vault
            .load_all(&Prefix::<records::group::Fanout>::all())
            .await?
            .is_empty())
    }
}

/// Items of a frame that was not settled: kept for the next round.
fn queue_all(round: &mut Round, left: &mut Vec<FanoutItem>, batch: &[FanoutItem]) {
    for item in batch {
        round.outcomes.push(note(item, MemberOutcome::Queued));
        left.push(item.clone());
    }
}

/// The items of a round the relay refused for good. `round.outcomes` holds
/// one outcome per item attempted, in item order, so a refused outcome is
/// matched to its item by position.
fn refusals(items: &[FanoutItem], round: &Round) -> Vec<Refusal> {
    items
        .iter()
        .zip(&round.outcomes)
        .filter_map(|(item, (_, _, outcome))| match outcome {
            MemberOutcome::Refused(code) => Some(Refusal {
                member: item.to_account,
                device: item.to_device,
                username: item.to_username.clone(),
                code: *code,
                sender_key_epoch: item.sender_key_epoch,
            }),
            _ => None,
        })
        .collect()
}

fn note(item: &FanoutItem, outcome: MemberOutcome) -> ([u8; 16], String, MemberOutcome) {
    (item.to_account, item.to_username.clone(), outcome)
}

/// The bytes a request takes on the wire (for the benchmark's figures).
fn send_frame_len(request: &Request) -> usize {
    umbra_protocol::wire::encode_client(&umbra_protocol::wire::ClientFrame {
        request_id: u64::MAX,
        request: request.clone(),
    })
    .map(|b| b.len())
    .unwrap_or(0)
}

#[cfg(test)]
#[path = "tests_fanout.rs"]
mod tests;
