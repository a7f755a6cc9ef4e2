//! The devices role: which devices an account has (current ones and the
//! tombstones of removed ones), and its signed device list
//! (docs/PROTOCOL.md 15.1, 15.2, 15.4, 15.5).
//!
//! Ids come from [`rules::next_device`](super::rules): one more than the
//! highest id the account ever had, so a removed id is never assigned again.
//! Adding, removing and publishing a list lock the account row first, as
//! every per-account total does, so two nodes racing cannot both take the
//! ninth place or the same id.
//!
//! Must never: reuse a device id, forget a tombstone while its account
//! lives, hold more than `MAX_DEVICES_PER_ACCOUNT` current devices, replace
//! a device list with one of the same or a lower version, change the bytes
//! of a published list, or check a list's signature (the handler does that
//! with `umbra_wire::DeviceList::verify`; senders check it again
//! themselves).

use async_trait::async_trait;
use umbra_wire::device_list::DeviceList;
use umbra_wire::{AccountId, Address, DeviceId};

use super::{PasswordFile, StoreError, TokenHash, UnixSeconds};

/// A current device of an account, as `ListDevices` shows it (15.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Its id.
    pub device: DeviceId,
    /// When it was enrolled; 0 for a device 1 registered before
    /// migration 0007 recorded it.
    pub created_at: UnixSeconds,
    /// Its latest authentication, rounded down to the hour; 0 if never.
    pub last_seen_at: UnixSeconds,
}

/// What [`DeviceStore::remove_device`] deleted with the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemovedDevice {
    /// Its session tokens (the caller announces the revocation, 11.5).
    pub tokens: u64,
    /// Its queued envelopes.
    pub messages: u64,
}

/// An account's stored device list.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredDeviceList {
    /// The version from its header.
    pub version: u64,
    /// The bytes exactly as published (15.2).
    pub bytes: Vec<u8>,
    /// When it was stored.
    pub updated_at: UnixSeconds,
}

