//! The relay's storage: one [`Store`] trait with an embedded SQLite backend
//! (the default, one node) and a PostgreSQL backend (several relay nodes
//! sharing one database). All SQL of the relay lives under this module.
//!
//! What the store keeps: OPAQUE password files and the server's OPAQUE
//! setup, hashes of session tokens, the public key directory, one ordered
//! queue of opaque sealed envelopes per recipient device, and encrypted
//! attachment blobs as opaque chunks.
//!
//! Must never: store a raw session token, a sender identity next to a queued
//! envelope, or anything it could decrypt; acknowledge an enqueue before the
//! transaction is durably committed; hand the same one-time prekey to two
//! claimers; reuse a queue sequence number; or panic on what it reads back
//! (stored rows are checked and a bad row is a [`StoreError::Corrupt`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;
use umbra_wire::{
    AccountId, Address, PreKeyBundleWire, PreKeyWire, SignedPreKeyWire, Username,
};
use zeroize::Zeroizing;

mod audit;
pub mod group_commit;
mod open;
pub mod postgres;
mod rows;
pub mod sqlite;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use group_commit::{GroupCommitError, GroupCommitter};
pub use open::{migrate_only, open, open_with_limits, DEFAULT_SQLITE_FILE};

/// Unix time in whole seconds; the store never reads a clock itself, so
/// tests can move time and every node agrees on what "now" was passed.
pub type UnixSeconds = u64;

/// A queue sequence number: per recipient device, starting at 1, strictly
/// increasing in the order the relay accepted messages, never reused.
pub type Seq = u64;

/// Largest blob chunk the store accepts, so the HTTP layer can stream a blob
/// chunk by chunk without holding it whole in memory.
pub const MAX_BLOB_CHUNK_BYTES: usize = 64 * 1024;

/// Bounds the store enforces itself (the relay's configuration sets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most messages waiting for one recipient device; more are refused with
    /// [`EnqueueRejection::QueueFull`].
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

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The username (case-folded) already belongs to another account.
    #[error("username is already taken")]
    UsernameTaken,
    /// The account id already exists (a 128-bit random collision or a retry).
    #[error("account id already exists")]
    AccountExists,
    /// No account with that id.
    #[error("no such account")]
    UnknownAccount,
    /// Storing the offered one-time prekeys would exceed the per-account cap.
    #[error("too many one-time prekeys: {stored} stored + {offered} offered > limit {limit}")]
    TooManyPreKeys {
        /// Keys already stored for the account.
        stored: u64,
        /// New keys in this upload (after dropping ids already stored).
        offered: u64,
        /// The per-account cap.
        limit: u64,
    },
    /// An uploaded one-time prekey reuses a stored id with a different key.
    #[error("one-time prekey id {id} is already stored with a different key")]
    PreKeyIdConflict {
        /// The conflicting prekey id.
        id: u32,
    },
    /// Another device (of any account) already publishes this identity key.
    #[error("this identity key is already published by another device")]
    IdentityInUse,
    /// A blob with this id already exists.
    #[error("blob already exists")]
    BlobExists,
    /// No unfinished blob with this id (never created, expired, deleted or
    /// already finished).
    #[error("no such blob open for writing")]
    BlobNotWritable,
    /// A chunk arrived out of order; chunks are appended 0, 1, 2, ...
    #[error("blob chunk {got} arrived but chunk {expected} was expected")]
    BlobChunkOutOfOrder {
        /// The next index the store expected.
        expected: u32,
        /// The index supplied.
        got: u32,
    },
    /// A chunk larger than [`MAX_BLOB_CHUNK_BYTES`], or empty.
    #[error("blob chunk of {len} bytes is outside 1..={MAX_BLOB_CHUNK_BYTES}")]
    BlobChunkSize {
        /// Bytes supplied.
        len: usize,
    },
    /// `finish_blob` was told a size that differs from the bytes appended.
    #[error("blob size mismatch: {declared} declared, {stored} stored")]
    BlobSizeMismatch {
        /// The size the caller declared.
        declared: u64,
        /// The bytes actually stored.
        stored: u64,
    },
    /// The database URL names no supported backend.
    #[error("unsupported database URL scheme (expected postgres://, postgresql:// or sqlite:)")]
    UnsupportedUrl,
    /// A stored row does not decode (wrong length, negative counter, ...).
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Preparing the data directory failed.
    #[error("cannot prepare data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The database reported an error (connection, constraint, I/O).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Why one message of an enqueue batch was refused; the others in the batch
