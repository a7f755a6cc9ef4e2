//! The blobs role: encrypted attachments as opaque chunks, appended in order
//! and served until they expire.
//!
//! Must never: let a finished blob change, accept a chunk out of order or
//! over [`MAX_BLOB_CHUNK_BYTES`](super::MAX_BLOB_CHUNK_BYTES), or serve an
//! expired blob.

use async_trait::async_trait;
use umbra_wire::AccountId;

use super::{BlobId, BlobInfo, StoreError, UnixSeconds};

/// Encrypted attachment storage.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Starts a blob upload. [`StoreError::BlobQuotaExceeded`] if the owner
    /// already holds `StoreLimits::max_blobs_per_account` blobs (expired but
    /// unpurged ones included).
    async fn create_blob(
        &self,
        blob: BlobId,
        owner: AccountId,
        expires_at: UnixSeconds,
    ) -> Result<(), StoreError>;

    /// Appends chunk `index` (must be the next one, at most
    /// [`MAX_BLOB_CHUNK_BYTES`](super::MAX_BLOB_CHUNK_BYTES)) to an
    /// unfinished blob. [`StoreError::BlobQuotaExceeded`] if the owner's
    /// blobs would then hold more than `StoreLimits::max_blob_bytes_per_account`
    /// bytes; parallel uploads of one account count together.
    async fn append_blob_chunk(
        &self,
        blob: BlobId,
        index: u32,
        bytes: &[u8],
    ) -> Result<(), StoreError>;

    /// Marks an upload complete; `size` must equal the bytes appended.
    /// The blob then lives until `expires_at` (the relay's blob TTL); until
    /// now it had only the short expiry of an upload in progress, so a
    /// relay that dies mid-upload does not leave the uploader's quota held
    /// for the whole TTL.
    async fn finish_blob(
        &self,
        blob: BlobId,
        size: u64,
        expires_at: UnixSeconds,
    ) -> Result<(), StoreError>;

    /// A blob's metadata if it exists and has not expired at `now`.
    async fn blob_info(
        &self,
        blob: BlobId,
        now: UnixSeconds,
    ) -> Result<Option<BlobInfo>, StoreError>;

    /// One chunk's bytes, for streaming in index order.
    async fn read_blob_chunk(
        &self,
        blob: BlobId,
        index: u32,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes a blob and its chunks. Returns whether it existed.
    async fn delete_blob(&self, blob: BlobId) -> Result<bool, StoreError>;

    /// Deletes blobs with `expires_at <= now`, finished or not.
    async fn purge_expired_blobs(&self, now: UnixSeconds) -> Result<u64, StoreError>;
}

