//! Asking a member for its sender key again, and answering such a request
//! (docs/PROTOCOL.md §8.16).
//!
//! A member that lacks another member's sender key (its distribution was
//! lost or refused, or this device was restored from the account backup,
//! which holds no sender key) cannot open that member's group messages,
//! and the sender's *current* chain key would not help: a chain only moves
//! forward, so messages already sent stay closed. So every distribution we
//! send is kept as sent (kind `GroupSentDistribution`), with the members it
//! went to, for our current sender key and the one before it. A receiver
//! that holds no key for a group message's (epoch, chain id) asks its
//! sender, pairwise, with `Content::GroupKeyRequest`, at most once per
//! [`GROUP_KEY_REQUEST_INTERVAL`] per (group, sender); the message itself
//! is kept unacknowledged (`Failure::Kept`), so the relay delivers it again
//! after the next connection, when the key that came meanwhile opens it.
//! The sender answers with the copy the asker was sent, and only if the
//! asker is a member of its current state and was sent that key: never to
//! a non-member or a removed member, and never from an iteration earlier
//! than the one the asker first had (a member added after the key was made
//! got it from a later iteration, and still cannot read what was sent
//! before it joined).
//!
//! Must never: send a key to an account that is not a member of our
//! current state or that we never sent that key to, send an earlier copy
//! than the first one it was sent, keep copies of more than
//! [`KEPT_SENT_KEYS`] keys, or ask anyone but the member whose message did
//! not open.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use umbra_protocol::content::Content;
use umbra_protocol::group::GroupMessage;
use umbra_protocol::wire::AccountId;

use crate::consts::{
    millis, GROUP_KEY_ANSWER_INTERVAL, GROUP_KEY_REQUEST_INTERVAL, GROUP_SYNC_TRACKED,
};
use crate::engine::Engine;
use crate::inbound::{Failure, Rejected};
use crate::records;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{DecryptFailure, Error, Event, GroupRefusal};

use super::keys::OwnSenderKey;
use super::manager::{Group, Membership};
use super::GroupId;

/// How many of our sender keys per group we keep the sent distributions
/// of: the current key and the one it replaced. A receiver keeps two keys
/// per member (`keys.rs`), so an older one it asked for would push out a
/// key it reads with; and a message under a key two rotations old was
/// sent before we learnt of two changes that rotated it, which a member
/// that has been reading the group since has long had opened or given up.
pub(crate) const KEPT_SENT_KEYS: usize = 2;

/// One distribution as we sent it, and to whom (ascending account ids).
#[derive(Clone, Serialize, Deserialize)]
struct SentCopy {
    /// The signed distribution (§8.5), a secret chain key inside.
    #[serde(with = "serde_bytes")]
    distribution: Vec<u8>,
    to: Vec<[u8; 16]>,
}

impl Drop for SentCopy {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.distribution);
    }
}

/// The copies of one of our keys, earliest first: each member appears in
/// the first copy it was sent only.
#[derive(Clone, Serialize, Deserialize)]
struct SentKey {
    epoch: u64,
    chain_id: u32,
    copies: Vec<SentCopy>,
}

/// What we sent of our sender keys in one group (kind
/// `GroupSentDistribution`), oldest key first, at most [`KEPT_SENT_KEYS`].
/// No `Debug`: it holds chain keys.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct SentDistributions {
    keys: Vec<SentKey>,
}

impl SentDistributions {
    /// Notes that `distribution` of our key (`epoch`, `chain_id`) went to
    /// `to`. A member already sent a copy of this key keeps its first one;
    /// a new key pushes out the oldest beyond [`KEPT_SENT_KEYS`].
    pub(crate) fn note(
        &mut self,
        epoch: u64,
        chain_id: u32,
        distribution: &[u8],
        to: &[AccountId],
    ) {
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
                    copies: Vec::new(),
                });
                let excess = self.keys.len().saturating_sub(KEPT_SENT_KEYS);
                self.keys.drain(..excess);
                self.keys.len() - 1
            }
        };
        let key = &mut self.keys[at];
        let mut new: Vec<[u8; 16]> = to
            .iter()
            .map(|a| *a.as_bytes())
            .filter(|a| !key.copies.iter().any(|c| c.to.binary_search(a).is_ok()))
            .collect();
        if new.is_empty() {
            return;
        }
        new.sort_unstable();
        new.dedup();
        key.copies.push(SentCopy {
            distribution: distribution.to_vec(),
            to: new,
        });
    }

    /// The first copy of key (`epoch`, `chain_id`) that `member` was sent.
    pub(crate) fn copy_for(&self, epoch: u64, chain_id: u32, member: &AccountId) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|k| k.epoch == epoch && k.chain_id == chain_id)?
            .copies
            .iter()
            .find(|c| c.to.binary_search(member.as_bytes()).is_ok())
            .map(|c| c.distribution.as_slice())
    }

    /// The (epoch, chain id) of the keys kept, oldest first.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> Vec<(u64, u32)> {
        self.keys.iter().map(|k| (k.epoch, k.chain_id)).collect()
    }
}

