//! A small strict HTTP/1.1 client for the relay's HTTP side: the account
//! backup (`/v1/backup`, §11.13) and file blobs (`/v1/blobs`, §11.9). One
//! request per connection (`Connection: close`), over TLS for an
//! `https://` relay with the same roots and verification as the WebSocket
//! (`tls.rs`), plain TCP for `http://`.
//!
//! Why not a general client: the relay always answers with a
//! `Content-Length`, the client always knows its body length before it
//! sends, and both bodies can be large (16 MiB backups, 100 MiB blobs), so
//! what is needed is a request whose body is written in pieces as it is
//! produced and an answer whose body is read in pieces as it is consumed,
//! with every limit explicit: the head is bounded, a header the meaning
//! rests on must appear once, a chunked answer is refused, and every
//! network step (connect, each write, each read) has the caller's idle
//! timeout, so a relay that stops answering ends the exchange. A relay
//! that drips instead is bounded too: the answer head must be whole within
//! [`HTTP_HEAD_DEADLINE`], and each body (the request's as written, the
//! answer's as read) may take no longer than one idle period plus one
//! second per [`HTTP_MIN_BODY_BYTES_PER_SEC`] bytes moved, the relay's own
//! rule for uploads (§11.9).
//!
//! Must never: send the token anywhere but the configured relay, follow a
//! redirect, log the token or a body, or read past the answer's
//! `Content-Length` or a caller's limit.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use umbra_protocol::wire::SessionToken;

use crate::consts::{HTTP_HEAD_DEADLINE, HTTP_MIN_BODY_BYTES_PER_SEC};
use crate::failure::ConnectionFailure;
use crate::Error;

/// Longest answer head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most bytes reserved up front for a body read whole, whatever its
/// `Content-Length` says.
const PREALLOC_CAP: usize = 64 * 1024;
/// Most headers an answer may have.
const MAX_HEADERS: usize = 32;

