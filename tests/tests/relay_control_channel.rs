//! The control channel between relay nodes on one PostgreSQL, piece by
//! piece: what a node publishes (what a database observer sees), what a
//! node does with a revocation it hears (re-check tokens, never close
//! blindly), and what it does after its listener lost the connection and
//! may have missed announcements (re-check every token). End-to-end
//! revocation and replacement across two nodes are in relay_revocation.rs.
//!
//! Must never: skip silently (umbra-test-support fails under `CI=true`), or
//! synchronise on a sleep where a frame or notification can be awaited.

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use relay_support::{run_bounded, Backend, StoreView};
use sqlx::postgres::{PgListener, PgPool};
use umbra_e2e::wire_client::{Session, WireClient};
use umbra_protocol::wire::{ErrorCode, RelayFrame, Request, Response};

/// The channel's name, as docs/OPERATIONS.md gives it.
const CONTROL_CHANNEL: &str = "umbra_control";
/// The bound a node promises for closing a revoked connection.
const CLOSE_BOUND: Duration = Duration::from_secs(2);
/// How long a lost listener may take to come back (its retry delay is 1 s).
const RECONNECT_BOUND: Duration = Duration::from_secs(5);
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

mod tests {
    use super::*;

    pub async fn the_control_channel_carries_only_account_device_and_a_nonce(
        backend: Backend,
    ) -> anyhow::Result<()> {
        let node_a = backend.start_relay(NO_LOW_WATER).await?;
        let node_b = backend.start_relay(NO_LOW_WATER).await?;
        let pool = pg_pool(&backend, &node_a).await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CONTROL_CHANNEL).await?;

        let mut alice = Session::sign_up(&node_a.ws_url(), "alice", PASSWORD).await?;
        let hex = alice.account.to_hex();
        let first = next_payload(&mut listener).await?;
        expect_authenticated(&first, &hex)?;

        let mut on_b = Session::log_in(&node_b.ws_url(), "alice", PASSWORD).await?;
        let second = next_payload(&mut listener).await?;
        expect_authenticated(&second, &hex)?;
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
            third == format!("r:{hex}"),
            "a revocation announced {third:?}, expected exactly r:<account>"
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
        let mut revoked = Session::sign_up(&node_a.ws_url(), "revoked", PASSWORD).await?;
        let mut kept = Session::sign_up(&node_a.ws_url(), "kept", PASSWORD).await?;
        expect_queue_empty(&mut revoked.client).await?;
        expect_queue_empty(&mut kept.client).await?;

        // What another node's Logout{everywhere} commits, then announces;
        // and the same announcement for an account nothing happened to
        // (stale, or forged by someone who can NOTIFY on the database).
        sqlx::query("DELETE FROM tokens WHERE account_id = $1")
            .bind(revoked.account.as_bytes().as_slice())
            .execute(&pool)
            .await?;
        notify(&pool, &format!("r:{}", revoked.account.to_hex())).await?;
        notify(&pool, &format!("r:{}", kept.account.to_hex())).await?;
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

    /// `a:<account hex>:1:<16 hex digits>`, and nothing more.
    fn expect_authenticated(payload: &str, account_hex: &str) -> anyhow::Result<()> {
        let parts: Vec<&str> = payload.split(':').collect();
        let well_formed = matches!(parts.as_slice(),
            ["a", account, "1", nonce]
                if *account == account_hex
                    && nonce.len() == 16
                    && nonce.bytes().all(|b| b.is_ascii_hexdigit()));
        ensure!(
            well_formed,
            "a new connection was announced as {payload:?}, expected a:<account>:1:<nonce>"
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
