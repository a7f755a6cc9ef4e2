//! The key-transparency role (docs/PROTOCOL.md 16): the directory's
//! published versions and epochs, the labels waiting for the next epoch,
//! and the one transaction that publishes an epoch.
//!
//! The store computes nothing cryptographic: it records which labels
//! changed (in the transaction of the change itself, [`mark_kt_label`],
//! called by the account, key and device writers), reads what each label
//! holds now when an epoch is published, and hands that to the caller's
//! `seal`, which builds the map, signs the head and says what to write.
//!
//! Must never: update or delete a published version or epoch; key a row by
//! the 16-byte account id (account deletion must leave none, `audit.rs`);
//! publish an epoch other than the one after the newest stored; or drop a
//! pending label without the epoch that read it committing.

use async_trait::async_trait;
use umbra_wire::kt::{KtLabel, LABEL_ACCOUNT, LABEL_USERNAME};
use umbra_wire::{AccountId, Username};

use super::StoreError;

/// The name under which the relay's KT public keys (directory key ||
/// VRF key, 64 bytes, not secret) are kept in `server_secrets`, so a node
/// started with another relay's key file refuses to start.
pub(crate) const KT_PUBLIC_KEYS: &str = "kt_public_keys";

/// One published version, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KtVersionRow {
    /// The label's VRF index.
    pub index: [u8; 32],
    /// From 1 per index.
    pub version: u64,
    /// The epoch it was published in.
    pub epoch: u64,
    /// The 16.3 value's encoding.
    pub value: Vec<u8>,
}

/// One published epoch, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KtEpochRow {
    /// From 0 without gaps.
    pub epoch: u64,
    /// The 49-byte entry.
    pub entry: Vec<u8>,
    /// The signed head's encoding.
    pub head: Vec<u8>,
}

/// What a label holds now, read in the publishing transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KtLabelState {
    /// An account: the identity its current devices publish and its signed
    /// device list, each `None` while there is none (or the account is
    /// gone).
    Account {
        /// The account.
        account: AccountId,
        /// The published identity, exactly as served.
        identity: Option<Vec<u8>>,
        /// The signed device list, exactly as served.
        device_list: Option<Vec<u8>>,
    },
    /// A username and the account holding it, if any.
    Username {
        /// The (canonical) name.
        name: Username,
        /// Its holder.
        holder: Option<AccountId>,
    },
}

/// What the publishing transaction hands to `seal`.
#[derive(Debug)]
pub struct KtPublishInput {
    /// Versions published after the caller's `after` epoch by other nodes
    /// (or by this one before a restart), in epoch order.
    pub versions: Vec<KtVersionRow>,
    /// Epochs after `after`, in order.
    pub epochs: Vec<KtEpochRow>,
    /// The epoch this publication would be.
    pub next_epoch: u64,
    /// Every label marked since the last epoch, with what it holds now;
    /// for the first epoch, every account and username there is.
    pub labels: Vec<KtLabelState>,
}

/// What `seal` asks to be written: the new versions and the new epoch.
#[derive(Debug)]
pub struct KtBatch {
    /// Versions of epoch `epoch.epoch`.
    pub versions: Vec<KtVersionRow>,
    /// The epoch itself.
    pub epoch: KtEpochRow,
}

/// The callback that turns a publishing transaction's reads into writes;
/// `Ok(None)` publishes nothing (no label's value changed), though the
/// pending labels read are still consumed; an error rolls everything back
/// (the labels stay pending).
pub type KtSeal<'a> = dyn FnMut(KtPublishInput) -> Result<Option<KtBatch>, StoreError> + Send + 'a;

