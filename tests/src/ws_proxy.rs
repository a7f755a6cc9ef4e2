//! A WebSocket proxy between a real `umbra` process and a real relay, for
//! suites that must interrupt a client at an exact protocol step without
//! any test hook in the product.
//!
//! The client connects to the proxy as if it were the relay (`umbra
//! --server` takes [`WsProxy::http_url`]); for each client connection the
//! proxy opens one to the relay and forwards messages both ways. Every
//! client frame is decoded with `umbra_protocol::wire::decode_client`, and
//! each `Send` request is recorded with its envelope bytes. While
//! [`WsProxy::hold_sends_to`] is in force, a `Send` carrying an envelope for
//! that account is held back: recorded, never forwarded, and the relay never
//! sees it. While [`WsProxy::lose_answers_to_sends_to`] is, such a `Send`
//! goes through but the relay's answer to it is dropped, as a connection
//! that breaks just after the relay took the message would lose it.
//! [`WsProxy::forward_everything`] ends either.
//!
//! Must never: alter a frame it forwards, forward a held frame, talk to
//! anything but loopback, or outlive its value (every task is aborted on
//! drop).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::collections::HashSet;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;
use umbra_protocol::wire::{self, AccountId, Address, RelayFrame, Request};

/// One envelope of a client's `Send` request, as the proxy saw it.
#[derive(Clone, PartialEq, Eq)]
pub struct SeenSend {
    /// The recipient device.
    pub to: Address,
    /// The sealed envelope, byte for byte.
    pub envelope: Vec<u8>,
    /// Whether the frame carrying it went on to the relay (false: held).
    pub forwarded: bool,
}

impl std::fmt::Debug for SeenSend {
    // Hundreds of ciphertext bytes help no one reading a failure: the
    // length and the first bytes tell envelopes apart.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head: String = self
            .envelope
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        f.debug_struct("SeenSend")
            .field("to", &self.to)
            .field(
                "envelope",
                &format!("{} bytes, {head}...", self.envelope.len()),
            )
            .field("forwarded", &self.forwarded)
            .finish()
    }
}

/// What happens to a `Send` for the account being watched.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Interference {
    /// Not forwarded at all.
    HoldRequest,
    /// Forwarded; the relay's answer is dropped.
    LoseAnswer,
}

/// What the proxy does with one client frame.
enum Verdict {
    Forward,
    Hold,
    /// Forward, and drop the relay's answer to this request id.
    ForwardLosingAnswer(u64),
}

#[derive(Default)]
struct State {
    watching: Option<(AccountId, Interference)>,
    sends: Vec<SeenSend>,
    tasks: Vec<AbortHandle>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread must not hide what the proxy recorded.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a client frame and says what to do with it.
    fn judge(&self, bytes: &[u8]) -> Verdict {
        let Ok(frame) = wire::decode_client(bytes) else {
            // Not the proxy's business to judge: the relay answers it.
            return Verdict::Forward;
        };
        let Request::Send { messages } = frame.request else {
            return Verdict::Forward;
        };
        let mut state = self.state();
        let verdict = match state.watching {
            Some((account, how)) if messages.iter().any(|m| m.to.account == account) => match how {
                Interference::HoldRequest => Verdict::Hold,
                Interference::LoseAnswer => Verdict::ForwardLosingAnswer(frame.request_id),
            },
            _ => Verdict::Forward,
        };
        let forwarded = !matches!(verdict, Verdict::Hold);
        state.sends.extend(messages.into_iter().map(|m| SeenSend {
            to: m.to,
            envelope: m.envelope,
            forwarded,
        }));
        drop(state);
        self.changed.notify_waiters();
        verdict
    }
}

