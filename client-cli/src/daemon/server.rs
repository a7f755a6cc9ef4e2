//! The daemon's listeners and connections: a Unix socket in the data
//! directory (0600), optionally standard input/output for a parent process
//! and a loopback TCP port guarded by a token; one task per connection and
//! per request (or batch of them), and a graceful shutdown on SIGTERM,
//! Ctrl-C, (with `--stdio`) the parent closing standard input, (with
//! `--idle-exit`) no client for that long, or a `logout`/`account.delete`
//! that leaves nothing to serve.
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
use tokio::sync::{mpsc, watch};
use zeroize::{Zeroize as _, Zeroizing};

use super::idle::Activity;
use super::methods::Daemon;
use super::protocol::{
    app_code, error_response, notification, parse_line, read_frame, result_response, Frame, Line,
    Request, INVALID_REQUEST, MAX_REQUEST_BYTES,
};
use crate::exit_status::{ExitStatus, Failure};

/// How long shutdown waits for queued messages to reach the relay.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// How long shutdown waits for requests already running to be answered
/// (a `send` waiting on the relay is cut off after this).
const SHUTDOWN_ANSWERS: Duration = Duration::from_secs(5);

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
    /// Stop once no connection has been open for this long (`idle`).
    pub idle_exit: Option<Duration>,
}

