//! Test support shared by every umbra test suite: THE rule for tests that
//! need PostgreSQL, and the fresh database each such test runs in (this
//! module); the one test client of the relay's wire protocol
//! ([`wire_client`], with OPAQUE over it in `wire_auth`, device keys in
//! [`device_keys`], a signed-in connection in [`session`]); and the one
//! client-side OPAQUE flow ([`opaque_flow`]). Dev-only: no crate may depend
//! on it outside `[dev-dependencies]` except the e2e harness, itself a test
//! crate.
//!
//! The rule, in one place:
//! - A PostgreSQL test gets its own database, `umbra_test_<random>`, created
//!   through the admin connection in `DATABASE_URL` and dropped (`WITH
//!   (FORCE)`) when the [`PgTestDb`] is dropped, even if the test panicked.
//!   Everything goes through sqlx: no `psql` binary is needed.
//! - "In CI" means the environment variable `CI` is exactly `true` or `1`
//!   (what CI services set; see [`in_ci`]). In CI a PostgreSQL that is not
//!   configured or not usable fails the test, with a message saying how to
//!   start one.
//! - Outside CI such a test is skipped, never silently: it writes
//!   `SKIPPED: <test>: <reason>` straight to the process's stderr (the test
//!   harness captures `eprintln!` of passing tests, not the stream itself),
//!   and the test binary ends with `SKIPPED: N PostgreSQL tests did not run
//!   in this test binary (...)`, printed by an exit hook.
//!
//! Must never: let a PostgreSQL test pass without running unless it said
//! so on stderr; treat a missing tool as a missing database; block on the
//! caller's async runtime from a sync entry point; or leave a test's
//! database behind without a warning.

pub mod device_keys;
pub mod opaque_flow;
pub mod session;
mod wire_auth;
pub mod wire_client;

use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use rand::RngCore;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

/// The variable holding the PostgreSQL admin URL (a role that may
/// `CREATE DATABASE`).
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";

/// The variable that says the tests run in CI.
pub const CI_VAR: &str = "CI";

/// How long connecting to PostgreSQL may take before it counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a developer or CI should do when PostgreSQL is missing.
const HOW_TO_START: &str = "start PostgreSQL (on Debian: `pg_ctlcluster --skip-systemctl-redirect \
     $(ls /etc/postgresql) main start`) and set DATABASE_URL to a role that may CREATE DATABASE, \
     e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/test";

/// Whether the tests run in CI: `CI` is exactly `true` or `1`. Any other
/// value (unset, empty, `false`, `0`) is a developer's machine.
pub fn in_ci() -> bool {
    ci_value_means_ci(std::env::var(CI_VAR).ok().as_deref())
}

fn ci_value_means_ci(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

/// Why PostgreSQL could not be used for a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// `DATABASE_URL` is unset or empty.
    NotConfigured,
    /// `DATABASE_URL` is not a PostgreSQL URL sqlx understands.
    BadUrl(String),
    /// Connecting failed or timed out.
    Unreachable(String),
    /// Connected, but the test database could not be created.
    CannotCreate(String),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotConfigured => write!(f, "{DATABASE_URL_VAR} is not set"),
            Unavailable::BadUrl(e) => write!(f, "{DATABASE_URL_VAR} is not a usable URL: {e}"),
            Unavailable::Unreachable(e) => write!(f, "PostgreSQL is unreachable: {e}"),
            Unavailable::CannotCreate(e) => write!(f, "cannot create a test database: {e}"),
        }
    }
}

/// One test's own PostgreSQL database, dropped with this value.
pub struct PgTestDb {
    admin: PgConnectOptions,
    name: String,
    url: String,
}

impl fmt::Debug for PgTestDb {
    // The URL may carry a password: only the database name is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTestDb")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PgTestDb {
    /// A fresh database for the test called `test`, on the caller's async
    /// runtime. `None` means skipped (outside CI; the skip is reported);
    /// in CI an unavailable PostgreSQL panics.
    pub async fn create(test: &str) -> Option<PgTestDb> {
        let result = try_create().await;
        decide(test, result)
    }

