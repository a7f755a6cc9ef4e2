//! The daemon's listeners and connections: a Unix socket in the data
//! directory (0600), optionally standard input/output for a parent process
//! and a loopback TCP port guarded by a token; one task per connection and
//! per request, and a graceful shutdown on SIGTERM, Ctrl-C or (with
//! `--stdio`) the parent closing standard input.
//!
//! Must never: listen on a non-loopback address, answer a TCP request
//! before `auth` succeeded, compare the token in variable time, leave the
//! socket file behind on a clean exit, or let a request's panic or a
//! client's garbage stop the daemon.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt;
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use super::methods::Daemon;
use super::protocol::{
    app_code, error_response, notification, parse_request, read_frame, result_response, Frame,
    INVALID_REQUEST, MAX_REQUEST_BYTES,
};
use crate::exit_status::{ExitStatus, Failure};

/// How long shutdown waits for queued messages to reach the relay.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// Lines waiting to be written to one connection before its requests wait.
const WRITE_QUEUE: usize = 256;

/// Requests of one connection running at once; further lines are not read
/// until one finishes, so a flood of requests is back-pressure, not memory.
const MAX_IN_FLIGHT: usize = 64;

/// How long a TCP connection may stay open without authenticating: a
/// client that has the token sends `auth` at once, and anything else would
/// only hold a task and a socket of the daemon's.
const AUTH_DEADLINE: Duration = Duration::from_secs(10);

/// What `umbra daemon` was asked to serve besides the Unix socket.
pub struct Options {
    pub stdio: bool,
    pub tcp: Option<SocketAddr>,
}

/// Serves until told to stop; the data-dir lock is held by the caller.
pub async fn serve(
    client: umbra_client_core::Client,
    data_dir: &Path,
    socket: PathBuf,
    options: Options,
) -> anyhow::Result<ExitStatus> {
    if let Some(addr) = options.tcp {
        if !addr.ip().is_loopback() {
            return Err(Failure::user(format!(
                "--tcp {addr}: only loopback addresses (127.0.0.1, ::1) are allowed"
            ))
            .into());
        }
    }
    // We hold the data-dir lock, so a socket file here belongs to a daemon
    // that is gone: remove it rather than fail on it.
    match std::fs::remove_file(&socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Failure::local(format!("removing stale {}: {e}", socket.display())).into())
        }
    }
    let unix = UnixListener::bind(&socket)
        .with_context(|| format!("listening on {}", socket.display()))?;
    set_private(&socket)?;
    let _socket_guard = RemoveOnDrop(socket.clone());

    let mut token_guard = None;
    let tcp = match options.tcp {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            let token = new_token();
            let path = data_dir.join(super::TOKEN_FILE);
            write_private(&path, token.as_bytes())?;
            token_guard = Some(RemoveOnDrop(path.clone()));
            eprintln!(
                "umbra daemon: TCP on {} (token in {})",
                listener.local_addr()?,
                path.display()
            );
            Some((listener, Arc::new(token)))
        }
        None => None,
    };

    let daemon = Arc::new(Daemon::new(client));
    let forwarder = {
        let daemon = daemon.clone();
        let mut events = daemon.client.events();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                daemon.publish(event).await;
            }
        })
    };
    eprintln!("umbra daemon: serving on {}", socket.display());

    let stdio = async {
        if options.stdio {
            handle(
                daemon.clone(),
                tokio::io::stdin(),
                tokio::io::stdout(),
                None,
            )
            .await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(stdio);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            accepted = unix.accept() => match accepted {
                Ok((stream, _)) => {
                    let (r, w) = stream.into_split();
                    tokio::spawn(handle(daemon.clone(), r, w, None));
                }
                Err(e) => tracing::warn!("accept on the socket failed: {e}"),
            },
            accepted = accept_tcp(tcp.as_ref()) => match accepted {
                Ok((stream, token)) => {
                    let (r, w) = stream.into_split();
                    tokio::spawn(handle(daemon.clone(), r, w, Some(token)));
                }
                Err(e) => tracing::warn!("accept on TCP failed: {e}"),
            },
            () = &mut stdio => break,
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }

    eprintln!("umbra daemon: stopping");
    drop(unix);
    forwarder.abort();
    // Whatever is queued gets its chance; what does not leave stays in the
    // durable outbox for the next run.
    let _ = daemon.client.flush_outbox(SHUTDOWN_FLUSH).await;
    daemon.client.shutdown().await;
    drop(token_guard);
    Ok(ExitStatus::Success)
}

async fn accept_tcp(
    tcp: Option<&(TcpListener, Arc<Zeroizing<String>>)>,
) -> std::io::Result<(tokio::net::TcpStream, Arc<Zeroizing<String>>)> {
    match tcp {
        Some((listener, token)) => {
            let (stream, _) = listener.accept().await?;
            Ok((stream, token.clone()))
        }
        None => std::future::pending().await,
    }
}

