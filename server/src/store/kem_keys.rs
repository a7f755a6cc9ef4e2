//! The key directory's ML-KEM-768 prekeys (docs/PROTOCOL.md 3.9, 11.8):
//! each device's signed one-time KEM prekeys and its signed last-resort KEM
//! prekey, and the hybrid bundle that hands them out beside the X25519 ones.
//!
//! The store treats a KEM key as opaque bytes; the relay checked its length
//! and its signature under the identity it passes in (`crate::directory`).
//!
//! Must never: store a KEM prekey beside an identity other than the one its
//! signature was checked under, hand one one-time KEM prekey to two
//! claimers (nor store again an id it stored before, `one_time.rs`), or
//! claim it outside the transaction that claims the X25519
//! one-time prekey of the same bundle.

use async_trait::async_trait;
use umbra_wire::{Address, HybridBundleWire, KemPreKeyWire};

use super::{KemPreKeyStock, StoreError};

/// The directory of ML-KEM prekeys.
#[async_trait]
pub trait KemPreKeyDirectory: Send + Sync + 'static {
    /// Stores a device's KEM prekeys in ONE transaction. `identity` is the
    /// identity the caller verified every signature under: unless the
    /// device publishes exactly it at this moment (read under the account
    /// row lock `put_keys` takes, so a new identity cannot be published
    /// between the check and the write), nothing is stored and the answer
    /// is [`StoreError::KemPreKeyIdentityChanged`]. `last_resort`, if
    /// given, replaces the stored one. One-time keys are added as
    /// [`KeyDirectory::add_one_time_prekeys`](super::KeyDirectory::add_one_time_prekeys)
    /// adds X25519 ones: an id at or below the device's KEM mark is not
    /// stored (still stored with the same key: a retry; no longer stored:
    /// claimed, never to be handed out again), still stored with another
    /// key the whole upload is refused with
    /// [`StoreError::PreKeyIdConflict`]; past the per-account cap
    /// (`StoreLimits::max_kem_one_time_prekeys_per_account`, all devices
    /// together) with [`StoreError::TooManyPreKeys`].
    /// [`StoreError::UnknownAccount`] if the account does not exist.
    async fn put_kem_prekeys(
        &self,
        device: Address,
        identity: &[u8],
        last_resort: Option<&KemPreKeyWire>,
        one_time: &[KemPreKeyWire],
    ) -> Result<KemPreKeyStock, StoreError>;

    /// What the device holds now. Changes nothing.
    async fn kem_prekey_stock(&self, device: Address) -> Result<KemPreKeyStock, StoreError>;

    /// [`KeyDirectory::claim_bundle`](super::KeyDirectory::claim_bundle)
    /// and, in the same transaction, one one-time KEM prekey removed
    /// (concurrent claimers never receive the same one) and the last-resort
    /// KEM prekey. Either KEM key is `None` when the device has none (the
    /// initiator decides what a bundle without one is worth). `None` if
    /// the device has not published an identity and a signed prekey.
    async fn claim_hybrid_bundle(
        &self,
        device: Address,
    ) -> Result<Option<HybridBundleWire>, StoreError>;
}

