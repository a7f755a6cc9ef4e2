//! A small test client that speaks `protocol::wire` to a real relay over a
//! WebSocket: requests matched to their replies by `request_id`, pushed
//! frames buffered in arrival order, raw bytes for hostile-input tests, and
//! the client halves of OPAQUE registration and login.
//!
//! It is deliberately thin: it adds no retries, no reordering and no
//! interpretation of replies beyond matching ids, so a suite sees exactly
//! what the relay sent. Every read is bounded by a timeout.
//!
//! Must never: wait without a deadline, drop a pushed frame it has read,
//! print a password or token, or hand-roll any cryptography (OPAQUE comes
//! from opaque-ke with the shared `umbra_protocol::opaque_suite`; keys from
//! `umbra_protocol::identity` and `umbra_protocol::prekeys`).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand::rngs::OsRng;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::opaque_suite::{umbra_ksf, UmbraOpaqueSuite};
use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey};
use umbra_protocol::wire::{
    self, AccountId, Address, ClientFrame, DeviceId, ErrorCode, PreKeyWire, RelayFrame, Request,
    Response, SessionToken, SignedPreKeyWire, Username, WireError,
};

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

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One connection to the relay.
pub struct WireClient {
    socket: Socket,
    next_request_id: u64,
    pushes: VecDeque<RelayFrame>,
    early_replies: HashMap<u64, Response>,
    closed: bool,
}

impl std::fmt::Debug for WireClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireClient")
            .field("next_request_id", &self.next_request_id)
            .field("buffered_pushes", &self.pushes.len())
            .field("closed", &self.closed)
            .finish()
    }
}

/// What a login yields.
#[derive(Debug, Clone)]
pub struct LoginDone {
    /// The bearer token for `Authenticate`.
    pub token: SessionToken,
    /// The account logged into.
    pub account: AccountId,
    /// When the token expires, Unix seconds.
    pub expires_at: u64,
}

/// The relay's half of a login exchange, kept so a suite can compare the
/// shape of answers for known and unknown users.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The `login_id` from `LoginResponse`.
    pub login_id: u64,
    /// The raw opaque-ke `CredentialResponse` bytes.
    pub opaque_response: Vec<u8>,
    /// Length of the `RelayFrame` that carried them (re-encoded; decoding
    /// is canonical, so this is the length received).
    pub response_frame_len: usize,
    /// `Ok` with the login, or the failure (client-side OPAQUE failure or
    /// the relay's refusal of `LoginFinish`).
    pub outcome: Result<LoginDone, WireClientError>,
}

