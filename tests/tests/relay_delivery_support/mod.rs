//! What the store-and-forward suites (`relay_delivery*.rs`) share over a
//! real relay: tagged envelopes whose bytes say who sent which one, sending
//! and requiring acceptance, draining a backlog up to `QueueEmpty`, and
//! waiting for (or for the absence of) a delivery, each bounded in time.
//!
//! Must never: assert on what a suite tests (it returns what arrived and
//! errors only on a malformed exchange), wait without a bound, or treat a
//! hint (`PreKeysLow`, `QueueEmpty`) as a delivery.

#![allow(dead_code)] // each suite uses a different part of this module

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use umbra_e2e::wire_client::{Session, WireClient};
use umbra_protocol::wire::{Address, OutgoingEnvelope, RelayFrame, Request, Response, SendOutcome};

pub const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(1500);

/// An envelope whose bytes say who sent it and which one it is, so a
/// mix-up is visible in a failure message.
pub fn envelope(tag: &str, n: usize) -> Vec<u8> {
    format!("sealed:{tag}:{n:04}").into_bytes()
}

pub async fn send_one(
    from: &mut Session,
    to: Address,
    envelope: Vec<u8>,
) -> anyhow::Result<SendOutcome> {
    match from
        .client
        .request_ok(Request::Send {
            messages: vec![OutgoingEnvelope { to, envelope }],
        })
        .await?
    {
        Response::SendResult { results } if results.len() == 1 => Ok(results[0]),
        other => bail!("Send: expected one SendResult outcome, got {other:?}"),
    }
}

/// Sends `envelopes` to `to` one request at a time; returns their seqs.
pub async fn send_all_accepted(
    from: &mut Session,
    to: Address,
    envelopes: &[Vec<u8>],
) -> anyhow::Result<Vec<u64>> {
    let mut seqs = Vec::with_capacity(envelopes.len());
    for (i, env) in envelopes.iter().enumerate() {
        match send_one(from, to, env.clone()).await? {
            SendOutcome::Accepted { seq } => seqs.push(seq),
            other => bail!("envelope {i}: expected Accepted, got {other:?}"),
        }
    }
    Ok(seqs)
}

/// Reads pushes up to `QueueEmpty`, returning the delivered `(seq, envelope)`
/// pairs in arrival order. `PreKeysLow` (these accounts publish no keys) is
/// ignored; anything else is an error.
pub async fn receive_backlog(client: &mut WireClient) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
    Ok(receive_backlog_timed(client)
        .await?
        .into_iter()
        .map(|(seq, envelope, _)| (seq, envelope))
        .collect())
}

/// [`receive_backlog`] with each delivery's `received_at_ms`.
pub async fn receive_backlog_timed(
    client: &mut WireClient,
) -> anyhow::Result<Vec<(u64, Vec<u8>, u64)>> {
    let mut delivered = Vec::new();
    loop {
        match client
            .next_push(WAIT)
            .await
            .context("waiting for the backlog")?
        {
            RelayFrame::Deliver {
                seq,
                envelope,
                received_at_ms,
            } => {
                ensure!(
                    received_at_ms > 0,
                    "Deliver seq {seq} has no acceptance time"
                );
                delivered.push((seq, envelope, received_at_ms));
            }
            RelayFrame::QueueEmpty => return Ok(delivered),
            RelayFrame::PreKeysLow { .. } => {}
            other => bail!("unexpected push while draining the backlog: {other:?}"),
        }
    }
}

/// Waits for the next `Deliver` (live delivery), skipping `PreKeysLow` and
/// `QueueEmpty`.
pub async fn next_delivery(client: &mut WireClient) -> anyhow::Result<(u64, Vec<u8>)> {
    let (seq, envelope, _) = next_delivery_timed(client).await?;
    Ok((seq, envelope))
}

/// [`next_delivery`] with the delivery's `received_at_ms`.
pub async fn next_delivery_timed(client: &mut WireClient) -> anyhow::Result<(u64, Vec<u8>, u64)> {
    loop {
        match client
            .next_push(WAIT)
            .await
            .context("waiting for a delivery")?
        {
            RelayFrame::Deliver {
                seq,
                envelope,
                received_at_ms,
            } => return Ok((seq, envelope, received_at_ms)),
            RelayFrame::QueueEmpty | RelayFrame::PreKeysLow { .. } => {}
            other => bail!("unexpected push while waiting for a delivery: {other:?}"),
        }
    }
}

/// The next frame that is not a hint (`PreKeysLow`, `QueueEmpty`): hints
/// may arrive in any order relative to other pushes and replies.
pub async fn next_significant(client: &mut WireClient) -> anyhow::Result<RelayFrame> {
    loop {
        match client.next_frame(WAIT).await? {
            RelayFrame::PreKeysLow { .. } | RelayFrame::QueueEmpty => {}
            frame => return Ok(frame),
        }
    }
}

/// Asserts no `Deliver` or `EphemeralDeliver` arrives for a while.
pub async fn assert_nothing_delivered(client: &mut WireClient, what: &str) -> anyhow::Result<()> {
    while let Some(frame) = client.try_next_push(QUIET).await? {
        match frame {
            RelayFrame::QueueEmpty | RelayFrame::PreKeysLow { .. } => {}
            other => bail!("{what}: expected nothing, got {other:?}"),
        }
    }
    Ok(())
}

pub async fn ack(client: &mut WireClient, seqs: Vec<u64>) -> anyhow::Result<()> {
    let reply = client.request_ok(Request::Ack { seqs }).await?;
    ensure!(reply == Response::Ok, "Ack answered {reply:?}");
    Ok(())
}
