//! The backups role: one sealed account backup per account (docs/PROTOCOL.md
//! §13, §11.13), replaced only by one with a greater `seq`.
//!
//! The relay cannot open a backup; it keeps the bytes, the `seq` the client
//! put in the clear, and when they were written. [`BackupStore::put_backup`]
//! is a compare-and-swap on `seq` in one statement, so two devices of one
//! account racing never overwrite a newer backup with an older one.
//!
//! Must never: replace a backup with one whose `seq` is not greater (an
//! equal `seq` with identical bytes is a repeat, answered as stored), keep a
//! backup of a deleted account, or interpret the bytes.

use async_trait::async_trait;
use umbra_wire::AccountId;

use super::{StoreError, UnixSeconds};

/// What [`BackupStore::put_backup`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupPut {
    /// The backup is now the account's (there was none, or an older one).
    Stored,
    /// The very same bytes were already stored under this `seq` (a retried
    /// upload); nothing changed.
    Repeated,
    /// Refused: the stored backup's `seq` is this one or greater.
    Stale {
        /// The `seq` of the backup that stays.
        stored_seq: u64,
    },
}

/// An account's stored backup.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredBackup {
    /// The `seq` from its header.
    pub seq: u64,
    /// The sealed bytes, exactly as uploaded.
    pub bytes: Vec<u8>,
    /// When it was stored.
    pub updated_at: UnixSeconds,
}

impl std::fmt::Debug for StoredBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredBackup")
            .field("seq", &self.seq)
            .field("len", &self.bytes.len())
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Sealed account backups.
#[async_trait]
pub trait BackupStore: Send + Sync + 'static {
    /// Stores `sealed` (whose header says `seq`, at most `i64::MAX`) as
    /// `account`'s backup if it has none or one with a smaller `seq`.
    /// [`StoreError::UnknownAccount`] if the account does not exist.
    async fn put_backup(
        &self,
        account: AccountId,
        seq: u64,
        sealed: &[u8],
        now: UnixSeconds,
    ) -> Result<BackupPut, StoreError>;

    /// The stored backup's `seq` and length in bytes, without reading it.
    async fn backup_size(&self, account: AccountId) -> Result<Option<(u64, u64)>, StoreError>;

    /// The stored backup, if any.
    async fn get_backup(&self, account: AccountId) -> Result<Option<StoredBackup>, StoreError>;

    /// Deletes the account's backup; whether there was one.
    async fn delete_backup(&self, account: AccountId) -> Result<bool, StoreError>;
}

/// The [`BackupStore`] SQL, expanded by `impl_store!` for each backend.
macro_rules! impl_backup {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl $crate::store::BackupStore for $store {
            async fn put_backup(
                &self,
                account: AccountId,
                seq: u64,
                sealed: &[u8],
                now: UnixSeconds,
            ) -> Result<$crate::store::BackupPut, StoreError> {
                use $crate::store::BackupPut;
                let mut tx = self.write_tx().await?;
                // Key-share lock on the account row: a concurrent deletion
                // waits, and no backup is written for a deleted account.
                if !account_exists(&mut tx, account).await? {
                    return Err(StoreError::UnknownAccount);
                }
                let done = sqlx::query(
                    "INSERT INTO account_backups (account_id, seq, bytes, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account_id) DO UPDATE SET seq = excluded.seq, \
                     bytes = excluded.bytes, updated_at = excluded.updated_at \
                     WHERE account_backups.seq < excluded.seq",
                )
                .bind(account.as_bytes().as_slice())
                .bind(db_u64(seq))
                .bind(sealed)
                .bind(db_time(now))
                .execute(&mut *tx)
                .await?;
                let outcome = if done.rows_affected() > 0 {
                    BackupPut::Stored
                } else {
                    // The row exists with a seq >= ours (the upsert saw it
                    // under the same lock and the transaction still holds it).
                    let stored: i64 =
                        sqlx::query_scalar("SELECT seq FROM account_backups WHERE account_id = $1")
                            .bind(account.as_bytes().as_slice())
                            .fetch_one(&mut *tx)
                            .await?;
                    let stored_seq = rows::unsigned(stored, "negative backup seq")?;
                    let same: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM account_backups \
                         WHERE account_id = $1 AND seq = $2 AND bytes = $3",
                    )
                    .bind(account.as_bytes().as_slice())
                    .bind(db_u64(seq))
                    .bind(sealed)
                    .fetch_one(&mut *tx)
                    .await?;
                    if same > 0 {
                        BackupPut::Repeated
                    } else {
                        BackupPut::Stale { stored_seq }
                    }
                };
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(outcome)
            }

            async fn backup_size(
                &self,
                account: AccountId,
            ) -> Result<Option<(u64, u64)>, StoreError> {
                let row = sqlx::query(
                    "SELECT seq, CAST(length(bytes) AS BIGINT) FROM account_backups \
                     WHERE account_id = $1",
                )
                .bind(account.as_bytes().as_slice())
                .fetch_optional(self.reader())
                .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some((
                    rows::unsigned(row.try_get(0)?, "negative backup seq")?,
                    rows::unsigned(row.try_get(1)?, "negative backup length")?,
                )))
            }

            async fn get_backup(
                &self,
                account: AccountId,
            ) -> Result<Option<$crate::store::StoredBackup>, StoreError> {
                let row = sqlx::query(
                    "SELECT seq, bytes, updated_at FROM account_backups WHERE account_id = $1",
                )
                .bind(account.as_bytes().as_slice())
                .fetch_optional(self.reader())
                .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some($crate::store::StoredBackup {
                    seq: rows::unsigned(row.try_get(0)?, "negative backup seq")?,
                    bytes: row.try_get(1)?,
                    updated_at: rows::unix(row.try_get(2)?)?,
                }))
            }

            async fn delete_backup(&self, account: AccountId) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM account_backups WHERE account_id = $1")
                    .bind(account.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}
pub(crate) use impl_backup;