/// are unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueRejection {
    /// The recipient's queue already holds the configured maximum.
    #[error("recipient queue is full")]
    QueueFull,
    /// The recipient account does not exist (never did, or was deleted).
    #[error("recipient account does not exist")]
    UnknownRecipient,
}

/// The outcome of one message of an enqueue batch: its sequence number once
/// committed, or why it was refused.
pub type EnqueueOutcome = Result<Seq, EnqueueRejection>;

/// A message to queue. The store keeps no sender: `envelope` is the sealed
/// bytes exactly as the relay received them.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The recipient device.
    pub recipient: Address,
    /// The opaque sealed envelope.
    pub envelope: Vec<u8>,
    /// When the relay accepted it.
    pub received_at: UnixSeconds,
    /// After this instant it is never delivered and may be purged.
    pub expires_at: UnixSeconds,
}

impl fmt::Debug for NewMessage {
    // Envelope bytes are ciphertext, but logs have no use for them: length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMessage")
            .field("recipient", &self.recipient)
            .field("envelope_len", &self.envelope.len())
            .field("received_at", &self.received_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A queued message as fetched for delivery.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its sequence number in the recipient's queue.
    pub seq: Seq,
    /// The opaque sealed envelope.
    pub envelope: Vec<u8>,
    /// When the relay accepted it.
    pub received_at: UnixSeconds,
}

impl fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredMessage")
            .field("seq", &self.seq)
            .field("envelope_len", &self.envelope.len())
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// Something happened to a queue; sent to every subscriber of
/// [`Store::subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueEvent {
    /// A message was committed to `recipient`'s queue with sequence `seq`.
    Enqueued {
        /// The recipient device.
        recipient: Address,
        /// The committed sequence number.
        seq: Seq,
    },
    /// Notifications may have been missed (the listener reconnected, or the
    /// subscriber lagged): re-read the queues of every connected recipient.
    Resync,
}

/// An OPAQUE registration record (the server-side "password file"). Not a
/// password equivalent, but an offline-guessing target: zeroized on drop and
/// never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordFile(Zeroizing<Vec<u8>>);

impl PasswordFile {
    /// Wraps the serialized OPAQUE record.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The serialized record.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordFile(<{} bytes redacted>)", self.0.len())
    }
}

/// An account found by username, for login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The account's immutable id.
    pub account: AccountId,
    /// Its OPAQUE registration record.
    pub password_file: PasswordFile,
}

/// The SHA-256 hash of a session token, the only form the store sees.
pub type TokenHash = [u8; 32];

/// What a token hash means at a given instant (see [`Store::token_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// Issued to this device and not yet expired.
    Valid(Address),
    /// Issued to this device, but its expiry has passed.
    Expired(Address),
    /// Never issued, revoked, or purged after expiring.
    Unknown,
}

/// What [`Store::put_keys`] did besides storing the new keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedKeys {
    /// The device had a different identity before, now replaced.
    pub identity_replaced: bool,
    /// One-time prekeys of the old identity that were deleted.
    pub one_time_prekeys_discarded: u64,
}

/// Identifies an encrypted attachment (random, chosen by the relay).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobId(pub [u8; 32]);

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", hex::encode(self.0))
    }
}

/// What the store knows about a blob, without its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// The account that uploaded it.
    pub owner: AccountId,
    /// Chunks appended so far.
    pub chunk_count: u32,
    /// Total size once finished; `None` while the upload is in progress.
    pub size: Option<u64>,
    /// When it stops being served.
    pub expires_at: UnixSeconds,
}

