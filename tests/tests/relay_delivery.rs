//! Store-and-forward against a real relay, on SQLite and PostgreSQL: order,
//! acknowledgement, fan-out, queue bounds, hostile frames, restarts and
//! crashes, connection replacement, and ephemeral frames.
//!
//! Must never: accept a relay that loses, reorders or duplicates (within one
//! connection) an envelope it acknowledged to its sender, or that stores an
//! ephemeral frame.

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use relay_support::{crash_and_respawn, on_every_store, restart, Backend};
use umbra_e2e::wire_client::{Session, WireClient, WireClientError};
use umbra_protocol::wire::{
    self, AccountId, Address, ClientFrame, DeviceId, ErrorCode, OutgoingEnvelope, RelayFrame,
    Request, Response, SendOutcome, WireError, MAX_ENVELOPE_BYTES, MAX_FRAME_BYTES,
};

on_every_store!(
    offline_messages_arrive_in_order_then_queue_empty,
    acknowledged_messages_are_not_redelivered_and_unacknowledged_are,
    one_send_fans_out_to_each_recipient,
    a_full_queue_rejects_with_queue_full,
    a_malformed_frame_is_refused_and_harms_no_one_else,
    an_oversized_frame_is_refused_with_frame_too_large,
    accepted_messages_survive_a_graceful_restart,
    accepted_messages_survive_a_crash,
    a_second_connection_replaces_the_first,
    ephemeral_frames_reach_only_connected_recipients,
    expired_messages_are_neither_delivered_nor_kept,
);

const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(1500);

/// An envelope whose bytes say who sent it and which one it is, so a
/// mix-up is visible in a failure message.
fn envelope(tag: &str, n: usize) -> Vec<u8> {
    format!("sealed:{tag}:{n:04}").into_bytes()
}

async fn send_one(
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
async fn send_all_accepted(
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
async fn receive_backlog(client: &mut WireClient) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
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
                delivered.push((seq, envelope));
            }
            RelayFrame::QueueEmpty => return Ok(delivered),
            RelayFrame::PreKeysLow { .. } => {}
            other => bail!("unexpected push while draining the backlog: {other:?}"),
        }
    }
}

/// Waits for the next `Deliver` (live delivery), skipping `PreKeysLow` and
/// `QueueEmpty`.
async fn next_delivery(client: &mut WireClient) -> anyhow::Result<(u64, Vec<u8>)> {
    loop {
        match client
            .next_push(WAIT)
            .await
            .context("waiting for a delivery")?
        {
            RelayFrame::Deliver { seq, envelope, .. } => return Ok((seq, envelope)),
            RelayFrame::QueueEmpty | RelayFrame::PreKeysLow { .. } => {}
            other => bail!("unexpected push while waiting for a delivery: {other:?}"),
        }
    }
}

/// The next frame that is not a hint (`PreKeysLow`, `QueueEmpty`): hints
/// may arrive in any order relative to other pushes and replies.
async fn next_significant(client: &mut WireClient) -> anyhow::Result<RelayFrame> {
    loop {
        match client.next_frame(WAIT).await? {
            RelayFrame::PreKeysLow { .. } | RelayFrame::QueueEmpty => {}
            frame => return Ok(frame),
        }
    }
}

/// Asserts no `Deliver` or `EphemeralDeliver` arrives for a while.
async fn assert_nothing_delivered(client: &mut WireClient, what: &str) -> anyhow::Result<()> {
    while let Some(frame) = client.try_next_push(QUIET).await? {
        match frame {
            RelayFrame::QueueEmpty | RelayFrame::PreKeysLow { .. } => {}
            other => bail!("{what}: expected nothing, got {other:?}"),
        }
    }
    Ok(())
}

async fn ack(client: &mut WireClient, seqs: Vec<u64>) -> anyhow::Result<()> {
    let reply = client.request_ok(Request::Ack { seqs }).await?;
    ensure!(reply == Response::Ok, "Ack answered {reply:?}");
    Ok(())
}

