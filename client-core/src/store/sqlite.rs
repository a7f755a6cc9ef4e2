//! The SQLite [`ClientStore`]: one file, `umbra-client.db`, in the data directory.
//!
//! Schema: `header(id INTEGER PRIMARY KEY CHECK (id = 1), bytes BLOB)` and
//! `records(kind INTEGER, slot BLOB, sealed BLOB, PRIMARY KEY (kind, slot))`.
//! Only sealed values and opaque slots are written. The directory is created
//! 0700 and the database file 0600 before SQLite opens it (SQLite gives its
//! journal and WAL files the database file's mode). `synchronous = FULL`, so a
//! committed batch survives a power cut: the client relies on it to persist a
//! ratchet session before the ciphertext leaves. A [`Durability::WithNext`]
//! batch alone is committed under `synchronous = NORMAL`, which in WAL mode
//! appends it to the WAL without syncing; the next `FULL` commit syncs the
//! WAL file, and with it every frame before, so that batch is durable then.
//! The connection is always back at `FULL` before any other batch runs,
//! even when the `NORMAL` one failed or its future was dropped midway.
//!
//! The store holds the data directory's [`DataDirLock`] for as long as any
//! clone of it lives, so no second process opens the same file meanwhile.
//!
//! Must never: store a clear value, apply a batch outside one transaction,
//! or open the database without holding the directory's lock.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, Row, Sqlite, SqlitePool};

use super::{
    ClientStore, DataDirLock, Durability, RecordKind, StoreError, StoreFuture, StoredRecord,
    WriteOp, DEFAULT_LOCK_WAIT,
};

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "umbra-client.db";

