//! The key directory role: each device's identity, signed prekey,
//! last-resort prekey and one-time prekeys, and the bundles built from them.
//!
//! Must never: hand one one-time prekey to two claimers (nor store again an
//! id it stored before, `one_time.rs`), show a new identity
//! beside an old signed prekey, keep prekeys made under a replaced identity,
//! let an account publish an identity another account publishes or has
//! published, or let two current devices of one account publish two
//! identities.

use async_trait::async_trait;
use umbra_wire::{Address, PreKeyBundleWire, PreKeyWire, SignedPreKeyWire};

use super::{PublishedKeys, StoreError};

/// The public key directory.
#[async_trait]
pub trait KeyDirectory: Send + Sync + 'static {
    /// Publishes a device's identity, signed prekey and (optionally)
    /// last-resort prekey in ONE transaction, so a reader never sees a new
    /// identity next to an old signed prekey. The signed prekey always
    /// replaces the stored one; a given last-resort key replaces the stored
    /// one.
    ///
    /// When `identity` differs from the device's stored identity, every
    /// one-time prekey of the device is deleted in the same transaction, and
    /// so is the stored last-resort key unless a new one is given, and
    /// so are its KEM prekeys, one-time and last-resort (signed by the old
    /// identity; see `rules::identity_change`), and so are its marks of
    /// both kinds (`one_time.rs`: the new identity's ids may start over).
    /// Republishing the same identity (signed-prekey rotation) keeps them.
    /// [`StoreError::UnknownAccount`] if the account does not exist;
    /// [`StoreError::IdentityInUse`] (nothing stored) if another account
    /// publishes or ever published `identity` — a copied identity would
    /// let its publisher pose as a second account holding the owner's keys.
    /// The devices of one account may publish the same identity, and only
    /// that one: [`StoreError::AccountIdentityDiffers`] (nothing stored)
    /// if another current device of the account publishes a different
    /// identity, or if `identity` changes the account's identity while
    /// any other current device exists, published or not (15.1;
    /// `rules::account_identity`).
    async fn put_keys(
        &self,
        device: Address,
        identity: &[u8],
        signed_prekey: &SignedPreKeyWire,
        last_resort: Option<&PreKeyWire>,
    ) -> Result<PublishedKeys, StoreError>;

    /// Adds one-time prekeys. An id at or below the device's mark (the
    /// highest one-time id it ever stored under the identity it publishes,
    /// `one_time.rs`) is not stored: one still stored with the same key is
    /// a retry after a lost reply, one no longer stored was claimed and
    /// must never be handed out again; either is skipped without an error,
    /// so a retried upload is idempotent. One still stored with a
    /// different key refuses the whole batch with
    /// [`StoreError::PreKeyIdConflict`]. The mark rises to the batch's
    /// highest id; a new identity (`put_keys`) drops it. The whole batch is
    /// refused with [`StoreError::TooManyPreKeys`] if the account would hold
    /// more than the cap. Returns how many the device now has.
    async fn add_one_time_prekeys(
        &self,
        device: Address,
        prekeys: &[PreKeyWire],
    ) -> Result<u64, StoreError>;

    /// Builds a device's bundle, atomically removing exactly one one-time
    /// prekey (concurrent claimers never receive the same key); when none is
    /// left the bundle carries only the last-resort key. `None` if the device
    /// has not published an identity and a signed prekey.
    async fn claim_bundle(&self, device: Address) -> Result<Option<PreKeyBundleWire>, StoreError>;

    /// The identity a device currently publishes (as given to
    /// [`KeyDirectory::put_keys`]), or `None` if it has published none.
    /// Claims no one-time prekey and changes nothing.
    async fn published_identity(&self, device: Address) -> Result<Option<Vec<u8>>, StoreError>;

    /// One-time prekeys still stored for a device.
    async fn one_time_prekey_count(&self, device: Address) -> Result<u64, StoreError>;
}

