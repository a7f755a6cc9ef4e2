//! Benchmark: relay memory (RSS) per idle, authenticated WebSocket.
//!
//! ```text
//! cargo build --release -p umbra-relay --bins --examples
//! ulimit -n 20000
//! target/release/examples/conn_memory 10000            # buffers 1024 and 131072
//! target/release/examples/conn_memory 10000 4096       # other buffer sizes
//! ```
//!
//! For each WebSocket buffer size it starts the real release relay (the
//! `umbra-relay` binary next to this example's directory) on a fresh SQLite
//! store, then:
//!
//! 1. registers N accounts and logs each in over a few connections, which it
//!    then closes (login yields a token; the relay allows one connection per
//!    device and one device per account, so N connections need N accounts);
//! 2. reads the relay's `VmRSS` (`/proc/PID/status`) with no connection open:
//!    the baseline, store caches and allocator arenas already warm;
//! 3. opens N WebSockets, authenticates each with its token, waits for each
//!    one's `QueueEmpty`, and leaves them idle;
//! 4. reads `VmRSS` again and reports `(rss - baseline) / N`.
//!
//! Registration runs OPAQUE as RFC 9807 specifies, except that this client's
//! key-stretching function is the identity instead of Argon2id (64 MiB per
//! call would make 10 000 sign-ups take most of an hour). The KSF runs only
//! on the client and the relay cannot tell (PROTOCOL.md 11.3), so the relay
//! does exactly the work it does for a real client.
//!
//! Must never: talk to anything but the relay it started on 127.0.0.1, leave
//! the relay running, or print a token.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use futures_util::SinkExt;
use opaque_ke::ciphersuite::CipherSuite;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand::rngs::OsRng;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use umbra_wire::{
    decode_relay, encode_client, ClientFrame, DeviceId, RelayFrame, Request, Response,
    SessionToken, Username,
};

/// The relay's OPAQUE configuration with the identity KSF (see the module
/// comment): identical messages, no Argon2id on this side.
struct BenchSuite;

impl CipherSuite for BenchSuite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = opaque_ke::ksf::Identity;
}

/// Connections that register and log in the accounts, in parallel.
const SIGN_UP_WORKERS: usize = 16;
/// WebSockets being opened and authenticated at once.
const CONNECT_CONCURRENCY: usize = 200;
/// Pause before reading RSS, so freed memory settles and late pushes land.
const SETTLE: Duration = Duration::from_secs(3);
/// Bound on every single reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = match args.next() {
        Some(a) => a.parse().context("N must be a number of connections")?,
        None => 10_000,
    };
    let mut buffers: Vec<usize> = args
        .map(|a| a.parse().context("buffer sizes are byte counts"))
        .collect::<anyhow::Result<_>>()?;
    if buffers.is_empty() {
        // Ours, then tungstenite's default (the figure before the change).
        buffers = vec![1024, 131_072];
    }
    let relay_binary = relay_binary()?;
    println!(
        "machine: nproc {}, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    for buffer in buffers {
        let report = run(&relay_binary, n, buffer).await?;
        println!(
            "websocket_buffer_bytes {buffer}: {n} idle authenticated connections; relay VmRSS \
             fresh {} KiB, baseline (0 open, after sign-ups) {} KiB, with {n} open {} KiB; \
             {:.1} KiB per connection over the baseline ({:.1} KiB over the fresh process); \
             open {:.1}s",
            report.fresh_kib,
            report.baseline_kib,
            report.loaded_kib,
            (report.loaded_kib as f64 - report.baseline_kib as f64) / n as f64,
            (report.loaded_kib as f64 - report.fresh_kib as f64) / n as f64,
            report.connect_secs,
        );
    }
    println!("load average after: {}", load_average());
    Ok(())
}

struct Report {
    fresh_kib: u64,
    baseline_kib: u64,
    loaded_kib: u64,
    connect_secs: f64,
}

