//! Group deliveries held for a membership we may have missed
//! (docs/PROTOCOL.md §8.15, "Held for membership").
//!
//! A sender key distribution or a group message from an authenticated
//! account that our state of an active group does not list may come from a
//! member whose Add never reached us (its copy was lost or refused). It is
//! *held*: refused as kept (`Failure::Kept`), so nothing of it is committed
//! and the relay, which still holds the envelope, delivers it again after
//! the next reconnect (`crate::inbound::keep`, the mechanism every passing
//! failure uses: nothing is acknowledged that a crash could lose), and a
//! `GroupSync` is asked of one member of our state (an admin first), under
//! the ask limit of §8.15. When the answer brings the Add, the connection
//! processes the deliveries it kept again at once, from the envelopes it
//! keeps for that ([`Held::take_openable`], `connection/kept_again.rs`),
//! and the held items open in the relay's order (the key distribution
//! before the messages it keys), with no reconnect.
//!
//! What is held is counted here, in memory, by a digest of the item: at
//! most [`GROUP_HELD_PER_SENDER`] per (group, sender),
//! [`GROUP_HELD_PER_GROUP`] per group and [`GROUP_HELD_TOTAL`] in all. A
//! sender at its own share is refused; a full group (or total) is shared
//! fairly: a newcomer evicts an *evict-first* item if there is one, else
//! the latest item of the (group, sender) that holds the most, if that
//! holds at least two more than the newcomer, and never an item whose
//! sender our state now lists ([`Inner::victim`]), so throwaway accounts
//! that know a group's id cannot keep a new member's key out. An item
//! still held [`GROUP_HELD_LIFETIME`] after it was first held is refused
//! when it comes again: the state never made its sender a member.
//!
//! A sync that completes (the answerer's `GroupSyncDone` names a head our
//! log knows, `sync.rs`) marks the items of senders our state still does
//! not list evict-first, and so are their new ones while our head stays:
//! they keep their slot until another item needs it, and go before any
//! other. They are not refused, because the answer is only as complete as
//! the answerer's state: an honest member that lags behind (it never saw
//! the Add either) completes a sync all the same, and a new member's key
//! given up then would be lost; a later state that lists the sender opens
//! it as any held item. An item held evict-first asks no sync while our head
//! stays where that sync left it (one just completed there). An item evicted is still at the relay (it was
//! kept, not acknowledged): its refusal is remembered, and when it comes
//! again it is refused and so acknowledged, with why, never dropped
//! unreported. A restart forgets all this (the items are held again as
//! the relay redelivers); the kept-delivery record of `inbound::keep`,
//! which is stored, still gives an item up after its limits.
//!
//! An account our log's window shows removed or leaving is not held: its
//! client sent before it learnt, and holding would let an ex-member make
//! us keep its items (a re-add of it that we missed loses them: a known
//! limitation).
//!
//! Must never: hold an item for a group we are not active in, from a
//! sender whose identity did not authenticate it or whom our log shows
//! removed, hold more than the limits, evict an item of a sender our state
//! lists, evict an item that is not evict-first while another sender's
//! evict-first item could go, give up an item without its refusal being reported when it comes
//! again, or ask a sync of an account our state does not list.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use umbra_protocol::group::{ChangeHash, GroupAction, GroupState};
use umbra_protocol::wire::AccountId;

use crate::consts::{
    millis, GROUP_HELD_LIFETIME, GROUP_HELD_PER_GROUP, GROUP_HELD_PER_SENDER,
    GROUP_HELD_REFUSALS_TRACKED, GROUP_HELD_TOTAL, MAX_GROUP_SYNC_CHANGES,
};
use crate::engine::Engine;
use crate::inbound::{Failure, Rejected};
use crate::store::Txn;
use crate::{DecryptFailure, GroupRefusal};

use super::manager::Group;
use super::GroupId;

/// The digest that names one held item across its redeliveries.
pub(crate) type HeldKey = [u8; 32];

/// The digest of a sender key distribution `payload` from `sender`.
pub(crate) fn distribution_key(group: &GroupId, sender: &AccountId, payload: &[u8]) -> HeldKey {
    digest(b"distribution", group, sender, payload)
}

/// The digest of a sealed group message's bytes from `sender`.
pub(crate) fn message_key(group: &GroupId, sender: &AccountId, message: &[u8]) -> HeldKey {
    digest(b"message", group, sender, message)
}

fn digest(kind: &[u8], group: &GroupId, sender: &AccountId, bytes: &[u8]) -> HeldKey {
    let mut h = Sha256::new();
    h.update(kind);
    h.update(group.as_bytes());
    h.update(sender.as_bytes());
    h.update(bytes);
    h.finalize().into()
}

