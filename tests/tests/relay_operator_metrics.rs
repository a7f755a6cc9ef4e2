//! What an operator sees at `GET /metrics` after the real `umbra` client
//! fails: a wrong password counts as an authentication failure (the client
//! finds out from the relay's answer and never sends `LoginFinish`, so the
//! relay must count the login that was never finished), and a client that
//! hangs up after being rate limited is not a "bad frame".
//!
//! Must never: read a counter before the connections it depends on have
//! ended (it waits for `umbra_connections_open 0`), or use the test wire
//! client for the failing login (it sends a finalization the real client
//! never sends).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use umbra_e2e::wire_client::WireClient;
use umbra_e2e::{Cli, Relay, StoreKind};

const WAIT: Duration = Duration::from_secs(20);

fn metrics(relay: &Relay) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(relay.addr).context("connecting for /metrics")?;
    stream.set_read_timeout(Some(WAIT))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        relay.addr
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

fn counter(text: &str, name: &str) -> anyhow::Result<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .with_context(|| format!("{name} missing from /metrics:\n{text}"))
}

/// `/metrics` once every WebSocket the relay served has closed.
fn settled_metrics(relay: &Relay) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        let text = metrics(relay)?;
        if counter(&text, "umbra_connections_open")? == 0 {
            return Ok(text);
        }
        if started.elapsed() > WAIT {
            bail!("connections still open after {WAIT:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(args: &'static [&'static str]) -> Relay {
    Relay::start_with(StoreKind::Sqlite, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_wrong_password_logins_are_ten_auth_failures() -> anyhow::Result<()> {
    let relay = tokio::task::spawn_blocking(|| {
        start(&[
            "--auth-per-ip-per-minute",
            "1000",
            "--auth-per-username-per-minute",
            "1000",
        ])
    })
    .await?;
    let mut owner = WireClient::connect(&relay.ws_url()).await?;
    owner
        .register("zqmetricsalice", "the right password")
        .await?;
    owner.close().await;
    let relay = tokio::task::spawn_blocking(move || -> anyhow::Result<Relay> {
        let before = counter(&settled_metrics(&relay)?, "umbra_auth_failures_total")?;
        ensure!(before == 0, "failures before any login: {before}");
        let guesser = Cli::new(&relay, "a wrong password for alice");
        for n in 0..10 {
            let out = guesser.run(&["login", "zqmetricsalice"]);
            ensure!(
                out.status.code() == Some(6),
                "wrong-password login {n} exited {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = settled_metrics(&relay)?;
        let failures = counter(&text, "umbra_auth_failures_total")?;
        ensure!(
            failures == 10,
            "umbra_auth_failures_total is {failures}, not 10"
        );
        ensure!(counter(&text, "umbra_auth_successes_total")? == 0);
        Ok(relay)
    })
    .await??;
    drop(relay);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_registration_is_not_a_bad_frame() -> anyhow::Result<()> {
    tokio::task::spawn_blocking(|| -> anyhow::Result<()> {
        // `umbra register` spends two (RegisterStart, then LoginStart).
        let relay = start(&["--auth-per-ip-per-minute", "2"]);
        let first = Cli::new(&relay, "correct horse battery staple 91");
        let second = Cli::new(&relay, "correct horse battery staple 92");
        let out = first.run(&["register", "zqmetricsbob"]);
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = second.run(&["register", "zqmetricscarol"]);
        ensure!(
            !out.status.success(),
            "the second registration within a minute was not refused"
        );
        let text = settled_metrics(&relay)?;
        ensure!(
            counter(&text, "umbra_rate_limited_total")? >= 1,
            "the refusal was not counted:\n{text}"
        );
        let bad = counter(&text, "umbra_bad_frames_total")?;
        ensure!(
            bad == 0,
            "umbra_bad_frames_total is {bad} though every frame was well formed"
        );
        Ok(())
    })
    .await?
}
