//! Several relay nodes sharing one PostgreSQL: an account made on one node
//! logs in on another (shared OPAQUE setup), and a message accepted by one
//! node reaches a recipient connected to another, live, through the store's
//! notifications. PostgreSQL only: SQLite is single-node by design.
//!
//! Must never: pass by polling luck: the recipient is connected and idle on
//! the other node before the message is sent, and must get each message
//! within `LIVE`, shorter than the relay's fallback wake-up period, without
//! reconnecting.

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure};
use relay_support::{run_bounded, Backend};
use umbra_e2e::wire_client::{Session, WireClient};
use umbra_protocol::wire::{OutgoingEnvelope, RelayFrame, Request, Response, SendOutcome};

const WAIT: Duration = Duration::from_secs(10);

/// How long a live cross-node delivery may take: less than the relay's
/// fallback wake-up period (`FALLBACK_WAKE`, 5 s, in server/src/wakeups.rs).
/// The three messages are sent one after another, each as soon as the
/// previous one arrived, so if LISTEN/NOTIFY were broken and only the
/// periodic wake-up delivered, the second message would wait a full period
/// after the tick that delivered the first and miss this bound.
const LIVE: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_accepted_on_one_node_reaches_a_recipient_on_another() {
    let Some(backend) = Backend::postgres(concat!(
        module_path!(),
        "::a_message_accepted_on_one_node_reaches_a_recipient_on_another"
    )) else {
        return;
    };
    run_bounded(cross_node_delivery(backend)).await;
}

async fn cross_node_delivery(backend: Backend) -> anyhow::Result<()> {
    let node_a = backend.start_relay(&["--prekey-low-water", "0"]).await?;
    let node_b = backend.start_relay(&["--prekey-low-water", "0"]).await?;
    let (url_a, url_b) = (node_a.ws_url(), node_b.ws_url());

    let mut alice = Session::sign_up(&url_a, "alice", "alice's password").await?;
    // Registered on node A, logged in on node B.
    let mut registering = WireClient::connect(&url_a).await?;
    let bob_account = registering.register("bob", "bob's password").await?;
    registering.close().await;
    let mut bob = Session::log_in(&url_b, "bob", "bob's password").await?;
    ensure!(
        bob.account == bob_account,
        "node B logged bob into another account"
    );
    match bob.client.next_push(WAIT).await? {
        RelayFrame::QueueEmpty => {}
        other => bail!("bob's empty backlog on node B: expected QueueEmpty, got {other:?}"),
    }

    for n in 0..3u8 {
        let envelope = vec![b'x', n];
        let reply = alice
            .client
            .request_ok(Request::Send {
                messages: vec![OutgoingEnvelope {
                    to: bob.address,
                    envelope: envelope.clone(),
                }],
            })
            .await?;
        let seq = match reply {
            Response::SendResult { results } => match results.as_slice() {
                [SendOutcome::Accepted { seq }] => *seq,
                other => bail!("node A: expected Accepted, got {other:?}"),
            },
            other => bail!("node A: expected SendResult, got {other:?}"),
        };
        match bob.client.next_push(LIVE).await? {
            RelayFrame::Deliver {
                seq: got,
                envelope: bytes,
                ..
            } => {
                ensure!(
                    got == seq && bytes == envelope,
                    "node B delivered seq {got}, expected {seq}"
                );
            }
            other => bail!("node B: expected a live Deliver, got {other:?}"),
        }
    }
    Ok(())
}
