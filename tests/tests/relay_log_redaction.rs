//! Logs at the most verbose level name no secret and no identity: a relay
//! at `trace` and `umbra` commands at `UMBRA_LOG=trace` go through
//! registration, login, authentication and a send, and what they wrote to
//! their logs is searched for the session token (raw hex, base64 and Debug
//! array forms), the passwords, the usernames and the envelope bytes.
//!
//! Must never: pass without showing that trace logging was on (the relay's
//! own `request` trace lines must be there), or search only one encoding of
//! a secret.

use std::time::Duration;

use anyhow::{ensure, Context};
use umbra_e2e::wire_client::{Session, WireClient};
use umbra_e2e::{Cli, Relay, StoreKind};
use umbra_protocol::wire::{OutgoingEnvelope, RelayFrame, Request, Response, SendOutcome};

const RELAY_ARGS: &[&str] = &[
    "--auth-per-ip-per-minute",
    "100000",
    "--auth-per-username-per-minute",
    "100000",
    "--logins-per-username-per-minute",
    "100000",
];

const ALICE: &str = "zqlogalice";
const BOB: &str = "zqlogbob";
const ALICE_PASSWORD: &str = "canary-pw-alice-51e2f0c9";
const BOB_PASSWORD: &str = "canary-pw-bob-6d0a7b33";
const CLI_CAROL: &str = "zqlogcarol";
const CLI_DAVE: &str = "zqlogdave";
const CLI_PASSWORD: &str = "canary cli passphrase quartz 8814";
const ENVELOPE: &[u8] = b"canary-envelope-\x01\x02\x03-9b7d1e";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if pad {
            out.extend(std::iter::repeat_n('=', 3 - chunk.len()));
        }
    }
    out
}

/// Every text form a byte string is likely to take in a log line. Short
/// prefixes are enough: a log line with a third of a token is a leak.
fn encodings(bytes: &[u8]) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let head = &bytes[..bytes.len().min(12)];
    let debug_array = format!("{:?}", head);
    vec![
        hex(head),
        hex(head).to_uppercase(),
        base64(head, STD, false),
        base64(head, URL, false),
        debug_array.trim_end_matches(']').to_string(),
    ]
    .into_iter()
    .chain(
        head.iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ')
            .then(|| String::from_utf8_lossy(head).into_owned()),
    )
    .filter(|s| s.len() >= 8)
    .collect()
}

fn find_leaks(log: &str, what: &str, secret: &[u8]) -> Vec<String> {
    encodings(secret)
        .into_iter()
        .filter(|form| log.contains(form.as_str()))
        .map(|form| format!("{what} as {form:?}"))
        .collect()
}

/// The wire-level flow against the relay: sign-ups, logins, a send and its
/// delivery. Returns the tokens it was given.
async fn wire_flow(ws_url: &str) -> anyhow::Result<Vec<[u8; 32]>> {
    let alice = Session::sign_up(ws_url, ALICE, ALICE_PASSWORD).await?;
    let mut bob = Session::sign_up(ws_url, BOB, BOB_PASSWORD).await?;
    let mut alice_client = alice.client;
    let reply = alice_client
        .request_ok(Request::Send {
            messages: vec![OutgoingEnvelope {
                to: bob.address,
                envelope: ENVELOPE.to_vec(),
            }],
        })
        .await?;
    ensure!(
        matches!(&reply, Response::SendResult { results } if matches!(results.as_slice(), [SendOutcome::Accepted { .. }])),
        "send: {reply:?}"
    );
    // Other pushes (PreKeysLow, QueueEmpty) may come first.
    loop {
        match bob.client.next_push(Duration::from_secs(10)).await? {
            RelayFrame::Deliver { envelope, .. } => {
                ensure!(envelope == ENVELOPE, "bob got another envelope");
                break;
            }
            _ => continue,
        }
    }
    // A wrong password too: failures must not log the name either.
    let mut guesser = WireClient::connect(ws_url).await?;
    let attempt = guesser.login_attempt(ALICE, "wrong password").await?;
    ensure!(attempt.outcome.is_err(), "a wrong password logged in");
    guesser.close().await;
    let mut spare = WireClient::connect(ws_url).await?;
    let second = spare.login(BOB, BOB_PASSWORD).await?.token;
    spare.close().await;
    alice_client.close().await;
    bob.client.close().await;
    Ok(vec![
        *alice.token.expose_secret(),
        *bob.token.expose_secret(),
        *second.expose_secret(),
    ])
}

