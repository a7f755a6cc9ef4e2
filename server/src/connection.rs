//! One WebSocket connection: reading and size-checking frames, decoding
//! them, handing requests to `commands`, writing replies and pushes, pings,
//! the timers that end a connection, and closing with a reason.
//!
//! Writes go through [`outbox`]: a small bounded queue drained by a writer
//! task, so the reader, the delivery loop and hub control messages never
//! write to the socket concurrently, and the read loop never waits for the
//! socket. A client that stops reading only fills its own queue and is
//! closed once writes make no progress for `write_stall_timeout`; until
//! then the read loop still acts on shutdown, `Replaced`, revocation and its
//! timers. Requests on one connection are handled one at a time, in order.
//!
//! Timers: the idle timeout (no frame at all), the authentication deadline
//! (`auth_timeout` after connecting, while unauthenticated), the token's
//! expiry (closes at that instant), and a token re-check every
//! [`TOKEN_RECHECK_INTERVAL`] (a revocation whose cross-node notice was
//! missed).
//!
//! Must never: panic on client input, process a frame larger than the limit,
//! keep serving after a malformed frame (it answers `BadFrame` and closes),
//! await a socket write in the read loop, hold a lock across a write, or log
//! frame contents.

pub(crate) mod hand_off_budget;
mod outbox;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use futures_util::StreamExt;
use rand::rngs::OsRng;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use umbra_wire::{
    decode_client, encode_relay, peek_request_id, version_rejection_notice, Address, ErrorCode,
    RelayFrame, Response, WireError, MAX_REASON_BYTES,
};

use crate::app::AppState;
use crate::auth::tokens::{unix_now, TokenHash};
use crate::commands::auth::{check_token, TokenCheck, TOKEN_EXPIRED_REASON};
use crate::commands::{self, After, Authenticated, ConnectionAuth};
use crate::delivery;
use crate::hub::{Control, Registration};
use crate::metrics::{Metrics, ReadFailure};
use outbox::{Outbox, Progress};
pub use outbox::{BACKLOG_CAPACITY, OUTBOX_CAPACITY};

/// How long closing may take to hand the goodbye to the socket before the
/// writer is stopped anyway.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a live connection looks its token up again. A revocation
/// normally arrives at once (hub control message, cross-node notice); this
/// bounds how long a missed notice lets a revoked connection keep receiving.
/// 30 s costs one indexed lookup per connection per 30 s (about 330 a second
/// at 10 000 connections); each interval is jittered by up to a quarter so
/// connections that authenticated together do not look up together.
pub const TOKEN_RECHECK_INTERVAL: Duration = Duration::from_secs(30);

/// After a failed re-check (store unreachable), try again this soon. The
/// connection stays open meanwhile: a store outage must not disconnect
/// everyone, and state-changing requests fail on their own then.
const TOKEN_RECHECK_RETRY: Duration = Duration::from_secs(5);

/// Serves one upgraded WebSocket until it closes.
pub async fn serve(socket: WebSocket, state: AppState, peer: SocketAddr) {
    let connection = state.next_connection_id();
    state
        .metrics
        .connections_open
        .fetch_add(1, Ordering::Relaxed);
    Metrics::inc(&state.metrics.connections_total);
    // The connection number is this process's counter: it ties the open and
    // close lines together and names nobody (no address, no account).
    tracing::info!(connection, "connection opened");

    let stall_timeout = state.limits.write_stall_timeout;
    let (sink, stream) = socket.split();
    let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
    let mut writer = tokio::spawn(outbox::write_loop(sink, rx, state.clone(), stall_timeout));

    let mut auth = ConnectionAuth::new(connection, peer.ip());
    let mut conn = Connection {
        id: connection,
        state: state.clone(),
        outbox: Outbox::new(tx, stall_timeout),
        registration: None,
        delivery: None,
    };
    let stop = conn.run(stream, &mut auth).await;
    tracing::info!(
        connection,
        reason = stop.label(),
        authenticated = auth.authenticated().is_some(),
        "connection closed"
    );

    if let Some(authed) = auth.authenticated() {
        state.hub.unregister(authed.address, connection);
    }
    // The delivery task holds a queue sender: stop it so the writer sees the
    // queue close once the goodbye is written.
    if let Some(task) = conn.delivery.take() {
        task.abort();
    }
    let deadline = Instant::now() + CLOSE_FLUSH_TIMEOUT;
    if matches!(stop, Stop::Stalled) {
        // Nothing more can be written: free the socket and its buffers now.
        writer.abort();
    } else {
        conn.goodbye(stop, deadline).await;
    }
    drop(conn);
    if tokio::time::timeout_at(deadline, &mut writer)
        .await
        .is_err()
    {
        // A peer that stopped reading: drop the socket and its buffers now.
        tracing::debug!("writer did not finish flushing in time; stopping it");
        writer.abort();
    }
    state
        .metrics
        .connections_open
        .fetch_sub(1, Ordering::Relaxed);
}

