//! Accounts and authenticated connections: registration and login through
//! real OPAQUE (the client halves from umbra-test-support's `opaque_flow`,
//! with the cheap client-side key stretch; the relay never runs a key
//! stretch, so its CPU is what a real client's login costs it), and the
//! login phase that measures OPAQUE logins per second of relay CPU.
//!
//! Must never: print a token or password, or count a login the client
//! could not finish itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use rand::rngs::OsRng;
use rand::RngCore;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use umbra_test_support::wire_client::{Stretch, WireClient};
use umbra_wire::{
    self as wire, AccountId, Address, ClientFrame, DeviceId, RelayFrame, Request, Response,
    SessionToken, ACCOUNT_ID_LEN, SESSION_TOKEN_LEN,
};

use crate::consts::{PASSWORD, REGISTER_CONCURRENCY, SETUP_TIMEOUT};
use crate::drive::{DriveConfig, Sampler};
use crate::nodes::Nodes;
use crate::report::PhaseReport;

/// A WebSocket to a relay or to the bare forwarder.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One account the drive connects as.
#[derive(Clone)]
pub struct Identity {
    /// Its bearer token.
    pub token: SessionToken,
    /// Its primary device.
    pub address: Address,
    /// Its username (for the login phase).
    pub username: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("Identity")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// For the bare forwarder: a random account whose id is the token's
    /// first bytes (the forwarder routes by it and checks nothing).
    pub fn made_up() -> Identity {
        let mut token = [0u8; SESSION_TOKEN_LEN];
        OsRng.fill_bytes(&mut token);
        let mut account = [0u8; ACCOUNT_ID_LEN];
        account.copy_from_slice(&token[..ACCOUNT_ID_LEN]);
        Identity {
            token: SessionToken::from_bytes(token),
            address: Address::primary(AccountId::from_bytes(account)),
            username: String::new(),
        }
    }
}

/// Registers and logs in `n` accounts named `lg<prefix><i>_<random>`,
/// account `i` on node `(i + offset) % urls.len()`.
pub async fn register_all(
    urls: &[String],
    prefix: &str,
    n: usize,
    offset: usize,
) -> anyhow::Result<Vec<Identity>> {
    let run = OsRng.next_u32();
    let jobs = (0..n).map(|i| {
        let url = urls[(i + offset) % urls.len()].clone();
        let username = format!("lg{prefix}{i}_{run:08x}");
        async move { register_one(&url, username).await }
    });
    futures_util::stream::iter(jobs)
        .buffered(REGISTER_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn register_one(url: &str, username: String) -> anyhow::Result<Identity> {
    let mut client = WireClient::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?
        .with_stretch(Stretch::Cheap);
    client
        .register(&username, PASSWORD)
        .await
        .with_context(|| format!("registering {username}"))?;
    let login = client
        .login(&username, PASSWORD)
        .await
        .with_context(|| format!("logging in {username}"))?;
    client.close().await;
    Ok(Identity {
        token: login.token,
        address: Address::primary(login.account),
        username,
    })
}

/// The relay's WebSocket settings on the client side too, and Nagle off:
/// small frames must not wait for an ACK.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
}

/// A connection authenticated as `who` (request id 1). Pushes that arrive
/// after the reply are left for the caller.
pub async fn authed_socket(url: &str, who: &Identity) -> anyhow::Result<Ws> {
    let connecting = tokio_tungstenite::connect_async_with_config(url, Some(client_config()), true);
    let (mut ws, _) = tokio::time::timeout(SETUP_TIMEOUT, connecting)
        .await
        .context("connect timed out")??;
    let frame = wire::encode_client(&ClientFrame {
        request_id: 1,
        request: Request::Authenticate {
            token: who.token.clone(),
            device: DeviceId::PRIMARY,
        },
    })?;
    ws.send(Message::Binary(frame.into())).await?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no answer to Authenticate")?;
        let Some(message) = next else {
            anyhow::bail!("closed before answering Authenticate");
        };
        let Message::Binary(bytes) = message? else {
            continue;
        };
        match wire::decode_relay(&bytes)? {
            RelayFrame::Response {
                request_id: 1,
                response: Response::Authenticated { .. },
            } => return Ok(ws),
            RelayFrame::Response { response, .. } => {
                anyhow::bail!("Authenticate refused: {}", response.kind())
            }
            _ => {}
        }
    }
}

/// `clients` connections logging in again and again (LoginStart +
/// LoginFinish, each with the client's own OPAQUE work), over the same
/// warm-up and window as the message phases. The relay's CPU per login
/// gives logins per second per core.
pub async fn login_phase(
    nodes: &Nodes,
    load: &DriveConfig,
    clients: usize,
) -> anyhow::Result<PhaseReport> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let who = nodes.senders[i % nodes.senders.len()].clone();
        let url = nodes.url_for(i).to_owned();
        let (done, failed, counting, stop) =
            (done.clone(), failed.clone(), counting.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = WireClient::connect(&url)
                .await?
                .with_stretch(Stretch::Cheap);
            while !stop.load(Ordering::Relaxed) {
                let ok = client.login(&who.username, PASSWORD).await.is_ok();
                if counting.load(Ordering::Relaxed) {
                    let counter = if ok { &done } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            client.close().await;
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(load.warmup).await;
    nodes.instrument(true);
    let sampler = Sampler::start(&nodes.pids());
    counting.store(true, Ordering::Relaxed);
    tokio::time::sleep(load.duration).await;
    counting.store(false, Ordering::Relaxed);
    let sample = sampler.finish();
    nodes.instrument(false);
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap_or(Ok(Ok(())))
        {
            eprintln!("login client failed: {error:#}");
        }
    }
    Ok(PhaseReport::logins(
        done.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        sample,
    ))
}