/// The [`BlobStore`] SQL, expanded by `impl_store!` for each backend.
macro_rules! impl_blobs {
    ($store:ty, $db:ty) => {
        /// Reads and locks a blob's write state: `(owner, state)`.
        async fn lock_blob(
            tx: &mut sqlx::Transaction<'_, $db>,
            blob: BlobId,
        ) -> Result<Option<(Vec<u8>, BlobState)>, StoreError> {
            let row = sqlx::query(concat!(
                "SELECT account_id, chunk_count, stored_bytes, size FROM blobs WHERE blob_id = $1",
                dialect!(for_update)
            ))
            .bind(blob.0.as_slice())
            .fetch_optional(&mut **tx)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let size: Option<i64> = row.try_get(3)?;
            Ok(Some((
                row.try_get(0)?,
                BlobState {
                    chunk_count: rows::chunk_count(row.try_get(1)?)?,
                    stored_bytes: rows::unsigned(row.try_get(2)?, "negative blob size")?,
                    finished: size.is_some(),
                },
            )))
        }

        #[async_trait]
        impl BlobStore for $store {
            async fn create_blob(
                &self,
                blob: BlobId,
                owner: AccountId,
                expires_at: UnixSeconds,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                // Serializes with the account's other uploads, so two
                // parallel creations cannot both take the last slot.
                if !lock_account_totals(&mut tx, owner).await? {
                    return Err(StoreError::UnknownAccount);
                }
                let held = count(
                    &mut tx,
                    "SELECT COUNT(*) FROM blobs WHERE account_id = $1",
                    owner,
                )
                .await?;
                rules::blob_count_quota(held, self.limits.max_blobs_per_account)?;
                let done = sqlx::query(
                    "INSERT INTO blobs (account_id, blob_id, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(owner.as_bytes().as_slice())
                .bind(blob.0.as_slice())
                .bind(db_time(expires_at))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::BlobExists);
                }
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(())
            }

            async fn append_blob_chunk(
                &self,
                blob: BlobId,
                index: u32,
                bytes: &[u8],
            ) -> Result<(), StoreError> {
                rules::chunk_size(bytes.len())?;
                let mut tx = self.write_tx().await?;
                // The owner's account row first (every writer locks it
                // first, so this cannot deadlock with a deletion), which
                // also serializes the account's parallel uploads for the
                // byte quota; a blob's owner never changes.
                let owner: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT account_id FROM blobs WHERE blob_id = $1")
                        .bind(blob.0.as_slice())
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(owner) = owner else {
                    return Err(StoreError::BlobNotWritable);
                };
                let owner_id = rows::account_id(&owner)?;
                if !lock_account_totals(&mut tx, owner_id).await? {
                    return Err(StoreError::BlobNotWritable);
                }
                let found = lock_blob(&mut tx, blob).await?;
                rules::append(found.map(|(_, state)| state), index)?;
                let held = count(
                    &mut tx,
                    "SELECT CAST(COALESCE(SUM(stored_bytes), 0) AS BIGINT) FROM blobs \
                     WHERE account_id = $1",
                    owner_id,
                )
                .await?;
                rules::blob_bytes_quota(
                    held,
                    bytes.len() as u64,
                    self.limits.max_blob_bytes_per_account,
                )?;
                sqlx::query(
                    "INSERT INTO blob_chunks (account_id, blob_id, chunk_index, bytes) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(owner.as_slice())
                .bind(blob.0.as_slice())
                .bind(i64::from(index))
                .bind(bytes)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE blobs SET chunk_count = chunk_count + 1, \
                     stored_bytes = stored_bytes + $2 WHERE blob_id = $1",
                )
                .bind(blob.0.as_slice())
                .bind(db_u64(bytes.len() as u64))
                .execute(&mut *tx)
                .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(())
            }

            async fn finish_blob(
                &self,
                blob: BlobId,
                size: u64,
                expires_at: UnixSeconds,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                let found = lock_blob(&mut tx, blob).await?;
                rules::finish(found.map(|(_, state)| state), size)?;
                sqlx::query(
                    "UPDATE blobs SET size = stored_bytes, expires_at = $2 WHERE blob_id = $1",
                )
                .bind(blob.0.as_slice())
                .bind(db_time(expires_at))
                .execute(&mut *tx)
                    .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(())
            }

            async fn blob_info(
                &self,
                blob: BlobId,
                now: UnixSeconds,
            ) -> Result<Option<BlobInfo>, StoreError> {
                let row = sqlx::query(
                    "SELECT account_id, chunk_count, size, expires_at FROM blobs \
                     WHERE blob_id = $1 AND expires_at > $2",
                )
                .bind(blob.0.as_slice())
                .bind(db_time(now))
                .fetch_optional(self.reader())
                .await?;
                let Some(row) = row else { return Ok(None) };
                let owner: Vec<u8> = row.try_get(0)?;
                let size: Option<i64> = row.try_get(2)?;
                Ok(Some(BlobInfo {
                    owner: rows::account_id(&owner)?,
                    chunk_count: rows::chunk_count(row.try_get(1)?)?,
                    size: size
                        .map(|s| rows::unsigned(s, "negative blob size"))
                        .transpose()?,
                    expires_at: rows::unix(row.try_get(3)?)?,
                }))
            }

            async fn read_blob_chunk(
                &self,
                blob: BlobId,
                index: u32,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT bytes FROM blob_chunks WHERE blob_id = $1 AND chunk_index = $2",
                )
                .bind(blob.0.as_slice())
                .bind(i64::from(index))
                .fetch_optional(self.reader())
                .await?)
            }

            async fn delete_blob(&self, blob: BlobId) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM blob_chunks WHERE blob_id = $1")
                    .bind(blob.0.as_slice())
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("DELETE FROM blobs WHERE blob_id = $1")
                    .bind(blob.0.as_slice())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(done.rows_affected() > 0)
            }

            async fn purge_expired_blobs(&self, now: UnixSeconds) -> Result<u64, StoreError> {
                // A few blobs per transaction (a blob is up to thousands of
                // chunk rows), so no statement outlasts the request
                // statement timeout and no transaction holds the write
                // lock for long.
                let mut purged = 0;
                loop {
                    let mut tx = self.write_tx().await?;
                    let ids: Vec<Vec<u8>> = sqlx::query_scalar(
                        "SELECT blob_id FROM blobs WHERE expires_at <= $1 ORDER BY blob_id LIMIT $2",
                    )
                    .bind(db_time(now))
                    .bind($crate::store::limits::PURGE_BATCH_BLOBS)
                    .fetch_all(&mut *tx)
                    .await?;
                    for id in &ids {
                        sqlx::query("DELETE FROM blob_chunks WHERE blob_id = $1")
                            .bind(id.as_slice())
                            .execute(&mut *tx)
                            .await?;
                        let done = sqlx::query("DELETE FROM blobs WHERE blob_id = $1")
                            .bind(id.as_slice())
                            .execute(&mut *tx)
                            .await?;
                        purged += done.rows_affected();
                    }
                    tx.commit().await.map_err(StoreError::from_commit)?;
                    if ids.len() < $crate::store::limits::PURGE_BATCH_BLOBS as usize {
                        return Ok(purged);
                    }
                }
            }
        }
    };
}
pub(crate) use impl_blobs;