    /// Like [`PgTestDb::create`], for sync callers, including sync code
    /// running inside an async runtime: the work runs on a thread with its
    /// own runtime, so the caller's runtime is never blocked on from within.
    pub fn create_blocking(test: &str) -> Option<PgTestDb> {
        let result =
            on_private_runtime(try_create()).unwrap_or_else(|e| Err(Unavailable::Unreachable(e)));
        decide(test, result)
    }

    /// Connection URL of this test's database (for a relay's
    /// `--database-url`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// sqlx connection options for this test's database.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await, and may run inside a runtime or while a test
        // unwinds: a private runtime on its own thread does the cleanup.
        let dropped = on_private_runtime(async move {
            let mut conn = connect(&admin).await.map_err(|e| e.to_string())?;
            let result = sqlx::query(&statement).execute(&mut conn).await;
            let _ = conn.close().await;
            result.map(|_| ()).map_err(|e| e.to_string())
        })
        .and_then(|r| r);
        if let Err(e) = dropped {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not drop test database {}: {e}",
                self.name
            );
        }
    }
}

/// Runs `work` to completion on a new current-thread runtime on a new
/// thread; `Err` if the runtime could not be built or the thread panicked.
fn on_private_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(work))
            .map_err(|e| format!("building a runtime: {e}"))
    })
    .join()
    .map_err(|_| "the PostgreSQL helper thread panicked".to_string())?
}

async fn connect(options: &PgConnectOptions) -> Result<PgConnection, Unavailable> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(Unavailable::Unreachable(e.to_string())),
        Err(_) => Err(Unavailable::Unreachable(format!(
            "no connection within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

async fn try_create() -> Result<PgTestDb, Unavailable> {
    let admin_url = std::env::var(DATABASE_URL_VAR).unwrap_or_default();
    if admin_url.is_empty() {
        return Err(Unavailable::NotConfigured);
    }
    let admin =
        PgConnectOptions::from_str(&admin_url).map_err(|e| Unavailable::BadUrl(e.to_string()))?;
    let mut conn = connect(&admin).await?;
    let mut suffix = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let name = format!("umbra_test_{}", hex::encode(suffix));
    let created = sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    created.map_err(|e| Unavailable::CannotCreate(e.to_string()))?;
    Ok(PgTestDb {
        url: replace_database(&admin_url, &name),
        admin,
        name,
    })
}

/// Applies the rule to a creation attempt: a database, a skip, or (in CI)
/// a panic.
fn decide(test: &str, result: Result<PgTestDb, Unavailable>) -> Option<PgTestDb> {
    match result {
        Ok(db) => Some(db),
        Err(reason) => {
            assert!(
                !in_ci(),
                "{test}: PostgreSQL is required in CI ({CI_VAR}=true or {CI_VAR}=1), but \
                 {reason}. To run it: {HOW_TO_START}"
            );
            report_skip(test, &reason);
            None
        }
    }
}

/// PostgreSQL tests of this process that were skipped.
static SKIPPED: AtomicUsize = AtomicUsize::new(0);
static EXIT_HOOK: Once = Once::new();

fn report_skip(test: &str, reason: &Unavailable) {
    SKIPPED.fetch_add(1, Ordering::SeqCst);
    EXIT_HOOK.call_once(|| {
        // SAFETY: `print_skip_count` is a plain `extern "C" fn()` that never
        // unwinds; registering it has no other precondition.
        unsafe {
            libc::atexit(print_skip_count);
        }
    });
    // Straight to the stream: the harness swallows `eprintln!` of passing
    // tests, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

/// Runs when the test binary exits (libtest ends with `process::exit`,
/// which runs atexit hooks): the count, after every test's own line.
extern "C" fn print_skip_count() {
    let count = SKIPPED.load(Ordering::SeqCst);
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "this test binary".to_string());
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {count} PostgreSQL test{} did not run in this test binary ({binary}) \
         (set {DATABASE_URL_VAR}=postgres://... to run them; {CI_VAR}=true makes this a failure)",
        if count == 1 { "" } else { "s" }
    );
}

/// `postgres://user@host:port/db?opts` with `db` replaced.
fn replace_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

#[cfg(test)]
mod tests;
