//! The group message index (record kind `GroupMessageIndex`,
//! docs/PROTOCOL.md §12.9): from a group and a message id to the history
//! entries with that id, so a reaction, edit or delete (§10.6) opens only
//! the entries it may name. Without it every incoming reference decrypted
//! the group's whole history, and a member flooding reactions made each
//! recipient do a full scan per reaction.
//!
//! One record per (group, message id), its slot an HMAC of both (the store
//! learns neither), holding one location (author, sequence) per author:
//! the author's oldest entry with that id, as the rule in `about.rs` picks
//! (ids are unique per sender, so a reused id never takes the original's
//! place). Keyed without the author because a reaction names only the id:
//! one read answers "the sender's own entry" and "the oldest of anyone's".
//!
//! Entries stored before the index existed are indexed once per group: the
//! first lookup in a group without the `Complete` mark scans its history as
//! before and, on the inbound path (where a flood comes from), writes every
//! location and the mark in the delivery's transaction. From then on each
//! append indexes itself, so a lookup reads one index record and the
//! entries it names, however long the history. A full scan per lookup with
//! a bound would have missed old entries; building at open would cost
//! every start a read per group.
//!
//! Must never: let a location find an entry whose own id or author differs
//! (a stale location, left by a removed entry, finds nothing), or leave an
//! entry of a `Complete` group unindexed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use umbra_protocol::wire::AccountId;

use crate::records;
use crate::store::{Txn, Vault};
use crate::{Error, MessageId};

use super::GroupId;

/// A `GroupMessageIndex` record: the variant index is its format.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum GroupIndexRecord {
    /// Format 0, at HMAC(group id || message id): one location per
    /// author, ascending by sequence.
    Locations(Vec<GroupMessageLocation>),
    /// Format 1, at HMAC(group id): every entry of the group is indexed.
    Complete,
}

/// Where one author's entry with an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupMessageLocation {
    /// The entry's `from_account`.
    pub(crate) author: [u8; 16],
    /// Its `GroupHistory` sequence.
    pub(crate) seq: u64,
}

/// Adds `author`'s entry `seq` to `locations`, unless that author has an
/// older one there. Whether anything changed.
fn add(locations: &mut Vec<GroupMessageLocation>, author: [u8; 16], seq: u64) -> bool {
    match locations.iter_mut().find(|l| l.author == author) {
        Some(older) if older.seq <= seq => return false,
        Some(newer) => newer.seq = seq,
        None => locations.push(GroupMessageLocation { author, seq }),
    }
    locations.sort_by_key(|l| l.seq);
    true
}

/// Adds to `txn` the location of `author`'s new entry `seq` with `id`.
pub(crate) async fn note(
    vault: &Vault,
    txn: &mut Txn,
    group: &GroupId,
    author: &AccountId,
    id: &MessageId,
    seq: u64,
) -> Result<(), Error> {
    let slot = records::group::message_index(vault, group, id);
    let mut locations = match vault.load(&slot).await? {
        Some(GroupIndexRecord::Locations(locations)) => locations,
        _ => Vec::new(),
    };
    if add(&mut locations, *author.as_bytes(), seq) {
        vault.save(txn, slot, &GroupIndexRecord::Locations(locations))?;
    }
    Ok(())
}

/// Whether every entry of `group` is indexed.
pub(crate) async fn is_complete(vault: &Vault, group: &GroupId) -> Result<bool, Error> {
    let slot = records::group::index_complete(vault, group);
    Ok(matches!(
        vault.load(&slot).await?,
        Some(GroupIndexRecord::Complete)
    ))
}

/// The locations of the entries with `id` in `group` (empty: none).
pub(crate) async fn locations(
    vault: &Vault,
    group: &GroupId,
    id: &MessageId,
) -> Result<Vec<GroupMessageLocation>, Error> {
    let slot = records::group::message_index(vault, group, id);
    Ok(match vault.load(&slot).await? {
        Some(GroupIndexRecord::Locations(locations)) => locations,
        _ => Vec::new(),
    })
}

/// Adds to `txn` the index of `group`'s whole history, `entries` as
/// (sequence, author, id) in sequence order, and its `Complete` mark.
pub(crate) fn build(
    vault: &Vault,
    txn: &mut Txn,
    group: &GroupId,
    entries: impl IntoIterator<Item = (u64, [u8; 16], MessageId)>,
) -> Result<(), Error> {
    let mut by_id: BTreeMap<[u8; 16], Vec<GroupMessageLocation>> = BTreeMap::new();
    for (seq, author, id) in entries {
        add(by_id.entry(id.0).or_default(), author, seq);
    }
    for (id, locations) in by_id {
        let slot = records::group::message_index(vault, group, &MessageId(id));
        vault.save(txn, slot, &GroupIndexRecord::Locations(locations))?;
    }
    let mark = records::group::index_complete(vault, group);
    vault.save(txn, mark, &GroupIndexRecord::Complete)?;
    Ok(())
}
