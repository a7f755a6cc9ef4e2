//! A client that stops reading cannot wedge its connection (issue 9 item
//! 3), against the real binary: its socket has a tiny receive buffer and is
//! never read while another account sends it megabytes. The relay closes
//! it once writes stop making progress (`--write-stall-timeout-secs`), and
//! still acts on `Replaced` while it is wedged; other clients are served
//! throughout. An unauthenticated client that never reads is closed too.
//!
//! Every wait is bounded; nothing asserts how fast the relay is beyond
//! "within the bound" (the stall timeout is one second here).
//!
//! Must never: read from the wedged socket before the relay has closed it
//! (that would unwedge it), or wait without a deadline.

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use futures_util::SinkExt;
use relay_support::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use umbra_e2e::wire_client::{Session, WireClient};
use umbra_e2e::Relay;
use umbra_protocol::wire::{
    self, ClientFrame, DeviceId, OutgoingEnvelope, Request, Response, SendOutcome, SessionToken,
};

/// Longest a test waits for the relay to act.
const BOUND: Duration = Duration::from_secs(30);
/// Envelope size and count sent to the wedged device: 200 × 64 KiB, far
/// more than the socket buffers and the relay's queue hold.
const ENVELOPE_BYTES: usize = 64 * 1024;
const ENVELOPES: usize = 200;
const PER_SEND: usize = 3;

/// A WebSocket with a tiny receive buffer that is never read.
async fn unread_socket(relay: &Relay) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    // The kernel's minimum: the relay's writes back up almost at once.
    socket.set_recv_buffer_size(4096)?;
    let tcp = socket.connect(relay.addr).await?;
    let (ws, _) = tokio_tungstenite::client_async(relay.ws_url(), tcp).await?;
    Ok(ws)
}

/// A connection that authenticates as `token`'s device and then never reads.
async fn wedged(relay: &Relay, token: &SessionToken) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let mut ws = unread_socket(relay).await?;
    let frame = wire::encode_client(&ClientFrame {
        request_id: 1,
        request: Request::Authenticate {
            token: token.clone(),
            device: DeviceId::PRIMARY,
        },
    })?;
    ws.send(Message::Binary(frame.into())).await?;
    Ok(ws)
}

/// One raw HTTP/1.1 GET of `/metrics`.
async fn metrics(relay: &Relay) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(relay.addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut body))
        .await
        .context("/metrics did not answer")??;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `umbra_connections_open`: WebSockets the relay is serving.
async fn open_connections(relay: &Relay) -> anyhow::Result<i64> {
    let text = metrics(relay).await?;
    let line = text
        .lines()
        .find(|l| l.starts_with("umbra_connections_open "))
        .context("no umbra_connections_open in /metrics")?;
    Ok(line["umbra_connections_open ".len()..].trim().parse()?)
}

/// Waits (bounded) until the relay serves exactly `want` WebSockets.
async fn until_open_connections(relay: &Relay, want: i64, what: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let open = open_connections(relay).await?;
        if open == want {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: {open} connections still open after {BOUND:?}, expected {want}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `from` sends the recipient `ENVELOPES` large envelopes; all must be accepted.
async fn flood_recipient(from: &mut Session, to: &Session) -> anyhow::Result<()> {
    let mut sent = 0;
    while sent < ENVELOPES {
        let messages = (0..PER_SEND)
            .map(|i| OutgoingEnvelope {
                to: to.address,
                envelope: vec![(sent + i) as u8; ENVELOPE_BYTES],
            })
            .collect();
        match from.client.request_ok(Request::Send { messages }).await? {
            Response::SendResult { results } => ensure!(
                results
                    .iter()
                    .all(|r| matches!(r, SendOutcome::Accepted { .. })),
                "every envelope is queued: {results:?}"
            ),
            other => bail!("expected SendResult, got {other:?}"),
        }
        sent += PER_SEND;
    }
    Ok(())
}

/// The first `Deliver` pushed to `client` (hints such as `PreKeysLow` skipped).
async fn first_delivery(client: &mut WireClient) -> anyhow::Result<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_push(left).await? {
            wire::RelayFrame::Deliver { envelope, .. } => return Ok(envelope),
            wire::RelayFrame::PreKeysLow { .. } => {}
            other => bail!("expected a delivery, got {other:?}"),
        }
    }
}

/// Someone else is served normally: a new account signs up and pings.
async fn others_are_served(relay: &Relay, name: &str) -> anyhow::Result<()> {
    let mut other = Session::sign_up(&relay.ws_url(), name, "another password").await?;
    ensure!(
        other.client.request_ok(Request::Ping).await? == Response::Pong,
        "ping answered"
    );
    other.client.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_closed_and_others_are_unaffected() {
    relay_support::run_bounded(async {
        let backend = Backend::sqlite();
        let relay = backend
            .start_relay(&["--write-stall-timeout-secs", "1"])
            .await?;
        let url = relay.ws_url();
        let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
        let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
        bob.client.close().await;
        until_open_connections(&relay, 1, "before the test").await?;

        let wedged = wedged(&relay, &bob.token).await?;
        until_open_connections(&relay, 2, "the wedged client connected").await?;
        flood_recipient(&mut alice, &bob).await?;

        // The relay gives up on the connection that does not read...
        until_open_connections(&relay, 1, "the wedged connection").await?;
        // ...while alice's connection and newcomers are served as usual.
        ensure!(
            alice.client.request_ok(Request::Ping).await? == Response::Pong,
            "alice is still served"
        );
        others_are_served(&relay, "carol").await?;
        // Nothing was lost: bob reconnects and gets the first envelope.
        let mut bob_again = bob.reconnect(&url).await?;
        let envelope = first_delivery(&mut bob_again).await?;
        ensure!(
            envelope == vec![0u8; ENVELOPE_BYTES],
            "first envelope intact"
        );
        drop(wedged);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wedged_connection_still_obeys_replaced() {
    relay_support::run_bounded(async {
        let backend = Backend::sqlite();
        // A stall timeout far beyond the bound: only `Replaced` can close
        // the wedged connection within it.
        let relay = backend
            .start_relay(&["--write-stall-timeout-secs", "3600"])
            .await?;
        let url = relay.ws_url();
        let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
        let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
        bob.client.close().await;

        let wedged = wedged(&relay, &bob.token).await?;
        until_open_connections(&relay, 2, "the wedged client connected").await?;
        flood_recipient(&mut alice, &bob).await?;

        // Bob connects again: the new connection wins and the wedged one,
        // whose writes are stuck, is closed all the same.
        let mut replacing: WireClient = bob.reconnect(&url).await?;
        until_open_connections(&relay, 2, "the replaced connection").await?;
        first_delivery(&mut replacing).await?;
        drop(wedged);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unauthenticated_client_that_never_reads_is_closed() {
    relay_support::run_bounded(async {
        let backend = Backend::sqlite();
        let relay = backend.start_relay(&["--auth-timeout-secs", "5"]).await?;
        let mut silent = Vec::new();
        for _ in 0..4 {
            silent.push(unread_socket(&relay).await?);
        }
        until_open_connections(&relay, 4, "the silent clients connected").await?;
        until_open_connections(&relay, 0, "the silent clients").await?;
        others_are_served(&relay, "dave").await?;
        drop(silent);
        Ok(())
    })
    .await;
}