#[derive(Clone, Copy)]
struct Entry {
    group: GroupId,
    sender: [u8; 16],
    since_ms: u64,
    /// Order of holding, for the deterministic choice of what to evict.
    seq: u64,
    /// Its sender is listed by our state now (its Add came): never evicted.
    member: bool,
    /// A completed sync showed its sender not listed: it goes before any
    /// other item when a slot is needed.
    evict_first: bool,
}

/// What [`Held::hold`] decided for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Held: keep the delivery for a redelivery (and ask a sync).
    Held,
    /// Held evict-first, and a completed sync at our head showed its
    /// sender not listed: kept, but no sync is asked (one just completed).
    HeldEvictFirst,
    /// A limit is reached and nothing may be evicted for it: refuse it.
    Full,
    /// Held for [`GROUP_HELD_LIFETIME`] already: the state never made its
    /// sender a member; refuse it.
    Expired,
    /// It was held, and its slot went to another item (evict-first, or
    /// fair sharing, §8.15): refuse it now that it came again.
    Evicted,
}

#[derive(Default)]
struct Inner {
    items: HashMap<HeldKey, Entry>,
    /// Items evicted while they were at the relay (their next delivery is
    /// refused), and when it was decided.
    refused: HashMap<HeldKey, u64>,
    /// (group, sender) a completed sync showed not listed, with our head
    /// then and when: its new items are held evict-first at that head.
    not_members: HashMap<(GroupId, [u8; 16]), (ChangeHash, u64)>,
    next_seq: u64,
    /// A state change listed the sender of a held item since the last
    /// [`Held::take_openable`]: that item opens when it comes again.
    openable: bool,
}

/// Inserts into a map bounded by [`GROUP_HELD_REFUSALS_TRACKED`], the
/// entry decided earliest forgotten first (its item is held again when
/// it comes: not lost).
fn bounded_insert<K: std::hash::Hash + Eq + Copy, V: Copy>(
    map: &mut HashMap<K, V>,
    key: K,
    value: V,
    at: impl Fn(&V) -> u64,
) {
    if !map.contains_key(&key) && map.len() >= GROUP_HELD_REFUSALS_TRACKED {
        if let Some(oldest) = map.iter().min_by_key(|(_, v)| at(v)).map(|(k, _)| *k) {
            map.remove(&oldest);
        }
    }
    map.insert(key, value);
}

impl Inner {
    /// The entry to evict so that an item of (`group`, `sender`), which
    /// holds `own` items now, can be held (`evict_first` if the newcomer
    /// is); `whole` when the limit reached is the total one (then any
    /// group's entries may go), else only `group`'s. The rule (§8.15),
    /// among the items in scope whose sender our state does not list,
    /// other than the newcomer's pair's: first the evict-first items, of
    /// the pair holding the most of them (an evict-first newcomer only if
    /// that pair holds at least two more than its own); if there are none,
    /// and the newcomer is not evict-first, the other items, of the pair
    /// holding the most, if it holds at least two more than the newcomer
    /// (so a move never leaves the victim with fewer than the newcomer,
    /// and two senders cannot take a slot back and forth). Among pairs
    /// holding as many, the one that held an item latest; of its items,
    /// the latest held (a sender's first item, its key, is the one its
    /// others need).
    fn victim(
        &self,
        group: &GroupId,
        sender: &[u8; 16],
        own: usize,
        whole: bool,
        evict_first: bool,
    ) -> Option<HeldKey> {
        let of = |first: bool, fair: bool| {
            let mut pairs: HashMap<(GroupId, [u8; 16]), (usize, u64, HeldKey)> = HashMap::new();
            for (key, e) in &self.items {
                if e.member
                    || e.evict_first != first
                    || (!whole && e.group != *group)
                    || (e.group == *group && e.sender == *sender)
                {
                    continue;
                }
                let slot = pairs.entry((e.group, e.sender)).or_insert((0, 0, *key));
                slot.0 += 1;
                if e.seq >= slot.1 {
                    (slot.1, slot.2) = (e.seq, *key);
                }
            }
            pairs
                .into_values()
                .filter(|(count, _, _)| !fair || *count >= own + 2)
                .max_by_key(|(count, latest, _)| (*count, *latest))
                .map(|(_, _, key)| key)
        };
        if evict_first {
            return of(true, true);
        }
        of(true, false).or_else(|| of(false, true))
    }
}

