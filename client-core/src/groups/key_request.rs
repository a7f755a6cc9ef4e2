//! Asking a member for its sender key again, and answering such a request
//! (docs/PROTOCOL.md §8.16).
//!
//! A member that lacks another member's sender key (its distribution was
//! lost or refused, or this device was restored from the account backup,
//! which holds no sender key) cannot open that member's group messages,
//! and the sender's *current* chain key would not help: a chain only moves
//! forward, so messages already sent stay closed. So the sender keeps its
//! last keys' chains from the earliest iteration it sent within the
//! relay's message lifetime (`sent_keys.rs`). A receiver that holds no key
//! for a group message's (epoch, chain id) asks its sender, pairwise, with
//! `Content::GroupKeyRequest` naming the message's iteration, at most once
//! per [`GROUP_KEY_REQUEST_INTERVAL`] per (group, sender, key); the message
//! itself is kept unacknowledged (`Failure::Kept`), so the relay delivers
//! it again after the next connection, when the key that came meanwhile
//! opens it. The sender answers with a distribution of that key signed
//! now, from the latest of the iteration asked for, the chain it kept and
//! the first iteration it sent the asker, and only if the asker is a
//! member of its current state and was sent that key.
//!
//! Must never: send a key to an account that is not a member of our
//! current state or that we never sent that key to, answer from an
//! iteration earlier than the one asked, the one kept or the first one the
//! asker was sent, or ask anyone but the member whose message did not
//! open; a failed ask never costs the message that prompted it.

use std::collections::HashMap;
use std::sync::Mutex;

use umbra_protocol::content::Content;
use umbra_protocol::group::GroupMessage;
use umbra_protocol::wire::{AccountId, DeviceId};

use crate::consts::{
    millis, GROUP_KEY_ANSWER_INTERVAL, GROUP_KEY_REQUEST_INTERVAL, GROUP_SYNC_TRACKED,
};
use crate::engine::Engine;
use crate::inbound::{Failure, Rejected};
use crate::records;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{DecryptFailure, Error, Event, GroupRefusal};

use super::manager::{Group, Membership};
use super::sent_keys::KEPT_SENT_KEYS;
use super::GroupId;

/// (group, member, epoch, chain id): one key of one member.
type Entry = (GroupId, [u8; 16], u64, u32);

/// When we last asked, and last answered, each member for each key of a
/// group: per key, so an old message under a key the sender no longer
/// keeps does not stand in the way of the ask for its current one, and a
/// restored member that needs two keys gets both. At most
/// [`KEPT_SENT_KEYS`] + 1 keys per (group, member) within an interval.
/// In memory only: a restart forgets them, which costs at most one early
/// request or answer per key.
#[derive(Default)]
pub(crate) struct KeyRequestLimits {
    asked: Mutex<HashMap<Entry, u64>>,
    answered: Mutex<HashMap<Entry, u64>>,
}

impl KeyRequestLimits {
    /// Whether we may ask `member` about its key (`epoch`, `chain_id`) in
    /// `group` now; notes it if so.
    pub(crate) fn may_ask(
        &self,
        group: &GroupId,
        member: &AccountId,
        (epoch, chain_id): (u64, u32),
        now_ms: u64,
    ) -> bool {
        let entry = (*group, *member.as_bytes(), epoch, chain_id);
        allow_and_note(
            &self.asked,
            entry,
            now_ms,
            millis(GROUP_KEY_REQUEST_INTERVAL),
        )
    }

    /// Forgets that we asked (the request could not be queued after all).
    fn unask(&self, group: &GroupId, member: &AccountId, (epoch, chain_id): (u64, u32)) {
        lock(&self.asked).remove(&(*group, *member.as_bytes(), epoch, chain_id));
    }

    /// Whether we may answer `member` about our key (`epoch`, `chain_id`)
    /// in `group` now; notes it if so.
    pub(crate) fn may_answer(
        &self,
        group: &GroupId,
        member: &AccountId,
        (epoch, chain_id): (u64, u32),
        now_ms: u64,
    ) -> bool {
        let entry = (*group, *member.as_bytes(), epoch, chain_id);
        allow_and_note(
            &self.answered,
            entry,
            now_ms,
            millis(GROUP_KEY_ANSWER_INTERVAL),
        )
    }
}

