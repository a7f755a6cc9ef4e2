//! The tokens role: SHA-256 hashes of session tokens, their owners and
//! expiry.
//!
//! Must never: see or store a raw token, or call a token valid at or after
//! its expiry.

use async_trait::async_trait;
use umbra_wire::{AccountId, Address};

use super::{StoreError, TokenHash, TokenInfo, TokenStatus, UnixSeconds};

/// Session tokens, by hash only.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Records a token hash for a device until `expires_at`.
    async fn insert_token(
        &self,
        token_hash: &TokenHash,
        owner: Address,
        expires_at: UnixSeconds,
    ) -> Result<(), StoreError>;

    /// The owner and expiry of a stored token hash (expired but unpurged
    /// included), or `None` if it was never issued, was revoked, or purged.
    /// A live connection uses the expiry to close itself when it passes.
    async fn token_info(&self, token_hash: &TokenHash) -> Result<Option<TokenInfo>, StoreError>;

    /// [`TokenStore::token_info`] of several hashes, one answer per hash in
    /// order, in one statement per `sql_lists::MAX_IN` hashes (the group
    /// committer's re-check of a batch's requests).
    async fn token_infos(
        &self,
        token_hashes: &[TokenHash],
    ) -> Result<Vec<Option<TokenInfo>>, StoreError>;

    /// What the store knows about a token hash at `now`: valid (it exists
    /// and `now < expires_at`), expired (it exists but `expires_at <= now`
    /// and has not been purged yet), or unknown (never issued, revoked, or
    /// purged).
    async fn token_status(
        &self,
        token_hash: &TokenHash,
        now: UnixSeconds,
    ) -> Result<TokenStatus, StoreError> {
        Ok(match self.token_info(token_hash).await? {
            Some(info) => super::rules::token_status(info, now),
            None => TokenStatus::Unknown,
        })
    }

    /// Who a token belongs to, if it exists and `now < expires_at`.
    async fn lookup_token(
        &self,
        token_hash: &TokenHash,
        now: UnixSeconds,
    ) -> Result<Option<Address>, StoreError> {
        Ok(match self.token_status(token_hash, now).await? {
            TokenStatus::Valid(owner) => Some(owner),
            TokenStatus::Expired(_) | TokenStatus::Unknown => None,
        })
    }

    /// Revokes one token (logout). Returns whether it existed.
    async fn delete_token(&self, token_hash: &TokenHash) -> Result<bool, StoreError>;

    /// Revokes every token of an account (log out everywhere).
    async fn delete_tokens_for_account(&self, account: AccountId) -> Result<u64, StoreError>;

    /// Deletes tokens with `expires_at <= cutoff`. The relay passes a
    /// cutoff some time in the past, so a recently expired token is still
    /// recognised as expired (not unknown) for a while.
    async fn purge_expired_tokens(&self, cutoff: UnixSeconds) -> Result<u64, StoreError>;
}