/// `umbra register`, `send` and `receive` at `UMBRA_LOG=trace`; their stderr.
fn cli_flow(relay: &Relay) -> String {
    let trace = [("UMBRA_LOG", "trace")];
    let carol = Cli::new(relay, CLI_PASSWORD);
    let dave = Cli::new(relay, CLI_PASSWORD);
    let mut logs = String::new();
    let mut run = |cli: &Cli, args: &[&str]| {
        let out = cli.run_with_env(args, None, &trace);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "umbra {args:?} failed: {stderr}");
        logs.push_str(&stderr);
    };
    run(&carol, &["register", CLI_CAROL]);
    run(&dave, &["register", CLI_DAVE]);
    run(
        &carol,
        &["send", "--timeout", "10", CLI_DAVE, "canary message text"],
    );
    run(&dave, &["receive", "--timeout", "5"]);
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_token_password_username_or_envelope() -> anyhow::Result<()> {
    let relay = tokio::task::spawn_blocking(|| {
        Relay::start_logging(StoreKind::Sqlite, RELAY_ARGS, "trace")
    })
    .await
    .context("starting the relay")?;
    let tokens = wire_flow(&relay.ws_url()).await?;
    let relay = std::sync::Arc::new(relay);
    let cli_logs = {
        let relay = relay.clone();
        tokio::task::spawn_blocking(move || cli_flow(&relay))
            .await
            .context("the umbra commands")?
    };
    let relay_logs = String::from_utf8_lossy(&relay.output()).into_owned();

    ensure!(
        relay_logs.contains("LoginStart") && relay_logs.contains("TRACE"),
        "the relay did not log at trace, so this test proves nothing:\n{relay_logs}"
    );
    for (source, log) in [("relay", &relay_logs), ("umbra", &cli_logs)] {
        let mut leaks = Vec::new();
        for (n, token) in tokens.iter().enumerate() {
            leaks.extend(find_leaks(log, &format!("token {n}"), token));
        }
        for (what, secret) in [
            ("alice's password", ALICE_PASSWORD.as_bytes()),
            ("bob's password", BOB_PASSWORD.as_bytes()),
            ("the CLI password", CLI_PASSWORD.as_bytes()),
            ("the envelope", ENVELOPE),
            ("the message text", b"canary message text"),
        ] {
            leaks.extend(find_leaks(log, what, secret));
        }
        for name in [ALICE, BOB, CLI_CAROL, CLI_DAVE] {
            if log.contains(name) {
                leaks.push(format!("username {name}"));
            }
        }
        // Dependencies stay at info even when umbra runs at trace: their
        // debug/trace lines carry frame payloads.
        for line in log.lines() {
            if (line.contains("TRACE") || line.contains("DEBUG"))
                && ["tungstenite", "hyper", "sqlx", "h2", "rustls", "axum"]
                    .iter()
                    .any(|dep| line.contains(&format!(" {dep}")))
            {
                leaks.push(format!("a dependency's debug line: {line}"));
            }
        }
        ensure!(
            leaks.is_empty(),
            "the {source}'s trace logs leak: {leaks:#?}\n--- {source} log ---\n{log}"
        );
    }
    Ok(())
}

/// At the default level the operator sees each connection open and close,
/// refusals and failed authentications by kind, and nothing that names
/// anyone; a log written to a pipe carries no colour escapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_logs_connection_lifecycle_and_failures_by_kind_only() -> anyhow::Result<()> {
    let relay = tokio::task::spawn_blocking(|| {
        Relay::start_logging(
            StoreKind::Sqlite,
            &["--auth-per-username-per-minute", "3"],
            "info",
        )
    })
    .await
    .context("starting the relay")?;
    let url = relay.ws_url();
    let mut owner = WireClient::connect(&url).await?;
    owner.register(ALICE, ALICE_PASSWORD).await?;
    owner.close().await;
    // A real client's wrong password: LoginStart, then nothing (the test
    // wire client would send a finalization the real one never sends).
    let mut guesser = WireClient::connect(&url).await?;
    for _ in 0..4 {
        let (_pending, opaque_request) =
            umbra_test_support::opaque_flow::PendingLogin::start(b"wrong")?;
        guesser
            .request(Request::LoginStart {
                username: umbra_protocol::wire::Username::parse(ALICE)?,
                opaque_request,
            })
            .await?;
    }
    guesser.close().await;

    let wanted = [
        "connection opened",
        "connection closed",
        "reason=\"closed\"",
        "authentication failed",
        "kind=\"login_unfinished\"",
        "request refused",
        "code=\"RateLimited\"",
    ];
    // The close and the failure are logged as the relay notices the
    // hang-up: wait for them rather than for a fixed time.
    let started = std::time::Instant::now();
    let log = loop {
        let log = String::from_utf8_lossy(&relay.output()).into_owned();
        if wanted.iter().all(|w| log.contains(w)) || started.elapsed() > Duration::from_secs(20) {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for w in wanted {
        ensure!(log.contains(w), "{w:?} missing from the info log:\n{log}");
    }
    ensure!(
        !log.contains('\u{1b}'),
        "colour escapes in a piped log:\n{log:?}"
    );
    ensure!(
        !log.contains(ALICE),
        "the username is in the info log:\n{log}"
    );
    for line in log.lines().filter(|l| l.contains("connection ")) {
        ensure!(
            !line.contains("127.0.0.1"),
            "a connection line names an address: {line}"
        );
    }
    Ok(())
}
