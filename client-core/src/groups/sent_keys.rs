//! What we keep of the sender keys we sent in one group (kind
//! `GroupSentDistribution`), so a member that lost one can ask for it
//! again (docs/PROTOCOL.md §8.16), and only as far back as a message of
//! ours can still be waiting for it at the relay.
//!
//! A group message waits at the relay for at most
//! [`RELAY_MESSAGE_LIFETIME`]; after that no one can be owed a key to open
//! it, and a chain key that opens it is only a liability (a thief of the
//! account who asks for it, with envelopes a relay operator recorded,
//! would read them). So for each of our last [`KEPT_SENT_KEYS`] keys we
//! keep one chain, moved forward on every send and at upkeep to the
//! earliest iteration we sent within the lifetime, plus a bounded list of
//! checkpoints (the first iteration sent in each [`CHECKPOINT_INTERVAL`],
//! with when) that tells how far it may move. With each key we keep the
//! first iteration each member was sent it from, so a member added later
//! is never answered from before it joined.
//!
//! Must never: keep a chain earlier than the first iteration sent in the
//! checkpoint interval that holds the oldest message still within the
//! lifetime, answer from an iteration earlier than that chain, than the
//! first one the member was sent, or than the one asked for, answer for an
//! iteration we never sent (it would cost a walk of the chain), or keep
//! more than [`KEPT_SENT_KEYS`] keys or [`MAX_CHECKPOINTS`] checkpoints.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use umbra_protocol::group::{GroupSender, GroupSenderPickle};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::AccountId;
use zeroize::Zeroizing;

use crate::consts::{millis, RELAY_MESSAGE_LIFETIME};
use crate::engine::Engine;
use crate::records;
use crate::store::Txn;
use crate::Error;

use super::{GroupFailure, GroupId};

/// How many of our sender keys per group we keep: the current key and the
/// one it replaced. A receiver keeps two keys per member (`keys.rs`), so an
/// older one it asked for would push out a key it reads with; and a
/// message under a key two rotations old was sent before we learnt of two
/// changes that rotated it, which a member that has been reading the group
/// since has long had opened or given up.
pub(crate) const KEPT_SENT_KEYS: usize = 2;

/// One checkpoint per this long at most: the chain kept can be this much
/// older than the relay's lifetime (what it costs: messages sent in one
/// more hour stay answerable), and a key used for the whole lifetime
/// needs [`MAX_CHECKPOINTS`] of them.
pub(crate) const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(3600);

/// The most checkpoints one key keeps: one per interval over the lifetime,
/// and the one before it. Beyond it the oldest goes (the chain moves on:
/// forward secrecy wins over an old message).
pub(crate) const MAX_CHECKPOINTS: usize =
    (RELAY_MESSAGE_LIFETIME.as_secs() / CHECKPOINT_INTERVAL.as_secs()) as usize + 2;

/// The members first sent one of our keys from one iteration
/// (ascending account ids).
#[derive(Clone, Serialize, Deserialize)]
struct FirstCopy {
    iteration: u32,
    to: Vec<[u8; 16]>,
}

/// The messages sent under one key in one [`CHECKPOINT_INTERVAL`]: the
/// first one's iteration, when the interval began, and when the last one
/// was sent (every message from `iteration` up to the next checkpoint's
/// was sent by `last_ms`).
#[derive(Clone, Serialize, Deserialize)]
struct Checkpoint {
    iteration: u32,
    started_ms: u64,
    last_ms: u64,
}

/// One of our keys as we keep it.
#[derive(Clone, Serialize, Deserialize)]
struct SentKey {
    epoch: u64,
    chain_id: u32,
    /// The `GroupSender` pickle at the earliest iteration still
    /// answerable (secret: chain key and signing seed).
    #[serde(with = "serde_bytes")]
    chain: Vec<u8>,
    /// The iteration after the last message sent under this key.
    next: u32,
    /// Ascending, one per [`CHECKPOINT_INTERVAL`] at most.
    checkpoints: Vec<Checkpoint>,
    /// Each member appears in the first copy it was sent only.
    copies: Vec<FirstCopy>,
}

