//! Local persistence: a small storage trait and the sealing layer above it.
//!
//! A [`ClientStore`] backend keeps opaque rows `(kind, slot, sealed bytes)`
//! plus one unsealed header. It never sees plaintext: every value is sealed
//! by the crate's vault (XChaCha20-Poly1305 under a key derived from the
//! user's password) before it reaches the backend, and every slot that would
//! name a contact is an HMAC of that name. So a backend an integrator writes
//! (for a phone's keychain, a browser's IndexedDB, ...) cannot leak contents
//! even if it is careless.
//!
//! Two backends ship: [`SqliteStore`] (a file in the data directory) and
//! [`MemoryStore`] (tests, ephemeral clients).
//!
//! An SQLite store is opened only under the data directory's
//! [`DataDirLock`], so one process at a time reads and advances its ratchet
//! state.
//!
//! Must never: hand plaintext or a clear contact name to a backend, or apply
//! half of a [`WriteOp`] batch.

mod dir_lock;
mod generation;
mod header;
mod key_slots;
mod memory;
mod sqlite;
mod store_key;
mod vault;

#[cfg(test)]
mod counting;
#[cfg(test)]
mod rekey_tests;
#[cfg(test)]
mod rollback_tests;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

#[cfg(test)]
pub(crate) use counting::CountingStore;
pub use dir_lock::{DataDirLock, DEFAULT_LOCK_WAIT, LOCK_FILE, LOCK_NOTICE_AFTER};
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
pub use store_key::KdfParams;
pub(crate) use vault::{Txn, Vault};

/// The header and `Generation` record decoders, for `records/fuzzing.rs`.
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz_entry {
    pub(crate) use super::generation::GenerationIndex;
    pub(crate) use super::header::reencode as reencode_header;
}

