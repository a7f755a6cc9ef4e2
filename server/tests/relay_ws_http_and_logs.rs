//! In-process relay tests of what is not the WebSocket protocol itself:
//! blob upload and download, health, readiness and metrics over HTTP,
//! TLS (wss) and the refusal of plain text on a TLS listener, and the
//! relay's logs at every level.
//!
//! Must never: accept a relay that serves a blob upload without a valid
//! token or past its size limit, serves plain HTTP when TLS is configured,
//! or logs a token, password, envelope, username or account id in any
//! printed form.

mod common;

use common::{drain, error_code, login, relay, relay_with, signed_in, Client, TestRelay, WAIT};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use umbra_relay::config::Settings;
use umbra_wire::{
    decode_relay, encode_client, Address, ClientFrame, ErrorCode, OutgoingEnvelope, RelayFrame,
    Request, Response, SendOutcome,
};

async fn http(relay: &TestRelay, request: &[u8]) -> (u16, Vec<u8>) {
    let mut tcp = TcpStream::connect(relay.relay.local_addr)
        .await
        .expect("tcp");
    tcp.write_all(request).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out))
        .await
        .expect("in time")
        .expect("read");
    let text_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end")
        + 4;
    let head = String::from_utf8_lossy(&out[..text_end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = out[text_end..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(
            std::str::from_utf8(&raw[..line_end]).expect("ascii").trim(),
            16,
        )
        .expect("hex");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn post_blob(token: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[tokio::test]
async fn blobs_probes_and_metrics_over_http() {
    let relay = relay_with(Settings {
        blob_max_bytes: Some(200_000),
        ..Settings::default()
    })
    .await;
    let (_c, _, token) = signed_in(&relay, "nina").await;
    let token_hex = hex::encode(token.expose_secret());
    let blob: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();

    let (status, body) = http(&relay, &post_blob(&token_hex, &blob)).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let body = String::from_utf8(body).expect("json");
    let id = body.split('"').nth(3).expect("id field").to_string();
    assert_eq!(id.len(), 64);

    let get = format!("GET /v1/blobs/{id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (status, body) = http(&relay, get.as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(body, blob, "streamed back byte for byte");

    let (status, _) = http(&relay, &post_blob(&token_hex, &vec![0; 200_001])).await;
    assert_eq!(status, 413);
    let (status, _) = http(&relay, &post_blob(&"00".repeat(32), b"abc")).await;
    assert_eq!(status, 401);
    let missing = format!(
        "GET /v1/blobs/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "00".repeat(32)
    );
    assert_eq!(http(&relay, missing.as_bytes()).await.0, 404);

    assert_eq!(
        http(
            &relay,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        http(
            &relay,
            b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .await
        .0,
        200
    );
    let (status, body) = http(
        &relay,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.contains("umbra_blobs_uploaded_total 1\n"), "{text}");
    assert!(text.contains("umbra_registrations_total 1\n"));
    assert!(text.contains("umbra_connections_open 1\n"));
}

#[tokio::test]
async fn tls_serves_wss() {
    use std::sync::Arc;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let relay = relay_with(Settings {
        tls_cert: Some(fixtures.join("cert.pem")),
        tls_key: Some(fixtures.join("key.pem")),
        ..Settings::default()
    })
    .await;
    assert!(relay.relay.url().starts_with("https://"));

    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_file_iter(fixtures.join("ca.pem")).expect("ca")
    {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(relay.relay.local_addr)
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the relay's certificate");
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/v1/ws", tls)
        .await
        .expect("wss upgrade");
    let ping = encode_client(&ClientFrame {
        request_id: 1,
        request: Request::Ping,
    })
    .expect("encode");
    ws.send(Message::Binary(ping.into())).await.expect("send");
    let reply = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Binary(bytes))) => break decode_relay(&bytes).expect("decode"),
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        reply,
        RelayFrame::Response {
            request_id: 1,
            response: Response::Pong
        }
    );

    // A plain-text client gets no WebSocket from a TLS listener.
    let url = format!("ws://{}/v1/ws", relay.relay.local_addr);
    let plain = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("in time");
    assert!(
        plain.is_err(),
        "plain HTTP must not be served when TLS is configured"
    );
}

/// Collects everything the relay logs, at every level, on this test's thread
/// (tokio's test runtime is single-threaded, so relay tasks log here too).
#[derive(Clone, Default)]
struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Set in the child process that runs the log test alone.
const LOG_TEST_CHILD: &str = "UMBRA_RELAY_WS_LOG_TEST_CHILD";

/// The log-secrecy test runs in a child process of this test binary, alone:
/// tracing caches per-callsite interest process-wide, and a callsite first
/// hit by a parallel test while the scoped capture subscriber was being
/// installed could stay silent, leaving the capture empty.
#[test]
fn logs_never_contain_tokens_passwords_envelopes_or_names() {
    if std::env::var_os(LOG_TEST_CHILD).is_some() {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(log_secrecy());
    }
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "logs_never_contain_tokens_passwords_envelopes_or_names",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(LOG_TEST_CHILD, "1")
        .output()
        .expect("run the log test in a child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "log test failed in its child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn log_secrecy() {
    let capture = LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let relay = relay().await;
    let (mut alice, _, alice_token) = signed_in(&relay, "tessa").await;
    let (mut bob, bob_id, _) = signed_in(&relay, "ursula").await;
    assert!(drain(&mut bob).await.is_empty());
    let secret_envelope = b"ENVELOPE-PLAINTEXT-MARKER".to_vec();
    // The traffic really happened, so its absence from the logs means
    // something: the send was accepted and delivered, the bad frame refused.
    let sent = alice
        .ask(Request::Send {
            messages: vec![OutgoingEnvelope {
                to: Address::primary(bob_id),
                envelope: secret_envelope.clone(),
            }],
        })
        .await;
    assert!(
        matches!(&sent, Response::SendResult { results } if matches!(results.as_slice(), [SendOutcome::Accepted { .. }])),
        "{sent:?}"
    );
    loop {
        match bob.next().await.expect("bob's connection is open") {
            RelayFrame::Deliver { envelope, .. } => {
                assert_eq!(envelope, secret_envelope);
                break;
            }
            RelayFrame::PreKeysLow { .. } => {}
            other => panic!("bob expected the envelope, got {other:?}"),
        }
    }
    let (failed, _) = login(
        &mut Client::connect(&relay).await,
        "tessa",
        b"WRONG-PASSWORD-MARKER",
    )
    .await;
    assert!(failed.is_err());
    let mut bad = Client::connect(&relay).await;
    bad.send_raw(vec![1, 0xff]).await;
    let refused = bad.next().await;
    assert!(
        matches!(
            &refused,
            Some(RelayFrame::Response { response, .. }) if error_code(response) == Some(ErrorCode::BadFrame)
        ),
        "{refused:?}"
    );
    relay.relay.shutdown();
    let TestRelay { relay, _dir } = relay;
    relay.wait().await;

    let logs = String::from_utf8(capture.0.lock().expect("log buffer").clone()).expect("utf8 logs");
    assert!(
        logs.contains("request"),
        "the capture works (trace lines were written)"
    );
    // Hex is searched case-insensitively (lower-case hex of the lower-cased
    // logs), so upper- and mixed-case dumps are covered too.
    let lowered = logs.to_lowercase();
    for (what, secret) in [
        ("session token", alice_token.expose_secret().as_slice()),
        ("envelope", secret_envelope.as_slice()),
        ("password", b"WRONG-PASSWORD-MARKER".as_slice()),
        ("username", b"tessa".as_slice()),
        ("username", b"ursula".as_slice()),
        ("account id", bob_id.as_bytes().as_slice()),
    ] {
        for form in printed_forms(secret) {
            let found = if form.is_hex {
                lowered.contains(&form.text)
            } else {
                logs.contains(&form.text)
            };
            assert!(
                !found,
                "logs contain the {what} as {} {:?}:\n{logs}",
                form.kind, form.text
            );
        }
    }
}

/// The search in the log test would see a secret in each form a logger
/// could print it, also inside a longer buffer at any offset.
#[test]
fn printed_forms_find_a_secret_in_every_encoding() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let secret = [
        0xfbu8, 0xff, 0x10, 0x00, 0x7e, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
    ];
    let found = |log: &str| {
        let lowered = log.to_lowercase();
        printed_forms(&secret).iter().any(|form| {
            if form.is_hex {
                lowered.contains(&form.text)
            } else {
                log.contains(&form.text)
            }
        })
    };
    for offset in 0..3 {
        let mut buffer = vec![0x99u8; offset];
        buffer.extend_from_slice(&secret);
        buffer.extend_from_slice(b"tail");
        for log in [
            hex::encode_upper(&buffer),
            hex::encode(&buffer),
            STANDARD.encode(&buffer),
            URL_SAFE_NO_PAD.encode(&buffer),
            format!("{buffer:?}"),
        ] {
            assert!(found(&format!("INFO x={log} y")), "missed in {log}");
        }
    }
    assert!(!found("INFO nothing secret here"));
}

/// One way a logger could print secret bytes.
struct Printed {
    kind: &'static str,
    text: String,
    is_hex: bool,
}

/// The forms `bytes` could take in a log line: the text itself (when it is
/// UTF-8), hex, standard and URL-safe base64 at each of the three
/// alignments it could have inside a longer buffer (only the characters
/// fixed by whole 3-byte groups, so the surrounding bytes do not matter),
/// and Rust's `Debug` list of numbers.
fn printed_forms(bytes: &[u8]) -> Vec<Printed> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let mut forms = vec![Printed {
        kind: "hex",
        text: hex::encode(bytes),
        is_hex: true,
    }];
    if let Ok(text) = std::str::from_utf8(bytes) {
        forms.push(Printed {
            kind: "text",
            text: text.to_owned(),
            is_hex: false,
        });
    }
    for skip in 0..3 {
        let tail = &bytes[skip.min(bytes.len())..];
        let whole = tail.len() / 3 * 4;
        for (kind, engine) in [
            ("base64", &STANDARD_NO_PAD),
            ("base64url", &URL_SAFE_NO_PAD),
        ] {
            let text = engine.encode(tail)[..whole].to_owned();
            if text.len() >= 8 {
                forms.push(Printed {
                    kind,
                    text,
                    is_hex: false,
                });
            }
        }
    }
    let numbers: Vec<String> = bytes.iter().map(u8::to_string).collect();
    forms.push(Printed {
        kind: "Debug bytes",
        text: numbers.join(", "),
        is_hex: false,
    });
    forms
}
