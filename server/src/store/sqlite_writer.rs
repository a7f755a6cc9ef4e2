//! SQLite's dedicated writer: one synchronous connection (rusqlite) on the
//! relay's database file, owned by the group committer's own thread, which
//! commits each batch of enqueues and acknowledgements in one transaction.
//!
//! Why it exists: through sqlx every statement is a message to the
//! connection's worker thread and an answer back, two thread wake-ups per
//! statement, and on a busy two-core machine those wake-ups cost more than
//! the statements (docs/BENCHMARKS.md, "Relay throughput"). Here the whole
//! batch (`BEGIN IMMEDIATE`, the queue locks, the inserts, the counters, the
//! ack deletions, `COMMIT`) runs on the thread that took it, with prepared
//! statements cached on the connection.
//!
//! Durability is the same as every other SQLite write of the relay: WAL
//! journal, `synchronous=FULL` (set on this connection too), so `COMMIT`
//! returns only after the WAL has been fsynced, and only then does the
//! committer answer anyone. The SQL is the single-row form of the shared
//! statements in `queue.rs` (same tables, same order of checks, the same
//! `rules::admit_message`).
//!
//! Must never: be opened on an in-memory database (it would be another
//! database; such stores keep the sqlx path), run outside the committer's
//! thread, announce a message before its commit, or store a sender.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use umbra_wire::Address;

use super::batch::{self, BatchPart, PartOutcome};
use super::rows;
use super::rules::{self, QueueState};
use super::shared::device_param;
use super::{
    db_millis, db_time, db_u64, StoreError, StoreLimits, TokenHash, TokenInfo, UnixSeconds,
};

/// The same wait for a lock held by another connection as sqlx's pools use.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The writer connection; see the module doc.
pub struct SqliteWriter {
    conn: Connection,
    limits: StoreLimits,
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter").finish_non_exhaustive()
    }
}

fn db(error: rusqlite::Error) -> StoreError {
    StoreError::SqliteWriter(error)
}

