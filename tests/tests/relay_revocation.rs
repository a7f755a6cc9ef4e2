//! Revocation and replacement reach every node: after `Logout{everywhere}`,
//! `DeleteAccount` or a second `Authenticate` for the same device on node B,
//! the device's connection on node A is closed (`Closing{Replaced}` or
//! `Closing{TokenExpired}`) within [`CLOSE_BOUND`], and nothing it attempts
//! from then on takes effect: acknowledging a message, publishing keys,
//! uploading prekeys, sending, renaming. On PostgreSQL A and B are two
//! `umbra-relay` processes on one database; on SQLite (one node) they are
//! the same process, which runs the same code path in-process.
//!
//! What each attempt would have done is checked at rest in the store (the
//! acknowledged message is still queued, the new identity, prekeys, envelope
//! or name are nowhere), and every attempt is first shown to succeed on a
//! connection nobody revoked, so a refusal is the revocation's doing.
//!
//! Must never: wait on a sleep where a frame can be awaited, or skip
//! PostgreSQL silently (umbra-test-support fails under `CI=true`).

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use relay_support::{on_every_store, Backend, StoreView};
use tokio::time::Instant;
use umbra_e2e::wire_client::{DeviceKeys, Session, WireClient, WireClientError};
use umbra_e2e::Relay;
use umbra_protocol::wire::{
    ErrorCode, OutgoingEnvelope, RelayFrame, Request, Response, SendOutcome, Username,
};

/// How long after the revoking or replacing request was answered the
/// connection on the other node may stay open (the bound the relay
/// promises in docs/OPERATIONS.md).
const CLOSE_BOUND: Duration = Duration::from_secs(2);
/// Waits for pushes that must arrive (not a bound on the relay's speed).
const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "correct horse battery staple";

on_every_store!(
    logout_everywhere_on_one_node_closes_the_connection_on_another,
    account_deletion_on_one_node_closes_the_connection_on_another,
    a_second_authentication_on_one_node_replaces_the_connection_on_another,
);

async fn logout_everywhere_on_one_node_closes_the_connection_on_another(
    backend: Backend,
) -> anyhow::Result<()> {
    every_attempt_fails_after(backend, Trigger::LogoutEverywhere).await
}

async fn account_deletion_on_one_node_closes_the_connection_on_another(
    backend: Backend,
) -> anyhow::Result<()> {
    every_attempt_fails_after(backend, Trigger::DeleteAccount).await
}

async fn a_second_authentication_on_one_node_replaces_the_connection_on_another(
    backend: Backend,
) -> anyhow::Result<()> {
    every_attempt_fails_after(backend, Trigger::Authenticate).await
}

/// What node B does to the device connected to node A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    LogoutEverywhere,
    DeleteAccount,
    Authenticate,
}

/// What the connection on node A then tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Ack,
    PublishKeys,
    UploadPreKeys,
    Send,
    Rename,
}

const ATTEMPTS: [Attempt; 5] = [
    Attempt::Ack,
    Attempt::PublishKeys,
    Attempt::UploadPreKeys,
    Attempt::Send,
    Attempt::Rename,
];

/// The nodes under test: two processes on PostgreSQL, one on SQLite.
struct Nodes {
    a: Relay,
    b: Option<Relay>,
}

impl Nodes {
    async fn start(backend: &Backend) -> anyhow::Result<Nodes> {
        let args = ["--prekey-low-water", "0"];
        let a = backend.start_relay(&args).await?;
        let b = match backend.name() {
            "postgres" => Some(backend.start_relay(&args).await?),
            _ => None,
        };
        Ok(Nodes { a, b })
    }

    fn url_a(&self) -> String {
        self.a.ws_url()
    }

    fn url_b(&self) -> String {
        self.b.as_ref().unwrap_or(&self.a).ws_url()
    }
}

