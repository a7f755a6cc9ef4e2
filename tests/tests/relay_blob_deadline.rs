//! Blob requests whose database does not answer in time, over a real
//! `umbra-relay` on each store: the suite holds a lock from its own
//! connection (PostgreSQL: `LOCK TABLE blobs IN ACCESS EXCLUSIVE MODE`,
//! which also stops reads of it; SQLite: `BEGIN IMMEDIATE`, which stops
//! writes), so the relay's store call waits on it as on a database that
//! stopped answering on an open connection.
//!
//! The relay must answer on its own deadline (1.5 s, as for a WebSocket
//! request, PROTOCOL.md 11.9) with `503` and `Retry-After: 1`, never hold
//! the request for as long as the lock is held; and once the lock is gone
//! the same requests must work. An upload is checked on both stores; a
//! download on PostgreSQL only (SQLite's readers never wait on a writer).
//!
//! The bound below is a backstop (2.5x the 2 s the relay promises), so a
//! hang is caught without a timing assertion; the time taken is printed.
//!
//! Must never: release the lock before the reply is in (the deadline is the
//! point), or leave it held when it fails (the connection is dropped).

mod relay_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use relay_support::{on_every_store, Backend, StoreView, TableLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use umbra_e2e::wire_client::Session;
use umbra_e2e::PRODUCTION_REQUEST_DEADLINE;

on_every_store!(blob_requests_the_database_does_not_answer_get_503_with_retry_after);

/// Backstop for the relay's answer while its store call waits on the lock.
const REPLY_BOUND: Duration = Duration::from_secs(5);
/// Backstop for requests with nothing in the way.
const WAIT: Duration = Duration::from_secs(20);

/// What came back: the status, the head's lines and the body.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then_some(value.trim())
        })
    }
}

/// One HTTP/1.1 request (`Connection: close`), its answer within `bound`.
async fn http(addr: SocketAddr, request: &[u8], bound: Duration) -> anyhow::Result<Answer> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(request).await?;
        let mut raw = Vec::new();
        // The relay may answer before reading the whole body and hang up.
        let _ = stream.read_to_end(&mut raw).await;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(bound, exchange)
        .await
        .with_context(|| format!("no answer within {bound:?}"))??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of the response head")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status in {head:?}"))?;
    Ok(Answer {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    })
}

fn upload_request(addr: SocketAddr, session: &Session, body: &[u8]) -> Vec<u8> {
    let bearer: String = session
        .token
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut request = format!(
        "POST /v1/blobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn download_request(addr: SocketAddr, id: &str) -> Vec<u8> {
    format!("GET /v1/blobs/{id} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// `503` with `Retry-After: 1`, or why not.
fn ensure_unavailable(what: &str, answer: &Answer, took: Duration) -> anyhow::Result<()> {
    eprintln!(
        "{what} answered {} in {took:?} while the lock was held",
        answer.status
    );
    ensure!(
        answer.status == 503,
        "{what} while the database did not answer: {}\n{}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    ensure!(
        answer.header("retry-after") == Some("1"),
        "{what}: the 503 carries no Retry-After: 1:\n{}",
        answer.head
    );
    Ok(())
}

/// The id of a `201` upload's JSON answer.
fn uploaded_id(answer: &Answer) -> anyhow::Result<String> {
    ensure!(answer.status == 201, "upload answered {}", answer.status);
    let text = String::from_utf8_lossy(&answer.body);
    let start = text.find("\"id\":\"").context("no id")? + 6;
    Ok(text[start..start + 64].to_owned())
}

async fn blob_requests_the_database_does_not_answer_get_503_with_retry_after(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&PRODUCTION_REQUEST_DEADLINE).await?;
    let addr = relay.addr;
    let alice = Session::sign_up(&relay.ws_url(), "alice", "alice's password").await?;
    let view = backend.store(&relay).await?;
    let body = vec![0x42; 100_000];
    let before = uploaded_id(&http(addr, &upload_request(addr, &alice, &body), WAIT).await?)?;

    let lock = TableLock::take(&view, "blobs", "ACCESS EXCLUSIVE").await?;
    let started = Instant::now();
    let stuck = http(addr, &upload_request(addr, &alice, &body), REPLY_BOUND).await;
    let took = started.elapsed();
    let stuck_download = if matches!(view, StoreView::Postgres(_)) {
        let started = Instant::now();
        let answer = http(addr, &download_request(addr, &before), REPLY_BOUND).await;
        Some((answer, started.elapsed()))
    } else {
        None
    };
    lock.release().await?;
    ensure_unavailable("an upload", &stuck?, took)?;
    if let Some((answer, took)) = stuck_download {
        ensure_unavailable("a download", &answer?, took)?;
    }

    // And working again once the database answers.
    let after = uploaded_id(&http(addr, &upload_request(addr, &alice, &body), WAIT).await?)?;
    for id in [before, after] {
        let answer = http(addr, &download_request(addr, &id), WAIT).await?;
        ensure!(
            answer.status == 200 && answer.body == body,
            "download after the lock: {} with {} bytes",
            answer.status,
            answer.body.len()
        );
    }
    view.close().await;
    Ok(())
}
