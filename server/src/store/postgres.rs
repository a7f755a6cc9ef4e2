//! The multi-node backend: PostgreSQL shared by every relay node.
//!
//! Same schema and semantics as the SQLite backend, plus what several
//! writers need: row locks taken in a fixed order (account, then queue
//! counter, recipients sorted) so concurrent batches serialize per recipient
//! without deadlocking, `FOR UPDATE SKIP LOCKED` so concurrent prekey
//! claimers never receive the same key, and LISTEN/NOTIFY so a message
//! committed on one node wakes its recipient's connection on another. The
//! NOTIFY is issued inside the enqueue transaction, so PostgreSQL delivers it
//! only if and when the messages commit.
//!
//! Must never: put ciphertext in a NOTIFY payload, hold a row lock while
//! waiting on anything but the database, or pretend notifications are
//! reliable (after a listener reconnect it emits [`QueueEvent::Resync`]).
//!
//! The SQL itself is shared with SQLite (`shared.rs`); this file holds only
//! what is PostgreSQL's own: the pool, the listener, the row-lock fragments
//! and the NOTIFY that announces committed messages.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::Connection as _;
use sqlx::{Postgres, Transaction};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::control::{ControlBus, ControlNotice, SealedPayload, CONTROL_CHANNEL};

use super::rows::{self, QUEUE_CHANNEL};
use super::sqlite::EVENT_BUFFER;
use super::{ControlChannel, QueueEvent, StoreError, StoreLimits};

/// Connections per relay node (the listener holds one more).
const POOL_CONNECTIONS: u32 = 16;

/// How long the first connection at start may take (helper F). Without it an
/// unreachable server was silent for sqlx's 30 s acquire timeout and then
/// said only "pool timed out"; a relay that cannot reach its database should
/// say so, with the host, at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Wait before re-connecting a lost listener, so a database restart is not
/// hammered.
const LISTENER_RETRY: Duration = Duration::from_secs(1);