async fn offline_messages_arrive_in_order_then_queue_empty(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    bob.client.close().await;

    let sent: Vec<Vec<u8>> = (0..20).map(|n| envelope("alice", n)).collect();
    let seqs = send_all_accepted(&mut alice, bob.address, &sent).await?;
    ensure!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers handed to the sender are not increasing: {seqs:?}"
    );

    bob.client = bob.reconnect(&url).await?;
    let delivered = receive_backlog(&mut bob.client).await?;
    let got_seqs: Vec<u64> = delivered.iter().map(|(s, _)| *s).collect();
    let got_envelopes: Vec<Vec<u8>> = delivered.into_iter().map(|(_, e)| e).collect();
    ensure!(
        got_seqs == seqs,
        "delivered seqs {got_seqs:?}, accepted {seqs:?}"
    );
    ensure!(
        got_envelopes == sent,
        "delivered envelopes differ from those sent, or are out of order"
    );
    assert_nothing_delivered(&mut bob.client, "after QueueEmpty").await?;
    Ok(())
}

async fn acknowledged_messages_are_not_redelivered_and_unacknowledged_are(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    bob.client.close().await;

    let sent: Vec<Vec<u8>> = (0..6).map(|n| envelope("alice", n)).collect();
    let seqs = send_all_accepted(&mut alice, bob.address, &sent).await?;

    bob.client = bob.reconnect(&url).await?;
    let first = receive_backlog(&mut bob.client).await?;
    ensure!(
        first.len() == 6,
        "first connection got {} of 6",
        first.len()
    );
    // Acknowledge the 1st, 2nd and 4th only; an unknown seq is ignored.
    ack(
        &mut bob.client,
        vec![seqs[0], seqs[1], seqs[3], seqs[5] + 1000],
    )
    .await?;
    // Acks are idempotent.
    ack(&mut bob.client, vec![seqs[0]]).await?;
    bob.client.close().await;

    bob.client = bob.reconnect(&url).await?;
    let second = receive_backlog(&mut bob.client).await?;
    let expected: Vec<(u64, Vec<u8>)> = [2, 4, 5]
        .iter()
        .map(|&i| (seqs[i], sent[i].clone()))
        .collect();
    ensure!(
        second == expected,
        "after acking 0, 1, 3 the reconnect delivered seqs {:?}, expected {:?}",
        second.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        expected.iter().map(|(s, _)| *s).collect::<Vec<_>>()
    );
    ack(&mut bob.client, vec![seqs[2], seqs[4], seqs[5]]).await?;
    bob.client.close().await;

    bob.client = bob.reconnect(&url).await?;
    let third = receive_backlog(&mut bob.client).await?;
    ensure!(
        third.is_empty(),
        "everything was acked, yet {} were redelivered",
        third.len()
    );

    // New messages keep increasing sequence numbers (never reused).
    let next = send_all_accepted(&mut alice, bob.address, &[envelope("alice", 99)]).await?;
    ensure!(
        next[0] > seqs[5],
        "seq {} reused or went backwards after {}",
        next[0],
        seqs[5]
    );
    let (seq, env) = next_delivery(&mut bob.client).await?;
    ensure!(
        seq == next[0] && env == envelope("alice", 99),
        "live delivery mismatch"
    );
    Ok(())
}

