//! A small test client that speaks the relay's wire protocol (`umbra_wire`)
//! over a WebSocket: requests matched to their replies by `request_id`,
//! pushed frames buffered in arrival order, raw bytes and raw WebSocket
//! messages for hostile-input tests. The OPAQUE exchanges over it are in
//! `wire_auth`, a device's key uploads in `device_keys`, a signed-in
//! connection in `session`; all are re-exported here, so
//! `umbra_test_support::wire_client::*` is the whole client. It is the one
//! copy: the e2e suites (as `umbra_e2e::wire_client`) and the relay's
//! in-process tests both use it.
//!
//! It is deliberately thin: it adds no retries, no reordering and no
//! interpretation of replies beyond matching ids, so a suite sees exactly
//! what the relay sent. Every read is bounded by a timeout.
//!
//! Must never: wait without a deadline, drop a pushed frame it has read,
//! print a password or token, or hand-roll any cryptography (OPAQUE is
//! [`crate::opaque_flow`]; keys come from `umbra_protocol`).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use umbra_wire::{
    self as wire, Address, ClientFrame, DeviceId, ErrorCode, RelayFrame, Request, Response,
    SessionToken, WireError,
};

pub use crate::device_keys::DeviceKeys;
pub use crate::opaque_flow::Stretch;
pub use crate::session::Session;
pub use crate::wire_auth::{LoginAttempt, LoginDone, LoginExchange, RegisterExchange};

/// How long [`WireClient::request`] waits for its reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client operation failed. Every variant names what was expected,
/// so a failing suite says what the relay did wrong.
#[derive(Debug, thiserror::Error)]
pub enum WireClientError {
    /// The WebSocket could not be opened, read or written.
    #[error("websocket: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    /// Nothing arrived within the deadline.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// The relay closed the connection while we waited for something.
    #[error("connection closed while waiting for {0}")]
    Closed(&'static str),
    /// The relay sent bytes that are not a relay frame.
    #[error("relay sent an undecodable frame: {0}")]
    BadRelayFrame(#[from] WireError),
    /// The relay sent a WebSocket text message (not part of the protocol).
    #[error("relay sent a text message")]
    TextMessage,
    /// A request could not be encoded (a bug in the suite).
    #[error("cannot encode request: {0}")]
    Encode(WireError),
    /// The relay answered with `Error`.
    #[error("relay refused: {code} ({message})")]
    Refused {
        /// The code.
        code: ErrorCode,
        /// The relay's detail text.
        message: String,
    },
    /// The relay answered with a response of the wrong kind.
    #[error("expected {expected}, got {got:?}")]
    Unexpected {
        /// What the step needed.
        expected: &'static str,
        /// What came instead.
        got: Box<Response>,
    },
    /// An OPAQUE step failed on the client side (for a login: wrong password
    /// or unknown user, which OPAQUE deliberately does not distinguish).
    #[error("OPAQUE client step failed: {0}")]
    Opaque(String),
    /// The blocking OPAQUE task panicked or was cancelled.
    #[error("OPAQUE worker task failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
    /// Two answers of the relay contradict each other.
    #[error("inconsistent relay answers: {0}")]
    Inconsistent(String),
    /// A username the suite chose is invalid (a bug in the suite).
    #[error("invalid username: {0}")]
    Username(#[from] wire::UsernameError),
}

impl WireClientError {
    /// The relay's error code, if this is a refusal.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            WireClientError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The WebSocket under a [`WireClient`] (see [`WireClient::socket`]).
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One connection to the relay.
pub struct WireClient {
    socket: Socket,
    next_request_id: u64,
    pushes: VecDeque<RelayFrame>,
    early_replies: HashMap<u64, Response>,
    closed: bool,
    /// The key-stretching function of this client's OPAQUE exchanges.
    pub(crate) stretch: Stretch,
}

impl std::fmt::Debug for WireClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireClient")
            .field("next_request_id", &self.next_request_id)
            .field("buffered_pushes", &self.pushes.len())
            .field("closed", &self.closed)
            .field("stretch", &self.stretch)
            .finish()
    }
}

impl WireClient {
    /// Opens a WebSocket to `ws_url` (e.g. `Relay::ws_url()`).
    pub async fn connect(ws_url: &str) -> Result<WireClient, WireClientError> {
        // `true`: TCP_NODELAY, as the real client sets it (issue 11).
        Self::handshake(tokio_tungstenite::connect_async_with_config(
            ws_url, None, true,
        ))
        .await
    }

    /// Like [`WireClient::connect`], with an `X-Forwarded-For: forwarded_for`
    /// header on the upgrade request, as a reverse proxy in front of the
    /// relay would add (for the relay's `trusted_proxies`).
    pub async fn connect_forwarded_for(
        ws_url: &str,
        forwarded_for: &str,
    ) -> Result<WireClient, WireClientError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        use tokio_tungstenite::tungstenite::http::HeaderValue;
        let mut request = ws_url.into_client_request()?;
        let value = HeaderValue::from_str(forwarded_for)
            .map_err(|error| tokio_tungstenite::tungstenite::Error::HttpFormat(error.into()))?;
        request.headers_mut().insert("x-forwarded-for", value);
        Self::handshake(tokio_tungstenite::connect_async_with_config(
            request, None, true,
        ))
        .await
    }

    /// Like [`WireClient::connect`] to a `ws://IP:PORT/...` URL, from the
    /// local address `source`. On Linux every 127.0.0.0/8 address is local,
    /// so `127.0.0.2` gives a suite a second source address on one machine
    /// (for per-address limits).
    pub async fn connect_from(
        ws_url: &str,
        source: std::net::IpAddr,
    ) -> Result<WireClient, WireClientError> {
        use tokio_tungstenite::tungstenite::Error as WsError;
        let authority = ws_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or(WsError::Url(
                tokio_tungstenite::tungstenite::error::UrlError::UnsupportedUrlScheme,
            ))?;
        let target: std::net::SocketAddr = authority.parse().map_err(|_| {
            WsError::Url(tokio_tungstenite::tungstenite::error::UrlError::NoHostName)
        })?;
        let connecting = async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((source, 0).into())?;
            socket.connect(target).await
        };
        let stream = tokio::time::timeout(REPLY_TIMEOUT, connecting)
            .await
            .map_err(|_| WireClientError::Timeout(REPLY_TIMEOUT, "the TCP connection"))?
            .map_err(WsError::Io)?;
        stream.set_nodelay(true).map_err(WsError::Io)?;
        Self::handshake(tokio_tungstenite::client_async(
            ws_url,
            MaybeTlsStream::Plain(stream),
        ))
        .await
    }

