//! The store's business rules as pure functions: what to refuse, what to
//! purge, which number comes next. Both backends call these from the one SQL
//! body (see `shared.rs`), so a rule is written and tested once; the SQL only
//! reads the inputs and writes the decision.
//!
//! Must never: touch a database, read a clock, or decide anything a backend
//! then decides again differently.

use umbra_wire::{AccountId, DeviceId, Username, MAX_DEVICES_PER_ACCOUNT};

use super::error::{EnqueueRejection, StoreError};
use super::limits::MAX_BLOB_CHUNK_BYTES;
use super::types::{Seq, TokenInfo, TokenStatus, UnixSeconds};

// ----- accounts -------------------------------------------------------------

/// What a rename must do, given who holds the wanted name now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rename {
    /// The account already has this name: nothing to write.
    Unchanged,
    /// The name is free: write it.
    Take,
}

/// Decides a rename of `me` to a name currently held by `holder`.
pub(crate) fn rename(holder: Option<AccountId>, me: AccountId) -> Result<Rename, StoreError> {
    match holder {
        Some(holder) if holder == me => Ok(Rename::Unchanged),
        Some(_) => Err(StoreError::UsernameTaken),
        None => Ok(Rename::Take),
    }
}

// ----- names ------------------------------------------------------------------

/// Names nobody may hold: each reads as the relay's, its operator's or the
/// project's voice (`support` asking for a password is a phishing classic),
/// or is a mailbox name RFC 2142 gives a fixed role.
const RESERVED_USERNAMES: &[&str] = &[
    "abuse",
    "admin",
    "administrator",
    "help",
    "helpdesk",
    "hostmaster",
    "info",
    "moderator",
    "noc",
    "nobody",
    "official",
    "operator",
    "postmaster",
    "relay",
    "root",
    "security",
    "server",
    "staff",
    "support",
    "sysadmin",
    "system",
    "umbra",
    "webmaster",
];

/// Whether relay policy refuses `name` for everyone. Usernames are already
/// case-folded; the separators `_` and `.` are ignored too, so `ad_min` and
/// `support.` are refused like `admin` and `support`. Look-alikes such as
/// `adm1n` or `admin2` are not caught: that is what clients' identity
/// checks are for.
pub fn is_reserved_username(name: &Username) -> bool {
    RESERVED_USERNAMES.contains(&name_skeleton(name).as_str())
}

/// The form names are compared in by policy: the (already case-folded)
/// name without the separators `_` and `.`. Reserved names and the
/// quarantine of released names both use it, so `a.lice` or `alice_` is
/// refused while `alice` is quarantined, as `ad_min` is like `admin`.
pub(crate) fn name_skeleton(name: &Username) -> String {
    name.as_str()
        .chars()
        .filter(|c| *c != '_' && *c != '.')
        .collect()
}

/// Whether a name released at `released_at` is still quarantined at `now`.
/// The quarantine is `quarantine_secs` long; 0 turns it off.
pub(crate) fn quarantined(
    released_at: Option<UnixSeconds>,
    now: UnixSeconds,
    quarantine_secs: u64,
) -> bool {
    match released_at {
        Some(at) if quarantine_secs > 0 => now < at.saturating_add(quarantine_secs),
        _ => false,
    }
}

/// Whether `name` may be taken now (registration or rename), before the
/// unique index decides between two live holders. A quarantined name is
/// reported as taken: a caller learns no more than that the name is held.
pub(crate) fn claimable(
    name: &Username,
    released_at: Option<UnixSeconds>,
    now: UnixSeconds,
    quarantine_secs: u64,
) -> Result<(), StoreError> {
    if is_reserved_username(name) {
        return Err(StoreError::UsernameReserved);
    }
    if quarantined(released_at, now, quarantine_secs) {
        return Err(StoreError::UsernameTaken);
    }
    Ok(())
}

// ----- tokens ---------------------------------------------------------------

/// A stored token is valid strictly before its expiry, expired from then on.
pub(crate) fn token_status(token: TokenInfo, now: UnixSeconds) -> TokenStatus {
    if now < token.expires_at {
        TokenStatus::Valid(token.owner)
    } else {
        TokenStatus::Expired(token.owner)
    }
}

