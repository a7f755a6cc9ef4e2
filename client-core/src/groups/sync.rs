//! Catching up in a group (docs/PROTOCOL.md §8.15): asking a member for
//! the changes we missed, and answering such a request.
//!
//! A member misses a change when its pairwise copy was refused or lost,
//! when it was *not sent* (no session could be made, its key changed and
//! the user has not decided), or when it was offline across a
//! reorganisation; its later changes then wait as pending forever. Every
//! group text carries its sender's head (`Content::GroupText`), so a
//! member that meets a head its log does not know, or a change it must
//! hold pending, asks the member it came from with `Content::GroupSync`
//! (our head). The member asked answers, pairwise, with the changes of its
//! canonical chain above that head that the asker was entitled to see (as
//! a change's fan-out would have sent them, §8.14: the states that list
//! the asker, and the Remove of it), and, if the asker holds no state of
//! the group and we made the Add that brought it in, that Add's welcome
//! first. An answer to a member of our state ends with
//! `Content::GroupSyncDone` (our head and version), also when it brings no
//! change: the asker that asked us, whose canonical chain then holds that
//! head at that version, has caught up with us (a marker nobody asked for,
//! a second one, or one naming a side branch or a wrong version completes
//! nothing), and lets the items it holds for membership from accounts it
//! still does not list go first when a slot is needed (`held.rs`). Both
//! directions are rate limited per (group, member), in memory
//! ([`GROUP_SYNC_ASK_INTERVAL`], [`GROUP_SYNC_ANSWER_INTERVAL`]).
//!
//! Must never: answer someone who is neither a member of our current
//! state nor removed by a change we would send, send a change made while
//! the asker was not a member, or ask someone our state does not list.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::rngs::OsRng;

use umbra_protocol::content::Content;
use umbra_protocol::group::{ChangeHash, GroupAction, GroupChange, GroupLog};
use umbra_protocol::wire::AccountId;

use crate::consts::{
    GROUP_SYNC_ANSWER_INTERVAL, GROUP_SYNC_ASK_INTERVAL, GROUP_SYNC_TRACKED, MAX_GROUP_SYNC_CHANGES,
};

use crate::engine::{Engine, QueuedContent};
use crate::history::Counters;
use crate::sessions::SessionRecord;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Error, MessageId};

use super::manager::{Group, Membership};
use super::GroupId;

type Key = (GroupId, [u8; 16]);

/// When we last asked, and last answered, each (group, member): the rate
/// limits of §8.15. In memory only: a restart forgets them, which costs at
/// most one early request or answer per pair.
#[derive(Default)]
pub(crate) struct SyncLimits {
    asked: Mutex<HashMap<Key, u64>>,
    answered: Mutex<HashMap<Key, u64>>,
    /// Asks whose `GroupSyncDone` has not come yet: a marker is taken only
    /// from a member we asked, once per ask (§8.15).
    awaiting: Mutex<HashMap<Key, u64>>,
}

impl SyncLimits {
    /// Whether the limit lets us ask `member` about `group` now. Nothing
    /// is noted: [`SyncLimits::asked`] does, once a request is queued.
    pub(crate) fn may_ask(&self, group: &GroupId, member: &AccountId, now_ms: u64) -> bool {
        allows(
            &self.asked,
            &(*group, *member.as_bytes()),
            now_ms,
            ms(GROUP_SYNC_ASK_INTERVAL),
        )
    }

    /// Notes that a request to `member` about `group` was queued now.
    pub(crate) fn asked(&self, group: &GroupId, member: &AccountId, now_ms: u64) {
        note(&self.asked, (*group, *member.as_bytes()), now_ms);
        note(&self.awaiting, (*group, *member.as_bytes()), now_ms);
    }

    /// Whether we asked `member` about `group` and have not yet taken its
    /// `GroupSyncDone`; taking it ends the ask, so a second marker (or one
    /// nobody asked for) completes nothing.
    pub(crate) fn take_done(&self, group: &GroupId, member: &AccountId) -> bool {
        lock(&self.awaiting)
            .remove(&(*group, *member.as_bytes()))
            .is_some()
    }

