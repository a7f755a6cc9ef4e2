//! Why a backup does not seal or open: one variant per thing that can be
//! wrong, so a client can tell the user "wrong password" apart from "the
//! relay served damaged or old data" (docs/PROTOCOL.md §13.7).
//!
//! Must never: carry key or plaintext bytes in a message.

use crate::wire::backup::BackupFrameError;

/// Why sealing or opening a backup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    /// The outside is wrong before any key is used: empty, over the
    /// maximum, an unknown format version, or not a bucket length.
    #[error(transparent)]
    Frame(#[from] BackupFrameError),
    /// Contents too long to seal into the largest bucket.
    #[error("backup contents of {len} bytes do not fit the largest backup")]
    TooLarge {
        /// Length of the encoded contents.
        len: usize,
    },
    /// The key check differs: sealed under another password (export key)
    /// or for another account.
    #[error("backup was sealed under another key (wrong password or account)")]
    WrongKey,
    /// The key check matches but the AEAD tag does not: the header or
    /// ciphertext was changed.
    #[error("backup fails authentication: it was tampered with or damaged")]
    Tampered,
    /// Authentic, but older than the newest backup this device has seen.
    #[error("backup sequence {found} is older than the last one seen ({last_seen}): rolled back")]
    RolledBack {
        /// The sequence number of the backup opened.
        found: u64,
        /// The newest sequence number the caller had seen.
        last_seen: u64,
    },
    /// The decrypted plaintext's padding is not what sealing produces.
    #[error("backup padding is malformed: {0}")]
    BadPadding(&'static str),
    /// The contents carry a version this code does not read.
    #[error(
        "backup contents version {found} is not supported (this code reads version {supported})"
    )]
    UnknownContentsVersion {
        /// The version byte found.
        found: u8,
        /// The one this code reads.
        supported: u8,
    },
    /// The contents do not decode (truncated, trailing bytes, a wrong
    /// field, sections out of order).
    #[error("backup contents do not decode: {0}")]
    Malformed(String),
    /// The contents decode but break a limit or rule of §13.4.
    #[error("backup contents are invalid: {0}")]
    Invalid(&'static str),
    /// The contents name another account than the key was derived for.
    #[error("backup contents name another account than the key's")]
    AccountMismatch,
}