async fn every_attempt_fails_after(backend: Backend, trigger: Trigger) -> anyhow::Result<()> {
    let nodes = Nodes::start(&backend).await?;
    let store = backend.store(&nodes.a).await?;
    // Somebody to send to, and to send the victims a message to acknowledge.
    let mut peer = Session::sign_up(&nodes.url_b(), "peer", PASSWORD).await?;
    expect_queue_empty(&mut peer.client, "peer").await?;

    // Every attempt works on a connection nobody revoked.
    let mut control = Victim::sign_up(&nodes, &mut peer, "control").await?;
    for attempt in ATTEMPTS {
        let request = control.request_for(attempt, &peer, "control")?;
        let reply = control.session.client.request(request).await?;
        ensure!(
            !matches!(reply, Response::Error { .. }),
            "{attempt:?} on an unrevoked connection was refused: {reply:?}"
        );
    }

    // A device that sends nothing is closed all the same: the close comes
    // from the other node's announcement, not from a check its own next
    // request would run.
    let silent = Victim::sign_up(&nodes, &mut peer, "silent").await?;
    let mut silent = silent.session;
    let answered = trigger_on_b(&nodes, &silent, trigger).await?;
    expect_closed(&mut silent.client, answered.at + CLOSE_BOUND, trigger)
        .await
        .context("a connection that sent nothing after the trigger")?;
    drop(answered.client);

    for (n, attempt) in ATTEMPTS.into_iter().enumerate() {
        let name = format!("victim{n}");
        let mut victim = Victim::sign_up(&nodes, &mut peer, &name).await?;
        let request = victim.request_for(attempt, &peer, &name)?;
        let answered = trigger_on_b(&nodes, &victim.session, trigger).await?;
        let deadline = answered.at + CLOSE_BOUND;

        if trigger == Trigger::Authenticate {
            // The token is still valid: until the Replaced arrives the old
            // connection is the device's as much as the new one. What is
            // promised is that it is closed within the bound, and that
            // afterwards nothing it sends takes effect.
            expect_closed(&mut victim.session.client, deadline, trigger).await?;
            expect_refused(&mut victim.session.client, request, attempt).await?;
        } else {
            // Revoked: refused at once, whether or not the close has
            // arrived yet.
            expect_refused(&mut victim.session.client, request, attempt).await?;
            expect_closed(&mut victim.session.client, deadline, trigger).await?;
        }
        victim
            .expect_no_effect(&store, attempt, trigger)
            .await
            .with_context(|| format!("{attempt:?} after {trigger:?} on the other node"))?;
        drop(answered.client);
    }
    store.close().await;
    Ok(())
}

/// A freshly signed-up device connected to node A, with published keys and
/// one message delivered but not acknowledged.
struct Victim {
    session: Session,
    delivered_seq: u64,
    delivered: Vec<u8>,
    new_keys: DeviceKeys,
    sent: Vec<u8>,
    new_name: String,
}

impl Victim {
    async fn sign_up(nodes: &Nodes, peer: &mut Session, name: &str) -> anyhow::Result<Victim> {
        let mut session = Session::sign_up(&nodes.url_a(), name, PASSWORD).await?;
        expect_queue_empty(&mut session.client, name).await?;
        session
            .client
            .request_ok(DeviceKeys::generate(0).publish_request())
            .await?;
        let delivered = format!("for {name}").into_bytes();
        send(peer, session.address, &delivered).await?;
        let delivered_seq = match session.client.next_push(WAIT).await? {
            RelayFrame::Deliver { seq, envelope, .. } if envelope == delivered => seq,
            other => bail!("{name} on node A: expected the peer's message, got {other:?}"),
        };
        Ok(Victim {
            session,
            delivered_seq,
            delivered,
            new_keys: DeviceKeys::generate(3),
            sent: format!("from {name}").into_bytes(),
            new_name: format!("{name}.renamed"),
        })
    }

    fn request_for(&self, attempt: Attempt, peer: &Session, name: &str) -> anyhow::Result<Request> {
        Ok(match attempt {
            Attempt::Ack => Request::Ack {
                seqs: vec![self.delivered_seq],
            },
            Attempt::PublishKeys => self.new_keys.publish_request(),
            Attempt::UploadPreKeys => self.new_keys.upload_request(),
            Attempt::Send => Request::Send {
                messages: vec![OutgoingEnvelope {
                    to: peer.address,
                    envelope: self.sent.clone(),
                }],
            },
            Attempt::Rename => Request::Rename {
                new_username: Username::parse(&self.new_name)
                    .with_context(|| format!("renaming {name}"))?,
            },
        })
    }

    /// The refused attempt left no trace in the store.
    async fn expect_no_effect(
        &self,
        store: &StoreView,
        attempt: Attempt,
        trigger: Trigger,
    ) -> anyhow::Result<()> {
        let columns = |table: &'static str| async move { store.columns(table).await };
        let column = |all: Vec<relay_support::Column>, name: &str| {
            all.into_iter()
                .find(|c| c.name == name)
                .with_context(|| format!("no column {name}"))
        };
        match attempt {
            Attempt::Ack => {
                // A deleted account's queue is gone with it; otherwise the
                // message must still wait for the device.
                let envelope = column(columns("messages").await?, "envelope")?;
                let left = store.rows_with_bytes(&envelope, &self.delivered).await?;
                let expected = i64::from(trigger != Trigger::DeleteAccount);
                ensure!(
                    left == expected,
                    "the acknowledged message: {left} rows left, expected {expected}"
                );
            }
            Attempt::PublishKeys => {
                let identity = column(columns("identity_keys").await?, "identity")?;
                let new = self.new_keys.identity_bytes();
                ensure!(
                    store.rows_with_bytes(&identity, &new).await? == 0,
                    "the new identity was published"
                );
            }
            Attempt::UploadPreKeys => {
                let key = column(columns("one_time_prekeys").await?, "public_key")?;
                for prekey in self.new_keys.one_time_wire() {
                    ensure!(
                        store.rows_with_bytes(&key, prekey.key.as_bytes()).await? == 0,
                        "one-time prekey {} was stored",
                        prekey.id
                    );
                }
            }
            Attempt::Send => {
                let envelope = column(columns("messages").await?, "envelope")?;
                ensure!(
                    store.rows_with_bytes(&envelope, &self.sent).await? == 0,
                    "the envelope was queued"
                );
            }
            Attempt::Rename => {
                let username = column(columns("accounts").await?, "username")?;
                ensure!(
                    store.rows_with_text(&username, &self.new_name).await? == 0,
                    "the account was renamed"
                );
            }
        }
        Ok(())
    }
}

