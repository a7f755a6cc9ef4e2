//! Fresh, isolated databases for the store test suite, one per test.
//!
//! SQLite: a file in a new temporary directory. PostgreSQL: a new database
//! `umbra_t_<random>` created through `DATABASE_URL` (the admin connection)
//! and dropped when the test ends, even if it panicked, so tests run in
//! parallel without seeing each other's rows.
//!
//! Must never: pass a PostgreSQL test silently when the server is missing:
//! with `CI=true` that is a failure; otherwise the skip is printed loudly.

use std::io::Write;
use std::str::FromStr;

use rand::RngCore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::postgres::PostgresStore;
use super::{open_with_limits, SharedStore, StoreLimits, DEFAULT_SQLITE_FILE};

/// The PostgreSQL admin URL the suite reads.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";

/// One test's database.
pub struct TestDb {
    kind: Kind,
}

enum Kind {
    Sqlite(tempfile::TempDir),
    Postgres {
        admin: Box<PgConnectOptions>,
        name: String,
    },
}

impl TestDb {
    /// A new SQLite database in a fresh temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create temporary directory for SQLite test");
        Self {
            kind: Kind::Sqlite(dir),
        }
    }

    /// A new PostgreSQL database, or `None` (after a loud notice) when
    /// PostgreSQL is not configured or reachable outside CI.
    pub async fn postgres() -> Option<Self> {
        let admin = match admin_options().await {
            Ok(admin) => admin,
            Err(reason) => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                assert!(
                    !ci,
                    "PostgreSQL store tests need a reachable server in CI \
                     (set {DATABASE_URL_VAR}): {reason}"
                );
                // Straight to the process's stderr: the test harness captures
                // `eprintln!` of passing tests, and a skip must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SKIPPED: PostgreSQL not reachable ({reason}); \
                     set {DATABASE_URL_VAR}=postgres://... to run the PostgreSQL store tests ***"
                );
                return None;
            }
        };
        let mut suffix = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        let name = format!("umbra_t_{}", hex::encode(suffix));
        let mut conn = admin
            .connect()
            .await
            .expect("connect to PostgreSQL admin database");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        Some(Self {
            kind: Kind::Postgres {
                admin: Box::new(admin),
                name,
            },
        })
    }

    /// Whether two stores opened on this database see each other's
    /// notifications (true for PostgreSQL: they are two relay nodes).
    pub fn shares_notifications(&self) -> bool {
        matches!(self.kind, Kind::Postgres { .. })
    }

    /// Connection options for this test's PostgreSQL database, for tests
    /// that inspect or disturb the server directly.
    pub fn postgres_options(&self) -> Option<PgConnectOptions> {
        match &self.kind {
            Kind::Postgres { admin, name } => Some((**admin).clone().database(name)),
            Kind::Sqlite(_) => None,
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
            Kind::Postgres { admin, name } => {
                let mut conn = (**admin)
                    .clone()
                    .database(name)
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
            Kind::Postgres { admin, name } => std::sync::Arc::new(
                PostgresStore::open_options((**admin).clone().database(name), limits)
                    .await
                    .expect("open PostgreSQL store"),
            ),
        }
    }
}

async fn admin_options() -> Result<PgConnectOptions, String> {
    let url = std::env::var(DATABASE_URL_VAR).map_err(|_| format!("{DATABASE_URL_VAR} unset"))?;
    let options = PgConnectOptions::from_str(&url).map_err(|e| e.to_string())?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options.clone())
        .await
        .map_err(|e| e.to_string())?;
    pool.close().await;
    Ok(options)
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Kind::Postgres { admin, name } = &self.kind else {
            return;
        };
        let admin = (**admin).clone();
        let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        // Drop cannot await, and may run inside a runtime or while a test
        // unwinds: a private runtime on its own thread does the cleanup.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut conn = admin.connect().await.ok()?;
                sqlx::query(&statement).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        });
        if cleanup.join().ok().flatten().is_none() {
            eprintln!("warning: could not drop test database {name}");
        }
    }
}
