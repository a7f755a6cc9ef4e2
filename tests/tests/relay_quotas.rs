//! Storage quotas over the real relay, on SQLite and PostgreSQL: blobs are
//! bounded per uploading account in count and bytes even when uploads run
//! in parallel (413 past the quota), and one sending account's queued bytes
//! are bounded per hour over all recipients (`Rejected { RateLimited }`),
//! without touching other senders.
//!
//! Must never: pass against a relay that accepts more than the quota from
//! parallel uploads, or that charges one sender's budget to another.

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use futures_util::future::join_all;
use relay_support::{on_every_store, Backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use umbra_e2e::wire_client::Session;
use umbra_protocol::wire::{ErrorCode, OutgoingEnvelope, Request, Response, SendOutcome};

on_every_store!(
    parallel_uploads_stay_within_the_blob_quota,
    a_senders_hourly_budget_spans_recipients_and_spares_other_senders,
);

const WAIT: Duration = Duration::from_secs(20);

/// POSTs `body` as a blob with `session`'s token; the HTTP status.
async fn upload(addr: std::net::SocketAddr, session: &Session, body: &[u8]) -> anyhow::Result<u16> {
    let bearer: String = session
        .token
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr)).await??;
    let head = format!(
        "POST /v1/blobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    // The relay may answer 413 and hang up before the whole body is sent.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await?;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status in {:?}", text.lines().next()))
}

async fn parallel_uploads_stay_within_the_blob_quota(backend: Backend) -> anyhow::Result<()> {
    // Room for two 100 000-byte blobs (and a few bytes) by bytes, three by
    // count.
    let relay = backend
        .start_relay(&[
            "--max-blobs-per-account",
            "3",
            "--max-blob-bytes-per-account",
            "200100",
        ])
        .await?;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let bob = Session::sign_up(&relay.ws_url(), "bob", "bob's password").await?;
    let body = vec![0x42; 100_000];
    // Six at once: the quota holds whatever the interleaving (chunks of
    // parallel uploads count together, so all of them may be refused).
    let statuses = join_all((0..6).map(|_| upload(relay.addr, &alice, &body))).await;
    let statuses: Vec<u16> = statuses.into_iter().collect::<anyhow::Result<_>>()?;
    let mut large = statuses.iter().filter(|s| **s == 201).count();
    ensure!(
        large <= 2 && statuses.iter().all(|s| *s == 201 || *s == 413),
        "six parallel 100 kB uploads under a 200 kB quota: {statuses:?}"
    );
    // Refused uploads gave their room back: one after another, exactly two
    // large blobs fit in all.
    loop {
        match upload(relay.addr, &alice, &body).await? {
            201 => large += 1,
            413 => break,
            other => bail!("sequential upload: {other}"),
        }
        ensure!(large <= 2, "a third 100 kB blob was accepted");
    }
    ensure!(large == 2, "only {large} large blobs fit a 200 kB quota");
    // The count runs out at three blobs even while bytes remain.
    let tiny = upload(relay.addr, &alice, b"tiny").await?;
    let over = upload(relay.addr, &alice, b"tiny").await?;
    ensure!(
        (tiny, over) == (201, 413),
        "third and fourth blob under a count quota of 3: {tiny}, {over}"
    );
    // The quota is per account.
    let theirs = upload(relay.addr, &bob, &body).await?;
    ensure!(theirs == 201, "another account's upload: {theirs}");
    Ok(())
}

async fn send(from: &mut Session, to: &Session, bytes: usize) -> anyhow::Result<SendOutcome> {
    match from
        .client
        .request_ok(Request::Send {
            messages: vec![OutgoingEnvelope {
                to: to.address,
                envelope: vec![0x17; bytes],
            }],
        })
        .await?
    {
        Response::SendResult { results } if results.len() == 1 => Ok(results[0]),
        other => bail!("Send: expected one outcome, got {other:?}"),
    }
}

async fn a_senders_hourly_budget_spans_recipients_and_spares_other_senders(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend
        .start_relay(&["--sender-bytes-per-hour", "3000"])
        .await?;
    let url = relay.ws_url();
    let bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let mut carol = Session::sign_up(&url, "carol", "carol's password").await?;
    // The relay's window is the clock hour (same clock as ours). If an hour
    // starts between the four sends, the budget legitimately resets; then the
    // round is repeated by a fresh sender inside one hour, so the assertion
    // never depends on when the test runs.
    let hour = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() / 3600)
            .unwrap_or_default()
    };
    let mut round = 0;
    let (accepted, refused) = loop {
        round += 1;
        let started = hour();
        let mut alice =
            Session::sign_up(&url, &format!("alice{round}"), "alice's password").await?;
        let mut accepted = 0;
        let mut refused = 0;
        for to in [&bob, &carol, &bob, &carol] {
            match send(&mut alice, to, 1000).await? {
                SendOutcome::Accepted { .. } => accepted += 1,
                SendOutcome::Rejected {
                    code: ErrorCode::RateLimited,
                } => refused += 1,
                other => bail!("unexpected outcome {other:?}"),
            }
        }
        if hour() == started || round == 3 {
            break (accepted, refused);
        }
    };
    ensure!(
        accepted == 3 && refused == 1,
        "a 3000-byte budget over two recipients: {accepted} accepted, {refused} refused"
    );
    // Carol's own budget is untouched by alice's.
    let theirs = send(&mut carol, &bob, 1000).await?;
    ensure!(
        matches!(theirs, SendOutcome::Accepted { .. }),
        "another sender was refused: {theirs:?}"
    );
    Ok(())
}