/// The [`KemPreKeyDirectory`] SQL, expanded by `impl_store!` for each
/// backend, after `impl_keys!` (whose `claim_classical` it calls).
macro_rules! impl_kem_keys {
    ($store:ty, $db:ty) => {
        /// Reads a `(key_id, created_at, public_key, signature)` row.
        fn kem_prekey_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> Result<KemPreKeyWire, StoreError> {
            Ok(KemPreKeyWire {
                id: rows::key_id(row.try_get(0)?)?,
                created_at: rows::unix(row.try_get(1)?)?,
                key: rows::kem_public_key(row.try_get::<Vec<u8>, _>(2)?)?,
                signature: rows::signature(&row.try_get::<Vec<u8>, _>(3)?)?,
            })
        }

        /// The device's KEM prekey counts, in one statement.
        async fn kem_stock<'e, E>(
            executor: E,
            device: Address,
        ) -> Result<KemPreKeyStock, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let (one_time, last_resort): (i64, i64) = sqlx::query_as(
                "SELECT \
                   (SELECT COUNT(*) FROM kem_one_time_prekeys \
                    WHERE account_id = $1 AND device_id = $2), \
                   (SELECT COUNT(*) FROM kem_last_resort_prekeys \
                    WHERE account_id = $1 AND device_id = $2)",
            )
            .bind(device.account.as_bytes().as_slice())
            .bind(device_param(device))
            .fetch_one(executor)
            .await?;
            Ok(KemPreKeyStock {
                one_time: rows::unsigned(one_time, "negative row count")?,
                last_resort: last_resort > 0,
            })
        }

        #[async_trait]
        impl KemPreKeyDirectory for $store {
            async fn put_kem_prekeys(
                &self,
                device: Address,
                identity: &[u8],
                last_resort: Option<&KemPreKeyWire>,
                one_time: &[KemPreKeyWire],
            ) -> Result<KemPreKeyStock, StoreError> {
                let account = device.account.as_bytes().as_slice();
                let mut tx = self.write_tx().await?;
                // The lock PublishKeys takes too: the identity read next
                // cannot change before this transaction ends.
                if !lock_account_totals(&mut tx, device.account).await? {
                    return Err(StoreError::UnknownAccount);
                }
                let published: Option<Vec<u8>> = sqlx::query_scalar(
                    "SELECT identity FROM identity_keys WHERE account_id = $1 AND device_id = $2",
                )
                .bind(account)
                .bind(device_param(device))
                .fetch_optional(&mut *tx)
                .await?;
                // Identities are public: an ordinary comparison is fine.
                if published.as_deref() != Some(identity) {
                    return Err(StoreError::KemPreKeyIdentityChanged);
                }
                let stored = count(
                    &mut tx,
                    "SELECT COUNT(*) FROM kem_one_time_prekeys WHERE account_id = $1",
                    device.account,
                )
                .await?;
                let kind = OneTimeKind::Kem;
                let mark = one_time_mark(&mut tx, device, kind).await?;
                let mut added = 0u64;
                for prekey in one_time {
                    // As for X25519 ones: an id stored before (a retry, or
                    // claimed since) is never stored again.
                    if !rules::one_time_id_is_new(prekey.id, mark) {
                        check_stored_one_time(&mut tx, device, kind, prekey.id, &prekey.key)
                            .await?;
                        continue;
                    }
                    let done = sqlx::query(
                        "INSERT INTO kem_one_time_prekeys \
                           (account_id, device_id, key_id, created_at, public_key, signature) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (account_id, device_id, key_id) DO NOTHING",
                    )
                    .bind(account)
                    .bind(device_param(device))
                    .bind(i64::from(prekey.id))
                    .bind(db_time(prekey.created_at))
                    .bind(prekey.key.as_slice())
                    .bind(prekey.signature.as_slice())
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        check_stored_one_time(&mut tx, device, kind, prekey.id, &prekey.key)
                            .await?;
                    }
                    added += done.rows_affected();
                }
                rules::prekey_cap(
                    stored,
                    added,
                    self.limits.max_kem_one_time_prekeys_per_account,
                )?;
                raise_one_time_mark(&mut tx, device, kind, mark, one_time.iter().map(|p| p.id))
                    .await?;
                if let Some(prekey) = last_resort {
                    sqlx::query(
                        "INSERT INTO kem_last_resort_prekeys \
                           (account_id, device_id, key_id, created_at, public_key, signature) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (account_id, device_id) DO UPDATE SET \
                           key_id = excluded.key_id, created_at = excluded.created_at, \
                           public_key = excluded.public_key, signature = excluded.signature",
                    )
                    .bind(account)
                    .bind(device_param(device))
                    .bind(i64::from(prekey.id))
                    .bind(db_time(prekey.created_at))
                    .bind(prekey.key.as_slice())
                    .bind(prekey.signature.as_slice())
                    .execute(&mut *tx)
                    .await?;
                }
                let stock = kem_stock(&mut *tx, device).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(stock)
            }

            async fn kem_prekey_stock(
                &self,
                device: Address,
            ) -> Result<KemPreKeyStock, StoreError> {
                kem_stock(self.reader(), device).await
            }

            async fn claim_hybrid_bundle(
                &self,
                device: Address,
            ) -> Result<Option<HybridBundleWire>, StoreError> {
                let account = device.account.as_bytes().as_slice();
                let mut tx = self.write_tx().await?;
                let Some(bundle) = claim_classical(&mut tx, device).await? else {
                    return Ok(None);
                };
                // As the X25519 claim: one statement finds and removes the
                // key, skipping (on PostgreSQL) one a concurrent claimer
                // holds, so each claimer deletes a different key.
                let kem_one_time = sqlx::query(concat!(
                    "DELETE FROM kem_one_time_prekeys WHERE (account_id, device_id, key_id) IN ( \
                       SELECT account_id, device_id, key_id FROM kem_one_time_prekeys \
                       WHERE account_id = $1 AND device_id = $2 ORDER BY key_id LIMIT 1",
                    dialect!(skip_locked),
                    ") RETURNING key_id, created_at, public_key, signature"
                ))
                .bind(account)
                .bind(device_param(device))
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| kem_prekey_row(&row))
                .transpose()?;
                let kem_last_resort = sqlx::query(
                    "SELECT key_id, created_at, public_key, signature \
                     FROM kem_last_resort_prekeys WHERE account_id = $1 AND device_id = $2",
                )
                .bind(account)
                .bind(device_param(device))
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| kem_prekey_row(&row))
                .transpose()?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(Some(HybridBundleWire {
                    bundle,
                    kem_one_time,
                    kem_last_resort,
                }))
            }
        }
    };
}
pub(crate) use impl_kem_keys;
