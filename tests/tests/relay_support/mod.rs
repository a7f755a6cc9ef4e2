//! What every relay suite shares: running one test body against a real
//! `umbra-relay` on each store (embedded SQLite and PostgreSQL), and reading
//! that store directly to check what the relay left at rest.
//!
//! A suite writes each test once as `async fn name(backend: Backend) ->
//! anyhow::Result<()>` and lists it in [`on_every_store!`], which makes one
//! `#[tokio::test]` per store, each bounded by [`TEST_TIMEOUT`].
//!
//! Must never: let a test run unbounded, skip PostgreSQL silently (the
//! rule in umbra-test-support prints and counts SKIPPED, and fails in CI), or write to a relay's store
//! except where a test says why (simulating the passage of time).

#![allow(dead_code)] // each suite uses a different part of this module

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use umbra_e2e::{Relay, StoreKind};
use umbra_test_support::PgTestDb;

/// Upper bound on one test, relay start-up included.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Arguments every relay under test gets: rate limits high enough that a
/// suite's own sign-ups are never throttled (rate limiting has its own tests
/// in the relay crate).
pub const BASE_ARGS: &[&str] = &[
    "--auth-per-ip-per-minute",
    "100000",
    "--auth-per-username-per-minute",
    "100000",
    "--logins-per-username-per-minute",
    "100000",
    "--bundle-fetches-per-minute",
    "100000",
];

/// Makes one `#[tokio::test]` per store for each listed test body.
#[allow(unused_macros)] // suites that run on one store only do not use it
macro_rules! on_every_store {
    ($($name:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = crate::relay_support::Backend::sqlite();
                    crate::relay_support::run_bounded(super::$name(backend)).await;
                }
            )+
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(backend) =
                        crate::relay_support::Backend::postgres(
                            concat!(module_path!(), "::", stringify!($name)),
                        )
                    else {
                        return;
                    };
                    crate::relay_support::run_bounded(super::$name(backend)).await;
                }
            )+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_every_store;

/// Runs a test body under [`TEST_TIMEOUT`], panicking with its error chain.
pub async fn run_bounded(body: impl std::future::Future<Output = anyhow::Result<()>>) {
    match tokio::time::timeout(TEST_TIMEOUT, body).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("{error:#}"),
        Err(_) => panic!("test did not finish within {TEST_TIMEOUT:?}"),
    }
}

/// Which store a test runs against, and the means to look inside it.
pub struct Backend {
    database: Option<PgTestDb>,
    /// Every relay node on one database needs the same OPAQUE key file
    /// (OPERATIONS.md, "The OPAQUE key file"): the PostgreSQL backend keeps
    /// one here for all the nodes it starts; each SQLite relay keeps its own
    /// in its data directory.
    key_dir: Option<tempfile::TempDir>,
}

