//! What a store operation can fail with, and why one message of an enqueue
//! batch can be refused while the others are stored.
//!
//! Must never: carry a secret, an envelope or a username in an error (they
//! are logged by callers), or tell a caller something its own request did
//! not already reveal.

use super::limits::MAX_BLOB_CHUNK_BYTES;
use super::types::Seq;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The username (case-folded) already belongs to another account, or
    /// was released by one less than the name quarantine ago.
    #[error("username is taken or was released too recently")]
    UsernameTaken,
    /// The username is reserved by relay policy (it reads as the relay's or
    /// its operator's voice: `admin`, `support`, ...); nobody may hold it.
    #[error("username is reserved")]
    UsernameReserved,
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
    /// A KEM prekey upload was checked under an identity the device no
    /// longer publishes (a new one was published meanwhile, or the device
    /// was removed): nothing was stored, since its signatures belong to the
    /// old one.
    #[error("the device's published identity changed while its KEM prekeys were checked")]
    KemPreKeyIdentityChanged,
    /// Another account publishes or has published this identity key
    /// (docs/PROTOCOL.md 11.8 step 0, 15.1).
    #[error("this identity key belongs to another account")]
    IdentityInUse,
    /// The identity would give the account a second one (docs/PROTOCOL.md
    /// 11.8 step 0, 15.1: one identity per account): another current
    /// device publishes a different identity, or this one changes the
    /// account's identity while other current devices exist. Worded for
    /// both sides: the device resetting removes the others first; a
    /// device linked before a reset is linked again.
    #[error(
        "this identity would give the account a second one: to reset the \
         identity, remove the account's other devices first; if the \
         account's identity was reset, link this device again"
    )]
    AccountIdentityDiffers,
    /// The account already has `MAX_DEVICES_PER_ACCOUNT` current devices
    /// (docs/PROTOCOL.md 15.1); a device must be removed first.
    #[error("the account already has {limit} devices")]
    TooManyDevices {
        /// The per-account limit.
        limit: usize,
    },
    /// The device is not a current device of the account (never assigned,
    /// or removed: a tombstone).
    #[error("device {device} is not a current device of the account")]
    UnknownDevice {
        /// The device id asked about.
        device: u32,
    },
    /// A device list was not stored: the stored one's version is the same
    /// or higher (15.4, `StaleDeviceList`).
    #[error("a device list with version {stored_version} is already stored")]
    StaleDeviceList {
        /// The version of the list that stays.
        stored_version: u64,
    },
    /// A device list's version is above what the store keeps
    /// (`MAX_DEVICE_LIST_VERSION`, 2^63 − 1: versions are SQL BIGINTs, 15.4,
    /// `LimitExceeded`).
    #[error("device list version {version} is above the highest a relay stores, {max}")]
    DeviceListVersionTooHigh {
        /// The version refused.
        version: u64,
        /// The highest version stored.
        max: u64,
    },
    /// The link ticket is unknown, expired, already joined or finished, or
    /// the caller is not its side (15.6, `UnknownExchange`). One error for
    /// all of these: a guesser learns nothing about which tickets exist.
    #[error("no such link exchange")]
    UnknownLinkTicket,
    /// The account holds the most unexpired link tickets allowed.
    #[error("too many open link tickets; retry in {retry_after_secs} s")]
    TooManyLinkTickets {
        /// Seconds until the oldest open ticket expires.
        retry_after_secs: u64,
    },
    /// The side of a link exchange already holds the most posts allowed.
    #[error("a link exchange side holds at most {limit} posts")]
    TooManyLinkMessages {
        /// The per-side limit.
        limit: u64,
    },
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
    /// The blob would take its uploader past the per-account blob quota.
    #[error("blob quota exceeded: at most {limit} {what} per account")]
    BlobQuotaExceeded {
        /// What ran out: `"blobs"` or `"bytes"`.
        what: &'static str,
        /// The configured per-account limit.
        limit: u64,
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
    /// SQLite's dedicated writer connection (`sqlite_writer`) reported an
    /// error before its commit: the transaction rolled back.
    #[error("database error: {0}")]
    SqliteWriter(rusqlite::Error),
    /// The database connection failed while a transaction was being
    /// committed: COMMIT was sent and no answer came, so the store cannot
    /// tell whether the transaction was stored. Every error *before* the
    /// commit means the transaction rolled back (PROTOCOL.md 9.6,
    /// `Internal`).
    #[error("the database failed during commit; the outcome is unknown: {cause}")]
    CommitOutcomeUnknown {
        /// The database's error text.
        cause: String,
    },
    /// The database could not be used (see [`StoreError::is_unavailable`]):
    /// the transaction rolled back and nothing was stored. The group
    /// committer answers every submission of a batch with this when their
    /// shared transaction failed so, one error text for all of them.
    #[error("the database is unavailable; nothing was stored: {cause}")]
    Unavailable {
        /// The database's error text.
        cause: String,
    },
    /// The database server could not be reached at start (helper F: fail
    /// fast with the host and the cause instead of a pool timeout).
    #[error("cannot connect to PostgreSQL at {host}:{port}: {cause}")]
    Unreachable {
        /// The host from the URL (never the password).
        host: String,
        /// The port.
        port: u16,
        /// What went wrong: refused, no answer within the timeout, auth.
        cause: String,
    },
}

