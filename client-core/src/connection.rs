//! The background connection: one authenticated WebSocket at a time,
//! re-opened with jittered exponential backoff, plus the two workers that
//! depend on it (inbound processing and the outbox pump).
//!
//! Three tasks per running connection, all holding only a `Weak` reference
//! to the engine, so dropping the last [`Client`](crate::Client) stops them:
//! - the socket task: connect, `Authenticate`, then route frames — replies
//!   to their waiting requests, deliveries (in order) to the inbound worker;
//! - the inbound worker: decrypt and persist each delivery, *then* ack it
//!   (or leave it unacknowledged when it was kept for another try), and
//!   start key maintenance once the relay's queue is drained;
//! - the outbox pump: resend the outbox after every (re)connection and
//!   whenever a message is queued.
//!
//! A delivery kept unacknowledged (its failure may be passing, see
//! `inbound.rs`) is only pushed again by the relay after a new
//! `Authenticate`, so a long-lived connection that kept one reconnects on
//! purpose after a jittered, growing wait
//! ([`KEPT_REDELIVERY_FIRST_WAIT`](crate::consts::KEPT_REDELIVERY_FIRST_WAIT)
//! up to [`KEPT_REDELIVERY_MAX_WAIT`]). The inbound worker keeps the
//! envelopes of what it kept (`kept_again.rs`): when a group state change
//! lists the sender of an item held for membership (`groups/held.rs`), it
//! processes them again on this connection and the held items open, no
//! reconnect needed; only an envelope that did not fit makes the
//! connection reconnect soon (after [`KEPT_REDELIVERY_OPENABLE_WAIT`]).
//!
//! Must never: ack a delivery before the inbound worker persisted it,
//! reorder deliveries, retry forever after the relay said the token is
//! invalid, or hold the engine alive after the client is dropped.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rand::rngs::OsRng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use umbra_protocol::wire::{ErrorCode, RelayFrame, Request, Response};

use crate::backoff::Backoff;
use crate::consts::{
    KEPT_REDELIVERY_MAX_WAIT, KEPT_REDELIVERY_OPENABLE_WAIT, MAINTENANCE_INTERVAL,
};
use crate::engine::{lock, Engine};
use crate::failure::{ConnectionFailure, Ended};
use crate::relay_link::RelayLink;
use crate::{ConnectionState, Error, SharedError};

mod inbound_worker;
mod kept_again;
mod outbox_pump;
use inbound_worker::inbound_worker;
use outbox_pump::outbox_pump;

/// Keepalive interval: a `Ping` when the socket has been quiet this long.
const KEEPALIVE: Duration = Duration::from_secs(25);

/// A request for the socket task.
pub(crate) enum Outgoing {
    /// Send and deliver the reply (or the connection's failure) to the sender.
    Call(Request, oneshot::Sender<Result<Response, Error>>),
    /// Send; ignore the reply.
    Fire(Request),
}

/// Something the socket task hands to the inbound worker, in arrival order.
pub(crate) enum Inbound {
    Deliver {
        seq: u64,
        envelope: Vec<u8>,
        received_at_ms: u64,
    },
    Ephemeral {
        payload: Vec<u8>,
    },
    QueueEmpty,
    PreKeysLow,
    KemPreKeysLow,
    /// A new session authenticated: the relay pushes every delivery not
    /// acknowledged yet again, so the kept ones of the previous session
    /// are forgotten (`kept_again.rs`).
    Connected,
}

/// What the inbound worker tells the socket task about kept deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeptSignal {
    /// A delivery was kept: reconnect later so the relay pushes it again.
    Kept,
    /// A connection drained its queue without keeping anything.
    Clear,
    /// A kept item can open now (a group state change listed its sender)
    /// but its envelope was not kept on this connection: reconnect soon,
    /// so the relay pushes it again.
    Openable,
    /// Every delivery kept on this connection has since been processed
    /// again and acknowledged (a held one opened): no reconnect is needed
    /// for them.
    Settled,
}