struct Connection {
    id: u64,
    state: AppState,
    outbox: Outbox,
    registration: Option<Registration>,
    delivery: Option<tokio::task::JoinHandle<()>>,
}

/// Why the read loop stopped.
enum Stop {
    /// Close with a `Closing{code, reason}` frame first.
    Closing(ErrorCode, String),
    /// Close without a `Closing` frame.
    Quiet,
    /// Writes made no progress for the stall timeout: nothing more can be
    /// said, so the socket is dropped at once.
    Stalled,
    /// The peer speaks a wire version we cannot read: the rejection notice
    /// was queued; close with WebSocket code 1002 (protocol error).
    VersionRejected,
}

impl Stop {
    /// Why, for the close log line: the code sent, or how it ended.
    fn label(&self) -> &'static str {
        match self {
            Stop::Closing(code, _) => code.name(),
            Stop::Quiet => "closed",
            Stop::Stalled => "stalled",
            Stop::VersionRejected => "version_rejected",
        }
    }
}

/// When an authenticated connection next looks at its token.
struct TokenTimer {
    /// The token's expiry as a local instant: close then, no lookup needed.
    expires: Instant,
    /// The next store re-check.
    recheck: Instant,
}

impl TokenTimer {
    /// Made right after authentication, once the connection is in the hub.
    /// The first re-check is immediate: a revocation that ran between the
    /// token check in `Authenticate` and the hub registration found no
    /// connection to close, and must not be missed for a whole interval.
    fn new(me: &Authenticated) -> Self {
        TokenTimer {
            expires: instant_of(me.expires_at),
            recheck: Instant::now(),
        }
    }

    fn next(&self) -> Instant {
        self.expires.min(self.recheck)
    }
}

/// The local instant of a Unix time, never earlier than that time: the
/// seconds are floored now, so the wait is at least the true remainder.
fn instant_of(unix_secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(unix_secs.saturating_sub(unix_now()))
}

fn next_recheck() -> Instant {
    let quarter = TOKEN_RECHECK_INTERVAL / 4;
    let jitter = OsRng.gen_range(Duration::ZERO..=quarter * 2);
    Instant::now() + TOKEN_RECHECK_INTERVAL - quarter + jitter
}