impl StoreError {
    /// Whether the database could not be used at all (no connection within
    /// the pool's acquire timeout, a lost or refused connection, a server
    /// shutting down or starting up): the request was not carried out and
    /// may succeed once the database is back, so callers answer with a
    /// retry hint. (Not for a COMMIT's error: see [`StoreError::from_commit`].)
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                let postgres = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some_and(|pg| {
                        // Class 08: connection exception; 57P01-57P03: admin
                        // shutdown, crash shutdown, cannot connect now.
                        pg.code().starts_with("08")
                            || matches!(pg.code(), "57P01" | "57P02" | "57P03")
                    });
                // SQLite's extended code, whose low byte is the primary one.
                let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                    && db
                        .code()
                        .and_then(|code| code.parse::<i32>().ok())
                        .is_some_and(sqlite_busy);
                postgres || sqlite
            }
            // The busy timeout ran out waiting for another connection's
            // lock: nothing was done, and it may work in a moment.
            StoreError::SqliteWriter(rusqlite::Error::SqliteFailure(e, _)) => {
                sqlite_busy(e.extended_code)
            }
            StoreError::Database(error) => matches!(
                error,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            ),
            StoreError::Unreachable { .. } | StoreError::Unavailable { .. } => true,
            _ => false,
        }
    }

    /// Maps the error of a write run as one statement outside a
    /// transaction, where the statement is its own commit (a token
    /// deletion). Failing to get a connection, or the database refusing the
    /// statement with an error (it rolled back), means nothing was done; but
    /// a connection lost once the statement was sent, or a FATAL
    /// shutdown in answer to it, leaves the outcome unknown just as at a
    /// COMMIT (review finding 4): the tokens may already be gone.
    pub(crate) fn from_autocommit(error: sqlx::Error) -> StoreError {
        let not_sent_or_refused = match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
            sqlx::Error::Database(db) => {
                match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    // 57P03 (cannot connect now) only comes at connect.
                    Some(pg) => {
                        pg.code() == "57P03"
                            || !(pg.code().starts_with("08")
                                || matches!(pg.code(), "57P01" | "57P02"))
                    }
                    // SQLite runs in-process: an error is the statement's.
                    None => true,
                }
            }
            _ => false,
        };
        if not_sent_or_refused {
            StoreError::Database(error)
        } else {
            StoreError::CommitOutcomeUnknown {
                cause: error.to_string(),
            }
        }
    }

    /// Maps the error of a transaction's COMMIT. Only an answer in which
    /// the database says it rolled the transaction back is a definite
    /// failure: PostgreSQL's SQLSTATE classes 40 (transaction rollback:
    /// serialization failure, deadlock) and 23 (a deferred constraint), and
    /// SQLite's `BUSY`/`LOCKED` (the commit did not take the lock, the
    /// transaction is still open and is rolled back when dropped).
    /// Everything else leaves the outcome unknown: a lost connection, and
    /// also a FATAL such as PostgreSQL's "terminating connection due to
    /// administrator command", which a backend can send after its COMMIT
    /// record is already durable.
    pub(crate) fn from_commit(error: sqlx::Error) -> StoreError {
        let rolled_back = match &error {
            sqlx::Error::Database(db) => {
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    pg.code().starts_with("40") || pg.code().starts_with("23")
                } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // The primary result code is the low byte of the extended one.
                    db.code()
                        .and_then(|code| code.parse::<u32>().ok())
                        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
                } else {
                    false
                }
            }
            _ => false,
        };
        if rolled_back {
            StoreError::Database(error)
        } else {
            StoreError::CommitOutcomeUnknown {
                cause: error.to_string(),
            }
        }
    }
}

/// Why one message of an enqueue batch was refused; the others in the batch
/// are unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueRejection {
    /// The recipient's queue already holds the configured maximum.
    #[error("recipient queue is full")]
    QueueFull,
    /// The recipient is not a current device of an existing account (the
    /// account never existed or was deleted, or the device was never
    /// enrolled or was removed, 15.5).
    #[error("recipient device does not exist")]
    UnknownRecipient,
}

/// The outcome of one message of an enqueue batch: its sequence number once
/// committed, or why it was refused.
pub type EnqueueOutcome = Result<Seq, EnqueueRejection>;

/// `SQLITE_BUSY` (5) or `SQLITE_LOCKED` (6), with any extended code.
fn sqlite_busy(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6)
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn a_lost_connection_at_commit_leaves_the_outcome_unknown() {
        let lost = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(
            StoreError::from_commit(lost),
            StoreError::CommitOutcomeUnknown { .. }
        ));
        // The pool's own failures happen before anything is sent: the
        // database is unavailable and nothing was done.
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!StoreError::Corrupt("x").is_unavailable());
        // A write that is its own commit: the same, and a pool timeout
        // still means it was never sent.
        let lost = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(
            StoreError::from_autocommit(lost),
            StoreError::CommitOutcomeUnknown { .. }
        ));
        assert!(StoreError::from_autocommit(sqlx::Error::PoolTimedOut).is_unavailable());
    }

    #[test]
    fn a_busy_sqlite_writer_is_unavailable_not_a_fault() {
        let busy = |code| {
            StoreError::SqliteWriter(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        // SQLITE_BUSY, SQLITE_BUSY_TIMEOUT (773), SQLITE_LOCKED.
        assert!(busy(5).is_unavailable());
        assert!(busy(773).is_unavailable());
        assert!(busy(6).is_unavailable());
        // SQLITE_CONSTRAINT, SQLITE_IOERR: the relay's or the disk's fault.
        assert!(!busy(19).is_unavailable());
        assert!(!busy(10).is_unavailable());
    }
}
