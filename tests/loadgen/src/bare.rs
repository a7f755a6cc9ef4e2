//! The baseline: a bare forwarder on the relay's own WebSocket stack (axum
//! with tungstenite, the relay's buffer sizes and frame caps, TCP_NODELAY,
//! one writer task per connection behind a queue of the relay's outbox
//! size, one flush per frame) that stores nothing and checks nothing.
//!
//! It speaks just enough of umbra-wire for the same generator to drive it:
//! `Authenticate` binds the connection to the address in the token's first
//! 16 bytes (no lookup), `Send` pushes each envelope as a `Deliver` to the
//! addressed connection with a per-recipient counter as its seq and answers
//! `Accepted`, `Ack` and `Ping` are answered at once. Decoding and encoding
//! the frames is the one piece of the relay's work it keeps: any relay of
//! this protocol pays for it, so the ratio measures what storage, auth,
//! ordering and limits cost on top.
//!
//! Must never: be mistaken for a relay (no durability, no authentication,
//! an envelope for a recipient that is not connected is dropped).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use umbra_wire::{
    self as wire, AccountId, Address, ErrorCode, RelayFrame, Request, Response, SendOutcome,
    ACCOUNT_ID_LEN, MAX_FRAME_BYTES,
};

use crate::consts::{BARE_OUTBOX, BARE_WS_BUFFER};

/// Connected addresses: the writer queue and the next seq of each.
#[derive(Default)]
struct Hub {
    by_address: Mutex<HashMap<Address, (mpsc::Sender<Message>, u64)>>,
}

impl Hub {
    /// The queue of `to` and its next seq, if connected.
    fn route(&self, to: Address) -> Option<(mpsc::Sender<Message>, u64)> {
        let mut map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_mut(&to)?;
        entry.1 += 1;
        Some((entry.0.clone(), entry.1))
    }
}

/// Serves until killed; prints `bare forwarder listening on http://ADDR`.
pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new()
        .route("/v1/ws", get(upgrade))
        .with_state(Arc::new(Hub::default()));
    println!("bare forwarder listening on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(
    State(hub): State<Arc<Hub>>,
    upgrade: WebSocketUpgrade,
) -> axum::response::Response {
    // The relay's settings (server/src/app.rs, `websocket`).
    let hard_cap = MAX_FRAME_BYTES * 2;
    upgrade
        .read_buffer_size(BARE_WS_BUFFER)
        .write_buffer_size(BARE_WS_BUFFER)
        .max_write_buffer_size(BARE_WS_BUFFER + hard_cap)
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| connection(socket, hub))
}

async fn connection(socket: WebSocket, hub: Arc<Hub>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(BARE_OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut me: Option<Address> = None;
    while let Some(Ok(message)) = stream.next().await {
        let Message::Binary(bytes) = message else {
            continue;
        };
        let Ok(frame) = wire::decode_client(&bytes) else {
            break;
        };
        let response = match frame.request {
            Request::Authenticate { token, device } => {
                let mut account = [0u8; ACCOUNT_ID_LEN];
                account.copy_from_slice(&token.expose_secret()[..ACCOUNT_ID_LEN]);
                let address = Address {
                    account: AccountId::from_bytes(account),
                    device,
                };
                hub.by_address
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(address, (tx.clone(), 0));
                me = Some(address);
                Response::Authenticated { address }
            }
            Request::Send { messages } => {
                let mut results = Vec::with_capacity(messages.len());
                for message in messages {
                    let seq = match hub.route(message.to) {
                        Some((queue, seq)) => {
                            let deliver = RelayFrame::Deliver {
                                seq,
                                envelope: message.envelope,
                                received_at_ms: 0,
                            };
                            if let Ok(bytes) = wire::encode_relay(&deliver) {
                                let _ = queue.send(Message::Binary(bytes.into())).await;
                            }
                            seq
                        }
                        None => 0,
                    };
                    results.push(SendOutcome::Accepted { seq });
                }
                Response::SendResult { results }
            }
            Request::Ack { .. } => Response::Ok,
            Request::Ping => Response::Pong,
            _ => Response::error(ErrorCode::BadFrame, "not served by the bare forwarder"),
        };
        let reply = RelayFrame::Response {
            request_id: frame.request_id,
            response,
        };
        let Ok(bytes) = wire::encode_relay(&reply) else {
            break;
        };
        if tx.send(Message::Binary(bytes.into())).await.is_err() {
            break;
        }
    }
    if let Some(address) = me {
        hub.by_address
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&address);
    }
    drop(tx);
    let _ = writer.await;
}