impl WireClient {
    /// Opens a WebSocket to `ws_url` (e.g. `Relay::ws_url()`).
    pub async fn connect(ws_url: &str) -> Result<WireClient, WireClientError> {
        let connecting = tokio_tungstenite::connect_async(ws_url);
        let (socket, _) = tokio::time::timeout(REPLY_TIMEOUT, connecting)
            .await
            .map_err(|_| WireClientError::Timeout(REPLY_TIMEOUT, "the websocket handshake"))??;
        Ok(WireClient {
            socket,
            next_request_id: 1,
            pushes: VecDeque::new(),
            early_replies: HashMap::new(),
            closed: false,
        })
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
        let handshake = tokio_tungstenite::client_async(ws_url, MaybeTlsStream::Plain(stream));
        let (socket, _) = tokio::time::timeout(REPLY_TIMEOUT, handshake)
            .await
            .map_err(|_| WireClientError::Timeout(REPLY_TIMEOUT, "the websocket handshake"))??;
        Ok(WireClient {
            socket,
            next_request_id: 1,
            pushes: VecDeque::new(),
            early_replies: HashMap::new(),
            closed: false,
        })
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

    /// OPAQUE registration of `username` with `password`; returns the new
    /// account id. A refusal (e.g. `UsernameTaken`) is `Err(Refused)`.
    pub async fn register(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<AccountId, WireClientError> {
        let username = Username::parse(username)?;
        let password = password.as_bytes().to_vec();
        let start = ClientRegistration::<UmbraOpaqueSuite>::start(&mut OsRng, &password)
            .map_err(|e| WireClientError::Opaque(e.to_string()))?;
        let reply = self
            .request_ok(Request::RegisterStart {
                username: username.clone(),
                opaque_request: start.message.serialize().to_vec(),
            })
            .await?;
        let opaque_response = match reply {
            Response::RegisterResponse { opaque_response } => opaque_response,
            other => return Err(unexpected("RegisterResponse", other)),
        };
        let response = RegistrationResponse::<UmbraOpaqueSuite>::deserialize(&opaque_response)
            .map_err(|e| WireClientError::Opaque(e.to_string()))?;
        let state = start.state;
        // Argon2 is deliberately slow: keep it off the async worker threads.
        let upload = tokio::task::spawn_blocking(move || {
            let ksf = umbra_ksf();
            state
                .finish(
                    &mut OsRng,
                    &password,
                    response,
                    ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
                )
                .map(|done| done.message.serialize().to_vec())
                .map_err(|e| WireClientError::Opaque(e.to_string()))
        })
        .await??;
        match self
            .request_ok(Request::RegisterFinish {
                username,
                opaque_upload: upload,
            })
            .await?
        {
            Response::RegisterDone { account } => Ok(account),
            other => Err(unexpected("RegisterDone", other)),
        }
    }

    /// OPAQUE login; returns the token and account. A wrong password or an
    /// unknown user is an error (client-side `Opaque`, or the relay's
    /// `Refused { AuthFailed }`).
    pub async fn login(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<LoginDone, WireClientError> {
        self.login_attempt(username, password).await?.outcome
    }

    /// A full login exchange that keeps the relay's `LoginResponse` for
    /// inspection. `Err` only if the exchange could not even start; the
    /// login's own success or failure is in [`LoginAttempt::outcome`].
    ///
    /// When the client-side OPAQUE step fails (as it must for a wrong
    /// password or an unknown user), a syntactically valid but wrong
    /// finalization is still sent, so the relay's verdict is observed too:
    /// it must answer `AuthFailed`, the same way in both cases.
    pub async fn login_attempt(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<LoginAttempt, WireClientError> {
        let username = Username::parse(username)?;
        let password = password.as_bytes().to_vec();
        let start = ClientLogin::<UmbraOpaqueSuite>::start(&mut OsRng, &password)
            .map_err(|e| WireClientError::Opaque(e.to_string()))?;
        let request_id = self
            .send_request(Request::LoginStart {
                username,
                opaque_request: start.message.serialize().to_vec(),
            })
            .await?;
        let reply = self.reply_to(request_id).await?;
        let response_frame_len = wire::encode_relay(&RelayFrame::Response {
            request_id,
            response: reply.clone(),
        })
        .map_err(WireClientError::Encode)?
        .len();
        let (login_id, opaque_response) = match reply {
            Response::LoginResponse {
                login_id,
                opaque_response,
            } => (login_id, opaque_response),
            Response::Error { code, message, .. } => {
                return Err(WireClientError::Refused { code, message })
            }
            other => return Err(unexpected("LoginResponse", other)),
        };
        let parsed = CredentialResponse::<UmbraOpaqueSuite>::deserialize(&opaque_response)
            .map_err(|e| WireClientError::Opaque(e.to_string()))?;
        let state = start.state;
        let finished = tokio::task::spawn_blocking(move || {
            let ksf = umbra_ksf();
            state
                .finish(
                    &mut OsRng,
                    &password,
                    parsed,
                    ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
                )
                .map(|done| done.message.serialize().to_vec())
                .map_err(|e| WireClientError::Opaque(e.to_string()))
        })
        .await?;
        let (finalization, client_failure) = match finished {
            Ok(bytes) => (bytes, None),
            // The client could not open the envelope. Send a well-formed
            // finalization anyway (a fresh client's, which cannot verify)
            // so the relay's answer is observed.
            Err(failure) => (decoy_finalization()?, Some(failure)),
        };
        let verdict = self
            .request(Request::LoginFinish {
                login_id,
                opaque_finalization: finalization,
            })
            .await?;
        let outcome = match (verdict, client_failure) {
            (
                Response::LoginDone {
                    token,
                    account,
                    expires_at,
                },
                None,
            ) => Ok(LoginDone {
                token,
                account,
                expires_at,
            }),
            (Response::LoginDone { .. }, Some(failure)) => Err(WireClientError::Opaque(format!(
                "relay accepted a finalization the client could not produce ({failure})"
            ))),
            (Response::Error { code, message, .. }, _) => {
                Err(WireClientError::Refused { code, message })
            }
            (other, _) => Err(unexpected("LoginDone", other)),
        };
        Ok(LoginAttempt {
            login_id,
            opaque_response,
            response_frame_len,
            outcome,
        })
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

    /// Publishes `keys`' identity, signed prekey and last-resort prekey.
    pub async fn publish_keys(&mut self, keys: &DeviceKeys) -> Result<(), WireClientError> {
        match self.request_ok(keys.publish_request()).await? {
            Response::Ok => Ok(()),
            other => Err(unexpected("Ok", other)),
        }
    }

    /// Uploads `keys`' one-time prekeys; returns the relay's remaining count.
    pub async fn upload_prekeys(&mut self, keys: &DeviceKeys) -> Result<u32, WireClientError> {
        match self.request_ok(keys.upload_request()).await? {
            Response::PreKeyCount { remaining, .. } => Ok(remaining),
            other => Err(unexpected("PreKeyCount", other)),
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

/// A well-formed `CredentialFinalization` that verifies under no pending
/// login: a random MAC of the suite's hash length, checked by opaque-ke's own
/// decoder so the relay sees a syntactically valid message.
fn decoy_finalization() -> Result<Vec<u8>, WireClientError> {
    use rand::RngCore;
    use sha2::Digest;
    let mut mac = vec![0u8; <sha2::Sha512 as Digest>::output_size()];
    OsRng.fill_bytes(&mut mac);
    opaque_ke::CredentialFinalization::<UmbraOpaqueSuite>::deserialize(&mac)
        .map_err(|e| WireClientError::Opaque(e.to_string()))?;
    Ok(mac)
}

fn unexpected(expected: &'static str, got: Response) -> WireClientError {
    match got {
        Response::Error { code, message, .. } => WireClientError::Refused { code, message },
        got => WireClientError::Unexpected {
            expected,
            got: Box::new(got),
        },
    }
}

/// A device's real key material: identity, signed prekey, one-time prekeys
/// and a last-resort prekey, generated by the protocol crate.
pub struct DeviceKeys {
    /// The long-term identity.
    pub identity: IdentityKeyPair,
    /// The current signed prekey.
    pub signed_prekey: SignedPreKey,
    /// One-time prekeys, ids `1..=n`.
    pub one_time: Vec<OneTimePreKey>,
    /// The last-resort prekey (id `u32::MAX`, a distinct id space).
    pub last_resort: OneTimePreKey,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("one_time", &self.one_time.len())
            .finish_non_exhaustive()
    }
}

impl DeviceKeys {
    /// Fresh keys with `one_time` one-time prekeys.
    pub fn generate(one_time: u32) -> DeviceKeys {
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let signed_prekey = SignedPreKey::generate(&identity, 1, now, &mut OsRng);
        let one_time = (1..=one_time)
            .map(|id| OneTimePreKey::generate(id, &mut OsRng))
            .collect();
        let last_resort = OneTimePreKey::generate(u32::MAX, &mut OsRng);
        DeviceKeys {
            identity,
            signed_prekey,
            one_time,
            last_resort,
        }
    }

    /// The encoded public identity, as published.
    pub fn identity_bytes(&self) -> Vec<u8> {
        self.identity.public().to_bytes().to_vec()
    }

    /// The signed prekey as it travels on the wire.
    pub fn signed_prekey_wire(&self) -> SignedPreKeyWire {
        self.signed_prekey.public().into()
    }

    /// The last-resort prekey as it travels on the wire.
    pub fn last_resort_wire(&self) -> PreKeyWire {
        self.last_resort.public().into()
    }

    /// The one-time prekeys as they travel on the wire.
    pub fn one_time_wire(&self) -> Vec<PreKeyWire> {
        self.one_time.iter().map(|k| k.public().into()).collect()
    }

    /// `PublishKeys` for these keys.
    pub fn publish_request(&self) -> Request {
        Request::PublishKeys {
            identity: self.identity_bytes(),
            signed_prekey: self.signed_prekey_wire(),
            last_resort: Some(self.last_resort_wire()),
        }
    }

    /// `UploadPreKeys` with every one-time prekey.
    pub fn upload_request(&self) -> Request {
        Request::UploadPreKeys {
            prekeys: self.one_time_wire(),
        }
    }
}

/// A registered, logged-in, authenticated connection: what most suites
/// start from.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub client: WireClient,
    /// The account.
    pub account: AccountId,
    /// Its primary-device address.
    pub address: Address,
    /// The token it authenticated with.
    pub token: SessionToken,
    /// The username registered.
    pub username: String,
}

impl Session {
    /// Registers `username` on one connection, then logs in and
    /// authenticates on a second, as a real client does after sign-up.
    pub async fn sign_up(
        ws_url: &str,
        username: &str,
        password: &str,
    ) -> Result<Session, WireClientError> {
        let mut registering = WireClient::connect(ws_url).await?;
        let account = registering.register(username, password).await?;
        registering.close().await;
        let session = Session::log_in(ws_url, username, password).await?;
        if session.account != account {
            return Err(WireClientError::Inconsistent(format!(
                "login returned account {} but registration created {account}",
                session.account
            )));
        }
        Ok(session)
    }

    /// Logs in as an existing user on a new connection and authenticates.
    pub async fn log_in(
        ws_url: &str,
        username: &str,
        password: &str,
    ) -> Result<Session, WireClientError> {
        let mut client = WireClient::connect(ws_url).await?;
        let login = client.login(username, password).await?;
        let address = client.authenticate(&login.token).await?;
        Ok(Session {
            client,
            account: login.account,
            address,
            token: login.token,
            username: username.to_owned(),
        })
    }

    /// A new connection authenticated with the same token (the old
    /// connection, if still open, is replaced by the relay).
    pub async fn reconnect(&self, ws_url: &str) -> Result<WireClient, WireClientError> {
        let mut client = WireClient::connect(ws_url).await?;
        client.authenticate(&self.token).await?;
        Ok(client)
    }
}