/// The future every [`ClientStore`] method returns (boxed so the trait stays
/// object-safe and a client can hold `Arc<dyn ClientStore>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What a stored record holds. The kind is part of each record's associated
/// data, so a record of one kind never opens as another. Numbers are part of
/// the on-disk format and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum RecordKind {
    /// The password check sealed into the header.
    Check = 1,
    /// Our identity key pair and account (singleton).
    Account = 2,
    /// The relay session token (singleton).
    Token = 3,
    /// Signed prekeys we still accept (slot: HMAC of the id).
    SignedPreKey = 4,
    /// Unused one-time prekeys (slot: HMAC of the id).
    OneTimePreKey = 5,
    /// The last-resort prekey (singleton).
    LastResortPreKey = 6,
    /// Prekey bookkeeping: next ids, rotation time (singleton).
    PreKeyState = 7,
    /// A contact: pinned identity and trust (slot: HMAC of the account id).
    Contact = 8,
    /// Username → account id index (slot: HMAC of the username).
    ContactName = 9,
    /// A pairwise ratchet session (slot: HMAC of the account id).
    Session = 10,
    /// A conversation summary: last message, unread count (slot: HMAC of the account id).
    Conversation = 11,
    /// One history entry (slot: HMAC of the account id || u64be sequence).
    History = 12,
    /// One sealed envelope waiting for the relay's acceptance (slot: u64be sequence).
    Outbox = 13,
    /// An envelope or message id already processed (slot: HMAC of the id).
    Seen = 14,
    /// Local counters (singleton).
    Counters = 15,
    /// Message id → history entry (slot: HMAC of direction || account id || message id).
    MessageIndex = 16,
    /// A delivery kept unacknowledged after a failure that may be local:
    /// attempts so far and the first failure's time (slot: HMAC of
    /// "env:" || SHA-256 of the envelope).
    KeptDelivery = 17,
    /// What a username means to the user: its account, and a newcomer
    /// claiming it (slot: HMAC of the username). Replaces `ContactName`,
    /// which is still read from older stores.
    NameBinding = 18,
    /// The store-wide generation counter and the generation each guarded
    /// record (session, outbox entry, one-time prekey) must carry
    /// (singleton; rewritten by every write transaction).
    Generation = 19,
    /// A group we belong to (or belonged to): its state, the recent
    /// changes of its hash chain, and whether we are still a member
    /// (slot: HMAC of the group id).
    Group = 20,
    /// Our own sender key for one group and epoch (slot: HMAC of the group id).
    GroupSenderKey = 21,
    /// A member's sender key we keep to read their group messages (slot:
    /// HMAC of group id || member account id).
    GroupReceiverKey = 22,
    /// Sealed envelopes of one fan-out (a group message or a group change
    /// to many members) waiting for the relay (slot: u64be sequence).
    Fanout = 23,
    /// One group message, sent or received (slot: HMAC of the group id ||
    /// u64be sequence).
    GroupHistory = 24,
    /// The account backup's state: OPAQUE's export key, the newest backup
    /// `seq` the relay acknowledged, and a digest of what it holds
    /// (singleton; docs/PROTOCOL.md §12.15).
    Backup = 25,
    /// The export key of a password change whose outcome this store does
    /// not know yet (committed before `PasswordChangeFinish` is sent; the
    /// next login decides; singleton, docs/PROTOCOL.md §12.15). A kind of
    /// its own rather than a field of `Backup`, so a `Backup` record
    /// written by an earlier version still decodes.
    PendingExportKey = 26,
    /// A file sent or received: its pointer (key, blob id, digest), its
    /// sanitised name and the message it came with (slot: HMAC of the
    /// 8-byte local id, docs/PROTOCOL.md §12.16).
    Attachment = 27,
    /// Our current and previous sender key in one group, each chain kept
    /// only from what the relay may still hold, with whom we sent each
    /// from which iteration (slot: HMAC of the group id;
    /// docs/PROTOCOL.md §8.16).
    GroupSentDistribution = 28,
    /// This account's local privacy settings: whether read receipts and
    /// typing notices are sent (singleton, docs/PROTOCOL.md §12.9).
    Settings = 29,
    /// The accounts this user blocked (singleton, docs/PROTOCOL.md §12.9).
    Blocked = 30,
    /// Group message id → the group history entries with that id, one per
    /// author (slot: HMAC of group id || message id), and each group's
    /// mark that every entry of it is indexed (slot: HMAC of the group id;
    /// docs/PROTOCOL.md §12.9).
    GroupMessageIndex = 31,
    /// The highest-versioned device list verified for one account this
    /// client writes to, its own included (slot: HMAC of the account id;
    /// docs/PROTOCOL.md §12.9, §15.3).
    DeviceList = 32,
    /// ML-KEM prekey bookkeeping: next ids, the current last-resort KEM
    /// prekey and the replaced ones still held (singleton;
    /// docs/PROTOCOL.md §12.6, §12.9).
    KemPreKeyState = 33,
    /// An unused one-time ML-KEM prekey: its seed and signature (slot: HMAC
    /// of the id).
    KemOneTimePreKey = 34,
    /// A last-resort ML-KEM prekey, current or replaced and still held
    /// (slot: HMAC of the id).
    KemLastResortPreKey = 35,
    /// A 1:1 conversation's disappearing-message timer and the change that
    /// set it (slot: HMAC of the account id; docs/PROTOCOL.md §12.18).
    DisappearingTimer = 36,
    /// When one history entry stored under a timer is to be deleted (slot:
    /// HMAC of the account id || u64be history sequence; §12.18).
    Expiry = 37,
    /// The relay's pinned key-transparency keys and the newest directory
    /// head verified (singleton; docs/PROTOCOL.md §12.9, §16.9).
    KtState = 38,
}