// ----- key directory ----------------------------------------------------------

/// What publishing an identity does to the keys stored beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdentityChange {
    /// The device published a different identity before.
    pub replaced: bool,
    /// Delete every one-time prekey of the device.
    pub drop_one_time_prekeys: bool,
    /// Delete the stored last-resort key (a new one is not being written).
    pub drop_last_resort: bool,
    /// Delete every KEM prekey of the device, one-time and last-resort:
    /// each carries the old identity's signature, and a publication never
    /// brings a KEM key to replace them.
    pub drop_kem_prekeys: bool,
}

/// Prekeys made under an old identity must go when the identity changes: an
/// initiator who used one would build a session no device can open. The
/// same identity again (signed-prekey rotation) keeps them. Identity keys
/// are public, so an ordinary comparison is fine.
pub(crate) fn identity_change(
    previous: Option<&[u8]>,
    new: &[u8],
    new_last_resort: bool,
) -> IdentityChange {
    let replaced = previous.is_some_and(|old| old != new);
    IdentityChange {
        replaced,
        drop_one_time_prekeys: replaced,
        drop_last_resort: replaced && !new_last_resort,
        drop_kem_prekeys: replaced,
    }
}

/// One identity per account (PROTOCOL.md 15.1, 11.8 step 0). `others` has
/// one entry per other current device of the account: the identity it
/// publishes, or `None` if it has published none yet. `changed` says the
/// identity differs from what this device published before, or, for a
/// device that published nothing, from every identity the account has
/// published (false for a fresh account's first publication).
///
/// Refused: an identity other than one another device publishes (a linked
/// device publishing an identity of its own, whose device list would be
/// stored under an identity senders do not pin); and a changed identity
/// (a reset) while any other current device exists, published or not, so
/// a device linked before the reset is never left holding the old
/// identity, which the relay would then refuse it. With no other current
/// device, any identity is the account's (the single-device reset).
pub(crate) fn account_identity(
    others: &[Option<Vec<u8>>],
    changed: bool,
    identity: &[u8],
) -> Result<(), StoreError> {
    let published = || others.iter().flatten();
    let differs = published().any(|other| other.as_slice() != identity);
    let shared = published().any(|other| other.as_slice() == identity);
    if differs || (changed && !shared && !others.is_empty()) {
        Err(StoreError::AccountIdentityDiffers)
    } else {
        Ok(())
    }
}

/// An uploaded one-time prekey whose id is already stored: the same key is a
/// retried upload (harmless, ignored); another key is a client bug that
/// would leave it holding a secret the relay never hands out, so the whole
/// batch is refused.
pub(crate) fn stored_prekey_id(id: u32, stored: &[u8], offered: &[u8]) -> Result<(), StoreError> {
    if stored == offered {
        Ok(())
    } else {
        Err(StoreError::PreKeyIdConflict { id })
    }
}

/// Whether an uploaded one-time prekey id may be stored: only above the
/// device's mark for its kind (the highest one-time id ever stored under
/// the identity it publishes; `None` before the first). An id at or below
/// the mark was stored before: it is still stored (a retry after a lost
/// answer: ignored, or refused by [`stored_prekey_id`] if the key differs)
/// or it was claimed, and its owner deleted the private half after its
/// first use, so storing it again would hand a second initiator a key
/// nobody can open (PROTOCOL.md 11.8, "UploadPreKeys").
pub(crate) fn one_time_id_is_new(id: u32, mark: Option<u32>) -> bool {
    mark.is_none_or(|mark| id > mark)
}

/// The mark after an upload of `ids` over `mark`: never lower, so a claimed
/// id stays refused until the identity changes.
pub(crate) fn raised_mark(mark: Option<u32>, ids: impl IntoIterator<Item = u32>) -> Option<u32> {
    ids.into_iter()
        .fold(mark, |high, id| Some(high.map_or(id, |h| h.max(id))))
}

/// The per-account one-time prekey cap over the keys stored before an upload
/// and the new ones it added.
pub(crate) fn prekey_cap(stored: u64, added: u64, limit: u64) -> Result<(), StoreError> {
    if stored.saturating_add(added) > limit {
        Err(StoreError::TooManyPreKeys {
            stored,
            offered: added,
            limit,
        })
    } else {
        Ok(())
    }
}