/// The answered revoking or replacing request, and the connection on node B
/// that made it (kept open until the check is done).
struct Answered {
    at: Instant,
    client: WireClient,
}

async fn trigger_on_b(
    nodes: &Nodes,
    victim: &Session,
    trigger: Trigger,
) -> anyhow::Result<Answered> {
    let url = nodes.url_b();
    let mut client = match trigger {
        // The same token, a second time, on the other node.
        Trigger::Authenticate => victim.reconnect(&url).await?,
        // The account's owner logs in again on the other node.
        Trigger::LogoutEverywhere | Trigger::DeleteAccount => {
            Session::log_in(&url, &victim.username, PASSWORD)
                .await?
                .client
        }
    };
    let request = match trigger {
        Trigger::Authenticate => None,
        Trigger::LogoutEverywhere => Some(Request::Logout { everywhere: true }),
        Trigger::DeleteAccount => Some(Request::DeleteAccount),
    };
    if let Some(request) = request {
        let reply = client.request_ok(request).await?;
        ensure!(reply == Response::Ok, "{trigger:?} on node B: {reply:?}");
    } else {
        // The new connection works: the announcement of it did not close it.
        let reply = client.request_ok(Request::PreKeyCount).await?;
        ensure!(
            matches!(reply, Response::PreKeyCount { .. }),
            "the new connection on node B: {reply:?}"
        );
    }
    Ok(Answered {
        at: Instant::now(),
        client,
    })
}

/// The request gets an error, or finds the connection closed.
async fn expect_refused(
    client: &mut WireClient,
    request: Request,
    attempt: Attempt,
) -> anyhow::Result<()> {
    match client.request(request).await {
        Ok(Response::Error { .. }) => Ok(()),
        Ok(other) => {
            bail!("{attempt:?} on the revoked or replaced connection succeeded: {other:?}")
        }
        Err(WireClientError::Closed(_) | WireClientError::Socket(_)) => Ok(()),
        Err(other) => Err(other).context(format!("{attempt:?}")),
    }
}

/// The relay says why (`Replaced` after a second authentication,
/// `TokenExpired` or `Replaced` after a revocation: the revoking connection
/// authenticated first) and closes, by `deadline`.
async fn expect_closed(
    client: &mut WireClient,
    deadline: Instant,
    trigger: Trigger,
) -> anyhow::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    let frames = client.read_until_closed(left).await.with_context(|| {
        format!(
            "the connection on node A was still open {CLOSE_BOUND:?} after {trigger:?} on node B"
        )
    })?;
    let closing = frames.iter().find_map(|f| match f {
        RelayFrame::Closing { code, .. } => Some(*code),
        _ => None,
    });
    let allowed: &[ErrorCode] = match trigger {
        Trigger::Authenticate => &[ErrorCode::Replaced],
        _ => &[ErrorCode::Replaced, ErrorCode::TokenExpired],
    };
    match closing {
        Some(code) if allowed.contains(&code) => Ok(()),
        Some(code) => bail!("closed with {code} after {trigger:?}, expected one of {allowed:?}"),
        None => bail!("closed without a Closing frame after {trigger:?}: {frames:?}"),
    }
}

async fn send(
    from: &mut Session,
    to: umbra_protocol::wire::Address,
    envelope: &[u8],
) -> anyhow::Result<()> {
    let reply = from
        .client
        .request_ok(Request::Send {
            messages: vec![OutgoingEnvelope {
                to,
                envelope: envelope.to_vec(),
            }],
        })
        .await?;
    match reply {
        Response::SendResult { results }
            if matches!(results.as_slice(), [SendOutcome::Accepted { .. }]) =>
        {
            Ok(())
        }
        other => bail!("send: expected one Accepted, got {other:?}"),
    }
}

async fn expect_queue_empty(client: &mut WireClient, who: &str) -> anyhow::Result<()> {
    match client.next_push(WAIT).await? {
        RelayFrame::QueueEmpty => Ok(()),
        other => bail!("{who}: expected QueueEmpty, got {other:?}"),
    }
}
