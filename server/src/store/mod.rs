//! The relay's storage: one [`Store`] trait, joining the role traits
//! [`AccountStore`], [`TokenStore`], [`KeyDirectory`],
//! [`KemPreKeyDirectory`], [`DeviceStore`],
//! [`LinkStore`], [`MessageQueue`], [`BlobStore`], [`BackupStore`] and
//! [`ControlChannel`], with an embedded SQLite backend (the
//! default, one node) and a PostgreSQL backend (several relay nodes sharing
//! one database). All SQL of the relay lives under this module, written once
//! (`shared.rs` and the role files) for both backends; the business rules it
//! applies are pure functions in `rules.rs`.
//!
//! What the store keeps: OPAQUE password files and the server's OPAQUE
//! setup, hashes of session tokens, the public key directory (X25519 and
//! signed ML-KEM prekeys, as opaque bytes), one ordered
//! queue of opaque sealed envelopes per recipient device, and encrypted
//! attachment blobs as opaque chunks, one sealed account backup per
//! account (ciphertext, with its public `seq`), the devices of each account
//! (tombstones of removed ones included) with its signed device list, and
//! the link tickets and opaque posts of device linking.
//!
//! Must never: store a raw session token, a sender identity next to a queued
//! envelope, or anything it could decrypt; acknowledge an enqueue before the
//! transaction is durably committed; hand the same one-time prekey to two
//! claimers; reuse a queue sequence number; or panic on what it reads back
//! (stored rows are checked and a bad row is a [`StoreError::Corrupt`]).

use std::sync::Arc;

use async_trait::async_trait;

mod accounts;
mod audit;
mod backup;
pub mod batch;
mod blobs;
mod control_channel;
mod devices;
mod error;
pub mod group_commit;
mod kem_keys;
mod keys;
pub mod kt;
mod limits;
mod link;
mod one_time;
mod open;
pub mod postgres;
mod postgres_queue;
mod queue;
mod queue_steps;
mod rows;
mod rules;
mod shared;
mod sql_lists;
pub mod sqlite;
pub mod sqlite_writer;
mod tokens;
mod types;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

pub use accounts::AccountStore;
pub use backup::{BackupPut, BackupStore, StoredBackup};
pub use blobs::BlobStore;
pub use control_channel::ControlChannel;
pub use devices::{DeviceRecord, DeviceStore, RemovedDevice, StoredDeviceList};
pub use error::{EnqueueOutcome, EnqueueRejection, StoreError};
pub use group_commit::{GroupCommitError, GroupCommitter};
pub use kem_keys::KemPreKeyDirectory;
pub use keys::KeyDirectory;
pub use kt::KtStore;
pub use limits::{StoreLimits, MAX_BLOB_CHUNK_BYTES};
pub use link::{LinkLimits, LinkParty, LinkStore, LinkTicket, LinkTicketState};
pub use open::{migrate_only, open, open_with_limits, DEFAULT_SQLITE_FILE};
pub use queue::MessageQueue;
pub use rules::is_reserved_username;
pub use tokens::TokenStore;
pub use types::{
    AccountRecord, BlobId, BlobInfo, KemPreKeyStock, NewMessage, PasswordFile, PublishedKeys,
    QueueEvent, Seq, StoredMessage, TokenHash, TokenInfo, TokenStatus, UnixMillis, UnixSeconds,
};

/// The relay's storage: every role, on one database. Object-safe
/// (`Arc<dyn Store>`; the roles' methods are callable on it without
/// importing them); every method is one transaction unless it says
/// otherwise, and every write is durable when the future resolves `Ok`.
#[async_trait]
pub trait Store:
    AccountStore
    + TokenStore
    + KeyDirectory
    + KemPreKeyDirectory
    + DeviceStore
    + LinkStore
    + MessageQueue
    + BlobStore
    + BackupStore
    + ControlChannel
    + KtStore
{
    /// Which backend this is, for logs and metrics (`"sqlite"`/`"postgres"`).
    fn backend(&self) -> &'static str;

    /// Cheap round trip to the database, for readiness probes.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A synchronous writer connection for the group committer's own
    /// thread, if this backend has one (SQLite on a file:
    /// `sqlite_writer`); `None` makes the committer use
    /// [`MessageQueue::commit_parts`] from async workers.
    fn dedicated_writer(
        &self,
    ) -> Result<Option<Box<dyn group_commit::DedicatedWriter>>, StoreError>;
}

/// Handle type the relay passes around.
pub type SharedStore = Arc<dyn Store>;

/// Converts a caller's time to the signed 64-bit column type; times past
/// `i64::MAX` seconds are "never" for every practical purpose.
pub(crate) fn db_time(t: UnixSeconds) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// The same saturation for a time in milliseconds.
pub(crate) fn db_millis(t: UnixMillis) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Same saturation for counts and sequence numbers handed to SQL.
pub(crate) fn db_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
