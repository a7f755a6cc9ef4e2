//! In-process tests of the relay: start the real app on 127.0.0.1:0 with a
//! temporary SQLite store and speak the wire protocol over WebSockets (and
//! HTTP for blobs and probes), asserting on every reply.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::rngs::OsRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey};
use umbra_relay::app::{start, RunningRelay};
use umbra_relay::config::{RelayConfig, Settings};
use umbra_test_support::opaque_flow::Stretch;
use umbra_test_support::wire_client::{
    LoginExchange, RegisterExchange, Socket, WireClient, WireClientError,
};
use umbra_wire::{
    decode_relay, encode_client, AccountId, AccountRef, Address, ClientFrame, DeviceId, ErrorCode,
    OutgoingEnvelope, PreKeyWire, RelayFrame, Request, Response, SendOutcome, SessionToken,
    SignedPreKeyWire, Username,
};

type Ws = Socket;

/// Generous bound so a broken relay fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(20);

struct TestRelay {
    relay: RunningRelay,
    _dir: tempfile::TempDir,
}

async fn relay_with(settings: Settings) -> TestRelay {
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

async fn relay() -> TestRelay {
    relay_with(Settings::default()).await
}

/// A connection for these tests: the shared wire client
/// (umbra-test-support) with the cheap key-stretching function, since the
/// relay never runs it, read strictly: a reply must echo its request's id,
/// and a closed connection reads as `None`.
struct Client {
    inner: WireClient,
}

impl Client {
    async fn connect(relay: &TestRelay) -> Client {
        let url = format!("ws://{}/v1/ws", relay.relay.local_addr);
        let inner = WireClient::connect(&url)
            .await
            .expect("websocket handshake in time");
        Client {
            inner: inner.with_stretch(Stretch::Cheap),
        }
    }

    /// The raw WebSocket, for tests of messages that are not relay frames.
    fn ws(&mut self) -> &mut Ws {
        self.inner.socket()
    }

    async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.inner.send_raw(bytes).await.expect("send");
    }

    /// Next relay frame; pings are skipped.
    async fn next(&mut self) -> Option<RelayFrame> {
        match self.inner.next_frame(WAIT).await {
            Ok(frame) => Some(frame),
            Err(WireClientError::Closed(_) | WireClientError::Socket(_)) => None,
            Err(WireClientError::Timeout(..)) => panic!("relay answers in time"),
            Err(other) => panic!("unexpected message: {other}"),
        }
    }

    /// Sends a request and returns its response; pushes that arrive first
    /// are returned in the second element.
    async fn call(&mut self, request: Request) -> (Response, Vec<RelayFrame>) {
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

    async fn ask(&mut self, request: Request) -> Response {
        self.call(request).await.0
    }
}

fn name(s: &str) -> Username {
    Username::parse(s).expect("valid username")
}

/// Registers; `Ok(account)` or the relay's answer that ended it.
async fn register(c: &mut Client, user: &str, password: &[u8]) -> Result<AccountId, Response> {
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
async fn login(
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
async fn signed_in(relay: &TestRelay, user: &str) -> (Client, AccountId, SessionToken) {
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

fn error_code(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// Reads frames until `QueueEmpty`, returning the Deliver frames before it.
async fn drain(c: &mut Client) -> Vec<(u64, Vec<u8>)> {
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

async fn publish(c: &mut Client, one_time: u32) {
    let mut rng = OsRng;
    let identity = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&identity, 1, 1_700_000_000, &mut rng).public();
    let signed_prekey = SignedPreKeyWire::from(spk);
    let last_resort = PreKeyWire::from(OneTimePreKey::generate(999, &mut rng).public());
    let response = c
        .ask(Request::PublishKeys {
            identity: identity.public().to_bytes().to_vec(),
            signed_prekey,
            last_resort: Some(last_resort),
        })
        .await;
    assert_eq!(response, Response::Ok);
    let prekeys: Vec<PreKeyWire> = (1..=one_time)
        .map(|id| PreKeyWire::from(OneTimePreKey::generate(id, &mut rng).public()))
        .collect();
    let response = c.ask(Request::UploadPreKeys { prekeys }).await;
    assert!(
        matches!(response, Response::PreKeyCount { remaining, .. } if remaining == one_time),
        "{response:?}"
    );
}

#[tokio::test]
async fn register_login_send_deliver_ack() {
    let relay = relay().await;
    let (mut alice, _alice_id, _) = signed_in(&relay, "alice").await;
    assert!(drain(&mut alice).await.is_empty());
    let (mut bob, bob_id, bob_token) = signed_in(&relay, "bob").await;
    assert!(
        drain(&mut bob).await.is_empty(),
        "a new account has an empty queue"
    );

    let to = Address::primary(bob_id);
    let response = alice
        .ask(Request::Send {
            messages: vec![
                OutgoingEnvelope {
                    to,
                    envelope: b"one".to_vec(),
                },
                OutgoingEnvelope {
                    to: Address::primary(AccountId::from_bytes([9; 16])),
                    envelope: b"x".to_vec(),
                },
                OutgoingEnvelope {
                    to,
                    envelope: b"two".to_vec(),
                },
            ],
        })
        .await;
    let Response::SendResult { results } = response else {
        panic!("{response:?}")
    };
    assert_eq!(results.len(), 3);
    let (SendOutcome::Accepted { seq: s1 }, SendOutcome::Accepted { seq: s2 }) =
        (results[0], results[2])
    else {
        panic!("{results:?}")
    };
    assert!(s1 < s2, "per-recipient order follows request order");
    assert_eq!(
        results[1],
        SendOutcome::Rejected {
            code: ErrorCode::UnknownRecipient
        }
    );

    // Bob is connected: pushed in order.
    let mut got = Vec::new();
    while got.len() < 2 {
        match bob.next().await.expect("open") {
            RelayFrame::Deliver { seq, envelope, .. } => got.push((seq, envelope)),
            RelayFrame::PreKeysLow { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, vec![(s1, b"one".to_vec()), (s2, b"two".to_vec())]);

    // Ack only the first; a new connection gets the second again.
    assert_eq!(bob.ask(Request::Ack { seqs: vec![s1] }).await, Response::Ok);
    drop(bob);
    let mut bob2 = Client::connect(&relay).await;
    let response = bob2
        .ask(Request::Authenticate {
            token: bob_token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(response, Response::Authenticated { address: to });
    assert_eq!(
        drain(&mut bob2).await,
        vec![(s2, b"two".to_vec())],
        "unacked stays, acked is gone"
    );
}

#[tokio::test]
async fn login_failures_look_alike_and_are_rate_limited() {
    let relay = relay_with(Settings {
        auth_per_username_per_minute: Some(4),
        ..Settings::default()
    })
    .await;
    let mut c = Client::connect(&relay).await;
    register(&mut c, "carol", b"right")
        .await
        .expect("registered");
    assert_eq!(
        error_code(
            &register(&mut c, "carol", b"other")
                .await
                .expect_err("taken")
        ),
        Some(ErrorCode::UsernameTaken)
    );
    let (wrong, real_size) = login(&mut c, "carol", b"wrong").await;
    assert_eq!(
        error_code(&wrong.expect_err("wrong password fails")),
        Some(ErrorCode::AuthFailed)
    );
    let (unknown, fake_size) = login(&mut c, "nobody", b"right").await;
    assert_eq!(
        error_code(&unknown.expect_err("unknown user fails")),
        Some(ErrorCode::AuthFailed)
    );
    assert_eq!(
        real_size, fake_size,
        "unknown users get a response of the real shape"
    );

    // From this address "carol" has spent 1 of her 4 LoginStarts (the
    // RegisterStarts spend no budget of the name: issue 9 item 7): three
    // more logins are allowed, the one after is refused.
    for n in 2..=4 {
        let (allowed, _) = login(&mut c, "carol", b"right").await;
        assert!(allowed.is_ok(), "login {n} is within the budget");
    }
    let (fifth, _) = login(&mut c, "carol", b"right").await;
    let refused = match fifth {
        Err(Response::Error {
            code: ErrorCode::RateLimited,
            retry_after_secs,
            ..
        }) => retry_after_secs,
        other => panic!("the fifth attempt must be rate limited, got {other:?}"),
    };
    assert!(
        refused.is_some_and(|secs| secs >= 1),
        "per-username budget refuses with a retry hint"
    );
}

#[tokio::test]
async fn requests_need_authentication_and_bad_tokens_fail() {
    let relay = relay().await;
    let mut c = Client::connect(&relay).await;
    assert_eq!(c.ask(Request::Ping).await, Response::Pong);
    let response = c.ask(Request::PreKeyCount).await;
    assert_eq!(error_code(&response), Some(ErrorCode::NotAuthenticated));
    let response = c
        .ask(Request::Authenticate {
            token: SessionToken::from_bytes([3; 32]),
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::AuthFailed));
    let (mut d, _, _) = signed_in(&relay, "dave").await;
    let response = d
        .ask(Request::LoginStart {
            username: name("dave"),
            opaque_request: vec![1, 2, 3],
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::AlreadyAuthenticated));
}

#[tokio::test]
async fn malformed_frame_gets_bad_frame_and_close_and_relay_stays_up() {
    let relay = relay().await;
    let mut c = Client::connect(&relay).await;
    c.send_raw(vec![1, 0xff, 0xff, 0xff]).await;
    match c.next().await {
        Some(RelayFrame::Response { response, .. }) => {
            assert_eq!(error_code(&response), Some(ErrorCode::BadFrame))
        }
        other => panic!("expected an error reply, got {other:?}"),
    }
    assert!(matches!(
        c.next().await,
        Some(RelayFrame::Closing {
            code: ErrorCode::BadFrame,
            ..
        })
    ));
    assert!(c.next().await.is_none(), "connection closed");

    let mut again = Client::connect(&relay).await;
    assert_eq!(
        again.ask(Request::Ping).await,
        Response::Pong,
        "relay still serves"
    );

    // Unsupported version: the fixed 3-byte rejection notice, then close.
    let mut old = Client::connect(&relay).await;
    old.send_raw(vec![200, 0, 0]).await;
    let msg = tokio::time::timeout(WAIT, old.ws().next())
        .await
        .expect("in time");
    match msg {
        Some(Ok(Message::Binary(bytes))) => assert_eq!(bytes.as_ref(), &[0, 1, 1]),
        other => panic!("expected the rejection notice, got {other:?}"),
    }
    match tokio::time::timeout(WAIT, old.ws().next())
        .await
        .expect("in time")
    {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1002),
        other => panic!("expected a protocol-error close, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_frame_gets_frame_too_large_then_close() {
    let relay = relay_with(Settings {
        max_frame_bytes: Some(100_000),
        ..Settings::default()
    })
    .await;
    let mut c = Client::connect(&relay).await;
    c.send_raw(vec![1; 150_000]).await;
    let mut saw_error = false;
    let mut saw_closing = false;
    while let Some(frame) = c.next().await {
        match frame {
            RelayFrame::Response { response, .. } => {
                saw_error |= error_code(&response) == Some(ErrorCode::FrameTooLarge)
            }
            RelayFrame::Closing { code, .. } => saw_closing |= code == ErrorCode::FrameTooLarge,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_error && saw_closing);
}

#[tokio::test]
async fn a_frame_over_the_default_limit_is_answered_under_its_own_request_id() {
    let relay = relay_with(Settings::default()).await;
    let mut c = Client::connect(&relay).await;
    // Version 1, request id 11, then filler past the default frame limit.
    let mut frame = vec![1, 11];
    frame.resize(umbra_wire::MAX_FRAME_BYTES + 1, 0);
    c.send_raw(frame).await;
    let mut answered = None;
    while let Some(frame) = c.next().await {
        if let RelayFrame::Response {
            request_id,
            response,
        } = frame
        {
            assert_eq!(error_code(&response), Some(ErrorCode::FrameTooLarge));
            answered = Some(request_id);
        }
    }
    assert_eq!(
        answered,
        Some(11),
        "FrameTooLarge must name the frame's request"
    );
}

#[tokio::test]
async fn envelope_limit_is_per_recipient() {
    let relay = relay_with(Settings {
        max_envelope_bytes: Some(1000),
        ..Settings::default()
    })
    .await;
    let (mut a, _, _) = signed_in(&relay, "erin").await;
    let (_b, b_id, _) = signed_in(&relay, "frank").await;
    let to = Address::primary(b_id);
    let response = a
        .ask(Request::Send {
            messages: vec![
                OutgoingEnvelope {
                    to,
                    envelope: vec![0; 1001],
                },
                OutgoingEnvelope {
                    to,
                    envelope: vec![0; 1000],
                },
            ],
        })
        .await;
    let Response::SendResult { results } = response else {
        panic!("{response:?}")
    };
    assert_eq!(
        results[0],
        SendOutcome::Rejected {
            code: ErrorCode::EnvelopeTooLarge
        }
    );
    assert!(matches!(results[1], SendOutcome::Accepted { .. }));
}

#[tokio::test]
async fn second_connection_replaces_first() {
    let relay = relay().await;
    let (mut first, account, token) = signed_in(&relay, "gina").await;
    assert!(drain(&mut first).await.is_empty());
    let mut second = Client::connect(&relay).await;
    let response = second
        .ask(Request::Authenticate {
            token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(
        response,
        Response::Authenticated {
            address: Address::primary(account)
        }
    );
    loop {
        match first.next().await {
            Some(RelayFrame::Closing { code, .. }) => {
                assert_eq!(code, ErrorCode::Replaced);
                break;
            }
            Some(RelayFrame::PreKeysLow { .. }) => continue,
            other => panic!("expected Closing{{Replaced}}, got {other:?}"),
        }
    }
    assert_eq!(second.ask(Request::Ping).await, Response::Pong);
}

#[tokio::test]
async fn bundles_claim_one_time_keys_then_fall_back_and_warn_owner() {
    let relay = relay().await;
    let (mut owner, owner_id, _) = signed_in(&relay, "hank").await;
    publish(&mut owner, 2).await;
    let (mut peer, _, _) = signed_in(&relay, "ivy").await;

    let mut claimed = Vec::new();
    for _ in 0..3 {
        let response = peer
            .ask(Request::FetchBundle {
                target: AccountRef::Username(name("hank")),
            })
            .await;
        let Response::Bundle(bundle) = response else {
            panic!("{response:?}")
        };
        assert_eq!(bundle.account, owner_id);
        assert_eq!(bundle.last_resort.map(|k| k.id), Some(999));
        claimed.push(bundle.one_time_prekey.map(|k| k.id));
    }
    claimed.sort();
    assert_eq!(
        claimed,
        vec![None, Some(1), Some(2)],
        "each one-time key once, then last-resort only"
    );

    // The owner hears that its keys are low.
    let mut low = None;
    while low.is_none() {
        match owner.next().await.expect("open") {
            RelayFrame::PreKeysLow { remaining } => low = Some(remaining),
            RelayFrame::QueueEmpty | RelayFrame::Deliver { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    let response = peer
        .ask(Request::FetchBundle {
            target: AccountRef::Username(name("nobody")),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownUsername));
    let response = owner
        .ask(Request::FetchBundle {
            target: AccountRef::Username(name("ivy")),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::NoPreKeys));
}

#[tokio::test]
async fn publish_keys_rejects_a_bad_signature() {
    let relay = relay().await;
    let (mut c, _, _) = signed_in(&relay, "jack").await;
    let mut rng = OsRng;
    let identity = IdentityKeyPair::generate(&mut rng);
    let other = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&other, 1, 1_700_000_000, &mut rng).public();
    let signed_prekey = SignedPreKeyWire::from(spk);
    let response = c
        .ask(Request::PublishKeys {
            identity: identity.public().to_bytes().to_vec(),
            signed_prekey,
            last_resort: None,
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::BadSignature));
}

#[tokio::test]
async fn ephemeral_reaches_only_connected_recipients() {
    let relay = relay().await;
    let (mut a, _, _) = signed_in(&relay, "kate").await;
    let (mut b, b_id, b_token) = signed_in(&relay, "liam").await;
    assert!(drain(&mut b).await.is_empty());
    let response = a
        .ask(Request::Ephemeral {
            to: Address::primary(b_id),
            payload: b"typing".to_vec(),
        })
        .await;
    assert_eq!(response, Response::Ok);
    loop {
        match b.next().await.expect("open") {
            RelayFrame::EphemeralDeliver { payload } => {
                assert_eq!(payload, b"typing");
                break;
            }
            RelayFrame::PreKeysLow { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(b);
    // Offline: still Ok, and nothing is stored for later.
    let response = a
        .ask(Request::Ephemeral {
            to: Address::primary(b_id),
            payload: b"gone".to_vec(),
        })
        .await;
    assert_eq!(response, Response::Ok);
    let store = &relay.relay.state.store;
    assert_eq!(
        store.total_queued().await.expect("count"),
        0,
        "nothing queued"
    );
    // Coming back, the device finds an empty backlog and no late ephemeral:
    // not before its Authenticate reply, not in the backlog, not after it.
    let mut back = Client::connect(&relay).await;
    let (response, early) = back
        .call(Request::Authenticate {
            token: b_token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(
        response,
        Response::Authenticated {
            address: Address::primary(b_id)
        }
    );
    let stored_later = |frame: &RelayFrame| {
        matches!(
            frame,
            RelayFrame::EphemeralDeliver { .. } | RelayFrame::Deliver { .. }
        )
    };
    assert!(!early.iter().any(stored_later), "{early:?}");
    assert!(drain(&mut back).await.is_empty(), "the backlog is empty");
    let (pong, late) = back.call(Request::Ping).await;
    assert_eq!(pong, Response::Pong);
    assert!(!late.iter().any(stored_later), "{late:?}");
}

#[tokio::test]
async fn rename_logout_and_delete_account() {
    let relay = relay().await;
    let (mut c, account, token) = signed_in(&relay, "mona").await;
    let response = c
        .ask(Request::Rename {
            new_username: name("mona2"),
        })
        .await;
    assert_eq!(
        response,
        Response::Resolved {
            username: name("mona2"),
            account,
            identity: None,
        }
    );
    let response = c
        .ask(Request::ResolveUsername {
            username: name("mona"),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownUsername));

    // The password still works under the new name (credential id is the account id).
    let mut fresh = Client::connect(&relay).await;
    let (result, _) = login(&mut fresh, "mona2", b"pw").await;
    assert!(result.is_ok(), "login after rename");

    assert_eq!(
        c.ask(Request::Logout { everywhere: false }).await,
        Response::Ok
    );
    assert!(c.next().await.is_none(), "logout closes the connection");
    let mut again = Client::connect(&relay).await;
    let response = again
        .ask(Request::Authenticate {
            token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(
        error_code(&response),
        Some(ErrorCode::AuthFailed),
        "revoked token"
    );

    let (result, _) = login(&mut again, "mona2", b"pw").await;
    let (token, _) = result.expect("login");
    again
        .ask(Request::Authenticate {
            token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(again.ask(Request::DeleteAccount).await, Response::Ok);
    assert_eq!(
        relay
            .relay
            .state
            .store
            .rows_for_account(account)
            .await
            .expect("count"),
        0
    );
}

async fn http(relay: &TestRelay, request: &[u8]) -> (u16, Vec<u8>) {
    let mut tcp = TcpStream::connect(relay.relay.local_addr)
        .await
        .expect("tcp");
    tcp.write_all(request).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out))
        .await
        .expect("in time")
        .expect("read");
    let text_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end")
        + 4;
    let head = String::from_utf8_lossy(&out[..text_end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = out[text_end..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(
            std::str::from_utf8(&raw[..line_end]).expect("ascii").trim(),
            16,
        )
        .expect("hex");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn post_blob(token: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[tokio::test]
async fn blobs_probes_and_metrics_over_http() {
    let relay = relay_with(Settings {
        blob_max_bytes: Some(200_000),
        ..Settings::default()
    })
    .await;
    let (_c, _, token) = signed_in(&relay, "nina").await;
    let token_hex = hex::encode(token.expose_secret());
    let blob: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();

    let (status, body) = http(&relay, &post_blob(&token_hex, &blob)).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let body = String::from_utf8(body).expect("json");
    let id = body.split('"').nth(3).expect("id field").to_string();
    assert_eq!(id.len(), 64);

    let get = format!("GET /v1/blobs/{id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (status, body) = http(&relay, get.as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(body, blob, "streamed back byte for byte");

    let (status, _) = http(&relay, &post_blob(&token_hex, &vec![0; 200_001])).await;
    assert_eq!(status, 413);
    let (status, _) = http(&relay, &post_blob(&"00".repeat(32), b"abc")).await;
    assert_eq!(status, 401);
    let missing = format!(
        "GET /v1/blobs/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "00".repeat(32)
    );
    assert_eq!(http(&relay, missing.as_bytes()).await.0, 404);

    assert_eq!(
        http(
            &relay,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        http(
            &relay,
            b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .await
        .0,
        200
    );
    let (status, body) = http(
        &relay,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.contains("umbra_blobs_uploaded_total 1\n"), "{text}");
    assert!(text.contains("umbra_registrations_total 1\n"));
    assert!(text.contains("umbra_connections_open 1\n"));
}

#[tokio::test]
async fn shutdown_says_goodbye_and_stops() {
    let relay = relay().await;
    let (mut c, _, _) = signed_in(&relay, "olga").await;
    assert!(drain(&mut c).await.is_empty());
    relay.relay.shutdown();
    loop {
        match c.next().await {
            Some(RelayFrame::Closing { code, .. }) => {
                assert_eq!(code, ErrorCode::ShuttingDown);
                break;
            }
            Some(RelayFrame::PreKeysLow { .. }) => continue,
            other => panic!("expected Closing{{ShuttingDown}}, got {other:?}"),
        }
    }
    let TestRelay { relay, _dir } = relay;
    tokio::time::timeout(WAIT, relay.wait())
        .await
        .expect("relay stops after shutdown");
}

#[tokio::test]
async fn idle_clients_are_dropped_and_ponging_clients_kept() {
    let relay = relay_with(Settings {
        idle_timeout_secs: Some(2),
        ping_interval_secs: Some(1),
        ..Settings::default()
    })
    .await;
    let silent = Client::connect(&relay).await;
    let mut reader = Client::connect(&relay).await;
    // The reader keeps reading for longer than the idle timeout; tungstenite
    // answers each relay ping with a pong while reading.
    let keep_reading = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, reader.ws().next()).await {
                Ok(Some(Ok(Message::Ping(_)))) => {}
                Ok(other) => panic!("reader got {other:?}"),
                Err(_) => break,
            }
        }
    };
    keep_reading.await;
    assert_eq!(
        reader.ask(Request::Ping).await,
        Response::Pong,
        "a client answering pings stays connected"
    );

    // The silent client never read, so never ponged: the relay closed it.
    // Reading it now only drains what the relay sent before it hung up.
    let mut silent = silent;
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match silent.ws().next().await {
                Some(Ok(Message::Ping(_))) => continue,
                Some(Ok(Message::Close(_)) | Err(_)) | None => return true,
                Some(Ok(other)) => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "silent client was disconnected");
}

#[tokio::test]
async fn tls_serves_wss() {
    use std::sync::Arc;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let relay = relay_with(Settings {
        tls_cert: Some(fixtures.join("cert.pem")),
        tls_key: Some(fixtures.join("key.pem")),
        ..Settings::default()
    })
    .await;
    assert!(relay.relay.url().starts_with("https://"));

    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_file_iter(fixtures.join("ca.pem")).expect("ca")
    {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(relay.relay.local_addr)
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the relay's certificate");
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/v1/ws", tls)
        .await
        .expect("wss upgrade");
    let ping = encode_client(&ClientFrame {
        request_id: 1,
        request: Request::Ping,
    })
    .expect("encode");
    ws.send(Message::Binary(ping.into())).await.expect("send");
    let reply = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Binary(bytes))) => break decode_relay(&bytes).expect("decode"),
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        reply,
        RelayFrame::Response {
            request_id: 1,
            response: Response::Pong
        }
    );

    // A plain-text client gets no WebSocket from a TLS listener.
    let url = format!("ws://{}/v1/ws", relay.relay.local_addr);
    let plain = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("in time");
    assert!(
        plain.is_err(),
        "plain HTTP must not be served when TLS is configured"
    );
}

#[tokio::test]
async fn concurrent_senders_backlog_arrives_in_order_then_queue_empty() {
    let relay = relay().await;
    let (bob, bob_id, bob_token) = signed_in(&relay, "paul").await;
    drop(bob); // offline while the backlog builds up
    let to = Address::primary(bob_id);
    let mut senders = Vec::new();
    for i in 0..4 {
        senders.push(signed_in(&relay, &format!("sender{i}")).await.0);
    }
    let per_sender = 10usize;
    let tasks = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| async move {
            let mut seqs = Vec::new();
            for n in 0..per_sender {
                let envelope = format!("{i}:{n}").into_bytes();
                let response = c
                    .ask(Request::Send {
                        messages: vec![OutgoingEnvelope { to, envelope }],
                    })
                    .await;
                let Response::SendResult { results } = response else {
                    panic!("{response:?}")
                };
                let [SendOutcome::Accepted { seq }] = results[..] else {
                    panic!("{results:?}")
                };
                seqs.push(seq);
            }
            seqs
        });
    let accepted: Vec<Vec<u64>> = futures_util::future::join_all(tasks).await;
    for seqs in &accepted {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one sender's messages keep their order"
        );
    }

    let mut bob = Client::connect(&relay).await;
    let response = bob
        .ask(Request::Authenticate {
            token: bob_token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(response, Response::Authenticated { address: to });
    let delivered = drain(&mut bob).await;
    assert_eq!(
        delivered.len(),
        4 * per_sender,
        "the whole backlog, across several pages, before QueueEmpty"
    );
    assert!(
        delivered.windows(2).all(|w| w[0].0 < w[1].0),
        "pushed in sequence order"
    );
    let mut all: Vec<u64> = accepted.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(
        delivered.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        all
    );
    for (seq, envelope) in &delivered {
        let text = String::from_utf8(envelope.clone()).expect("utf8");
        assert!(text.contains(':'), "envelope {seq} intact");
    }
}

#[tokio::test]
async fn full_queue_rejects_only_the_overflow() {
    let relay = relay_with(Settings {
        max_queue_len: Some(2),
        ..Settings::default()
    })
    .await;
    let (mut a, _, _) = signed_in(&relay, "quinn").await;
    let (_b, b_id, _) = signed_in(&relay, "rosa").await;
    let (_c, c_id, _) = signed_in(&relay, "sam").await;
    let env = |to: AccountId| OutgoingEnvelope {
        to: Address::primary(to),
        envelope: b"m".to_vec(),
    };
    let response = a
        .ask(Request::Send {
            messages: vec![env(b_id), env(b_id), env(b_id), env(c_id)],
        })
        .await;
    let Response::SendResult { results } = response else {
        panic!("{response:?}")
    };
    assert!(matches!(results[0], SendOutcome::Accepted { .. }));
    assert!(matches!(results[1], SendOutcome::Accepted { .. }));
    assert_eq!(
        results[2],
        SendOutcome::Rejected {
            code: ErrorCode::QueueFull
        }
    );
    assert!(
        matches!(results[3], SendOutcome::Accepted { .. }),
        "other recipients are unaffected"
    );
}

/// Collects everything the relay logs, at every level, on this test's thread
/// (tokio's test runtime is single-threaded, so relay tasks log here too).
#[derive(Clone, Default)]
struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Set in the child process that runs the log test alone.
const LOG_TEST_CHILD: &str = "UMBRA_RELAY_WS_LOG_TEST_CHILD";

/// The log-secrecy test runs in a child process of this test binary, alone:
/// tracing caches per-callsite interest process-wide, and a callsite first
/// hit by a parallel test while the scoped capture subscriber was being
/// installed could stay silent, leaving the capture empty.
#[test]
fn logs_never_contain_tokens_passwords_envelopes_or_names() {
    if std::env::var_os(LOG_TEST_CHILD).is_some() {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(log_secrecy());
    }
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "logs_never_contain_tokens_passwords_envelopes_or_names",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(LOG_TEST_CHILD, "1")
        .output()
        .expect("run the log test in a child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "log test failed in its child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn log_secrecy() {
    let capture = LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let relay = relay().await;
    let (mut alice, _, alice_token) = signed_in(&relay, "tessa").await;
    let (mut bob, bob_id, _) = signed_in(&relay, "ursula").await;
    assert!(drain(&mut bob).await.is_empty());
    let secret_envelope = b"ENVELOPE-PLAINTEXT-MARKER".to_vec();
    // The traffic really happened, so its absence from the logs means
    // something: the send was accepted and delivered, the bad frame refused.
    let sent = alice
        .ask(Request::Send {
            messages: vec![OutgoingEnvelope {
                to: Address::primary(bob_id),
                envelope: secret_envelope.clone(),
            }],
        })
        .await;
    assert!(
        matches!(&sent, Response::SendResult { results } if matches!(results.as_slice(), [SendOutcome::Accepted { .. }])),
        "{sent:?}"
    );
    loop {
        match bob.next().await.expect("bob's connection is open") {
            RelayFrame::Deliver { envelope, .. } => {
                assert_eq!(envelope, secret_envelope);
                break;
            }
            RelayFrame::PreKeysLow { .. } => {}
            other => panic!("bob expected the envelope, got {other:?}"),
        }
    }
    let (failed, _) = login(
        &mut Client::connect(&relay).await,
        "tessa",
        b"WRONG-PASSWORD-MARKER",
    )
    .await;
    assert!(failed.is_err());
    let mut bad = Client::connect(&relay).await;
    bad.send_raw(vec![1, 0xff]).await;
    let refused = bad.next().await;
    assert!(
        matches!(
            &refused,
            Some(RelayFrame::Response { response, .. }) if error_code(response) == Some(ErrorCode::BadFrame)
        ),
        "{refused:?}"
    );
    relay.relay.shutdown();
    let TestRelay { relay, _dir } = relay;
    relay.wait().await;

    let logs = String::from_utf8(capture.0.lock().expect("log buffer").clone()).expect("utf8 logs");
    assert!(
        logs.contains("request"),
        "the capture works (trace lines were written)"
    );
    // Hex is searched case-insensitively (lower-case hex of the lower-cased
    // logs), so upper- and mixed-case dumps are covered too.
    let lowered = logs.to_lowercase();
    for (what, secret) in [
        ("session token", alice_token.expose_secret().as_slice()),
        ("envelope", secret_envelope.as_slice()),
        ("password", b"WRONG-PASSWORD-MARKER".as_slice()),
        ("username", b"tessa".as_slice()),
        ("username", b"ursula".as_slice()),
        ("account id", bob_id.as_bytes().as_slice()),
    ] {
        for form in printed_forms(secret) {
            let found = if form.is_hex {
                lowered.contains(&form.text)
            } else {
                logs.contains(&form.text)
            };
            assert!(
                !found,
                "logs contain the {what} as {} {:?}:\n{logs}",
                form.kind, form.text
            );
        }
    }
}

/// The search in the log test would see a secret in each form a logger
/// could print it, also inside a longer buffer at any offset.
#[test]
fn printed_forms_find_a_secret_in_every_encoding() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let secret = [
        0xfbu8, 0xff, 0x10, 0x00, 0x7e, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
    ];
    let found = |log: &str| {
        let lowered = log.to_lowercase();
        printed_forms(&secret).iter().any(|form| {
            if form.is_hex {
                lowered.contains(&form.text)
            } else {
                log.contains(&form.text)
            }
        })
    };
    for offset in 0..3 {
        let mut buffer = vec![0x99u8; offset];
        buffer.extend_from_slice(&secret);
        buffer.extend_from_slice(b"tail");
        for log in [
            hex::encode_upper(&buffer),
            hex::encode(&buffer),
            STANDARD.encode(&buffer),
            URL_SAFE_NO_PAD.encode(&buffer),
            format!("{buffer:?}"),
        ] {
            assert!(found(&format!("INFO x={log} y")), "missed in {log}");
        }
    }
    assert!(!found("INFO nothing secret here"));
}

/// One way a logger could print secret bytes.
struct Printed {
    kind: &'static str,
    text: String,
    is_hex: bool,
}

/// The forms `bytes` could take in a log line: the text itself (when it is
/// UTF-8), hex, standard and URL-safe base64 at each of the three
/// alignments it could have inside a longer buffer (only the characters
/// fixed by whole 3-byte groups, so the surrounding bytes do not matter),
/// and Rust's `Debug` list of numbers.
fn printed_forms(bytes: &[u8]) -> Vec<Printed> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let mut forms = vec![Printed {
        kind: "hex",
        text: hex::encode(bytes),
        is_hex: true,
    }];
    if let Ok(text) = std::str::from_utf8(bytes) {
        forms.push(Printed {
            kind: "text",
            text: text.to_owned(),
            is_hex: false,
        });
    }
    for skip in 0..3 {
        let tail = &bytes[skip.min(bytes.len())..];
        let whole = tail.len() / 3 * 4;
        for (kind, engine) in [
            ("base64", &STANDARD_NO_PAD),
            ("base64url", &URL_SAFE_NO_PAD),
        ] {
            let text = engine.encode(tail)[..whole].to_owned();
            if text.len() >= 8 {
                forms.push(Printed {
                    kind,
                    text,
                    is_hex: false,
                });
            }
        }
    }
    let numbers: Vec<String> = bytes.iter().map(u8::to_string).collect();
    forms.push(Printed {
        kind: "Debug bytes",
        text: numbers.join(", "),
        is_hex: false,
    });
    forms
}

#[tokio::test]
async fn two_nodes_sharing_postgres_deliver_across_nodes() {
    // A fresh database from the workspace's one PostgreSQL rule (a failure
    // in CI, a visible and counted skip elsewhere); dropped at the end.
    let Some(db) =
        umbra_test_support::PgTestDb::create("two_nodes_sharing_postgres_deliver_across_nodes")
            .await
    else {
        return;
    };
    // Nodes on one database share one OPAQUE key file (OPERATIONS.md).
    let keys = tempfile::tempdir().expect("key file directory");
    let node = || {
        relay_with(Settings {
            database_url: Some(db.url().to_string()),
            opaque_key_file: Some(keys.path().join("opaque-server-key")),
            ..Settings::default()
        })
    };
    let node_a = node().await;
    let node_b = node().await;
    assert_ne!(node_a.relay.local_addr, node_b.relay.local_addr);

    // Registered on A, logged in on B: both nodes share accounts and the
    // OPAQUE server setup.
    let mut on_a = Client::connect(&node_a).await;
    let bob_id = register(&mut on_a, "victor", b"pw")
        .await
        .expect("registered on A");
    let mut bob = Client::connect(&node_b).await;
    let (result, _) = login(&mut bob, "victor", b"pw").await;
    let (token, _) = result.expect("login on B with an account made on A");
    let response = bob
        .ask(Request::Authenticate {
            token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(
        response,
        Response::Authenticated {
            address: Address::primary(bob_id)
        }
    );
    assert!(drain(&mut bob).await.is_empty());

    // Alice on A sends; Bob, connected to B, is woken through LISTEN/NOTIFY.
    let (mut alice, _, _) = signed_in(&node_a, "wendy").await;
    let response = alice
        .ask(Request::Send {
            messages: vec![OutgoingEnvelope {
                to: Address::primary(bob_id),
                envelope: b"across".to_vec(),
            }],
        })
        .await;
    let Response::SendResult { results } = response else {
        panic!("{response:?}")
    };
    let [SendOutcome::Accepted { seq }] = results[..] else {
        panic!("{results:?}")
    };
    loop {
        match bob.next().await.expect("open") {
            RelayFrame::Deliver {
                seq: got, envelope, ..
            } => {
                assert_eq!((got, envelope), (seq, b"across".to_vec()));
                break;
            }
            RelayFrame::PreKeysLow { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    for n in [node_a, node_b] {
        n.relay.shutdown();
        let TestRelay { relay, _dir } = n;
        relay.wait().await;
    }
}

#[tokio::test]
async fn expired_token_gets_token_expired_and_others_auth_failed() {
    use umbra_relay::auth::tokens::issue;

    let relay = relay().await;
    let (mut c, account, token) = signed_in(&relay, "nora").await;
    // A day cannot pass in a test: store a token that expired long ago, as
    // the passage of time would leave one.
    let store = &relay.relay.state.store;
    let stale = issue(&mut OsRng, 1_000_000, Duration::from_secs(60));
    store
        .insert_token(&stale.hash.0, Address::primary(account), stale.expires_at)
        .await
        .expect("insert expired token");

    let mut other = Client::connect(&relay).await;
    let response = other
        .ask(Request::Authenticate {
            token: stale.token.clone(),
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::TokenExpired));
    let response = other
        .ask(Request::Authenticate {
            token: stale.token.clone(),
            device: DeviceId(2),
        })
        .await;
    assert_eq!(
        error_code(&response),
        Some(ErrorCode::AuthFailed),
        "an expired token for another device is just a bad token"
    );
    let response = other
        .ask(Request::Authenticate {
            token: SessionToken::from_bytes([4; 32]),
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(
        error_code(&response),
        Some(ErrorCode::AuthFailed),
        "unknown"
    );

    // Revoked (logged out) tokens are unknown to the relay: AuthFailed.
    assert_eq!(
        c.ask(Request::Logout { everywhere: true }).await,
        Response::Ok
    );
    for revoked in [token, stale.token] {
        let mut again = Client::connect(&relay).await;
        let response = again
            .ask(Request::Authenticate {
                token: revoked,
                device: DeviceId::PRIMARY,
            })
            .await;
        assert_eq!(error_code(&response), Some(ErrorCode::AuthFailed));
    }
}

#[tokio::test]
async fn resolve_username_is_rate_limited_per_requester() {
    let relay = relay_with(Settings {
        username_resolves_per_minute: Some(2),
        ..Settings::default()
    })
    .await;
    let (mut a, a_id, _) = signed_in(&relay, "olga").await;
    let (mut b, _, _) = signed_in(&relay, "pete").await;
    for target in ["pete", "nobody"] {
        let response = a
            .ask(Request::ResolveUsername {
                username: name(target),
            })
            .await;
        assert!(
            error_code(&response) != Some(ErrorCode::RateLimited),
            "within the budget: {response:?}"
        );
    }
    let response = a
        .ask(Request::ResolveUsername {
            username: name("pete"),
        })
        .await;
    match response {
        Response::Error {
            code: ErrorCode::RateLimited,
            retry_after_secs,
            ..
        } => assert!(retry_after_secs.is_some_and(|secs| secs >= 1)),
        other => panic!("third resolve in a minute must be rate limited, got {other:?}"),
    }
    assert_eq!(
        b.ask(Request::ResolveUsername {
            username: name("olga"),
        })
        .await,
        Response::Resolved {
            username: name("olga"),
            account: a_id,
            identity: None,
        },
        "another requester keeps its own budget"
    );
}

#[tokio::test]
async fn publishing_a_new_identity_drops_the_old_one_time_prekeys() {
    let relay = relay().await;
    let (mut owner, owner_id, _) = signed_in(&relay, "quinn").await;
    publish(&mut owner, 3).await;
    let (mut peer, _, _) = signed_in(&relay, "rosa").await;
    let Response::Resolved {
        identity: old_identity,
        ..
    } = peer
        .ask(Request::ResolveUsername {
            username: name("quinn"),
        })
        .await
    else {
        panic!("resolving a published account")
    };
    assert!(old_identity.is_some(), "the published identity is named");
    assert!(
        matches!(
            owner.ask(Request::PreKeyCount).await,
            Response::PreKeyCount { remaining: 3, .. }
        ),
        "resolving claims no one-time prekey"
    );

    // The owner reinstalls: a new identity, signed prekey, no last-resort key.
    let mut rng = OsRng;
    let identity = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&identity, 2, 1_700_000_100, &mut rng).public();
    let signed_prekey = SignedPreKeyWire::from(spk);
    let response = owner
        .ask(Request::PublishKeys {
            identity: identity.public().to_bytes().to_vec(),
            signed_prekey,
            last_resort: None,
        })
        .await;
    assert_eq!(response, Response::Ok);
    assert!(matches!(
        owner.ask(Request::PreKeyCount).await,
        Response::PreKeyCount { remaining: 0, .. }
    ));

    let resolved = peer
        .ask(Request::ResolveUsername {
            username: name("quinn"),
        })
        .await;
    assert_eq!(
        resolved,
        Response::Resolved {
            username: name("quinn"),
            account: owner_id,
            identity: Some(identity.public().to_bytes().to_vec()),
        },
        "resolving names the new identity"
    );
    assert_ne!(old_identity, Some(identity.public().to_bytes().to_vec()));
    let response = peer
        .ask(Request::FetchBundle {
            target: AccountRef::Account(owner_id),
        })
        .await;
    let Response::Bundle(bundle) = response else {
        panic!("{response:?}")
    };
    assert_eq!(bundle.identity, identity.public().to_bytes().to_vec());
    assert_eq!(bundle.signed_prekey, signed_prekey);
    assert_eq!(bundle.one_time_prekey, None, "old identity's keys are gone");
    assert_eq!(bundle.last_resort, None);
}