impl Drop for SentKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.chain);
    }
}

impl SentKey {
    fn sender(&self) -> Result<GroupSender, Error> {
        let pickle = GroupSenderPickle::decode(&self.chain).map_err(records::group::bad_key)?;
        Ok(GroupSender::from_pickle(&pickle).map_err(records::group::bad_key)?)
    }

    /// Drops the checkpoints whose messages have all left the relay, and
    /// moves the chain to the first one left (to `next` if none is).
    /// Whether anything changed.
    fn prune(&mut self, now_ms: u64) -> Result<bool, Error> {
        let cutoff = now_ms.saturating_sub(millis(RELAY_MESSAGE_LIFETIME));
        let before = self.checkpoints.len();
        // A checkpoint whose last message is past the lifetime holds
        // nothing the relay can still deliver.
        let expired = self
            .checkpoints
            .iter()
            .take_while(|c| c.last_ms < cutoff)
            .count();
        let excess = (self.checkpoints.len() - expired).saturating_sub(MAX_CHECKPOINTS);
        self.checkpoints.drain(..expired + excess);
        let floor = self.checkpoints.first().map_or(self.next, |c| c.iteration);
        let mut sender = self.sender()?;
        if sender.iteration() >= floor {
            return Ok(self.checkpoints.len() != before);
        }
        sender.advance_to(floor).map_err(chain_error)?;
        zeroize::Zeroize::zeroize(&mut self.chain);
        self.chain = sender.pickle().encode().to_vec();
        Ok(true)
    }
}

/// A chain that cannot move on (cannot happen below `next`, which is at
/// most `u32::MAX`, but never a panic).
fn chain_error(e: umbra_protocol::group::GroupError) -> Error {
    GroupFailure::Refused(e.to_string()).into()
}

/// What we keep of our sender keys in one group, oldest key first, at
/// most [`KEPT_SENT_KEYS`]. No `Debug`: it holds chain keys.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct SentDistributions {
    keys: Vec<SentKey>,
}

impl SentDistributions {
    /// Notes a message sent at `now_ms` under `sender` (our key as it was
    /// just before it encrypted: its iteration is the message's), whose
    /// send also distributed the key from that iteration to `to` (maybe
    /// none). A member already sent this key keeps its first iteration; a
    /// new key pushes out the oldest beyond [`KEPT_SENT_KEYS`]. Then prunes.
    pub(crate) fn note(
        &mut self,
        sender: &GroupSender,
        to: &[AccountId],
        now_ms: u64,
    ) -> Result<(), Error> {
        let (epoch, chain_id, iteration) = (sender.epoch(), sender.chain_id(), sender.iteration());
        let at = match self
            .keys
            .iter()
            .position(|k| k.epoch == epoch && k.chain_id == chain_id)
        {
            Some(at) => at,
            None => {
                self.keys.push(SentKey {
                    epoch,
                    chain_id,
                    chain: sender.pickle().encode().to_vec(),
                    next: iteration,
                    checkpoints: Vec::new(),
                    copies: Vec::new(),
                });
                let excess = self.keys.len().saturating_sub(KEPT_SENT_KEYS);
                self.keys.drain(..excess);
                self.keys.len() - 1
            }
        };
        let key = &mut self.keys[at];
        key.next = key.next.max(iteration.saturating_add(1));
        let interval = millis(CHECKPOINT_INTERVAL);
        match key.checkpoints.last_mut() {
            // Within the interval (a clock that went back counts as
            // within it).
            Some(last) if now_ms < last.started_ms.saturating_add(interval) => {
                last.last_ms = last.last_ms.max(now_ms);
            }
            _ => key.checkpoints.push(Checkpoint {
                iteration,
                started_ms: now_ms,
                last_ms: now_ms,
            }),
        }
        let mut new: Vec<[u8; 16]> = to
            .iter()
            .map(|a| *a.as_bytes())
            .filter(|a| !key.copies.iter().any(|c| c.to.binary_search(a).is_ok()))
            .collect();
        if !new.is_empty() {
            new.sort_unstable();
            new.dedup();
            key.copies.push(FirstCopy { iteration, to: new });
        }
        self.prune(now_ms).map(drop)
    }