// ----- message queue ------------------------------------------------------------

/// One recipient device's queue as the enqueue transaction sees it under its
/// counter lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueState {
    /// The last sequence number handed out (0: none yet).
    pub last_seq: Seq,
    /// Messages waiting (expired-but-unpurged included).
    pub depth: u64,
    /// Whether this transaction queued something and must write the counter.
    pub dirty: bool,
}

impl QueueState {
    /// A queue read back from the database.
    pub(crate) fn new(last_seq: Seq, depth: u64) -> Self {
        Self {
            last_seq,
            depth,
            dirty: false,
        }
    }

    /// Takes one message if the queue has room: its sequence number is the
    /// next one, strictly increasing, never reused. A counter at `u64::MAX`
    /// cannot have been reached honestly, so it is reported as corrupt
    /// rather than wrapped.
    pub(crate) fn admit(
        &mut self,
        max_depth: u64,
    ) -> Result<Result<Seq, EnqueueRejection>, StoreError> {
        if self.depth >= max_depth {
            return Ok(Err(EnqueueRejection::QueueFull));
        }
        let seq = self
            .last_seq
            .checked_add(1)
            .ok_or(StoreError::Corrupt("queue counter exhausted"))?;
        self.last_seq = seq;
        self.depth += 1;
        self.dirty = true;
        Ok(Ok(seq))
    }
}

/// Decides one message of an enqueue batch: the recipient must exist and
/// its queue must have room. (The sender budget is not the store's: it is
/// kept in memory, `crate::sender_budget`, so that nothing written next to
/// the messages names their sender.)
pub(crate) fn admit_message(
    queue: Option<&mut QueueState>,
    limits: &super::StoreLimits,
) -> Result<Result<Seq, EnqueueRejection>, StoreError> {
    let Some(queue) = queue else {
        return Ok(Err(EnqueueRejection::UnknownRecipient));
    };
    queue.admit(limits.max_queue_per_recipient)
}

// ----- blobs ------------------------------------------------------------------

/// What an append or finish needs to know about a blob row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobState {
    /// Chunks appended so far (the next index expected).
    pub chunk_count: u32,
    /// Bytes appended so far.
    pub stored_bytes: u64,
    /// Whether `finish_blob` has run.
    pub finished: bool,
}

/// A chunk must be non-empty and at most [`MAX_BLOB_CHUNK_BYTES`], so a blob
/// can be streamed chunk by chunk without holding it whole.
pub(crate) fn chunk_size(len: usize) -> Result<(), StoreError> {
    if len == 0 || len > MAX_BLOB_CHUNK_BYTES {
        Err(StoreError::BlobChunkSize { len })
    } else {
        Ok(())
    }
}

/// Chunks are appended 0, 1, 2, ... to an unfinished blob.
pub(crate) fn append(blob: Option<BlobState>, index: u32) -> Result<(), StoreError> {
    let Some(blob) = blob.filter(|b| !b.finished) else {
        return Err(StoreError::BlobNotWritable);
    };
    if index != blob.chunk_count {
        return Err(StoreError::BlobChunkOutOfOrder {
            expected: blob.chunk_count,
            got: index,
        });
    }
    Ok(())
}

/// An unfinished blob is finished with exactly the size appended.
pub(crate) fn finish(blob: Option<BlobState>, declared: u64) -> Result<(), StoreError> {
    let Some(blob) = blob.filter(|b| !b.finished) else {
        return Err(StoreError::BlobNotWritable);
    };
    if blob.stored_bytes != declared {
        return Err(StoreError::BlobSizeMismatch {
            declared,
            stored: blob.stored_bytes,
        });
    }
    Ok(())
}

/// A new blob must fit the per-account count quota.
pub(crate) fn blob_count_quota(held: u64, limit: u64) -> Result<(), StoreError> {
    if held >= limit {
        Err(StoreError::BlobQuotaExceeded {
            what: "blobs",
            limit,
        })
    } else {
        Ok(())
    }
}