/// Serves until told to stop; the data-dir lock is held by the caller.
pub async fn serve(
    client: umbra_client_core::Client,
    config: umbra_client_core::ClientConfig,
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

    let notifier = crate::notify::Notifier::from_env()?;
    let daemon = Arc::new(Daemon::new(
        client,
        config,
        data_dir.to_path_buf(),
        notifier,
    ));
    let forwarder = {
        let daemon = daemon.clone();
        tokio::spawn(async move { daemon.forward_events().await })
    };
    eprintln!("umbra daemon: serving on {}", socket.display());

    // Connections end when they close or when this turns true; each task
    // says whether it was the `--stdio` one, whose end stops the daemon.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let activity = Activity::new();
    let idle = async {
        match options.idle_exit {
            Some(limit) => activity.idle_for(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(idle);
    if options.stdio {
        let (daemon, stop_rx) = (daemon.clone(), stop_rx.clone());
        let busy = activity.enter();
        connections.spawn(async move {
            let _busy = busy;
            handle(
                daemon,
                tokio::io::stdin(),
                tokio::io::stdout(),
                None,
                stop_rx,
            )
            .await;
            true
        });
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            accepted = unix.accept() => match accepted {
                Ok((stream, _)) => {
                    let (r, w) = stream.into_split();
                    let (daemon, stop_rx) = (daemon.clone(), stop_rx.clone());
                    let busy = activity.enter();
                    connections.spawn(async move {
                        let _busy = busy;
                        handle(daemon, r, w, None, stop_rx).await;
                        false
                    });
                }
                Err(e) => tracing::warn!("accept on the socket failed: {e}"),
            },
            accepted = accept_tcp(tcp.as_ref()) => match accepted {
                Ok((stream, token)) => {
                    let (r, w) = stream.into_split();
                    let (daemon, stop_rx) = (daemon.clone(), stop_rx.clone());
                    let busy = activity.enter();
                    connections.spawn(async move {
                        let _busy = busy;
                        handle(daemon, r, w, Some(token), stop_rx).await;
                        false
                    });
                }
                Err(e) => tracing::warn!("accept on TCP failed: {e}"),
            },
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if ended.unwrap_or(false) {
                    break;
                }
            }
            () = daemon.stopping() => break,
            () = &mut idle => {
                eprintln!("umbra daemon: no client for the --idle-exit time");
                break;
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }

    eprintln!("umbra daemon: stopping");
    drop(unix);
    // Answers already being worked on (the `logout` that stops the daemon,
    // a `send` in flight) are written before the connections close.
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_ANSWERS, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    forwarder.abort();
    // Whatever is queued gets its chance; what does not leave stays in the
    // durable outbox for the next run.
    let client = daemon.client();
    let _ = client.flush_outbox(SHUTDOWN_FLUSH).await;
    client.shutdown().await;
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

/// What the connection itself answers (the TCP auth gate, subscriptions,
/// malformed requests) and what is a method call for the daemon.
enum Step {
    /// The response to send, or `None` for a notification.
    Answer(Option<Value>),
    Call(Request),
}

/// One connection's own state.
struct Connection {
    daemon: Arc<Daemon>,
    tx: mpsc::Sender<Value>,
    /// Set for TCP connections, which must `auth` first.
    token: Option<Arc<Zeroizing<String>>>,
    authenticated: bool,
    subscription: Option<tokio::task::JoinHandle<()>>,
}

impl Connection {
    /// The connection-level part of one request, in the order the requests
    /// came (so `[auth, whoami]` in one batch works).
    fn step(&mut self, parsed: Result<Request, Value>) -> Step {
        let request = match parsed {
            Ok(request) => request,
            Err(response) => return Step::Answer(Some(response)),
        };
        let id = request.id.clone().unwrap_or(Value::Null);
        // JSON-RPC 2.0: a notification (no id) is never answered, not
        // even with an error.
        let reply = |response: Value| Step::Answer(request.id.is_some().then_some(response));
        if !self.authenticated {
            let response = match (request.method.as_str(), &self.token) {
                ("auth", Some(token)) if token_matches(&request.params, token) => {
                    self.authenticated = true;
                    result_response(id, json!({"authenticated": true}))
                }
                _ => error_response(
                    id,
                    app_code(ExitStatus::AuthFailed),
                    "authenticate first: auth {\"token\": ...} with the token file's contents",
                    Some(json!({"exit_code": ExitStatus::AuthFailed.code()})),
                ),
            };
            return reply(response);
        }
        match request.method.as_str() {
            "subscribe" => {
                if self.subscription.is_none() {
                    self.subscription = Some(forward_events(&self.daemon, self.tx.clone()));
                }
                reply(result_response(id, json!({"subscribed": true})))
            }
            "unsubscribe" => {
                if let Some(task) = self.subscription.take() {
                    task.abort();
                }
                reply(result_response(id, json!({"subscribed": false})))
            }
            _ => Step::Call(request),
        }
    }
}

/// Runs one method; the response, unless the request was a notification.
async fn run_call(daemon: &Daemon, request: Request) -> Option<Value> {
    let result = daemon.call(&request.method, request.params).await;
    let id = request.id?;
    Some(match result {
        Ok(result) => result_response(id, result),
        Err(e) => error_response(id, e.code, &e.message, e.data),
    })
}

async fn run_step(daemon: Arc<Daemon>, step: Step) -> Option<Value> {
    match step {
        Step::Answer(response) => response,
        Step::Call(request) => run_call(&daemon, request).await,
    }
}

/// One connection until it closes or the daemon stops. `token` is set for
/// TCP connections, which must `auth` first.
async fn handle<R, W>(
    daemon: Arc<Daemon>,
    reader: R,
    mut writer: W,
    token: Option<Arc<Zeroizing<String>>>,
    mut stopping: watch::Receiver<bool>,
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
    let mut connection = Connection {
        daemon: daemon.clone(),
        tx: tx.clone(),
        authenticated: token.is_none(),
        token,
        subscription: None,
    };
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let auth_deadline = tokio::time::Instant::now() + AUTH_DEADLINE;
    loop {
        let read = async {
            if connection.authenticated {
                Ok(read_frame(&mut reader, MAX_REQUEST_BYTES).await)
            } else {
                tokio::time::timeout_at(auth_deadline, read_frame(&mut reader, MAX_REQUEST_BYTES))
                    .await
            }
        };
        let frame = tokio::select! {
            frame = read => match frame {
                Ok(frame) => frame,
                Err(_) => break,
            },
            _ = stopping.changed() => break,
        };
        let mut line = match frame {
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
        let parsed = parse_line(&line);
        // A `login` line holds a password.
        line.zeroize();
        let steps = match parsed {
            Line::Refused(response) => {
                if tx.send(response).await.is_err() {
                    break;
                }
                continue;
            }
            Line::Single(request) => match connection.step(request) {
                Step::Answer(None) => continue,
                Step::Answer(Some(response)) => {
                    if tx.send(response).await.is_err() {
                        break;
                    }
                    continue;
                }
                call => Err(call),
            },
            Line::Batch(requests) => Ok(requests
                .into_iter()
                .map(|request| connection.step(request))
                .collect::<Vec<_>>()),
        };
        // Concurrent: a slow `send` must not hold up this connection's
        // other requests (or its `mark_reported`). A batch counts as one.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let daemon = daemon.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let response = match steps {
                Err(single) => run_step(daemon.clone(), single).await,
                // §6: one array with a response per request that has an
                // id, in any order (here: the batch's); none at all if
                // every one was a notification.
                Ok(steps) => {
                    let responses: Vec<Value> = futures_util::stream::iter(steps)
                        .map(|step| run_step(daemon.clone(), step))
                        .buffered(MAX_IN_FLIGHT)
                        .filter_map(std::future::ready)
                        .collect()
                        .await;
                    (!responses.is_empty()).then_some(Value::Array(responses))
                }
            };
            if let Some(response) = response {
                let _ = tx.send(response).await;
            }
            daemon.answered();
        });
    }
    if let Some(task) = connection.subscription.take() {
        task.abort();
    }
    drop(connection);
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