/// The [`TokenStore`] SQL, expanded by `impl_store!` for each backend.
macro_rules! impl_tokens {
    ($store:ty, $db:ty) => {
        /// The owner and expiry of each hash (one answer per hash, in
        /// order), read in `tx` and, on PostgreSQL, locked `FOR KEY SHARE`
        /// until it ends, so a revocation's `DELETE` waits for it (SQLite:
        /// the transaction holds the write lock already). The group
        /// committer's re-check (`batch`).
        async fn lock_token_infos(
            tx: &mut sqlx::Transaction<'_, $db>,
            token_hashes: &[TokenHash],
        ) -> Result<Vec<Option<TokenInfo>>, StoreError> {
            use std::collections::HashMap;
            use $crate::store::sql_lists::{in_list_len, list, MAX_IN};
            let mut sorted: Vec<&TokenHash> = token_hashes.iter().collect();
            sorted.sort_unstable();
            sorted.dedup();
            let mut found: HashMap<Vec<u8>, TokenInfo> = HashMap::new();
            for chunk in sorted.chunks(MAX_IN) {
                let n = in_list_len(chunk.len());
                let sql = format!(
                    "SELECT token_hash, account_id, device_id, expires_at FROM tokens \
                     WHERE token_hash IN ({}) ORDER BY token_hash{}",
                    list(1, n),
                    dialect!(key_share)
                );
                let mut query = sqlx::query(&sql);
                for i in 0..n {
                    query = query.bind(chunk[i.min(chunk.len() - 1)].as_slice());
                }
                for row in query.fetch_all(&mut **tx).await? {
                    let account: Vec<u8> = row.try_get(1)?;
                    let info = TokenInfo {
                        owner: rows::address(&account, row.try_get(2)?)?,
                        expires_at: rows::unix(row.try_get(3)?)?,
                    };
                    found.insert(row.try_get(0)?, info);
                }
            }
            Ok(token_hashes
                .iter()
                .map(|hash| found.get(hash.as_slice()).copied())
                .collect())
        }

        #[async_trait]
        impl TokenStore for $store {
            async fn insert_token(
                &self,
                token_hash: &TokenHash,
                owner: Address,
                expires_at: UnixSeconds,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                if !account_exists(&mut tx, owner.account).await? {
                    return Err(StoreError::UnknownAccount);
                }
                sqlx::query(
                    "INSERT INTO tokens (account_id, token_hash, device_id, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(owner.account.as_bytes().as_slice())
                .bind(token_hash.as_slice())
                .bind(device_param(owner))
                .bind(db_time(expires_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(())
            }

            async fn token_infos(
                &self,
                token_hashes: &[TokenHash],
            ) -> Result<Vec<Option<TokenInfo>>, StoreError> {
                use std::collections::HashMap;
                use $crate::store::sql_lists::{in_list_len, list, MAX_IN};
                let mut found: HashMap<Vec<u8>, TokenInfo> = HashMap::new();
                for chunk in token_hashes.chunks(MAX_IN) {
                    let n = in_list_len(chunk.len());
                    let sql = format!(
                        "SELECT token_hash, account_id, device_id, expires_at FROM tokens \
                         WHERE token_hash IN ({})",
                        list(1, n)
                    );
                    let mut query = sqlx::query(&sql);
                    for i in 0..n {
                        query = query.bind(chunk[i.min(chunk.len() - 1)].as_slice());
                    }
                    for row in query.fetch_all(self.reader()).await? {
                        let account: Vec<u8> = row.try_get(1)?;
                        let info = TokenInfo {
                            owner: rows::address(&account, row.try_get(2)?)?,
                            expires_at: rows::unix(row.try_get(3)?)?,
                        };
                        found.insert(row.try_get(0)?, info);
                    }
                }
                Ok(token_hashes
                    .iter()
                    .map(|hash| found.get(hash.as_slice()).copied())
                    .collect())
            }

            async fn token_info(
                &self,
                token_hash: &TokenHash,
            ) -> Result<Option<TokenInfo>, StoreError> {
                let row = sqlx::query(
                    "SELECT account_id, device_id, expires_at FROM tokens WHERE token_hash = $1",
                )
                .bind(token_hash.as_slice())
                .fetch_optional(self.reader())
                .await?;
                let Some(row) = row else { return Ok(None) };
                let account: Vec<u8> = row.try_get(0)?;
                Ok(Some(TokenInfo {
                    owner: rows::address(&account, row.try_get(1)?)?,
                    expires_at: rows::unix(row.try_get(2)?)?,
                }))
            }

            async fn delete_token(&self, token_hash: &TokenHash) -> Result<bool, StoreError> {
                // One statement, its own commit: a lost connection leaves
                // the outcome unknown (StoreError::from_autocommit).
                let done = sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
                    .bind(token_hash.as_slice())
                    .execute(self.writer())
                    .await
                    .map_err(StoreError::from_autocommit)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_tokens_for_account(
                &self,
                account: AccountId,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM tokens WHERE account_id = $1")
                    .bind(account.as_bytes().as_slice())
                    .execute(self.writer())
                    .await
                    .map_err(StoreError::from_autocommit)?;
                Ok(done.rows_affected())
            }

            async fn purge_expired_tokens(&self, cutoff: UnixSeconds) -> Result<u64, StoreError> {
                // In batches, as `purge_expired_messages`.
                let mut purged = 0;
                loop {
                    let done = sqlx::query(
                        "DELETE FROM tokens WHERE (account_id, token_hash) IN \
                         (SELECT account_id, token_hash FROM tokens WHERE expires_at <= $1 LIMIT $2)",
                    )
                    .bind(db_time(cutoff))
                    .bind($crate::store::limits::PURGE_BATCH_ROWS)
                    .execute(self.writer())
                    .await?;
                    purged += done.rows_affected();
                    if done.rows_affected() < $crate::store::limits::PURGE_BATCH_ROWS as u64 {
                        return Ok(purged);
                    }
                }
            }
        }
    };
}
pub(crate) use impl_tokens;