/// What went wrong in an exchange, for the caller to map to its own
/// failure (backup, file).
#[derive(Debug)]
pub(crate) enum HttpError {
    /// Connecting failed, or the relay URL is unusable.
    Setup(Error),
    /// No progress within the idle timeout.
    Timeout(Duration),
    /// The connection broke.
    Transport(std::io::Error),
    /// The answer is not one this client reads.
    BadAnswer(&'static str),
}

/// Where the relay's HTTP side is.
#[derive(Clone, Debug)]
pub(crate) struct RelayHttp {
    tls: bool,
    /// `host[:port]` as configured (the `Host` header and the TLS name).
    authority: String,
    tls_roots: Option<std::path::PathBuf>,
    /// Longest wait for any one network step.
    idle: Duration,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The answer's status line and the headers the client reads.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// `Content-Length`, if given (required for any body).
    pub(crate) length: Option<u64>,
    /// The values of the headers asked for, in the order asked; each
    /// appears at most once.
    pub(crate) wanted: Vec<Option<String>>,
}

/// One request on its own connection: the head is written, then the body
/// (if any) in pieces, then the answer is read.
pub(crate) struct Exchange {
    stream: Box<dyn Io>,
    /// Bytes read past the answer head (the start of its body).
    early: Vec<u8>,
    /// Answer body bytes still to be read.
    remaining: u64,
    idle: Duration,
    /// Whether a body write failed: the relay may have answered early.
    body_cut: bool,
    /// The body being moved (request, then answer) against the minimum rate.
    pace: Pace,
}

/// The minimum-rate allowance of one body: when its first byte moved and
/// how many have.
#[derive(Default)]
struct Pace {
    started: Option<std::time::Instant>,
    moved: u64,
}

impl Pace {
    /// How long the next step of the body may take: `idle`, but no longer
    /// than what is left of `idle + moved / rate` since the body started.
    fn limit(&mut self, idle: Duration) -> Result<Duration, HttpError> {
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        let nanos =
            u128::from(self.moved) * 1_000_000_000 / u128::from(HTTP_MIN_BODY_BYTES_PER_SEC);
        let earned = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        let allowed = idle.saturating_add(earned);
        match allowed.checked_sub(started.elapsed()) {
            Some(left) if !left.is_zero() => Ok(left.min(idle)),
            _ => Err(HttpError::Timeout(allowed)),
        }
    }
}

impl RelayHttp {
    /// The HTTP side of the relay at `server_url` (`http(s)://` or
    /// `ws(s)://host[:port][/v1/ws]`).
    pub(crate) fn new(
        server_url: &str,
        tls_roots: Option<std::path::PathBuf>,
        idle: Duration,
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
            idle,
        })
    }

    pub(crate) fn host_and_port(&self) -> (String, u16) {
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

    /// The URL of `path` on this relay, for error messages.
    pub(crate) fn url(&self, path: &str) -> String {
        format!(
            "{}://{}{path}",
            if self.tls { "https" } else { "http" },
            self.authority
        )
    }

    /// Connects and writes the request head: `method path`, the bearer
    /// token if given, and a `Content-Length` of `body_len` if given (the
    /// caller then writes exactly that many bytes).
    pub(crate) async fn start(
        &self,
        method: &str,
        path: &str,
        token: Option<&SessionToken>,
        body_len: Option<u64>,
    ) -> Result<Exchange, HttpError> {
        let (host, port) = self.host_and_port();
        let connect_error = |e: std::io::Error| {
            HttpError::Setup(Error::Connection(ConnectionFailure::Connect {
                url: self.url(path),
                source: Box::new(e),
            }))
        };
        let tcp = step(self.idle, TcpStream::connect((host.as_str(), port)))
            .await?
            .map_err(connect_error)?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if self.tls {
            let config =
                crate::tls::client_config(self.tls_roots.as_deref()).map_err(HttpError::Setup)?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| HttpError::Setup(Error::BadServerUrl(self.authority.clone())))?;
            let tls = step(
                self.idle,
                tokio_rustls::TlsConnector::from(config).connect(name, tcp),
            )
            .await?
            .map_err(connect_error)?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let mut head = zeroize::Zeroizing::new(format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: umbra\r\n",
            self.authority
        ));
        if let Some(token) = token {
            let bearer = zeroize::Zeroizing::new(hex::encode(token.expose_secret()));
            head.push_str("Authorization: Bearer ");
            head.push_str(&bearer);
            head.push_str("\r\n");
        }
        if let Some(len) = body_len {
            head.push_str(&format!(
                "Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n"
            ));
        }
        head.push_str("\r\n");
        let mut exchange = Exchange {
            stream,
            early: Vec::new(),
            remaining: 0,
            idle: self.idle,
            body_cut: false,
            pace: Pace::default(),
        };
        step(self.idle, exchange.stream.write_all(head.as_bytes()))
            .await?
            .map_err(HttpError::Transport)?;
        Ok(exchange)
    }
}

impl Exchange {
    /// An exchange over an already open stream whose request was written
    /// (tests feed canned answers this way).
    #[cfg(test)]
    pub(crate) fn over<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
        stream: S,
        idle: Duration,
    ) -> Self {
        Self {
            stream: Box::new(stream),
            early: Vec::new(),
            remaining: 0,
            idle,
            body_cut: false,
            pace: Pace::default(),
        }
    }
}

/// `future` within `idle`.
async fn step<T>(
    idle: Duration,
    future: impl std::future::Future<Output = T>,
) -> Result<T, HttpError> {
    tokio::time::timeout(idle, future)
        .await
        .map_err(|_| HttpError::Timeout(idle))
}