type Pair = (GroupId, [u8; 16]);

/// When we last asked, and last answered, each (group, member) for a key.
/// In memory only: a restart forgets them, which costs at most one early
/// request or answer per pair.
#[derive(Default)]
pub(crate) struct KeyRequestLimits {
    asked: Mutex<HashMap<Pair, u64>>,
    answered: Mutex<HashMap<Pair, u64>>,
}

impl KeyRequestLimits {
    /// Whether we may ask `member` about `group` now; notes it if so.
    pub(crate) fn may_ask(&self, group: &GroupId, member: &AccountId, now_ms: u64) -> bool {
        let pair = (*group, *member.as_bytes());
        allow_and_note(
            &self.asked,
            pair,
            now_ms,
            millis(GROUP_KEY_REQUEST_INTERVAL),
        )
    }

    /// Forgets that we asked `member` about `group` (the request could not
    /// be queued after all).
    fn unask(&self, group: &GroupId, member: &AccountId) {
        lock(&self.asked).remove(&(*group, *member.as_bytes()));
    }

    /// Whether we may answer `member` about `group` now; notes it if so.
    pub(crate) fn may_answer(&self, group: &GroupId, member: &AccountId, now_ms: u64) -> bool {
        let pair = (*group, *member.as_bytes());
        allow_and_note(
            &self.answered,
            pair,
            now_ms,
            millis(GROUP_KEY_ANSWER_INTERVAL),
        )
    }
}

fn lock(map: &Mutex<HashMap<Pair, u64>>) -> std::sync::MutexGuard<'_, HashMap<Pair, u64>> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `pair` was not noted within `interval_ms` of `now_ms` (a clock
/// that went back counts as time passed); if so it is noted now. Beyond
/// [`GROUP_SYNC_TRACKED`] pairs the older half is forgotten.
fn allow_and_note(
    map: &Mutex<HashMap<Pair, u64>>,
    pair: Pair,
    now_ms: u64,
    interval_ms: u64,
) -> bool {
    let mut map = lock(map);
    if let Some(&at) = map.get(&pair) {
        if now_ms >= at && now_ms - at < interval_ms {
            return false;
        }
    } else if map.len() >= GROUP_SYNC_TRACKED {
        let mut entries: Vec<(u64, Pair)> = map.iter().map(|(p, at)| (*at, *p)).collect();
        entries.sort_unstable();
        for (_, old) in entries.iter().take(entries.len() / 2) {
            map.remove(old);
        }
    }
    map.insert(pair, now_ms);
    true
}

/// Adds to `txn` that `distribution` of our `key` in `group` went to `to`
/// (called by the send that distributes it, in the transaction that
/// commits the key).
pub(crate) async fn note_sent(
    engine: &Engine,
    txn: &mut Txn,
    group: &GroupId,
    key: &OwnSenderKey,
    distribution: &[u8],
    to: &[AccountId],
) -> Result<(), Error> {
    if to.is_empty() {
        return Ok(());
    }
    let slot = records::group::sent_distributions(&engine.vault, group);
    let mut sent = engine.vault.load(&slot).await?.unwrap_or_default();
    let chain_id = key.sender()?.chain_id();
    sent.note(key.epoch, chain_id, distribution, to);
    engine.vault.save(txn, slot, &sent)?;
    Ok(())
}

