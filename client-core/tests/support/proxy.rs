//! A WebSocket proxy between clients and a real relay that can play a
//! relay of another version: one that predates the ML-KEM prekey frames
//! (answers them `BadFrame` and closes, as such a relay's decoder does,
//! docs/PROTOCOL.md 9.4), or one that strips the KEM prekeys from every
//! hybrid bundle it serves (the downgrade attack PQXDH's refusal is for),
//! or one that names another device than the one asked for in the token it
//! gives (`LoginEnrolled`, §15.6).
//! It counts what passes, so a test can say what the client sent.
//!
//! Must never: change a frame its mode does not name, or hide one from
//! the counters.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use umbra_protocol::wire::{
    decode_client, decode_relay, encode_relay, ErrorCode, RelayFrame, Request, Response,
};

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Passes everything unchanged.
    Pass = 0,
    /// Answers a KEM request `BadFrame` and closes the connection.
    OldRelay = 1,
    /// Removes both KEM prekeys from every `HybridBundle` answer.
    StripKem = 2,
    /// Adds one to the device id of every `LoginEnrolled` answer.
    OtherDevice = 3,
}

/// Counters of what the clients sent through the proxy.
#[derive(Debug, Default)]
pub struct Seen {
    /// `UploadKemPreKeys`, `KemPreKeyCount` and `FetchHybridBundle` requests.
    pub kem_requests: AtomicU64,
    /// `FetchBundle` and `FetchDeviceBundle` requests (classical bundles).
    pub classical_fetches: AtomicU64,
    /// `Send` requests.
    pub sends: AtomicU64,
    /// `HybridBundle` answers the proxy stripped.
    pub stripped: AtomicU64,
}

/// A running proxy; the tasks stop with the test's runtime.
pub struct Proxy {
    url: String,
    mode: Arc<AtomicU8>,
    pub seen: Arc<Seen>,
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards to the relay at `relay_url`
    /// (`http://host:port`).
    pub async fn start(relay_url: &str, mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = format!("{}/v1/ws", relay_url.replacen("http", "ws", 1));
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let seen = Arc::new(Seen::default());
        let (task_mode, task_seen) = (mode.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (upstream, mode, seen) =
                    (upstream.clone(), task_mode.clone(), task_seen.clone());
                tokio::spawn(async move {
                    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let Ok((relay, _)) = tokio_tungstenite::connect_async(&upstream).await else {
                        return;
                    };
                    bridge(client, relay, mode, seen).await;
                });
            }
        });
        Self { url, mode, seen }
    }

    /// The URL a client is configured with.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Changes the mode for frames from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn mode_of(mode: &AtomicU8) -> Mode {
        match mode.load(Ordering::SeqCst) {
            1 => Mode::OldRelay,
            2 => Mode::StripKem,
            3 => Mode::OtherDevice,
            _ => Mode::Pass,
        }
    }
}

async fn bridge<C, R>(client: C, relay: R, mode: Arc<AtomicU8>, seen: Arc<Seen>)
where
    C: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message>
        + Unpin,
    R: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message>
        + Unpin,
{
    let (mut to_client, mut from_client) = client.split();
    let (mut to_relay, mut from_relay) = relay.split();
    loop {
        tokio::select! {
            message = from_client.next() => {
                let Some(Ok(message)) = message else { break };
                if let Message::Binary(bytes) = &message {
                    if let Ok(frame) = decode_client(bytes) {
                        let kem = matches!(
                            frame.request,
                            Request::UploadKemPreKeys { .. }
                                | Request::KemPreKeyCount
                                | Request::FetchHybridBundle { .. }
                        );
                        if kem {
                            seen.kem_requests.fetch_add(1, Ordering::SeqCst);
                        }
                        if matches!(
                            frame.request,
                            Request::FetchBundle { .. } | Request::FetchDeviceBundle { .. }
                        ) {
                            seen.classical_fetches.fetch_add(1, Ordering::SeqCst);
                        }
                        if matches!(frame.request, Request::Send { .. }) {
                            seen.sends.fetch_add(1, Ordering::SeqCst);
                        }
                        if kem && Proxy::mode_of(&mode) == Mode::OldRelay {
                            // What a relay without these tags does: it cannot
                            // decode the frame, answers BadFrame, closes.
                            let answer = RelayFrame::Response {
                                request_id: frame.request_id,
                                response: Response::error(
                                    ErrorCode::BadFrame,
                                    "unknown variant of Request",
                                ),
                            };
                            let bytes = encode_relay(&answer).expect("encode");
                            let _ = to_client.send(Message::Binary(bytes.into())).await;
                            let _ = to_client.send(Message::Close(None)).await;
                            break;
                        }
                    }
                }
                if to_relay.send(message).await.is_err() {
                    break;
                }
            }
            message = from_relay.next() => {
                let Some(Ok(mut message)) = message else { break };
                if Proxy::mode_of(&mode) == Mode::StripKem {
                    if let Message::Binary(bytes) = &message {
                        if let Ok(RelayFrame::Response {
                            request_id,
                            response: Response::HybridBundle(mut hybrid),
                        }) = decode_relay(bytes)
                        {
                            hybrid.kem_one_time = None;
                            hybrid.kem_last_resort = None;
                            seen.stripped.fetch_add(1, Ordering::SeqCst);
                            let frame = RelayFrame::Response {
                                request_id,
                                response: Response::HybridBundle(hybrid),
                            };
                            message = Message::Binary(encode_relay(&frame).expect("encode").into());
                        }
                    }
                }
                if Proxy::mode_of(&mode) == Mode::OtherDevice {
                    if let Message::Binary(bytes) = &message {
                        if let Ok(RelayFrame::Response {
                            request_id,
                            response: Response::LoginEnrolled(mut given),
                        }) = decode_relay(bytes)
                        {
                            given.device.0 += 1;
                            let frame = RelayFrame::Response {
                                request_id,
                                response: Response::LoginEnrolled(given),
                            };
                            message = Message::Binary(encode_relay(&frame).expect("encode").into());
                        }
                    }
                }
                if to_client.send(message).await.is_err() {
                    break;
                }
            }
        }
    }
}