    /// Moves every key's chain to the earliest iteration still within the
    /// relay's lifetime at `now_ms`; whether anything changed.
    pub(crate) fn prune(&mut self, now_ms: u64) -> Result<bool, Error> {
        let mut changed = false;
        for key in &mut self.keys {
            changed |= key.prune(now_ms)?;
        }
        Ok(changed)
    }

    /// The distribution of our key (`epoch`, `chain_id`) owed to `member`
    /// that asked from `requested`, signed now by `identity`: from the
    /// latest of `requested`, the chain kept and the first iteration
    /// `member` was sent. None if we keep no such key, never sent it to
    /// `member`, or never sent `requested`. Call [`prune`](Self::prune)
    /// first.
    pub(crate) fn answer(
        &self,
        epoch: u64,
        chain_id: u32,
        member: &AccountId,
        requested: u32,
        identity: &IdentityKeyPair,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        let Some(key) = self
            .keys
            .iter()
            .find(|k| k.epoch == epoch && k.chain_id == chain_id)
        else {
            return Ok(None);
        };
        let Some(first) = key
            .copies
            .iter()
            .find(|c| c.to.binary_search(member.as_bytes()).is_ok())
        else {
            return Ok(None);
        };
        if requested >= key.next {
            return Ok(None);
        }
        let mut sender = key.sender()?;
        sender
            .advance_to(requested.max(first.iteration))
            .map_err(chain_error)?;
        Ok(Some(Zeroizing::new(
            sender.distribution(identity).as_bytes().to_vec(),
        )))
    }

    /// The (epoch, chain id, iteration of the chain kept) of the keys
    /// kept, oldest first.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> Vec<(u64, u32, u32)> {
        self.keys
            .iter()
            .map(|k| {
                let at = k.sender().map_or(u32::MAX, |s| s.iteration());
                (k.epoch, k.chain_id, at)
            })
            .collect()
    }
}

/// Adds to `txn` that a message under `sender` (our key in `group` just
/// before it encrypted) is being sent, which distributed it to `to`
/// (called by the send, in the transaction that commits the key).
pub(crate) async fn note_sent(
    engine: &Engine,
    txn: &mut Txn,
    group: &GroupId,
    sender: &GroupSender,
    to: &[AccountId],
) -> Result<(), Error> {
    let slot = records::group::sent_distributions(&engine.vault, group);
    let mut sent = engine.vault.load(&slot).await?.unwrap_or_default();
    sent.note(sender, to, engine.clock.now_ms())?;
    engine.vault.save(txn, slot, &sent)?;
    Ok(())
}

/// Upkeep: moves the kept chains of every group on to what the relay can
/// still hold, so a chain does not stay old in a group we stopped sending
/// in.
pub(crate) async fn prune_all(engine: &Engine) -> Result<(), Error> {
    let now = engine.clock.now_ms();
    let mut txn = Txn::new();
    let mut changed = false;
    for group in engine.groups.all().await? {
        let slot = records::group::sent_distributions(&engine.vault, &group.id());
        let Some(mut sent) = engine.vault.load(&slot).await? else {
            continue;
        };
        if sent.prune(now)? {
            engine.vault.save(&mut txn, slot, &sent)?;
            changed = true;
        }
    }
    if changed {
        engine.vault.commit(txn).await?;
    }
    Ok(())
}
