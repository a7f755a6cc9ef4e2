//! The embedded backend: one SQLite file in the relay's data directory.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a committed
//! transaction has been fsynced before any method returns `Ok` and the relay
//! acknowledges. All writes go through a single writer connection (SQLite
//! allows one writer at a time anyway; queuing in the pool avoids
//! `SQLITE_BUSY` lock upgrades), reads use a separate pool that WAL lets run
//! beside the writer. Queue notifications are a local broadcast: an SQLite
//! relay is a single node.
//!
//! Must never: acknowledge before commit, split one logical operation over
//! two transactions, or be shared by two relay processes (PostgreSQL is the
//! multi-node backend).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::broadcast;
use umbra_wire::{
    AccountId, Address, PreKeyBundleWire, PreKeyWire, SignedPreKeyWire, Username,
};
use zeroize::Zeroizing;

use super::rows::{self, OPAQUE_SERVER_SETUP};
use super::{
    db_time, db_u64, AccountRecord, BlobId, BlobInfo, EnqueueOutcome, EnqueueRejection, NewMessage,
    PasswordFile, PublishedKeys, QueueEvent, Seq, Store, StoreError, StoreLimits, StoredMessage,
    TokenHash, TokenStatus, UnixSeconds, MAX_BLOB_CHUNK_BYTES,
};

/// How long a connection waits for a lock held by another connection (e.g.
/// an operator's `sqlite3` shell) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers that may run beside the single writer.
const READ_CONNECTIONS: u32 = 4;
/// Queue events buffered per subscriber before it is told to resync.
pub(crate) const EVENT_BUFFER: usize = 4096;

/// Applies umbra's SQLite schema migrations (embedded at build time).
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    limits: StoreLimits,
    events: broadcast::Sender<QueueEvent>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Maps the unique index on `identity_keys.identity` to
/// [`StoreError::IdentityInUse`]: a concurrent publish of the same identity
/// by another account loses the race there instead of in the SELECT check.
fn identity_in_use(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::IdentityInUse,
        other => other.into(),
    }
}

/// Connection settings every umbra SQLite connection uses.
fn harden(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies
    /// migrations.
    pub async fn open_file(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        let options = harden(SqliteConnectOptions::new().filename(path));
        Self::open_options(options, false, limits).await
    }

    /// Opens an `sqlite:` URL (`sqlite://path/to/file.db`, `sqlite::memory:`)
    /// and applies migrations.
    pub async fn open_url(url: &str, limits: StoreLimits) -> Result<Self, StoreError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = harden(SqliteConnectOptions::from_str(url)?);
        Self::open_options(options, in_memory, limits).await
    }

    async fn open_options(
        options: SqliteConnectOptions,
        in_memory: bool,
        limits: StoreLimits,
    ) -> Result<Self, StoreError> {
        // An in-memory database exists once per connection, so it must keep
        // exactly one connection for its whole life and read through it too.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .connect_with(options)
                .await?
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Self {
            writer,
            reader,
            limits,
            events,
        })
    }

    /// Applies migrations to the database at `options` without keeping it open.
    pub(crate) async fn migrate_options(options: SqliteConnectOptions) -> Result<(), StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(harden(options))
            .await?;
        MIGRATOR.run(&pool).await?;
        pool.close().await;
        Ok(())
    }

    /// Starts a write transaction holding SQLite's write lock from the start
    /// (`BEGIN IMMEDIATE`), so a read-then-write never fails half-way with a
    /// lock upgrade conflict if another process (an operator's shell, a
    /// `migrate` run) touches the file; waiting is bounded by the busy timeout.
    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Closes both pools, waiting for in-flight work (tests reopen files).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// A recipient's queue as this transaction sees it.
struct QueueState {
    last_seq: u64,
    depth: u64,
    dirty: bool,
}