async fn run(relay_binary: &PathBuf, n: usize, buffer: usize) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let mut relay = RelayProcess::start(relay_binary, dir.path(), n, buffer)?;
    let url = relay.ws_url.clone();
    tokio::time::sleep(SETTLE).await;
    let fresh_kib = rss_kib(relay.pid())?;

    let started = Instant::now();
    let tokens = sign_up_all(&url, n).await?;
    eprintln!(
        "  {n} accounts registered and logged in in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;
    let baseline_kib = rss_kib(relay.pid())?;

    let started = Instant::now();
    let sockets: Vec<Socket> = stream::iter(tokens)
        .map(|token| {
            let url = url.clone();
            async move { authenticated_idle(&url, token).await }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let loaded_kib = rss_kib(relay.pid())?;
    if sockets.len() != n {
        bail!("only {} of {n} connections open", sockets.len());
    }
    drop(sockets);
    relay.stop();
    Ok(Report {
        fresh_kib,
        baseline_kib,
        loaded_kib,
        connect_secs,
    })
}

/// The release relay binary beside `target/release/examples/`.
fn relay_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .context("cannot locate the target directory")?;
    let relay = dir.join("umbra-relay");
    if !relay.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p umbra-relay --bins --examples`",
            relay.display()
        );
    }
    Ok(relay)
}

struct RelayProcess {
    child: Child,
    ws_url: String,
}

impl RelayProcess {
    fn start(
        binary: &PathBuf,
        data_dir: &std::path::Path,
        n: usize,
        buffer: usize,
    ) -> anyhow::Result<Self> {
        let high = "100000000";
        // Sign-ups at benchmark speed from one address, over connections
        // that stay unauthenticated while they sign up thousands of accounts;
        // only the flags this relay version has.
        let help = Command::new(binary).arg("--help").output()?;
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        let optional: Vec<&str> = [
            ("--auth-per-ip-per-minute", high),
            ("--auth-per-username-per-minute", high),
            ("--logins-per-username-per-minute", high),
            ("--register-starts-per-ip-per-minute", high),
            ("--auth-timeout-secs", "3600"),
        ]
        .into_iter()
        .filter(|(flag, _)| help.contains(&format!("{flag} ")))
        .flat_map(|(flag, value)| [flag, value])
        .collect();
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--max-connections", &(n + 1000).to_string()])
            .args(["--max-connections-per-address", "0"])
            .args(["--websocket-buffer-bytes", &buffer.to_string()])
            .args(&optional)
            // Idle means idle: no pings during the measurement.
            .args([
                "--idle-timeout-secs",
                "3600",
                "--ping-interval-secs",
                "1800",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().context("the relay printed nothing")??;
        // "umbra-relay listening on http://127.0.0.1:PORT (store: ...)"
        let addr = first
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split([' ', '/']).next())
            .with_context(|| format!("unexpected first line: {first:?}"))?
            .to_owned();
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(RelayProcess {
            child,
            ws_url: format!("ws://{addr}/v1/ws"),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    Ok(line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Client side with small buffers too, so 10 000 sockets fit in this
/// process; the relay's side is what is measured.
async fn connect(url: &str) -> anyhow::Result<Socket> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .context("websocket connect")?;
    Ok(socket)
}

/// Sends one request and returns its response, skipping pushes.
async fn request(socket: &mut Socket, id: u64, request: Request) -> anyhow::Result<Response> {
    let bytes = encode_client(&ClientFrame {
        request_id: id,
        request,
    })?;
    socket.send(Message::Binary(bytes.into())).await?;
    loop {
        match next_frame(socket).await? {
            RelayFrame::Response {
                request_id,
                response,
            } if request_id == id => return Ok(response),
            _ => {}
        }
    }
}

async fn next_frame(socket: &mut Socket) -> anyhow::Result<RelayFrame> {
    loop {
        let message = tokio::time::timeout(REPLY_TIMEOUT, socket.next())
            .await
            .context("no frame from the relay in time")?
            .context("the relay closed the connection")??;
        if let Message::Binary(bytes) = message {
            return Ok(decode_relay(&bytes)?);
        }
    }
}

/// Registers and logs in `bench0..benchN` over a few connections; returns
/// one token per account.
async fn sign_up_all(url: &str, n: usize) -> anyhow::Result<Vec<SessionToken>> {
    let workers = (0..SIGN_UP_WORKERS.min(n.max(1))).map(|w| {
        let url = url.to_owned();
        tokio::spawn(async move {
            let mut socket = connect(&url).await?;
            let mut id = 0u64;
            let mut tokens = Vec::new();
            for i in (w..n).step_by(SIGN_UP_WORKERS) {
                tokens.push(sign_up(&mut socket, &mut id, i).await?);
            }
            let _ = socket.close(None).await;
            anyhow::Ok(tokens)
        })
    });
    let mut tokens = Vec::with_capacity(n);
    for worker in futures_util::future::join_all(workers).await {
        tokens.extend(worker??);
    }
    Ok(tokens)
}

async fn sign_up(socket: &mut Socket, id: &mut u64, i: usize) -> anyhow::Result<SessionToken> {
    let username = Username::parse(&format!("bench{i}"))?;
    let password = format!("bench password {i}").into_bytes();
    let mut next_id = || {
        *id += 1;
        *id
    };

    let start = ClientRegistration::<BenchSuite>::start(&mut OsRng, &password)?;
    let reply = request(
        socket,
        next_id(),
        Request::RegisterStart {
            username: username.clone(),
            opaque_request: start.message.serialize().to_vec(),
        },
    )
    .await?;
    let Response::RegisterResponse { opaque_response } = reply else {
        bail!("RegisterStart answered {reply:?}");
    };
    let upload = start.state.finish(
        &mut OsRng,
        &password,
        RegistrationResponse::deserialize(&opaque_response)?,
        ClientRegistrationFinishParameters::default(),
    )?;
    let reply = request(
        socket,
        next_id(),
        Request::RegisterFinish {
            username: username.clone(),
            opaque_upload: upload.message.serialize().to_vec(),
        },
    )
    .await?;
    if !matches!(reply, Response::RegisterDone { .. }) {
        bail!("RegisterFinish answered {reply:?}");
    }

    let login = ClientLogin::<BenchSuite>::start(&mut OsRng, &password)?;
    let reply = request(
        socket,
        next_id(),
        Request::LoginStart {
            username,
            opaque_request: login.message.serialize().to_vec(),
        },
    )
    .await?;
    let Response::LoginResponse {
        login_id,
        opaque_response,
    } = reply
    else {
        bail!("LoginStart answered {reply:?}");
    };
    let finish = login.state.finish(
        &mut OsRng,
        &password,
        CredentialResponse::deserialize(&opaque_response)?,
        ClientLoginFinishParameters::default(),
    )?;
    let reply = request(
        socket,
        next_id(),
        Request::LoginFinish {
            login_id,
            opaque_finalization: finish.message.serialize().to_vec(),
        },
    )
    .await?;
    match reply {
        Response::LoginDone { token, .. } => Ok(token),
        Response::Error { code, message, .. } => bail!("LoginFinish refused: {code} ({message})"),
        _ => bail!("LoginFinish answered something else"),
    }
}

/// A new connection, authenticated with `token`, past its first
/// `QueueEmpty` (so delivery has run once and the connection is idle).
async fn authenticated_idle(url: &str, token: SessionToken) -> anyhow::Result<Socket> {
    let mut socket = connect(url).await?;
    let reply = request(
        &mut socket,
        1,
        Request::Authenticate {
            token,
            device: DeviceId::PRIMARY,
        },
    )
    .await?;
    if !matches!(reply, Response::Authenticated { .. }) {
        bail!("Authenticate answered {reply:?}");
    }
    loop {
        if matches!(next_frame(&mut socket).await?, RelayFrame::QueueEmpty) {
            return Ok(socket);
        }
    }
}
