//! The embedded backend: one SQLite file in the relay's data directory.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a committed
//! transaction has been fsynced before any method returns `Ok` and the relay
//! acknowledges. Writes go through one writer connection of a pool and,
//! for the group committer, one synchronous connection of its own
//! (`sqlite_writer`); the two take turns through a fair FIFO lock, the
//! [`WriteTurn`], instead of through SQLite's busy handler, whose polling
//! back-off lets a busy committer starve a login or a prekey upload for
//! seconds. Reads use a separate pool that WAL lets run beside the writers. Queue notifications are a local broadcast: an SQLite
//! relay is a single node.
//!
//! Must never: acknowledge before commit, split one logical operation over
//! two transactions, or be shared by two relay processes (PostgreSQL is the
//! multi-node backend).
//!
//! The SQL itself is shared with PostgreSQL (`shared.rs`); this file holds
//! only what is SQLite's own: opening, the pools, `BEGIN IMMEDIATE`, the
//! empty row-lock fragments (the single writer already serializes every
//! write) and the in-process announcement of committed messages.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{broadcast, Mutex, OwnedMutexGuard};

use crate::control::{ControlBus, ControlNotice, SealedPayload};

use super::{ControlChannel, QueueEvent, StoreError, StoreLimits};

/// How long a connection waits for a lock held by another connection (e.g.
/// an operator's `sqlite3` shell) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers that may run beside the single writer.
const READ_CONNECTIONS: u32 = 4;
/// Queue events buffered per subscriber before it is told to resync.
pub(crate) const EVENT_BUFFER: usize = 4096;

/// Applies umbra's SQLite schema migrations (embedded at build time).
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// The turn to write: held by the writer pool while its connection is out
/// of the pool (taken in `before_acquire`, given back in `after_release`),
/// and by the committer's dedicated connection for each batch. Tokio's mutex
/// queues its waiters in order, so neither side waits behind more than the
/// writes queued ahead of it.
#[derive(Clone, Default)]
pub(crate) struct WriteTurn {
    turn: Arc<Mutex<()>>,
    /// The pool's held turn (the pool has one connection, so one at most).
    held_by_pool: Arc<std::sync::Mutex<Option<OwnedMutexGuard<()>>>>,
}

impl WriteTurn {
    /// The lock itself, for the dedicated writer.
    pub(crate) fn lock(&self) -> Arc<Mutex<()>> {
        Arc::clone(&self.turn)
    }

