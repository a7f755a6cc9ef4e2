//! The accounts role: password files, usernames, deletion, and what the
//! database keeps about the OPAQUE server key (a fingerprint; the key itself
//! is in the relay's key file, `auth::key_file`).
//!
//! Must never: keep a row of a deleted account in any table, free a name to
//! two accounts at once, or print a password file.

use std::collections::BTreeMap;

use async_trait::async_trait;
use umbra_wire::{AccountId, Address, Username};
use zeroize::Zeroizing;

use super::{AccountRecord, PasswordFile, StoreError, TokenHash, UnixSeconds};

/// Accounts and their OPAQUE registration records.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// The OPAQUE `ServerSetup` an older relay kept in the database, if it
    /// is still there (helper F, issue 9 item 10: it moves to the key file).
    async fn legacy_server_setup(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError>;

    /// Deletes the database's copy of the setup, once it is in the key file.
    async fn delete_legacy_server_setup(&self) -> Result<(), StoreError>;

    /// Records the key file's fingerprint if none is recorded yet and
    /// returns the recorded one, so every node and restart can check that
    /// its key file is the one the accounts were registered with.
    async fn bind_server_key_fingerprint(
        &self,
        fingerprint: &[u8; 32],
    ) -> Result<[u8; 32], StoreError>;

    /// Creates an account at `now`. [`StoreError::UsernameTaken`] if the
    /// (folded) name is in use or still quarantined after its release;
    /// [`StoreError::UsernameReserved`] if policy reserves it;
    /// [`StoreError::AccountExists`] if the id is in use.
    async fn create_account(
        &self,
        account: AccountId,
        username: &Username,
        password_file: &PasswordFile,
        now: UnixSeconds,
    ) -> Result<(), StoreError>;

    /// Finds an account by its folded username.
    async fn account_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<AccountRecord>, StoreError>;

    /// The OPAQUE record of an account by id (a password change's
    /// old-password login runs against it).
    async fn password_file(&self, account: AccountId) -> Result<Option<PasswordFile>, StoreError>;

    /// Replaces the account's OPAQUE record with `new` if it is still
    /// `old` and the caller's token `current` is still the account's and
    /// unexpired at `now`; deletes every token of the account, `current`
    /// included (a thief of the data dir may hold a copy), and inserts
    /// `issued` for the device that presented `current` until `expires_at`: all in
    /// one transaction, so no node ever sees the new password beside an old
    /// session, or a half-done change. Returns how many tokens were revoked
    /// (`current` counted), or `None` if nothing changed because the account
    /// is gone, its record is no longer `old` (another change won) or
    /// `current` was revoked or expired meanwhile.
    #[allow(clippy::too_many_arguments)]
    async fn change_password(
        &self,
        account: AccountId,
        old: &PasswordFile,
        new: &PasswordFile,
        current: &TokenHash,
        now: UnixSeconds,
        issued: &TokenHash,
        expires_at: UnixSeconds,
    ) -> Result<Option<u64>, StoreError>;

    /// Issues a login's token: inserts `token_hash` for `owner` until
    /// `expires_at` if the account's OPAQUE record is still `proven` (the
    /// one the login's proof was checked against), in one transaction that
    /// locks the account row first, as [`AccountStore::change_password`]
    /// does. Returns `false`, inserting nothing, if the account is gone or
    /// its record changed since the login started: a login under a password
    /// that was just replaced must not outlive the change.
    /// [`StoreError::UnknownDevice`], inserting nothing, if `owner` is not a
    /// current device (it was removed, 15.5): read under the same lock a
    /// removal takes, so a token is never issued for a tombstone.
    async fn insert_login_token(
        &self,
        owner: Address,
        proven: &PasswordFile,
        token_hash: &TokenHash,
        expires_at: UnixSeconds,
    ) -> Result<bool, StoreError>;

    /// The current username of an account.
    async fn username_of(&self, account: AccountId) -> Result<Option<Username>, StoreError>;

    /// Renames an account at `now`; the old name is released (quarantined
    /// for everyone, its former holder included, for the configured time).
    /// Renaming to the current name changes nothing.
    /// [`StoreError::UsernameTaken`], [`StoreError::UsernameReserved`] or
    /// [`StoreError::UnknownAccount`].
    async fn rename_account(
        &self,
        account: AccountId,
        new: &Username,
        now: UnixSeconds,
    ) -> Result<(), StoreError>;

    /// Removes everything stored for the account (password file, tokens,
    /// keys, queued messages, queue counters, blobs) in one
    /// transaction, and releases its name at `now`. Returns whether the
    /// account existed.
    async fn delete_account(
        &self,
        account: AccountId,
        now: UnixSeconds,
    ) -> Result<bool, StoreError>;

    /// Whether `username` (compared by its separator-free skeleton) is
    /// quarantined at `now` after a release. `RegisterStart` asks, so a
    /// quarantined name is refused exactly like a held one.
    async fn name_is_quarantined(
        &self,
        username: &Username,
        now: UnixSeconds,
    ) -> Result<bool, StoreError>;

    /// Forgets released names whose quarantine has ended by `now`.
    async fn purge_released_names(&self, now: UnixSeconds) -> Result<u64, StoreError>;

    /// For every table in the live schema (read from the database's
    /// catalogue, not from the list `delete_account` uses), the number of
    /// rows with a byte column equal to `account`'s id. Tests and audits use
    /// it to prove that deletion left nothing behind in any table.
    async fn account_rows_by_table(
        &self,
        account: AccountId,
    ) -> Result<BTreeMap<String, u64>, StoreError>;

    /// The sum of [`AccountStore::account_rows_by_table`].
    async fn rows_for_account(&self, account: AccountId) -> Result<u64, StoreError> {
        Ok(self.account_rows_by_table(account).await?.values().sum())
    }
}