/// Applies umbra's PostgreSQL schema migrations (embedded at build time).
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Stops the listener task when the store is dropped.
struct ListenerTask(JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: PgPool,
    limits: StoreLimits,
    events: broadcast::Sender<QueueEvent>,
    control: ControlBus,
    listener_task: ListenerTask,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password, so it is not printed.
        f.debug_struct("PostgresStore")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Opens the pool after one direct connection attempt bounded by
/// [`CONNECT_TIMEOUT`], so a refused, unanswered or rejected connection is
/// reported at once with the host, the port and the cause (the pool itself
/// would retry silently until its acquire timeout).
async fn connect_checked(
    pool: PgPoolOptions,
    options: PgConnectOptions,
) -> Result<PgPool, StoreError> {
    let unreachable = |cause: String| StoreError::Unreachable {
        host: options.get_host().to_owned(),
        port: options.get_port(),
        cause,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
        Ok(Err(error)) => return Err(unreachable(error.to_string())),
        Ok(Ok(probe)) => {
            let _ = probe.close().await;
        }
    }
    Ok(pool.connect_with(options).await?)
}

impl PostgresStore {
    /// Connects, applies migrations and starts this node's queue listener.
    pub async fn open(url: &str, limits: StoreLimits) -> Result<Self, StoreError> {
        Self::open_options(PgConnectOptions::from_str(url)?, limits).await
    }

    /// [`PostgresStore::open`] with parsed connection options.
    pub async fn open_options(
        options: PgConnectOptions,
        limits: StoreLimits,
    ) -> Result<Self, StoreError> {
        let pool = connect_checked(
            PgPoolOptions::new().max_connections(POOL_CONNECTIONS),
            options,
        )
        .await?;
        MIGRATOR.run(&pool).await?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let control = ControlBus::default();
        let listener = ListenerTask(tokio::spawn(listen(
            pool.clone(),
            events.clone(),
            control.clone(),
        )));
        Ok(Self {
            pool,
            limits,
            events,
            control,
            listener_task: listener,
        })
    }

    /// Applies migrations to the database at `url` and disconnects.
    pub(crate) async fn migrate_url(url: &str) -> Result<(), StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = connect_checked(PgPoolOptions::new().max_connections(1), options).await?;
        MIGRATOR.run(&pool).await?;
        pool.close().await;
        Ok(())
    }

    /// Closes the pool, waiting for in-flight work (tests drop databases).
    pub async fn close(&self) {
        self.listener_task.0.abort();
        self.pool.close().await;
    }

    /// Write transactions start plainly; row locks order the writers.
    async fn write_tx(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// One pool serves reads and writes.
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// One pool serves reads and writes.
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Queues one NOTIFY per committed message inside the transaction:
    /// PostgreSQL delivers them to every node's listener at commit, and
    /// never if the transaction rolls back. The payload names the queue and
    /// seq, never ciphertext.
    async fn announce_in_tx(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        committed: &[QueueEvent],
    ) -> Result<(), StoreError> {
        let payloads: Vec<String> = committed
            .iter()
            .filter_map(|event| match event {
                QueueEvent::Enqueued { recipient, seq } => {
                    Some(rows::notify_payload(*recipient, *seq))
                }
                QueueEvent::Resync => None,
            })
            .collect();
        if payloads.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
            .bind(QUEUE_CHANNEL)
            .bind(&payloads)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Nothing after commit: this node hears its own NOTIFYs through its
    /// listener like every other node.
    fn announce_committed(&self, _committed: Vec<QueueEvent>) {}
}

/// PostgreSQL's fragments of the shared SQL: the row locks that serialize
/// concurrent writers on several nodes.
macro_rules! dialect {
    (name) => {
        "postgres"
    };
    // Enqueues, token inserts, blob creation: block a concurrent account
    // deletion, not each other.
    (key_share) => {
        " FOR KEY SHARE"
    };
    // Per-account totals (prekey cap, key publication): serialize with each
    // other, not with enqueues.
    (no_key_update) => {
        " FOR NO KEY UPDATE"
    };
    (for_update) => {
        " FOR UPDATE"
    };
    // Concurrent prekey claimers each take a different key.
    (skip_locked) => {
        " FOR UPDATE SKIP LOCKED"
    };
    (list_tables) => {
        "SELECT table_name::TEXT FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
    };
    (list_byte_columns) => {
        "SELECT column_name::TEXT FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 AND data_type = 'bytea' \
         ORDER BY ordinal_position"
    };
}

super::shared::impl_store!(PostgresStore, sqlx::Postgres);

#[async_trait]
impl ControlChannel for PostgresStore {
    async fn publish_control(&self, payload: SealedPayload) -> Result<(), StoreError> {
        // Every node's listener, this node's included, delivers it to its
        // bus, so all nodes apply it through the same path.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CONTROL_CHANNEL)
            .bind(payload.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn subscribe_control(&self) -> broadcast::Receiver<ControlNotice> {
        self.control.subscribe()
    }
}

/// The node's one listener, on the queue and the control channel: forwards
/// NOTIFYs to subscribers, and after every (re)connect, once LISTEN is in
/// place, tells them to resync, because notifications sent while it was away
/// are gone for good.
async fn listen(pool: PgPool, events: broadcast::Sender<QueueEvent>, control: ControlBus) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen_all([QUEUE_CHANNEL, CONTROL_CHANNEL]).await {
                    tracing::warn!(%error, "queue LISTEN failed; retrying");
                } else {
                    let _ = events.send(QueueEvent::Resync);
                    control.deliver(ControlNotice::Resync);
                    forward(&mut listener, &events, &control).await;
                }
            }
            Err(error) => tracing::warn!(%error, "queue listener cannot connect; retrying"),
        }
        tokio::time::sleep(LISTENER_RETRY).await;
    }
}

/// Relays notifications until the connection is lost.
async fn forward(
    listener: &mut PgListener,
    events: &broadcast::Sender<QueueEvent>,
    control: &ControlBus,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) if notification.channel() == CONTROL_CHANNEL => {
                // Verified by the subscriber, which drops (and counts) what
                // is not sealed by this relay's key; never a resync, so
                // garbage cannot make every node re-check every token.
                control.deliver(ControlNotice::Payload(notification.payload().to_owned()));
            }
            Ok(Some(notification)) => match rows::parse_notify_payload(notification.payload()) {
                Some((recipient, seq)) => {
                    let _ = events.send(QueueEvent::Enqueued { recipient, seq });
                }
                // Not written by a relay (every relay writes well-formed
                // notices): dropped. A resync here would let any role that
                // may NOTIFY make every node wake every connection.
                None => {
                    tracing::debug!("dropped a malformed queue notice");
                }
            },
            // Connection lost; a fresh listener is built by the caller so
            // the Resync is emitted only after LISTEN is active again.
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "queue listener failed");
                return;
            }
        }
    }
}
