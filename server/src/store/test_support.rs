//! Fresh, isolated databases for the store test suite, one per test.
//!
//! SQLite: a file in a new temporary directory. PostgreSQL: the workspace's
//! one PostgreSQL test helper (`umbra_test_support::PgTestDb`): a new
//! database per test, dropped when the test ends, even if it panicked, so
//! tests run in parallel without seeing each other's rows.
//!
//! Must never: decide itself whether a PostgreSQL test may skip: that rule
//! (fail in CI, a visible and counted skip elsewhere) lives in
//! umbra-test-support alone.

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use umbra_test_support::PgTestDb;

use super::postgres::PostgresStore;
use super::{open_with_limits, SharedStore, StoreLimits, DEFAULT_SQLITE_FILE};

/// One test's database.
pub struct TestDb {
    kind: Kind,
}

enum Kind {
    Sqlite(tempfile::TempDir),
    Postgres(Box<PgTestDb>),
}

impl TestDb {
    /// A new SQLite database in a fresh temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create temporary directory for SQLite test");
        Self {
            kind: Kind::Sqlite(dir),
        }
    }

    /// A new PostgreSQL database for the test named `test`, or `None` when
    /// the shared rule says skip (it has reported the skip).
    pub async fn postgres(test: &str) -> Option<Self> {
        PgTestDb::create(test).await.map(|db| Self {
            kind: Kind::Postgres(Box::new(db)),
        })
    }

    /// Whether two stores opened on this database see each other's
    /// notifications (true for PostgreSQL: they are two relay nodes).
    pub fn shares_notifications(&self) -> bool {
        matches!(self.kind, Kind::Postgres(_))
    }

    /// Connection options for this test's PostgreSQL database, for tests
    /// that inspect or disturb the server directly.
    pub fn postgres_options(&self) -> Option<PgConnectOptions> {
        match &self.kind {
            Kind::Postgres(db) => Some(db.connect_options()),
            Kind::Sqlite(_) => None,
        }
    }

    /// The SQLite database file, for tests that hold its write lock from a
    /// connection of their own.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match &self.kind {
            Kind::Sqlite(dir) => Some(dir.path().join(DEFAULT_SQLITE_FILE)),
            Kind::Postgres(_) => None,
        }
    }

    /// Runs statements on this test's database outside the store, one at a
    /// time, so a test can inject faults (e.g. a trigger that aborts a write)
    /// and check what a failed transaction left behind. Each backend gets
    /// its own dialect: `sqlite` or `postgres`.
    pub async fn execute_raw(&self, sqlite: &[&str], postgres: &[&str]) {
        match &self.kind {
            Kind::Sqlite(dir) => {
                let options = SqliteConnectOptions::new()
                    .filename(dir.path().join(DEFAULT_SQLITE_FILE))
                    .busy_timeout(std::time::Duration::from_secs(10));
                let mut conn = options.connect().await.expect("open SQLite test database");
                for statement in sqlite {
                    sqlx::query(statement)
                        .execute(&mut conn)
                        .await
                        .expect("raw SQLite statement");
                }
                conn.close().await.ok();
            }
            Kind::Postgres(db) => {
                let mut conn = db
                    .connect_options()
                    .connect()
                    .await
                    .expect("connect to PostgreSQL test database");
                for statement in postgres {
                    sqlx::query(statement)
                        .execute(&mut conn)
                        .await
                        .expect("raw PostgreSQL statement");
                }
                conn.close().await.ok();
            }
        }
    }

    /// Applies only the migrations numbered below `version`, as a relay of
    /// that schema left the database, so a test can fill it and then check
    /// what the later migrations do to its rows (`open` applies the rest).
    pub async fn migrate_before(&self, version: i64) {
        fn older(all: &sqlx::migrate::Migrator, version: i64) -> sqlx::migrate::Migrator {
            let kept: Vec<_> = all
                .migrations
                .iter()
                .filter(|m| m.version < version)
                .cloned()
                .collect();
            sqlx::migrate::Migrator {
                migrations: std::borrow::Cow::Owned(kept),
                ..sqlx::migrate::Migrator::DEFAULT
            }
        }
        match &self.kind {
            Kind::Sqlite(dir) => {
                let options = SqliteConnectOptions::new()
                    .filename(dir.path().join(DEFAULT_SQLITE_FILE))
                    .create_if_missing(true);
                let mut conn = options
                    .connect()
                    .await
                    .expect("create SQLite test database");
                older(&super::sqlite::MIGRATOR, version)
                    .run(&mut conn)
                    .await
                    .expect("older SQLite migrations");
                conn.close().await.ok();
            }
            Kind::Postgres(db) => {
                let mut conn = db
                    .connect_options()
                    .connect()
                    .await
                    .expect("connect to PostgreSQL test database");
                older(&super::postgres::MIGRATOR, version)
                    .run(&mut conn)
                    .await
                    .expect("older PostgreSQL migrations");
                conn.close().await.ok();
            }
        }
    }

    /// Opens (or reopens) the store with default limits.
    pub async fn open(&self) -> SharedStore {
        self.open_with(StoreLimits::default()).await
    }

    /// Opens (or reopens) the store with `limits`.
    pub async fn open_with(&self, limits: StoreLimits) -> SharedStore {
        match &self.kind {
            Kind::Sqlite(dir) => open_with_limits(None, dir.path(), limits)
                .await
                .expect("open SQLite store"),
            Kind::Postgres(db) => std::sync::Arc::new(
                PostgresStore::open_options(db.connect_options(), limits)
                    .await
                    .expect("open PostgreSQL store"),
            ),
        }
    }
}