impl std::fmt::Debug for StoredDeviceList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredDeviceList")
            .field("version", &self.version)
            .field("len", &self.bytes.len())
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// The devices of each account and their signed lists.
#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    /// Enrols a new device of `account` and returns its id: one more than
    /// the highest id the account has ever had. Refused with
    /// [`StoreError::TooManyDevices`] when the account has
    /// `MAX_DEVICES_PER_ACCOUNT` current devices,
    /// [`StoreError::UnknownAccount`] when it does not exist.
    async fn add_device(
        &self,
        account: AccountId,
        now: UnixSeconds,
    ) -> Result<DeviceId, StoreError>;

    /// `LoginEnrol` (15.6): turns a password login's token into a new
    /// device of its account, in one transaction that locks the account row
    /// first (as [`AccountStore::insert_login_token`](super::AccountStore)
    /// does): if the account's record is still `proven` and the login's
    /// token `login` still exists for the account, enrols the next device
    /// (as [`DeviceStore::add_device`], so [`StoreError::TooManyDevices`]
    /// applies), deletes `login` and stores `token_hash` for the new device
    /// until `expires_at`. `None`, changing nothing, if the account is gone,
    /// its record changed (a password change since the login) or `login`
    /// was revoked (a logout everywhere since).
    async fn enrol_login_device(
        &self,
        account: AccountId,
        proven: &PasswordFile,
        login: &TokenHash,
        token_hash: &TokenHash,
        expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<Option<DeviceId>, StoreError>;

    /// `LoginDevice` (15.6): gives a password login's token to `device`, a
    /// current device of the account, in one transaction that locks the
    /// account row first (so a removal, which takes the same lock, is
    /// either before it and refuses, or after it and deletes the new
    /// token). If the record is still `proven` and `login` still exists
    /// for the account: deletes `login` and stores `token_hash` for
    /// `device` until `expires_at`. `false`, changing nothing, if the
    /// account is gone, its record changed or `login` was revoked;
    /// [`StoreError::UnknownDevice`], changing nothing, if `device` is not
    /// a current device (never assigned, or a tombstone).
    async fn login_as_device(
        &self,
        device: Address,
        proven: &PasswordFile,
        login: &TokenHash,
        token_hash: &TokenHash,
        expires_at: UnixSeconds,
    ) -> Result<bool, StoreError>;

    /// The current devices of `account` in ascending id order (empty for an
    /// unknown account).
    async fn list_devices(&self, account: AccountId) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Whether `device` is a current device of its account.
    async fn is_current_device(&self, device: Address) -> Result<bool, StoreError>;

    /// The current devices of `accounts` (sorted, distinct), in one
    /// statement per `MAX_IN` accounts: what a `Send` checks its recipients
    /// against (15.5) without a round trip per recipient.
    async fn current_devices(&self, accounts: &[AccountId]) -> Result<Vec<Address>, StoreError>;

    /// Removes a current device in one transaction: its tokens, published
    /// identity, prekeys, queued envelopes and the link tickets it created
    /// (with their posts) are deleted and its row
    /// becomes a tombstone (15.5). The identity stays the account's
    /// (`identity_accounts`). [`StoreError::UnknownDevice`] if it is not a
    /// current device. `by` is the removing device, read in the same
    /// transaction: if it is no longer current →
    /// [`StoreError::UnknownDevice`] naming `by`, so two devices removing
    /// each other at once (on two nodes) never leave the account with no
    /// current device. Refusing a device's removal of itself is the
    /// handler's rule (it knows the connection).
    async fn remove_device(
        &self,
        by: Address,
        device: Address,
        now: UnixSeconds,
    ) -> Result<RemovedDevice, StoreError>;

    /// Records that `device` authenticated at `now` (rounded down to the
    /// hour). Writes only when the hour moved on, so authenticating is not
    /// a write per connection; `false` if nothing was written (same hour,
    /// or no such current device).
    async fn touch_device(&self, device: Address, now: UnixSeconds) -> Result<bool, StoreError>;

    /// Stores `list` (decoded and signature-checked by the caller) as its
    /// account's list, byte for byte as [`DeviceList::encode`] gives it
    /// (the bytes it was decoded from). In one transaction:
    /// [`StoreError::UnknownAccount`]; a listed device that is not current
    /// → [`StoreError::UnknownDevice`]; a stored list of the same or a
    /// higher version → [`StoreError::StaleDeviceList`]. Before it, a
    /// version above 2^63 − 1 → [`StoreError::DeviceListVersionTooHigh`].
    async fn put_device_list(&self, list: &DeviceList, now: UnixSeconds) -> Result<(), StoreError>;

    /// The account's stored list, if it has published one.
    async fn device_list(&self, account: AccountId)
        -> Result<Option<StoredDeviceList>, StoreError>;
}

