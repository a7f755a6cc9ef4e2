//! The control channel between relay nodes on one PostgreSQL, piece by
//! piece: what a node publishes (what a database observer sees), what a
//! node does with a revocation it hears (re-check tokens, never close
//! blindly), what it does with payloads not sealed by the relay's control
//! key or replayed (nothing but count them; no resync), and what it does
//! after its listener lost the connection and may have missed
//! announcements (re-check every token). The control key is recomputed
//! here from the shared OPAQUE key file as docs/OPERATIONS.md describes it,
//! so the construction is checked, not just the relay's own round trip.
//! End-to-end
//! revocation and replacement across two nodes are in relay_revocation.rs.
//!
//! Must never: skip silently (umbra-test-support fails under `CI=true`), or
//! synchronise on a sleep where a frame or notification can be awaited.

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use relay_support::{run_bounded, Backend, StoreView};
use sha2::Sha256;
use sqlx::postgres::{PgListener, PgPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use umbra_e2e::wire_client::{Session, WireClient};
use umbra_protocol::wire::{ErrorCode, RelayFrame, Request, Response};

/// The channel's name, as docs/OPERATIONS.md gives it.
const CONTROL_CHANNEL: &str = "umbra_control";
/// The bound a node promises for closing a revoked connection.
const CLOSE_BOUND: Duration = Duration::from_secs(2);
/// How long a lost listener may take to come back and re-check (its retry
/// delay is 1 s; full re-checks start at most every 5 s).
const RECONNECT_BOUND: Duration = Duration::from_secs(8);
/// The key file's header, before the server setup.
const KEY_FILE_MAGIC: &[u8] = b"umbra-relay opaque server setup v1\n";
/// HKDF info of the control channel's MAC key.
const CONTROL_MAC_LABEL: &[u8] = b"umbra/v1/relay/control-mac";
/// Waits for what must arrive (not a bound on the relay's speed).
const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "correct horse battery staple";
/// No `PreKeysLow` pushes: these devices publish no prekeys, and the tests
/// read their pushes in order.
const NO_LOW_WATER: &[&str] = &["--prekey-low-water", "0"];

macro_rules! postgres_test {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(backend) = Backend::postgres(concat!(module_path!(), "::", stringify!($name)))
            else {
                return;
            };
            run_bounded(tests::$name(backend)).await;
        }
    };
}

postgres_test!(the_control_channel_carries_only_account_device_and_a_nonce);
postgres_test!(a_revocation_announcement_closes_only_connections_whose_token_is_gone);
postgres_test!(after_its_listener_reconnects_a_node_rechecks_every_token);
postgres_test!(a_forged_or_malformed_payload_closes_nothing_and_causes_no_resync);
postgres_test!(a_replayed_announcement_closes_nothing);

mod tests {
    use super::*;

    pub async fn the_control_channel_carries_only_account_device_and_a_nonce(
        backend: Backend,
    ) -> anyhow::Result<()> {
        let node_a = backend.start_relay(NO_LOW_WATER).await?;
        let node_b = backend.start_relay(NO_LOW_WATER).await?;
        let pool = pg_pool(&backend, &node_a).await?;
        let key = control_key(&backend)?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CONTROL_CHANNEL).await?;

        let mut alice = Session::sign_up(&node_a.ws_url(), "alice", PASSWORD).await?;
        let hex = alice.account.to_hex();
        let first = next_payload(&mut listener).await?;
        expect_authenticated(&first, &hex, &key)?;