/// The relay's storage. Object-safe (`Arc<dyn Store>`); every method is one
/// transaction unless it says otherwise, and every write is durable when the
/// future resolves `Ok`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and metrics (`"sqlite"`/`"postgres"`).
    fn backend(&self) -> &'static str;

    /// Cheap round trip to the database, for readiness probes.
    async fn ping(&self) -> Result<(), StoreError>;

    // ----- server secrets -------------------------------------------------

    /// Stores `candidate` as the OPAQUE `ServerSetup` if none is stored yet,
    /// and returns whatever is stored afterwards, so every restart and every
    /// node sharing the database uses the same setup.
    async fn load_or_init_server_setup(
        &self,
        candidate: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError>;

    // ----- accounts -------------------------------------------------------

    /// Creates an account. [`StoreError::UsernameTaken`] if the (folded)
    /// name is in use.
    async fn create_account(
        &self,
        account: AccountId,
        username: &Username,
        password_file: &PasswordFile,
    ) -> Result<(), StoreError>;

    /// Finds an account by its folded username.
    async fn account_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<AccountRecord>, StoreError>;

    /// The current username of an account.
    async fn username_of(&self, account: AccountId) -> Result<Option<Username>, StoreError>;

    /// Renames an account; the old name becomes free at once.
    /// [`StoreError::UsernameTaken`] or [`StoreError::UnknownAccount`].
    async fn rename_account(&self, account: AccountId, new: &Username) -> Result<(), StoreError>;

    /// Removes everything stored for the account (password file, tokens,
    /// keys, queued messages, queue counters, blobs) in one transaction.
    /// Returns whether the account existed.
    async fn delete_account(&self, account: AccountId) -> Result<bool, StoreError>;

    /// For every table in the live schema (read from the database's
    /// catalogue, not from the list `delete_account` uses), the number of
    /// rows with a byte column equal to `account`'s id. Tests and audits use
    /// it to prove that deletion left nothing behind in any table.
    async fn account_rows_by_table(
        &self,
        account: AccountId,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError>;

    /// The sum of [`Store::account_rows_by_table`].
    async fn rows_for_account(&self, account: AccountId) -> Result<u64, StoreError> {
        Ok(self.account_rows_by_table(account).await?.values().sum())
    }

    // ----- session tokens (hashes only) -------------------------------------

    /// Records a token hash for a device until `expires_at`.
    async fn insert_token(
        &self,
        token_hash: &TokenHash,
        owner: Address,
        expires_at: UnixSeconds,
    ) -> Result<(), StoreError>;

    /// What the store knows about a token hash at `now`: valid (it exists
    /// and `now < expires_at`), expired (it exists but `expires_at <= now`
    /// and has not been purged yet), or unknown (never issued, revoked, or
    /// purged).
    async fn token_status(
        &self,
        token_hash: &TokenHash,
        now: UnixSeconds,
    ) -> Result<TokenStatus, StoreError>;

    /// Who a token belongs to, if it exists and `now < expires_at`.
    async fn lookup_token(
        &self,
        token_hash: &TokenHash,
        now: UnixSeconds,
    ) -> Result<Option<Address>, StoreError> {
        Ok(match self.token_status(token_hash, now).await? {
            TokenStatus::Valid(owner) => Some(owner),
            TokenStatus::Expired(_) | TokenStatus::Unknown => None,
        })
    }

    /// Revokes one token (logout). Returns whether it existed.
    async fn delete_token(&self, token_hash: &TokenHash) -> Result<bool, StoreError>;

    /// Revokes every token of an account (log out everywhere).
    async fn delete_tokens_for_account(&self, account: AccountId) -> Result<u64, StoreError>;

    /// Deletes tokens with `expires_at <= cutoff`. The relay passes a
    /// cutoff some time in the past, so a recently expired token is still
    /// recognised as expired (not unknown) for a while.
    async fn purge_expired_tokens(&self, cutoff: UnixSeconds) -> Result<u64, StoreError>;

    // ----- key directory ------------------------------------------------------

    /// Publishes a device's identity, signed prekey and (optionally)
    /// last-resort prekey in ONE transaction, so a reader never sees a new
    /// identity next to an old signed prekey. The signed prekey always
    /// replaces the stored one; a given last-resort key replaces the stored
    /// one.
    ///
    /// When `identity` differs from the device's stored identity, every
    /// one-time prekey of the device is deleted in the same transaction, and
    /// so is the stored last-resort key unless a new one is given: they were
    /// made by the device that owned the old identity, and an initiator who
    /// used one would build a session no device can open. Republishing the
    /// same identity (signed-prekey rotation) keeps them.
    /// [`StoreError::UnknownAccount`] if the account does not exist;
    /// [`StoreError::IdentityInUse`] (nothing stored) if another device of
    /// any account already publishes `identity` — a copied identity would
    /// let its publisher pose as a second account holding the owner's keys.
    async fn put_keys(
        &self,
        device: Address,
        identity: &[u8],
        signed_prekey: &SignedPreKeyWire,
        last_resort: Option<&PreKeyWire>,
    ) -> Result<PublishedKeys, StoreError>;

    /// Adds one-time prekeys. An id already stored with the same key is
    /// ignored (an upload retried after a lost reply is harmless); the same
    /// id with a different key refuses the whole batch with
    /// [`StoreError::PreKeyIdConflict`]. The whole batch is
    /// refused with [`StoreError::TooManyPreKeys`] if the account would hold
    /// more than the cap. Returns how many the device now has.
    async fn add_one_time_prekeys(
        &self,
        device: Address,
        prekeys: &[PreKeyWire],
    ) -> Result<u64, StoreError>;

    /// Builds a device's bundle, atomically removing exactly one one-time
    /// prekey (concurrent claimers never receive the same key); when none is
    /// left the bundle carries only the last-resort key. `None` if the device
    /// has not published an identity and a signed prekey.
    async fn claim_bundle(&self, device: Address) -> Result<Option<PreKeyBundleWire>, StoreError>;

    /// The identity a device currently publishes (as given to
    /// [`Store::put_keys`]), or `None` if it has published none. Claims no
    /// one-time prekey and changes nothing.
    async fn published_identity(&self, device: Address) -> Result<Option<Vec<u8>>, StoreError>;

    /// One-time prekeys still stored for a device.
    async fn one_time_prekey_count(&self, device: Address) -> Result<u64, StoreError>;

    // ----- message queue ------------------------------------------------------

    /// Queues a batch in ONE transaction: each accepted message gets the next
    /// sequence number of its recipient, in slice order; a message that would
    /// overflow its recipient's queue (or has no such recipient) is refused
    /// alone. Returns one outcome per input, in order, only after commit.
    async fn enqueue_batch(
        &self,
        messages: &[NewMessage],
    ) -> Result<Vec<EnqueueOutcome>, StoreError>;

    /// Up to `limit` unexpired messages with `seq > after`, in seq order.
    async fn fetch_after(
        &self,
        recipient: Address,
        after: Seq,
        limit: u32,
        now: UnixSeconds,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// Deletes the listed messages (acknowledged by the recipient). Unknown
    /// seqs are ignored. Returns how many were deleted.
    async fn ack(&self, recipient: Address, seqs: &[Seq]) -> Result<u64, StoreError>;

    /// Deletes every message with `seq <= up_to`.
    async fn ack_up_to(&self, recipient: Address, up_to: Seq) -> Result<u64, StoreError>;

    /// Deletes messages with `expires_at <= now`.
    async fn purge_expired_messages(&self, now: UnixSeconds) -> Result<u64, StoreError>;

    /// Messages waiting for one recipient (expired-but-unpurged included).
    async fn queue_depth(&self, recipient: Address) -> Result<u64, StoreError>;

    /// Messages waiting in all queues (for metrics).
    async fn total_queued(&self) -> Result<u64, StoreError>;

    /// Queue notifications: every committed enqueue, on this node and (for
    /// PostgreSQL) on every node sharing the database. A
    /// `RecvError::Lagged` must be treated like [`QueueEvent::Resync`].
    fn subscribe(&self) -> broadcast::Receiver<QueueEvent>;

    // ----- blobs ----------------------------------------------------------------

    /// Starts a blob upload.
    async fn create_blob(
        &self,
        blob: BlobId,
        owner: AccountId,
        expires_at: UnixSeconds,
    ) -> Result<(), StoreError>;

    /// Appends chunk `index` (must be the next one, at most
    /// [`MAX_BLOB_CHUNK_BYTES`]) to an unfinished blob.
    async fn append_blob_chunk(
        &self,
        blob: BlobId,
        index: u32,
        bytes: &[u8],
    ) -> Result<(), StoreError>;

    /// Marks an upload complete; `size` must equal the bytes appended.
    async fn finish_blob(&self, blob: BlobId, size: u64) -> Result<(), StoreError>;

    /// A blob's metadata if it exists and has not expired at `now`.
    async fn blob_info(
        &self,
        blob: BlobId,
        now: UnixSeconds,
    ) -> Result<Option<BlobInfo>, StoreError>;

    /// One chunk's bytes, for streaming in index order.
    async fn read_blob_chunk(
        &self,
        blob: BlobId,
        index: u32,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes a blob and its chunks. Returns whether it existed.
    async fn delete_blob(&self, blob: BlobId) -> Result<bool, StoreError>;

    /// Deletes blobs with `expires_at <= now`, finished or not.
    async fn purge_expired_blobs(&self, now: UnixSeconds) -> Result<u64, StoreError>;
}

/// Handle type the relay passes around.
pub type SharedStore = Arc<dyn Store>;

/// Converts a caller's time to the signed 64-bit column type; times past
/// `i64::MAX` seconds are "never" for every practical purpose.
pub(crate) fn db_time(t: UnixSeconds) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Same saturation for counts and sequence numbers handed to SQL.
pub(crate) fn db_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