impl RecordKind {
    /// The kind's stored number.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The kind for a stored number, if this version knows it.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Check,
            2 => Self::Account,
            3 => Self::Token,
            4 => Self::SignedPreKey,
            5 => Self::OneTimePreKey,
            6 => Self::LastResortPreKey,
            7 => Self::PreKeyState,
            8 => Self::Contact,
            9 => Self::ContactName,
            10 => Self::Session,
            11 => Self::Conversation,
            12 => Self::History,
            13 => Self::Outbox,
            14 => Self::Seen,
            15 => Self::Counters,
            16 => Self::MessageIndex,
            17 => Self::KeptDelivery,
            18 => Self::NameBinding,
            19 => Self::Generation,
            20 => Self::Group,
            21 => Self::GroupSenderKey,
            22 => Self::GroupReceiverKey,
            23 => Self::Fanout,
            24 => Self::GroupHistory,
            25 => Self::Backup,
            26 => Self::PendingExportKey,
            27 => Self::Attachment,
            28 => Self::GroupSentDistribution,
            29 => Self::Settings,
            30 => Self::Blocked,
            31 => Self::GroupMessageIndex,
            32 => Self::DeviceList,
            33 => Self::KemPreKeyState,
            34 => Self::KemOneTimePreKey,
            35 => Self::KemLastResortPreKey,
            36 => Self::DisappearingTimer,
            37 => Self::Expiry,
            38 => Self::KtState,
            _ => return None,
        })
    }
}

/// One row as a backend returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's slot (opaque bytes).
    pub slot: Vec<u8>,
    /// The sealed value (nonce || ciphertext || tag).
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRecord")
            .field("slot_len", &self.slot.len())
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// One change in an atomic batch.
#[derive(Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Insert or replace the row at (kind, slot).
    Put {
        /// Record kind.
        kind: RecordKind,
        /// Slot.
        slot: Vec<u8>,
        /// Sealed value.
        sealed: Vec<u8>,
    },
    /// Remove the row at (kind, slot) if present.
    Delete {
        /// Record kind.
        kind: RecordKind,
        /// Slot.
        slot: Vec<u8>,
    },
}

impl std::fmt::Debug for WriteOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteOp::Put { kind, sealed, .. } => write!(f, "Put({kind:?}, {} bytes)", sealed.len()),
            WriteOp::Delete { kind, .. } => write!(f, "Delete({kind:?})"),
        }
    }
}

/// How soon a committed batch must survive a power cut (a process crash
/// never loses a committed batch, whichever is asked: the operating system
/// holds what was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the batch's commit returns. Every batch that persists key
    /// material before it is used (a ratchet step and the envelope it
    /// sealed, a consumed prekey) must be this: losing one in a power cut
    /// would use a message key twice.
    Now,
    /// No later than the next [`Durability::Now`] batch (or the backend's
    /// next checkpoint): batches in the same order, so a power cut loses at
    /// most a suffix of these and never leaves a later durable batch
    /// without an earlier one. Only for batches whose loss repeats work
    /// and nothing else: the outbox entry the relay accepted is then sent
    /// again, as the same ciphertext, which the recipient drops as a
    /// repeat (docs/PROTOCOL.md 12.10).
    WithNext,
}

/// A storage backend for sealed records. Implementations must make
/// [`ClientStore::apply`] atomic (all operations or none) and durable when it
/// returns, because the client relies on it to persist a ratchet session and
/// the envelope it produced together.
pub trait ClientStore: Send + Sync + 'static {
    /// The unsealed store header, if the store was initialised.
    fn read_header(&self) -> StoreFuture<'_, Option<Vec<u8>>>;
    /// Writes the header (creating or replacing it).
    fn write_header<'a>(&'a self, header: &'a [u8]) -> StoreFuture<'a, ()>;
    /// The sealed value at (kind, slot).
    fn get<'a>(&'a self, kind: RecordKind, slot: &'a [u8]) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Every row of `kind` whose slot starts with `prefix`, in ascending slot order.
    fn list<'a>(&'a self, kind: RecordKind, prefix: &'a [u8])
        -> StoreFuture<'a, Vec<StoredRecord>>;
    /// Applies every operation, atomically and durably.
    fn apply(&self, batch: Vec<WriteOp>) -> StoreFuture<'_, ()>;
    /// Applies every operation atomically, durable no later than
    /// `durability` requires. The default makes every batch durable at once
    /// ([`ClientStore::apply`]), which is always correct; a backend may
    /// make a [`Durability::WithNext`] batch durable only when the next
    /// durable batch (or a checkpoint) is, to save a sync.
    fn apply_with(&self, batch: Vec<WriteOp>, durability: Durability) -> StoreFuture<'_, ()> {
        let _ = durability;
        self.apply(batch)
    }
    /// Removes every row and the header (account deletion).
    fn erase_all(&self) -> StoreFuture<'_, ()>;
}