fn unsigned(v: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

impl SqliteWriter {
    /// Opens the (already migrated) database file at `path` with the relay's
    /// SQLite settings.
    pub(crate) fn open(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        Ok(Self { conn, limits })
    }

    /// [`MessageQueue::commit_parts`](super::MessageQueue::commit_parts)
    /// on this connection, in one `BEGIN IMMEDIATE` transaction: each
    /// part's token is read under the write lock first (so no revocation
    /// can commit between the check and the commit, `batch`), then the
    /// admitted parts' messages and acks are written; one outcome per part,
    /// only once `COMMIT` returned. Every error before the commit rolled it
    /// back.
    pub fn commit_parts(
        &mut self,
        parts: &[BatchPart<'_>],
        now: UnixSeconds,
    ) -> Result<Vec<PartOutcome>, StoreError> {
        let Self { conn, limits } = self;
        let limits: &StoreLimits = limits;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let infos = batch::token_hashes(parts)
            .iter()
            .map(|hash| token_info(&tx, hash))
            .collect::<Result<Vec<_>, _>>()?;
        let refused = batch::refusals(parts, &infos, now);
        let (messages, acks) = batch::admitted(parts, &refused);
        // Sorted like the shared path, so both take the queues in one order.
        let mut queues: BTreeMap<Address, Option<QueueState>> =
            messages.iter().map(|m| (m.recipient, None)).collect();
        for (recipient, state) in queues.iter_mut() {
            *state = lock_queue(&tx, *recipient)?;
        }
        let mut outcomes = Vec::with_capacity(messages.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO messages \
                       (account_id, device_id, seq, envelope, received_at, received_at_ms, \
                        expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db)?;
            for &message in &messages {
                let recipient = message.recipient;
                let queue = queues.get_mut(&recipient).and_then(Option::as_mut);
                let outcome = rules::admit_message(queue, limits)?;
                if let Ok(seq) = outcome {
                    insert
                        .execute(params![
                            recipient.account.as_bytes().as_slice(),
                            device_param(recipient),
                            db_u64(seq),
                            message.envelope.as_slice(),
                            db_time(message.received_at_ms / 1000),
                            db_millis(message.received_at_ms),
                            db_time(message.expires_at),
                        ])
                        .map_err(db)?;
                }
                outcomes.push(outcome);
            }
            let mut counter = tx
                .prepare_cached(
                    "UPDATE queue_counters SET last_seq = ?3 \
                     WHERE account_id = ?1 AND device_id = ?2",
                )
                .map_err(db)?;
            for (recipient, state) in &queues {
                if let Some(state) = state.as_ref().filter(|s| s.dirty) {
                    counter
                        .execute(params![
                            recipient.account.as_bytes().as_slice(),
                            device_param(*recipient),
                            db_u64(state.last_seq),
                        ])
                        .map_err(db)?;
                }
            }
        }
        let mut deleted = Vec::with_capacity(acks.len());
        {
            let mut delete = tx
                .prepare_cached(
                    "DELETE FROM messages WHERE account_id = ?1 AND device_id = ?2 AND seq = ?3",
                )
                .map_err(db)?;
            for (recipient, seqs) in acks.iter().copied() {
                let mut n = 0u64;
                let mut seqs = seqs.clone();
                // A repeated seq deletes nothing twice.
                seqs.sort_unstable();
                seqs.dedup();
                for seq in seqs {
                    let done = delete
                        .execute(params![
                            recipient.account.as_bytes().as_slice(),
                            device_param(*recipient),
                            db_u64(seq),
                        ])
                        .map_err(db)?;
                    n += done as u64;
                }
                deleted.push(n);
            }
        }
        tx.commit().map_err(from_commit)?;
        Ok(batch::deal(parts, refused, outcomes, deleted))
    }
}

/// [`TokenStore::token_info`](super::TokenStore::token_info) inside the
/// writer's transaction (the committer's re-check of a request's token).
fn token_info(
    tx: &rusqlite::Transaction<'_>,
    token_hash: &TokenHash,
) -> Result<Option<TokenInfo>, StoreError> {
    let row = tx
        .prepare_cached(
            "SELECT account_id, device_id, expires_at FROM tokens WHERE token_hash = ?1",
        )
        .map_err(db)?
        .query_row(params![token_hash.as_slice()], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .optional()
        .map_err(db)?;
    let Some((account, device, expires_at)) = row else {
        return Ok(None);
    };
    Ok(Some(TokenInfo {
        owner: rows::address(&account, device)?,
        expires_at: rows::unix(expires_at)?,
    }))
}

/// Reads `recipient`'s counter (created at 0 if missing) and depth; `None`
/// unless it is a current device of an existing account (a device row
/// exists only beside its account's), read under `BEGIN IMMEDIATE`'s write
/// lock, so a removal committed before this batch is seen (PROTOCOL.md
/// 15.5).
fn lock_queue(
    tx: &rusqlite::Transaction<'_>,
    recipient: Address,
) -> Result<Option<QueueState>, StoreError> {
    let account = recipient.account.as_bytes().as_slice();
    let device = device_param(recipient);
    let exists = tx
        .prepare_cached(
            "SELECT 1 FROM devices WHERE account_id = ?1 AND device_id = ?2 \
             AND removed_at IS NULL",
        )
        .map_err(db)?
        .query_row(params![account, device], |_| Ok(()))
        .optional()
        .map_err(db)?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let last = tx
        .prepare_cached(
            "SELECT last_seq FROM queue_counters WHERE account_id = ?1 AND device_id = ?2",
        )
        .map_err(db)?
        .query_row(params![account, device], |row| row.get::<_, i64>(0))
        .optional()
        .map_err(db)?;
    let last = match last {
        Some(last) => last,
        None => {
            tx.prepare_cached(
                "INSERT INTO queue_counters (account_id, device_id, last_seq) VALUES (?1, ?2, 0)",
            )
            .map_err(db)?
            .execute(params![account, device])
            .map_err(db)?;
            0
        }
    };
    let depth: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE account_id = ?1 AND device_id = ?2")
        .map_err(db)?
        .query_row(params![account, device], |row| row.get(0))
        .map_err(db)?;
    Ok(Some(QueueState::new(
        unsigned(last, "negative queue counter")?,
        unsigned(depth, "negative row count")?,
    )))
}

/// A `COMMIT` refused with `BUSY`/`LOCKED` did not happen (the transaction
/// is rolled back when dropped); any other failure leaves the outcome
/// unknown, as in [`StoreError::from_commit`].
fn from_commit(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::SqliteWriter(error)
        }
        _ => StoreError::CommitOutcomeUnknown {
            cause: error.to_string(),
        },
    }
}
