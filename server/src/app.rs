//! The relay as a value: shared state, the HTTP router, and starting and
//! stopping a relay on a socket. `main.rs` and the tests both go through
//! [`start`], so the binary and the in-process tests run the same code.
//!
//! Routes: `GET /v1/ws` (the WebSocket protocol), `POST /v1/blobs`,
//! `GET /v1/blobs/{id}`, `PUT`/`GET`/`DELETE /v1/backup`, `GET /healthz`,
//! `GET /readyz`, `GET /metrics`.
//!
//! Must never: hold a lock or a database transaction across a network write,
//! or return from shutdown while a connection is still finishing a request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use umbra_wire::Address;

use crate::admission::{self, Admission};
use crate::auth::key_file::{self, KeyFileError};
use crate::auth::opaque::{OpaqueError, OpaqueServer};
use crate::config::{Limits, RelayConfig};
use crate::control::ControlKey;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::sender_budget::SenderBudgets;
use crate::serve::{self, PeerAddr, ServeOptions};
use crate::shutdown::{self, ShutdownSignal, ShutdownTrigger};
use crate::store::group_commit::{GroupCommitError, GroupCommitter, SubmittedUnder};
use crate::store::{EnqueueOutcome, NewMessage, SharedStore, StoreError, StoreLimits};
use crate::tls::{self, TlsError};
use crate::{blobs, connection, expiry, wakeups};

/// How long shutdown waits for connections to finish their current request
/// and say goodbye before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long `/readyz` waits for the store's ping. A load balancer's probe
/// gives up after a second or so; answering `503` before that lets it take
/// the node out of rotation while PostgreSQL is down, instead of counting a
/// timeout. A healthy ping takes well under a millisecond.
pub const READY_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Most messages one group-commit transaction carries.
pub const MAX_MESSAGES_PER_COMMIT: usize = 512;

/// Everything request handlers share. Cheap to clone (`Arc`).
#[derive(Clone)]
pub struct AppState(Arc<Relay>);

impl std::ops::Deref for AppState {
    type Target = Relay;
    fn deref(&self) -> &Relay {
        &self.0
    }
}

/// The relay's shared state.
pub struct Relay {
    /// Enforced limits.
    pub limits: Limits,
    /// Durable storage.
    pub store: SharedStore,
    /// The OPAQUE server keys.
    pub opaque: OpaqueServer,
    /// This node's key-transparency directory (PROTOCOL.md 16).
    pub kt: Arc<crate::kt::KtDirectory>,
    /// Seals and verifies control-channel payloads (derived from `opaque`,
    /// so every node sharing the key file shares it).
    pub control_key: ControlKey,
    /// Batches concurrent sends into shared transactions.
    committer: GroupCommitter,
    /// Request budgets.
    pub rate_limits: RateLimits,
    /// Envelope bytes per sender per hour, in this node's memory only.
    pub sender_budgets: SenderBudgets,
    /// Exported counters.
    pub metrics: Metrics,
    /// Devices connected to this node.
    pub hub: Arc<Hub>,
    /// Open TCP connections, against the connection caps.
    pub admission: Admission,
    shutdown: ShutdownTrigger,
    next_connection: AtomicU64,
    /// Each live connection holds a clone; shutdown waits until all are gone.
    connection_guard: Mutex<Option<mpsc::Sender<()>>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("backend", &self.store.backend())
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are single map operations; poisoning cannot leave
    // them half-done.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Relay {
    /// A fresh connection id (never 0).
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A new shutdown signal.
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.shutdown.subscribe()
    }

    /// Marks a connection live; dropping the guard marks it gone. `None`
    /// once shutdown has begun (no new connections).
    pub fn connection_guard(&self) -> Option<mpsc::Sender<()>> {
        locked(&self.connection_guard).clone()
    }

    /// Queues a batch durably and returns one outcome per message, only
    /// after commit; refused if `under`'s token is no longer valid then.
    pub async fn enqueue(
        &self,
        batch: Vec<NewMessage>,
        under: SubmittedUnder,
    ) -> Result<Vec<EnqueueOutcome>, GroupCommitError> {
        let started = Instant::now();
        let result = self.committer.submit_under(batch, Some(under)).await;
        self.metrics.store_latency.observe(started.elapsed());
        result
    }

    /// Whether the group committer still takes submissions (its thread or
    /// workers have not ended), for the readiness probe.
    pub fn committer_running(&self) -> bool {
        self.committer.is_running()
    }

    /// Deletes `recipient`'s acknowledged messages in the next shared
    /// transaction (group commit); returns how many were deleted.
    pub async fn ack(
        &self,
        recipient: Address,
        seqs: Vec<u64>,
        under: SubmittedUnder,
    ) -> Result<u64, GroupCommitError> {
        let started = Instant::now();
        let result = self
            .committer
            .submit_ack_under(recipient, seqs, Some(under))
            .await;
        self.metrics.store_latency.observe(started.elapsed());
        result
    }
}