/// Why the local store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The password does not open this store.
    #[error("wrong password for this local store")]
    WrongPassword,
    /// No account has been set up in this store yet.
    #[error("the local store holds no account; register or log in first")]
    NotInitialized,
    /// The store already holds an account.
    #[error("the local store already holds an account")]
    AlreadyInitialized,
    /// A record failed authentication: it was modified, swapped with another
    /// record, or moved to a different slot.
    #[error("a stored {kind:?} record failed authentication (modified, swapped or moved)")]
    Tampered {
        /// Which kind of record.
        kind: RecordKind,
    },
    /// A record opened, but it is not the one the store last wrote there:
    /// an older sealed copy was put back (or a deleted one restored, or the
    /// current one removed) by someone who could write the data directory.
    #[error(
        "a stored {kind:?} record is an older copy than the store last wrote (rolled back \
         or removed outside umbra); refusing it so no message key is reused"
    )]
    RolledBack {
        /// Which kind of record.
        kind: RecordKind,
    },
    /// The data directory was written by an older umbra whose store format
    /// this version cannot read, and there is no migration from it.
    #[error(
        "this data dir was written by an older umbra (store format {found}); this umbra \
         reads format {supported} only and cannot migrate it: use the older umbra, or move \
         the data dir aside and log in again (history and sessions stay in the old one)"
    )]
    OlderFormat {
        /// The format version the header names.
        found: u8,
        /// The one this version reads.
        supported: u8,
    },
    /// The data directory was written by a newer umbra.
    #[error(
        "this data dir was written by a newer umbra (store format {found}); this umbra \
         reads format {supported} only: upgrade umbra"
    )]
    NewerFormat {
        /// The format version the header names.
        found: u8,
        /// The one this version reads.
        supported: u8,
    },
    /// A session record opened but its pickle does not load.
    #[error("a stored {kind:?} record does not load: {source}")]
    BadPickle {
        /// Which kind of record.
        kind: RecordKind,
        /// Why the pickle was refused.
        source: umbra_protocol::pickle::PickleError,
    },
    /// The header is not one this version understands.
    #[error("local store header is malformed or of an unknown version: {0}")]
    BadHeader(&'static str),
    /// A record opened but its contents do not decode.
    #[error("a stored {kind:?} record does not decode: {source}")]
    Corrupt {
        /// Which kind of record.
        kind: RecordKind,
        /// The decoder's complaint.
        source: postcard::Error,
    },
    /// Key derivation failed (bad parameters).
    #[error("password key derivation failed: {0}")]
    Kdf(String),
    /// The header still holds the slots of an earlier password change that
    /// no login has decided (docs/PROTOCOL.md 12.8): a new change would
    /// have to drop one of them, possibly the relay's password's.
    #[error(
        "an earlier password change is not settled yet (this data dir opens with two \
         passwords); log in first, then change the password"
    )]
    ChangeUnsettled,
    /// The SQLite backend failed.
    #[error("SQLite store: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// Files or directories could not be created or secured.
    #[error("local store file: {0}")]
    Io(#[from] std::io::Error),
    /// Another process holds the data directory's lock and did not let go
    /// within the wait: only one process may use a data directory at a time.
    #[error(
        "another umbra is using the data directory {} (waited {waited_secs} s); \
         close it or try again",
        dir.display()
    )]
    Locked {
        /// The data directory.
        dir: std::path::PathBuf,
        /// How long this process waited, in whole seconds.
        waited_secs: u64,
    },
}
