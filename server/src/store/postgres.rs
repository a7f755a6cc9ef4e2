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

/// Longest a request waits for a pooled connection, opening a new one
/// included (sqlx has no separate connect timeout: a connection the pool
/// opens is bounded by this too). A healthy pool hands one out in
/// microseconds and a connection opens in milliseconds; a wait this long
/// means PostgreSQL is down, restarting or out of connections. sqlx's
/// default, 30 s, held every request (and `Send`) that long while
/// PostgreSQL was stopped; with 1 s the client hears `Internal` with a
/// retry hint well within the 2 s the relay promises (PROTOCOL.md 9.6), and
/// its own backoff does the waiting.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// PostgreSQL's `statement_timeout` for the relay's sessions: every relay
/// statement touches a handful of rows by key and runs in milliseconds, so
/// one that runs this long is waiting on a lock or a saturated server. It
/// is cancelled by the server (the transaction rolls back: a definite
/// failure, never an unknown outcome) and its row locks are released,
/// instead of holding other nodes' enqueues to the same recipients.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// `statement_timeout` inside the relay's bulk transactions (counting the
/// whole queue, deleting an account with a full queue and its blobs), set
/// with `SET LOCAL` so it ends with them: those may rightly run longer than
/// [`STATEMENT_TIMEOUT`], which is for request statements. Purges need no
/// such exception: they delete in batches (`limits::PURGE_BATCH_ROWS`).
pub const BULK_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// PostgreSQL's `idle_in_transaction_session_timeout`: a relay transaction
/// never waits on anything but the database, so one idle this long belongs
/// to a node that hung or lost its network; the server ends it and frees
/// its row locks rather than waiting for TCP to notice (minutes).
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keepalive of the server's end of every relay session
/// (`tcp_keepalives_idle`, `_interval`, `_count`): PostgreSQL probes a
/// connection idle this long and drops it after this many unanswered
/// probes, so the sessions (and any transaction) of a relay node whose host
/// died or was partitioned away are ended in about 25 s instead of the
/// kernel's two hours. The relay's own end cannot be configured through
/// sqlx 0.8 (no socket hook); its waits are bounded by the request deadline
/// instead (`commands::REQUEST_DEADLINE`).
const SERVER_KEEPALIVE_IDLE_SECS: u32 = 10;
const SERVER_KEEPALIVE_INTERVAL_SECS: u32 = 5;
const SERVER_KEEPALIVE_COUNT: u32 = 3;

/// How long the first connection at start may take (helper F). Without it an
/// unreachable server was silent for sqlx's 30 s acquire timeout and then
/// said only "pool timed out"; a relay that cannot reach its database should
/// say so, with the host, at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Wait before re-connecting a lost listener, so a database restart is not
/// hammered.
const LISTENER_RETRY: Duration = Duration::from_secs(1);
/// How often the listener's own connection is probed (`SELECT 1`). A
/// listener only ever reads, so a connection that went dead without a
/// reset (a partition, a stalled server or host) would otherwise look idle
/// for as long as the kernel keeps it (hours): the node would silently stop
/// hearing other nodes' deliveries and revocations.
pub const LISTENER_PROBE_EVERY: Duration = Duration::from_secs(10);
/// How long a probe may take before the listener is taken for dead and
/// replaced (a fresh connection, LISTEN, then a resync of every connection
/// on this node, as after any reconnect).
pub const LISTENER_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

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

/// The server-side timeouts of every relay session, sent as startup
/// parameters so they hold from the first statement of every connection.
/// An operator's own `options` in the URL are kept; these are added after
/// them and win.
fn session_settings(options: PgConnectOptions) -> PgConnectOptions {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    options.options([
        ("statement_timeout", ms(STATEMENT_TIMEOUT)),
        (
            "idle_in_transaction_session_timeout",
            ms(IDLE_IN_TRANSACTION_TIMEOUT),
        ),
        (
            "tcp_keepalives_idle",
            SERVER_KEEPALIVE_IDLE_SECS.to_string(),
        ),
        (
            "tcp_keepalives_interval",
            SERVER_KEEPALIVE_INTERVAL_SECS.to_string(),
        ),
        ("tcp_keepalives_count", SERVER_KEEPALIVE_COUNT.to_string()),
    ])
}