/// The key-transparency tables.
#[async_trait]
pub trait KtStore: Send + Sync + 'static {
    /// Records `keys` if none are recorded; returns the recorded ones.
    async fn bind_kt_public_keys(&self, keys: &[u8; 64]) -> Result<[u8; 64], StoreError>;

    /// The recorded keys, if any (for the auditor, which records nothing).
    async fn kt_public_keys(&self) -> Result<Option<[u8; 64]>, StoreError>;

    /// Versions and epochs published after epoch `after` (`None`: all), in
    /// epoch order (versions of one epoch by index).
    async fn kt_since(
        &self,
        after: Option<u64>,
    ) -> Result<(Vec<KtVersionRow>, Vec<KtEpochRow>), StoreError>;

    /// The newest epoch stored and whether any label is pending, cheaply,
    /// so an idle node does not take the publisher's lock.
    async fn kt_status(&self) -> Result<(Option<u64>, bool), StoreError>;

    /// One publishing transaction: takes the publisher's lock (waiting for
    /// another node's publication), reads what was published after
    /// `after`, the pending labels and what they hold, calls `seal`, writes
    /// what it returns and consumes the labels read. Returns the epoch
    /// written, if any. A `seal` whose batch is not for `next_epoch` is
    /// refused ([`StoreError::Corrupt`]) and nothing is written.
    async fn kt_publish(
        &self,
        after: Option<u64>,
        seal: &mut KtSeal<'_>,
    ) -> Result<Option<u64>, StoreError>;
}

/// The stored label bytes of an account.
pub(crate) fn account_label(account: AccountId) -> Vec<u8> {
    KtLabel::Account(account).encode()
}

/// The stored label bytes of a username.
pub(crate) fn username_label(name: &Username) -> Vec<u8> {
    KtLabel::Username(name.clone()).encode()
}

/// Reads a stored label back.
pub(crate) fn parse_label(bytes: &[u8]) -> Result<KtLabel, StoreError> {
    let bad = StoreError::Corrupt("pending key-transparency label malformed");
    match bytes.split_first() {
        Some((&LABEL_ACCOUNT, rest)) => {
            AccountId::from_slice(rest).map(KtLabel::Account).ok_or(bad)
        }
        Some((&LABEL_USERNAME, rest)) => {
            let (&len, name) = rest.split_first().ok_or(bad)?;
            if usize::from(len) != name.len() {
                return Err(StoreError::Corrupt(
                    "pending key-transparency label malformed",
                ));
            }
            let name = std::str::from_utf8(name)
                .ok()
                .and_then(|n| Username::parse_canonical(n).ok())
                .ok_or(StoreError::Corrupt(
                    "pending key-transparency username invalid",
                ))?;
            Ok(KtLabel::Username(name))
        }
        _ => Err(bad),
    }
}

/// A stored 32-byte index.
pub(crate) fn index_of(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt("kt leaf index is not 32 bytes"))
}

/// Generates `mark_kt_label` (the helper every writer of a committed value
/// calls inside its transaction) for `$db`.
macro_rules! impl_kt_helpers {
    ($db:ty) => {
        /// Records that `label`'s value may have changed, in the caller's
        /// transaction: the change and its publication commit together.
        async fn mark_kt_label(
            tx: &mut sqlx::Transaction<'_, $db>,
            label: Vec<u8>,
        ) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO kt_pending (label) VALUES ($1)")
                .bind(label)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    };
}
pub(crate) use impl_kt_helpers;

