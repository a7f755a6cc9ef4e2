//! The relay's connection and request limits, against the real binary:
//! connection caps (relay-wide and per address) refuse with 503 and
//! `Retry-After` and free their slots when connections close; a client that
//! never finishes its request headers (slowloris) is disconnected; a blob
//! upload that stalls or trickles is ended and its partial data deleted;
//! ephemeral frames are rate limited per account; under a low descriptor
//! limit a flood is answered (503 or closed), never left hanging.
//!
//! Every wait is bounded; no test asserts how fast anything happens (the
//! relay runs with one-second timeouts so the bounds are generous).
//!
//! Must never: leave a relay process behind, wait without a deadline, or
//! depend on timing beyond "eventually, within a bound".

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use futures_util::future::join_all;
use relay_support::{on_every_store, Backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use umbra_e2e::wire_client::{Session, WireClient, WireClientError};
use umbra_e2e::{binary, Relay};
use umbra_protocol::wire::{ErrorCode, Request, Response};

on_every_store!(stalled_blob_upload_is_ended_and_its_partial_data_deleted);

/// Longest a test waits for the relay to act on a one-second timeout.
const BOUND: Duration = Duration::from_secs(20);

/// Opens a WebSocket; `Ok(Err(status))` when the relay answered the upgrade
/// with an HTTP status instead (and its `Retry-After`).
async fn open_ws(
    relay: &Relay,
) -> anyhow::Result<Result<WireClient, (u16, Option<String>, String)>> {
    match WireClient::connect(&relay.ws_url()).await {
        Ok(client) => Ok(Ok(client)),
        Err(WireClientError::Socket(tungstenite::Error::Http(response))) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Ok(Err((response.status().as_u16(), retry_after, body)))
        }
        Err(other) => Err(other).context("opening a websocket"),
    }
}

/// Reads until the relay closes the socket (or `BOUND` passes: an error).
async fn read_until_eof(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut received = Vec::new();
    let reading = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok::<_, std::io::Error>(()),
                Ok(n) => received.extend_from_slice(&buf[..n]),
                // A reset is a close too.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    tokio::time::timeout(BOUND, reading)
        .await
        .context("the relay kept the connection open")??;
    Ok(received)
}