impl Exchange {
    /// Writes the next piece of the request body. After a failed write the
    /// rest is dropped (the relay may have refused early and closed); the
    /// answer is still read by [`Exchange::answer`].
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        if self.body_cut {
            return Ok(());
        }
        let limit = self.pace.limit(self.idle)?;
        match step(limit, self.stream.write_all(bytes)).await? {
            Ok(()) => {
                self.pace.moved += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                tracing::debug!(error = %e, "request body cut short; reading the answer");
                self.body_cut = true;
                Ok(())
            }
        }
    }

    /// Whether a body write failed (the relay stopped reading).
    pub(crate) fn body_cut(&self) -> bool {
        self.body_cut
    }

    /// Reads the answer head, returning the values of the `wanted` headers.
    /// A body over `limit` bytes is refused before it is read.
    pub(crate) async fn answer(&mut self, wanted: &[&str], limit: u64) -> Result<Head, HttpError> {
        let _ = step(self.idle, self.stream.flush()).await;
        let head = tokio::time::timeout(
            HTTP_HEAD_DEADLINE,
            read_head(&mut self.stream, self.idle, wanted, &mut self.early),
        )
        .await
        .map_err(|_| HttpError::Timeout(HTTP_HEAD_DEADLINE))??;
        // The answer body has its own allowance, from now.
        self.pace = Pace::default();
        let length = match head.length {
            Some(len) if len > limit => {
                return Err(HttpError::BadAnswer("an answer body over its limit"))
            }
            Some(len) => len,
            None if head.status == 204 || head.status == 304 => 0,
            None => return Err(HttpError::BadAnswer("an answer without Content-Length")),
        };
        if self.early.len() as u64 > length {
            return Err(HttpError::BadAnswer("more body than Content-Length"));
        }
        self.remaining = length;
        Ok(head)
    }

    /// The next piece of the answer body into `buf`; 0 at its end. A
    /// connection closed before `Content-Length` bytes is an error.
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = if !self.early.is_empty() {
            let n = want.min(self.early.len());
            buf[..n].copy_from_slice(&self.early[..n]);
            self.early.drain(..n);
            n
        } else {
            let limit = self.pace.limit(self.idle)?;
            let n = step(limit, self.stream.read(&mut buf[..want]))
                .await?
                .map_err(HttpError::Transport)?;
            if n == 0 {
                return Err(HttpError::BadAnswer(
                    "the relay closed inside the answer body",
                ));
            }
            n
        };
        self.remaining -= n as u64;
        self.pace.moved += n as u64;
        Ok(n)
    }

    /// The whole answer body (within the limit given to `answer`).
    pub(crate) async fn read_to_end(&mut self) -> Result<Vec<u8>, HttpError> {
        // Content-Length comes from the relay: reserve no more than a small
        // cap from it, and let the vector grow only as bytes really arrive.
        let mut body = Vec::with_capacity(
            usize::try_from(self.remaining)
                .unwrap_or(0)
                .min(PREALLOC_CAP),
        );
        let mut chunk = [0u8; 8192];
        loop {
            let n = self.read(&mut chunk).await?;
            if n == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `value` as a number of HTTP's grammar: one or more ASCII digits only.
pub(crate) fn decimal<T: std::str::FromStr>(value: &str) -> Option<T> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Reads and parses an answer head; bytes read past it are left in
/// `early`.
pub(crate) async fn read_head<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    idle: Duration,
    wanted: &[&str],
    early: &mut Vec<u8>,
) -> Result<Head, HttpError> {
    let malformed = HttpError::BadAnswer;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.ok_or(malformed("no status"))?;
                // A header the answer's meaning rests on must appear at
                // most once (two Content-Lengths are how responses are
                // smuggled), and its number is plain decimal digits (Rust's
                // parse also takes a leading `+`, which HTTP does not).
                let find = |name: &str| -> Result<Option<String>, HttpError> {
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
                    .map(|v| decimal::<u64>(&v).ok_or(malformed("Content-Length")))
                    .transpose()?;
                let wanted = wanted
                    .iter()
                    .map(|name| find(name))
                    .collect::<Result<Vec<_>, _>>()?;
                *early = buf.split_off(len);
                return Ok(Head {
                    status,
                    length,
                    wanted,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => {}
            Ok(httparse::Status::Partial) => return Err(malformed("an answer head too long")),
            Err(_) => return Err(malformed("not an HTTP/1.1 answer")),
        }
        let n = step(idle, stream.read(&mut chunk))
            .await?
            .map_err(HttpError::Transport)?;
        if n == 0 {
            return Err(malformed("the relay closed before answering"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
#[path = "relay_http_tests.rs"]
mod hostile_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_server_urls() {
        let e = |u: &str| RelayHttp::new(u, None, Duration::from_secs(1));
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