/// The [`KtStore`] SQL, expanded by `impl_store!` for each backend.
macro_rules! impl_kt {
    ($store:ty, $db:ty) => {
        /// What `label` holds now.
        async fn kt_label_state(
            tx: &mut sqlx::Transaction<'_, $db>,
            label: umbra_wire::kt::KtLabel,
        ) -> Result<$crate::store::kt::KtLabelState, StoreError> {
            use $crate::store::kt::KtLabelState;
            Ok(match label {
                umbra_wire::kt::KtLabel::Account(account) => {
                    // The devices of an account share one identity
                    // (keys.rs); the lowest current device's is the one.
                    let identity: Option<Vec<u8>> = sqlx::query_scalar(
                        "SELECT k.identity FROM identity_keys k JOIN devices d \
                           ON d.account_id = k.account_id AND d.device_id = k.device_id \
                         WHERE k.account_id = $1 AND d.removed_at IS NULL \
                         ORDER BY k.device_id LIMIT 1",
                    )
                    .bind(account.as_bytes().as_slice())
                    .fetch_optional(&mut **tx)
                    .await?;
                    let device_list: Option<Vec<u8>> =
                        sqlx::query_scalar("SELECT bytes FROM device_lists WHERE account_id = $1")
                            .bind(account.as_bytes().as_slice())
                            .fetch_optional(&mut **tx)
                            .await?;
                    KtLabelState::Account {
                        account,
                        identity,
                        device_list,
                    }
                }
                umbra_wire::kt::KtLabel::Username(name) => {
                    let holder: Option<Vec<u8>> =
                        sqlx::query_scalar("SELECT account_id FROM accounts WHERE username = $1")
                            .bind(name.as_str())
                            .fetch_optional(&mut **tx)
                            .await?;
                    KtLabelState::Username {
                        name,
                        holder: holder.map(|h| rows::account_id(&h)).transpose()?,
                    }
                }
            })
        }

        async fn kt_rows_since<'e, E>(
            executor: E,
            after: Option<u64>,
        ) -> Result<Vec<$crate::store::kt::KtVersionRow>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let after = after.map(db_u64).unwrap_or(-1);
            let found = sqlx::query(
                "SELECT leaf_index, version, epoch, value FROM kt_versions \
                 WHERE epoch > $1 ORDER BY epoch, leaf_index",
            )
            .bind(after)
            .fetch_all(executor)
            .await?;
            found
                .into_iter()
                .map(|row| {
                    let index: Vec<u8> = row.try_get(0)?;
                    Ok($crate::store::kt::KtVersionRow {
                        index: $crate::store::kt::index_of(&index)?,
                        version: rows::unsigned(row.try_get(1)?, "negative kt version")?,
                        epoch: rows::unsigned(row.try_get(2)?, "negative kt epoch")?,
                        value: row.try_get(3)?,
                    })
                })
                .collect()
        }

        async fn kt_epochs_since<'e, E>(
            executor: E,
            after: Option<u64>,
        ) -> Result<Vec<$crate::store::kt::KtEpochRow>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let after = after.map(db_u64).unwrap_or(-1);
            let found = sqlx::query(
                "SELECT epoch, entry, head FROM kt_epochs WHERE epoch > $1 ORDER BY epoch",
            )
            .bind(after)
            .fetch_all(executor)
            .await?;
            found
                .into_iter()
                .map(|row| {
                    Ok($crate::store::kt::KtEpochRow {
                        epoch: rows::unsigned(row.try_get(0)?, "negative kt epoch")?,
                        entry: row.try_get(1)?,
                        head: row.try_get(2)?,
                    })
                })
                .collect()
        }

        #[async_trait]
        impl $crate::store::kt::KtStore for $store {
            async fn bind_kt_public_keys(&self, keys: &[u8; 64]) -> Result<[u8; 64], StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO server_secrets (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind($crate::store::kt::KT_PUBLIC_KEYS)
                .bind(keys.as_slice())
                .execute(&mut *tx)
                .await?;
                let stored: Vec<u8> =
                    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                        .bind($crate::store::kt::KT_PUBLIC_KEYS)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await.map_err(StoreError::from_commit)?;
                <[u8; 64]>::try_from(stored.as_slice())
                    .map_err(|_| StoreError::Corrupt("kt public keys are not 64 bytes"))
            }

            async fn kt_public_keys(&self) -> Result<Option<[u8; 64]>, StoreError> {
                let stored: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                        .bind($crate::store::kt::KT_PUBLIC_KEYS)
                        .fetch_optional(self.reader())
                        .await?;
                stored
                    .map(|s| {
                        <[u8; 64]>::try_from(s.as_slice())
                            .map_err(|_| StoreError::Corrupt("kt public keys are not 64 bytes"))
                    })
                    .transpose()
            }

            async fn kt_since(
                &self,
                after: Option<u64>,
            ) -> Result<
                (
                    Vec<$crate::store::kt::KtVersionRow>,
                    Vec<$crate::store::kt::KtEpochRow>,
                ),
                StoreError,
            > {
                // One read transaction, so the versions and the epochs are
                // of the same moment.
                let mut tx = self.reader().begin().await?;
                let versions = kt_rows_since(&mut *tx, after).await?;
                let epochs = kt_epochs_since(&mut *tx, after).await?;
                tx.commit().await?;
                // Versions of an epoch whose row the read did not see yet
                // cannot exist (one transaction writes both), but keep the
                // pair consistent whatever the isolation level.
                let last = epochs.last().map(|e| e.epoch).or(after);
                let versions = versions
                    .into_iter()
                    .filter(|v| last.is_some_and(|l| v.epoch <= l))
                    .collect();
                Ok((versions, epochs))
            }

            async fn kt_status(&self) -> Result<(Option<u64>, bool), StoreError> {
                let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(epoch) FROM kt_epochs")
                    .fetch_one(self.reader())
                    .await?;
                let pending = sqlx::query("SELECT 1 FROM kt_pending LIMIT 1")
                    .fetch_optional(self.reader())
                    .await?
                    .is_some();
                let latest = latest
                    .map(|e| rows::unsigned(e, "negative kt epoch"))
                    .transpose()?;
                Ok((latest, pending))
            }

            async fn kt_publish(
                &self,
                after: Option<u64>,
                seal: &mut $crate::store::kt::KtSeal<'_>,
            ) -> Result<Option<u64>, StoreError> {
                let mut tx = self.write_tx().await?;
                Self::sealing_statements(&mut tx).await?;
                // The publisher's lock: a second node waits here and then
                // reads the first one's epoch below.
                sqlx::query(concat!(
                    "SELECT id FROM kt_publisher WHERE id = 1",
                    dialect!(for_update)
                ))
                .fetch_optional(&mut *tx)
                .await?;
                let versions = kt_rows_since(&mut *tx, after).await?;
                let epochs = kt_epochs_since(&mut *tx, after).await?;
                let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(epoch) FROM kt_epochs")
                    .fetch_one(&mut *tx)
                    .await?;
                let latest = latest
                    .map(|e| rows::unsigned(e, "negative kt epoch"))
                    .transpose()?;
                if epochs.last().map(|e| e.epoch).or(after) != latest {
                    return Err(StoreError::Corrupt(
                        "kt epochs are not numbered without gaps",
                    ));
                }
                let next_epoch = latest.map_or(0, |e| e + 1);
                let pending = sqlx::query("SELECT seq, label FROM kt_pending ORDER BY seq")
                    .fetch_all(&mut *tx)
                    .await?;
                let mut seqs = Vec::with_capacity(pending.len());
                let mut labels = Vec::new();
                if latest.is_none() {
                    // The first epoch commits to everything there is, so a
                    // relay upgraded with accounts publishes them all.
                    let all = sqlx::query("SELECT account_id, username FROM accounts")
                        .fetch_all(&mut *tx)
                        .await?;
                    for row in all {
                        let account: Vec<u8> = row.try_get(0)?;
                        let name: String = row.try_get(1)?;
                        labels.push(umbra_wire::kt::KtLabel::Account(rows::account_id(
                            &account,
                        )?));
                        labels.push(umbra_wire::kt::KtLabel::Username(rows::username(name)?));
                    }
                }
                for row in pending {
                    let seq: i64 = row.try_get(0)?;
                    let label: Vec<u8> = row.try_get(1)?;
                    seqs.push(seq);
                    labels.push($crate::store::kt::parse_label(&label)?);
                }
                let mut seen = std::collections::HashSet::new();
                labels.retain(|l| seen.insert(l.encode()));
                let mut states = Vec::with_capacity(labels.len());
                for label in labels {
                    states.push(kt_label_state(&mut tx, label).await?);
                }
                let batch = seal($crate::store::kt::KtPublishInput {
                    versions,
                    epochs,
                    next_epoch,
                    labels: states,
                })?;
                if let Some(batch) = &batch {
                    if batch.epoch.epoch != next_epoch
                        || batch.versions.iter().any(|v| v.epoch != next_epoch)
                    {
                        return Err(StoreError::Corrupt(
                            "kt publication is not for the next epoch",
                        ));
                    }
                    for v in &batch.versions {
                        sqlx::query(
                            "INSERT INTO kt_versions (leaf_index, version, epoch, value) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(v.index.as_slice())
                        .bind(db_u64(v.version))
                        .bind(db_u64(v.epoch))
                        .bind(v.value.as_slice())
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query("INSERT INTO kt_epochs (epoch, entry, head) VALUES ($1, $2, $3)")
                        .bind(db_u64(batch.epoch.epoch))
                        .bind(batch.epoch.entry.as_slice())
                        .bind(batch.epoch.head.as_slice())
                        .execute(&mut *tx)
                        .await?;
                }
                // By seq, not "up to the highest": a change whose seq is
                // lower but which commits after this read stays pending.
                for seq in seqs {
                    sqlx::query("DELETE FROM kt_pending WHERE seq = $1")
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await.map_err(StoreError::from_commit)?;
                Ok(batch.map(|b| b.epoch.epoch))
            }
        }
    };
}
pub(crate) use impl_kt;
