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
//! the ask limit of §8.15. When the answer brings the Add, the redelivered
//! items open in the relay's order (the key distribution before the
//! messages it keys).
//!
//! What is held is counted here, in memory, by a digest of the item: at
//! most [`GROUP_HELD_PER_SENDER`] per (group, sender),
//! [`GROUP_HELD_PER_GROUP`] per group and [`GROUP_HELD_TOTAL`] in all;
//! beyond them an item is refused (acknowledged) as from a non-member, as
//! before holding existed. An item still held [`GROUP_HELD_LIFETIME`] after
//! it was first held is dropped the same way when it comes again: the state
//! never made its sender a member. A restart forgets the counts (they fill
//! again as the relay redelivers); the kept-delivery record of
//! `inbound::keep`, which is stored, still gives an item up after its
//! limits.
//!
//! An account our log's window shows removed or leaving is not held: its
//! client sent before it learnt, and holding would let an ex-member make
//! us keep its items (a re-add of it that we missed loses them: a known
//! limitation).
//!
//! Must never: hold an item for a group we are not active in, from a
//! sender whose identity did not authenticate it or whom our log shows
//! removed, hold more than the limits, or ask a sync of an account our
//! state does not list.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use umbra_protocol::group::GroupAction;
use umbra_protocol::wire::AccountId;

use crate::consts::{
    millis, GROUP_HELD_LIFETIME, GROUP_HELD_PER_GROUP, GROUP_HELD_PER_SENDER, GROUP_HELD_TOTAL,
    MAX_GROUP_SYNC_CHANGES,
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
}

/// What [`Held::hold`] decided for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Held: keep the delivery for a redelivery.
    Held,
    /// A limit is reached: refuse it.
    Full,
    /// Held for [`GROUP_HELD_LIFETIME`] already: the state never made its
    /// sender a member; refuse it.
    Expired,
}

/// The items held now (see the module docs). In memory only.
#[derive(Default)]
pub(crate) struct Held {
    items: Mutex<HashMap<HeldKey, Entry>>,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<HeldKey, Entry>> {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `key` (or finds it held) for `sender` in `group`, within the
    /// limits.
    pub(crate) fn hold(
        &self,
        group: &GroupId,
        sender: &AccountId,
        key: HeldKey,
        now_ms: u64,
    ) -> Hold {
        let lifetime = millis(GROUP_HELD_LIFETIME);
        let mut items = self.lock();
        if let Some(entry) = items.get(&key) {
            // A clock that went back counts as no time passed.
            if now_ms.saturating_sub(entry.since_ms) >= lifetime {
                items.remove(&key);
                return Hold::Expired;
            }
            return Hold::Held;
        }
        // Items whose redelivery never came (given up by `inbound::keep`,
        // or acknowledged on another path) go after the lifetime.
        items.retain(|_, e| now_ms.saturating_sub(e.since_ms) < lifetime);
        let (mut of_sender, mut of_group) = (0usize, 0usize);
        for entry in items.values().filter(|e| e.group == *group) {
            of_group += 1;
            if entry.sender == *sender.as_bytes() {
                of_sender += 1;
            }
        }
        if items.len() >= GROUP_HELD_TOTAL
            || of_group >= GROUP_HELD_PER_GROUP
            || of_sender >= GROUP_HELD_PER_SENDER
        {
            return Hold::Full;
        }
        items.insert(
            key,
            Entry {
                group: *group,
                sender: *sender.as_bytes(),
                since_ms: now_ms,
            },
        );
        Hold::Held
    }

    /// Forgets `key`: its item was opened or refused for good.
    pub(crate) fn release(&self, key: &HeldKey) {
        self.lock().remove(key);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
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
    match engine.groups.held.hold(&group.id(), sender, key, now) {
        Hold::Held => {}
        outcome => {
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
/// `group` we may ask: an admin first, then the others in state order;
/// none if one was asked about this group within the ask interval.
async fn ask_a_member(engine: &Engine, group: &Group, now_ms: u64) -> Result<(), crate::Error> {
    let limits = &engine.groups.sync;
    let me = engine.me().account;
    let state = group.state();
    if limits.asked_about_lately(&group.id(), now_ms) {
        return Ok(());
    }
    let mut members: Vec<AccountId> = state
        .members()
        .iter()
        .map(|m| m.account)
        .filter(|a| *a != me)
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
