//! Authentication against a real relay, on SQLite and PostgreSQL: OPAQUE
//! registration and login, failures that must look alike (wrong password and
//! unknown user), username uniqueness, token lifetime, and revocation.
//!
//! Must never: accept a relay that tells an unknown user apart from a wrong
//! password, or that honours a token after it expired or was revoked.

mod relay_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use relay_support::{on_every_store, Backend};
use umbra_e2e::wire_client::{LoginAttempt, Session, WireClient, WireClientError};
use umbra_protocol::wire::{
    AccountId, Address, DeviceId, ErrorCode, OutgoingEnvelope, Request, Response, Username,
};

on_every_store!(
    register_then_login_authenticates,
    wrong_password_fails_with_auth_failed,
    unknown_user_looks_exactly_like_wrong_password,
    taken_username_is_refused,
    token_lifetime_follows_the_flag_and_expired_tokens_fail,
    logout_revokes_this_token_only,
    logout_everywhere_revokes_every_token,
    requests_before_authentication_are_refused,
    rename_keeps_the_account_and_password,
);

const WAIT: Duration = Duration::from_secs(10);

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The code a failed login ended with; fails the test if it succeeded.
fn failure_code(attempt: &LoginAttempt) -> anyhow::Result<(ErrorCode, String)> {
    match &attempt.outcome {
        Err(WireClientError::Refused { code, message }) => Ok((*code, message.clone())),
        Err(other) => bail!("login failed on the client side only: {other}"),
        Ok(_) => bail!("login unexpectedly succeeded"),
    }
}

/// Authenticate with `token` on a fresh connection; the relay's refusal code.
async fn authenticate_refusal(
    ws_url: &str,
    token: &umbra_protocol::wire::SessionToken,
) -> anyhow::Result<ErrorCode> {
    let mut client = WireClient::connect(ws_url).await?;
    match client.authenticate(token).await {
        Ok(address) => bail!("token still authenticates (as {address})"),
        Err(WireClientError::Refused { code, .. }) => Ok(code),
        Err(other) => Err(other).context("authenticate"),
    }
}

/// Revoked and unknown tokens get `AuthFailed` (spec 9.6 and 11.4): the
/// relay no longer holds their hash, so they are indistinguishable from a
/// token it never issued. Only a known, expired token gets `TokenExpired`.
fn is_token_refusal(code: ErrorCode) -> bool {
    code == ErrorCode::AuthFailed
}

async fn register_then_login_authenticates(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();

    let mut client = WireClient::connect(&url).await?;
    let account = client.register("alice", "correct horse battery").await?;
    // Registration does not authenticate: authenticated requests are refused.
    let before = client.request(Request::PreKeyCount).await?;
    ensure!(
        matches!(
            before,
            Response::Error {
                code: ErrorCode::NotAuthenticated,
                ..
            }
        ),
        "PreKeyCount right after registration: expected NotAuthenticated, got {before:?}"
    );

    let login = client.login("alice", "correct horse battery").await?;
    ensure!(
        login.account == account,
        "login returned {} for the account registered as {account}",
        login.account
    );
    ensure!(
        login.expires_at > now_secs(),
        "a fresh token must expire in the future"
    );
    let address = client.authenticate(&login.token).await?;
    ensure!(
        address == Address::primary(account),
        "Authenticated names {address}, expected the primary device of {account}"
    );
    // The username is case-folded: logging in as ALICE is the same account.
    let mut again = WireClient::connect(&url).await?;
    let folded = again.login("ALICE", "correct horse battery").await?;
    ensure!(folded.account == account, "ALICE is not alice");
    ensure!(
        folded.token != login.token,
        "two logins must yield two different tokens"
    );
    let pong = client.request(Request::Ping).await?;
    ensure!(pong == Response::Pong, "Ping answered {pong:?}");
    Ok(())
}

async fn wrong_password_fails_with_auth_failed(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut client = WireClient::connect(&url).await?;
    client.register("bob", "the right one").await?;

    let attempt = client.login_attempt("bob", "the wrong one").await?;
    let (code, _) = failure_code(&attempt)?;
    ensure!(
        code == ErrorCode::AuthFailed,
        "wrong password: expected AuthFailed, got {code}"
    );
    // The connection is still usable and unauthenticated; the right
    // password still works afterwards.
    let login = client.login("bob", "the right one").await?;
    client.authenticate(&login.token).await?;
    Ok(())
}