async fn one_send_fans_out_to_each_recipient(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let mut carol = Session::sign_up(&url, "carol", "carol's password").await?;
    bob.client.close().await;
    carol.client.close().await;

    let stranger = Address::primary(AccountId::from_bytes([0xEE; 16]));
    let bobs_second_device = Address {
        account: bob.account,
        device: DeviceId(2),
    };
    let messages = vec![
        OutgoingEnvelope {
            to: bob.address,
            envelope: envelope("to-bob", 1),
        },
        OutgoingEnvelope {
            to: stranger,
            envelope: envelope("to-nobody", 2),
        },
        OutgoingEnvelope {
            to: carol.address,
            envelope: envelope("to-carol", 3),
        },
        OutgoingEnvelope {
            to: bobs_second_device,
            envelope: envelope("to-bob-2", 4),
        },
        OutgoingEnvelope {
            to: carol.address,
            envelope: vec![0xAB; MAX_ENVELOPE_BYTES + 1],
        },
    ];
    let results = match alice.client.request_ok(Request::Send { messages }).await? {
        Response::SendResult { results } => results,
        other => bail!("Send: expected SendResult, got {other:?}"),
    };
    ensure!(
        results.len() == 5,
        "5 envelopes, {} outcomes",
        results.len()
    );
    ensure!(
        matches!(results[0], SendOutcome::Accepted { .. }),
        "to bob: {:?}",
        results[0]
    );
    ensure!(
        results[1]
            == SendOutcome::Rejected {
                code: ErrorCode::UnknownRecipient
            },
        "to an unknown account: {:?}",
        results[1]
    );
    ensure!(
        matches!(results[2], SendOutcome::Accepted { .. }),
        "to carol: {:?}",
        results[2]
    );
    ensure!(
        results[3]
            == SendOutcome::Rejected {
                code: ErrorCode::UnknownRecipient
            },
        "to a device bob does not have: {:?}",
        results[3]
    );
    ensure!(
        results[4]
            == SendOutcome::Rejected {
                code: ErrorCode::EnvelopeTooLarge
            },
        "an envelope over MAX_ENVELOPE_BYTES: {:?}",
        results[4]
    );

    bob.client = bob.reconnect(&url).await?;
    let to_bob = receive_backlog(&mut bob.client).await?;
    ensure!(
        to_bob.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>() == vec![envelope("to-bob", 1)],
        "bob received {} envelopes, expected exactly his own",
        to_bob.len()
    );
    carol.client = carol.reconnect(&url).await?;
    let to_carol = receive_backlog(&mut carol.client).await?;
    ensure!(
        to_carol.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()
            == vec![envelope("to-carol", 3)],
        "carol received {} envelopes, expected exactly her own",
        to_carol.len()
    );

    // Whole-request limits: an empty Send is refused outright.
    let reply = alice
        .client
        .request(Request::Send { messages: vec![] })
        .await?;
    ensure!(
        matches!(
            reply,
            Response::Error {
                code: ErrorCode::TooManyRecipients,
                ..
            }
        ),
        "an empty Send: expected TooManyRecipients, got {reply:?}"
    );
    Ok(())
}

async fn a_full_queue_rejects_with_queue_full(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&["--max-queue-len", "3"]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    bob.client.close().await;

    let mut outcomes = Vec::new();
    for n in 0..5 {
        outcomes.push(send_one(&mut alice, bob.address, envelope("alice", n)).await?);
    }
    ensure!(
        outcomes[..3]
            .iter()
            .all(|o| matches!(o, SendOutcome::Accepted { .. })),
        "the first 3 fit the queue: {outcomes:?}"
    );
    ensure!(
        outcomes[3..].iter().all(|o| *o
            == SendOutcome::Rejected {
                code: ErrorCode::QueueFull
            }),
        "beyond --max-queue-len 3: expected QueueFull, got {outcomes:?}"
    );

    bob.client = bob.reconnect(&url).await?;
    let delivered = receive_backlog(&mut bob.client).await?;
    let envelopes: Vec<Vec<u8>> = delivered.iter().map(|(_, e)| e.clone()).collect();
    ensure!(
        envelopes == (0..3).map(|n| envelope("alice", n)).collect::<Vec<_>>(),
        "the accepted 3 must be delivered, and only they"
    );
    ack(&mut bob.client, delivered.iter().map(|(s, _)| *s).collect()).await?;

    // Acknowledging frees room.
    match send_one(&mut alice, bob.address, envelope("alice", 3)).await? {
        SendOutcome::Accepted { .. } => {}
        other => bail!("after the queue drained: expected Accepted, got {other:?}"),
    }
    Ok(())
}

