//! Half-finished OPAQUE logins live on their connection (issue 9 item 2),
//! against a real relay on SQLite and PostgreSQL: a flood of `LoginStart`s
//! from many connections that then close leaves nothing behind that could
//! refuse someone else's login, and on one connection a new `LoginStart`
//! replaces the previous one (docs/PROTOCOL.md §9.7, "Login"). A
//! connection that answers pings but never authenticates is closed at the
//! authentication deadline (issue 9 item 4); an authenticated one is not.
//!
//! Must never: pass against a relay that keeps pending logins in a
//! relay-wide table, or take unbounded time (the flood is a fixed count).

mod relay_support;

use anyhow::{bail, ensure, Context};
use relay_support::{on_every_store, Backend};
use umbra_e2e::wire_client::{Session, WireClient};
use umbra_protocol::wire::{ErrorCode, RelayFrame, Request, Response, Username};
use umbra_test_support::opaque_flow::{PendingLogin, Stretch};

on_every_store!(
    a_login_flood_from_closed_connections_leaves_logins_working,
    a_new_login_start_replaces_the_previous_one,
    an_unauthenticated_connection_is_closed_at_the_auth_deadline,
);

/// Longest a test waits for the relay to act on a few-second deadline.
const BOUND: std::time::Duration = std::time::Duration::from_secs(30);

/// Connections the flood uses (well under the per-address connection cap).
const FLOOD_CONNECTIONS: usize = 16;
/// `LoginStart`s per flood connection: 16 × 700 = 11 200 in all, more than
/// the 10 000 pending logins the old relay-wide table held before it
/// answered every login `Internal "relay busy"`.
const STARTS_PER_CONNECTION: usize = 700;

const PASSWORD: &str = "victim's password";

/// One valid `KE1`; the relay answers each copy as a new login.
fn credential_request() -> anyhow::Result<Vec<u8>> {
    let (_pending, ke1) = PendingLogin::start(b"attacker's guess")?;
    Ok(ke1)
}

/// Sends `count` `LoginStart`s for `username` without waiting, then reads
/// every reply; returns how many were a `LoginResponse`, and the first other
/// reply.
async fn flood(
    client: &mut WireClient,
    username: &Username,
    ke1: &[u8],
    count: usize,
) -> anyhow::Result<(usize, Option<Response>)> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let id = client
            .send_request(Request::LoginStart {
                username: username.clone(),
                opaque_request: ke1.to_vec(),
            })
            .await?;
        ids.push(id);
    }
    let mut answered = 0;
    let mut other = None;
    for id in ids {
        match client.reply_to(id).await? {
            Response::LoginResponse { .. } => answered += 1,
            reply => {
                other.get_or_insert(reply);
            }
        }
    }
    Ok((answered, other))
}

async fn a_login_flood_from_closed_connections_leaves_logins_working(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    Session::sign_up(&url, "victim", PASSWORD).await?;

    let username = Username::parse("victim")?;
    let ke1 = credential_request()?;
    let mut floods = Vec::with_capacity(FLOOD_CONNECTIONS);
    for _ in 0..FLOOD_CONNECTIONS {
        let url = url.clone();
        let username = username.clone();
        let ke1 = ke1.clone();
        floods.push(tokio::spawn(async move {
            let mut client = WireClient::connect(&url).await?;
            let outcome = flood(&mut client, &username, &ke1, STARTS_PER_CONNECTION).await;
            client.close().await;
            outcome
        }));
    }
    let mut answered = 0;
    for flood in floods {
        let (n, other) = flood.await.context("flood task")??;
        if let Some(reply) = other {
            bail!("a flooded LoginStart was not answered with LoginResponse: {reply:?}");
        }
        answered += n;
    }
    ensure!(
        answered == FLOOD_CONNECTIONS * STARTS_PER_CONNECTION,
        "every LoginStart of the flood was answered ({answered})"
    );

    // The flood's connections are closed; the owner logs in at once.
    let mut owner = WireClient::connect(&url).await?;
    let done = owner
        .login("victim", PASSWORD)
        .await
        .context("the owner's login after the flood")?;
    owner.authenticate(&done.token).await?;
    Ok(())
}

async fn a_new_login_start_replaces_the_previous_one(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    Session::sign_up(&url, "alice", PASSWORD).await?;
    let username = Username::parse("alice")?;
    let mut client = WireClient::connect(&url).await?;

    // Two starts on one connection, each finished with its own proof.
    let mut starts = Vec::new();
    for _ in 0..2 {
        let (pending, opaque_request) = PendingLogin::start(PASSWORD.as_bytes())?;
        let reply = client
            .request_ok(Request::LoginStart {
                username: username.clone(),
                opaque_request,
            })
            .await?;
        let Response::LoginResponse {
            login_id,
            opaque_response,
        } = reply
        else {
            bail!("expected LoginResponse, got {reply:?}");
        };
        let proof = pending
            .finish(&opaque_response, Stretch::Production)
            .context("client login finish")?;
        starts.push((login_id, proof));
    }
    let (second_id, second_proof) = starts.pop().context("second start")?;
    let (first_id, first_proof) = starts.pop().context("first start")?;

    // The newest start is the one in progress and completes...
    let reply = client
        .request_ok(Request::LoginFinish {
            login_id: second_id,
            opaque_finalization: second_proof,
        })
        .await?;
    let Response::LoginDone { token, .. } = reply else {
        bail!("expected LoginDone for the newest start, got {reply:?}");
    };
    // ...and the one it replaced is gone, although its proof is right (a
    // relay-wide table keyed by login id would still accept it).
    let reply = client
        .request(Request::LoginFinish {
            login_id: first_id,
            opaque_finalization: first_proof,
        })
        .await?;
    ensure!(
        matches!(
            reply,
            Response::Error {
                code: ErrorCode::UnknownExchange,
                ..
            }
        ),
        "the replaced login is gone: {reply:?}"
    );
    client.authenticate(&token).await?;
    Ok(())
}

async fn an_unauthenticated_connection_is_closed_at_the_auth_deadline(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&["--auth-timeout-secs", "5"]).await?;
    let url = relay.ws_url();
    let alice = Session::sign_up(&url, "alice", PASSWORD).await?;

    // Both connect now; only one authenticates (fast: no OPAQUE, a token).
    let mut idle = WireClient::connect(&url).await?;
    let mut authenticated = alice.reconnect(&url).await?;
    ensure!(
        idle.request_ok(Request::Ping).await? == Response::Pong,
        "requests are answered before the deadline"
    );
    // Reading answers the relay's WebSocket pings, as a live client would.
    let frames = idle.read_until_closed(BOUND).await?;
    let closing = frames.iter().find_map(|f| match f {
        RelayFrame::Closing { code, .. } => Some(*code),
        _ => None,
    });
    ensure!(
        closing == Some(ErrorCode::NotAuthenticated),
        "closed with Closing{{NotAuthenticated}}: {frames:?}"
    );
    // Past its own deadline too, the authenticated connection is served.
    ensure!(
        authenticated.request_ok(Request::Ping).await? == Response::Pong,
        "the authenticated connection stays"
    );
    Ok(())
}
