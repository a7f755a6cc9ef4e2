//! What the backup suite (`relay_backup.rs`) needs besides a relay: a bare
//! HTTP/1.1 client for `/v1/backup` and sealed (or outside-only) backups to
//! send.
//!
//! Must never: hide an HTTP answer's status or headers from a test, or wait
//! without a bound.

use std::time::Duration;

use anyhow::{ensure, Context};
use rand::rngs::OsRng;
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use umbra_protocol::backup::{
    seal, BackupContents, BackupKey, SettingValue, BACKUP_VERSION, EXPORT_KEY_LEN,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{AccountId, SessionToken};

pub const WAIT: Duration = Duration::from_secs(30);

/// An HTTP answer: status, headers (names lower-case), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn seq(&self) -> Option<u64> {
        self.header("umbra-backup-seq")?.parse().ok()
    }
}

pub fn bearer(token: &SessionToken) -> String {
    token
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One HTTP/1.1 request on its own connection. `length` overrides the
/// `Content-Length` of `body` (to declare what is not sent).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    authorization: Option<String>,
    body: Option<&[u8]>,
    length: Option<u64>,
) -> anyhow::Result<Answer> {
    let mut stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr)).await??;
    let mut head = format!("{method} /v1/backup HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(value) = authorization {
        head.push_str(&format!("Authorization: {value}\r\n"));
    }
    if let Some(len) = length.or(body.map(|b| b.len() as u64)) {
        head.push_str(&format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n"
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if let Some(body) = body {
        // The relay may answer and close before reading a refused body.
        let _ = stream.write_all(body).await;
    }
    let mut response = Vec::new();
    // A refusal before the body may reset the connection after the answer.
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .context("waiting for the relay's answer")?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("no HTTP head in {:?}", String::from_utf8_lossy(&response)))?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = response[split + 4..].to_vec();
    let answer = Answer {
        status,
        headers,
        body,
    };
    if let Some(len) = answer.header("content-length") {
        ensure!(
            len.parse::<usize>().ok() == Some(answer.body.len()),
            "a body of {} bytes under Content-Length {len}",
            answer.body.len()
        );
    }
    Ok(answer)
}

pub async fn put(
    relay: &umbra_e2e::Relay,
    token: &SessionToken,
    body: &[u8],
) -> anyhow::Result<Answer> {
    http(
        relay.addr,
        "PUT",
        Some(format!("Bearer {}", bearer(token))),
        Some(body),
        None,
    )
    .await
}

pub async fn get(relay: &umbra_e2e::Relay, token: &SessionToken) -> anyhow::Result<Answer> {
    http(
        relay.addr,
        "GET",
        Some(format!("Bearer {}", bearer(token))),
        None,
        None,
    )
    .await
}

/// A real sealed backup of `account` (under a random export key: the relay
/// never learns it either way) whose plaintext holds `canary`.
pub fn sealed_backup(account: AccountId, seq: u64, canary: &str) -> anyhow::Result<Vec<u8>> {
    sealed_padded(account, seq, canary, 0)
}

/// [`sealed_backup`] with `extra` settings of 1 000 bytes each, to reach a
/// bigger bucket.
pub fn sealed_padded(
    account: AccountId,
    seq: u64,
    canary: &str,
    extra: usize,
) -> anyhow::Result<Vec<u8>> {
    let mut export_key = [0u8; EXPORT_KEY_LEN];
    OsRng.fill_bytes(&mut export_key);
    let key = BackupKey::derive(&export_key, &account);
    let mut contents = BackupContents::new(account, IdentityKeyPair::generate(&mut OsRng), 1);
    let long: String = std::iter::repeat_n('x', 1000).collect();
    for n in 0..extra {
        contents
            .settings
            .insert(format!("pad.{n:02}"), SettingValue::Text(long.clone()));
    }
    contents
        .settings
        .insert("note".into(), SettingValue::Text(canary.into()));
    Ok(seal(&contents, &key, seq, &mut OsRng)?)
}

/// Bytes the relay takes for a backup of `len` (a bucket) with `seq`: it
/// reads only the header, so the rest may be anything.
pub fn outside_only(len: usize, seq: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    bytes[0] = BACKUP_VERSION;
    bytes[1..9].copy_from_slice(&seq.to_be_bytes());
    bytes
}