/// Sleeps until `at`, or forever for `None` (a disabled timer in `select!`).
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Connection {
    async fn run(
        &mut self,
        mut stream: futures_util::stream::SplitStream<WebSocket>,
        auth: &mut ConnectionAuth,
    ) -> Stop {
        let limits = self.state.limits.clone();
        let mut shutdown = self.state.shutdown_signal();
        let mut ping =
            tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
        let mut idle_deadline = Instant::now() + limits.idle_timeout;
        let auth_deadline = Instant::now() + limits.auth_timeout;
        let mut token_timer: Option<TokenTimer> = None;

        loop {
            let control = async {
                match self.registration.as_mut() {
                    Some(reg) => reg.control.recv().await,
                    None => std::future::pending().await,
                }
            };
            let unauthenticated = auth.authenticated().is_none();
            let reading = !self.outbox.is_backlogged();
            tokio::select! {
                biased;
                () = shutdown.wait() => {
                    return Stop::Closing(ErrorCode::ShuttingDown, "relay is shutting down".into());
                }
                control = control => {
                    if let Some(stop) = self.on_control(control) {
                        return stop;
                    }
                }
                progress = self.outbox.progress() => match progress {
                    Progress::Drained => {}
                    Progress::Stalled => {
                        tracing::debug!("client stopped reading; closing");
                        return Stop::Stalled;
                    }
                    Progress::WriterGone => return Stop::Quiet,
                },
                () = tokio::time::sleep_until(idle_deadline) => {
                    // Not even a pong for a whole idle period: the peer is
                    // gone, so a goodbye frame would go nowhere.
                    tracing::debug!("idle timeout");
                    return Stop::Quiet;
                }
                // A connection that joined a link ticket waits for its
                // token until the ticket expires (PROTOCOL.md 9.10, 15.6).
                () = tokio::time::sleep_until(
                    auth.link_joined_until().map_or(auth_deadline, |t| instant_of(t).max(auth_deadline))
                ), if unauthenticated => {
                    let reason = format!(
                        "not authenticated within {} s of connecting",
                        limits.auth_timeout.as_secs()
                    );
                    return Stop::Closing(ErrorCode::NotAuthenticated, reason);
                }
                () = sleep_until_some(token_timer.as_ref().map(TokenTimer::next)) => {
                    if let Some(stop) = self.on_token_timer(auth, &mut token_timer).await {
                        return stop;
                    }
                }
                _ = ping.tick() => {
                    // Best effort: a ping that finds the queue full is not
                    // needed, the stall timer is already running.
                    if self.outbox.offer(Message::Ping(Vec::new().into())).is_err() {
                        return Stop::Quiet;
                    }
                }
                incoming = stream.next(), if reading => {
                    let message = match incoming {
                        None => return Stop::Quiet,
                        Some(Ok(message)) => message,
                        Some(Err(error)) => {
                            tracing::debug!(%error, "websocket read failed");
                            // A peer that hung up without a close frame is
                            // gone, not hostile: nothing to count or say.
                            if ReadFailure::classify(&error) == ReadFailure::PeerGone {
                                return Stop::Quiet;
                            }
                            // Oversized beyond the transport cap, or a
                            // protocol violation: say so if the socket still
                            // takes writes, then stop.
                            Metrics::inc(&self.state.metrics.bad_frames);
                            let reason = "unreadable or oversized message".into();
                            return Stop::Closing(ErrorCode::FrameTooLarge, reason);
                        }
                    };
                    idle_deadline = Instant::now() + limits.idle_timeout;
                    if let Some(stop) = self.on_message(message, auth).await {
                        return stop;
                    }
                    if token_timer.is_none() {
                        token_timer = auth.authenticated().as_ref().map(TokenTimer::new);
                    }
                }
            }
        }
    }

    /// The token's expiry passed, or a re-check is due; `Some` means stop.
    async fn on_token_timer(
        &mut self,
        auth: &ConnectionAuth,
        timer: &mut Option<TokenTimer>,
    ) -> Option<Stop> {
        let (me, t) = (auth.authenticated()?, timer.as_mut()?);
        if Instant::now() >= t.expires {
            return Some(Stop::Closing(
                ErrorCode::TokenExpired,
                TOKEN_EXPIRED_REASON.into(),
            ));
        }
        // Bounded (commands::CONNECTION_STORE_DEADLINE): it runs on the
        // connection's own loop, so a database that stops answering must not
        // stop the connection from reading its requests.
        let checked = tokio::time::timeout(
            commands::CONNECTION_STORE_DEADLINE,
            check_token(&self.state, &me),
        )
        .await;
        match checked {
            Ok(Ok(TokenCheck::Valid { expires_at })) => {
                t.expires = instant_of(expires_at);
                t.recheck = next_recheck();
                None
            }
            Ok(Ok(check)) => {
                let reason = check.closing_reason().unwrap_or(TOKEN_EXPIRED_REASON);
                Some(Stop::Closing(ErrorCode::TokenExpired, reason.into()))
            }
            failed => {
                match failed {
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "cannot re-check a live connection's token; retrying")
                    }
                    _ => {
                        tracing::warn!("no answer to a live connection's token re-check; retrying")
                    }
                }
                t.recheck = Instant::now() + TOKEN_RECHECK_RETRY;
                None
            }
        }
    }

    /// Acts on a hub control message; `Some` means the connection must stop.
    fn on_control(&mut self, control: Option<Control>) -> Option<Stop> {
        let frame = match control {
            Some(Control::Close(code, reason)) => return Some(Stop::Closing(code, reason.into())),
            // The hub dropped our entry without a message: we were replaced
            // while our control channel was full.
            None => {
                let reason = crate::hub::REPLACED_REASON.into();
                return Some(Stop::Closing(ErrorCode::Replaced, reason));
            }
            Some(Control::Ephemeral(payload)) => RelayFrame::EphemeralDeliver { payload },
            Some(Control::PreKeysLow(remaining)) => RelayFrame::PreKeysLow { remaining },
            Some(Control::KemPreKeysLow(remaining)) => RelayFrame::KemPreKeysLow { remaining },
        };
        // Both are best effort: dropped rather than queued behind a backlog.
        self.offer(&frame).err().map(|_| Stop::Quiet)
    }

    /// Handles one WebSocket message; `Some` means the connection must stop.
    async fn on_message(&mut self, message: Message, auth: &mut ConnectionAuth) -> Option<Stop> {
        match message {
            Message::Binary(bytes) => {
                Metrics::inc(&self.state.metrics.frames_in);
                self.on_binary(&bytes, auth).await
            }
            Message::Text(_) => {
                Metrics::inc(&self.state.metrics.bad_frames);
                let text = "text messages are not part of the protocol";
                self.reply(0, Response::error(ErrorCode::BadFrame, text));
                Some(Stop::Closing(ErrorCode::BadFrame, "text message".into()))
            }
            // tungstenite answers pings itself; both only count as activity.
            Message::Ping(_) | Message::Pong(_) => None,
            Message::Close(_) => Some(Stop::Quiet),
        }
    }

    /// Handles one binary message; `Some` means the connection must stop.
    async fn on_binary(&mut self, bytes: &[u8], auth: &mut ConnectionAuth) -> Option<Stop> {
        let max = self.state.limits.max_frame_bytes;
        if bytes.len() > max {
            Metrics::inc(&self.state.metrics.bad_frames);
            let id = peek_request_id(bytes).unwrap_or(0);
            let text = format!("frame of {} bytes exceeds the limit of {max}", bytes.len());
            self.reply(id, Response::error(ErrorCode::FrameTooLarge, text.clone()));
            return Some(Stop::Closing(ErrorCode::FrameTooLarge, text));
        }
        let frame = match decode_client(bytes) {
            Ok(frame) => frame,
            Err(error) => return Some(self.on_decode_error(bytes, &error)),
        };
        let request_id = frame.request_id;
        if request_id == 0 {
            Metrics::inc(&self.state.metrics.bad_frames);
            self.reply(
                0,
                Response::error(ErrorCode::BadFrame, "request_id must not be 0"),
            );
            return Some(Stop::Closing(ErrorCode::BadFrame, "request_id 0".into()));
        }
        if let Err(limit) = frame.request.check_limits() {
            self.reply(request_id, Response::error(limit.code(), limit.to_string()));
            return None;
        }
        tracing::trace!(kind = frame.request.kind(), "request");
        // Boxed: a task's future is as large as its largest state, so the
        // request handlers (OPAQUE states, store calls) inline here would be
        // paid by every idle connection for its whole life (BENCHMARKS.md,
        // "Relay memory per connection").
        let reply = Box::pin(commands::handle(&self.state, auth, frame.request)).await;
        if !self.reply(request_id, reply.response) {
            return Some(Stop::Quiet);
        }
        match reply.after {
            After::Continue => None,
            After::Hangup => Some(Stop::Quiet),
            After::Close(code, reason) => Some(Stop::Closing(code, reason.into())),
            After::StartDelivery(address) => match auth.authenticated() {
                Some(me) => {
                    self.start_delivery(address, me.token).await;
                    None
                }
                // `StartDelivery` follows a successful Authenticate only.
                None => Some(Stop::Quiet),
            },
        }
    }

    fn on_decode_error(&mut self, bytes: &[u8], error: &WireError) -> Stop {
        Metrics::inc(&self.state.metrics.bad_frames);
        match error {
            WireError::UnsupportedVersion { .. } => {
                // The one frame every version can read; then close.
                let notice = version_rejection_notice().to_vec();
                let _ = self.outbox.push(Message::Binary(notice.into()));
                Stop::VersionRejected
            }
            _ => {
                let id = peek_request_id(bytes).unwrap_or(0);
                let code = error.code();
                self.reply(id, Response::error(code, error.to_string()));
                Stop::Closing(code, "malformed frame".into())
            }
        }
    }

    async fn start_delivery(&mut self, address: Address, token: TokenHash) {
        // Registers here and announces to every node (cross-node `Replaced`).
        let mut registration = crate::wakeups::connect(&self.state, address, self.id, token).await;
        let handed = registration
            .handed
            .take()
            .unwrap_or_else(|| tokio::sync::mpsc::channel(1).1);
        let task = tokio::spawn(delivery::run(
            self.state.clone(),
            address,
            registration.wake.clone(),
            handed,
            self.outbox.sender(),
        ));
        self.registration = Some(registration);
        self.delivery = Some(task);
        // Bounded for the same reason as the token re-check; both counts
        // at once, under the one bound, so a request read next still waits
        // at most two of them (the announcement and this).
        let store = &self.state.store;
        let counts = tokio::time::timeout(commands::CONNECTION_STORE_DEADLINE, async {
            tokio::join!(
                store.one_time_prekey_count(address),
                store.kem_prekey_stock(address)
            )
        })
        .await;
        let Ok((count, kem)) = counts else {
            tracing::warn!("no answer counting prekeys at authentication");
            return;
        };
        match count {
            Ok(left) if left < u64::from(self.state.limits.prekey_low_water) => {
                let remaining = u32::try_from(left).unwrap_or(u32::MAX);
                let _ = self.offer(&RelayFrame::PreKeysLow { remaining });
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot count prekeys at authentication"),
        }
        match kem {
            Ok(stock) => {
                // Only to a device that has uploaded KEM prekeys (it knows
                // the frame; commands::directory::kem_prekeys_low).
                if let Some(remaining) =
                    commands::directory::kem_prekeys_low(&self.state, stock, false)
                {
                    let _ = self.offer(&RelayFrame::KemPreKeysLow { remaining });
                }
            }
            Err(error) => tracing::warn!(%error, "cannot count KEM prekeys at authentication"),
        }
    }

    /// Queues a reply; `false` once the writer is gone.
    fn reply(&mut self, request_id: u64, response: Response) -> bool {
        self.push(&RelayFrame::Response {
            request_id,
            response,
        })
    }

    /// Queues a frame for the writer without waiting (behind the backlog if
    /// the queue is full); `false` once the writer is gone.
    fn push(&mut self, frame: &RelayFrame) -> bool {
        match encode(frame) {
            Some(message) => self.outbox.push(message).is_ok(),
            None => true,
        }
    }

    /// Queues a best-effort frame if there is room now, else drops it.
    fn offer(&mut self, frame: &RelayFrame) -> Result<(), outbox::Gone> {
        match encode(frame) {
            Some(message) => self.outbox.offer(message),
            None => Ok(()),
        }
    }

    /// Queues the goodbye for `stop` and waits (until `deadline`) for room in
    /// the queue; the writer then sends it and closes.
    async fn goodbye(&mut self, stop: Stop, deadline: Instant) {
        let close_code = match stop {
            Stop::Closing(code, mut reason) => {
                truncate(&mut reason, MAX_REASON_BYTES);
                self.push(&RelayFrame::Closing { code, reason });
                close_code::NORMAL
            }
            Stop::Quiet | Stop::Stalled => close_code::NORMAL,
            Stop::VersionRejected => close_code::PROTOCOL,
        };
        let _ = self.outbox.push(Message::Close(Some(CloseFrame {
            code: close_code,
            reason: "".into(),
        })));
        self.outbox.flush(deadline).await;
    }
}

fn encode(frame: &RelayFrame) -> Option<Message> {
    match encode_relay(frame) {
        Ok(bytes) => Some(Message::Binary(bytes.into())),
        Err(error) => {
            tracing::error!(%error, kind = frame.kind(), "cannot encode a relay frame");
            None
        }
    }
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
}