/// Tables holding rows for an account, children before parents so the
/// explicit delete never trips a foreign key. The audit checks deletion over
/// the live schema instead, so a table missing here is caught.
///
/// `tokens` comes first, right after the account row's lock: a batch's Ack
/// (`queue_steps.rs`) takes the owner's token row `FOR KEY SHARE` and then
/// deletes that owner's message rows, without the account row; deleting
/// messages before tokens here made the opposite order, and PostgreSQL
/// broke the cycle after `deadlock_timeout` by failing one side (a review
/// found it: an old connection acking while a new one deletes the account).
pub(crate) const ACCOUNT_TABLES: [&str; 19] = [
    "tokens",
    "link_messages",
    "link_tickets",
    "device_lists",
    "account_backups",
    "blob_chunks",
    "blobs",
    "messages",
    "queue_counters",
    "one_time_prekey_marks",
    "one_time_prekeys",
    "last_resort_prekeys",
    "kem_one_time_prekeys",
    "kem_last_resort_prekeys",
    "signed_prekeys",
    "identity_keys",
    "identity_accounts",
    "devices",
    "accounts",
];

/// The [`AccountStore`] SQL, expanded by `impl_store!` for each backend.
macro_rules! impl_accounts {
    ($store:ty, $db:ty) => {
        /// When a name with `name`'s skeleton was last released, if it is
        /// on record. `released_names.username` holds skeletons
        /// (`rules::name_skeleton`), only ever compared, never shown.
        async fn released_at<'e, E>(
            executor: E,
            name: &Username,
        ) -> Result<Option<UnixSeconds>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let at: Option<i64> =
                sqlx::query_scalar("SELECT released_at FROM released_names WHERE username = $1")
                    .bind(rules::name_skeleton(name))
                    .fetch_optional(executor)
                    .await?;
            at.map(rows::unix).transpose()
        }

        /// Records `name`'s skeleton as released at `now` (nothing when the
        /// quarantine is off: then there is nothing to enforce and no name
        /// history is kept).
        async fn release_name(
            tx: &mut sqlx::Transaction<'_, $db>,
            name: &str,
            now: UnixSeconds,
            quarantine_secs: u64,
        ) -> Result<(), StoreError> {
            if quarantine_secs == 0 {
                return Ok(());
            }
            let name = rows::username(name.to_owned())?;
            sqlx::query(
                "INSERT INTO released_names (username, released_at) VALUES ($1, $2) \
                 ON CONFLICT (username) DO UPDATE SET released_at = excluded.released_at",
            )
            .bind(rules::name_skeleton(&name))
            .bind(db_time(now))
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        #[async_trait]
        impl AccountStore for $store {
            async fn legacy_server_setup(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
                let mut tx = self.write_tx().await?;
                let stored: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                        .bind(OPAQUE_SERVER_SETUP)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(stored.map(Zeroizing::new))
            }

            async fn delete_legacy_server_setup(&self) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM server_secrets WHERE name = $1")
                    .bind(OPAQUE_SERVER_SETUP)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(())
            }

            async fn bind_server_key_fingerprint(
                &self,
                fingerprint: &[u8; 32],
            ) -> Result<[u8; 32], StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO server_secrets (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(rows::OPAQUE_KEY_FINGERPRINT)
                .bind(fingerprint.as_slice())
                .execute(&mut *tx)
                .await?;
                let stored: Vec<u8> =
                    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                        .bind(rows::OPAQUE_KEY_FINGERPRINT)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                <[u8; 32]>::try_from(stored.as_slice())
                    .map_err(|_| StoreError::Corrupt("OPAQUE key fingerprint is not 32 bytes"))
            }

            async fn create_account(
                &self,
                account: AccountId,
                username: &Username,
                password_file: &PasswordFile,
                now: UnixSeconds,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                if account_exists(&mut tx, account).await? {
                    return Err(StoreError::AccountExists);
                }
                // Reserved names first; the quarantine is checked after the
                // INSERT: on PostgreSQL the INSERT waits for a concurrent
                // rename or deletion that frees this name, and only a read
                // after it (READ COMMITTED: a new snapshot per statement)
                // sees the release that transaction recorded.
                rules::claimable(username, None, now, 0)?;
                let inserted = sqlx::query(
                    "INSERT INTO accounts (account_id, username, password_file) \
                     VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING",
                )
                .bind(account.as_bytes().as_slice())
                .bind(username.as_str())
                .bind(password_file.as_bytes())
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::UsernameTaken);
                }
                // Device 1 exists from registration (PROTOCOL.md 15.1).
                sqlx::query(
                    "INSERT INTO devices (account_id, device_id, created_at, last_seen_at) \
                     VALUES ($1, 1, $2, 0)",
                )
                .bind(account.as_bytes().as_slice())
                .bind(db_time(now))
                .execute(&mut *tx)
                .await?;
                let released = released_at(&mut *tx, username).await?;
                rules::claimable(username, released, now, self.limits.name_quarantine_secs)?;
                // The new account and its name, in the next epoch (16.1).
                mark_kt_label(&mut tx, $crate::store::kt::account_label(account)).await?;
                mark_kt_label(&mut tx, $crate::store::kt::username_label(username)).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(())
            }

            async fn account_by_username(
                &self,
                username: &Username,
            ) -> Result<Option<AccountRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT account_id, password_file FROM accounts WHERE username = $1",
                )
                .bind(username.as_str())
                .fetch_optional(self.reader())
                .await?;
                let Some(row) = row else { return Ok(None) };
                let account: Vec<u8> = row.try_get(0)?;
                let file: Vec<u8> = row.try_get(1)?;
                Ok(Some(AccountRecord {
                    account: rows::account_id(&account)?,
                    password_file: PasswordFile::new(file),
                }))
            }

            async fn password_file(
                &self,
                account: AccountId,
            ) -> Result<Option<PasswordFile>, StoreError> {
                let file: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT password_file FROM accounts WHERE account_id = $1")
                        .bind(account.as_bytes().as_slice())
                        .fetch_optional(self.reader())
                        .await?;
                Ok(file.map(PasswordFile::new))
            }

            async fn change_password(
                &self,
                account: AccountId,
                old: &PasswordFile,
                new: &PasswordFile,
                presented: &TokenHash,
                now: UnixSeconds,
                issued: &TokenHash,
                expires_at: UnixSeconds,
            ) -> Result<Option<u64>, StoreError> {
                let mut tx = self.write_tx().await?;
                // Account row first, as every writer locks it first: a
                // concurrent change or deletion waits here.
                if !password_file_unchanged(&mut tx, account, old).await? {
                    return Ok(None);
                }
                let presented_row = sqlx::query(
                    "SELECT expires_at, device_id FROM tokens \
                     WHERE token_hash = $1 AND account_id = $2",
                )
                .bind(presented.as_slice())
                .bind(account.as_bytes().as_slice())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(presented_row) = presented_row else {
                    return Ok(None);
                };
                // An expired token (kept until purged) proves nothing more
                // than a revoked one.
                if now >= rows::unix(presented_row.try_get(0)?)? {
                    return Ok(None);
                }
                // The new token is the presenting device's: a device-1
                // token handed to device 2 would authenticate it as device
                // 1, a tombstone if device 1 was removed (15.5). Its token
                // exists under this lock, so the device is current.
                let owner = rows::address(account.as_bytes(), presented_row.try_get(1)?)?;
                sqlx::query("UPDATE accounts SET password_file = $2 WHERE account_id = $1")
                    .bind(account.as_bytes().as_slice())
                    .bind(new.as_bytes())
                    .execute(&mut *tx)
                    .await?;
                let revoked = sqlx::query("DELETE FROM tokens WHERE account_id = $1")
                    .bind(account.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(
                    "INSERT INTO tokens (account_id, token_hash, device_id, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(account.as_bytes().as_slice())
                .bind(issued.as_slice())
                .bind(device_param(owner))
                .bind(db_time(expires_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(Some(revoked))
            }

            async fn insert_login_token(
                &self,
                owner: Address,
                proven: &PasswordFile,
                token_hash: &TokenHash,
                expires_at: UnixSeconds,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                // Account row first, as change_password and delete_account
                // lock it: a change committing meanwhile is either seen here
                // (record differs) or waits for this token, which it then
                // revokes with the others.
                if !password_file_unchanged(&mut tx, owner.account, proven).await? {
                    return Ok(false);
                }
                // Under the account lock remove_device also takes, so a
                // removal either committed (seen here) or waits and then
                // deletes this token with the device's others.
                if !device_is_current(&mut tx, owner).await? {
                    return Err(StoreError::UnknownDevice {
                        device: owner.device.0,
                    });
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
                Ok(true)
            }

            async fn username_of(
                &self,
                account: AccountId,
            ) -> Result<Option<Username>, StoreError> {
                let name: Option<String> =
                    sqlx::query_scalar("SELECT username FROM accounts WHERE account_id = $1")
                        .bind(account.as_bytes().as_slice())
                        .fetch_optional(self.reader())
                        .await?;
                name.map(rows::username).transpose()
            }

            async fn rename_account(
                &self,
                account: AccountId,
                new: &Username,
                now: UnixSeconds,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                let old: Option<String> =
                    sqlx::query_scalar("SELECT username FROM accounts WHERE account_id = $1")
                        .bind(account.as_bytes().as_slice())
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(old) = old else {
                    return Err(StoreError::UnknownAccount);
                };
                let holder: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT account_id FROM accounts WHERE username = $1")
                        .bind(new.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                let holder = holder.map(|h| rows::account_id(&h)).transpose()?;
                if rules::rename(holder, account)? == rules::Rename::Unchanged {
                    return Ok(());
                }
                let quarantine = self.limits.name_quarantine_secs;
                rules::claimable(new, None, now, 0)?;
                // A concurrent create/rename on another node may take the
                // name meanwhile; the unique index decides. The quarantine
                // is read after the UPDATE as in create_account, although
                // here the holder check above already refuses a name whose
                // release has not committed (it still sees the holder).
                sqlx::query("UPDATE accounts SET username = $2 WHERE account_id = $1")
                    .bind(account.as_bytes().as_slice())
                    .bind(new.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| unique_violation_as(e, StoreError::UsernameTaken))?;
                let released = released_at(&mut *tx, new).await?;
                rules::claimable(new, released, now, quarantine)?;
                release_name(&mut tx, &old, now, quarantine).await?;
                // Both leaves in one epoch (16.1): the old name released,
                // the new one naming the account.
                let old = rows::username(old)?;
                mark_kt_label(&mut tx, $crate::store::kt::username_label(&old)).await?;
                mark_kt_label(&mut tx, $crate::store::kt::username_label(new)).await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(())
            }

            async fn delete_account(
                &self,
                account: AccountId,
                now: UnixSeconds,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                // A full queue and a blob quota of chunks: bulk deletes, not
                // held to the request statement timeout.
                Self::bulk_statements(&mut tx).await?;
                // Account row first, as every writer locks it first: waits
                // for in-flight enqueues/uploads and keeps the lock order
                // acyclic.
                let name: Option<String> = sqlx::query_scalar(concat!(
                    "SELECT username FROM accounts WHERE account_id = $1",
                    dialect!(for_update)
                ))
                .bind(account.as_bytes().as_slice())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(name) = name {
                    release_name(&mut tx, &name, now, self.limits.name_quarantine_secs).await?;
                    // The account publishes "none" and its name "released"
                    // in the next epoch; the labels are not account ids,
                    // and the row goes with that epoch.
                    let name = rows::username(name)?;
                    mark_kt_label(&mut tx, $crate::store::kt::account_label(account)).await?;
                    mark_kt_label(&mut tx, $crate::store::kt::username_label(&name)).await?;
                }
                let mut existed = false;
                for table in $crate::store::accounts::ACCOUNT_TABLES {
                    let sql = format!("DELETE FROM {table} WHERE account_id = $1");
                    let done = sqlx::query(&sql)
                        .bind(account.as_bytes().as_slice())
                        .execute(&mut *tx)
                        .await?;
                    if table == "accounts" {
                        existed = done.rows_affected() > 0;
                    }
                }
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(existed)
            }

            async fn name_is_quarantined(
                &self,
                username: &Username,
                now: UnixSeconds,
            ) -> Result<bool, StoreError> {
                let released = released_at(self.reader(), username).await?;
                Ok(rules::quarantined(
                    released,
                    now,
                    self.limits.name_quarantine_secs,
                ))
            }

            async fn purge_released_names(&self, now: UnixSeconds) -> Result<u64, StoreError> {
                let cutoff = now.saturating_sub(self.limits.name_quarantine_secs);
                // In batches, as `purge_expired_messages`.
                let mut purged = 0;
                loop {
                    let done = sqlx::query(
                        "DELETE FROM released_names WHERE username IN \
                         (SELECT username FROM released_names WHERE released_at <= $1 LIMIT $2)",
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

            async fn account_rows_by_table(
                &self,
                account: AccountId,
            ) -> Result<BTreeMap<String, u64>, StoreError> {
                rows_by_table(self.reader(), account).await
            }
        }
    };
}
pub(crate) use impl_accounts;