    /// Waits (bounded) for a WebSocket handshake and wraps its socket: the
    /// one way every `connect*` ends.
    async fn handshake<R>(
        handshake: impl std::future::Future<
            Output = Result<(Socket, R), tokio_tungstenite::tungstenite::Error>,
        >,
    ) -> Result<WireClient, WireClientError> {
        let (socket, _) = tokio::time::timeout(REPLY_TIMEOUT, handshake)
            .await
            .map_err(|_| WireClientError::Timeout(REPLY_TIMEOUT, "the websocket handshake"))??;
        Ok(WireClient {
            socket,
            next_request_id: 1,
            pushes: VecDeque::new(),
            early_replies: HashMap::new(),
            closed: false,
            stretch: Stretch::Production,
        })
    }

    /// This client with the key-stretching function `stretch` for its
    /// OPAQUE exchanges ([`Stretch::Production`] unless changed).
    pub fn with_stretch(mut self, stretch: Stretch) -> WireClient {
        self.stretch = stretch;
        self
    }

    /// The WebSocket itself, for suites that must see raw messages (a
    /// version-rejection notice that is no relay frame, a close code).
    /// Whatever is read here bypasses the push buffer.
    pub fn socket(&mut self) -> &mut Socket {
        &mut self.socket
    }

    /// Sends `request` and returns the relay's reply to it, buffering any
    /// pushes that arrive first. An `Error` reply is returned as a
    /// `Response::Error`, not as `Err`: suites assert on it.
    pub async fn request(&mut self, request: Request) -> Result<Response, WireClientError> {
        let request_id = self.send_request(request).await?;
        self.reply_to(request_id).await
    }

    /// Sends `request` without waiting; returns its id for [`Self::reply_to`].
    pub async fn send_request(&mut self, request: Request) -> Result<u64, WireClientError> {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let bytes = wire::encode_client(&ClientFrame {
            request_id,
            request,
        })
        .map_err(WireClientError::Encode)?;
        self.send_raw(bytes).await?;
        Ok(request_id)
    }