/// Reads one recipient's counter and depth: `None` if the account does not
/// exist. The single writer connection makes this read-then-write safe.
async fn load_queue(
    tx: &mut Transaction<'_, Sqlite>,
    recipient: Address,
) -> Result<Option<QueueState>, StoreError> {
    if !account_exists(tx, recipient.account).await? {
        return Ok(None);
    }
    let account = recipient.account.as_bytes().as_slice();
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT last_seq FROM queue_counters WHERE account_id = $1 AND device_id = $2",
    )
    .bind(account)
    .bind(device_param(recipient))
    .fetch_optional(&mut **tx)
    .await?;
    let depth: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE account_id = $1 AND device_id = $2",
    )
    .bind(account)
    .bind(device_param(recipient))
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(QueueState {
        last_seq: rows::unsigned(last.unwrap_or(0), "negative queue counter")?,
        depth: rows::unsigned(depth, "negative row count")?,
        dirty: false,
    }))
}

fn device_param(address: Address) -> i64 {
    i64::from(address.device.0)
}

async fn account_exists(
    tx: &mut Transaction<'_, Sqlite>,
    account: AccountId,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM accounts WHERE account_id = $1")
        .bind(account.as_bytes().as_slice())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

async fn count(
    tx: &mut Transaction<'_, Sqlite>,
    sql: &'static str,
    account: AccountId,
) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar(sql)
        .bind(account.as_bytes().as_slice())
        .fetch_one(&mut **tx)
        .await?;
    rows::unsigned(n, "negative row count")
}