async fn unknown_user_looks_exactly_like_wrong_password(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut client = WireClient::connect(&url).await?;
    client.register("carol", "carol's password").await?;

    let wrong = client
        .login_attempt("carol", "not carol's password")
        .await?;
    let unknown = client.login_attempt("mallory", "carol's password").await?;

    ensure!(
        !wrong.opaque_response.is_empty(),
        "a known user's LoginResponse carries an OPAQUE response"
    );
    ensure!(
        wrong.opaque_response.len() == unknown.opaque_response.len(),
        "LoginResponse for an unknown user has {} OPAQUE bytes, for a known user {}",
        unknown.opaque_response.len(),
        wrong.opaque_response.len()
    );
    // The frames differ only in the random login_id (a varint, so its
    // length may differ by a byte or two between any two logins).
    let frame_delta = wrong
        .response_frame_len
        .abs_diff(unknown.response_frame_len);
    ensure!(
        frame_delta <= 9,
        "LoginResponse frames differ in length by {frame_delta} bytes"
    );
    ensure!(
        wrong.login_id != 0 && unknown.login_id != 0,
        "login ids are never 0"
    );

    let (wrong_code, wrong_message) = failure_code(&wrong)?;
    let (unknown_code, unknown_message) = failure_code(&unknown)?;
    ensure!(
        wrong_code == ErrorCode::AuthFailed && unknown_code == ErrorCode::AuthFailed,
        "expected AuthFailed for both, got {wrong_code} (wrong password) and {unknown_code} (unknown user)"
    );
    ensure!(
        wrong_message == unknown_message,
        "failure texts differ: {wrong_message:?} vs {unknown_message:?}"
    );

    // The unknown name really is unregistered: registering it works.
    let mut other = WireClient::connect(&url).await?;
    other.register("mallory", "now she exists").await?;
    Ok(())
}

async fn taken_username_is_refused(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut first = WireClient::connect(&url).await?;
    let account = first.register("dave", "first dave").await?;

    for spelling in ["dave", "DAVE", "Dave"] {
        let mut second = WireClient::connect(&url).await?;
        match second.register(spelling, "second dave").await {
            Err(WireClientError::Refused {
                code: ErrorCode::UsernameTaken,
                ..
            }) => {}
            other => bail!("registering {spelling:?} again: expected UsernameTaken, got {other:?}"),
        }
    }
    // The original owner is untouched.
    let login = first.login("dave", "first dave").await?;
    ensure!(login.account == account, "the first dave lost the name");
    let mut intruder = WireClient::connect(&url).await?;
    let attempt = intruder.login_attempt("dave", "second dave").await?;
    ensure!(
        attempt.outcome.is_err(),
        "the refused registration's password must not log in"
    );
    Ok(())
}

async fn token_lifetime_follows_the_flag_and_expired_tokens_fail(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&["--token-ttl-days", "1"]).await?;
    let url = relay.ws_url();
    let session = Session::sign_up(&url, "erin", "erin's password").await?;

    let mut client = WireClient::connect(&url).await?;
    let before = now_secs();
    let login = client.login("erin", "erin's password").await?;
    let after = now_secs();
    ensure!(
        (before + 86_400..=after + 86_400 + 1).contains(&login.expires_at),
        "--token-ttl-days 1: expires_at {} is not one day after the login ({before}..{after})",
        login.expires_at
    );
    client.authenticate(&login.token).await?;
    client.close().await;

    // A day cannot pass in a test: move the stored expiry into the past, as
    // the passage of time would. The relay keeps only a hash, so it is found
    // by account.
    let store = backend.store(&relay).await?;
    let moved = store
        .execute_with_bytes(
            "UPDATE tokens SET expires_at = 1 WHERE account_id = $1",
            session.account.as_bytes(),
        )
        .await?;
    store.close().await;
    ensure!(
        moved == 2,
        "expected two stored tokens (two logins), found {moved}"
    );

    let code = authenticate_refusal(&url, &login.token).await?;
    ensure!(
        code == ErrorCode::TokenExpired,
        "expired token: expected TokenExpired, got {code}"
    );
    // Logging in again yields a working token.
    let fresh = Session::log_in(&url, "erin", "erin's password").await?;
    ensure!(
        fresh.account == session.account,
        "a new login is the same account"
    );
    Ok(())
}

async fn logout_revokes_this_token_only(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut session = Session::sign_up(&url, "frank", "frank's password").await?;
    let mut spare = WireClient::connect(&url).await?;
    let other = spare.login("frank", "frank's password").await?;
    spare.close().await;

    let reply = session
        .client
        .request(Request::Logout { everywhere: false })
        .await?;
    ensure!(reply == Response::Ok, "Logout answered {reply:?}");
    session
        .client
        .read_until_closed(WAIT)
        .await
        .context("the relay must close the connection after Logout")?;

    let code = authenticate_refusal(&url, &session.token).await?;
    ensure!(
        is_token_refusal(code),
        "logged-out token: expected AuthFailed, got {code}"
    );
    // The other login's token is unaffected.
    let mut client = WireClient::connect(&url).await?;
    let address = client.authenticate(&other.token).await?;
    ensure!(address.account == session.account, "wrong account");
    Ok(())
}