/// One connection until it closes. `token` is set for TCP connections,
/// which must `auth` first.
async fn handle<R, W>(
    daemon: Arc<Daemon>,
    reader: R,
    mut writer: W,
    token: Option<Arc<Zeroizing<String>>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Value>(WRITE_QUEUE);
    let writer_task = tokio::spawn(async move {
        while let Some(value) = rx.recv().await {
            let mut line = value.to_string();
            line.push('\n');
            if writer.write_all(line.as_bytes()).await.is_err() || writer.flush().await.is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(reader);
    let mut authenticated = token.is_none();
    let mut subscription: Option<tokio::task::JoinHandle<()>> = None;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let auth_deadline = tokio::time::Instant::now() + AUTH_DEADLINE;
    loop {
        let frame = if authenticated {
            read_frame(&mut reader, MAX_REQUEST_BYTES).await
        } else {
            match tokio::time::timeout_at(auth_deadline, read_frame(&mut reader, MAX_REQUEST_BYTES))
                .await
            {
                Ok(frame) => frame,
                Err(_) => break,
            }
        };
        let line = match frame {
            Ok(Frame::Line(line)) => line,
            Ok(Frame::TooLong) => {
                let message = format!("request larger than {MAX_REQUEST_BYTES} bytes");
                let _ = tx
                    .send(error_response(Value::Null, INVALID_REQUEST, &message, None))
                    .await;
                break;
            }
            Ok(Frame::Eof) | Err(_) => break,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let request = match parse_request(&line) {
            Ok(request) => request,
            Err(response) => {
                if tx.send(response).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let id = request.id.clone().unwrap_or(Value::Null);
        let answer = request.id.is_some();
        if !authenticated {
            let response = match (request.method.as_str(), &token) {
                ("auth", Some(token)) if token_matches(&request.params, token) => {
                    authenticated = true;
                    result_response(id, json!({"authenticated": true}))
                }
                _ => error_response(
                    id,
                    app_code(ExitStatus::AuthFailed),
                    "authenticate first: auth {\"token\": ...} with the token file's contents",
                    Some(json!({"exit_code": ExitStatus::AuthFailed.code()})),
                ),
            };
            // JSON-RPC 2.0: a notification (no id) is never answered, not
            // even with an error.
            if answer && tx.send(response).await.is_err() {
                break;
            }
            continue;
        }
        match request.method.as_str() {
            "subscribe" => {
                if subscription.is_none() {
                    subscription = Some(forward_events(&daemon, tx.clone()));
                }
                if answer
                    && tx
                        .send(result_response(id, json!({"subscribed": true})))
                        .await
                        .is_err()
                {
                    break;
                }
            }
            "unsubscribe" => {
                if let Some(task) = subscription.take() {
                    task.abort();
                }
                if answer
                    && tx
                        .send(result_response(id, json!({"subscribed": false})))
                        .await
                        .is_err()
                {
                    break;
                }
            }
            _ => {
                // Concurrent: a slow `send` must not hold up this
                // connection's other requests (or its `mark_reported`).
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                let daemon = daemon.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let response = match daemon.call(&request.method, request.params).await {
                        Ok(result) => result_response(id, result),
                        Err(e) => error_response(id, e.code, &e.message, e.data),
                    };
                    if answer {
                        let _ = tx.send(response).await;
                    }
                });
            }
        }
    }
    if let Some(task) = subscription {
        task.abort();
    }
    drop(tx);
    // Requests still running finish and are written; then the writer ends.
    let _ = writer_task.await;
}

fn forward_events(daemon: &Daemon, tx: mpsc::Sender<Value>) -> tokio::task::JoinHandle<()> {
    let mut events = daemon.events.subscribe();
    tokio::spawn(async move {
        loop {
            let record = match events.recv().await {
                Ok(record) => record,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    json!({"type": "lagged", "missed": missed})
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            if tx.send(notification("event", record)).await.is_err() {
                break;
            }
        }
    })
}

fn token_matches(params: &Value, token: &Zeroizing<String>) -> bool {
    let given = params.get("token").and_then(Value::as_str).unwrap_or("");
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

/// 32 random bytes, hex: the TCP token.
fn new_token() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut *bytes);
    Zeroizing::new(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn set_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    set_private(path)?;
    file.write_all(bytes)?;
    Ok(())
}

/// Removes a file this daemon created when the daemon ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_compared_exactly() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(*token, *new_token());
        assert!(token_matches(&json!({"token": token.as_str()}), &token));
        assert!(!token_matches(&json!({"token": &token[..63]}), &token));
        assert!(!token_matches(&json!({}), &token));
        assert!(!token_matches(&json!({"token": 5}), &token));
    }
}