async fn a_malformed_frame_is_refused_and_harms_no_one_else(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let mut mallory = Session::sign_up(&url, "mallory", "mallory's password").await?;
    bob.client.close().await;
    let accepted = send_all_accepted(&mut alice, bob.address, &[envelope("alice", 1)]).await?;

    // Request id 5 is readable, the request tag (200) is not.
    mallory
        .client
        .send_raw(vec![wire::WIRE_VERSION, 5, 200])
        .await?;
    match next_significant(&mut mallory.client).await? {
        RelayFrame::Response {
            request_id: 5,
            response:
                Response::Error {
                    code: ErrorCode::BadFrame,
                    ..
                },
        } => {}
        other => bail!(
            "undecodable request: expected Response {{ 5, Error {{ BadFrame }} }}, got {other:?}"
        ),
    }
    let rest = mallory
        .client
        .read_until_closed(WAIT)
        .await
        .context("the relay keeps a connection open after a malformed frame")?;
    ensure!(
        rest.iter().all(|f| matches!(
            f,
            RelayFrame::Closing {
                code: ErrorCode::BadFrame,
                ..
            } | RelayFrame::PreKeysLow { .. }
                | RelayFrame::QueueEmpty
        )),
        "after BadFrame: unexpected frames {rest:?}"
    );

    // Other malformed inputs, each on a fresh connection.
    let ping = wire::encode_client(&ClientFrame {
        request_id: 9,
        request: Request::Ping,
    })?;
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("an empty message", vec![], 0),
        ("a trailing byte", [ping.as_slice(), &[0]].concat(), 9),
        (
            "request id 0",
            wire::encode_client(&ClientFrame {
                request_id: 0,
                request: Request::Ping,
            })?,
            0,
        ),
        ("a truncated frame", ping[..2].to_vec(), 9),
    ];
    for (what, bytes, id) in cases {
        let mut client = WireClient::connect(&url).await?;
        client.send_raw(bytes).await?;
        match client.next_frame(WAIT).await {
            Ok(RelayFrame::Response {
                request_id,
                response:
                    Response::Error {
                        code: ErrorCode::BadFrame,
                        ..
                    },
            }) if request_id == id => {}
            other => {
                bail!("{what}: expected Response {{ {id}, Error {{ BadFrame }} }}, got {other:?}")
            }
        }
    }
    let mut texting = WireClient::connect(&url).await?;
    texting.send_text("hello?").await?;
    match texting.next_frame(WAIT).await {
        Ok(RelayFrame::Response {
            response:
                Response::Error {
                    code: ErrorCode::BadFrame,
                    ..
                },
            ..
        }) => {}
        other => bail!("a text message: expected Error {{ BadFrame }}, got {other:?}"),
    }
    // A future version gets the version-rejection notice.
    let mut future = WireClient::connect(&url).await?;
    future.send_raw(vec![wire::WIRE_VERSION + 1, 1, 16]).await?;
    match future.next_frame(WAIT).await {
        Err(WireClientError::BadRelayFrame(WireError::PeerRejectedVersion { min, max })) => {
            ensure!(
                (min, max) == (wire::MIN_SUPPORTED_VERSION, wire::WIRE_VERSION),
                "rejection notice names {min}..={max}"
            );
        }
        other => bail!("an unsupported version: expected the rejection notice, got {other:?}"),
    }

    // Everyone else is unaffected and nothing accepted was lost.
    ensure!(
        alice.client.request(Request::Ping).await? == Response::Pong,
        "alice lost her connection"
    );
    bob.client = bob.reconnect(&url).await?;
    let delivered = receive_backlog(&mut bob.client).await?;
    ensure!(
        delivered == vec![(accepted[0], envelope("alice", 1))],
        "the message accepted before the bad frames was not delivered intact"
    );
    let mut again = WireClient::connect(&url).await?;
    again
        .authenticate(&mallory.token)
        .await
        .context("mallory can come back")?;
    Ok(())
}

async fn an_oversized_frame_is_refused_with_frame_too_large(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let mut mallory = Session::sign_up(&url, "mallory", "mallory's password").await?;
    bob.client.close().await;
    let accepted = send_all_accepted(&mut alice, bob.address, &[envelope("alice", 1)]).await?;

    let mut huge = vec![wire::WIRE_VERSION, 7, 11];
    huge.resize(MAX_FRAME_BYTES + 1, 0x41);
    mallory.client.send_raw(huge).await?;
    let seen = mallory
        .client
        .read_until_closed(WAIT)
        .await
        .context("the relay must close a connection that sent an oversized frame")?;
    let refused = seen.iter().any(|f| {
        matches!(
            f,
            RelayFrame::Response {
                response: Response::Error {
                    code: ErrorCode::FrameTooLarge,
                    ..
                },
                ..
            } | RelayFrame::Closing {
                code: ErrorCode::FrameTooLarge,
                ..
            }
        )
    });
    ensure!(refused, "no FrameTooLarge before the close; got {seen:?}");

    ensure!(
        alice.client.request(Request::Ping).await? == Response::Pong,
        "alice lost her connection"
    );
    bob.client = bob.reconnect(&url).await?;
    let delivered = receive_backlog(&mut bob.client).await?;
    ensure!(
        delivered == vec![(accepted[0], envelope("alice", 1))],
        "the message accepted before the oversized frame was not delivered intact"
    );
    Ok(())
}