fn lock(map: &Mutex<HashMap<Entry, u64>>) -> std::sync::MutexGuard<'_, HashMap<Entry, u64>> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `entry` was not noted within `interval_ms` of `now_ms` (a clock
/// that went back counts as time passed); if so it is noted now. A
/// (group, member) with [`KEPT_SENT_KEYS`] + 1 keys noted forgets its
/// oldest one if that is past the interval, else this one is refused (a
/// member naming ever new chain ids gets no more than that per interval).
/// Beyond [`GROUP_SYNC_TRACKED`] entries the older half is forgotten.
fn allow_and_note(
    map: &Mutex<HashMap<Entry, u64>>,
    entry: Entry,
    now_ms: u64,
    interval_ms: u64,
) -> bool {
    let recent = |at: u64| now_ms >= at && now_ms - at < interval_ms;
    let mut map = lock(map);
    if let Some(&at) = map.get(&entry) {
        if recent(at) {
            return false;
        }
    } else {
        let mut same: Vec<(u64, Entry)> = map
            .iter()
            .filter(|(e, _)| e.0 == entry.0 && e.1 == entry.1)
            .map(|(e, at)| (*at, *e))
            .collect();
        if same.len() > KEPT_SENT_KEYS {
            same.sort_unstable();
            let (at, oldest) = same[0];
            if recent(at) {
                return false;
            }
            map.remove(&oldest);
        }
        if map.len() >= GROUP_SYNC_TRACKED {
            let mut entries: Vec<(u64, Entry)> = map.iter().map(|(e, at)| (*at, *e)).collect();
            entries.sort_unstable();
            for (_, old) in entries.iter().take(entries.len() / 2) {
                map.remove(old);
            }
        }
    }
    map.insert(entry, now_ms);
    true
}

/// Asks `contact` (a member of the active `group` whose group message
/// under key (`epoch`, `chain_id`) at `iteration` did not open: we hold no
/// such key of its) to send that key again, within the ask limit, in a
/// transaction of its own (the delivery that called is kept, so its own
/// is dropped).
pub(crate) async fn ask(
    engine: &Engine,
    group: &Group,
    (contact, device): (&ContactRecord, DeviceId),
    (epoch, chain_id, iteration): (u64, u32, u32),
) -> Result<(), Error> {
    let member = AccountId::from_bytes(contact.account);
    let (limits, now) = (&engine.groups.key_requests, engine.clock.now_ms());
    if group.membership != Membership::Active
        || !group.state().is_member(&member)
        || !contact.may_send()
    {
        return Ok(());
    }
    // The device that sent the message: each device has its own chain
    // (§8.2), so only it can send that key again.
    let now_secs = engine.clock.now_secs();
    let usable = engine.sessions.usable_of_device(contact, device, now_secs);
    let Some(mut record) = usable.await? else {
        return Ok(());
    };
    if !limits.may_ask(&group.id(), &member, (epoch, chain_id), now) {
        return Ok(());
    }
    let request = Content::GroupKeyRequest {
        group: group.id(),
        epoch,
        chain_id,
        iteration,
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
        limits.unask(&group.id(), &member, (epoch, chain_id));
        return Err(e);
    }
    engine.outbox_wake.notify_one();
    tracing::debug!(
        epoch,
        iteration,
        "sender key asked for a group message that did not open"
    );
    Ok(())
}

/// The failure for `message` from `contact`, a member of the active
/// `group`, that no key of its we hold opens: always kept for a
/// redelivery, its sender asked for the key first. The ask is best
/// effort: whatever stops it (a store error included) is logged, and
/// never turns the message into a refusal the relay would delete.
pub(crate) async fn no_key(
    engine: &Engine,
    group: &Group,
    contact: (&ContactRecord, DeviceId),
    message: &GroupMessage,
    from: &str,
) -> Failure {
    let header = message.header();
    let key = (header.epoch, header.chain_id, header.iteration);
    if let Err(e) = ask(engine, group, contact, key).await {
        tracing::warn!(
            error = %e,
            "could not ask for a sender key; the message stays kept"
        );
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
        iteration,
    } = request
    {
        let key = (epoch, chain_id, iteration);
        replies.extend(answer(engine, contact, &group, key).await?);
    }
    Ok(Vec::new())
}

/// What we answer `contact`'s `GroupKeyRequest { group, epoch, chain_id,
/// iteration }`: a distribution of that key of ours signed now, from no
/// earlier than `iteration`, the chain we keep (what the relay can still
/// hold) and the first iteration we sent it, if it is a member of our
/// current state of a group we are in, we sent it that key, and the
/// answer limit allows; otherwise nothing.
pub(crate) async fn answer(
    engine: &Engine,
    contact: &ContactRecord,
    group: &GroupId,
    (epoch, chain_id, iteration): (u64, u32, u32),
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
    let Some(mut sent) = engine.vault.load(&slot).await? else {
        return Ok(None);
    };
    let now = engine.clock.now_ms();
    // In memory: an upkeep that has not run yet never widens an answer.
    sent.prune(now)?;
    let Some(mut distribution) =
        sent.answer(epoch, chain_id, &asker, iteration, &engine.identity)?
    else {
        return Ok(None);
    };
    // Only an answer sent takes an entry of the limit.
    let limits = &engine.groups.key_requests;
    if !limits.may_answer(group, &asker, (epoch, chain_id), now) {
        return Ok(None);
    }
    Ok(Some(Content::SenderKeyDistribution {
        group: *group,
        // Moved out, not copied: the Zeroizing buffer left behind is empty.
        payload: std::mem::take(&mut *distribution),
    }))
}
