//! The bounds the store enforces inside its own transactions, with their
//! defaults and the reason for each. The relay's configuration sets them
//! (`server/src/config.rs`); the store never reads configuration itself.
//!
//! Must never: hold a bound that only one backend applies (both backends run
//! the same rule functions over the same numbers).

/// Largest blob chunk the store accepts, so the HTTP layer can stream a blob
/// chunk by chunk without holding it whole in memory.
pub const MAX_BLOB_CHUNK_BYTES: usize = 64 * 1024;

/// Rows one purge statement deletes at most (expired messages, tokens,
/// released names); a purge repeats it until fewer are left. Each batch is
/// a statement of milliseconds, well inside PostgreSQL's request
/// `statement_timeout` (5 s) however much has expired, and SQLite's write
/// lock is released between batches for the group committer. Small because
/// SQLite reads every overflow page it frees: 1,000 messages of up to
/// 96 KiB is the most one batch can make the committer wait for.
pub(crate) const PURGE_BATCH_ROWS: i64 = 1_000;
/// Expired blobs one purge transaction deletes at most (each up to 1,600
/// chunk rows of 64 KiB): one, for the same reason.
pub(crate) const PURGE_BATCH_BLOBS: i64 = 1;

const MIB: u64 = 1024 * 1024;
const DAY_SECS: u64 = 24 * 60 * 60;

/// Bounds the store enforces itself (the relay's configuration sets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most messages waiting for one recipient device; more are refused with
    /// [`EnqueueRejection::QueueFull`](super::EnqueueRejection::QueueFull).
    pub max_queue_per_recipient: u64,
    /// Most one-time prekeys stored for one account, all devices together.
    pub max_one_time_prekeys_per_account: u64,
    /// Most one-time ML-KEM prekeys stored for one account, all devices
    /// together (each about 1.3 KB stored).
    pub max_kem_one_time_prekeys_per_account: u64,
    /// Most blobs (finished or uploading, expired but not yet purged
    /// included) one account may hold.
    pub max_blobs_per_account: u64,
    /// Most blob bytes one account may hold, over the same blobs.
    pub max_blob_bytes_per_account: u64,
    /// Seconds a released username stays unavailable to everyone; 0 turns
    /// the quarantine off.
    pub name_quarantine_secs: u64,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            // Signal's figure: days of traffic for a busy user offline, small
            // enough that one queue's rows stay cheap to count.
            max_queue_per_recipient: 10_000,
            max_one_time_prekeys_per_account: 1_000,
            // The X25519 cap: every hybrid claim takes one of each, so
            // more KEM keys than X25519 ones would never be handed out
            // sooner. At about 1.3 KB a row, 1.3 MB per account at most.
            max_kem_one_time_prekeys_per_account: 1_000,
            // 30 days of retention at about 8 attachments a day; tiny-blob
            // floods are bounded by count, not only by bytes.
            max_blobs_per_account: 256,
            // Two and a half maximal (100 MiB) attachments, or hundreds of
            // photos: one account cannot fill a disk, and 1,000 accounts
            // bound the blob store at 256 GiB.
            max_blob_bytes_per_account: 256 * MIB,
            // Long enough that contacts of the old holder notice a change
            // (the client warns on a new identity behind a known name), as
            // issue 8 asks; 0 for tests of the client's own defence.
            name_quarantine_secs: 30 * DAY_SECS,
        }
    }
}