    /// Waits for the reply to `request_id`. A reply with id 0 (the relay
    /// could not read the id) is also taken as the answer.
    pub async fn reply_to(&mut self, request_id: u64) -> Result<Response, WireClientError> {
        if let Some(reply) = self.early_replies.remove(&request_id) {
            return Ok(reply);
        }
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            let frame = self.read_frame_until(deadline, "a reply").await?;
            match frame {
                RelayFrame::Response {
                    request_id: id,
                    response,
                } if id == request_id || id == 0 => return Ok(response),
                RelayFrame::Response {
                    request_id: id,
                    response,
                } => {
                    self.early_replies.insert(id, response);
                }
                push => self.pushes.push_back(push),
            }
        }
    }

    /// Like [`Self::request`], but an `Error` reply becomes
    /// [`WireClientError::Refused`].
    pub async fn request_ok(&mut self, request: Request) -> Result<Response, WireClientError> {
        match self.request(request).await? {
            Response::Error { code, message, .. } => {
                Err(WireClientError::Refused { code, message })
            }
            other => Ok(other),
        }
    }

    /// The next pushed frame (anything but a reply), from the buffer or the
    /// socket, waiting at most `timeout`.
    pub async fn next_push(&mut self, timeout: Duration) -> Result<RelayFrame, WireClientError> {
        if let Some(push) = self.pushes.pop_front() {
            return Ok(push);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.read_frame_until(deadline, "a pushed frame").await? {
                RelayFrame::Response {
                    request_id,
                    response,
                } => {
                    self.early_replies.insert(request_id, response);
                }
                push => return Ok(push),
            }
        }
    }

    /// Whether another push arrives within `timeout`: `None` if the
    /// connection stayed quiet (or closed), for "nothing more is delivered"
    /// checks.
    pub async fn try_next_push(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<RelayFrame>, WireClientError> {
        match self.next_push(timeout).await {
            Ok(push) => Ok(Some(push)),
            Err(WireClientError::Timeout(..)) | Err(WireClientError::Closed(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The next frame of any kind, buffered pushes first, then the socket.
    pub async fn next_frame(&mut self, timeout: Duration) -> Result<RelayFrame, WireClientError> {
        if let Some(push) = self.pushes.pop_front() {
            return Ok(push);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        self.read_frame_until(deadline, "any frame").await
    }

    /// Sends `bytes` as one binary WebSocket message, unchecked.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), WireClientError> {
        let sending = self.socket.send(Message::Binary(bytes.into()));
        tokio::time::timeout(REPLY_TIMEOUT, sending)
            .await
            .map_err(|_| WireClientError::Timeout(REPLY_TIMEOUT, "sending a frame"))??;
        Ok(())
    }

    /// Sends a WebSocket text message (not part of the protocol).
    pub async fn send_text(&mut self, text: &str) -> Result<(), WireClientError> {
        self.socket.send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// Reads frames until the relay closes the connection, returning every
    /// frame seen on the way (for example `Closing`). Fails if the socket is
    /// still open after `timeout`.
    pub async fn read_until_closed(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<RelayFrame>, WireClientError> {
        let mut seen: Vec<RelayFrame> = self.pushes.drain(..).collect();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.read_frame_until(deadline, "the relay to close").await {
                Ok(frame) => seen.push(frame),
                Err(WireClientError::Closed(_)) => return Ok(seen),
                // A reset after the close frame is still a close.
                Err(WireClientError::Socket(_)) if self.closed => return Ok(seen),
                Err(other) => return Err(other),
            }
        }
    }

    /// Whether the relay has closed this connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes the connection from our side (best effort) and waits briefly
    /// for the relay to finish the close handshake, so the relay has seen
    /// the device go offline when this returns.
    pub async fn close(&mut self) {
        if self.closed {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.socket.close(None)).await;
        let _ = self.read_until_closed(Duration::from_secs(5)).await;
        self.closed = true;
    }

    async fn read_frame_until(
        &mut self,
        deadline: tokio::time::Instant,
        waiting_for: &'static str,
    ) -> Result<RelayFrame, WireClientError> {
        loop {
            if self.closed {
                return Err(WireClientError::Closed(waiting_for));
            }
            let now = tokio::time::Instant::now();
            let left = deadline.saturating_duration_since(now);
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .map_err(|_| WireClientError::Timeout(left, waiting_for))?;
            match next {
                None => {
                    self.closed = true;
                    return Err(WireClientError::Closed(waiting_for));
                }
                Some(Err(error)) => {
                    self.closed = true;
                    return Err(WireClientError::Socket(error));
                }
                Some(Ok(Message::Binary(bytes))) => return Ok(wire::decode_relay(&bytes)?),
                Some(Ok(Message::Text(_))) => return Err(WireClientError::TextMessage),
                Some(Ok(Message::Close(_))) => {
                    self.closed = true;
                    return Err(WireClientError::Closed(waiting_for));
                }
                // tungstenite answers pings itself; frames are not messages.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            }
        }
    }

    /// `Authenticate` as the primary device; returns the connection's address.
    pub async fn authenticate(&mut self, token: &SessionToken) -> Result<Address, WireClientError> {
        match self
            .request_ok(Request::Authenticate {
                token: token.clone(),
                device: DeviceId::PRIMARY,
            })
            .await?
        {
            Response::Authenticated { address } => Ok(address),
            other => Err(unexpected("Authenticated", other)),
        }
    }

    /// Asks how many one-time prekeys the relay still holds for us.
    pub async fn prekey_count(&mut self) -> Result<u32, WireClientError> {
        match self.request_ok(Request::PreKeyCount).await? {
            Response::PreKeyCount { remaining, .. } => Ok(remaining),
            other => Err(unexpected("PreKeyCount", other)),
        }
    }
}

/// `got` as the error of a step that needed `expected`: a refusal stays a
/// refusal.
pub(crate) fn unexpected(expected: &'static str, got: Response) -> WireClientError {
    match got {
        Response::Error { code, message, .. } => WireClientError::Refused { code, message },
        got => WireClientError::Unexpected {
            expected,
            got: Box::new(got),
        },
    }
}
