//! What the in-process relay suites (`relay_ws_*.rs`) share: starting the
//! real app on 127.0.0.1:0 with a temporary SQLite store (or a given
//! PostgreSQL URL), and a thin adapter over the shared wire client that reads
//! strictly (a reply must echo its request's id) and panics with what went
//! wrong, plus the sign-up and queue-draining steps most tests begin with.
//!
//! Must never: assert on relay behaviour itself (the suites do), hide a
//! relay that does not answer (every wait is bounded by [`WAIT`]), or run
//! the client's real key stretching (the relay never runs it).

#![allow(dead_code)] // each suite uses a different part of this module

use std::time::Duration;

use umbra_relay::app::{start, RunningRelay};
use umbra_relay::config::{RelayConfig, Settings};
use umbra_test_support::opaque_flow::Stretch;
use umbra_test_support::wire_client::{
    LoginExchange, RegisterExchange, Socket, WireClient, WireClientError,
};
use umbra_wire::{
    AccountId, Address, DeviceId, ErrorCode, RelayFrame, Request, Response, SessionToken, Username,
};

pub type Ws = Socket;

/// Generous bound so a broken relay fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestRelay {
    pub relay: RunningRelay,
    pub _dir: tempfile::TempDir,
}

pub async fn relay_with(settings: Settings) -> TestRelay {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: Some(dir.path().to_path_buf()),
        ..settings
    };
    let config = RelayConfig::resolve(settings).expect("config");
    let store = umbra_relay::app::open_store(&config)
        .await
        .expect("sqlite store");
    let relay = start(&config, store, false).await.expect("relay starts");
    TestRelay { relay, _dir: dir }
}

pub async fn relay() -> TestRelay {
    relay_with(Settings::default()).await
}

/// A connection for these tests: the shared wire client
/// (umbra-test-support) with the cheap key-stretching function, since the
/// relay never runs it, read strictly: a reply must echo its request's id,
/// and a closed connection reads as `None`.
pub struct Client {
    inner: WireClient,
}

impl Client {
    pub async fn connect(relay: &TestRelay) -> Client {
        let url = format!("ws://{}/v1/ws", relay.relay.local_addr);
        let inner = WireClient::connect(&url)
            .await
            .expect("websocket handshake in time");
        Client {
            inner: inner.with_stretch(Stretch::Cheap),
        }
    }

    /// The raw WebSocket, for tests of messages that are not relay frames.
    pub fn ws(&mut self) -> &mut Ws {
        self.inner.socket()
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.inner.send_raw(bytes).await.expect("send");
    }

    /// Next relay frame; pings are skipped.
    pub async fn next(&mut self) -> Option<RelayFrame> {
        match self.inner.next_frame(WAIT).await {
            Ok(frame) => Some(frame),
            Err(WireClientError::Closed(_) | WireClientError::Socket(_)) => None,
            Err(WireClientError::Timeout(..)) => panic!("relay answers in time"),
            Err(other) => panic!("unexpected message: {other}"),
        }
    }

    /// Sends a request and returns its response; pushes that arrive first
    /// are returned in the second element.
    pub async fn call(&mut self, request: Request) -> (Response, Vec<RelayFrame>) {
        let id = self.inner.send_request(request).await.expect("send");
        let mut pushes = Vec::new();
        loop {
            match self.next().await {
                Some(RelayFrame::Response {
                    request_id,
                    response,
                }) => {
                    assert_eq!(request_id, id, "reply echoes the request id");
                    return (response, pushes);
                }
                Some(other) => pushes.push(other),
                None => panic!("connection closed while waiting for a reply"),
            }
        }
    }

    pub async fn ask(&mut self, request: Request) -> Response {
        self.call(request).await.0
    }
}

pub fn name(s: &str) -> Username {
    Username::parse(s).expect("valid username")
}

/// Registers; `Ok(account)` or the relay's answer that ended it.
pub async fn register(c: &mut Client, user: &str, password: &[u8]) -> Result<AccountId, Response> {
    match c
        .inner
        .register_exchange(user, password)
        .await
        .expect("registration exchange")
    {
        RegisterExchange::Finished(Response::RegisterDone { account }) => Ok(account),
        RegisterExchange::Stopped(other) | RegisterExchange::Finished(other) => Err(other),
    }
}

/// Runs a login; `Ok(token)` or the relay's final error response. Also
/// returns the size of the server's OPAQUE response. A client that cannot
/// finish (wrong password, unknown user) still sends a finalization, so
/// the relay's side of the failure is exercised too.
pub async fn login(
    c: &mut Client,
    user: &str,
    password: &[u8],
) -> (Result<(SessionToken, AccountId), Response>, usize) {
    match c
        .inner
        .login_exchange(user, password)
        .await
        .expect("login exchange")
    {
        LoginExchange::Stopped(response) => (Err(response), 0),
        LoginExchange::Finished {
            opaque_response,
            verdict,
            ..
        } => {
            let result = match verdict {
                Response::LoginDone { token, account, .. } => Ok((token, account)),
                other => Err(other),
            };
            (result, opaque_response.len())
        }
    }
}

/// Registers, logs in and authenticates a fresh connection.
pub async fn signed_in(relay: &TestRelay, user: &str) -> (Client, AccountId, SessionToken) {
    let mut c = Client::connect(relay).await;
    let account = register(&mut c, user, b"pw").await.expect("registered");
    let (result, _) = login(&mut c, user, b"pw").await;
    let (token, logged_in) = result.expect("logged in");
    assert_eq!(logged_in, account);
    let (response, _) = c
        .call(Request::Authenticate {
            token: token.clone(),
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(
        response,
        Response::Authenticated {
            address: Address::primary(account)
        }
    );
    (c, account, token)
}

pub fn error_code(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// Reads frames until `QueueEmpty`, returning the Deliver frames before it.
pub async fn drain(c: &mut Client) -> Vec<(u64, Vec<u8>)> {
    let mut delivered = Vec::new();
    loop {
        match c.next().await.expect("connection open") {
            RelayFrame::Deliver { seq, envelope, .. } => delivered.push((seq, envelope)),
            RelayFrame::QueueEmpty => return delivered,
            RelayFrame::PreKeysLow { .. } => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}
