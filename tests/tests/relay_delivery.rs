//! Store-and-forward against a real relay, on SQLite and PostgreSQL: order,
//! acknowledgement, fan-out, queue bounds, expiry, and ephemeral frames.
//! Hostile frames, restarts, crashes and connection replacement are in
//! `relay_delivery_faults.rs`.
//!
//! Must never: accept a relay that loses, reorders or duplicates (within one
//! connection) an envelope it acknowledged to its sender, delivers or keeps
//! an expired one, or stores an ephemeral frame.

mod relay_delivery_support;
mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure};
use relay_delivery_support::{
    ack, assert_nothing_delivered, envelope, next_delivery, next_delivery_timed, next_significant,
    receive_backlog, receive_backlog_timed, send_all_accepted, send_one,
};
use relay_support::{on_every_store, Backend};
use umbra_e2e::wire_client::Session;
use umbra_protocol::wire::{
    AccountId, Address, DeviceId, ErrorCode, OutgoingEnvelope, RelayFrame, Request, Response,
    SendOutcome, MAX_ENVELOPE_BYTES,
};

on_every_store!(
    offline_messages_arrive_in_order_then_queue_empty,
    acknowledged_messages_are_not_redelivered_and_unacknowledged_are,
    one_send_fans_out_to_each_recipient,
    a_full_queue_rejects_with_queue_full,
    ephemeral_frames_reach_only_connected_recipients,
    expired_messages_are_neither_delivered_nor_kept,
    acceptance_times_are_milliseconds,
);

/// The wall clock in Unix milliseconds; the relay runs on this machine, so
/// it reads the same clock.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// `Deliver.received_at_ms` is the millisecond the relay accepted the
/// envelope, read from the store (recipient offline) and handed over live
/// (recipient online). Sound without timing asserts: each acceptance lies
/// between the test's clock readings before and after its `Send`, and the
/// sends are 300 ms apart, so consecutive times differ by at least that and
/// by less than the whole span measured around both. A relay keeping whole
/// seconds fails the bracket unless every send straddled a second
/// boundary, and the 300 ms step (a difference of 0 or 1 000).
async fn acceptance_times_are_milliseconds(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    const STEP: Duration = Duration::from_millis(300);

    async fn send_bracketed(
        alice: &mut Session,
        to: Address,
        envelope: Vec<u8>,
    ) -> anyhow::Result<(u64, u64)> {
        let before = now_ms();
        let outcome = send_one(alice, to, envelope).await?;
        let after = now_ms();
        ensure!(
            matches!(outcome, SendOutcome::Accepted { .. }),
            "{outcome:?}"
        );
        Ok((before, after))
    }

    fn check(brackets: &[(u64, u64)], times: &[u64], path: &str) -> anyhow::Result<()> {
        for ((before, after), at) in brackets.iter().zip(times) {
            ensure!(
                before <= at && at <= after,
                "{path}: received_at_ms {at} is not within the send's [{before}, {after}] \
                 (all: {times:?})"
            );
        }
        for (pair, span) in times.windows(2).zip(brackets.windows(2)) {
            let gap = pair[1] - pair[0];
            let outer = span[1].1 - span[0].0;
            ensure!(
                gap >= STEP.as_millis() as u64 && gap <= outer,
                "{path}: consecutive received_at_ms differ by {gap} ms, not between the \
                 {} ms the sends were apart and the {outer} ms around both",
                STEP.as_millis()
            );
        }
        Ok(())
    }

    // Offline: stored, then read from the queue.
    bob.client.close().await;
    let mut brackets = Vec::new();
    for n in 0..3 {
        if n > 0 {
            tokio::time::sleep(STEP).await;
        }
        brackets.push(send_bracketed(&mut alice, bob.address, envelope("stored", n)).await?);
    }
    bob.client = bob.reconnect(&url).await?;
    let stored = receive_backlog_timed(&mut bob.client).await?;
    ensure!(stored.len() == 3, "{} of 3 delivered", stored.len());
    let times: Vec<u64> = stored.iter().map(|(_, _, at)| *at).collect();
    check(&brackets, &times, "from the queue")?;
    ack(
        &mut bob.client,
        stored.iter().map(|(seq, _, _)| *seq).collect(),
    )
    .await?;

    // Online: handed over in memory by the committing node.
    let mut brackets = Vec::new();
    let mut times = Vec::new();
    for n in 0..3 {
        if n > 0 {
            tokio::time::sleep(STEP).await;
        }
        brackets.push(send_bracketed(&mut alice, bob.address, envelope("live", n)).await?);
        let (_, delivered, at) = next_delivery_timed(&mut bob.client).await?;
        ensure!(
            delivered == envelope("live", n),
            "live delivery {n} out of order"
        );
        times.push(at);
    }
    check(&brackets, &times, "handed over")?;
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