/// The [`DeviceStore`] SQL, expanded by `impl_store!` for each backend.
macro_rules! impl_devices {
    ($store:ty, $db:ty) => {
        /// Enrols the next device of `account` inside `tx`, whose caller
        /// holds the account row lock (`lock_account_totals`).
        async fn enrol_device(
            tx: &mut sqlx::Transaction<'_, $db>,
            account: AccountId,
            now: UnixSeconds,
        ) -> Result<DeviceId, StoreError> {
            let highest: Option<i64> =
                sqlx::query_scalar("SELECT MAX(device_id) FROM devices WHERE account_id = $1")
                    .bind(account.as_bytes().as_slice())
                    .fetch_one(&mut **tx)
                    .await?;
            let highest = highest.map(rows::device_id).transpose()?.map(|d| d.0);
            let current = count(
                tx,
                "SELECT COUNT(*) FROM devices WHERE account_id = $1 AND removed_at IS NULL",
                account,
            )
            .await?;
            let device = rules::next_device(highest, current)?;
            sqlx::query(
                "INSERT INTO devices (account_id, device_id, created_at, last_seen_at) \
                 VALUES ($1, $2, $3, 0)",
            )
            .bind(account.as_bytes().as_slice())
            .bind(i64::from(device.0))
            .bind(db_time(now))
            .execute(&mut **tx)
            .await?;
            Ok(device)
        }

        /// Whether `device` is current, read inside `tx`.
        async fn device_is_current(
            tx: &mut sqlx::Transaction<'_, $db>,
            device: Address,
        ) -> Result<bool, StoreError> {
            let row = sqlx::query(
                "SELECT 1 FROM devices WHERE account_id = $1 AND device_id = $2 \
                 AND removed_at IS NULL",
            )
            .bind(device.account.as_bytes().as_slice())
            .bind(device_param(device))
            .fetch_optional(&mut **tx)
            .await?;
            Ok(row.is_some())
        }

        #[async_trait]
        impl $crate::store::DeviceStore for $store {
            async fn add_device(
                &self,
                account: AccountId,
                now: UnixSeconds,
            ) -> Result<DeviceId, StoreError> {
                let mut tx = self.write_tx().await?;
                if !lock_account_totals(&mut tx, account).await? {
                    return Err(StoreError::UnknownAccount);
                }
                let device = enrol_device(&mut tx, account, now).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(device)
            }

            async fn enrol_login_device(
                &self,
                account: AccountId,
                proven: &$crate::store::PasswordFile,
                login: &TokenHash,
                token_hash: &TokenHash,
                expires_at: UnixSeconds,
                now: UnixSeconds,
            ) -> Result<Option<DeviceId>, StoreError> {
                let mut tx = self.write_tx().await?;
                // The account row first, locked as a login's token issue and
                // a password change lock it.
                if !password_file_unchanged(&mut tx, account, proven).await? {
                    return Ok(None);
                }
                let held =
                    sqlx::query("SELECT 1 FROM tokens WHERE token_hash = $1 AND account_id = $2")
                        .bind(login.as_slice())
                        .bind(account.as_bytes().as_slice())
                        .fetch_optional(&mut *tx)
                        .await?;
                if held.is_none() {
                    return Ok(None);
                }
                let device = enrol_device(&mut tx, account, now).await?;
                sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
                    .bind(login.as_slice())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO tokens (account_id, token_hash, device_id, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(account.as_bytes().as_slice())
                .bind(token_hash.as_slice())
                .bind(i64::from(device.0))
                .bind(db_time(expires_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(Some(device))
            }

            async fn login_as_device(
                &self,
                device: Address,
                proven: &$crate::store::PasswordFile,
                login: &TokenHash,
                token_hash: &TokenHash,
                expires_at: UnixSeconds,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                // The account row first, as a removal and a password
                // change lock it.
                if !password_file_unchanged(&mut tx, device.account, proven).await? {
                    return Ok(false);
                }
                let held =
                    sqlx::query("SELECT 1 FROM tokens WHERE token_hash = $1 AND account_id = $2")
                        .bind(login.as_slice())
                        .bind(device.account.as_bytes().as_slice())
                        .fetch_optional(&mut *tx)
                        .await?;
                if held.is_none() {
                    return Ok(false);
                }
                if !device_is_current(&mut tx, device).await? {
                    return Err(StoreError::UnknownDevice {
                        device: device.device.0,
                    });
                }
                sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
                    .bind(login.as_slice())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO tokens (account_id, token_hash, device_id, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(device.account.as_bytes().as_slice())
                .bind(token_hash.as_slice())
                .bind(device_param(device))
                .bind(db_time(expires_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(true)
            }

            async fn list_devices(
                &self,
                account: AccountId,
            ) -> Result<Vec<$crate::store::DeviceRecord>, StoreError> {
                let found = sqlx::query(
                    "SELECT device_id, created_at, last_seen_at FROM devices \
                     WHERE account_id = $1 AND removed_at IS NULL ORDER BY device_id",
                )
                .bind(account.as_bytes().as_slice())
                .fetch_all(self.reader())
                .await?;
                found
                    .iter()
                    .map(|row| {
                        Ok($crate::store::DeviceRecord {
                            device: rows::device_id(row.try_get(0)?)?,
                            created_at: rows::unix(row.try_get(1)?)?,
                            last_seen_at: rows::unix(row.try_get(2)?)?,
                        })
                    })
                    .collect()
            }

            async fn is_current_device(&self, device: Address) -> Result<bool, StoreError> {
                let row = sqlx::query(
                    "SELECT 1 FROM devices WHERE account_id = $1 AND device_id = $2 \
                     AND removed_at IS NULL",
                )
                .bind(device.account.as_bytes().as_slice())
                .bind(device_param(device))
                .fetch_optional(self.reader())
                .await?;
                Ok(row.is_some())
            }

            async fn current_devices(
                &self,
                accounts: &[AccountId],
            ) -> Result<Vec<Address>, StoreError> {
                use $crate::store::sql_lists::{in_list_len, list, MAX_IN};
                let mut current = Vec::new();
                for chunk in accounts.chunks(MAX_IN) {
                    // Padded with repeats of the last account, so few
                    // distinct statement texts are prepared.
                    let n = in_list_len(chunk.len());
                    let sql = format!(
                        "SELECT account_id, device_id FROM devices \
                         WHERE removed_at IS NULL AND account_id IN ({})",
                        list(1, n)
                    );
                    let mut query = sqlx::query(&sql);
                    for i in 0..n {
                        query = query.bind(chunk[i.min(chunk.len() - 1)].as_bytes().as_slice());
                    }
                    for row in query.fetch_all(self.reader()).await? {
                        current.push(Address {
                            account: rows::account_id(row.try_get(0)?)?,
                            device: rows::device_id(row.try_get(1)?)?,
                        });
                    }
                }
                Ok(current)
            }

            async fn remove_device(
                &self,
                by: Address,
                device: Address,
                now: UnixSeconds,
            ) -> Result<$crate::store::RemovedDevice, StoreError> {
                let mut tx = self.write_tx().await?;
                // A full queue: a bulk delete, as for delete_account.
                Self::bulk_statements(&mut tx).await?;
                if !lock_account_totals(&mut tx, device.account).await? {
                    return Err(StoreError::UnknownAccount);
                }
                // Under the account lock: a removal of the remover that
                // committed first is seen here, so of two devices removing
                // each other one is refused and one device stays current.
                if by.account != device.account || !device_is_current(&mut tx, by).await? {
                    return Err(StoreError::UnknownDevice {
                        device: by.device.0,
                    });
                }
                // FOR UPDATE on PostgreSQL (the UPDATE below alone would
                // take a lock a batch's key-share lock does not wait for):
                // a Send's batch that read the device as current holds its
                // row until it commits, and this removal then deletes what
                // it stored; a batch that comes later waits and finds the
                // device removed (`lock_queues`, 15.5).
                sqlx::query(concat!(
                    "SELECT 1 FROM devices WHERE account_id = $1 AND device_id = $2",
                    dialect!(for_update)
                ))
                .bind(device.account.as_bytes().as_slice())
                .bind(device_param(device))
                .fetch_optional(&mut *tx)
                .await?;
                let tombstoned = sqlx::query(
                    "UPDATE devices SET removed_at = $3 \
                     WHERE account_id = $1 AND device_id = $2 AND removed_at IS NULL",
                )
                .bind(device.account.as_bytes().as_slice())
                .bind(device_param(device))
                .bind(db_time(now))
                .execute(&mut *tx)
                .await?;
                if tombstoned.rows_affected() == 0 {
                    return Err(StoreError::UnknownDevice {
                        device: device.device.0,
                    });
                }
                // Its open link tickets go too: a removed device must not
                // enrol another (15.6), and its posts are nobody's now.
                for sql in [
                    "DELETE FROM link_messages WHERE ticket IN (SELECT ticket \
                     FROM link_tickets WHERE account_id = $1 AND device_id = $2)",
                    "DELETE FROM link_tickets WHERE account_id = $1 AND device_id = $2",
                ] {
                    sqlx::query(sql)
                        .bind(device.account.as_bytes().as_slice())
                        .bind(device_param(device))
                        .execute(&mut *tx)
                        .await?;
                }
                let mut removed = $crate::store::RemovedDevice::default();
                // The queue counter stays: nothing is queued for a
                // tombstone, and a kept counter can only help a seq never
                // be reused.
                for table in [
                    "tokens",
                    "messages",
                    "one_time_prekeys",
                    "last_resort_prekeys",
                    "kem_one_time_prekeys",
                    "kem_last_resort_prekeys",
                    "one_time_prekey_marks",
                    "signed_prekeys",
                    "identity_keys",
                ] {
                    let sql =
                        format!("DELETE FROM {table} WHERE account_id = $1 AND device_id = $2");
                    let done = sqlx::query(&sql)
                        .bind(device.account.as_bytes().as_slice())
                        .bind(device_param(device))
                        .execute(&mut *tx)
                        .await?;
                    match table {
                        "tokens" => removed.tokens = done.rows_affected(),
                        "messages" => removed.messages = done.rows_affected(),
                        _ => {}
                    }
                }
                // Its identity row went: the account's leaf is read again.
                mark_kt_label(&mut tx, $crate::store::kt::account_label(device.account)).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(removed)
            }

            async fn touch_device(
                &self,
                device: Address,
                now: UnixSeconds,
            ) -> Result<bool, StoreError> {
                let hour = rules::last_seen_hour(now);
                // One statement, its own transaction; the condition keeps
                // it monotone and makes a same-hour touch write nothing.
                let done = sqlx::query(
                    "UPDATE devices SET last_seen_at = $3 WHERE account_id = $1 \
                     AND device_id = $2 AND removed_at IS NULL AND last_seen_at < $3",
                )
                .bind(device.account.as_bytes().as_slice())
                .bind(device_param(device))
                .bind(db_time(hour))
                .execute(self.writer())
                .await
                .map_err(StoreError::from_autocommit)?;
                Ok(done.rows_affected() > 0)
            }

            async fn put_device_list(
                &self,
                list: &umbra_wire::device_list::DeviceList,
                now: UnixSeconds,
            ) -> Result<(), StoreError> {
                // Before the transaction: a version db_u64 would clamp
                // is refused, not stored as another.
                rules::device_list_version_storable(list.version())?;
                let account = *list.account();
                let mut tx = self.write_tx().await?;
                if !lock_account_totals(&mut tx, account).await? {
                    return Err(StoreError::UnknownAccount);
                }
                for &device in list.devices() {
                    if !device_is_current(&mut tx, Address { account, device }).await? {
                        return Err(StoreError::UnknownDevice { device: device.0 });
                    }
                }
                let stored: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM device_lists WHERE account_id = $1")
                        .bind(account.as_bytes().as_slice())
                        .fetch_optional(&mut *tx)
                        .await?;
                let stored = stored
                    .map(|v| rows::unsigned(v, "negative device list version"))
                    .transpose()?;
                rules::device_list_replaces(stored, list.version())?;
                sqlx::query(
                    "INSERT INTO device_lists (account_id, version, bytes, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (account_id) DO UPDATE SET \
                     version = excluded.version, bytes = excluded.bytes, \
                     updated_at = excluded.updated_at",
                )
                .bind(account.as_bytes().as_slice())
                .bind(db_u64(list.version()))
                .bind(list.encode())
                .bind(db_time(now))
                .execute(&mut *tx)
                .await?;
                mark_kt_label(&mut tx, $crate::store::kt::account_label(account)).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(())
            }

            async fn device_list(
                &self,
                account: AccountId,
            ) -> Result<Option<$crate::store::StoredDeviceList>, StoreError> {
                let row = sqlx::query(
                    "SELECT version, bytes, updated_at FROM device_lists WHERE account_id = $1",
                )
                .bind(account.as_bytes().as_slice())
                .fetch_optional(self.reader())
                .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some($crate::store::StoredDeviceList {
                    version: rows::unsigned(row.try_get(0)?, "negative device list version")?,
                    bytes: row.try_get(1)?,
                    updated_at: rows::unix(row.try_get(2)?)?,
                }))
            }
        }
    };
}
pub(crate) use impl_devices;