/// One raw HTTP/1.1 GET; the response bytes up to the close.
async fn http_get(relay: &Relay, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(relay.addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    Ok(String::from_utf8_lossy(&read_until_eof(&mut stream).await?).into_owned())
}

/// The value of one sample line of `/metrics`.
async fn metric(relay: &Relay, sample: &str) -> anyhow::Result<u64> {
    let text = http_get(relay, "/metrics").await?;
    let line = text
        .lines()
        .find(|l| l.starts_with(sample) && l[sample.len()..].starts_with(' '))
        .with_context(|| format!("no {sample} in /metrics"))?;
    Ok(line[sample.len() + 1..].trim().parse()?)
}

/// Retries opening a WebSocket until the relay admits one (a freed slot is
/// released when the relay notices the close, which takes a moment).
async fn open_ws_eventually(relay: &Relay) -> anyhow::Result<WireClient> {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        match open_ws(relay).await? {
            Ok(client) => return Ok(client),
            Err((503, _, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => bail!("still refused after {BOUND:?}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_address_cap_holds_under_a_concurrent_flood_and_frees_on_close() {
    relay_support::run_bounded(async {
        const CAP: usize = 8;
        const FLOOD: usize = 60;
        let backend = Backend::sqlite();
        let relay = backend
            .start_relay(&["--max-connections-per-address", &CAP.to_string()])
            .await?;
        // FLOOD upgrades at once from one address: exactly CAP get through.
        let attempts = join_all((0..FLOOD).map(|_| open_ws(&relay))).await;
        let mut open = Vec::new();
        let mut refused = Vec::new();
        for attempt in attempts {
            match attempt? {
                Ok(client) => open.push(client),
                Err(refusal) => refused.push(refusal),
            }
        }
        ensure!(
            open.len() == CAP,
            "{} of {FLOOD} connections admitted with a per-address cap of {CAP}",
            open.len()
        );
        ensure!(refused.len() == FLOOD - CAP);
        for (status, retry_after, body) in &refused {
            ensure!(*status == 503, "refused with {status}, not 503");
            ensure!(
                retry_after.as_deref() == Some("10"),
                "503 without Retry-After: {retry_after:?}"
            );
            ensure!(body.contains("too many connections from this address"));
        }
        // The metrics scrape itself is refused while the address is full.
        drop(open.pop());
        let mut again = open_ws_eventually(&relay).await?;
        again.request_ok(Request::Ping).await?;
        // Free one more slot so the scrape below is admitted.
        drop(open.pop());
        let deadline = tokio::time::Instant::now() + BOUND;
        let refusals = loop {
            match metric(
                &relay,
                "umbra_connections_refused_total{reason=\"per_address\"}",
            )
            .await
            {
                Ok(n) => break n,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        };
        ensure!(
            refusals >= (FLOOD - CAP) as u64,
            "refusals counted: {refusals}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_wide_cap_refuses_with_503_until_a_connection_closes() {
    relay_support::run_bounded(async {
        const CAP: usize = 5;
        let backend = Backend::sqlite();
        let relay = backend
            .start_relay(&[
                "--max-connections",
                &CAP.to_string(),
                "--max-connections-per-address",
                "0",
            ])
            .await?;
        let mut open = Vec::new();
        for _ in 0..CAP {
            match open_ws(&relay).await? {
                Ok(client) => open.push(client),
                Err(refusal) => bail!("refused below the cap: {refusal:?}"),
            }
        }
        match open_ws(&relay).await? {
            Ok(_) => bail!("connection {} admitted over a cap of {CAP}", CAP + 1),
            Err((status, retry_after, body)) => {
                ensure!(
                    status == 503 && retry_after.is_some(),
                    "{status} {retry_after:?}"
                );
                ensure!(body.contains("connection limit"), "body: {body}");
            }
        }
        // Plain HTTP is counted and refused the same way.
        let health = http_get(&relay, "/healthz").await?;
        ensure!(
            health.starts_with("HTTP/1.1 503"),
            "healthz over the cap: {health}"
        );
        drop(open.pop());
        open_ws_eventually(&relay).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_connections_are_closed_after_the_header_timeout() {
    relay_support::run_bounded(async {
        const SLOW: usize = 200;
        let backend = Backend::sqlite();
        let relay = backend
            .start_relay(&[
                "--header-read-timeout-secs",
                "1",
                "--max-connections-per-address",
                "0",
            ])
            .await?;
        // Half send part of a request head and stop; half send nothing.
        let mut sockets = Vec::new();
        for i in 0..SLOW {
            let mut stream = TcpStream::connect(relay.addr).await?;
            if i % 2 == 0 {
                stream
                    .write_all(b"GET /v1/ws HTTP/1.1\r\nHost: relay\r\nX-Slow: ")
                    .await?;
            }
            sockets.push(stream);
        }
        let closed = join_all(sockets.iter_mut().map(read_until_eof)).await;
        for (i, outcome) in closed.into_iter().enumerate() {
            outcome.with_context(|| format!("slow connection {i}"))?;
        }
        ensure!(
            metric(&relay, "umbra_header_timeouts_total").await? >= SLOW as u64,
            "header timeouts not counted"
        );
        // The relay still serves complete requests.
        let health = http_get(&relay, "/healthz").await?;
        ensure!(health.starts_with("HTTP/1.1 200"), "healthz: {health}");
        Ok(())
    })
    .await;
}

/// Sends the head of a blob upload declaring `declared` bytes, then `sent`
/// bytes of body; returns the socket for the caller to stall or trickle on.
async fn start_upload(
    relay: &Relay,
    token_hex: &str,
    declared: usize,
    sent: usize,
) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(relay.addr).await?;
    let head = format!(
        "POST /v1/blobs HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {token_hex}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&vec![0x5a; sent]).await?;
    Ok(stream)
}

async fn stalled_blob_upload_is_ended_and_its_partial_data_deleted(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend
        .start_relay(&["--blob-idle-timeout-secs", "1"])
        .await?;
    let session = Session::sign_up(&relay.ws_url(), "stalling_uploader", "correct horse 1")
        .await
        .context("sign up")?;
    let token_hex = hex_token(&session);
    // 150 KiB sent of 300 KiB declared: two full 64 KiB chunks reach the
    // store before the body stops.
    let mut stream = start_upload(&relay, &token_hex, 300 * 1024, 150 * 1024).await?;
    let answer = String::from_utf8_lossy(&read_until_eof(&mut stream).await?).into_owned();
    ensure!(
        answer.starts_with("HTTP/1.1 408"),
        "a stalled upload must be answered 408: {answer:?}"
    );
    let store = backend.store(&relay).await?;
    ensure!(
        store.count("blobs").await? == 0,
        "the partial blob is still stored"
    );
    ensure!(
        store.count("blob_chunks").await? == 0,
        "its chunks are still stored"
    );
    store.close().await;
    ensure!(metric(&relay, "umbra_body_timeouts_total").await? >= 1);
    Ok(())
}

fn hex_token(session: &Session) -> String {
    session
        .token
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trickling_blob_upload_is_ended_by_the_minimum_rate() {
    relay_support::run_bounded(async {
        let backend = Backend::sqlite();
        let relay = backend
            .start_relay(&[
                "--blob-idle-timeout-secs",
                "1",
                "--blob-min-bytes-per-sec",
                "1000",
            ])
            .await?;
        let session = Session::sign_up(&relay.ws_url(), "trickling_uploader", "correct horse 2")
            .await
            .context("sign up")?;
        let mut stream = start_upload(&relay, &hex_token(&session), 100_000, 1).await?;
        // One byte every 200 ms never leaves a one-second gap, but is far
        // below 1000 bytes a second: the relay must end it.
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(b"z").await.is_err() {
                    return;
                }
                // The relay answers then closes; stop once anything arrives.
                let mut peek = [0u8; 1];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut peek)).await
                {
                    if n > 0 {
                        return;
                    }
                }
            }
        };
        tokio::time::timeout(BOUND, trickle)
            .await
            .context("the relay kept accepting a trickle")?;
        let answer = String::from_utf8_lossy(&read_until_eof(&mut stream).await?).into_owned();
        ensure!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ephemeral_flood_is_rate_limited_per_account() {
    relay_support::run_bounded(async {
        const BUDGET: usize = 5;
        let backend = Backend::sqlite();
        let relay = backend
            .start_relay(&["--ephemeral-per-minute", &BUDGET.to_string()])
            .await?;
        let mut alice = Session::sign_up(&relay.ws_url(), "typing_alice", "correct horse 3")
            .await
            .context("sign up alice")?;
        let bob = Session::sign_up(&relay.ws_url(), "typing_bob", "correct horse 4")
            .await
            .context("sign up bob")?;
        // 50 typing notices pipelined, as a flooding client would send them.
        let mut ids = Vec::new();
        for _ in 0..50 {
            let request = Request::Ephemeral {
                to: bob.address,
                payload: vec![1; 64],
            };
            ids.push(alice.client.send_request(request).await?);
        }
        let mut accepted = 0;
        let mut limited = 0;
        for id in ids {
            match alice.client.reply_to(id).await? {
                Response::Ok => accepted += 1,
                Response::Error {
                    code: ErrorCode::RateLimited,
                    retry_after_secs: Some(secs),
                    ..
                } if secs >= 1 => limited += 1,
                other => bail!("unexpected reply to an ephemeral frame: {other:?}"),
            }
        }
        ensure!(
            accepted == BUDGET && limited == 50 - BUDGET,
            "{accepted} forwarded and {limited} limited with a budget of {BUDGET}"
        );
        // The connection stays usable.
        alice.client.request_ok(Request::Ping).await?;
        Ok(())
    })
    .await;
}

/// A relay started under `ulimit -n limit` (the harness cannot set limits),
/// killed on drop; its stderr is kept for the test to search.
struct LimitedRelay {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl LimitedRelay {
    fn start(limit: u32) -> anyhow::Result<LimitedRelay> {
        use std::io::{BufRead, BufReader};
        let dir = tempfile::tempdir()?;
        let relay = binary("umbra-relay", "umbra-relay");
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(relay)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--max-connections-per-address", "0"])
            // Served connections then idle for longer than the test's wait,
            // so they hold their descriptors throughout.
            .args(["--header-read-timeout-secs", "60"])
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().context("stderr")?;
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("{line}");
                if let Ok(mut s) = kept.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().context("the relay printed nothing")??;
        let addr = first
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split([' ', '/']).next())
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("unexpected first line {first:?}"))?;
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(LimitedRelay {
            child,
            addr,
            stderr,
            _dir: dir,
        })
    }
}

impl Drop for LimitedRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flood_past_the_descriptor_limit_is_answered_not_left_hanging() {
    relay_support::run_bounded(async {
        // 300 descriptors: the default cap of 10 000 cannot be honoured, so
        // the relay lowers it (300 - 192 = 108) and answers the rest.
        const FLOOD: usize = 400;
        let relay = tokio::task::spawn_blocking(|| LimitedRelay::start(300)).await??;
        let addr = relay.addr;
        // Every connection is held open while it waits for its answer, so
        // admitted ones keep their descriptors for the whole flood.
        let mut held = Vec::new();
        for _ in 0..FLOOD {
            let mut stream = TcpStream::connect(addr).await?;
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
                .await?;
            held.push(stream);
        }
        let (mut ok, mut refused, mut closed) = (0, 0, 0);
        for (i, stream) in held.iter_mut().enumerate() {
            let mut head = [0u8; 12];
            let read = tokio::time::timeout(BOUND, stream.read(&mut head))
                .await
                .with_context(|| format!("connection {i} got no answer: left in the backlog"))?;
            match read {
                Ok(n) if head[..n].starts_with(b"HTTP/1.1 200") => ok += 1,
                Ok(n) if head[..n].starts_with(b"HTTP/1.1 503") => refused += 1,
                Ok(0) | Err(_) => closed += 1,
                Ok(n) => bail!(
                    "unexpected answer {:?}",
                    String::from_utf8_lossy(&head[..n])
                ),
            }
        }
        ensure!(
            ok > 0 && refused > 0,
            "{ok} served, {refused} refused, {closed} closed"
        );
        let stderr = relay.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        ensure!(
            stderr.contains("lowered"),
            "the relay did not say it lowered max_connections: {stderr}"
        );
        drop(held);
        // Serving again once the flood is gone.
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let mut stream = TcpStream::connect(addr).await?;
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
                .await?;
            let answer = String::from_utf8_lossy(&read_until_eof(&mut stream).await?).into_owned();
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "still refusing: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    })
    .await;
}