/// A chunk must fit the per-account byte quota over every blob it holds.
pub(crate) fn blob_bytes_quota(held: u64, adding: u64, limit: u64) -> Result<(), StoreError> {
    if held.checked_add(adding).is_none_or(|total| total > limit) {
        Err(StoreError::BlobQuotaExceeded {
            what: "bytes",
            limit,
        })
    } else {
        Ok(())
    }
}

// ----- devices (docs/PROTOCOL.md 15) -----------------------------------------------

/// The id a new device of an account gets: one more than the highest id it
/// has ever had (`highest` counts tombstones), so ids increase and are
/// never reused (15.1). Refused while `current` devices are already
/// [`MAX_DEVICES_PER_ACCOUNT`].
pub(crate) fn next_device(highest: Option<u32>, current: u64) -> Result<DeviceId, StoreError> {
    if current >= MAX_DEVICES_PER_ACCOUNT as u64 {
        return Err(StoreError::TooManyDevices {
            limit: MAX_DEVICES_PER_ACCOUNT,
        });
    }
    match highest {
        None => Ok(DeviceId::PRIMARY),
        // 2^32 - 1 ids per account would take one link a second for 136
        // years; running out is refused like a full account, not wrapped.
        Some(id) => id
            .checked_add(1)
            .map(DeviceId)
            .ok_or(StoreError::TooManyDevices {
                limit: MAX_DEVICES_PER_ACCOUNT,
            }),
    }
}

/// The `last_seen_at` recorded for an authentication at `now`: the hour it
/// began in, so the relay keeps no finer record of when a device is used
/// (15.5).
pub(crate) fn last_seen_hour(now: UnixSeconds) -> UnixSeconds {
    now - now % 3600
}

/// The highest device list version a relay stores (15.4): the largest
/// SQL BIGINT, 2^63 − 1. A higher one would have to be clamped on its way
/// into the store, so an older list above it could replace a newer one.
pub(crate) const MAX_DEVICE_LIST_VERSION: u64 = i64::MAX as u64;

/// Whether a list of `version` may be stored at all: at most
/// [`MAX_DEVICE_LIST_VERSION`].
pub(crate) fn device_list_version_storable(version: u64) -> Result<(), StoreError> {
    if version > MAX_DEVICE_LIST_VERSION {
        return Err(StoreError::DeviceListVersionTooHigh {
            version,
            max: MAX_DEVICE_LIST_VERSION,
        });
    }
    Ok(())
}

/// Whether a list of `version` may replace the stored one (of
/// `stored`, if any): only a strictly higher version (15.4), so a replayed
/// or raced older list never wins.
pub(crate) fn device_list_replaces(stored: Option<u64>, version: u64) -> Result<(), StoreError> {
    match stored {
        Some(stored_version) if stored_version >= version => {
            Err(StoreError::StaleDeviceList { stored_version })
        }
        _ => Ok(()),
    }
}

/// Whether an account holding unexpired tickets that expire at `open`
/// may create another, at most `max_open` being allowed; if not, how long
/// until the oldest expires (15.6).
pub(crate) fn link_ticket_room(
    open: &[UnixSeconds],
    max_open: u64,
    now: UnixSeconds,
) -> Result<(), StoreError> {
    if (open.len() as u64) < max_open {
        return Ok(());
    }
    let oldest = open.iter().copied().min().unwrap_or(now);
    Err(StoreError::TooManyLinkTickets {
        retry_after_secs: oldest.saturating_sub(now).max(1),
    })
}

/// Whether a link ticket expiring at `expires_at` is still usable at `now`.
pub(crate) fn link_ticket_live(expires_at: UnixSeconds, now: UnixSeconds) -> bool {
    now < expires_at
}

/// The number the next post of a side gets, given how many it holds; a
/// side is refused past `max_per_side` posts (15.6).
pub(crate) fn next_link_post(held: u64, max_per_side: u64) -> Result<u32, StoreError> {
    if held >= max_per_side {
        return Err(StoreError::TooManyLinkMessages {
            limit: max_per_side,
        });
    }
    u32::try_from(held + 1).map_err(|_| StoreError::TooManyLinkMessages {
        limit: max_per_side,
    })
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