async fn accepted_messages_survive_a_graceful_restart(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    bob.client.close().await;
    let sent: Vec<Vec<u8>> = (0..10).map(|n| envelope("alice", n)).collect();
    let seqs = send_all_accepted(&mut alice, bob.address, &sent).await?;

    let relay = restart(relay).await?;
    let seen = alice
        .client
        .read_until_closed(WAIT)
        .await
        .context("alice's connection outlived the relay")?;
    ensure!(
        seen.iter().any(|f| matches!(
            f,
            RelayFrame::Closing {
                code: ErrorCode::ShuttingDown,
                ..
            }
        )),
        "a graceful stop must tell connected clients Closing {{ ShuttingDown }}; got {seen:?}"
    );

    let url = relay.ws_url();
    bob.client = bob
        .reconnect(&url)
        .await
        .context("bob's token must survive a restart")?;
    let delivered = receive_backlog(&mut bob.client).await?;
    let expected: Vec<(u64, Vec<u8>)> = seqs.into_iter().zip(sent).collect();
    ensure!(
        delivered == expected,
        "after a restart {} of 10 messages were delivered intact and in order",
        delivered.len()
    );
    Ok(())
}

async fn accepted_messages_survive_a_crash(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    bob.client.close().await;

    // Pipeline a burst, collect every acknowledgement, then kill the relay
    // at once: whatever it acknowledged must already be durable.
    let sent: Vec<Vec<u8>> = (0..30).map(|n| envelope("alice", n)).collect();
    let mut ids = Vec::new();
    for env in &sent {
        ids.push(
            alice
                .client
                .send_request(Request::Send {
                    messages: vec![OutgoingEnvelope {
                        to: bob.address,
                        envelope: env.clone(),
                    }],
                })
                .await?,
        );
    }
    let mut seqs = Vec::new();
    for id in ids {
        match alice.client.reply_to(id).await? {
            Response::SendResult { results } => match results.as_slice() {
                [SendOutcome::Accepted { seq }] => seqs.push(*seq),
                other => bail!("Send {id}: expected one Accepted, got {other:?}"),
            },
            other => bail!("Send {id}: expected SendResult, got {other:?}"),
        }
    }
    let relay = crash_and_respawn(relay).await?;

    let url = relay.ws_url();
    bob.client = bob
        .reconnect(&url)
        .await
        .context("bob's token must survive a crash")?;
    let delivered = receive_backlog(&mut bob.client).await?;
    let mut expected: Vec<(u64, Vec<u8>)> = seqs.into_iter().zip(sent).collect();
    expected.sort_by_key(|(seq, _)| *seq);
    ensure!(
        delivered == expected,
        "after a crash {} of {} acknowledged messages were delivered intact and in seq order",
        delivered.len(),
        expected.len()
    );
    Ok(())
}

async fn a_second_connection_replaces_the_first(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let _ = receive_backlog(&mut bob.client).await?;

    let mut second = bob.reconnect(&url).await?;
    let seen = bob
        .client
        .read_until_closed(WAIT)
        .await
        .context("the replaced connection stayed open")?;
    ensure!(
        seen.iter().any(|f| matches!(
            f,
            RelayFrame::Closing {
                code: ErrorCode::Replaced,
                ..
            }
        )),
        "the first connection must get Closing {{ Replaced }}; got {seen:?}"
    );

    let seqs = send_all_accepted(&mut alice, bob.address, &[envelope("alice", 1)]).await?;
    let (seq, env) = next_delivery(&mut second).await?;
    ensure!(
        seq == seqs[0] && env == envelope("alice", 1),
        "the new connection did not get the message"
    );
    ensure!(second.request(Request::Ping).await? == Response::Pong);
    Ok(())
}