/// Tables holding rows for an account, children before parents so the
/// explicit delete never trips a foreign key. `audit` checks deletion over
/// the live schema instead, so a table missing here is caught.
const ACCOUNT_TABLES: [&str; 10] = [
    "blob_chunks",
    "blobs",
    "messages",
    "queue_counters",
    "one_time_prekeys",
    "last_resort_prekeys",
    "signed_prekeys",
    "identity_keys",
    "tokens",
    "accounts",
];

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn load_or_init_server_setup(
        &self,
        candidate: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(OPAQUE_SERVER_SETUP)
        .bind(candidate)
        .execute(&mut *tx)
        .await?;
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                .bind(OPAQUE_SERVER_SETUP)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Zeroizing::new(stored))
    }

    async fn create_account(
        &self,
        account: AccountId,
        username: &Username,
        password_file: &PasswordFile,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        if account_exists(&mut tx, account).await? {
            return Err(StoreError::AccountExists);
        }
        let inserted = sqlx::query(
            "INSERT INTO accounts (account_id, username, password_file) VALUES ($1, $2, $3) \
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(account.as_bytes().as_slice())
        .bind(username.as_str())
        .bind(password_file.as_bytes())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::UsernameTaken);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn account_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let row = sqlx::query("SELECT account_id, password_file FROM accounts WHERE username = $1")
            .bind(username.as_str())
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let account: Vec<u8> = row.try_get(0)?;
        let file: Vec<u8> = row.try_get(1)?;
        Ok(Some(AccountRecord {
            account: rows::account_id(&account)?,
            password_file: PasswordFile::new(file),
        }))
    }

    async fn username_of(&self, account: AccountId) -> Result<Option<Username>, StoreError> {
        let name: Option<String> =
            sqlx::query_scalar("SELECT username FROM accounts WHERE account_id = $1")
                .bind(account.as_bytes().as_slice())
                .fetch_optional(&self.reader)
                .await?;
        name.map(rows::username).transpose()
    }

    async fn rename_account(&self, account: AccountId, new: &Username) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        if !account_exists(&mut tx, account).await? {
            return Err(StoreError::UnknownAccount);
        }
        let holder: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT account_id FROM accounts WHERE username = $1")
                .bind(new.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        match holder {
            Some(holder) if holder.as_slice() == account.as_bytes().as_slice() => return Ok(()),
            Some(_) => return Err(StoreError::UsernameTaken),
            None => {}
        }
        sqlx::query("UPDATE accounts SET username = $2 WHERE account_id = $1")
            .bind(account.as_bytes().as_slice())
            .bind(new.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_account(&self, account: AccountId) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut existed = false;
        for table in ACCOUNT_TABLES {
            let sql = format!("DELETE FROM {table} WHERE account_id = $1");
            let done = sqlx::query(&sql)
                .bind(account.as_bytes().as_slice())
                .execute(&mut *tx)
                .await?;
            if table == "accounts" {
                existed = done.rows_affected() > 0;
            }
        }
        tx.commit().await?;
        Ok(existed)
    }

    async fn account_rows_by_table(
        &self,
        account: AccountId,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        super::audit::sqlite_rows_by_table(&self.reader, account).await
    }

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
        tx.commit().await?;
        Ok(())
    }

    async fn token_status(
        &self,
        token_hash: &TokenHash,
        now: UnixSeconds,
    ) -> Result<TokenStatus, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, device_id, expires_at FROM tokens WHERE token_hash = $1",
        )
        .bind(token_hash.as_slice())
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(TokenStatus::Unknown);
        };
        let account: Vec<u8> = row.try_get(0)?;
        let owner = rows::address(&account, row.try_get(1)?)?;
        let expires_at: i64 = row.try_get(2)?;
        Ok(if db_time(now) < expires_at {
            TokenStatus::Valid(owner)
        } else {
            TokenStatus::Expired(owner)
        })
    }

    async fn delete_token(&self, token_hash: &TokenHash) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
            .bind(token_hash.as_slice())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tokens_for_account(&self, account: AccountId) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM tokens WHERE account_id = $1")
            .bind(account.as_bytes().as_slice())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn purge_expired_tokens(&self, cutoff: UnixSeconds) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM tokens WHERE expires_at <= $1")
            .bind(db_time(cutoff))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn put_keys(
        &self,
        device: Address,
        identity: &[u8],
        signed_prekey: &SignedPreKeyWire,
        last_resort: Option<&PreKeyWire>,
    ) -> Result<PublishedKeys, StoreError> {
        let account = device.account.as_bytes().as_slice();
        let mut tx = self.write_tx().await?;
        // The single writer connection serializes this with every other
        // write, so the identity read below cannot go stale before commit.
        if !account_exists(&mut tx, device.account).await? {
            return Err(StoreError::UnknownAccount);
        }
        // One identity, one device: refuse a copy of a key another device
        // publishes (the unique index in migration 0002 backs this up).
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM identity_keys WHERE identity = $1 \
             AND NOT (account_id = $2 AND device_id = $3)",
        )
        .bind(identity)
        .bind(account)
        .bind(device_param(device))
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(StoreError::IdentityInUse);
        }
        let previous: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT identity FROM identity_keys WHERE account_id = $1 AND device_id = $2",
        )
        .bind(account)
        .bind(device_param(device))
        .fetch_optional(&mut *tx)
        .await?;
        // Identity keys are public, so an ordinary comparison is fine.
        let identity_replaced = previous.is_some_and(|old| old != identity);
        let mut one_time_prekeys_discarded = 0;
        if identity_replaced {
            one_time_prekeys_discarded = sqlx::query(
                "DELETE FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2",
            )
            .bind(account)
            .bind(device_param(device))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if last_resort.is_none() {
                sqlx::query(
                    "DELETE FROM last_resort_prekeys WHERE account_id = $1 AND device_id = $2",
                )
                .bind(account)
                .bind(device_param(device))
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO identity_keys (account_id, device_id, identity) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id, device_id) DO UPDATE SET identity = excluded.identity",
        )
        .bind(account)
        .bind(device_param(device))
        .bind(identity)
        .execute(&mut *tx)
        .await
        .map_err(identity_in_use)?;
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
                "INSERT INTO last_resort_prekeys (account_id, device_id, key_id, public_key) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, device_id) DO UPDATE SET \
                   key_id = excluded.key_id, public_key = excluded.public_key",
            )
            .bind(account)
            .bind(device_param(device))
            .bind(i64::from(prekey.id))
            .bind(prekey.key.as_bytes().as_slice())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(PublishedKeys {
            identity_replaced,
            one_time_prekeys_discarded,
        })
    }

    async fn add_one_time_prekeys(
        &self,
        device: Address,
        prekeys: &[PreKeyWire],
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        if !account_exists(&mut tx, device.account).await? {
            return Err(StoreError::UnknownAccount);
        }
        let stored = count(
            &mut tx,
            "SELECT COUNT(*) FROM one_time_prekeys WHERE account_id = $1",
            device.account,
        )
        .await?;
        let mut added = 0u64;
        for prekey in prekeys {
            let done = sqlx::query(
                "INSERT INTO one_time_prekeys (account_id, device_id, key_id, public_key) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, device_id, key_id) DO NOTHING",
            )
            .bind(device.account.as_bytes().as_slice())
            .bind(device_param(device))
            .bind(i64::from(prekey.id))
            .bind(prekey.key.as_bytes().as_slice())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                // A retried upload carries the same key again and is
                // harmless; the same id with another key is a client bug
                // that would leave it holding a secret the relay never
                // hands out, so it is refused (and the batch rolled back).
                let stored_key: Vec<u8> = sqlx::query_scalar(
                    "SELECT public_key FROM one_time_prekeys \
                     WHERE account_id = $1 AND device_id = $2 AND key_id = $3",
                )
                .bind(device.account.as_bytes().as_slice())
                .bind(device_param(device))
                .bind(i64::from(prekey.id))
                .fetch_one(&mut *tx)
                .await?;
                if stored_key.as_slice() != prekey.key.as_bytes().as_slice() {
                    return Err(StoreError::PreKeyIdConflict { id: prekey.id });
                }
            }
            added += done.rows_affected();
        }
        let limit = self.limits.max_one_time_prekeys_per_account;
        if stored.saturating_add(added) > limit {
            // Dropping `tx` rolls the whole upload back.
            return Err(StoreError::TooManyPreKeys {
                stored,
                offered: added,
                limit,
            });
        }
        let now_for_device: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2",
        )
        .bind(device.account.as_bytes().as_slice())
        .bind(device_param(device))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        rows::unsigned(now_for_device, "negative row count")
    }

    async fn claim_bundle(&self, device: Address) -> Result<Option<PreKeyBundleWire>, StoreError> {
        let account = device.account.as_bytes().as_slice();
        let mut tx = self.write_tx().await?;
        let identity: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT identity FROM identity_keys WHERE account_id = $1 AND device_id = $2",
        )
        .bind(account)
        .bind(device_param(device))
        .fetch_optional(&mut *tx)
        .await?;
        let signed = sqlx::query(
            "SELECT key_id, created_at, public_key, signature FROM signed_prekeys \
             WHERE account_id = $1 AND device_id = $2",
        )
        .bind(account)
        .bind(device_param(device))
        .fetch_optional(&mut *tx)
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
        // One statement finds and removes the key, so no other claimer can
        // observe it in between.
        let one_time = sqlx::query(
            "DELETE FROM one_time_prekeys WHERE rowid = ( \
               SELECT rowid FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2 \
               ORDER BY key_id LIMIT 1) \
             RETURNING key_id, public_key",
        )
        .bind(account)
        .bind(device_param(device))
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| -> Result<PreKeyWire, StoreError> {
            Ok(PreKeyWire {
                id: rows::key_id(row.try_get(0)?)?,
                key: rows::public_key(&row.try_get::<Vec<u8>, _>(1)?)?,
            })
        })
        .transpose()?;
        let last_resort = sqlx::query(
            "SELECT key_id, public_key FROM last_resort_prekeys \
             WHERE account_id = $1 AND device_id = $2",
        )
        .bind(account)
        .bind(device_param(device))
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| -> Result<PreKeyWire, StoreError> {
            Ok(PreKeyWire {
                id: rows::key_id(row.try_get(0)?)?,
                key: rows::public_key(&row.try_get::<Vec<u8>, _>(1)?)?,
            })
        })
        .transpose()?;
        tx.commit().await?;
        Ok(Some(PreKeyBundleWire {
            account: device.account,
            device: device.device,
            identity,
            signed_prekey,
            one_time_prekey: one_time,
            last_resort,
        }))
    }

    async fn published_identity(&self, device: Address) -> Result<Option<Vec<u8>>, StoreError> {
        let identity = sqlx::query_scalar(
            "SELECT identity FROM identity_keys WHERE account_id = $1 AND device_id = $2",
        )
        .bind(device.account.as_bytes().as_slice())
        .bind(device_param(device))
        .fetch_optional(&self.reader)
        .await?;
        Ok(identity)
    }

    async fn one_time_prekey_count(&self, device: Address) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2",
        )
        .bind(device.account.as_bytes().as_slice())
        .bind(device_param(device))
        .fetch_one(&self.reader)
        .await?;
        rows::unsigned(n, "negative row count")
    }

    async fn enqueue_batch(
        &self,
        messages: &[NewMessage],
    ) -> Result<Vec<EnqueueOutcome>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        let mut queues: BTreeMap<Address, Option<QueueState>> =
            messages.iter().map(|m| (m.recipient, None)).collect();
        for (recipient, state) in queues.iter_mut() {
            *state = load_queue(&mut tx, *recipient).await?;
        }
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut committed = Vec::new();
        for message in messages {
            let recipient = message.recipient;
            let Some(Some(state)) = queues.get_mut(&recipient) else {
                outcomes.push(Err(EnqueueRejection::UnknownRecipient));
                continue;
            };
            if state.depth >= self.limits.max_queue_per_recipient {
                outcomes.push(Err(EnqueueRejection::QueueFull));
                continue;
            }
            let seq = state
                .last_seq
                .checked_add(1)
                .ok_or(StoreError::Corrupt("queue counter exhausted"))?;
            sqlx::query(
                "INSERT INTO messages \
                   (account_id, device_id, seq, envelope, received_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(recipient.account.as_bytes().as_slice())
            .bind(device_param(recipient))
            .bind(db_u64(seq))
            .bind(message.envelope.as_slice())
            .bind(db_time(message.received_at))
            .bind(db_time(message.expires_at))
            .execute(&mut *tx)
            .await?;
            state.last_seq = seq;
            state.depth += 1;
            state.dirty = true;
            outcomes.push(Ok(seq));
            committed.push(QueueEvent::Enqueued { recipient, seq });
        }
        for (recipient, state) in &queues {
            let Some(state) = state.as_ref().filter(|s| s.dirty) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO queue_counters (account_id, device_id, last_seq) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, device_id) DO UPDATE SET last_seq = excluded.last_seq",
            )
            .bind(recipient.account.as_bytes().as_slice())
            .bind(device_param(*recipient))
            .bind(db_u64(state.last_seq))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        for event in committed {
            // No subscribers is not an error: nobody is connected.
            let _ = self.events.send(event);
        }
        Ok(outcomes)
    }

    async fn fetch_after(
        &self,
        recipient: Address,
        after: Seq,
        limit: u32,
        now: UnixSeconds,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let found = sqlx::query(
            "SELECT seq, envelope, received_at FROM messages \
             WHERE account_id = $1 AND device_id = $2 AND seq > $3 AND expires_at > $4 \
             ORDER BY seq LIMIT $5",
        )
        .bind(recipient.account.as_bytes().as_slice())
        .bind(device_param(recipient))
        .bind(db_u64(after))
        .bind(db_time(now))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        found
            .into_iter()
            .map(|row| {
                Ok(StoredMessage {
                    seq: rows::unsigned(row.try_get(0)?, "negative seq")?,
                    envelope: row.try_get(1)?,
                    received_at: rows::unix(row.try_get(2)?)?,
                })
            })
            .collect()
    }

    async fn ack(&self, recipient: Address, seqs: &[Seq]) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut deleted = 0;
        for seq in seqs {
            let done = sqlx::query(
                "DELETE FROM messages WHERE account_id = $1 AND device_id = $2 AND seq = $3",
            )
            .bind(recipient.account.as_bytes().as_slice())
            .bind(device_param(recipient))
            .bind(db_u64(*seq))
            .execute(&mut *tx)
            .await?;
            deleted += done.rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn ack_up_to(&self, recipient: Address, up_to: Seq) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM messages WHERE account_id = $1 AND device_id = $2 AND seq <= $3",
        )
        .bind(recipient.account.as_bytes().as_slice())
        .bind(device_param(recipient))
        .bind(db_u64(up_to))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn purge_expired_messages(&self, now: UnixSeconds) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM messages WHERE expires_at <= $1")
            .bind(db_time(now))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn queue_depth(&self, recipient: Address) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE account_id = $1 AND device_id = $2",
        )
        .bind(recipient.account.as_bytes().as_slice())
        .bind(device_param(recipient))
        .fetch_one(&self.reader)
        .await?;
        rows::unsigned(n, "negative row count")
    }

    async fn total_queued(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(&self.reader)
            .await?;
        rows::unsigned(n, "negative row count")
    }

    fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.events.subscribe()
    }

    async fn create_blob(
        &self,
        blob: BlobId,
        owner: AccountId,
        expires_at: UnixSeconds,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        if !account_exists(&mut tx, owner).await? {
            return Err(StoreError::UnknownAccount);
        }
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
        tx.commit().await?;
        Ok(())
    }

    async fn append_blob_chunk(
        &self,
        blob: BlobId,
        index: u32,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if bytes.is_empty() || bytes.len() > MAX_BLOB_CHUNK_BYTES {
            return Err(StoreError::BlobChunkSize { len: bytes.len() });
        }
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT account_id, chunk_count, size FROM blobs WHERE blob_id = $1")
            .bind(blob.0.as_slice())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::BlobNotWritable);
        };
        let owner: Vec<u8> = row.try_get(0)?;
        let expected = rows::chunk_count(row.try_get(1)?)?;
        let size: Option<i64> = row.try_get(2)?;
        if size.is_some() {
            return Err(StoreError::BlobNotWritable);
        }
        if index != expected {
            return Err(StoreError::BlobChunkOutOfOrder {
                expected,
                got: index,
            });
        }
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
            "UPDATE blobs SET chunk_count = chunk_count + 1, stored_bytes = stored_bytes + $2 \
             WHERE blob_id = $1",
        )
        .bind(blob.0.as_slice())
        .bind(db_u64(bytes.len() as u64))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish_blob(&self, blob: BlobId, size: u64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT stored_bytes, size FROM blobs WHERE blob_id = $1")
            .bind(blob.0.as_slice())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::BlobNotWritable);
        };
        let stored = rows::unsigned(row.try_get(0)?, "negative blob size")?;
        let finished: Option<i64> = row.try_get(1)?;
        if finished.is_some() {
            return Err(StoreError::BlobNotWritable);
        }
        if stored != size {
            return Err(StoreError::BlobSizeMismatch {
                declared: size,
                stored,
            });
        }
        sqlx::query("UPDATE blobs SET size = stored_bytes WHERE blob_id = $1")
            .bind(blob.0.as_slice())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        .fetch_optional(&self.reader)
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
        .fetch_optional(&self.reader)
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
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge_expired_blobs(&self, now: UnixSeconds) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "DELETE FROM blob_chunks WHERE blob_id IN \
               (SELECT blob_id FROM blobs WHERE expires_at <= $1)",
        )
        .bind(db_time(now))
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM blobs WHERE expires_at <= $1")
            .bind(db_time(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
