//! Counts, per table, the rows that refer to one account, over every table
//! the database's own catalogue lists (SQLite: `sqlite_master` and
//! `pragma_table_info`; PostgreSQL: `information_schema`), not over a list
//! the store keeps. Deletion uses the store's list of account tables; this
//! audit deliberately does not, so a table added to the schema but forgotten
//! in that list shows up here as a leftover instead of passing unseen.
//!
//! A row refers to the account when any of its byte columns equals the
//! 16-byte account id (every table that holds account data keys it so).
//!
//! Must never: read its table or column names from anywhere but the live
//! schema, or skip a table it cannot classify (every table appears in the
//! result, with 0 when nothing refers to the account).

use std::collections::BTreeMap;

use sqlx::{PgPool, SqlitePool};
use umbra_wire::AccountId;

use super::rows;
use super::StoreError;

/// Quotes a schema identifier for interpolation: names come from the
/// catalogue, but a name with a quote in it must still be one identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `SELECT COUNT(*) FROM t WHERE c1 = $1 OR c2 = $1 ...`, or `None` when the
/// table has no column to compare.
fn count_sql(table: &str, columns: &[String]) -> Option<String> {
    if columns.is_empty() {
        return None;
    }
    let condition = columns
        .iter()
        .map(|c| format!("{} = $1", quoted(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    Some(format!(
        "SELECT COUNT(*) FROM {} WHERE {condition}",
        quoted(table)
    ))
}

/// SQLite: every table but SQLite's own, every column (SQLite compares a
/// BLOB parameter with any stored value; only equal blobs match).
pub(crate) async fn sqlite_rows_by_table(
    pool: &SqlitePool,
    account: AccountId,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut conn = pool.acquire().await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                .bind(&table)
                .fetch_all(&mut *conn)
                .await?;
        let n = match count_sql(&table, &columns) {
            Some(sql) => {
                let n: i64 = sqlx::query_scalar(&sql)
                    .bind(account.as_bytes().as_slice())
                    .fetch_one(&mut *conn)
                    .await?;
                rows::unsigned(n, "negative row count")?
            }
            None => 0,
        };
        out.insert(table, n);
    }
    Ok(out)
}

/// PostgreSQL: every base table of the current schema, its `bytea` columns.
pub(crate) async fn postgres_rows_by_table(
    pool: &PgPool,
    account: AccountId,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut conn = pool.acquire().await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::TEXT FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND data_type = 'bytea' \
             ORDER BY ordinal_position",
        )
        .bind(&table)
        .fetch_all(&mut *conn)
        .await?;
        let n = match count_sql(&table, &columns) {
            Some(sql) => {
                let n: i64 = sqlx::query_scalar(&sql)
                    .bind(account.as_bytes().as_slice())
                    .fetch_one(&mut *conn)
                    .await?;
                rows::unsigned(n, "negative row count")?
            }
            None => 0,
        };
        out.insert(table, n);
    }
    Ok(out)
}
