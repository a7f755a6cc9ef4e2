//! `GET` and `PUT /v1/backup` (docs/PROTOCOL.md §11.13): one HTTP/1.1
//! request per connection (`Connection: close`), over TLS for an
//! `https://` relay with the same roots and verification as the WebSocket
//! (`tls.rs`), plain TCP for `http://`.
//!
//! A sealed backup is up to 16 MiB, over a frame's limit, so it cannot ride
//! the WebSocket. The client needs exactly two requests with a known body
//! length, so this is a small strict client rather than a general one: the
//! answer must be HTTP/1.x with a `Content-Length` (the relay always sends
//! one), a body over the largest backup is refused before it is read, and
//! every step is bounded by the caller's timeout.
//!
//! Must never: send the token anywhere but the configured relay, follow a
//! redirect, log the token or a body, or read an unbounded answer.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use umbra_protocol::backup::MAX_BACKUP_BYTES;
use umbra_protocol::wire::SessionToken;

use crate::failure::{BackupFailure, ConnectionFailure};
use crate::Error;

/// Longest answer head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers an answer may have.
const MAX_HEADERS: usize = 32;
/// Longest refusal body kept (one line of text, §11.13).
const MAX_REFUSAL_BYTES: usize = 4096;

/// Where the relay's HTTP side is.
#[derive(Clone, Debug)]
pub(crate) struct BackupEndpoint {
    tls: bool,
    /// `host[:port]` as configured (the `Host` header and the TLS name).
    authority: String,
    tls_roots: Option<std::path::PathBuf>,
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
        let bad = || Error::BadServerUrl(server_url.to_owned());
        let url = server_url.trim_end_matches('/');
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let tls = match scheme {
            "http" | "ws" => false,
            "https" | "wss" => true,
            _ => return Err(bad()),
        };
        let authority = rest.strip_suffix("/v1/ws").unwrap_or(rest);
        if authority.is_empty() || authority.contains('/') {
            return Err(bad());
        }
        Ok(Self {
            tls,
            authority: authority.to_owned(),
            tls_roots,
            timeout,
        })
    }

    fn host_and_port(&self) -> (String, u16) {
        let default = if self.tls { 443 } else { 80 };
        // `[v6]:port`, `host:port`, or a bare host.
        if let Some(rest) = self.authority.strip_prefix('[') {
            if let Some((host, tail)) = rest.split_once(']') {
                let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
                return (host.to_owned(), port.unwrap_or(default));
            }
        }
        match self.authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => {
                (host.to_owned(), port.parse().unwrap_or(default))
            }
            _ => (self.authority.clone(), default),
        }
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
            let (host, port) = self.host_and_port();
            let tcp = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| self.connect_error(e))?;
            let _ = tcp.set_nodelay(true);
            if self.tls {
                let config = crate::tls::client_config(self.tls_roots.as_deref())?;
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|_| Error::BadServerUrl(self.authority.clone()))?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.connect_error(e))?;
                exchange(stream, &self.authority, method, token, body).await
            } else {
                exchange(tcp, &self.authority, method, token, body).await
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::Timeout(self.timeout))?
    }

    fn connect_error(&self, e: std::io::Error) -> Error {
        Error::Connection(ConnectionFailure::Connect {
            url: format!(
                "{}://{}/v1/backup",
                if self.tls { "https" } else { "http" },
                self.authority
            ),
            source: Box::new(e),
        })
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    authority: &str,
    method: &str,
    token: &SessionToken,
    body: Option<&[u8]>,
) -> Result<Answer, Error> {
    let bearer = zeroize::Zeroizing::new(hex::encode(token.expose_secret()));
    let mut head = zeroize::Zeroizing::new(format!(
        "{method} /v1/backup HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nUser-Agent: umbra\r\n",
        bearer.as_str()
    ));
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let io = |e: std::io::Error| Error::Backup(BackupFailure::Transport(e));
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    if let Some(body) = body {
        // A refusal may come before the body is read, and the relay may
        // then close: the answer is still read below.
        if let Err(e) = stream.write_all(body).await {
            tracing::debug!(error = %e, "backup upload cut short; reading the answer");
        }
    }
    let _ = stream.flush().await;
    read_answer(&mut stream).await
}