    /// Installs the turn on the writer pool's options. A connection the
    /// pool closes instead of releasing keeps its turn until the pool's
    /// next release; the committer bounds its wait for that case
    /// (`group_commit::TURN_WAIT`) and then relies on SQLite's busy handler.
    fn install(&self, options: SqlitePoolOptions) -> SqlitePoolOptions {
        let acquire = self.clone();
        let release = self.clone();
        options
            .before_acquire(move |_, _| {
                let turn = acquire.clone();
                Box::pin(async move {
                    // The pool holds one connection, so a turn still held
                    // here belonged to one it closed.
                    drop(turn.take_pool_turn());
                    let guard = Arc::clone(&turn.turn).lock_owned().await;
                    *turn.slot() = Some(guard);
                    Ok(true)
                })
            })
            .after_release(move |_, _| {
                let turn = release.clone();
                Box::pin(async move {
                    drop(turn.take_pool_turn());
                    Ok(true)
                })
            })
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<OwnedMutexGuard<()>>> {
        // A poisoned slot only means a panic elsewhere; its content is valid.
        self.held_by_pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take_pool_turn(&self) -> Option<OwnedMutexGuard<()>> {
        self.slot().take()
    }
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    /// The database file (`None` in memory), for the committer's
    /// dedicated writer connection (`sqlite_writer`).
    path: Option<std::path::PathBuf>,
    writer: SqlitePool,
    reader: SqlitePool,
    limits: StoreLimits,
    events: broadcast::Sender<QueueEvent>,
    control: ControlBus,
    /// Shared by the writer pool and the dedicated writer (file only).
    turn: WriteTurn,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Connection settings every umbra SQLite connection uses.
fn harden(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies
    /// migrations.
    pub async fn open_file(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        let options = harden(SqliteConnectOptions::new().filename(path));
        Self::open_options(options, false, limits).await
    }

    /// Opens an `sqlite:` URL (`sqlite://path/to/file.db`, `sqlite::memory:`)
    /// and applies migrations.
    pub async fn open_url(url: &str, limits: StoreLimits) -> Result<Self, StoreError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = harden(SqliteConnectOptions::from_str(url)?);
        Self::open_options(options, in_memory, limits).await
    }

    async fn open_options(
        options: SqliteConnectOptions,
        in_memory: bool,
        limits: StoreLimits,
    ) -> Result<Self, StoreError> {
        // An in-memory database exists once per connection, so it must keep
        // exactly one connection for its whole life and read through it too.
        let turn = WriteTurn::default();
        let pool_options = SqlitePoolOptions::new();
        // In memory there is no second writer to take turns with.
        let pool_options = if in_memory {
            pool_options
        } else {
            turn.install(pool_options)
        };
        let writer = pool_options
            .max_connections(1)
            .test_before_acquire(false)
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                // An in-process connection cannot go stale the way a
                // network one can; a ping before every acquire was one more
                // round trip to the connection's thread per query.
                .test_before_acquire(false)
                .connect_with(options.clone())
                .await?
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let path = (!in_memory).then(|| options.get_filename().to_path_buf());
        Ok(Self {
            path,
            writer,
            reader,
            limits,
            events,
            control: ControlBus::default(),
            turn,
        })
    }

    /// Applies migrations to the database at `options` without keeping it open.
    pub(crate) async fn migrate_options(options: SqliteConnectOptions) -> Result<(), StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(harden(options))
            .await?;
        MIGRATOR.run(&pool).await?;
        pool.close().await;
        Ok(())
    }

    /// Starts a write transaction holding SQLite's write lock from the start
    /// (`BEGIN IMMEDIATE`), so a read-then-write never fails half-way with a
    /// lock upgrade conflict if another process (an operator's shell, a
    /// `migrate` run) touches the file; waiting is bounded by the busy timeout.
    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Nothing to lift: SQLite has no statement timeout (its waits for the
    /// write lock are bounded by `busy_timeout`, its statements by nothing
    /// but their work).
    async fn bulk_statements(_tx: &mut Transaction<'static, Sqlite>) -> Result<(), StoreError> {
        Ok(())
    }

    /// No server-side limits to lift: the write transaction is held as
    /// long as the publication takes (PostgreSQL's counterpart lifts them).
    async fn sealing_statements(_tx: &mut Transaction<'static, Sqlite>) -> Result<(), StoreError> {
        Ok(())
    }

    /// The group committer's synchronous writer connection on the same
    /// file (`sqlite_writer`); in memory there is no other connection to
    /// the same database, so the committer keeps the pool.
    fn open_dedicated_writer(
        &self,
    ) -> Result<Option<Box<dyn super::group_commit::DedicatedWriter>>, StoreError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let writer = super::sqlite_writer::SqliteWriter::open(path, self.limits)?;
        Ok(Some(Box::new(DedicatedSqlite {
            writer,
            events: self.events.clone(),
            turn: self.turn.lock(),
        })))
    }

    /// Closes both pools, waiting for in-flight work (tests reopen files).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Reads run on their own pool beside the writer (WAL).
    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Single-statement writes outside a transaction.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Tells this process's subscribers, after commit, so nobody is woken
    /// for a message that was rolled back.
    fn announce_committed(&self, committed: Vec<QueueEvent>) {
        for event in committed {
            // No subscribers is not an error: nobody is connected.
            let _ = self.events.send(event);
        }
    }
}

/// The dedicated writer and where its committed messages are announced.
struct DedicatedSqlite {
    writer: super::sqlite_writer::SqliteWriter,
    events: broadcast::Sender<QueueEvent>,
    turn: Arc<Mutex<()>>,
}

impl super::group_commit::DedicatedWriter for DedicatedSqlite {
    fn commit_parts(
        &mut self,
        parts: &[super::batch::BatchPart<'_>],
        now: super::UnixSeconds,
    ) -> Result<Vec<super::batch::PartOutcome>, StoreError> {
        self.writer.commit_parts(parts, now)
    }

    fn announce(&self, committed: Vec<QueueEvent>) {
        for event in committed {
            // No subscribers is not an error: nobody is connected.
            let _ = self.events.send(event);
        }
    }
    fn write_turn(&self) -> Option<Arc<Mutex<()>>> {
        Some(Arc::clone(&self.turn))
    }
}

/// SQLite's fragments of the shared SQL: no row locks (one writer connection
/// and `BEGIN IMMEDIATE` serialize every write transaction already).
macro_rules! dialect {
    (name) => {
        "sqlite"
    };
    // The shared statements, one step at a time (SQLite has no unnest and
    // no data-modifying WITH; its statements are in-process calls anyway).
    (lock_queues) => {
        lock_queues
    };
    (write_batch) => {
        write_in_steps
    };
    (key_share) => {
        ""
    };
    (no_key_update) => {
        ""
    };
    (for_update) => {
        ""
    };
    (skip_locked) => {
        ""
    };
    (for_share) => {
        ""
    };
    (list_tables) => {
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    };
    (list_byte_columns) => {
        "SELECT name FROM pragma_table_info($1) WHERE upper(type) = 'BLOB' ORDER BY cid"
    };
}

super::shared::impl_store!(SqliteStore, sqlx::Sqlite);

/// One node: a control event goes straight onto this process's bus.
#[async_trait]
impl ControlChannel for SqliteStore {
    async fn publish_control(&self, payload: SealedPayload) -> Result<(), StoreError> {
        // Sealed and verified like PostgreSQL's, so both take one path.
        self.control
            .deliver(ControlNotice::Payload(payload.as_str().to_owned()));
        Ok(())
    }

    fn subscribe_control(&self) -> broadcast::Receiver<ControlNotice> {
        self.control.subscribe()
    }
}
