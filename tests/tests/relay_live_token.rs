//! A live connection is only as good as its token (issue 9 items 1 and 6),
//! against a real relay on SQLite and PostgreSQL: a connection closes with
//! `Closing{TokenExpired}` when its token expires, and a token revoked
//! behind the relay's back (no hub message, no cross-node notice: the row
//! is deleted in the store directly, as a missed notice would leave it)
//! fails the next state-changing request and, on the connection's own
//! re-check timer, closes the connection.
//!
//! Must never: write to the store except to stand in for the passage of
//! time or a missed notice, as each test says; or wait without a bound.

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure};
use relay_support::{on_every_store, Backend};
use umbra_e2e::wire_client::{Session, WireClient, WireClientError};
use umbra_protocol::wire::{ErrorCode, OutgoingEnvelope, RelayFrame, Request, Response};

on_every_store!(
    a_connection_closes_when_its_token_expires,
    a_token_revoked_without_notice_fails_the_next_send,
    a_revoked_connection_cannot_log_its_owner_out_everywhere,
);

/// Longest a test waits for the relay to act on a few-second deadline.
const BOUND: Duration = Duration::from_secs(30);
/// The re-check interval is 30 s with up to ±25 % jitter (connection.rs).
const RECHECK_BOUND: Duration = Duration::from_secs(60);

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `Closing` among `frames`, if any.
fn closing(frames: &[RelayFrame]) -> Option<(ErrorCode, &str)> {
    frames.iter().find_map(|f| match f {
        RelayFrame::Closing { code, reason } => Some((*code, reason.as_str())),
        _ => None,
    })
}

async fn a_connection_closes_when_its_token_expires(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    alice.client.close().await;

    // A 30-day token cannot expire in a test: bring its expiry a few
    // seconds ahead, as the passage of time would.
    let store = backend.store(&relay).await?;
    let sql = format!(
        "UPDATE tokens SET expires_at = {} WHERE account_id = $1",
        now_secs() + 3
    );
    let moved = store
        .execute_with_bytes(&sql, alice.account.as_bytes())
        .await?;
    store.close().await;
    ensure!(moved >= 1, "the token's row was found");

    let mut client = alice.reconnect(&url).await?;
    ensure!(
        client.request_ok(Request::Ping).await? == Response::Pong,
        "served before the expiry"
    );
    let frames = client.read_until_closed(BOUND).await?;
    match closing(&frames) {
        Some((ErrorCode::TokenExpired, _)) => Ok(()),
        other => bail!("expected Closing{{TokenExpired}} at expiry, got {other:?} in {frames:?}"),
    }
}

async fn a_token_revoked_without_notice_fails_the_next_send(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let mut bob_watching = bob.reconnect(&url).await?;

    // Revoke every token of both accounts the way a notice this node
    // missed would leave them: gone from the store, nothing told the relay.
    let store = backend.store(&relay).await?;
    for account in [&alice.account, &bob.account] {
        let deleted = store
            .execute_with_bytes(
                "DELETE FROM tokens WHERE account_id = $1",
                account.as_bytes(),
            )
            .await?;
        ensure!(deleted >= 1, "tokens deleted");
    }
    store.close().await;

    // Alice's next state-changing request is refused, and she is told why.
    let reply = alice
        .client
        .request(Request::Send {
            messages: vec![OutgoingEnvelope {
                to: bob.address,
                envelope: b"sealed".to_vec(),
            }],
        })
        .await?;
    ensure!(
        matches!(
            reply,
            Response::Error {
                code: ErrorCode::TokenExpired,
                ..
            }
        ),
        "a Send on a revoked token is refused: {reply:?}"
    );
    let frames = alice.client.read_until_closed(BOUND).await?;
    ensure!(
        matches!(closing(&frames), Some((ErrorCode::TokenExpired, _))),
        "then Closing{{TokenExpired}}: {frames:?}"
    );

    // Bob sends nothing; his connection's own re-check closes it.
    let frames = bob_watching.read_until_closed(RECHECK_BOUND).await?;
    ensure!(
        matches!(closing(&frames), Some((ErrorCode::TokenExpired, _))),
        "the re-check timer closes an idle revoked connection: {frames:?}"
    );
    Ok(())
}

/// A connection whose token was revoked (the notice missed) must not revoke
/// the tokens its owner has since obtained: `Logout{everywhere}` is
/// re-checked like every other state-changing request.
async fn a_revoked_connection_cannot_log_its_owner_out_everywhere(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut stale = Session::sign_up(&url, "alice", "alice's password").await?;

    let store = backend.store(&relay).await?;
    let deleted = store
        .execute_with_bytes(
            "DELETE FROM tokens WHERE account_id = $1",
            stale.account.as_bytes(),
        )
        .await?;
    store.close().await;
    ensure!(deleted >= 1, "tokens deleted");

    // The owner logs in again (a fresh token, not yet used).
    let mut fresh = WireClient::connect(&url).await?;
    let login = fresh.login("alice", "alice's password").await?;

    match stale
        .client
        .request(Request::Logout { everywhere: true })
        .await
    {
        Ok(reply) => ensure!(
            matches!(
                reply,
                Response::Error {
                    code: ErrorCode::TokenExpired,
                    ..
                }
            ),
            "Logout{{everywhere}} on a revoked token is refused: {reply:?}"
        ),
        // The relay's periodic token re-check (every 30 s ± 25 %) may find
        // the deleted token first and close the connection before it reads
        // the request: refused as well, with the Closing that says why.
        // The close may meet the request being written (a broken pipe) or
        // awaiting its reply (the socket ends).
        Err(WireClientError::Closed(_) | WireClientError::Socket(_)) => {
            // Pushes from before the close (QueueEmpty, for one) are still
            // buffered ahead of the Closing, which may also still be unread.
            let seen = stale.client.read_until_closed(BOUND).await?;
            ensure!(
                seen.iter().any(|push| matches!(
                    push,
                    RelayFrame::Closing {
                        code: ErrorCode::TokenExpired,
                        ..
                    }
                )),
                "closed before the request, and for the revoked token: {seen:?}"
            );
        }
        Err(e) => return Err(e.into()),
    }
    // The owner's fresh token still works.
    fresh
        .authenticate(&login.token)
        .await
        .map_err(|e| anyhow::anyhow!("the fresh token was revoked by a stale connection: {e}"))?;
    Ok(())
}