/// `value` as a number of HTTP's grammar: one or more ASCII digits only.
fn decimal<T: std::str::FromStr>(value: &str) -> Option<T> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Answer, Error> {
    let malformed = |what: &'static str| Error::Backup(BackupFailure::BadAnswer(what));
    let io = |e: std::io::Error| Error::Backup(BackupFailure::Transport(e));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (head_len, status, length, seq) = loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.ok_or_else(|| malformed("no status"))?;
                // A header the answer's meaning rests on must appear at
                // most once (two Content-Lengths are how responses are
                // smuggled), and its number is plain decimal digits (Rust's
                // parse also takes a leading `+`, which HTTP does not).
                let find = |name: &str| -> Result<Option<String>, Error> {
                    let mut found = response
                        .headers
                        .iter()
                        .filter(|h| h.name.eq_ignore_ascii_case(name));
                    let first = found.next();
                    if found.next().is_some() {
                        return Err(malformed("a header given twice"));
                    }
                    first
                        .map(|h| {
                            std::str::from_utf8(h.value)
                                .map(|v| v.trim().to_owned())
                                .map_err(|_| malformed("a header not in ASCII"))
                        })
                        .transpose()
                };
                if find("transfer-encoding")?.is_some() {
                    return Err(malformed("a chunked answer (the relay sends a length)"));
                }
                let length = find("content-length")?
                    .map(|v| decimal::<usize>(&v).ok_or_else(|| malformed("Content-Length")))
                    .transpose()?;
                let seq = find("umbra-backup-seq")?
                    .map(|v| decimal::<u64>(&v).ok_or_else(|| malformed("Umbra-Backup-Seq")))
                    .transpose()?;
                break (len, status, length, seq);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => {}
            Ok(httparse::Status::Partial) => return Err(malformed("an answer head too long")),
            Err(_) => return Err(malformed("not an HTTP/1.1 answer")),
        }
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(malformed("the relay closed before answering"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let limit = if status == 200 {
        MAX_BACKUP_BYTES
    } else {
        MAX_REFUSAL_BYTES
    };
    let length = match length {
        Some(len) if len > limit => return Err(malformed("an answer body over its limit")),
        Some(len) => len,
        None if status == 204 || status == 304 => 0,
        None => return Err(malformed("an answer without Content-Length")),
    };
    let mut body = buf.split_off(head_len);
    if body.len() > length {
        return Err(malformed("more body than Content-Length"));
    }
    body.reserve_exact(length - body.len());
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..want]).await.map_err(io)?;
        if n == 0 {
            return Err(malformed("the relay closed inside the answer body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(match status {
        200 | 204 => Answer::Ok { seq, body },
        404 => Answer::NotFound,
        409 => Answer::Conflict { seq },
        _ => Answer::Refused {
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
        let mut reader = bytes;
        read_answer(&mut reader).await
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

    #[test]
    fn endpoints_from_server_urls() {
        let e = |u: &str| BackupEndpoint::new(u, None, Duration::from_secs(1));
        assert_eq!(
            e("http://127.0.0.1:7878").unwrap().host_and_port(),
            ("127.0.0.1".into(), 7878)
        );
        assert_eq!(
            e("https://relay.example/").unwrap().host_and_port(),
            ("relay.example".into(), 443)
        );
        assert_eq!(
            e("ws://[::1]:9/v1/ws").unwrap().host_and_port(),
            ("::1".into(), 9)
        );
        assert!(e("ftp://x").is_err());
        assert!(e("http://h/path").is_err());
    }
}