async fn logout_everywhere_revokes_every_token(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut session = Session::sign_up(&url, "grace", "grace's password").await?;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let mut spare = WireClient::connect(&url).await?;
        tokens.push(spare.login("grace", "grace's password").await?.token);
        spare.close().await;
    }
    // Someone else's token must survive.
    let bystander = Session::sign_up(&url, "heidi", "heidi's password").await?;

    let reply = session
        .client
        .request(Request::Logout { everywhere: true })
        .await?;
    ensure!(
        reply == Response::Ok,
        "Logout{{everywhere}} answered {reply:?}"
    );
    session
        .client
        .read_until_closed(WAIT)
        .await
        .context("the relay must close the connection after Logout")?;

    tokens.push(session.token.clone());
    for (i, token) in tokens.iter().enumerate() {
        let code = authenticate_refusal(&url, token).await?;
        ensure!(
            is_token_refusal(code),
            "token {i} after Logout{{everywhere}}: expected AuthFailed, got {code}"
        );
    }
    let mut client = WireClient::connect(&url).await?;
    client
        .authenticate(&bystander.token)
        .await
        .context("another account's token must still work")?;
    Ok(())
}

async fn requests_before_authentication_are_refused(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut client = WireClient::connect(&url).await?;
    let nobody = Address::primary(AccountId::from_bytes([7; 16]));
    let requests = [
        Request::PreKeyCount,
        Request::Send {
            messages: vec![OutgoingEnvelope {
                to: nobody,
                envelope: b"sealed".to_vec(),
            }],
        },
        Request::Ack { seqs: vec![1] },
        Request::Ephemeral {
            to: nobody,
            payload: b"typing".to_vec(),
        },
        Request::DeleteAccount,
        Request::Logout { everywhere: true },
    ];
    for request in requests {
        let shown = format!("{request:?}");
        let reply = client.request(request).await?;
        ensure!(
            matches!(
                reply,
                Response::Error {
                    code: ErrorCode::NotAuthenticated,
                    ..
                }
            ),
            "{shown} before Authenticate: expected NotAuthenticated, got {reply:?}"
        );
    }
    // A made-up token is refused, and Ping works throughout.
    let forged = umbra_protocol::wire::SessionToken::from_bytes([42; 32]);
    let reply = client
        .request(Request::Authenticate {
            token: forged,
            device: DeviceId::PRIMARY,
        })
        .await?;
    ensure!(
        matches!(
            reply,
            Response::Error {
                code: ErrorCode::AuthFailed,
                ..
            }
        ),
        "a forged token: expected AuthFailed, got {reply:?}"
    );
    ensure!(client.request(Request::Ping).await? == Response::Pong);
    Ok(())
}

async fn rename_keeps_the_account_and_password(backend: Backend) -> anyhow::Result<()> {
    // The name quarantine is off so the old name can be re-registered at the
    // end; relay_names.rs tests the quarantine itself.
    let relay = backend
        .start_relay(&["--name-quarantine-days", "0"])
        .await?;
    let url = relay.ws_url();
    let mut ivan = Session::sign_up(&url, "ivan", "ivan's password").await?;
    let _judy = Session::sign_up(&url, "judy", "judy's password").await?;

    let taken = ivan
        .client
        .request(Request::Rename {
            new_username: Username::parse("judy")?,
        })
        .await?;
    ensure!(
        matches!(
            taken,
            Response::Error {
                code: ErrorCode::UsernameTaken,
                ..
            }
        ),
        "renaming to a taken name: expected UsernameTaken, got {taken:?}"
    );

    let renamed = ivan
        .client
        .request_ok(Request::Rename {
            new_username: Username::parse("ivan.the.renamed")?,
        })
        .await?;
    ensure!(
        renamed
            == Response::Resolved {
                username: Username::parse("ivan.the.renamed")?,
                account: ivan.account,
                identity: None,
            },
        "Rename answered {renamed:?}"
    );

    // The password is bound to the account id, not the name.
    let mut client = WireClient::connect(&url).await?;
    let login = client.login("ivan.the.renamed", "ivan's password").await?;
    ensure!(
        login.account == ivan.account,
        "the renamed login is another account"
    );
    let old = client.login_attempt("ivan", "ivan's password").await?;
    ensure!(
        matches!(
            old.outcome,
            Err(WireClientError::Refused {
                code: ErrorCode::AuthFailed,
                ..
            })
        ),
        "the old name must no longer log in: {:?}",
        old.outcome
    );
    // The old name is free for someone else (with the quarantine off).
    let mut other = WireClient::connect(&url).await?;
    let newcomer = other.register("ivan", "a new ivan").await?;
    ensure!(
        newcomer != ivan.account,
        "the freed name resolved to the old account"
    );
    Ok(())
}