/// Asks `contact` (a member of the active `group` whose group message
/// under key (`epoch`, `chain_id`) did not open: we hold no such key of
/// its) to send that key again, within the ask limit, in a transaction of
/// its own (the delivery that called is kept, so its own is dropped).
pub(crate) async fn ask(
    engine: &Engine,
    group: &Group,
    contact: &ContactRecord,
    epoch: u64,
    chain_id: u32,
) -> Result<(), Error> {
    let member = AccountId::from_bytes(contact.account);
    let (limits, now) = (&engine.groups.key_requests, engine.clock.now_ms());
    if group.membership != Membership::Active
        || !group.state().is_member(&member)
        || !contact.may_send()
    {
        return Ok(());
    }
    let Some(mut record) = engine.sessions.of_contact(contact).await? else {
        return Ok(());
    };
    if !limits.may_ask(&group.id(), &member, now) {
        return Ok(());
    }
    let request = Content::GroupKeyRequest {
        group: group.id(),
        epoch,
        chain_id,
    };
    let queued = async {
        let mut txn = Txn::new();
        let mut counters = engine.counters().await?;
        super::sync::reply_over(
            engine,
            &mut txn,
            &mut counters,
            contact,
            &mut record,
            vec![request],
        )?;
        engine.put_counters(&mut txn, &counters)?;
        engine.vault.commit(txn).await?;
        Ok::<(), Error>(())
    };
    if let Err(e) = queued.await {
        // Not queued: the next message that does not open asks again.
        limits.unask(&group.id(), &member);
        return Err(e);
    }
    engine.outbox_wake.notify_one();
    tracing::debug!(
        epoch,
        "sender key asked for a group message that did not open"
    );
    Ok(())
}

/// The failure for `message` from `contact`, a member of the active
/// `group`, that no key of its we hold opens: kept for a redelivery, its
/// sender asked for the key first (the ask's own store failure is the
/// delivery's).
pub(crate) async fn no_key(
    engine: &Engine,
    group: &Group,
    contact: &ContactRecord,
    message: &GroupMessage,
    from: &str,
) -> Failure {
    let header = message.header();
    if let Err(e) = ask(engine, group, contact, header.epoch, header.chain_id).await {
        return Failure::from(e);
    }
    Failure::Kept(Rejected {
        from: Some(from.to_owned()),
        reason: DecryptFailure::Group(GroupRefusal::NoSenderKey),
    })
}

/// A `GroupKeyRequest` from `contact`: the answer, if it is owed one, goes
/// to `replies`, which the caller encrypts with the session the request
/// came in on. Nothing is shown.
pub(crate) async fn answer_to(
    engine: &Engine,
    contact: &ContactRecord,
    request: Content,
    replies: &mut Vec<Content>,
) -> Result<Vec<Event>, Failure> {
    if let Content::GroupKeyRequest {
        group,
        epoch,
        chain_id,
    } = request
    {
        replies.extend(answer(engine, contact, &group, epoch, chain_id).await?);
    }
    Ok(Vec::new())
}

/// What we answer `contact`'s `GroupKeyRequest { group, epoch, chain_id }`:
/// the copy of that key of ours we sent it, if it is a member of our
/// current state of a group we are in, we sent it that key, and the answer
/// limit allows; otherwise nothing.
pub(crate) async fn answer(
    engine: &Engine,
    contact: &ContactRecord,
    group: &GroupId,
    epoch: u64,
    chain_id: u32,
) -> Result<Option<Content>, Error> {
    let asker = AccountId::from_bytes(contact.account);
    let Some(rec) = engine.groups.get(group).await? else {
        return Ok(None);
    };
    if rec.membership != Membership::Active
        || !rec.state().is_member(&asker)
        || asker == engine.me().account
        || !contact.may_send()
    {
        return Ok(None);
    }
    let slot = records::group::sent_distributions(&engine.vault, group);
    let Some(sent) = engine.vault.load(&slot).await? else {
        return Ok(None);
    };
    let Some(copy) = sent.copy_for(epoch, chain_id, &asker) else {
        return Ok(None);
    };
    // Only an answer sent takes an entry of the limit.
    if !engine
        .groups
        .key_requests
        .may_answer(group, &asker, engine.clock.now_ms())
    {
        return Ok(None);
    }
    Ok(Some(Content::SenderKeyDistribution {
        group: *group,
        payload: copy.to_vec(),
    }))
}
