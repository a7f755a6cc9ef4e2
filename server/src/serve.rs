//! The relay's HTTP listener: the accept loop, admission (connection caps),
//! the TLS handshake, and HTTP/1.1 with a header-read deadline, in place of
//! `axum::serve`, which offers none of these.
//!
//! Each accepted socket gets `TCP_NODELAY` and is counted by [`Admission`]
//! until it closes. An admitted socket gets its TLS handshake (bounded by
//! [`tls::HANDSHAKE_TIMEOUT`]) and then hyper's HTTP/1.1 server, which
//! closes it when request headers (the first request's, or the next one on
//! a kept-alive connection) do not arrive within the header-read timeout.
//! An upgraded WebSocket carries its permit with it. A refused socket gets
//! one `503` with `Retry-After` and is closed.
//!
//! Must never: let an accept error (EMFILE, ENFILE, ENOMEM) spin the loop or
//! end it, handshake or parse on the accept loop itself, log a peer address,
//! or return from [`run`] while an HTTP exchange is still being answered
//! (within the shutdown grace period).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service as _};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::admission::{Admission, Permit, RefusalReason, Verdict};
use crate::app::AppState;
use crate::metrics::Metrics;
use crate::shutdown::ShutdownSignal;
use crate::tls;

/// Largest buffer hyper keeps for one connection's request head (and body
/// reads). Request heads here are a few hundred bytes; hyper's default
/// (about 400 KiB) would let a slow client pin that much per socket.
pub const MAX_HTTP_BUFFER_BYTES: usize = 32 * 1024;
/// First pause after an accept error that is not about one connection
/// (descriptor or memory exhaustion); doubles up to [`ACCEPT_BACKOFF_MAX`].
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between accept attempts while they keep failing.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// `Retry-After` on a 503 refusal: long enough that a refused crowd does not
/// come straight back, short against the idle timeout of the connections
/// whose closing frees the slots.
pub const REFUSAL_RETRY_AFTER_SECS: u32 = 10;

/// The source of a request, as handlers extract it
/// (`ConnectInfo<PeerAddr>`), for per-source limits: the TCP peer, or for a
/// trusted proxy the client it names in `X-Forwarded-For`
/// ([`TrustedProxies`](crate::trusted_proxy::TrustedProxies)).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// How the listener treats each connection.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Close a connection whose request headers take longer than this.
    pub header_read_timeout: Duration,
    /// `Retry-After` on a refusal, in seconds.
    pub retry_after_secs: u32,
    /// After shutdown is signalled, how long in-flight HTTP exchanges may
    /// take before [`run`] returns anyway.
    pub shutdown_grace: Duration,
}

/// Everything the accept loop needs.
pub struct Listener {
    /// The bound socket.
    pub tcp: TcpListener,
    /// TLS, when configured.
    pub tls: Option<Arc<ServerConfig>>,
    /// Connection caps.
    pub admission: Admission,
    /// Per-connection behaviour.
    pub options: ServeOptions,
}

/// Serves `router` until `shutdown` fires, then waits (up to the grace
/// period) for HTTP exchanges in flight. Upgraded WebSockets are not waited
/// for here; they watch the shutdown signal themselves.
pub async fn run(
    listener: Listener,
    router: Router,
    state: AppState,
    mut shutdown: ShutdownSignal,
) {
    let Listener {
        tcp,
        tls,
        admission,
        options,
    } = listener;
    let acceptor = tls.map(TlsAcceptor::from);
    // Each connection task holds a clone; all gone = all exchanges answered.
    let (tasks, mut tasks_done) = mpsc::channel::<()>(1);
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            () = shutdown.wait() => break,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = ACCEPT_BACKOFF_MIN;
                tune_accepted(&pair.0);
                pair
            }
            Err(error) if is_per_connection(&error) => continue,
            Err(error) => {
                // Out of descriptors or memory: accepting again at once would
                // fail again at once. Pause, and let closing connections
                // free what is needed.
                Metrics::inc(&state.metrics.accept_errors);
                tracing::warn!(%error, pause_ms = backoff.as_millis() as u64, "accept failed; pausing");
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let verdict = if state.limits.trusted_proxies.contains(peer.ip()) {
            admission.admit_trusted_proxy(peer.ip())
        } else {
            admission.admit(peer.ip())
        };
        match verdict {
            Verdict::Admitted(permit) => {
                let conn = Conn {
                    peer,
                    router: router.clone(),
                    acceptor: acceptor.clone(),
                    options,
                    state: state.clone(),
                    shutdown: shutdown.clone(),
                    _task: tasks.clone(),
                };
                tokio::spawn(conn.serve(stream, permit));
            }
            Verdict::Refused(refusal) => {
                count_refusal(&state.metrics, refusal.reason());
                let acceptor = acceptor.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    refuse(stream, acceptor, refusal.reason(), options, &state.metrics).await;
                    drop(refusal);
                });
            }
            Verdict::Dropped(reason) => {
                count_refusal(&state.metrics, reason);
                Metrics::inc(&state.metrics.connections_dropped);
                drop(stream);
            }
        }
    }
    drop(tcp);
    drop(tasks);
    if tokio::time::timeout(options.shutdown_grace, tasks_done.recv())
        .await
        .is_err()
    {
        tracing::warn!("HTTP exchanges did not finish within the grace period");
    }
}