        let mut on_b = Session::log_in(&node_b.ws_url(), "alice", PASSWORD).await?;
        let second = next_payload(&mut listener).await?;
        expect_authenticated(&second, &hex, &key)?;
        ensure!(
            first != second,
            "two connections were announced with the same nonce: {first}"
        );
        let reply = on_b
            .client
            .request_ok(Request::Logout { everywhere: true })
            .await?;
        ensure!(reply == Response::Ok, "logout: {reply:?}");
        let third = next_payload(&mut listener).await?;
        ensure!(
            third == seal(&key, &format!("r:{hex}")),
            "a revocation announced {third:?}, expected exactly r:<account>:<tag>"
        );
        // The replaced and revoked connection on node A is gone, as promised.
        let frames = alice.client.read_until_closed(WAIT).await?;
        ensure!(
            frames.iter().any(|f| matches!(
                f,
                RelayFrame::Closing {
                    code: ErrorCode::Replaced | ErrorCode::TokenExpired,
                    ..
                }
            )),
            "node A closed alice without saying why: {frames:?}"
        );
        Ok(())
    }

    pub async fn a_revocation_announcement_closes_only_connections_whose_token_is_gone(
        backend: Backend,
    ) -> anyhow::Result<()> {
        let node_a = backend.start_relay(NO_LOW_WATER).await?;
        let pool = pg_pool(&backend, &node_a).await?;
        let key = control_key(&backend)?;
        let mut revoked = Session::sign_up(&node_a.ws_url(), "revoked", PASSWORD).await?;
        let mut kept = Session::sign_up(&node_a.ws_url(), "kept", PASSWORD).await?;
        expect_queue_empty(&mut revoked.client).await?;
        expect_queue_empty(&mut kept.client).await?;

        // What another node's Logout{everywhere} commits, then announces;
        // and the same announcement for an account nothing happened to
        // (stale, or replayed by someone who can LISTEN and NOTIFY).
        sqlx::query("DELETE FROM tokens WHERE account_id = $1")
            .bind(revoked.account.as_bytes().as_slice())
            .execute(&pool)
            .await?;
        notify(
            &pool,
            &seal(&key, &format!("r:{}", revoked.account.to_hex())),
        )
        .await?;
        notify(&pool, &seal(&key, &format!("r:{}", kept.account.to_hex()))).await?;
        notify(&pool, "garbage that is no announcement").await?;

        expect_closed_with(&mut revoked.client, ErrorCode::TokenExpired, CLOSE_BOUND)
            .await
            .context("the connection whose token was revoked")?;
        // Still served, and still reached by its queue: nothing closed it.
        let reply = kept.client.request_ok(Request::PreKeyCount).await?;
        ensure!(
            matches!(reply, Response::PreKeyCount { .. }),
            "the connection with a valid token after announcements for it: {reply:?}"
        );
        ensure!(!kept.client.is_closed(), "the valid connection was closed");
        Ok(())
    }

    pub async fn after_its_listener_reconnects_a_node_rechecks_every_token(
        backend: Backend,
    ) -> anyhow::Result<()> {
        let node_a = backend.start_relay(NO_LOW_WATER).await?;
        let pool = pg_pool(&backend, &node_a).await?;
        let mut revoked = Session::sign_up(&node_a.ws_url(), "revoked", PASSWORD).await?;
        let mut kept = Session::sign_up(&node_a.ws_url(), "kept", PASSWORD).await?;
        expect_queue_empty(&mut revoked.client).await?;
        expect_queue_empty(&mut kept.client).await?;

        // A revocation whose announcement this node never hears: the token
        // goes, no NOTIFY is sent, and the node's listener connection is
        // cut, as by a database restart or a network fault.
        sqlx::query("DELETE FROM tokens WHERE account_id = $1")
            .bind(revoked.account.as_bytes().as_slice())
            .execute(&pool)
            .await?;
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND query ILIKE '%LISTEN%'",
        )
        .fetch_all(&pool)
        .await?;
        ensure!(
            terminated.len() == 1 && terminated[0],
            "expected to cut node A's one listener connection, cut {terminated:?}"
        );

        expect_closed_with(
            &mut revoked.client,
            ErrorCode::TokenExpired,
            RECONNECT_BOUND,
        )
        .await
        .context("a revoked connection after the node's listener came back")?;
        let reply = kept.client.request_ok(Request::PreKeyCount).await?;
        ensure!(
            matches!(reply, Response::PreKeyCount { .. }),
            "the connection with a valid token after the resync: {reply:?}"
        );
        Ok(())
    }

    pub async fn a_forged_or_malformed_payload_closes_nothing_and_causes_no_resync(
        backend: Backend,
    ) -> anyhow::Result<()> {
        let node_a = backend.start_relay(NO_LOW_WATER).await?;
        let pool = pg_pool(&backend, &node_a).await?;
        let key = control_key(&backend)?;
        let mut alice = Session::sign_up(&node_a.ws_url(), "alice", PASSWORD).await?;
        expect_queue_empty(&mut alice.client).await?;
        let resyncs = metric(&node_a, "umbra_control_resyncs_total").await?;
        let refused = metric(&node_a, "umbra_control_refused_total").await?;

        // What anyone who can CONNECT may send: an announcement of a new
        // connection for alice's device, untagged, with a made-up tag, with
        // a tag from another relay's key, and garbage. Before the MAC the
        // first replaced alice's live connection; garbage forced a resync.
        let hex = alice.account.to_hex();
        let body = format!("a:{hex}:1:00112233445566aa:{}", unix_now());
        // Each forged payload is followed by garbage, refused either way:
        // once it is counted the payload before it was handled.
        let forged = [
            body.clone(),
            format!("{body}:{}", "00".repeat(16)),
            seal(&[7u8; 32], &body),
        ];
        let mut expected = refused;
        for payload in &forged {
            notify(&pool, payload).await?;
            notify(&pool, "garbage that is no announcement").await?;
            wait_for_metric(&node_a, "umbra_control_refused_total", expected + 1).await?;
            expect_alive(&mut alice.client)
                .await
                .with_context(|| format!("after the forged announcement {payload:?}"))?;
            expected += 2;
        }
        wait_for_metric(&node_a, "umbra_control_refused_total", expected).await?;
        ensure!(
            metric(&node_a, "umbra_control_refused_total").await? == expected,
            "not every forged payload was refused"
        );
        let after = metric(&node_a, "umbra_control_resyncs_total").await?;
        ensure!(
            after == resyncs,
            "payloads that did not verify caused {} resyncs",
            after - resyncs
        );

        // The same announcement sealed with the shared key is acted on, so
        // the refusals above were for the tag, not for the form.
        notify(&pool, &seal(&key, &body)).await?;
        expect_closed_with(&mut alice.client, ErrorCode::Replaced, CLOSE_BOUND)
            .await
            .context("a sealed announcement of a newer connection")?;
        Ok(())
    }

    pub async fn a_replayed_announcement_closes_nothing(backend: Backend) -> anyhow::Result<()> {
        let node_a = backend.start_relay(NO_LOW_WATER).await?;
        // The listener holds its pool's connection; NOTIFYs go through
        // another.
        let pool = pg_pool(&backend, &node_a).await?;
        let listen_pool = pg_pool(&backend, &node_a).await?;
        let mut listener = PgListener::connect_with(&listen_pool).await?;
        listener.listen(CONTROL_CHANNEL).await?;

        // An observer captures the announcement of alice's first
        // connection; alice then connects again (replacing it).
        let mut first = Session::sign_up(&node_a.ws_url(), "alice", PASSWORD).await?;
        let captured = next_payload(&mut listener).await?;
        expect_queue_empty(&mut first.client).await?;
        let mut second = Session::log_in(&node_a.ws_url(), "alice", PASSWORD).await?;
        expect_queue_empty(&mut second.client).await?;
        expect_closed_with(&mut first.client, ErrorCode::Replaced, CLOSE_BOUND).await?;
        let refused = metric(&node_a, "umbra_control_refused_total").await?;

        // Replayed, the captured announcement would name a connection other
        // than alice's current one and so replace it.
        // The garbage after it is refused either way, so the count reaches
        // two only once both were handled and the replay was refused too.
        // (Waiting for one would return as soon as the replay was counted,
        // with the garbage possibly not yet read.)
        notify(&pool, &captured).await?;
        notify(&pool, "garbage that is no announcement").await?;
        wait_for_metric(&node_a, "umbra_control_refused_total", refused + 2)
            .await
            .context("the replayed announcement was not refused")?;
        expect_alive(&mut second.client)
            .await
            .context("after a replayed announcement")?;
        ensure!(
            metric(&node_a, "umbra_control_refused_total").await? == refused + 2,
            "something else was refused too"
        );
        Ok(())
    }

    /// Still served: a request is answered and nothing closed it.
    async fn expect_alive(client: &mut WireClient) -> anyhow::Result<()> {
        let reply = client.request_ok(Request::PreKeyCount).await?;
        ensure!(
            matches!(reply, Response::PreKeyCount { .. }),
            "a live connection answered {reply:?}"
        );
        ensure!(!client.is_closed(), "the connection was closed");
        Ok(())
    }

    /// The control MAC key, recomputed from the key file every node shares:
    /// HKDF-SHA256(salt none, ikm = the setup after the header, info = label).
    fn control_key(backend: &Backend) -> anyhow::Result<[u8; 32]> {
        let path = backend
            .opaque_key_file()
            .context("PostgreSQL relays share a key file")?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {path:?}"))?;
        let setup = bytes
            .strip_prefix(KEY_FILE_MAGIC)
            .context("the key file has no header")?;
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(None, setup)
            .expand(CONTROL_MAC_LABEL, &mut key)
            .map_err(|_| anyhow::anyhow!("HKDF refused 32 bytes"))?;
        Ok(key)
    }

    /// `<body>:<hex of HMAC-SHA256(key, body) truncated to 16 bytes>`.
    fn seal(key: &[u8; 32], body: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(body.as_bytes());
        let tag = mac.finalize().into_bytes();
        let hex: String = tag[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{body}:{hex}")
    }

    fn unix_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// One sample of the relay's `/metrics`.
    async fn metric(relay: &umbra_e2e::Relay, sample: &str) -> anyhow::Result<u64> {
        let mut stream = tokio::net::TcpStream::connect(relay.addr).await?;
        let request = "GET /metrics HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        let line = text
            .lines()
            .find(|l| l.strip_prefix(sample).is_some_and(|r| r.starts_with(' ')))
            .with_context(|| format!("no {sample} in /metrics"))?;
        Ok(line[sample.len() + 1..].trim().parse()?)
    }

    /// Polls `/metrics` until `sample` reaches `at_least` (the relay has
    /// then handled the payloads counted there).
    async fn wait_for_metric(
        relay: &umbra_e2e::Relay,
        sample: &str,
        at_least: u64,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = metric(relay, sample).await?;
            if value >= at_least {
                return Ok(());
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{sample} stayed at {value}, expected {at_least}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn pg_pool(backend: &Backend, relay: &umbra_e2e::Relay) -> anyhow::Result<PgPool> {
        match backend.store(relay).await? {
            StoreView::Postgres(pool) => Ok(pool),
            StoreView::Sqlite(_) => bail!("a PostgreSQL test got an SQLite store"),
        }
    }

    async fn notify(pool: &PgPool, payload: &str) -> anyhow::Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CONTROL_CHANNEL)
            .bind(payload)
            .execute(pool)
            .await?;
        Ok(())
    }

    async fn next_payload(listener: &mut PgListener) -> anyhow::Result<String> {
        let notification = tokio::time::timeout(WAIT, listener.recv())
            .await
            .context("no control announcement arrived")??;
        Ok(notification.payload().to_owned())
    }

    /// `a:<account hex>:1:<16 hex digits>:<unix seconds>:<tag>`, the tag
    /// right for the shared key, and nothing more.
    fn expect_authenticated(
        payload: &str,
        account_hex: &str,
        key: &[u8; 32],
    ) -> anyhow::Result<()> {
        let parts: Vec<&str> = payload.split(':').collect();
        let well_formed = matches!(parts.as_slice(),
            ["a", account, "1", nonce, sent, _tag]
                if *account == account_hex
                    && nonce.len() == 16
                    && nonce.bytes().all(|b| b.is_ascii_hexdigit())
                    && sent.parse::<u64>().is_ok_and(|s| s.abs_diff(unix_now()) < 60));
        ensure!(
            well_formed,
            "a new connection was announced as {payload:?}, expected a:<account>:1:<nonce>:<time>:<tag>"
        );
        let body = payload.rsplit_once(':').map_or("", |(body, _)| body);
        ensure!(
            seal(key, body) == payload,
            "the announcement's tag is not HMAC-SHA256 under the documented key"
        );
        Ok(())
    }

    async fn expect_closed_with(
        client: &mut WireClient,
        code: ErrorCode,
        within: Duration,
    ) -> anyhow::Result<()> {
        let frames = client
            .read_until_closed(within)
            .await
            .with_context(|| format!("still open after {within:?}"))?;
        ensure!(
            frames
                .iter()
                .any(|f| matches!(f, RelayFrame::Closing { code: c, .. } if *c == code)),
            "expected Closing {{ {code} }}, got {frames:?}"
        );
        Ok(())
    }

    async fn expect_queue_empty(client: &mut WireClient) -> anyhow::Result<()> {
        match client.next_push(WAIT).await? {
            RelayFrame::QueueEmpty => Ok(()),
            other => bail!("expected QueueEmpty, got {other:?}"),
        }
    }
}