impl Backend {
    /// Embedded SQLite in the relay's data directory.
    pub fn sqlite() -> Backend {
        Backend {
            database: None,
            key_dir: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` when the workspace's one
    /// PostgreSQL rule (umbra-test-support) says skip; it has reported the
    /// skip. Called from async tests: the blocking entry point does its work
    /// on its own runtime, never on the caller's.
    pub fn postgres(suite: &str) -> Option<Backend> {
        PgTestDb::create_blocking(suite).map(|db| Backend {
            database: Some(db),
            key_dir: Some(tempfile::tempdir().expect("key file directory")),
        })
    }

    /// The key file every relay this backend starts shares (PostgreSQL), or
    /// `None` when each relay keeps its own in its data directory (SQLite).
    pub fn opaque_key_file(&self) -> Option<std::path::PathBuf> {
        self.key_dir
            .as_ref()
            .map(|dir| dir.path().join("opaque-server-key"))
    }

    /// `"sqlite"` or `"postgres"`, for messages.
    pub fn name(&self) -> &'static str {
        if self.database.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// Starts a relay on this store with [`BASE_ARGS`] plus `extra_args`.
    /// Building the binary and waiting for its first line block, so this
    /// runs off the async workers.
    pub async fn start_relay(&self, extra_args: &[&str]) -> anyhow::Result<Relay> {
        let store = match &self.database {
            Some(db) => StoreKind::Postgres(db.url().to_string()),
            None => StoreKind::Sqlite,
        };
        let mut args: Vec<String> = BASE_ARGS
            .iter()
            .chain(extra_args)
            .map(|s| s.to_string())
            .collect();
        if let Some(path) = self.opaque_key_file() {
            args.push("--opaque-key-file".into());
            args.push(path.display().to_string());
        }
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Relay::start_with(store, &args)
        })
        .await
        .context("starting umbra-relay")
    }

    /// A connection to the relay's store, for inspection (and, where a test
    /// says so, for moving time forward).
    pub async fn store(&self, relay: &Relay) -> anyhow::Result<StoreView> {
        match &self.database {
            Some(db) => {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(db.url())
                    .await
                    .context("connecting to the test database")?;
                Ok(StoreView::Postgres(pool))
            }
            None => {
                let path: PathBuf = relay.data_dir().join("umbra.db");
                if !path.exists() {
                    bail!("the relay has no SQLite file at {}", path.display());
                }
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?;
                Ok(StoreView::Sqlite(pool))
            }
        }
    }
}

/// Restarts the relay gracefully (SIGTERM, then a new process on the same
/// store); the blocking wait runs off the async workers.
pub async fn restart(relay: Relay) -> anyhow::Result<Relay> {
    tokio::task::spawn_blocking(move || {
        let mut relay = relay;
        relay.restart();
        relay
    })
    .await
    .context("restarting umbra-relay")
}

/// Kills the relay (SIGKILL) and starts a new process on the same store.
pub async fn crash_and_respawn(relay: Relay) -> anyhow::Result<Relay> {
    tokio::task::spawn_blocking(move || {
        let mut relay = relay;
        relay.crash();
        // With no child left, `restart` only spawns.
        relay.restart();
        relay
    })
    .await
    .context("respawning umbra-relay")
}

/// Stops the relay and waits for it, off the async workers.
pub async fn shut_down(relay: Relay) {
    let _ = tokio::task::spawn_blocking(move || drop(relay)).await;
}

/// A column of a table in the relay's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Table name.
    pub table: String,
    /// Column name.
    pub name: String,
    /// Declared type, lower-case (`blob`, `bytea`, `text`, `integer`, ...).
    pub declared_type: String,
}

impl Column {
    /// Whether the column holds raw bytes.
    pub fn is_bytes(&self) -> bool {
        matches!(self.declared_type.as_str(), "blob" | "bytea")
    }

    /// Whether the column holds text.
    pub fn is_text(&self) -> bool {
        matches!(
            self.declared_type.as_str(),
            "text" | "character varying" | "varchar"
        )
    }
}

/// A write lock a suite holds on a relay's store, so that the relay's next
/// write to `table` waits as on a database that stopped answering:
/// PostgreSQL `LOCK TABLE table IN mode` (the other tables stay usable, so
/// the token check still reads), SQLite `BEGIN IMMEDIATE` (its one write
/// lock). Released by [`TableLock::release`], or by dropping it (the
/// connection then closes, which ends the transaction).
pub enum TableLock {
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

impl TableLock {
    /// Takes the lock; `mode` is a PostgreSQL lock mode such as
    /// `EXCLUSIVE` (reads go on) or `ACCESS EXCLUSIVE` (reads wait too).
    pub async fn take(view: &StoreView, table: &str, mode: &str) -> anyhow::Result<TableLock> {
        Ok(match view {
            StoreView::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN").execute(&mut *conn).await?;
                sqlx::query(&format!("LOCK TABLE {table} IN {mode} MODE"))
                    .execute(&mut *conn)
                    .await?;
                TableLock::Postgres(conn)
            }
            StoreView::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                TableLock::Sqlite(conn)
            }
        })
    }

    /// Rolls back and gives the connection back to its pool.
    pub async fn release(self) -> anyhow::Result<()> {
        match self {
            TableLock::Postgres(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            }
            TableLock::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            }
        }
        Ok(())
    }
}

/// A direct connection to a relay's store.
pub enum StoreView {
    /// The relay's SQLite file.
    Sqlite(SqlitePool),
    /// The relay's PostgreSQL database.
    Postgres(PgPool),
}

impl StoreView {
    /// The relay's own tables (migration bookkeeping excluded).
    pub async fn tables(&self) -> anyhow::Result<Vec<String>> {
        let names: Vec<String> = match self {
            StoreView::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
                )
                .fetch_all(pool)
                .await?
            }
            StoreView::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE' \
                 AND table_name NOT LIKE '\\_sqlx%' ORDER BY table_name",
                )
                .fetch_all(pool)
                .await?
            }
        };
        if names.is_empty() {
            bail!("the relay's store has no tables");
        }
        Ok(names)
    }

    /// Every column of `table`.
    pub async fn columns(&self, table: &str) -> anyhow::Result<Vec<Column>> {
        let rows: Vec<(String, String)> = match self {
            StoreView::Sqlite(pool) => sqlx::query("SELECT name, type FROM pragma_table_info(?1)")
                .bind(table)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
                .collect(),
            StoreView::Postgres(pool) => sqlx::query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                     WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect(),
        };
        if rows.is_empty() {
            bail!("table {table} has no columns (or does not exist)");
        }
        Ok(rows
            .into_iter()
            .map(|(name, declared_type)| Column {
                table: table.to_owned(),
                name,
                declared_type: declared_type.to_ascii_lowercase(),
            })
            .collect())
    }

    /// Rows of `column.table` whose byte column contains `needle` anywhere.
    pub async fn rows_with_bytes(&self, column: &Column, needle: &[u8]) -> anyhow::Result<i64> {
        let (table, name) = (quote(&column.table), quote(&column.name));
        let n = match self {
            StoreView::Sqlite(pool) => {
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE instr(CAST({name} AS BLOB), ?1) > 0"
                ))
                .bind(needle)
                .fetch_one(pool)
                .await?
            }
            StoreView::Postgres(pool) => {
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE position($1::bytea in {name}) > 0"
                ))
                .bind(needle)
                .fetch_one(pool)
                .await?
            }
        };
        Ok(n)
    }

    /// Rows of `column.table` whose text column equals `value`.
    pub async fn rows_with_text(&self, column: &Column, value: &str) -> anyhow::Result<i64> {
        let (table, name) = (quote(&column.table), quote(&column.name));
        let sql = match self {
            StoreView::Sqlite(_) => format!("SELECT COUNT(*) FROM {table} WHERE {name} = ?1"),
            StoreView::Postgres(_) => format!("SELECT COUNT(*) FROM {table} WHERE {name} = $1"),
        };
        let n = match self {
            StoreView::Sqlite(pool) => sqlx::query_scalar(&sql).bind(value).fetch_one(pool).await?,
            StoreView::Postgres(pool) => {
                sqlx::query_scalar(&sql).bind(value).fetch_one(pool).await?
            }
        };
        Ok(n)
    }

    /// Rows of `column.table` whose text column contains `needle` anywhere
    /// (a substring, not only the whole value).
    #[allow(dead_code)] // not every suite that includes this module scans text
    pub async fn rows_with_text_containing(
        &self,
        column: &Column,
        needle: &str,
    ) -> anyhow::Result<i64> {
        let (table, name) = (quote(&column.table), quote(&column.name));
        let n = match self {
            StoreView::Sqlite(pool) => {
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE instr({name}, ?1) > 0"
                ))
                .bind(needle)
                .fetch_one(pool)
                .await?
            }
            StoreView::Postgres(pool) => {
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE strpos({name}, $1) > 0"
                ))
                .bind(needle)
                .fetch_one(pool)
                .await?
            }
        };
        Ok(n)
    }

    /// Total rows of `table`.
    pub async fn count(&self, table: &str) -> anyhow::Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", quote(table));
        let n = match self {
            StoreView::Sqlite(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await?,
            StoreView::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await?,
        };
        Ok(n)
    }

    /// Runs `sql` with one byte-string parameter (`?1` on SQLite, `$1` on
    /// PostgreSQL: write it as `$1`, it is translated). Returns rows affected.
    pub async fn execute_with_bytes(&self, sql: &str, param: &[u8]) -> anyhow::Result<u64> {
        let affected = match self {
            StoreView::Sqlite(pool) => sqlx::query(&sql.replace("$1", "?1"))
                .bind(param)
                .execute(pool)
                .await?
                .rows_affected(),
            StoreView::Postgres(pool) => sqlx::query(sql)
                .bind(param)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(affected)
    }

    /// Closes the connection.
    pub async fn close(self) {
        match self {
            StoreView::Sqlite(pool) => pool.close().await,
            StoreView::Postgres(pool) => pool.close().await,
        }
    }
}

/// Quotes an identifier read from the schema catalogue.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A username unique within one test process (relays are per test anyway;
/// this keeps names readable in failures).
pub fn username(prefix: &str, n: usize) -> String {
    format!("{prefix}{n}")
}