async fn ephemeral_frames_reach_only_connected_recipients(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let _ = receive_backlog(&mut bob.client).await?;

    let online = b"ephemeral:typing:online".to_vec();
    let reply = alice
        .client
        .request(Request::Ephemeral {
            to: bob.address,
            payload: online.clone(),
        })
        .await?;
    ensure!(reply == Response::Ok, "Ephemeral answered {reply:?}");
    match next_significant(&mut bob.client).await? {
        RelayFrame::EphemeralDeliver { payload } => {
            ensure!(payload == online, "ephemeral payload altered")
        }
        other => bail!("connected recipient: expected EphemeralDeliver, got {other:?}"),
    }

    bob.client.close().await;
    let offline = b"ephemeral:typing:offline".to_vec();
    let reply = alice
        .client
        .request(Request::Ephemeral {
            to: bob.address,
            payload: offline.clone(),
        })
        .await?;
    ensure!(
        reply == Response::Ok,
        "Ephemeral to an offline device must still answer Ok, got {reply:?}"
    );
    // To nobody at all: the same answer, so presence is not revealed.
    let nobody = Address::primary(AccountId::from_bytes([0x33; 16]));
    let reply = alice
        .client
        .request(Request::Ephemeral {
            to: nobody,
            payload: offline.clone(),
        })
        .await?;
    ensure!(
        reply == Response::Ok,
        "Ephemeral to an unknown device answered {reply:?}"
    );

    bob.client = bob.reconnect(&url).await?;
    let backlog = receive_backlog(&mut bob.client).await?;
    ensure!(
        backlog.is_empty(),
        "an ephemeral frame was queued: {} deliveries",
        backlog.len()
    );
    assert_nothing_delivered(&mut bob.client, "ephemeral sent while offline").await?;

    let store = backend.store(&relay).await?;
    ensure!(
        store.count("messages").await? == 0,
        "the messages table holds rows after only ephemeral traffic"
    );
    for table in store.tables().await? {
        for column in store.columns(&table).await? {
            if column.is_bytes() {
                let hits = store.rows_with_bytes(&column, &offline).await?;
                ensure!(
                    hits == 0,
                    "ephemeral payload stored in {}.{}",
                    column.table,
                    column.name
                );
            }
        }
    }
    store.close().await;
    Ok(())
}

async fn expired_messages_are_neither_delivered_nor_kept(backend: Backend) -> anyhow::Result<()> {
    let relay = backend
        .start_relay(&["--message-ttl-days", "1", "--expiry-interval-secs", "1"])
        .await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    bob.client.close().await;
    let sent: Vec<Vec<u8>> = (0..3).map(|n| envelope("alice", n)).collect();
    let seqs = send_all_accepted(&mut alice, bob.address, &sent).await?;

    // A day cannot pass in a test: age the first two messages in the store,
    // as time would. Sequence numbers are our own integers, safe to inline.
    let store = backend.store(&relay).await?;
    let aged = store
        .execute_with_bytes(
            &format!(
                "UPDATE messages SET expires_at = 1 WHERE account_id = $1 AND seq <= {}",
                seqs[1]
            ),
            bob.account.as_bytes(),
        )
        .await?;
    ensure!(aged == 2, "expected to age 2 queued messages, aged {aged}");

    bob.client = bob.reconnect(&url).await?;
    let delivered = receive_backlog(&mut bob.client).await?;
    ensure!(
        delivered == vec![(seqs[2], sent[2].clone())],
        "expired messages were delivered: got seqs {:?}",
        delivered.iter().map(|(s, _)| *s).collect::<Vec<_>>()
    );

    // The periodic purge (every second here) deletes them from the store.
    let mut left = i64::MAX;
    for _ in 0..20 {
        left = store.count("messages").await?;
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(
        left == 1,
        "10 s after expiry the store still holds {left} messages, expected only the live one"
    );
    store.close().await;
    Ok(())
}
