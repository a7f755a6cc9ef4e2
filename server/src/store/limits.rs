//! The bounds the store enforces inside its own transactions, with their
//! defaults and the reason for each. The relay's configuration sets them;
//! the store never reads configuration itself.
//!
//! Must never: hold a bound that only one backend applies (both backends run
//! the same rule functions over the same numbers).

/// Largest blob chunk the store accepts, so the HTTP layer can stream a blob
/// chunk by chunk without holding it whole in memory.
pub const MAX_BLOB_CHUNK_BYTES: usize = 64 * 1024;

/// Bounds the store enforces itself (the relay's configuration sets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most messages waiting for one recipient device; more are refused with
    /// [`EnqueueRejection::QueueFull`](super::EnqueueRejection::QueueFull).
    pub max_queue_per_recipient: u64,
    /// Most one-time prekeys stored for one account, all devices together.
    pub max_one_time_prekeys_per_account: u64,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_queue_per_recipient: 10_000,
            max_one_time_prekeys_per_account: 1_000,
        }
    }
}