/// One direct connection, bounded by [`CONNECT_TIMEOUT`], so a refused,
/// unanswered or rejected connection is reported at once with the host, the
/// port and the cause (the pool itself would retry silently until its
/// acquire timeout). Migrations run over it: it carries none of the relay
/// sessions' timeouts, which a long migration on a big table would exceed.
async fn connect_direct(options: &PgConnectOptions) -> Result<PgConnection, StoreError> {
    let unreachable = |cause: String| StoreError::Unreachable {
        host: options.get_host().to_owned(),
        port: options.get_port(),
        cause,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Err(_) => Err(unreachable(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Err(error)) => Err(unreachable(error.to_string())),
        Ok(Ok(connection)) => Ok(connection),
    }
}

/// Applies pending migrations over a direct connection, then closes it.
async fn migrate(options: &PgConnectOptions) -> Result<(), StoreError> {
    let mut direct = connect_direct(options).await?;
    let migrated = MIGRATOR.run(&mut direct).await;
    let _ = direct.close().await;
    Ok(migrated?)
}

impl PostgresStore {
    /// Connects, applies migrations and starts this node's queue listener.
    pub async fn open(url: &str, limits: StoreLimits) -> Result<Self, StoreError> {
        Self::open_options(PgConnectOptions::from_str(url)?, limits).await
    }

    /// The pool every node opens: bounded waits, so a database that is down
    /// fails requests at once instead of holding them.
    fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
    }

    /// [`PostgresStore::open`] with parsed connection options.
    pub async fn open_options(
        options: PgConnectOptions,
        limits: StoreLimits,
    ) -> Result<Self, StoreError> {
        migrate(&options).await?;
        let options = session_settings(options);
        let pool = Self::pool_options().connect_with(options.clone()).await?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let control = ControlBus::default();
        let listener = ListenerTask(tokio::spawn(listen(
            options,
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
        migrate(&PgConnectOptions::from_str(url)?).await
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

    /// Lifts the request [`STATEMENT_TIMEOUT`] to [`BULK_STATEMENT_TIMEOUT`]
    /// for the rest of `tx` (`SET LOCAL`: it ends with the transaction, so
    /// the pooled session keeps the short one).
    async fn bulk_statements(tx: &mut Transaction<'static, Postgres>) -> Result<(), StoreError> {
        let sql = format!(
            "SET LOCAL statement_timeout = '{}ms'",
            BULK_STATEMENT_TIMEOUT.as_millis()
        );
        sqlx::query(&sql).execute(&mut **tx).await?;
        Ok(())
    }

    /// [`bulk_statements`](Self::bulk_statements), and the idle limit
    /// lifted to the same for the rest of `tx`: a key-transparency
    /// publication computes the epoch (VRF evaluations, the map's paths,
    /// the head's signature) between its statements, with the publisher's
    /// row locked, and a large first epoch takes seconds of that. The
    /// shorter [`IDLE_IN_TRANSACTION_TIMEOUT`] would end it as if the node
    /// had hung, on every start.
    async fn sealing_statements(tx: &mut Transaction<'static, Postgres>) -> Result<(), StoreError> {
        Self::bulk_statements(tx).await?;
        let sql = format!(
            "SET LOCAL idle_in_transaction_session_timeout = '{}ms'",
            BULK_STATEMENT_TIMEOUT.as_millis()
        );
        sqlx::query(&sql).execute(&mut **tx).await?;
        Ok(())
    }

    /// One pool serves reads and writes.
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// One pool serves reads and writes.
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Nothing after commit: this node hears its own NOTIFYs through its
    /// listener like every other node.
    fn announce_committed(&self, _committed: Vec<QueueEvent>) {}

    /// Several nodes and commits that overlap: the committer's async
    /// workers on the pool suit PostgreSQL better than one thread.
    fn open_dedicated_writer(
        &self,
    ) -> Result<Option<Box<dyn super::group_commit::DedicatedWriter>>, StoreError> {
        Ok(None)
    }
}

/// PostgreSQL's fragments of the shared SQL: the row locks that serialize
/// concurrent writers on several nodes.
macro_rules! dialect {
    (name) => {
        "postgres"
    };
    // A batch's queue locks and its writes (NOTIFY included), each in one
    // statement of PostgreSQL's own instead of several round trips.
    (lock_queues) => {
        $crate::store::postgres_queue::lock_queues
    };
    (write_batch) => {
        $crate::store::postgres_queue::write_batch
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
    // A bundle claim holds its device's identity row, so a publication
    // (which updates it) waits for the claim: every statement of the
    // claim then reads the same keys.
    (for_share) => {
        " FOR SHARE"
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
///
/// Each listener gets a pool of its own, of one connection, outside the
/// request pool: a listener given up on a dead connection is dropped, and
/// sqlx then sends `UNLISTEN *` on that connection from a task of its own,
/// which waits as long as the connection does. That task holds only the old
/// listener's pool, never a slot a request or the next listener needs.
async fn listen(
    options: PgConnectOptions,
    events: broadcast::Sender<QueueEvent>,
    control: ControlBus,
) {
    loop {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(CONNECT_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options.clone());
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

/// What the listener's loop woke for.
enum Woke {
    Received(Result<Option<sqlx::postgres::PgNotification>, sqlx::Error>),
    Probe,
}

/// Relays notifications until the connection is lost, or stops answering
/// the liveness probe ([`LISTENER_PROBE_EVERY`], [`LISTENER_PROBE_TIMEOUT`]).
async fn forward(
    listener: &mut PgListener,
    events: &broadcast::Sender<QueueEvent>,
    control: &ControlBus,
) {
    let mut probe = tokio::time::interval_at(
        tokio::time::Instant::now() + LISTENER_PROBE_EVERY,
        LISTENER_PROBE_EVERY,
    );
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // `try_recv` is cancel-safe (sqlx reads a message whole or not at
        // all), so a probe tick loses no notification.
        let woke = tokio::select! {
            received = listener.try_recv() => Woke::Received(received),
            _ = probe.tick() => Woke::Probe,
        };
        let received = match woke {
            Woke::Received(received) => received,
            Woke::Probe => {
                // Notifications arriving meanwhile are buffered by sqlx
                // and returned by the next `try_recv`.
                let answered = tokio::time::timeout(
                    LISTENER_PROBE_TIMEOUT,
                    sqlx::query("SELECT 1").execute(&mut *listener),
                )
                .await;
                match answered {
                    Ok(Ok(_)) => continue,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "queue listener failed its liveness probe; reconnecting");
                    }
                    Err(_) => tracing::warn!(
                        timeout_ms = LISTENER_PROBE_TIMEOUT.as_millis() as u64,
                        "queue listener's connection did not answer its liveness probe; reconnecting"
                    ),
                }
                return;
            }
        };
        match received {
            Ok(Some(notification)) if notification.channel() == CONTROL_CHANNEL => {
                // Verified by the subscriber, which drops (and counts) what
                // is not sealed by this relay's key; never a resync, so
                // garbage cannot make every node re-check every token.
                control.deliver(ControlNotice::Payload(notification.payload().to_owned()));
            }
            Ok(Some(notification)) => match rows::parse_notify_list(notification.payload()) {
                Some(entries) => {
                    for (recipient, seq) in entries {
                        let _ = events.send(QueueEvent::Enqueued { recipient, seq });
                    }
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