/// The [`KeyDirectory`] SQL, expanded by `impl_store!` for each backend.
macro_rules! impl_keys {
    ($store:ty, $db:ty) => {
        /// Reads a `(key_id, public_key)` row.
        fn prekey_row(row: &<$db as sqlx::Database>::Row) -> Result<PreKeyWire, StoreError> {
            Ok(PreKeyWire {
                id: rows::key_id(row.try_get(0)?)?,
                key: rows::public_key(&row.try_get::<Vec<u8>, _>(1)?)?,
            })
        }

        /// The classical part of every bundle claim, inside the caller's
        /// transaction (`claim_bundle`, and `claim_hybrid_bundle`, which
        /// claims the KEM prekeys in the same one): identity, signed
        /// prekey, one one-time prekey removed (concurrent claimers never
        /// receive the same key), the last-resort key. `None` if the device
        /// has not published an identity and a signed prekey.
        async fn claim_classical(
            tx: &mut sqlx::Transaction<'_, $db>,
            device: Address,
        ) -> Result<Option<PreKeyBundleWire>, StoreError> {
            let account = device.account.as_bytes().as_slice();
            // Each statement below reads the newest committed rows (on
            // PostgreSQL, READ COMMITTED): holding the identity row until
            // the commit makes a PublishKeys (and a device removal), which
            // writes it, wait for this claim, so a bundle never joins one
            // identity to keys published with or signed by another. A KEM
            // upload does not write it, but adds keys signed by this
            // identity only (`put_kem_prekeys`). Claimers share the lock;
            // nothing the claim does after it waits for a publisher (its
            // other reads take no lock, its deletes skip locked rows), so
            // the two cannot deadlock.
            let identity: Option<Vec<u8>> = sqlx::query_scalar(concat!(
                "SELECT identity FROM identity_keys WHERE account_id = $1 AND device_id = $2",
                dialect!(for_share)
            ))
            .bind(account)
            .bind(device_param(device))
            .fetch_optional(&mut **tx)
            .await?;
            let signed = sqlx::query(
                "SELECT key_id, created_at, public_key, signature FROM signed_prekeys \
                 WHERE account_id = $1 AND device_id = $2",
            )
            .bind(account)
            .bind(device_param(device))
            .fetch_optional(&mut **tx)
            .await?;
            let (Some(identity), Some(signed)) = (identity, signed) else {
                return Ok(None);
            };
            let signed_prekey = SignedPreKeyWire {
                id: rows::key_id(signed.try_get(0)?)?,
                created_at: rows::unix(signed.try_get(1)?)?,
                key: rows::public_key(&signed.try_get::<Vec<u8>, _>(2)?)?,
                signature: rows::signature(&signed.try_get::<Vec<u8>, _>(3)?)?,
            };
            // One statement finds and removes the key; on PostgreSQL a
            // key locked by a concurrent claimer is skipped rather than
            // waited for, so each claimer deletes a different key.
            let one_time = sqlx::query(concat!(
                "DELETE FROM one_time_prekeys WHERE (account_id, device_id, key_id) IN ( \
                   SELECT account_id, device_id, key_id FROM one_time_prekeys \
                   WHERE account_id = $1 AND device_id = $2 ORDER BY key_id LIMIT 1",
                dialect!(skip_locked),
                ") RETURNING key_id, public_key"
            ))
            .bind(account)
            .bind(device_param(device))
            .fetch_optional(&mut **tx)
            .await?
            .map(|row| prekey_row(&row))
            .transpose()?;
            let last_resort = sqlx::query(
                "SELECT key_id, public_key FROM last_resort_prekeys \
                 WHERE account_id = $1 AND device_id = $2",
            )
            .bind(account)
            .bind(device_param(device))
            .fetch_optional(&mut **tx)
            .await?
            .map(|row| prekey_row(&row))
            .transpose()?;
            Ok(Some(PreKeyBundleWire {
                account: device.account,
                device: device.device,
                identity,
                signed_prekey,
                one_time_prekey: one_time,
                last_resort,
            }))
        }

        #[async_trait]
        impl KeyDirectory for $store {
            async fn put_keys(
                &self,
                device: Address,
                identity: &[u8],
                signed_prekey: &SignedPreKeyWire,
                last_resort: Option<&PreKeyWire>,
            ) -> Result<PublishedKeys, StoreError> {
                let account = device.account.as_bytes().as_slice();
                let mut tx = self.write_tx().await?;
                // The account row lock (or SQLite's single writer)
                // serializes this with concurrent publishes and uploads of
                // the account, so the identity read below cannot go stale.
                if !lock_account_totals(&mut tx, device.account).await? {
                    return Err(StoreError::UnknownAccount);
                }
                // One identity, one account (PROTOCOL.md 11.8 step 0, 15.1):
                // refused if another account publishes or ever published it;
                // the devices of one account share theirs. The primary key
                // of identity_accounts (migration 0007) backs this up
                // against a publish racing on another node.
                let owner: Option<Vec<u8>> = sqlx::query_scalar(
                    "SELECT account_id FROM identity_accounts WHERE identity = $1",
                )
                .bind(identity)
                .fetch_optional(&mut *tx)
                .await?;
                if owner.as_deref().is_some_and(|owner| owner != account) {
                    return Err(StoreError::IdentityInUse);
                }
                let previous: Option<Vec<u8>> = sqlx::query_scalar(
                    "SELECT identity FROM identity_keys WHERE account_id = $1 AND device_id = $2",
                )
                .bind(account)
                .bind(device_param(device))
                .fetch_optional(&mut *tx)
                .await?;
                // One account, one identity (11.8 step 0, 15.1): every other
                // current device, with the identity it publishes if any,
                // read under the account row lock every device change and
                // publication takes, so two devices publishing two
                // identities at once (on two nodes) are serialized and the
                // second is refused.
                let others: Vec<Option<Vec<u8>>> = sqlx::query_scalar(
                    "SELECT k.identity FROM devices d LEFT JOIN identity_keys k \
                       ON k.account_id = d.account_id AND k.device_id = d.device_id \
                     WHERE d.account_id = $1 AND d.device_id <> $2 AND d.removed_at IS NULL",
                )
                .bind(account)
                .bind(device_param(device))
                .fetch_all(&mut *tx)
                .await?;
                // A change: not what this device published, or, for a
                // device that published nothing, none of the account's
                // identities while it has one (a fresh account's first
                // publication is no change).
                let changed = match (previous.as_deref(), &owner) {
                    (Some(old), _) => old != identity,
                    (None, Some(_)) => false,
                    (None, None) => sqlx::query(
                        "SELECT 1 FROM identity_accounts WHERE account_id = $1 LIMIT 1",
                    )
                    .bind(account)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some(),
                };
                rules::account_identity(&others, changed, identity)?;
                if owner.is_none() {
                    sqlx::query(
                        "INSERT INTO identity_accounts (identity, account_id) VALUES ($1, $2)",
                    )
                    .bind(identity)
                    .bind(account)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| unique_violation_as(e, StoreError::IdentityInUse))?;
                }
                let change =
                    rules::identity_change(previous.as_deref(), identity, last_resort.is_some());
                let mut one_time_prekeys_discarded = 0;
                if change.drop_one_time_prekeys {
                    // The new identity's ids start over (client-side, 12.6).
                    drop_one_time_mark(&mut tx, device, OneTimeKind::X25519).await?;
                    one_time_prekeys_discarded = sqlx::query(
                        "DELETE FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2",
                    )
                    .bind(account)
                    .bind(device_param(device))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                if change.drop_last_resort {
                    sqlx::query(
                        "DELETE FROM last_resort_prekeys WHERE account_id = $1 AND device_id = $2",
                    )
                    .bind(account)
                    .bind(device_param(device))
                    .execute(&mut *tx)
                    .await?;
                }
                let mut kem_prekeys_discarded = 0;
                if change.drop_kem_prekeys {
                    // Signed by the old identity: an initiator would refuse
                    // them beside the new one (PROTOCOL.md 11.8 step 1).
                    drop_one_time_mark(&mut tx, device, OneTimeKind::Kem).await?;
                    for sql in [
                        "DELETE FROM kem_one_time_prekeys WHERE account_id = $1 AND device_id = $2",
                        "DELETE FROM kem_last_resort_prekeys \
                         WHERE account_id = $1 AND device_id = $2",
                    ] {
                        kem_prekeys_discarded += sqlx::query(sql)
                            .bind(account)
                            .bind(device_param(device))
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                }
                if previous.as_deref() != Some(identity) {
                    // The account's leaf may change (registration, restore,
                    // a new identity); an unchanged value publishes nothing.
                    mark_kt_label(&mut tx, $crate::store::kt::account_label(device.account))
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO identity_keys (account_id, device_id, identity) \
                     VALUES ($1, $2, $3) ON CONFLICT (account_id, device_id) \
                     DO UPDATE SET identity = excluded.identity",
                )
                .bind(account)
                .bind(device_param(device))
                .bind(identity)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO signed_prekeys \
                       (account_id, device_id, key_id, created_at, public_key, signature) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (account_id, device_id) DO UPDATE SET \
                       key_id = excluded.key_id, created_at = excluded.created_at, \
                       public_key = excluded.public_key, signature = excluded.signature",
                )
                .bind(account)
                .bind(device_param(device))
                .bind(i64::from(signed_prekey.id))
                .bind(db_time(signed_prekey.created_at))
                .bind(signed_prekey.key.as_bytes().as_slice())
                .bind(signed_prekey.signature.as_slice())
                .execute(&mut *tx)
                .await?;
                if let Some(prekey) = last_resort {
                    sqlx::query(
                        "INSERT INTO last_resort_prekeys \
                           (account_id, device_id, key_id, public_key) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, device_id) \
                         DO UPDATE SET key_id = excluded.key_id, public_key = excluded.public_key",
                    )
                    .bind(account)
                    .bind(device_param(device))
                    .bind(i64::from(prekey.id))
                    .bind(prekey.key.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(PublishedKeys {
                    identity_replaced: change.replaced,
                    one_time_prekeys_discarded,
                    kem_prekeys_discarded,
                })
            }

            async fn add_one_time_prekeys(
                &self,
                device: Address,
                prekeys: &[PreKeyWire],
            ) -> Result<u64, StoreError> {
                let mut tx = self.write_tx().await?;
                if !lock_account_totals(&mut tx, device.account).await? {
                    return Err(StoreError::UnknownAccount);
                }
                let stored = count(
                    &mut tx,
                    "SELECT COUNT(*) FROM one_time_prekeys WHERE account_id = $1",
                    device.account,
                )
                .await?;
                let kind = OneTimeKind::X25519;
                let mark = one_time_mark(&mut tx, device, kind).await?;
                let mut added = 0u64;
                for prekey in prekeys {
                    let offered = prekey.key.as_bytes().as_slice();
                    // Stored before (a retry, or claimed since): never
                    // stored again (`one_time.rs`).
                    if !rules::one_time_id_is_new(prekey.id, mark) {
                        check_stored_one_time(&mut tx, device, kind, prekey.id, offered).await?;
                        continue;
                    }
                    let done = sqlx::query(
                        "INSERT INTO one_time_prekeys (account_id, device_id, key_id, public_key) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (account_id, device_id, key_id) DO NOTHING",
                    )
                    .bind(device.account.as_bytes().as_slice())
                    .bind(device_param(device))
                    .bind(i64::from(prekey.id))
                    .bind(offered)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        // Above the mark yet stored: only a store older
                        // than its marks; still the same rule.
                        check_stored_one_time(&mut tx, device, kind, prekey.id, offered).await?;
                    }
                    added += done.rows_affected();
                }
                rules::prekey_cap(stored, added, self.limits.max_one_time_prekeys_per_account)?;
                raise_one_time_mark(&mut tx, device, kind, mark, prekeys.iter().map(|p| p.id))
                    .await?;
                let now_for_device: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2",
                )
                .bind(device.account.as_bytes().as_slice())
                .bind(device_param(device))
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                rows::unsigned(now_for_device, "negative row count")
            }

            async fn claim_bundle(
                &self,
                device: Address,
            ) -> Result<Option<PreKeyBundleWire>, StoreError> {
                let mut tx = self.write_tx().await?;
                let bundle = claim_classical(&mut tx, device).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(bundle)
            }

            async fn published_identity(
                &self,
                device: Address,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                let identity = sqlx::query_scalar(
                    "SELECT identity FROM identity_keys WHERE account_id = $1 AND device_id = $2",
                )
                .bind(device.account.as_bytes().as_slice())
                .bind(device_param(device))
                .fetch_optional(self.reader())
                .await?;
                Ok(identity)
            }

            async fn one_time_prekey_count(&self, device: Address) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2",
                )
                .bind(device.account.as_bytes().as_slice())
                .bind(device_param(device))
                .fetch_one(self.reader())
                .await?;
                rows::unsigned(n, "negative row count")
            }
        }
    };
}
pub(crate) use impl_keys;
