//! `GET` and `PUT /v1/backup` (docs/PROTOCOL.md §11.13) over the relay's
//! HTTP client (`relay_http.rs`).
//!
//! A sealed backup is up to 16 MiB, over a frame's limit, so it cannot ride
//! the WebSocket. The answer must carry a `Content-Length` (the relay always
//! sends one), a body over the largest backup is refused before it is read,
//! and the whole request is bounded by the caller's timeout.
//!
//! Must never: send the token anywhere but the configured relay, follow a
//! redirect, log the token or a body, or read an unbounded answer.

use std::time::Duration;

use umbra_protocol::backup::MAX_BACKUP_BYTES;
use umbra_protocol::wire::SessionToken;

use crate::failure::BackupFailure;
use crate::relay_http::{decimal, Exchange, HttpError, RelayHttp};
use crate::Error;

/// Longest refusal body kept (one line of text, §11.13).
const MAX_REFUSAL_BYTES: u64 = 4096;

/// Where the relay's HTTP side is.
#[derive(Clone, Debug)]
pub(crate) struct BackupEndpoint {
    http: RelayHttp,
    timeout: Duration,
}

/// What the relay answered to a request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// `200`/`204`, with `Umbra-Backup-Seq` and the body (empty for `204`).
    Ok { seq: Option<u64>, body: Vec<u8> },
    /// `404`: no backup stored.
    NotFound,
    /// `409`: a newer (or different) backup is stored; its `seq`.
    Conflict { seq: Option<u64> },
    /// Any other status, with the relay's one-line reason (a `429` or
    /// `503` is retried by the worker's own back-off, never sooner than
    /// the relay's `Retry-After` of at most a second or two).
    Refused { status: u16, reason: String },
}

impl BackupEndpoint {
    /// The endpoint of the relay at `server_url` (`http(s)://` or
    /// `ws(s)://host[:port][/v1/ws]`).
    pub(crate) fn new(
        server_url: &str,
        tls_roots: Option<std::path::PathBuf>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        Ok(Self {
            http: RelayHttp::new(server_url, tls_roots, timeout)?,
            timeout,
        })
    }

    /// `GET /v1/backup`.
    pub(crate) async fn get(&self, token: &SessionToken) -> Result<Answer, Error> {
        self.request("GET", token, None).await
    }

    /// `PUT /v1/backup` with `sealed` as the body.
    pub(crate) async fn put(&self, token: &SessionToken, sealed: &[u8]) -> Result<Answer, Error> {
        self.request("PUT", token, Some(sealed)).await
    }

    async fn request(
        &self,
        method: &str,
        token: &SessionToken,
        body: Option<&[u8]>,
    ) -> Result<Answer, Error> {
        let work = async {
            let len = body.map(|b| b.len() as u64);
            let mut exchange = self
                .http
                .start(method, "/v1/backup", Some(token), len)
                .await?;
            if let Some(body) = body {
                // A refusal may come before the body is read, and the
                // relay may then close: the answer is still read.
                exchange.write(body).await?;
            }
            read_answer(&mut exchange).await
        };
        match tokio::time::timeout(self.timeout, work).await {
            Err(_) => Err(Error::Timeout(self.timeout)),
            Ok(result) => result.map_err(backup_error),
        }
    }
}

fn backup_error(error: HttpError) -> Error {
    match error {
        HttpError::Setup(e) => e,
        HttpError::Timeout(t) => Error::Timeout(t),
        HttpError::Transport(e) => Error::Backup(BackupFailure::Transport(e)),
        HttpError::BadAnswer(what) => Error::Backup(BackupFailure::BadAnswer(what)),
    }
}

async fn read_answer(exchange: &mut Exchange) -> Result<Answer, HttpError> {
    // The limit depends on the status, known only once the head is read:
    // take the larger, then hold a refusal to its own.
    let head = exchange
        .answer(&["umbra-backup-seq"], MAX_BACKUP_BYTES as u64)
        .await?;
    if head.status != 200 && head.length.unwrap_or(0) > MAX_REFUSAL_BYTES {
        return Err(HttpError::BadAnswer("an answer body over its limit"));
    }
    let seq = head.wanted[0]
        .as_deref()
        .map(|v| decimal::<u64>(v).ok_or(HttpError::BadAnswer("Umbra-Backup-Seq")))
        .transpose()?;
    let body = exchange.read_to_end().await?;
    Ok(match head.status {
        200 | 204 => Answer::Ok { seq, body },
        404 => Answer::NotFound,
        409 => Answer::Conflict { seq },
        status => Answer::Refused {
            status,
            reason: String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Answer, Error> {
        use tokio::io::AsyncWriteExt;
        let (ours, mut relay) = tokio::io::duplex(64 * 1024);
        relay.write_all(bytes).await.unwrap();
        drop(relay);
        let mut exchange = Exchange::over(ours, Duration::from_secs(5));
        read_answer(&mut exchange).await.map_err(backup_error)
    }

    #[tokio::test]
    async fn answers_are_read_strictly() {
        let ok = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\numbra-backup-seq: 7\r\n\r\nabc")
            .await
            .unwrap();
        assert!(matches!(ok, Answer::Ok { seq: Some(7), ref body } if body == b"abc"));
        let conflict =
            parse(b"HTTP/1.1 409 Conflict\r\ncontent-length: 0\r\numbra-backup-seq: 9\r\n\r\n")
                .await
                .unwrap();
        assert!(matches!(conflict, Answer::Conflict { seq: Some(9) }));
        let busy = parse(b"HTTP/1.1 503 x\r\nretry-after: 1\r\ncontent-length: 4\r\n\r\nbusy")
            .await
            .unwrap();
        assert!(matches!(busy, Answer::Refused { status: 503, ref reason } if reason == "busy"));
        for bad in [
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\n\r\nab",
            b"HTTP/1.1 404 No\r\ncontent-length: 99999\r\n\r\n",
            b"garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\numbra-backup-seq: -1\r\n\r\na",
            // Smuggling shapes: a length given twice (equal or not), a
            // leading `+`, a seq given twice.
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nContent-Length: 1\r\n\r\na",
            b"HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\na",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\numbra-backup-seq: +7\r\n\r\na",
            b"HTTP/1.1 409 C\r\ncontent-length: 0\r\numbra-backup-seq: 7\r\numbra-backup-seq: 1\r\n\r\n",
        ] {
            assert!(
                matches!(
                    parse(bad).await,
                    Err(Error::Backup(BackupFailure::BadAnswer(_)))
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
