//! Store-and-forward against a real relay under faults, on SQLite and
//! PostgreSQL: malformed, text, future-version and oversized frames, a
//! graceful restart, a crash, and a second connection replacing the first.
//!
//! Must never: accept a relay that loses or reorders an envelope it
//! acknowledged to its sender across a restart or crash, lets one client's
//! bad frame harm another's delivery, or keeps serving a replaced
//! connection.

mod relay_delivery_support;
mod relay_support;

use anyhow::{bail, ensure, Context};
use relay_delivery_support::{
    envelope, next_delivery, next_significant, receive_backlog, send_all_accepted, WAIT,
};
use relay_support::{crash_and_respawn, on_every_store, restart, Backend};
use umbra_e2e::wire_client::{Session, WireClient, WireClientError};
use umbra_protocol::wire::{
    self, ClientFrame, ErrorCode, OutgoingEnvelope, RelayFrame, Request, Response, SendOutcome,
    WireError, MAX_FRAME_BYTES,
};

on_every_store!(
    a_malformed_frame_is_refused_and_harms_no_one_else,
    an_oversized_frame_is_refused_with_frame_too_large,
    accepted_messages_survive_a_graceful_restart,
    accepted_messages_survive_a_crash,
    a_second_connection_replaces_the_first,
);

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
