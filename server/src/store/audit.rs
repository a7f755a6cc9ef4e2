//! Counts, per table, the rows that refer to one account, over every table
//! the database's own catalogue lists (SQLite: `sqlite_master` and
//! `pragma_table_info`; PostgreSQL: `information_schema`; the two catalogue
//! queries are each backend's `dialect!(list_tables)` and
//! `dialect!(list_byte_columns)`), not over a list the store keeps. Deletion uses the store's list of account tables; this
//! audit deliberately does not, so a table added to the schema but forgotten
//! in that list shows up here as a leftover instead of passing unseen.
//!
//! A row refers to the account when any of its byte columns (SQLite `BLOB`,
//! PostgreSQL `bytea`) equals the 16-byte account id (every table that holds
//! account data keys it so). Both backends compare exactly those columns, so
//! the same schema gives the same answer on both.
//!
//! Must never: read its table or column names from anywhere but the live
//! schema, or skip a table it cannot classify (every table appears in the
//! result, with 0 when nothing refers to the account).

/// Quotes a schema identifier for interpolation: names come from the
/// catalogue, but a name with a quote in it must still be one identifier.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `SELECT COUNT(*) FROM t WHERE c1 = $1 OR c2 = $1 ...`, or `None` when the
/// table has no column to compare.
pub(crate) fn count_sql(table: &str, columns: &[String]) -> Option<String> {
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

/// Generates `rows_by_table(pool, account)` for `$db`, the one body both
/// backends' `account_rows_by_table` run.
macro_rules! impl_audit {
    ($store:ty, $db:ty) => {
        async fn rows_by_table(
            pool: &sqlx::Pool<$db>,
            account: AccountId,
        ) -> Result<BTreeMap<String, u64>, StoreError> {
            let mut conn = pool.acquire().await?;
            let tables: Vec<String> = sqlx::query_scalar(dialect!(list_tables))
                .fetch_all(&mut *conn)
                .await?;
            let mut out = BTreeMap::new();
            for table in tables {
                let columns: Vec<String> = sqlx::query_scalar(dialect!(list_byte_columns))
                    .bind(&table)
                    .fetch_all(&mut *conn)
                    .await?;
                let n = match $crate::store::audit::count_sql(&table, &columns) {
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
    };
}
pub(crate) use impl_audit;
