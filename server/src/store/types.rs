//! The values the store takes and returns: queue messages, tokens, key
//! publications, blobs, and the opaque password file.
//!
//! Must never: print a password file, an envelope or a token hash in
//! `Debug` (lengths only), or hold a sender next to a queued envelope.

use std::fmt;

use umbra_wire::{AccountId, Address};
use zeroize::Zeroizing;

/// Unix time in whole seconds; the store never reads a clock itself, so
/// tests can move time and every node agrees on what "now" was passed.
pub type UnixSeconds = u64;

/// Unix time in milliseconds: a queued message's acceptance time, which
/// the client shows (`Deliver.received_at_ms`), so two messages accepted
/// within one second still read apart.
pub type UnixMillis = u64;

/// A queue sequence number: per recipient device, starting at 1, strictly
/// increasing in the order the relay accepted messages, never reused.
pub type Seq = u64;

/// A message to queue. The store keeps no sender: `envelope` is the sealed
/// bytes exactly as the relay received them.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The recipient device.
    pub recipient: Address,
    /// The opaque sealed envelope.
    pub envelope: Vec<u8>,
    /// When the relay accepted it.
    pub received_at_ms: UnixMillis,
    /// After this instant it is never delivered and may be purged.
    pub expires_at: UnixSeconds,
}

impl fmt::Debug for NewMessage {
    // Envelope bytes are ciphertext, but logs have no use for them: length
    // only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMessage")
            .field("recipient", &self.recipient)
            .field("envelope_len", &self.envelope.len())
            .field("received_at_ms", &self.received_at_ms)
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
    pub received_at_ms: UnixMillis,
}

impl fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredMessage")
            .field("seq", &self.seq)
            .field("envelope_len", &self.envelope.len())
            .field("received_at_ms", &self.received_at_ms)
            .finish()
    }
}

/// Something happened to a queue; sent to every subscriber of
/// [`MessageQueue::subscribe`](super::MessageQueue::subscribe).
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

/// A stored token hash's owner and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInfo {
    /// The device it was issued to.
    pub owner: Address,
    /// The instant from which it is no longer valid.
    pub expires_at: UnixSeconds,
}

/// What a token hash means at a given instant (see
/// [`TokenStore::token_status`](super::TokenStore::token_status)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// Issued to this device and not yet expired.
    Valid(Address),
    /// Issued to this device, but its expiry has passed.
    Expired(Address),
    /// Never issued, revoked, or purged after expiring.
    Unknown,
}

/// What [`KeyDirectory::put_keys`](super::KeyDirectory::put_keys) did besides storing the new keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedKeys {
    /// The device had a different identity before, now replaced.
    pub identity_replaced: bool,
    /// One-time prekeys of the old identity that were deleted.
    pub one_time_prekeys_discarded: u64,
    /// KEM prekeys (one-time and last-resort) signed by the old identity
    /// that were deleted.
    pub kem_prekeys_discarded: u64,
}

/// A device's ML-KEM prekeys on the relay (see
/// [`KemPreKeyDirectory::kem_prekey_stock`](super::KemPreKeyDirectory::kem_prekey_stock)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KemPreKeyStock {
    /// One-time KEM prekeys still stored.
    pub one_time: u64,
    /// Whether a last-resort KEM prekey is stored: the device has uploaded
    /// KEM prekeys, so it reads `KemPreKeysLow`.
    pub last_resort: bool,
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
