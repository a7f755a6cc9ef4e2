//! Choosing and opening a backend from the relay's configuration.
//!
//! No URL means the embedded SQLite file `<data-dir>/umbra.db`;
//! `postgres://`/`postgresql://` means PostgreSQL; `sqlite:` means SQLite at
//! that URL. Opening always applies pending migrations first.
//!
//! Must never: silently fall back to another backend than the one named.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::sqlite::SqliteConnectOptions;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{SharedStore, StoreError, StoreLimits};

/// The SQLite database file inside the data directory.
pub const DEFAULT_SQLITE_FILE: &str = "umbra.db";

enum Target<'a> {
    SqliteFile(std::path::PathBuf),
    SqliteUrl(&'a str),
    Postgres(&'a str),
}

fn target<'a>(database_url: Option<&'a str>, data_dir: &Path) -> Result<Target<'a>, StoreError> {
    match database_url {
        None => Ok(Target::SqliteFile(data_dir.join(DEFAULT_SQLITE_FILE))),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Target::Postgres(url))
        }
        Some(url) if url.starts_with("sqlite:") => Ok(Target::SqliteUrl(url)),
        Some(_) => Err(StoreError::UnsupportedUrl),
    }
}

/// Creates the data directory if missing, readable by the relay's user only
/// (it holds password files and the OPAQUE server setup). An existing
/// directory's permissions are the operator's choice and left alone.
fn prepare_data_dir(data_dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(data_dir)?;
    Ok(())
}

/// Opens the store with default [`StoreLimits`].
pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<SharedStore, StoreError> {
    open_with_limits(database_url, data_dir, StoreLimits::default()).await
}

/// Opens the store named by `database_url` (or SQLite in `data_dir`),
/// applies migrations, and enforces `limits`.
pub async fn open_with_limits(
    database_url: Option<&str>,
    data_dir: &Path,
    limits: StoreLimits,
) -> Result<SharedStore, StoreError> {
    Ok(match target(database_url, data_dir)? {
        Target::SqliteFile(path) => {
            prepare_data_dir(data_dir)?;
            Arc::new(SqliteStore::open_file(&path, limits).await?)
        }
        Target::SqliteUrl(url) => Arc::new(SqliteStore::open_url(url, limits).await?),
        Target::Postgres(url) => Arc::new(PostgresStore::open(url, limits).await?),
    })
}

/// Applies pending migrations and returns (for `umbra-relay migrate`).
pub async fn migrate_only(database_url: Option<&str>, data_dir: &Path) -> Result<(), StoreError> {
    match target(database_url, data_dir)? {
        Target::SqliteFile(path) => {
            prepare_data_dir(data_dir)?;
            SqliteStore::migrate_options(SqliteConnectOptions::new().filename(path)).await
        }
        Target::SqliteUrl(url) => {
            SqliteStore::migrate_options(SqliteConnectOptions::from_str(url)?).await
        }
        Target::Postgres(url) => PostgresStore::migrate_url(url).await,
    }
}