/// Socket options every accepted connection gets. `TCP_NODELAY`: every
/// frame the relay writes is a complete message that someone waits for (a
/// reply, a `Deliver`), and WebSocket writes are flushed one message at a
/// time, so Nagle's algorithm only held a small write back until the peer
/// acknowledged the previous one: with the peer's delayed ACK that put
/// about 5 ms on the median delivery at one sender (0.6-1.0 ms without it).
/// A failure is the socket's own (already reset) and is left to the read
/// that will report it.
fn tune_accepted(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted socket");
    }
}

/// Errors that concern one incoming connection only (it was reset before we
/// took it): accept the next one at once.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

fn count_refusal(m: &Metrics, reason: RefusalReason) {
    Metrics::inc(match reason {
        RefusalReason::Full => &m.connections_refused_full,
        RefusalReason::AddressFull => &m.connections_refused_per_address,
    });
}

struct Conn {
    peer: SocketAddr,
    router: Router,
    acceptor: Option<TlsAcceptor>,
    options: ServeOptions,
    state: AppState,
    shutdown: ShutdownSignal,
    _task: mpsc::Sender<()>,
}

impl Conn {
    async fn serve(self, stream: TcpStream, permit: Permit) {
        match self.acceptor.clone() {
            None => self.http(Counted::new(stream, permit)).await,
            Some(acceptor) => {
                match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => self.http(Counted::new(tls, permit)).await,
                    Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            }
        }
    }

    async fn http<I>(mut self, io: Counted<I>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let state = self.state.clone();
        let app = TowerToHyperService::new(self.router.clone());
        let service = service_fn(move |mut request: Request<Incoming>| {
            // What `into_make_service_with_connect_info` would insert, with
            // the client's address in place of a trusted proxy's. Each
            // request is resolved on its own: a proxy may multiplex clients
            // over one kept-alive connection.
            let trusted = &state.limits.trusted_proxies;
            let source = if trusted.is_empty() {
                peer
            } else {
                let ip = trusted.client_source(peer.ip(), request.headers());
                if ip == peer.ip() {
                    peer
                } else {
                    // The client's port is not known; nothing keys on it.
                    SocketAddr::new(ip, 0)
                }
            };
            request
                .extensions_mut()
                .insert(ConnectInfo(PeerAddr(source)));
            app.call(request)
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.options.header_read_timeout)
            .max_buf_size(MAX_HTTP_BUFFER_BYTES);
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let result = tokio::select! {
            result = conn.as_mut() => result,
            () = self.shutdown.wait() => {
                // Finish the exchange in flight, then close.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(error) = result {
            if error.is_timeout() {
                Metrics::inc(&self.state.metrics.header_timeouts);
                tracing::debug!("request headers not received in time; closed");
            } else {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        }
    }
}

/// Answers every request on the socket with 503 and `Retry-After`, then
/// closes. Bounded by the header-read timeout like any other connection.
async fn refuse(
    stream: TcpStream,
    acceptor: Option<TlsAcceptor>,
    reason: RefusalReason,
    options: ServeOptions,
    metrics: &Metrics,
) {
    let service = service_fn(move |_request: Request<Incoming>| async move {
        Ok::<_, Infallible>(refusal_response(reason, options.retry_after_secs))
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(MAX_HTTP_BUFFER_BYTES)
        .keep_alive(false);
    let result = match acceptor {
        None => {
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
        Some(acceptor) => {
            match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => builder.serve_connection(TokioIo::new(tls), service).await,
                _ => return,
            }
        }
    };
    if let Err(error) = result {
        if error.is_timeout() {
            Metrics::inc(&metrics.header_timeouts);
        }
    }
}

/// The answer to a connection over a cap.
pub fn refusal_response(reason: RefusalReason, retry_after_secs: u32) -> Response<Body> {
    let mut response = Response::new(Body::from(reason.text()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, retry_after_secs.into());
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A socket that holds its admission permit: the slot is freed when the
/// socket is dropped, also after it moved into an upgraded WebSocket.
struct Counted<I> {
    io: I,
    _permit: Permit,
}

impl<I> Counted<I> {
    fn new(io: I, permit: Permit) -> Self {
        Counted {
            io,
            _permit: permit,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
