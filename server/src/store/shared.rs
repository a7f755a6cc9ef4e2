//! The one SQL implementation of every store role, generated for each
//! backend by [`impl_store!`].
//!
//! sqlx code generic over its `Database` needs a bound for every bind type and
//! every executor lifetime; a `macro_rules!` body instead expands to plain
//! monomorphic code for `Sqlite` and for `Postgres`, so both backends run the
//! same statements and the same [`rules`](super::rules) calls. What differs
//! between the backends is supplied by the backend file itself:
//!
//! - a `dialect!` macro naming the few SQL fragments that differ (row-lock
//!   clauses, which SQLite's single writer makes unnecessary, and the schema
//!   catalogue queries of the audit);
//! - inherent methods `write_tx`, `reader`, `writer` (its pools and how a
//!   write transaction begins), `bulk_statements` (lifting the request
//!   statement timeout for a bulk transaction, where there is one),
//!   and `announce_committed` (a local broadcast after commit on SQLite;
//!   nothing on PostgreSQL, whose NOTIFY is queued inside the transaction
//!   by its `write_batch`).
//! - two whole steps of a group-commit batch, named `dialect!(lock_queues)`
//!   and `dialect!(write_batch)`: the shared statements one at a time on
//!   SQLite, one statement each on PostgreSQL (`postgres_queue.rs`), since
//!   there every statement is a round trip.
//!
//! Must never: hold a business rule (those are in `rules.rs`), or contain a
//! statement only one backend runs (a dialect fragment is named, not
//! branched on).

/// Maps a unique-constraint violation to `as_error` (a concurrent writer won
/// the race that the preceding check lost), anything else to
/// [`StoreError::Database`](super::StoreError::Database).
pub(crate) fn unique_violation_as(
    error: sqlx::Error,
    as_error: super::StoreError,
) -> super::StoreError {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => as_error,
        other => other.into(),
    }
}

/// A device id as the signed 64-bit column type.
pub(crate) fn device_param(address: umbra_wire::Address) -> i64 {
    i64::from(address.device.0)
}

/// Generates the helpers every role body calls, taking `$db`'s transaction.
macro_rules! impl_helpers {
    ($db:ty) => {
        /// Whether the account exists. On PostgreSQL this takes `FOR KEY
        /// SHARE` on its row, so a concurrent `delete_account` waits for this
        /// transaction and no child row of an account being deleted is
        /// written.
        async fn account_exists(
            tx: &mut sqlx::Transaction<'_, $db>,
            account: AccountId,
        ) -> Result<bool, StoreError> {
            let row = sqlx::query(concat!(
                "SELECT 1 FROM accounts WHERE account_id = $1",
                dialect!(key_share)
            ))
            .bind(account.as_bytes().as_slice())
            .fetch_optional(&mut **tx)
            .await?;
            Ok(row.is_some())
        }

        /// [`account_exists`], but serializing transactions that enforce a
        /// per-account total (prekey cap, blob quota) without blocking
        /// enqueues, which take only the key-share lock.
        async fn lock_account_totals(
            tx: &mut sqlx::Transaction<'_, $db>,
            account: AccountId,
        ) -> Result<bool, StoreError> {
            let row = sqlx::query(concat!(
                "SELECT 1 FROM accounts WHERE account_id = $1",
                dialect!(no_key_update)
            ))
            .bind(account.as_bytes().as_slice())
            .fetch_optional(&mut **tx)
            .await?;
            Ok(row.is_some())
        }

        /// Locks `account`'s row (FOR UPDATE on PostgreSQL; the SQLite write
        /// transaction is already exclusive) and says whether its password
        /// file is still `expected`. Every writer that acts on a password
        /// proof (a password change, a login's token, a login's enrolment)
        /// takes the row first, so a change committing meanwhile is either
        /// seen here (the file differs) or waits for this transaction and
        /// then revokes what it issued with the rest. Both sides come from
        /// this database (the proof was checked against `expected`), none
        /// from the client: a plain comparison. False for an unknown account.
        async fn password_file_unchanged(
            tx: &mut sqlx::Transaction<'_, $db>,
            account: AccountId,
            expected: &PasswordFile,
        ) -> Result<bool, StoreError> {
            let current: Option<Vec<u8>> = sqlx::query_scalar(concat!(
                "SELECT password_file FROM accounts WHERE account_id = $1",
                dialect!(for_update)
            ))
            .bind(account.as_bytes().as_slice())
            .fetch_optional(&mut **tx)
            .await?;
            Ok(current.as_deref() == Some(expected.as_bytes()))
        }

        /// `sql` is a `SELECT COUNT(*) ... WHERE account_id = $1`.
        async fn count(
            tx: &mut sqlx::Transaction<'_, $db>,
            sql: &'static str,
            account: AccountId,
        ) -> Result<u64, StoreError> {
            let n: i64 = sqlx::query_scalar(sql)
                .bind(account.as_bytes().as_slice())
                .fetch_one(&mut **tx)
                .await?;
            rows::unsigned(n, "negative row count")
        }
    };
}
pub(crate) use impl_helpers;

/// Implements every store role, and [`Store`](super::Store) itself, for
/// `$store` over `$db`. Invoke once in each backend file, after its
/// `dialect!` macro.
macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        mod shared_body {
            use std::collections::BTreeMap;

            use async_trait::async_trait;
            use sqlx::Row;
            use tokio::sync::broadcast;
            use umbra_wire::{
                AccountId, Address, DeviceId, HybridBundleWire, KemPreKeyWire, PreKeyBundleWire,
                PreKeyWire, SignedPreKeyWire, Username,
            };
            use zeroize::Zeroizing;

            use super::*;
            use $crate::store::rows::{self, OPAQUE_SERVER_SETUP};
            use $crate::store::rules::{self, BlobState, QueueState};
            use $crate::store::one_time::OneTimeKind;
            use $crate::store::shared::{device_param, unique_violation_as};
            use $crate::store::{
                db_millis, db_time, db_u64, AccountRecord, AccountStore, BlobId, BlobInfo, BlobStore,
                EnqueueOutcome, KemPreKeyDirectory, KemPreKeyStock, KeyDirectory, MessageQueue, NewMessage, PasswordFile,
                PublishedKeys, QueueEvent, Seq, Store, StoreError, StoredMessage, TokenHash,
                TokenInfo, TokenStore, UnixSeconds,
            };

            $crate::store::shared::impl_helpers!($db);
            $crate::store::kt::impl_kt_helpers!($db);
            $crate::store::audit::impl_audit!($store, $db);
            $crate::store::accounts::impl_accounts!($store, $db);
            $crate::store::tokens::impl_tokens!($store, $db);
            $crate::store::one_time::impl_one_time!($db);
            $crate::store::keys::impl_keys!($store, $db);
            $crate::store::kem_keys::impl_kem_keys!($store, $db);
            $crate::store::queue_steps::impl_queue_steps!($db);
            $crate::store::queue::impl_queue!($store, $db);
            $crate::store::blobs::impl_blobs!($store, $db);
            $crate::store::backup::impl_backup!($store, $db);
            $crate::store::devices::impl_devices!($store, $db);
            $crate::store::link::impl_link!($store, $db);
            $crate::store::kt::impl_kt!($store, $db);

            #[async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    dialect!(name)
                }

                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("SELECT 1").execute(self.reader()).await?;
                    Ok(())
                }

                fn dedicated_writer(
                    &self,
                ) -> Result<Option<Box<dyn $crate::store::group_commit::DedicatedWriter>>, StoreError>
                {
                    self.open_dedicated_writer()
                }
            }
        }
    };
}
pub(crate) use impl_store;