    /// Whether any member was asked about `group` within the ask interval
    /// (an item held for membership asks one member, not each in turn).
    pub(crate) fn asked_about_lately(&self, group: &GroupId, now_ms: u64) -> bool {
        let interval = ms(GROUP_SYNC_ASK_INTERVAL);
        lock(&self.asked)
            .iter()
            .any(|((g, _), &at)| g == group && now_ms >= at && now_ms - at < interval)
    }

    /// Whether we may answer `member` about `group` now (and if so, notes
    /// it). The caller asks only with an answer to send, so a stranger's
    /// requests, which get none, take no entry.
    pub(crate) fn may_answer(&self, group: &GroupId, member: &AccountId, now_ms: u64) -> bool {
        let key = (*group, *member.as_bytes());
        if !allows(&self.answered, &key, now_ms, ms(GROUP_SYNC_ANSWER_INTERVAL)) {
            return false;
        }
        note(&self.answered, key, now_ms);
        true
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn lock(map: &Mutex<HashMap<Key, u64>>) -> std::sync::MutexGuard<'_, HashMap<Key, u64>> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn allows(map: &Mutex<HashMap<Key, u64>>, key: &Key, now_ms: u64, interval_ms: u64) -> bool {
    match lock(map).get(key) {
        // A clock that went back counts as time passed, not as a block.
        Some(&at) => !(now_ms >= at && now_ms - at < interval_ms),
        None => true,
    }
}

/// Notes `key` at `now_ms`; beyond [`GROUP_SYNC_TRACKED`] pairs the oldest
/// half is forgotten, by count (oldest first), so that many pairs noted at
/// one instant do not all go at once.
fn note(map: &Mutex<HashMap<Key, u64>>, key: Key, now_ms: u64) {
    let mut map = lock(map);
    if !map.contains_key(&key) && map.len() >= GROUP_SYNC_TRACKED {
        let mut entries: Vec<(u64, Key)> = map.iter().map(|(k, at)| (*at, *k)).collect();
        entries.sort_unstable();
        for (_, old) in entries.iter().take(entries.len() / 2) {
            map.remove(old);
        }
    }
    map.insert(key, now_ms);
}

/// Notes every `GroupSync` in `contents` as asked of `peer`: they are
/// being queued to it now.
pub(crate) fn note_requests(
    limits: &SyncLimits,
    peer: &AccountId,
    contents: &[Content],
    now_ms: u64,
) {
    for content in contents {
        if let Content::GroupSync { group, .. } = content {
            limits.asked(group, peer, now_ms);
        }
    }
}

#[cfg(test)]
pub(crate) fn tracked(limits: &SyncLimits) -> (usize, usize) {
    (lock(&limits.asked).len(), lock(&limits.answered).len())
}

/// Queues `contents` to `contact`, each encrypted with `record` (the
/// session a delivery advanced, or one loaded once for all of them), in
/// `txn`: a receipt, a sync request, a sync answer.
pub(crate) fn reply_over(
    engine: &Engine,
    txn: &mut Txn,
    counters: &mut Counters,
    contact: &ContactRecord,
    record: &mut SessionRecord,
    contents: Vec<Content>,
) -> Result<(), Error> {
    if !contact.may_send() {
        return Ok(());
    }
    for content in contents {
        engine.encrypt_into_outbox(
            txn,
            counters,
            contact,
            std::slice::from_mut(record),
            QueuedContent {
                content,
                id: MessageId::random(&mut OsRng),
                visible: false,
            },
        )?;
    }
    Ok(())
}

/// Queues a group text's delivery receipt (and a sync request, if any,
/// noted as asked then) to `contact` over its session, loaded once so that
/// one chain encrypts both; nothing if it may not be sent to or has none.
pub(crate) async fn receipt(
    engine: &Engine,
    txn: &mut Txn,
    counters: &mut Counters,
    contact: &ContactRecord,
    contents: Vec<Content>,
) -> Result<(), Error> {
    if !contact.may_send() {
        return Ok(());
    }
    let Some(mut record) = engine.sessions.of_contact(contact).await? else {
        return Ok(());
    };
    let peer = AccountId::from_bytes(contact.account);
    note_requests(&engine.groups.sync, &peer, &contents, engine.clock.now_ms());
    reply_over(engine, txn, counters, contact, &mut record, contents)
}

/// The request that asks for what we lack of `group`: our head and version.
pub(crate) fn request(group: &Group) -> Content {
    Content::GroupSync {
        group: group.id(),
        have: *group.log.head(),
        version: group.state().version(),
    }
}

/// Whether a group text's `head` and `version` show that its sender has
/// changes we lack: its head is unknown to our log and its version is at
/// least our head's. A sender behind us (below our window, or on a shorter
/// branch) is not asked: what it could send us is older than our window
/// or on a branch it would have fanned out itself (§8.15). An all-zero
/// head is no state's: a sender with a state never sends it, so it shows
/// nothing and is not asked about.
pub(crate) fn text_shows_more(group: &Group, head: &ChangeHash, version: u64) -> bool {
    *head != ChangeHash::ZERO && version >= group.state().version() && !group.log.knows_head(head)
}

/// Whether we should ask `peer` about `group` now: it is a member of our
/// current state (we tell no one else our head) and the limit allows.
/// Nothing is noted: [`note_requests`] does where the request is queued
/// (a reply that cannot be sent, no session or a key not trusted, takes
/// none of the budget).
pub(crate) fn should_ask(
    limits: &SyncLimits,
    group: &Group,
    peer: &AccountId,
    now_ms: u64,
) -> bool {
    group.state().is_member(peer) && limits.may_ask(&group.id(), peer, now_ms)
}

/// What we answer `asker`'s `GroupSync { have, version }` for `group` (we
/// are `me`): pairwise contents, oldest first; empty if we owe it nothing.
/// The caller checks the answer limit first.
pub(crate) fn answer(
    group: &Group,
    asker: &AccountId,
    me: &AccountId,
    have: &ChangeHash,
    version: u64,
) -> Vec<Content> {
    // An asker above our head is ahead of us: we have nothing it lacks
    // that could connect (and it would not have asked us, §8.15).
    if group.membership != Membership::Active || asker == me || version > group.state().version() {
        return Vec::new();
    }
    let log = &group.log;
    let mut out = Vec::new();
    let changes: Vec<&GroupChange> = match log.chain_above(have, MAX_GROUP_SYNC_CHANGES) {
        Some(changes) => changes,
        None if *have == ChangeHash::ZERO => {
            // It holds no state: only the adder can welcome it (a welcome
            // is checked against its sender, §8.11), and only if the Add
            // is still in our window.
            match (welcome_again(group, asker, me), our_add_of(log, asker, me)) {
                (Some(welcome), Some((_, rest))) => {
                    out.push(welcome);
                    rest
                }
                _ => Vec::new(),
            }
        }
        // Its head is not on our chain (another branch, or one we never
        // saw) but not older than our window, nor above our head: our
        // whole window, whose changes connect to its log if the branches
        // meet at or above our base (else it holds them pending).
        None if version >= log.base().version() => log
            .chain_above(log.base().head(), MAX_GROUP_SYNC_CHANGES)
            .unwrap_or_default(),
        // Below our window: no change of ours can connect to its log.
        None => Vec::new(),
    };
    let removed_by_one = changes.iter().any(|c| removes(c, asker));
    if !group.state().is_member(asker) && !removed_by_one {
        return Vec::new();
    }
    for change in changes {
        let listed = log
            .state_after(change.hash())
            .is_some_and(|s| s.is_member(asker));
        if listed || removes(change, asker) {
            out.push(Content::GroupControl {
                change: change.as_bytes().to_vec(),
            });
        }
    }
    if group.state().is_member(asker) {
        // The end of the answer, also when it brought nothing: the asker
        // then knows whether it caught up with us, and lets what it holds
        // from accounts it still does not list go first (§8.15).
        out.push(done(group));
    }
    out
}

/// The marker that ends an answer: our head and version now.
pub(crate) fn done(group: &Group) -> Content {
    Content::GroupSyncDone {
        group: group.id(),
        head: *group.log.head(),
        version: group.state().version(),
    }
}

/// `peer`'s `GroupSyncDone`, the end of an answer (§8.15): if it shows a
/// completed sync ([`completes`]), the items held for membership from
/// accounts our state does not list become evict-first (`held.rs`).
/// Anything else is ignored.
pub(crate) async fn done_in(
    engine: &Engine,
    peer: &AccountId,
    done: &Content,
) -> Result<(), Error> {
    let Content::GroupSyncDone {
        group,
        head,
        version,
    } = done
    else {
        return Ok(());
    };
    let Some(rec) = engine.groups.get(group).await? else {
        return Ok(());
    };
    let me = engine.me().account;
    // Only the end of an answer we asked for, once: a marker nobody
    // asked for, or a second one, is ignored (§8.15).
    if !engine.groups.sync.take_done(group, peer) {
        return Ok(());
    }
    if completes(&rec, peer, &me, head, *version) {
        let now = engine.clock.now_ms();
        let held = &engine.groups.held;
        let marked = held.sync_completed(group, rec.state(), rec.log.head(), now);
        tracing::debug!(marked, "group sync completed");
    }
    Ok(())
}

/// Whether `peer`'s `GroupSyncDone { head, version }` for `group` shows a
/// completed sync: `peer` is a member of our current state (not us), its
/// head is our head or on our canonical chain (not a side branch or a
/// loser, which say nothing of what the answerer holds on ours), and its
/// version is that head's version (a forged `u64::MAX` is refused), so we
/// hold everything the answerer would send us.
pub(crate) fn completes(
    group: &Group,
    peer: &AccountId,
    me: &AccountId,
    head: &ChangeHash,
    version: u64,
) -> bool {
    group.membership == Membership::Active
        && peer != me
        && group.state().is_member(peer)
        && (head == group.log.head() || group.log.chain_above(head, 0).is_some())
        && group.log.state_after(head).map(|s| s.version()) == Some(version)
}

/// The welcome of the latest Add in our window that we made and that
/// lists `member`, if `member` is still in our state: what a member that
/// lacks our sender key is sent again ahead of it, since it may never
/// have had it (§8.15).
pub(crate) fn welcome_again(group: &Group, member: &AccountId, me: &AccountId) -> Option<Content> {
    if !group.state().is_member(member) {
        return None;
    }
    let (add, _) = our_add_of(&group.log, member, me)?;
    let state = group.log.state_after(add.hash())?;
    Some(Content::GroupWelcome {
        state: state.to_bytes(),
        change: add.as_bytes().to_vec(),
    })
}

/// Whether `change` removes `account` (a Remove listing it).
fn removes(change: &GroupChange, account: &AccountId) -> bool {
    matches!(change.action(), GroupAction::Remove { accounts } if accounts.contains(account))
}

/// The latest Add in our window that we made and that lists `member`
/// (whose welcome a send carries again, `resend.rs`).
pub(crate) fn latest_add_by<'a>(
    log: &'a GroupLog,
    member: &AccountId,
    me: &AccountId,
) -> Option<&'a GroupChange> {
    our_add_of(log, member, me).map(|(add, _)| add)
}

/// The latest Add in our window that we made and that lists `asker`, and
/// the changes after it.
fn our_add_of<'a>(
    log: &'a GroupLog,
    asker: &AccountId,
    me: &AccountId,
) -> Option<(&'a GroupChange, Vec<&'a GroupChange>)> {
    let window = log.chain_above(log.base().head(), MAX_GROUP_SYNC_CHANGES)?;
    let at = window.iter().rposition(|c| {
        c.author() == *me
            && matches!(c.action(), GroupAction::Add { members } if members.iter().any(|m| m.account == *asker))
    })?;
    let rest = window[at + 1..].to_vec();
    Some((window[at], rest))
}