/// A running proxy; dropping it ends every connection through it.
pub struct WsProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl WsProxy {
    /// Listens on a loopback port the kernel picks and proxies each client
    /// connection to `upstream` (a relay's `ws://127.0.0.1:PORT/v1/ws`).
    /// Must be called inside a tokio runtime, which runs the proxy.
    pub async fn start(upstream: &str) -> std::io::Result<WsProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let upstream = upstream.to_string();
        let for_accept = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let task = tokio::spawn(proxy_connection(
                    for_accept.clone(),
                    client,
                    upstream.clone(),
                ));
                for_accept.state().tasks.push(task.abort_handle());
            }
        });
        shared.state().tasks.push(accept.abort_handle());
        Ok(WsProxy { addr, shared })
    }

    /// `http://127.0.0.1:PORT`, what `umbra --server` takes.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, holds back every `Send` frame that carries an envelope
    /// for `account`.
    pub fn hold_sends_to(&self, account: AccountId) {
        self.shared.state().watching = Some((account, Interference::HoldRequest));
    }

    /// From now on, forwards every `Send` that carries an envelope for
    /// `account` but drops the relay's answer to it.
    pub fn lose_answers_to_sends_to(&self, account: AccountId) {
        self.shared.state().watching = Some((account, Interference::LoseAnswer));
    }

    /// From now on, forwards every frame (frames held so far stay unsent,
    /// answers dropped so far stay lost).
    pub fn forward_everything(&self) {
        self.shared.state().watching = None;
    }

    /// Every envelope for `account` seen so far, in arrival order.
    pub fn sends_to(&self, account: AccountId) -> Vec<SeenSend> {
        self.shared
            .state()
            .sends
            .iter()
            .filter(|s| s.to.account == account)
            .cloned()
            .collect()
    }

    /// Waits until some recorded envelope satisfies `wanted` and returns
    /// it, or `None` after `limit` (a bound for a broken client, not a
    /// timing assertion).
    pub async fn wait_for_send(
        &self,
        limit: Duration,
        wanted: impl Fn(&SeenSend) -> bool,
    ) -> Option<SeenSend> {
        let wait = async {
            loop {
                // Created before the check, so a frame recorded in between
                // still wakes us (`notify_waiters` reaches created futures).
                let changed = self.shared.changed.notified();
                if let Some(found) = self.shared.state().sends.iter().find(|s| wanted(s)) {
                    return found.clone();
                }
                changed.await;
            }
        };
        tokio::time::timeout(limit, wait).await.ok()
    }
}

impl Drop for WsProxy {
    fn drop(&mut self) {
        for task in self.shared.state().tasks.drain(..) {
            task.abort();
        }
    }
}

/// One client connection: a WebSocket toward the client, one toward the
/// relay, messages forwarded both ways until either side ends.
async fn proxy_connection(shared: Arc<Shared>, client: TcpStream, upstream: String) {
    let Ok(client) = tokio_tungstenite::accept_async(client).await else {
        return;
    };
    let Ok((relay, _)) = tokio_tungstenite::connect_async(upstream.as_str()).await else {
        return;
    };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_relay, mut from_relay) = relay.split();
    // Request ids on this connection whose answers are to be dropped.
    let lose: Mutex<HashSet<u64>> = Mutex::default();
    let lose = &lose;
    let up = async {
        while let Some(Ok(message)) = from_client.next().await {
            let message = match message {
                Message::Binary(bytes) => match shared.judge(&bytes) {
                    Verdict::Hold => continue,
                    Verdict::ForwardLosingAnswer(id) => {
                        lock(lose).insert(id);
                        Message::Binary(bytes)
                    }
                    Verdict::Forward => Message::Binary(bytes),
                },
                // Each hop answers its own pings (tungstenite does it).
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                other => other,
            };
            let closing = matches!(message, Message::Close(_));
            if to_relay.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = to_relay.close().await;
    };
    let down = async {
        while let Some(Ok(message)) = from_relay.next().await {
            match &message {
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                Message::Binary(bytes) => {
                    if let Ok(RelayFrame::Response { request_id, .. }) = wire::decode_relay(bytes) {
                        if lock(lose).remove(&request_id) {
                            continue;
                        }
                    }
                }
                _ => {}
            }
            let closing = matches!(message, Message::Close(_));
            if to_client.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = to_client.close().await;
    };
    // When one side ends, the other connection is dropped with it, as a
    // network path that breaks would drop both.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
