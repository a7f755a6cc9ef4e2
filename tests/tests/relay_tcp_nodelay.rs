//! Every socket the relay accepts has `TCP_NODELAY` set (issue 11: without
//! it Nagle's algorithm held each small frame back until the peer's delayed
//! ACK, about 5 ms on the median delivery).
//!
//! The option is read on the relay's own end of the connection, not
//! inferred from latency: the suite duplicates the relay process's socket
//! descriptors with `pidfd_getfd(2)` (allowed to the relay's parent, which
//! this test process is), finds the one whose peer is this client's local
//! address, and asks it for `TCP_NODELAY`. No timing is measured.
//!
//! Must never: guess from how fast a reply came, or pass when it could not
//! find the relay's socket (that is a failure, with the reason).

use std::net::{SocketAddr, TcpStream};

use anyhow::{bail, Context};
use rustix::process::{pidfd_getfd, pidfd_open, Pid, PidfdFlags, PidfdGetfdFlags};
use tokio_tungstenite::MaybeTlsStream;
use umbra_e2e::wire_client::WireClient;
use umbra_e2e::Relay;
use umbra_protocol::wire::{Request, Response};

/// The relay's end of the TCP connection whose peer is `client`, as a
/// socket of this process.
fn relay_socket_for(pid: u32, client: SocketAddr) -> anyhow::Result<TcpStream> {
    let pidfd = pidfd_open(
        Pid::from_raw(i32::try_from(pid)?).context("pid 0")?,
        PidfdFlags::empty(),
    )
    .context("pidfd_open on the relay")?;
    let dir = format!("/proc/{pid}/fd");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
        let entry = entry?;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // closed meanwhile
        };
        if !target.to_string_lossy().starts_with("socket:[") {
            continue;
        }
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let copy = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty())
            .with_context(|| format!("pidfd_getfd of the relay's descriptor {fd}"))?;
        let socket = TcpStream::from(copy);
        // Listeners, UNIX sockets and other peers are not the one.
        if socket.peer_addr().ok() == Some(client) {
            return Ok(socket);
        }
    }
    bail!("the relay (pid {pid}) holds no socket connected to {client}")
}

fn local_addr(client: &mut WireClient) -> anyhow::Result<SocketAddr> {
    match client.socket().get_ref() {
        MaybeTlsStream::Plain(tcp) => Ok(tcp.local_addr()?),
        _ => bail!("expected a plain TCP connection"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_sockets_have_tcp_nodelay() -> anyhow::Result<()> {
    let relay = tokio::task::spawn_blocking(Relay::start).await?;
    let pid = relay.pid().context("relay not running")?;
    // Two connections: each accepted socket is set, not only the first.
    for _ in 0..2 {
        let mut client = WireClient::connect(&relay.ws_url()).await?;
        // A full round trip: the relay has accepted, upgraded and served it.
        assert_eq!(client.request(Request::Ping).await?, Response::Pong);
        let ours = local_addr(&mut client)?;
        let theirs = relay_socket_for(pid, ours)?;
        assert!(
            theirs.nodelay()?,
            "the relay's socket for {ours} has TCP_NODELAY off"
        );
        client.close().await;
    }
    tokio::task::spawn_blocking(move || drop(relay)).await?;
    Ok(())
}
