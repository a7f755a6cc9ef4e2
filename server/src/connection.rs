//! One WebSocket connection: reading and size-checking frames, decoding
//! them, handing requests to `commands`, writing replies and pushes, pings,
//! the idle timeout, and closing with a reason.
//!
//! Writes go through a small bounded outbox drained by a writer task, so the
//! reader, the delivery loop and hub control messages never write to the
//! socket concurrently, and a client that stops reading only fills its own
//! outbox. Requests on one connection are handled one at a time, in order.
//!
//! Must never: panic on client input, process a frame larger than the limit,
//! keep serving after a malformed frame (it answers `BadFrame` and closes),
//! hold a lock across a write, or log frame contents.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use umbra_wire::{
    decode_client, encode_relay, peek_request_id, version_rejection_notice, ErrorCode, RelayFrame,
    Response, WireError, MAX_REASON_BYTES,
};

use crate::app::AppState;
use crate::commands::{self, After, ConnectionAuth};
use crate::delivery;
use crate::hub::{Control, Registration};
use crate::metrics::Metrics;

/// Frames waiting to be written per connection.
pub const OUTBOX_CAPACITY: usize = 16;
/// How long the writer may take to flush the goodbye before giving up.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one upgraded WebSocket until it closes.
pub async fn serve(socket: WebSocket, state: AppState, peer: SocketAddr) {
    let connection = state.next_connection_id();
    state
        .metrics
        .connections_open
        .fetch_add(1, Ordering::Relaxed);
    Metrics::inc(&state.metrics.connections_total);

    let (sink, stream) = socket.split();
    let (outbox, outbox_rx) = mpsc::channel(OUTBOX_CAPACITY);
    let writer = tokio::spawn(write_loop(sink, outbox_rx, state.clone()));

    let mut auth = ConnectionAuth {
        connection,
        peer: peer.ip(),
        authenticated: None,
    };
    let mut conn = Connection {
        id: connection,
        state: state.clone(),
        outbox,
        registration: None,
        delivery: None,
    };
    conn.run(stream, &mut auth).await;

    if let Some(authed) = auth.authenticated {
        state.hub.unregister(authed.address, connection);
    }
    if let Some(task) = conn.delivery.take() {
        task.abort();
    }
    state.forget_connection(connection);
    drop(conn);
    if tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, writer)
        .await
        .is_err()
    {
        tracing::debug!("writer did not finish flushing in time");
    }
    state
        .metrics
        .connections_open
        .fetch_sub(1, Ordering::Relaxed);
}

/// Writes outbox messages in order; ends when the outbox closes or the
/// socket fails, closing the socket either way.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut outbox: mpsc::Receiver<Message>,
    state: AppState,
) {
    while let Some(message) = outbox.recv().await {
        let is_close = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() {
            return;
        }
        Metrics::inc(&state.metrics.frames_out);
        if is_close {
            break;
        }
    }
    let _ = sink.close().await;
}

struct Connection {
    id: u64,
    state: AppState,
    outbox: mpsc::Sender<Message>,
    registration: Option<Registration>,
    delivery: Option<tokio::task::JoinHandle<()>>,
}

/// Why the read loop stopped.
enum Stop {
    /// Close with a `Closing{code, reason}` frame first.
    Closing(ErrorCode, String),
    /// Close without a `Closing` frame.
    Quiet,
    /// The peer speaks a wire version we cannot read: the rejection notice
    /// was sent; close with WebSocket code 1002 (protocol error).
    VersionRejected,
}

impl Connection {
    async fn run(
        &mut self,
        mut stream: futures_util::stream::SplitStream<WebSocket>,
        auth: &mut ConnectionAuth,
    ) {
        let limits = self.state.limits.clone();
        let mut shutdown = self.state.shutdown_signal();
        let mut ping =
            tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
        let mut idle_deadline = Instant::now() + limits.idle_timeout;

        let stop = loop {
            let control = async {
                match self.registration.as_mut() {
                    Some(reg) => reg.control.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = shutdown.wait() => {
                    break Stop::Closing(ErrorCode::ShuttingDown, "relay is shutting down".into());
                }
                control = control => {
                    if let Some(stop) = self.on_control(control).await {
                        break stop;
                    }
                }
                () = tokio::time::sleep_until(idle_deadline) => {
                    // Not even a pong for a whole idle period: the peer is
                    // gone, so a goodbye frame would go nowhere.
                    tracing::debug!("idle timeout");
                    break Stop::Quiet;
                }
                _ = ping.tick() => {
                    if self.outbox.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break Stop::Quiet;
                    }
                }
                incoming = stream.next() => {
                    let message = match incoming {
                        None => break Stop::Quiet,
                        Some(Ok(message)) => message,
                        Some(Err(error)) => {
                            // Oversized beyond the transport cap, or a
                            // protocol violation: say so if the socket still
                            // takes writes, then stop.
                            Metrics::inc(&self.state.metrics.bad_frames);
                            tracing::debug!(%error, "websocket read failed");
                            let reason = "unreadable or oversized message".into();
                            break Stop::Closing(ErrorCode::FrameTooLarge, reason);
                        }
                    };
                    idle_deadline = Instant::now() + limits.idle_timeout;
                    if let Some(stop) = self.on_message(message, auth).await {
                        break stop;
                    }
                }
            }
        };
        self.finish(stop).await;
    }