/// Why a relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The store failed while loading the server setup.
    #[error("the store failed while loading the OPAQUE server setup")]
    Store(#[from] StoreError),
    /// The stored OPAQUE setup is unusable.
    #[error("the stored OPAQUE server setup is unusable")]
    Opaque(#[from] OpaqueError),
    /// The OPAQUE key file is missing from a set-up database, unreadable,
    /// too widely readable, malformed or another relay's.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The key-transparency key file is missing from a published
    /// directory, unreadable, too widely readable, malformed or another
    /// relay's.
    #[error(transparent)]
    KtKeyFile(#[from] crate::kt::KtKeyFileError),
    /// The key-transparency directory could not be rebuilt from the
    /// database, or its first epoch published.
    #[error("the store failed while loading the key-transparency directory")]
    KtDirectory(#[source] StoreError),
}

/// A relay serving on a socket.
pub struct RunningRelay {
    /// The bound address (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// `https` with TLS, else `http`.
    pub scheme: &'static str,
    /// Shared state (tests inspect metrics and the hub through it).
    pub state: AppState,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

impl RunningRelay {
    /// The base URL clients use, e.g. `http://127.0.0.1:7878`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// Begins graceful shutdown.
    pub fn shutdown(&self) {
        self.trigger.trigger();
    }

    /// Waits until the relay has stopped (after [`RunningRelay::shutdown`]
    /// or an OS signal routed to it).
    pub async fn wait(self) {
        if let Err(error) = self.task.await {
            tracing::error!(%error, "relay task failed");
        }
    }
}

/// Builds the shared state around the OPAQUE server keys (loaded from the
/// key file by [`start`]).
pub async fn build_state(
    limits: Limits,
    store: SharedStore,
    opaque: OpaqueServer,
    kt: Arc<crate::kt::KtDirectory>,
    trigger: ShutdownTrigger,
) -> Result<(AppState, mpsc::Receiver<()>), StartError> {
    let (guard_tx, guard_rx) = mpsc::channel(1);
    // One worker on both backends: SQLite has one writer, and on PostgreSQL
    // the batches of several workers touch the same recipients' counters,
    // so they waited on each other's row locks while each committed a
    // smaller batch (one worker gave 1.3x the acked rate at 32 senders,
    // docs/BENCHMARKS.md "Relay throughput").
    let workers = 1;
    // Committed envelopes go straight to a recipient connected here.
    let hub = Arc::new(Hub::default());
    let hand_off: Arc<dyn crate::store::group_commit::HandOff> = hub.clone();
    // The committer's store call must fail before the request deadline
    // does, so a frozen database is answered "unavailable, nothing stored"
    // (retryable), not "may have been stored" (PROTOCOL.md 9.6).
    let write_bound = limits.request_deadline.mul_f64(0.6);
    let committer = GroupCommitter::spawn_with(
        store.clone(),
        MAX_MESSAGES_PER_COMMIT,
        workers,
        hand_off,
        write_bound,
    );
    let admission = Admission::new(admission::caps_within_descriptor_limit(
        limits.max_connections,
        limits.max_connections_per_address,
    ));
    let relay = Relay {
        committer,
        rate_limits: RateLimits::new(&limits),
        sender_budgets: SenderBudgets::new(limits.sender_bytes_per_hour),
        limits,
        store,
        control_key: ControlKey::derive(&opaque.to_bytes()),
        opaque,
        kt,
        metrics: Metrics::default(),
        hub,
        admission,
        shutdown: trigger,
        next_connection: AtomicU64::new(0),
        connection_guard: Mutex::new(Some(guard_tx)),
    };
    Ok((AppState(Arc::new(relay)), guard_rx))
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/ws", get(websocket))
        .route(
            "/v1/blobs",
            post(blobs::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/blobs/{id}", get(blobs::download))
        .merge(crate::backup::routes(state.clone()))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    upgrade: WebSocketUpgrade,
) -> axum::response::Response {
    let guard = state
        .connection_guard()
        .filter(|_| !state.shutdown.subscribe().is_triggered());
    let Some(guard) = guard else {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    };
    // Messages up to twice the limit are read so the relay can answer
    // FrameTooLarge before closing; beyond that tungstenite drops the socket.
    let hard_cap = state.limits.max_frame_bytes.saturating_mul(2);
    // Small buffers: tungstenite allocates the read buffer up front for
    // every connection (128 KiB by default), which made an idle WebSocket
    // cost ~138 KB. A larger frame still fits: the buffer grows to hold it.
    // Writes are flushed after every message, so the write buffer never
    // holds more than one frame; its cap is one maximal frame past the
    // target, so a full-size frame is always accepted.
    let buffer = state.limits.websocket_buffer_bytes;
    upgrade
        .read_buffer_size(buffer)
        .write_buffer_size(buffer)
        .max_write_buffer_size(buffer.saturating_add(hard_cap))
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| async move {
            connection::serve(socket, state, peer).await;
            drop(guard);
        })
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let started = Instant::now();
    let ping = tokio::time::timeout(READY_PROBE_TIMEOUT, state.store.ping()).await;
    state.metrics.store_latency.observe(started.elapsed());
    match ping {
        Ok(Ok(())) if state.shutdown.subscribe().is_triggered() => {
            (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
        }
        // Without its committer a node can take no Send or Ack: a balancer
        // must stop sending clients here (the writer thread ended).
        Ok(Ok(())) if !state.committer_running() => {
            tracing::error!("readiness probe: the group committer has stopped");
            (StatusCode::SERVICE_UNAVAILABLE, "committer stopped\n")
        }
        Ok(Ok(())) => (StatusCode::OK, "ready\n"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness probe: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n")
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = READY_PROBE_TIMEOUT.as_millis() as u64,
                "readiness probe: store did not answer in time"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n")
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let open = i64::try_from(state.admission.open()).unwrap_or(i64::MAX);
    state
        .metrics
        .connections_admitted
        .store(open, std::sync::atomic::Ordering::Relaxed);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

/// Opens (and migrates) the configured store with the configured queue,
/// prekey, blob-quota and name-quarantine bounds, which the store enforces
/// inside its transactions. (The sender budget is not among them: it lives
/// in memory, `crate::sender_budget`, so nothing links it to the messages.)
pub async fn open_store(config: &RelayConfig) -> Result<SharedStore, StoreError> {
    let l = &config.limits;
    let limits = StoreLimits {
        max_queue_per_recipient: l.max_queue_len,
        max_one_time_prekeys_per_account: u64::from(l.max_prekeys_per_device),
        // One knob for both kinds (PROTOCOL.md 11.8): a hybrid claim takes
        // one of each.
        max_kem_one_time_prekeys_per_account: u64::from(l.max_prekeys_per_device),
        max_blobs_per_account: l.max_blobs_per_account,
        max_blob_bytes_per_account: l.max_blob_bytes_per_account,
        name_quarantine_secs: u64::from(l.name_quarantine_days) * 24 * 60 * 60,
    };
    crate::store::open_with_limits(config.database_url(), &config.data_dir, limits).await
}

/// Binds, serves, and runs the background tasks until shutdown. With
/// `os_signals`, SIGTERM/Ctrl-C also trigger shutdown.
pub async fn start(
    config: &RelayConfig,
    store: SharedStore,
    os_signals: bool,
) -> Result<RunningRelay, StartError> {
    let (trigger, _) = shutdown::channel();
    // The key file is checked against the database before anything listens.
    let opaque = key_file::load_or_create(&config.opaque_key_file, &*store).await?;
    // So are the KT keys; the directory is rebuilt from the database (and
    // epoch 0 published on a first start) before anything is served.
    let kt_keys = crate::kt::key_file::load_or_create(&config.kt_key_file, &*store).await?;
    let kt = Arc::new(crate::kt::KtDirectory::new(kt_keys));
    kt.round(&store).await.map_err(StartError::KtDirectory)?;
    let (state, mut guard_rx) =
        build_state(config.limits.clone(), store, opaque, kt, trigger.clone()).await?;
    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = tcp.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let tls_config = match &config.tls {
        Some(files) => Some(tls::load_server_config(files)?),
        None => None,
    };
    let scheme = if tls_config.is_some() {
        "https"
    } else {
        "http"
    };

    let background = [
        tokio::spawn(expiry::run(state.clone(), state.shutdown_signal())),
        tokio::spawn(wakeups::run(state.clone(), state.shutdown_signal())),
        tokio::spawn(crate::kt::publisher::run(
            state.kt.clone(),
            state.store.clone(),
            config.limits.kt_epoch_interval,
            state.shutdown_signal(),
        )),
    ];

    if os_signals {
        let trigger = trigger.clone();
        tokio::spawn(async move {
            shutdown::os_signal().await;
            tracing::info!("shutdown requested");
            trigger.trigger();
        });
    }

    let listener = serve::Listener {
        tcp,
        tls: tls_config,
        admission: state.admission.clone(),
        options: ServeOptions {
            header_read_timeout: config.limits.header_read_timeout,
            retry_after_secs: serve::REFUSAL_RETRY_AFTER_SECS,
            shutdown_grace: SHUTDOWN_GRACE,
        },
    };
    let app = router(state.clone());
    let serve_state = state.clone();
    let task = tokio::spawn(async move {
        // Returns once shutdown was signalled and the HTTP exchanges in
        // flight were answered; the accept loop itself never fails.
        serve::run(
            listener,
            app,
            serve_state.clone(),
            serve_state.shutdown_signal(),
        )
        .await;
        // Wind down the WebSockets it had upgraded.
        serve_state.shutdown.trigger();
        // Refuse new upgrades, then wait for every connection (each watches
        // the shutdown signal, finishes its request, says Closing) to end.
        locked(&serve_state.connection_guard).take();
        if tokio::time::timeout(SHUTDOWN_GRACE, guard_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!("connections did not close within the grace period");
        }
        for task in background {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        tracing::info!("relay stopped");
    });
    Ok(RunningRelay {
        local_addr,
        scheme,
        state,
        trigger,
        task,
    })
}