/// The items held now (see the module docs). In memory only.
#[derive(Default)]
pub(crate) struct Held {
    inner: Mutex<Inner>,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `key` (or finds it held) for `sender` in `group`, whose head
    /// in our log is `head`, within the limits, evicting another sender's
    /// item by the rule of [`Inner::victim`] if one must go; evict-first
    /// if a completed sync at `head` showed `sender` not listed.
    pub(crate) fn hold(
        &self,
        group: &GroupId,
        sender: &AccountId,
        key: HeldKey,
        head: &ChangeHash,
        now_ms: u64,
    ) -> Hold {
        let lifetime = millis(GROUP_HELD_LIFETIME);
        let mut inner = self.lock();
        if inner.refused.remove(&key).is_some() {
            inner.items.remove(&key);
            return Hold::Evicted;
        }
        let pair = (*group, *sender.as_bytes());
        let mut evict_first = false;
        if let Some((at, _)) = inner.not_members.get(&pair) {
            if at == head {
                evict_first = true;
            } else {
                // Our head moved: the sender may have been added since.
                inner.not_members.remove(&pair);
            }
        }
        // No sync is asked only while the one that completed without the
        // sender is at our head: after our head moved, an item that stays
        // evict-first asks again (within the ask interval), as a new one.
        let held = |entry: &Entry| {
            if entry.evict_first && evict_first {
                Hold::HeldEvictFirst
            } else {
                Hold::Held
            }
        };
        if let Some(entry) = inner.items.get(&key) {
            // A clock that went back counts as no time passed.
            if now_ms.saturating_sub(entry.since_ms) >= lifetime {
                inner.items.remove(&key);
                return Hold::Expired;
            }
            return held(entry);
        }
        // Items whose redelivery never came (given up by `inbound::keep`,
        // or acknowledged on another path) go after the lifetime.
        inner
            .items
            .retain(|_, e| now_ms.saturating_sub(e.since_ms) < lifetime);
        inner
            .refused
            .retain(|_, at| now_ms.saturating_sub(*at) < lifetime);
        let (mut of_sender, mut of_group) = (0usize, 0usize);
        for entry in inner.items.values().filter(|e| e.group == *group) {
            of_group += 1;
            if entry.sender == pair.1 {
                of_sender += 1;
            }
        }
        if of_sender >= GROUP_HELD_PER_SENDER {
            // Its own share is full: no one else's item goes for it.
            return Hold::Full;
        }
        let group_full = of_group >= GROUP_HELD_PER_GROUP;
        if group_full || inner.items.len() >= GROUP_HELD_TOTAL {
            let whole = !group_full;
            let Some(victim) = inner.victim(group, &pair.1, of_sender, whole, evict_first) else {
                return Hold::Full;
            };
            inner.items.remove(&victim);
            bounded_insert(&mut inner.refused, victim, now_ms, |at| *at);
            tracing::debug!("held item evicted for another");
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let entry = Entry {
            group: *group,
            sender: pair.1,
            since_ms: now_ms,
            seq,
            member: false,
            evict_first,
        };
        inner.items.insert(key, entry);
        held(&entry)
    }

    /// Marks the items of `group` whose sender `state` lists as a
    /// member's: their Add came, so they are never evicted (they open when
    /// they come again), evict-first or not.
    pub(crate) fn confirm(&self, group: &GroupId, state: &GroupState) {
        let mut inner = self.lock();
        let mut opened = false;
        for entry in inner.items.values_mut().filter(|e| e.group == *group) {
            if state.is_member(&AccountId::from_bytes(entry.sender)) {
                opened |= !entry.member;
                entry.member = true;
                entry.evict_first = false;
            }
        }
        inner.openable |= opened;
    }

    /// Whether a held item became openable (its sender is now listed)
    /// since the last call. The connection then processes the deliveries
    /// it kept again at once, instead of waiting for the kept-redelivery
    /// backoff, which may have grown to an hour while the item waited.
    pub(crate) fn take_openable(&self) -> bool {
        std::mem::take(&mut self.lock().openable)
    }

    /// A sync of `group` completed: our log, at `head` with `state`, knows
    /// the answerer's head (§8.15). Every item held from a sender `state`
    /// does not list becomes evict-first (it keeps its slot until another
    /// item needs one), and so do that sender's new items until our head
    /// moves. Returns how many held items were marked.
    pub(crate) fn sync_completed(
        &self,
        group: &GroupId,
        state: &GroupState,
        head: &ChangeHash,
        now_ms: u64,
    ) -> usize {
        // One lock for both the confirming and the marking, so that no item
        // of a sender `state` lists is marked evict-first in between.
        let mut inner = self.lock();
        let mut strangers = Vec::new();
        for entry in inner.items.values_mut().filter(|e| e.group == *group) {
            if state.is_member(&AccountId::from_bytes(entry.sender)) {
                (entry.member, entry.evict_first) = (true, false);
            } else if !entry.member {
                entry.evict_first = true;
                strangers.push(entry.sender);
            }
        }
        for sender in &strangers {
            let pair = (*group, *sender);
            bounded_insert(&mut inner.not_members, pair, (*head, now_ms), |v| v.1);
        }
        strangers.len()
    }

    /// Forgets `key`: its item was opened or refused for good.
    pub(crate) fn release(&self, key: &HeldKey) {
        let mut inner = self.lock();
        inner.items.remove(key);
        inner.refused.remove(key);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// How many items `sender` holds in `group` (tests).
    #[cfg(test)]
    pub(crate) fn of(&self, group: &GroupId, sender: &AccountId) -> usize {
        self.count(group, sender, |_| true)
    }

    /// How many of them are evict-first (tests).
    #[cfg(test)]
    pub(crate) fn evict_first_of(&self, group: &GroupId, sender: &AccountId) -> usize {
        self.count(group, sender, |e| e.evict_first)
    }

    #[cfg(test)]
    fn count(&self, group: &GroupId, sender: &AccountId, what: impl Fn(&Entry) -> bool) -> usize {
        let inner = self.lock();
        let sender = *sender.as_bytes();
        inner
            .items
            .values()
            .filter(|e| e.group == *group && e.sender == sender && what(e))
            .count()
    }
}

/// The failure for an item from `sender`, whom our state of the active
/// `group` does not list: held (kept, and a sync asked) within the limits,
/// else refused with `refusal` (why: not a member), as an item from a
/// non-member always was.
pub(crate) async fn hold_or_refuse(
    engine: &Engine,
    group: &Group,
    sender: &AccountId,
    key: HeldKey,
    from: &str,
    refusal: GroupRefusal,
) -> Failure {
    let now = engine.clock.now_ms();
    let reason = Rejected {
        from: Some(from.to_owned()),
        reason: DecryptFailure::Group(refusal),
    };
    if left_or_removed(group, sender) {
        // Its client sent before it learnt (§8.15): not held.
        return Failure::Rejected(reason);
    }
    let held = &engine.groups.held;
    held.confirm(&group.id(), group.state());
    match held.hold(&group.id(), sender, key, group.log.head(), now) {
        Hold::Held => {}
        // A sync just completed at this head without its sender: kept,
        // nothing asked (§8.15).
        Hold::HeldEvictFirst => return Failure::Kept(reason),
        outcome => {
            // Refused, and so acknowledged, with why: a limit, the
            // lifetime or an eviction (§8.15).
            tracing::debug!(?outcome, "group item from a non-member refused");
            return Failure::Rejected(reason);
        }
    }
    if let Err(e) = ask_a_member(engine, group, now).await {
        return Failure::from(e);
    }
    Failure::Kept(reason)
}

/// Whether our log's window shows `account` removed or leaving: an item
/// from it is refused as before, not held (a re-add of it we missed is a
/// known limitation, §8.15).
fn left_or_removed(group: &Group, account: &AccountId) -> bool {
    let log = &group.log;
    log.chain_above(log.base().head(), MAX_GROUP_SYNC_CHANGES)
        .unwrap_or_default()
        .iter()
        .any(|c| match c.action() {
            GroupAction::Remove { accounts } => accounts.contains(account),
            GroupAction::Leave => c.author() == *account,
            _ => false,
        })
}

/// Queues and commits, in a transaction of its own (the delivery that
/// called is kept, so its own is dropped), a `GroupSync` to one member of
/// `group` we may ask (never a blocked one): an admin first, then the
/// others in state order; none if one was asked about this group within the ask interval.
async fn ask_a_member(engine: &Engine, group: &Group, now_ms: u64) -> Result<(), crate::Error> {
    let limits = &engine.groups.sync;
    let me = engine.me().account;
    let state = group.state();
    if limits.asked_about_lately(&group.id(), now_ms) {
        return Ok(());
    }
    // A blocked member is sent nothing of our own accord (crate::blocking).
    let blocked = engine.blocked_accounts().await?;
    let mut members: Vec<AccountId> = state
        .members()
        .iter()
        .map(|m| m.account)
        .filter(|a| *a != me && !blocked.contains(a.as_bytes()))
        .collect();
    members.sort_by_key(|a| !state.is_admin(a));
    for member in members {
        if !super::sync::should_ask(limits, group, &member, now_ms) {
            continue;
        }
        let Some(contact) = engine.contact_by_account(member.as_bytes()).await? else {
            continue;
        };
        if !contact.may_send() {
            continue;
        }
        let Some(mut record) = engine.sessions.of_contact(&contact).await? else {
            continue;
        };
        let mut txn = Txn::new();
        let mut counters = engine.counters().await?;
        let request = vec![super::sync::request(group)];
        super::sync::reply_over(
            engine,
            &mut txn,
            &mut counters,
            &contact,
            &mut record,
            request,
        )?;
        engine.put_counters(&mut txn, &counters)?;
        engine.vault.commit(txn).await?;
        limits.asked(&group.id(), &member, now_ms);
        engine.outbox_wake.notify_one();
        tracing::debug!("sync asked for an item held for membership");
        return Ok(());
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests_held_limits.rs"]
mod tests;