    /// Acts on a hub control message; `Some` means the connection must stop.
    async fn on_control(&mut self, control: Option<Control>) -> Option<Stop> {
        let pushed = match control {
            Some(Control::Close(code, reason)) => return Some(Stop::Closing(code, reason.into())),
            // The hub dropped our entry without a message: we were replaced
            // while our control channel was full.
            None => {
                let reason = "another connection for this device replaced this one".into();
                return Some(Stop::Closing(ErrorCode::Replaced, reason));
            }
            Some(Control::Ephemeral(payload)) => {
                self.push(&RelayFrame::EphemeralDeliver { payload }).await
            }
            Some(Control::PreKeysLow(remaining)) => {
                self.push(&RelayFrame::PreKeysLow { remaining }).await
            }
        };
        (!pushed).then_some(Stop::Quiet)
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
                self.reply(0, Response::error(ErrorCode::BadFrame, text))
                    .await;
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
            self.reply(id, Response::error(ErrorCode::FrameTooLarge, text.clone()))
                .await;
            return Some(Stop::Closing(ErrorCode::FrameTooLarge, text));
        }
        let frame = match decode_client(bytes) {
            Ok(frame) => frame,
            Err(error) => return Some(self.on_decode_error(bytes, &error).await),
        };
        let request_id = frame.request_id;
        if request_id == 0 {
            Metrics::inc(&self.state.metrics.bad_frames);
            self.reply(
                0,
                Response::error(ErrorCode::BadFrame, "request_id must not be 0"),
            )
            .await;
            return Some(Stop::Closing(ErrorCode::BadFrame, "request_id 0".into()));
        }
        if let Err(limit) = frame.request.check_limits() {
            self.reply(request_id, Response::error(limit.code(), limit.to_string()))
                .await;
            return None;
        }
        tracing::trace!(kind = frame.request.kind(), "request");
        let reply = commands::handle(&self.state, auth, frame.request).await;
        if !self.reply(request_id, reply.response).await {
            return Some(Stop::Quiet);
        }
        match reply.after {
            After::Continue => None,
            After::Hangup => Some(Stop::Quiet),
            After::StartDelivery(address) => {
                self.start_delivery(address).await;
                None
            }
        }
    }

    async fn on_decode_error(&mut self, bytes: &[u8], error: &WireError) -> Stop {
        Metrics::inc(&self.state.metrics.bad_frames);
        match error {
            WireError::UnsupportedVersion { .. } => {
                // The one frame every version can read; then close.
                let notice = version_rejection_notice().to_vec();
                let _ = self.outbox.send(Message::Binary(notice.into())).await;
                Stop::VersionRejected
            }
            _ => {
                let id = peek_request_id(bytes).unwrap_or(0);
                let code = error.code();
                self.reply(id, Response::error(code, error.to_string()))
                    .await;
                Stop::Closing(code, "malformed frame".into())
            }
        }
    }

    async fn start_delivery(&mut self, address: umbra_wire::Address) {
        let registration = self.state.hub.register(address, self.id);
        let task = tokio::spawn(delivery::run(
            self.state.clone(),
            address,
            registration.wake.clone(),
            self.outbox.clone(),
        ));
        self.registration = Some(registration);
        self.delivery = Some(task);
        match self.state.store.one_time_prekey_count(address).await {
            Ok(left) if left < u64::from(self.state.limits.prekey_low_water) => {
                let remaining = u32::try_from(left).unwrap_or(u32::MAX);
                self.push(&RelayFrame::PreKeysLow { remaining }).await;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot count prekeys at authentication"),
        }
    }

    async fn reply(&self, request_id: u64, response: Response) -> bool {
        self.push(&RelayFrame::Response {
            request_id,
            response,
        })
        .await
    }

    /// Queues a frame for the writer; `false` once the writer is gone.
    async fn push(&self, frame: &RelayFrame) -> bool {
        match encode_relay(frame) {
            Ok(bytes) => self
                .outbox
                .send(Message::Binary(bytes.into()))
                .await
                .is_ok(),
            Err(error) => {
                tracing::error!(%error, kind = frame.kind(), "cannot encode a relay frame");
                true
            }
        }
    }

    async fn finish(&mut self, stop: Stop) {
        if let Some(task) = self.delivery.take() {
            task.abort();
        }
        let close_code = match stop {
            Stop::Closing(code, mut reason) => {
                truncate(&mut reason, MAX_REASON_BYTES);
                self.push(&RelayFrame::Closing { code, reason }).await;
                close_code::NORMAL
            }
            Stop::Quiet => close_code::NORMAL,
            Stop::VersionRejected => close_code::PROTOCOL,
        };
        let _ = self
            .outbox
            .send(Message::Close(Some(CloseFrame {
                code: close_code,
                reason: "".into(),
            })))
            .await;
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