/// A store in an SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    /// Set before the connection is switched to `synchronous = NORMAL` and
    /// cleared once it is back at `FULL`: while set, the next durable write
    /// first puts it back (a failed or cancelled deferred batch leaves it).
    relaxed: Arc<AtomicBool>,
    _lock: Arc<DataDirLock>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`, securing the
    /// directory (0700) and file (0600). Takes the directory's lock first,
    /// waiting up to [`DEFAULT_LOCK_WAIT`] for another process to let go
    /// ([`StoreError::Locked`] after that).
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let lock = DataDirLock::acquire(data_dir, DEFAULT_LOCK_WAIT, || {}).await?;
        Self::open_locked(data_dir, Arc::new(lock)).await
    }

    /// Opens the store in `data_dir` under a lock the caller already holds
    /// (it must be that directory's).
    pub async fn open_locked(data_dir: &Path, lock: Arc<DataDirLock>) -> Result<Self, StoreError> {
        if lock.dir() != data_dir {
            return Err(StoreError::Io(std::io::Error::other(format!(
                "the lock held is for {}, not {}",
                lock.dir().display(),
                data_dir.display()
            ))));
        }
        secure_dir(data_dir)?;
        let path = data_dir.join(DATABASE_FILE);
        secure_file(&path)?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        // One connection: the client is the only writer, and a single
        // connection serialises batches without SQLITE_BUSY retries.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS header (id INTEGER PRIMARY KEY CHECK (id = 1), bytes BLOB NOT NULL)",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS records (kind INTEGER NOT NULL, slot BLOB NOT NULL, \
             sealed BLOB NOT NULL, PRIMARY KEY (kind, slot)) WITHOUT ROWID",
        )
        .execute(&pool)
        .await?;
        Ok(Self {
            pool,
            path,
            relaxed: Arc::new(AtomicBool::new(false)),
            _lock: lock,
        })
    }

    /// The store's one connection, at `synchronous = FULL`: a write made on
    /// it is durable when it commits.
    async fn durable_connection(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.relaxed.load(Ordering::SeqCst) {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await?;
            self.relaxed.store(false, Ordering::SeqCst);
        }
        Ok(conn)
    }

    /// Commits `batch` under `synchronous = NORMAL` (module docs), then
    /// puts the connection back at `FULL`.
    async fn apply_deferred(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.relaxed.store(true, Ordering::SeqCst);
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        let written = write_batch(&mut conn, batch).await;
        // The batch's own outcome is the answer: a batch that committed is
        // reported committed even if the switch back fails (the vault then
        // moves its index on with it, as it must), and `relaxed` stays set
        // so the next durable write makes the switch first.
        if sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            self.relaxed.store(false, Ordering::SeqCst);
        }
        written
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(unix)]
pub(super) fn secure_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

#[cfg(unix)]
fn secure_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn secure_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir)?;
    Ok(())
}

#[cfg(not(unix))]
fn secure_file(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

impl ClientStore for SqliteStore {
    fn read_header(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT bytes FROM header WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|r| r.get::<Vec<u8>, _>(0)))
        })
    }

    fn write_header<'a>(&'a self, header: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // The header a write replaces may hold a key slot of a password
            // that must stop opening the store (a completed password
            // change): secure_delete zeroes the replaced row's bytes in its
            // page instead of leaving them in free space, and the TRUNCATE
            // checkpoint copies the new page into the database file and
            // empties the WAL, whose earlier frames still hold the old page.
            let mut conn = self.durable_connection().await?;
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *conn)
                .await?;
            sqlx::query("INSERT OR REPLACE INTO header (id, bytes) VALUES (1, ?1)")
                .bind(header)
                .execute(&mut *conn)
                .await?;
            // (busy, wal frames, checkpointed): busy means a reader kept
            // older frames alive; they are overwritten by later writes and
            // emptied at the next header write or close.
            let busy: i64 = sqlx::query_scalar("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *conn)
                .await?;
            if busy != 0 {
                tracing::warn!("the store's WAL could not be emptied after a header write");
            }
            Ok(())
        })
    }

    fn get<'a>(&'a self, kind: RecordKind, slot: &'a [u8]) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT sealed FROM records WHERE kind = ?1 AND slot = ?2")
                .bind(i64::from(kind.as_u8()))
                .bind(slot)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|r| r.get::<Vec<u8>, _>(0)))
        })
    }

    fn list<'a>(
        &'a self,
        kind: RecordKind,
        prefix: &'a [u8],
    ) -> StoreFuture<'a, Vec<StoredRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT slot, sealed FROM records WHERE kind = ?1 \
                 AND substr(slot, 1, length(?2)) = ?2 ORDER BY slot",
            )
            .bind(i64::from(kind.as_u8()))
            .bind(prefix)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| StoredRecord {
                    slot: r.get(0),
                    sealed: r.get(1),
                })
                .collect())
        })
    }

    fn apply(&self, batch: Vec<WriteOp>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.durable_connection().await?;
            write_batch(&mut conn, &batch).await
        })
    }

    fn apply_with(&self, batch: Vec<WriteOp>, durability: Durability) -> StoreFuture<'_, ()> {
        match durability {
            Durability::Now => self.apply(batch),
            Durability::WithNext => Box::pin(async move { self.apply_deferred(&batch).await }),
        }
    }

    fn erase_all(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.durable_connection().await?;
            let mut tx = conn.begin().await?;
            sqlx::query("DELETE FROM records").execute(&mut *tx).await?;
            sqlx::query("DELETE FROM header").execute(&mut *tx).await?;
            tx.commit().await?;
            // Deleted pages may still hold old sealed bytes; VACUUM rewrites the file.
            sqlx::query("VACUUM").execute(&mut *conn).await?;
            Ok(())
        })
    }
}

/// Applies `batch` on `conn` as one transaction: every operation or none.
async fn write_batch(
    conn: &mut PoolConnection<Sqlite>,
    batch: &[WriteOp],
) -> Result<(), StoreError> {
    let mut tx = conn.begin().await?;
    for op in batch {
        match op {
            WriteOp::Put { kind, slot, sealed } => {
                sqlx::query(
                    "INSERT OR REPLACE INTO records (kind, slot, sealed) VALUES (?1, ?2, ?3)",
                )
                .bind(i64::from(kind.as_u8()))
                .bind(slot.as_slice())
                .bind(sealed.as_slice())
                .execute(&mut *tx)
                .await?;
            }
            WriteOp::Delete { kind, slot } => {
                sqlx::query("DELETE FROM records WHERE kind = ?1 AND slot = ?2")
                    .bind(i64::from(kind.as_u8()))
                    .bind(slot.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replaced header (after a password change: the old password's key
    /// slot) is in no file of the data directory: not in the database's
    /// free space, not in an older WAL frame (PROTOCOL.md 12.9).
    #[tokio::test]
    async fn a_replaced_header_is_in_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let old: Vec<u8> = (0..289u32).map(|i| (i * 7 + 3) as u8).collect();
        let new: Vec<u8> = (0..157u32).map(|i| (i * 11 + 5) as u8).collect();
        store.write_header(&old).await.unwrap();
        store.write_header(&new).await.unwrap();
        assert_eq!(store.read_header().await.unwrap(), Some(new));
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(old.len()).any(|w| w == old),
                "the replaced header is still in {}",
                path.display()
            );
        }
    }

    /// `PRAGMA synchronous` of the store's one connection (2 is FULL).
    async fn synchronous(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    fn put(n: u8) -> Vec<WriteOp> {
        vec![WriteOp::Put {
            kind: RecordKind::Outbox,
            slot: vec![n],
            sealed: vec![n; 8],
        }]
    }

    #[tokio::test]
    async fn a_deferred_batch_commits_and_leaves_the_connection_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(synchronous(&store).await, 2, "opened at FULL");
        store
            .apply_with(put(1), Durability::WithNext)
            .await
            .unwrap();
        assert_eq!(synchronous(&store).await, 2, "back at FULL");
        store.apply(put(2)).await.unwrap();
        store.close().await;
        drop(store);
        // Both batches are in the file, in order, for the next process.
        let store = SqliteStore::open(dir.path()).await.unwrap();
        for n in [1, 2] {
            let got = store.get(RecordKind::Outbox, &[n]).await.unwrap();
            assert_eq!(got, Some(vec![n; 8]));
        }
    }

    /// A deferred batch whose future was dropped (or whose batch failed)
    /// between its `NORMAL` and its `FULL` leaves the connection relaxed:
    /// the next durable write must not commit that way.
    #[tokio::test]
    async fn a_durable_batch_after_a_deferred_one_cut_short_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.relaxed.store(true, Ordering::SeqCst);
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(synchronous(&store).await, 1);
        store.apply(put(3)).await.unwrap();
        assert_eq!(synchronous(&store).await, 2);
        assert!(!store.relaxed.load(Ordering::SeqCst));
    }
}
