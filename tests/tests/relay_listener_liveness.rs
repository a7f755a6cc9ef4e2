//! The PostgreSQL listener's liveness probe: two relay nodes on a throwaway
//! cluster (`pg_cluster`), a recipient connected and idle on node A, and
//! node A's LISTEN connection frozen (its backend alone is SIGSTOPped: the
//! connection stays open and nothing answers, as a partition that left it
//! half-open looks). A message then sent via node B must still reach the
//! recipient on node A: node A's listener must notice that its connection
//! no longer answers (`SELECT 1` every 10 s, 2 s to answer), connect
//! again, and resync every connection on the node, which re-reads its
//! queue. Without the probe the listener waits on the dead connection for
//! as long as the kernel keeps it, and node A never hears of the message
//! (an idle recipient is woken only by a notification).
//!
//! PostgreSQL only. Fails in CI (`CI=true`) if no throwaway cluster can be
//! made, says `SKIPPED:` elsewhere.
//!
//! Must never: signal a process of a PostgreSQL it did not start, or leave
//! a backend frozen (the cluster thaws every process on drop).

mod pg_cluster;
mod relay_support;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use pg_cluster::cluster_or_skip;
use relay_support::{run_bounded, shut_down, BASE_ARGS};
use rustix::process::{kill_process, Pid, Signal};
use sqlx::Row;
use umbra_e2e::wire_client::Session;
use umbra_e2e::{Relay, StoreKind};
use umbra_protocol::wire::{Address, OutgoingEnvelope, RelayFrame, Request, Response, SendOutcome};

/// A push that needs no recovery (live delivery across nodes, the empty
/// backlog).
const WAIT: Duration = Duration::from_secs(10);
/// Backstop for the delivery after the freeze: the relay probes every 10 s
/// and gives a probe 2 s, reconnects within about a second and resyncs at
/// once, so about 13 s; three times that catches a listener that never
/// recovers without timing the recovery.
const RECOVERY_BOUND: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_listener_connection_is_replaced_and_missed_messages_are_delivered() {
    let Some(cluster) = tokio::task::spawn_blocking(|| {
        cluster_or_skip("relay_listener_liveness::a_frozen_listener_connection_is_replaced")
    })
    .await
    .expect("cluster setup thread") else {
        return;
    };
    run_bounded(async move {
        let result = frozen_listener(&cluster.url()).await;
        // The frozen backend is thawed (and the cluster stopped) on drop.
        drop(cluster);
        result
    })
    .await;
}

/// Starts a node; every node on one database shares `key_file` (OPAQUE).
async fn start_node(url: &str, key_file: &std::path::Path) -> anyhow::Result<Relay> {
    let store = StoreKind::Postgres(url.to_owned());
    let mut args: Vec<String> = BASE_ARGS.iter().map(|s| s.to_string()).collect();
    args.extend(["--prekey-low-water".to_owned(), "0".to_owned()]);
    args.extend([
        "--opaque-key-file".to_owned(),
        key_file.display().to_string(),
    ]);
    Ok(tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Relay::start_with(store, &args)
    })
    .await?)
}

/// The backend pids of every LISTEN connection (a relay's listener runs
/// `LISTEN` on its two channels, then only waits until its first probe, 10 s
/// later, after which `pg_stat_activity` shows the probe instead).
async fn listener_backends(db: &sqlx::PgPool) -> anyhow::Result<Vec<i32>> {
    let rows =
        sqlx::query("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' ORDER BY pid")
            .fetch_all(db)
            .await?;
    Ok(rows.iter().map(|r| r.get::<i32, _>("pid")).collect())
}

async fn frozen_listener(url: &str) -> anyhow::Result<()> {
    let db = sqlx::PgPool::connect(url).await?;
    let key_dir = tempfile::tempdir()?;
    let key_file = key_dir.path().join("opaque-server-key");
    let node_a = start_node(url, &key_file).await?;
    // Node A's listener is the only one until node B starts.
    let started = Instant::now();
    let listener_a = loop {
        match listener_backends(&db).await?.as_slice() {
            [pid] => break *pid,
            [] if started.elapsed() < WAIT => tokio::time::sleep(Duration::from_millis(50)).await,
            other => bail!("expected node A's one listener backend, found {other:?}"),
        }
    };
    let node_b = start_node(url, &key_file).await?;

    let mut bob = Session::sign_up(&node_a.ws_url(), "bob", "bob's password").await?;
    let mut alice = Session::sign_up(&node_b.ws_url(), "alice", "alice's password").await?;
    match bob.client.next_push(WAIT).await? {
        RelayFrame::QueueEmpty => {}
        other => bail!("bob's empty backlog on node A: expected QueueEmpty, got {other:?}"),
    }
    let to = bob.address;
    // Live across nodes first, so what follows is the freeze's doing.
    let seq = send(&mut alice, to, b"before the freeze").await?;
    expect_delivery(&mut bob, seq, b"before the freeze", WAIT).await?;

    let pid = Pid::from_raw(listener_a).context("backend pid")?;
    kill_process(pid, Signal::Stop).context("freezing node A's listener backend")?;
    let seq = send(&mut alice, to, b"while A's listener is frozen").await?;
    let frozen_at = Instant::now();
    expect_delivery(
        &mut bob,
        seq,
        b"while A's listener is frozen",
        RECOVERY_BOUND,
    )
    .await
    .context("node A never heard of a message sent via node B after its listener froze")?;
    eprintln!(
        "delivered on node A {:?} after its listener's backend froze",
        frozen_at.elapsed()
    );
    let log = String::from_utf8_lossy(&node_a.output()).into_owned();
    ensure!(
        log.contains("did not answer its liveness probe"),
        "node A did not log why it replaced its listener:\n{log}"
    );
    ensure!(!log.contains(url), "node A logged its database URL:\n{log}");
    // And live again, through the new listener.
    let seq = send(&mut alice, to, b"after the recovery").await?;
    expect_delivery(&mut bob, seq, b"after the recovery", WAIT).await?;

    kill_process(pid, Signal::Cont).context("thawing the backend")?;
    bob.client.close().await;
    alice.client.close().await;
    db.close().await;
    shut_down(node_a).await;
    shut_down(node_b).await;
    Ok(())
}

/// One `Send` to `to` via `alice`'s node, accepted: its sequence number.
async fn send(alice: &mut Session, to: Address, envelope: &[u8]) -> anyhow::Result<u64> {
    let request = Request::Send {
        messages: vec![OutgoingEnvelope {
            to,
            envelope: envelope.to_vec(),
        }],
    };
    match alice.client.request_ok(request).await? {
        Response::SendResult { results } => match results.as_slice() {
            [SendOutcome::Accepted { seq }] => Ok(*seq),
            other => bail!("node B: expected Accepted, got {other:?}"),
        },
        other => bail!("node B: expected SendResult, got {other:?}"),
    }
}

async fn expect_delivery(
    bob: &mut Session,
    seq: u64,
    envelope: &[u8],
    bound: Duration,
) -> anyhow::Result<()> {
    match bob.client.next_push(bound).await? {
        RelayFrame::Deliver {
            seq: got,
            envelope: bytes,
            ..
        } => {
            ensure!(
                got == seq && bytes == envelope,
                "node A delivered seq {got}, expected {seq}"
            );
            Ok(())
        }
        other => bail!("node A: expected a Deliver, got {other:?}"),
    }
}