/// The running connection's handle, owned by the engine.
pub(crate) struct ConnectionHandle {
    pub(crate) requests: mpsc::UnboundedSender<Outgoing>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ConnectionHandle {
    pub(crate) fn spawn(engine: &Arc<Engine>) -> Self {
        let (requests, requests_rx) = mpsc::unbounded_channel();
        // Unbounded so the socket task never blocks on the inbound worker,
        // which may itself wait for a reply routed by the socket task. The
        // relay pushes a bounded page at a time, which bounds the queue.
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        let (kept_tx, kept_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let weak = Arc::downgrade(engine);
        let tasks = vec![
            tokio::spawn(socket_task(
                weak.clone(),
                requests_rx,
                inbound_tx,
                kept_rx,
                stop_rx.clone(),
            )),
            tokio::spawn(inbound_worker(
                weak.clone(),
                inbound_rx,
                kept_tx,
                stop_rx.clone(),
            )),
            tokio::spawn(outbox_pump(weak, stop_rx)),
        ];
        Self {
            requests,
            stop,
            tasks,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.tasks.first().is_none_or(|t| t.is_finished())
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Why a connected session ended.
enum SessionEnd {
    /// Asked to stop.
    Stopped,
    /// Worth reconnecting; why this attempt or session failed.
    Retry(Error),
    /// The relay will not take us back (token invalid, old protocol...).
    Fatal(Ended),
    /// Another connection for this account took over.
    Replaced,
    /// Closed on purpose so the relay pushes kept deliveries again.
    Redeliver,
}

async fn socket_task(
    engine: Weak<Engine>,
    mut requests: mpsc::UnboundedReceiver<Outgoing>,
    inbound: mpsc::UnboundedSender<Inbound>,
    mut kept: mpsc::UnboundedReceiver<KeptSignal>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::standard();
    let first_wait = match engine.upgrade() {
        Some(strong) => strong.kept_redelivery_first_wait(),
        None => return,
    };
    let mut redelivery = Backoff::new(first_wait, KEPT_REDELIVERY_MAX_WAIT);
    loop {
        if *stop.borrow() {
            break;
        }
        let Some(strong) = engine.upgrade() else {
            break;
        };
        strong.set_state(ConnectionState::Connecting);
        strong.caught_up.store(false, Ordering::SeqCst);
        strong.kem_published.store(false, Ordering::SeqCst);
        // A stop must not wait out a connect attempt to a relay that
        // accepts and never answers: `Client::shutdown` would hang on it.
        let attempt = tokio::select! {
            attempt = open_session(&strong) => attempt,
            _ = stop.changed() => Err(SessionEnd::Stopped),
        };
        drop(strong);
        let end = match attempt {
            Ok(link) => {
                backoff.reset();
                let channels = SessionChannels {
                    requests: &mut requests,
                    inbound: &inbound,
                    kept: &mut kept,
                    redelivery: &mut redelivery,
                };
                run_session(&engine, link, channels, &mut stop).await
            }
            Err(end) => end,
        };
        let Some(strong) = engine.upgrade() else {
            break;
        };
        match end {
            SessionEnd::Stopped => break,
            SessionEnd::Redeliver => {
                tracing::debug!("reconnecting so the relay delivers kept messages again");
            }
            SessionEnd::Fatal(ended) => {
                // Typed first, so whoever sees the state finds why.
                *lock(&strong.ended) = Some(ended.clone());
                strong.set_state(ConnectionState::Closed {
                    reason: ended.clone(),
                });
                fail_queued(&mut requests, &ended);
                break;
            }
            SessionEnd::Replaced => {
                *lock(&strong.ended) = Some(Ended::Replaced);
                strong.set_state(ConnectionState::Replaced);
                fail_queued(&mut requests, &Ended::Replaced);
                break;
            }
            SessionEnd::Retry(error) => {
                // A full relay says when to come back; never sooner.
                let delay = backoff.next_delay(&mut OsRng).max(relay_full_wait(&error));
                tracing::debug!(?delay, "relay connection lost; retrying");
                let cause = SharedError::new(error);
                *lock(&strong.last_failure) = Some(cause.clone());
                strong.set_state(ConnectionState::Reconnecting {
                    retry_in: delay,
                    cause,
                });
                drop(strong);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    if let Some(strong) = engine.upgrade() {
        if strong.conn_state.borrow().ended_because().is_none() {
            strong.set_state(ConnectionState::Offline);
        }
    }
}

fn fail_queued(requests: &mut mpsc::UnboundedReceiver<Outgoing>, why: &Ended) {
    while let Ok(outgoing) = requests.try_recv() {
        if let Outgoing::Call(_, reply) = outgoing {
            let _ = reply.send(Err(Error::Connection(ConnectionFailure::Ended(
                why.clone(),
            ))));
        }
    }
}

/// Connects and authenticates with the stored token.
async fn open_session(engine: &Arc<Engine>) -> Result<RelayLink, SessionEnd> {
    let token = match engine.token().await {
        Ok(Some(token)) => token,
        Ok(None) => {
            engine.session_refused.store(true, Ordering::SeqCst);
            return Err(SessionEnd::Fatal(Ended::LoggedOut));
        }
        Err(Error::Store(e)) => return Err(SessionEnd::Fatal(Ended::LocalStore(Arc::new(e)))),
        Err(e) => return Err(SessionEnd::Retry(e)),
    };
    let mut link = RelayLink::connect(
        &engine.ws_url,
        engine.tls_roots.as_deref(),
        engine.connect_timeout,
    )
    .await
    .map_err(SessionEnd::Retry)?;
    let response = link
        .call(Request::Authenticate {
            token: token.session_token(),
            device: engine.me().device,
        })
        .await;
    match response {
        Ok(Response::Authenticated { .. }) => Ok(link),
        Ok(Response::Error { code, message, .. }) => Err(refused(engine, code, message)),
        Ok(other) => Err(SessionEnd::Retry(crate::error::unexpected(
            "Authenticated",
            &other,
        ))),
        Err(Error::Relay { code, message, .. }) => Err(refused(engine, code, message)),
        Err(e) => Err(SessionEnd::Retry(e)),
    }
}

/// `Authenticate` was refused. `AuthFailed` for our own stored token means
/// the relay no longer knows it: an expired one would get `TokenExpired`, so
/// it was revoked — by a login from another data directory, which revokes
/// every other session of the account (docs/PROTOCOL.md §12). The engine
/// remembers that, so callers get [`Error::UsedElsewhere`].
fn refused(engine: &Engine, code: ErrorCode, message: String) -> SessionEnd {
    if code == ErrorCode::AuthFailed {
        engine.used_elsewhere.store(true, Ordering::SeqCst);
        return SessionEnd::Fatal(Ended::UsedElsewhere);
    }
    if code == ErrorCode::TokenExpired {
        engine.session_refused.store(true, Ordering::SeqCst);
    }
    classify(code, message)
}

fn classify(code: ErrorCode, message: String) -> SessionEnd {
    match code {
        ErrorCode::AuthFailed | ErrorCode::TokenExpired => {
            SessionEnd::Fatal(Ended::SessionRefused { code })
        }
        ErrorCode::Replaced => SessionEnd::Replaced,
        ErrorCode::UnsupportedVersion => SessionEnd::Fatal(Ended::UnsupportedVersion {
            relay_says: message,
        }),
        _ => SessionEnd::Retry(Error::relay(code, message, None)),
    }
}

/// What one connected session reads from and writes to.
struct SessionChannels<'a> {
    requests: &'a mut mpsc::UnboundedReceiver<Outgoing>,
    inbound: &'a mpsc::UnboundedSender<Inbound>,
    kept: &'a mut mpsc::UnboundedReceiver<KeptSignal>,
    /// The wait before reconnecting for kept deliveries; grows while they
    /// keep failing, reset by a connection that kept nothing.
    redelivery: &'a mut Backoff,
}

async fn run_session(
    engine: &Weak<Engine>,
    mut link: RelayLink,
    channels: SessionChannels<'_>,
    stop: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let SessionChannels {
        requests,
        inbound,
        kept,
        redelivery,
    } = channels;
    let mut redeliver_at: Option<tokio::time::Instant> = None;
    let mut pending: HashMap<u64, oneshot::Sender<Result<Response, Error>>> = HashMap::new();
    // Ahead of this session's deliveries, in the same queue.
    let _ = inbound.send(Inbound::Connected);
    match engine.upgrade() {
        Some(strong) => {
            // Reported failures are those since the last connection.
            *lock(&strong.last_failure) = None;
            strong.set_state(ConnectionState::Connected);
            // Maintenance waits for QueueEmpty (see the inbound worker).
            strong.outbox_wake.notify_one();
        }
        None => return SessionEnd::Stopped,
    }
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
    maintenance.tick().await;
    let end = loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    link.close().await;
                    break SessionEnd::Stopped;
                }
            }
            outgoing = requests.recv() => {
                let Some(outgoing) = outgoing else {
                    link.close().await;
                    break SessionEnd::Stopped;
                };
                let (request, reply) = match outgoing {
                    Outgoing::Call(request, reply) => (request, Some(reply)),
                    Outgoing::Fire(request) => (request, None),
                };
                match link.send(request).await {
                    Ok(id) => {
                        if let Some(reply) = reply {
                            pending.insert(id, reply);
                        }
                    }
                    // Our request broke a limit or did not encode: only it fails.
                    Err(e @ (Error::Protocol(_) | Error::InvalidMessage(_))) => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(e));
                        }
                    }
                    Err(e) => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(Error::Connection(ConnectionFailure::Lost)));
                        }
                        break SessionEnd::Retry(e);
                    }
                }
            }
            signal = kept.recv() => match signal {
                Some(KeptSignal::Kept) => {
                    redeliver_at.get_or_insert_with(|| {
                        tokio::time::Instant::now() + redelivery.next_delay(&mut OsRng)
                    });
                }
                Some(KeptSignal::Clear) => redelivery.reset(),
                Some(KeptSignal::Openable) => {
                    redelivery.reset();
                    let soon = tokio::time::Instant::now() + KEPT_REDELIVERY_OPENABLE_WAIT;
                    redeliver_at = Some(redeliver_at.map_or(soon, |at| at.min(soon)));
                }
                Some(KeptSignal::Settled) => {
                    redelivery.reset();
                    redeliver_at = None;
                }
                // The inbound worker is gone: the stop signal follows.
                None => {}
            },
            _ = sleep_until_set(redeliver_at), if redeliver_at.is_some() => {
                link.close().await;
                break SessionEnd::Redeliver;
            }
            _ = keepalive.tick() => {
                if let Err(e) = link.send(Request::Ping).await {
                    break SessionEnd::Retry(e);
                }
            }
            _ = maintenance.tick() => {
                spawn_maintenance(engine.clone());
            }
            frame = link.next_frame() => {
                match frame {
                    Ok(None) => break SessionEnd::Retry(Error::Connection(ConnectionFailure::ClosedByRelay)),
                    Err(e @ Error::Connection(_)) => break SessionEnd::Retry(e),
                    Err(e) => {
                        // A frame we cannot decode: the relay or the path is broken.
                        tracing::warn!(error = %crate::error::LogSafe(&e), "undecodable relay frame");
                        break SessionEnd::Retry(e);
                    }
                    Ok(Some(frame)) => match frame {
                        RelayFrame::Response { request_id, response } => {
                            if let Some(reply) = pending.remove(&request_id) {
                                let _ = reply.send(Ok(response));
                            } else if let Response::Error { code, message, .. } = response {
                                tracing::debug!(%code, %message, "relay error for a fire-and-forget request");
                            }
                        }
                        RelayFrame::Deliver { seq, envelope, received_at_ms } => {
                            let _ = inbound.send(Inbound::Deliver { seq, envelope, received_at_ms });
                        }
                        RelayFrame::QueueEmpty => {
                            let _ = inbound.send(Inbound::QueueEmpty);
                        }
                        RelayFrame::EphemeralDeliver { payload } => {
                            let _ = inbound.send(Inbound::Ephemeral { payload });
                        }
                        RelayFrame::PreKeysLow { .. } => {
                            let _ = inbound.send(Inbound::PreKeysLow);
                        }
                        RelayFrame::KemPreKeysLow { .. } => {
                            let _ = inbound.send(Inbound::KemPreKeysLow);
                        }
                        RelayFrame::Closing { code, reason } => {
                            break classify(code, reason);
                        }
                    },
                }
            }
        }
    };
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(Error::Connection(ConnectionFailure::Lost)));
    }
    end
}

/// Sleeps until `at` (never called with `None`: the select guard checks).
async fn sleep_until_set(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Runs key maintenance in the background (it makes requests, whose
/// answers this connection's tasks must stay free to route).
fn spawn_maintenance(engine: Weak<Engine>) {
    tokio::spawn(async move {
        if let Some(engine) = engine.upgrade() {
            if let Err(e) = engine.maintain().await {
                tracing::warn!(error = %crate::error::LogSafe(&e), "key maintenance failed");
            }
            // Self-monitoring on each connection (§16.9 item 5), when the
            // relay's key-transparency keys are pinned.
            match engine.kt_monitor_own().await {
                Ok(_) | Err(Error::KeyTransparency(crate::KtFailure::NotPinned)) => {}
                Err(e) => {
                    tracing::warn!(error = %crate::error::LogSafe(&e), "key-transparency self-monitoring failed")
                }
            }
        }
    });
}

/// How long a full relay asked us to stay away (zero for other failures).
fn relay_full_wait(error: &Error) -> Duration {
    match error {
        Error::Connection(ConnectionFailure::RelayFull {
            retry_after: Some(wait),
            ..
        }) => *wait,
        _ => Duration::ZERO,
    }
}
