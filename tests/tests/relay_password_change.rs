//! `PasswordChangeStart`/`PasswordChangeFinish` against the real relay, on
//! every store (PROTOCOL.md 11.3, "Password change"): after a change made
//! on node A the old password fails to log in on node B (and on A), the new
//! one works there, a token issued on B before the change no longer
//! authenticates (the changing session's own included), and the session that
//! made the change keeps working under the token `PasswordChanged` gave it. (One
//! device per account: a second live connection would replace the first,
//! so "another session" is a token; closing live connections of the account
//! is the `Logout{everywhere}` path relay_revocation covers.) A change without proof of the current password, or with a
//! finish that names no started change, changes nothing. On PostgreSQL A
//! and B are two `umbra-relay` processes on one database; on SQLite (one
//! node) they are the same process.
//!
//! Must never: wait on a sleep where a frame can be awaited, or skip
//! PostgreSQL silently (umbra-test-support fails under `CI=true`).

mod relay_support;

use anyhow::{bail, ensure, Context};
use relay_support::{on_every_store, Backend};
use umbra_e2e::wire_client::{WireClient, WireClientError};
use umbra_e2e::{Relay, StoreKind};
use umbra_protocol::wire::{ErrorCode, Request, Response, SessionToken, Username};
use umbra_test_support::opaque_flow::{
    decoy_finalization, PendingLogin, PendingRegistration, Stretch,
};

const OLD: &str = "correct horse battery staple";
const NEW: &str = "a different and longer passphrase";

on_every_store!(
    a_change_on_one_node_ends_the_old_password_and_the_other_tokens_on_every_node,
    a_change_without_the_current_password_changes_nothing,
    a_finish_that_names_no_started_change_changes_nothing,
    a_login_started_before_a_change_cannot_finish_after_it,
);

/// Two nodes on PostgreSQL, one on SQLite.
struct Nodes {
    a: Relay,
    b: Option<Relay>,
}

impl Nodes {
    async fn start(backend: &Backend) -> anyhow::Result<Nodes> {
        let a = backend.start_relay(&[]).await?;
        let b = match backend.name() {
            "postgres" => Some(backend.start_relay(&[]).await?),
            _ => None,
        };
        Ok(Nodes { a, b })
    }

    fn url_b(&self) -> String {
        self.b.as_ref().unwrap_or(&self.a).ws_url()
    }
}

/// A connection whose client runs the cheap KSF: the relay never runs it,
/// so only consistency between register, login and change matters here.
async fn connect(url: &str) -> anyhow::Result<WireClient> {
    Ok(WireClient::connect(url).await?.with_stretch(Stretch::Cheap))
}

async fn register(url: &str, name: &str) -> anyhow::Result<()> {
    let mut c = connect(url).await?;
    c.register(name, OLD).await?;
    c.close().await;
    Ok(())
}

/// Logs in without authenticating; returns the token.
async fn token(url: &str, name: &str, password: &str) -> anyhow::Result<SessionToken> {
    let mut c = connect(url).await?;
    let done = c.login(name, password).await?;
    c.close().await;
    Ok(done.token)
}

/// Logs in and authenticates; returns the connection and its token.
async fn session(
    url: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<(WireClient, SessionToken)> {
    let mut c = connect(url).await?;
    let done = c.login(name, password).await?;
    c.authenticate(&done.token).await?;
    Ok((c, done.token))
}

/// What `login` with `password` gets on `url`: `Ok` or the error code.
/// (For a wrong password the client-side OPAQUE step fails first; `login`
/// then still sends a decoy proof, so the relay's refusal is what comes back.)
async fn login_code(
    url: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<Result<(), ErrorCode>> {
    let mut c = connect(url).await?;
    let result = match c.login(name, password).await {
        Ok(_) => Ok(()),
        Err(WireClientError::Refused { code, .. }) => Err(code),
        Err(other) => return Err(other).context("a login ended without the relay's verdict"),
    };
    c.close().await;
    Ok(result)
}

/// Runs a whole change on `client`; returns the relay's answer to the finish.
/// When `old` is wrong the client cannot finish the login and sends a
/// well-formed decoy proof instead, so the relay's verdict is observed.
async fn change(client: &mut WireClient, old: &str, new: &str) -> anyhow::Result<Response> {
    let (login, credential_request) = PendingLogin::start(old.as_bytes())?;
    let (registration, registration_request) = PendingRegistration::start(new.as_bytes())?;
    let reply = client
        .request(Request::PasswordChangeStart {
            credential_request,
            registration_request,
        })
        .await?;
    let Response::PasswordChangeResponse {
        change_id,
        credential_response,
        registration_response,
    } = reply
    else {
        bail!("PasswordChangeStart answered {reply:?}");
    };
    let credential_finalization = match login.finish(&credential_response, Stretch::Cheap) {
        Ok(finalization) => finalization,
        Err(_) => decoy_finalization()?,
    };
    let registration_upload = registration.finish(&registration_response, Stretch::Cheap)?;
    Ok(client
        .request(Request::PasswordChangeFinish {
            change_id,
            credential_finalization,
            registration_upload,
        })
        .await?)
}

fn code_of(reply: &Response) -> Option<ErrorCode> {
    match reply {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

async fn a_change_on_one_node_ends_the_old_password_and_the_other_tokens_on_every_node(
    backend: Backend,
) -> anyhow::Result<()> {
    let nodes = Nodes::start(&backend).await?;
    let (url_a, url_b) = (nodes.a.ws_url(), nodes.url_b());
    register(&url_a, "alice").await?;
    // A token issued on node B before the change (one device per account:
    // a second live connection would replace the first, so it stays a token).
    let elsewhere_token = token(&url_b, "alice", OLD).await?;
    let (mut changer, changers_token) = session(&url_a, "alice", OLD).await?;

    let reply = change(&mut changer, OLD, NEW).await.context("the change")?;
    let Response::PasswordChanged { token: first, .. } = reply else {
        bail!("the change was refused: {reply:?}");
    };

    // Every token from before the change is revoked, the changing
    // session's own included (a stolen data dir may hold a copy of it).
    for old_token in [&elsewhere_token, &changers_token] {
        ensure_revoked(&url_b, old_token).await?;
    }

    ensure!(
        login_code(&url_b, "alice", OLD).await? == Err(ErrorCode::AuthFailed),
        "the old password still logs in on the other node"
    );
    ensure!(
        login_code(&url_a, "alice", OLD).await? == Err(ErrorCode::AuthFailed),
        "the old password still logs in on the node that changed it"
    );
    ensure!(
        login_code(&url_b, "alice", NEW).await? == Ok(()),
        "the new password must log in on the other node"
    );

    // The changing session is kept, under the new token, for a
    // state-changing request too (its token is re-checked before each).
    let reply = changer
        .request(Request::Rename {
            new_username: Username::parse("alice")?,
        })
        .await?;
    ensure!(
        matches!(reply, Response::Resolved { .. }),
        "the session that changed the password must keep working: {reply:?}"
    );
    // And it can change the password again, proving the new one.
    let reply = change(&mut changer, NEW, OLD).await?;
    let Response::PasswordChanged { token: second, .. } = reply else {
        bail!("a second change was refused: {reply:?}");
    };
    ensure!(second != first, "a change must issue a fresh token");
    ensure_revoked(&url_b, &first).await?;
    ensure!(login_code(&url_b, "alice", OLD).await? == Ok(()));
    // The token the change issued authenticates on the other node too (this
    // replaces the changing session: one device per account).
    let mut next = connect(&url_b).await?;
    next.authenticate(&second)
        .await
        .context("the token a change issued must authenticate")?;
    next.close().await;
    Ok(())
}

/// `Authenticate` with `token` on `url` is refused as revoked.
async fn ensure_revoked(url: &str, token: &SessionToken) -> anyhow::Result<()> {
    let mut c = connect(url).await?;
    match c.authenticate(token).await {
        Err(WireClientError::Refused {
            code: ErrorCode::AuthFailed,
            ..
        }) => {}
        other => bail!("a token from before the change must be revoked, got {other:?}"),
    }
    c.close().await;
    Ok(())
}

async fn a_change_without_the_current_password_changes_nothing(
    backend: Backend,
) -> anyhow::Result<()> {
    let nodes = Nodes::start(&backend).await?;
    let (url_a, url_b) = (nodes.a.ws_url(), nodes.url_b());
    register(&url_a, "bob").await?;
    let other_token = token(&url_b, "bob", OLD).await?;
    let (mut holder, _) = session(&url_a, "bob", OLD).await?;

    let reply = change(&mut holder, "not the password", NEW)
        .await
        .context("a change with a wrong current password")?;
    ensure!(
        code_of(&reply) == Some(ErrorCode::AuthFailed),
        "a change with a wrong current password must be AuthFailed: {reply:?}"
    );
    ensure!(login_code(&url_b, "bob", OLD).await? == Ok(()));
    ensure!(login_code(&url_b, "bob", NEW).await? == Err(ErrorCode::AuthFailed));
    // No session was revoked: the holder still answers a state-changing
    // request, and the other token still authenticates.
    let reply = holder
        .request(Request::Rename {
            new_username: Username::parse("bob")?,
        })
        .await?;
    ensure!(
        matches!(reply, Response::Resolved { .. }),
        "the session must survive a refused change: {reply:?}"
    );
    holder.close().await;
    let mut other = connect(&url_b).await?;
    other
        .authenticate(&other_token)
        .await
        .context("a token must survive a refused change")?;
    // A change needs an authenticated connection.
    let mut anonymous = connect(&url_a).await?;
    let (_, credential_request) = PendingLogin::start(OLD.as_bytes())?;
    let (_, registration_request) = PendingRegistration::start(NEW.as_bytes())?;
    let reply = anonymous
        .request(Request::PasswordChangeStart {
            credential_request,
            registration_request,
        })
        .await?;
    ensure!(
        code_of(&reply) == Some(ErrorCode::NotAuthenticated),
        "{reply:?}"
    );
    Ok(())
}

async fn a_finish_that_names_no_started_change_changes_nothing(
    backend: Backend,
) -> anyhow::Result<()> {
    let nodes = Nodes::start(&backend).await?;
    let url_a = nodes.a.ws_url();
    register(&url_a, "carol").await?;
    let (mut holder, _) = session(&url_a, "carol", OLD).await?;
    let (login, credential_request) = PendingLogin::start(OLD.as_bytes())?;
    let (registration, registration_request) = PendingRegistration::start(NEW.as_bytes())?;
    let Response::PasswordChangeResponse {
        change_id,
        credential_response,
        registration_response,
    } = holder
        .request(Request::PasswordChangeStart {
            credential_request,
            registration_request,
        })
        .await?
    else {
        bail!("PasswordChangeStart refused");
    };
    let credential_finalization = login.finish(&credential_response, Stretch::Cheap)?;
    let registration_upload = registration.finish(&registration_response, Stretch::Cheap)?;
    let wrong = Request::PasswordChangeFinish {
        change_id: change_id.wrapping_add(1).max(1),
        credential_finalization: credential_finalization.clone(),
        registration_upload: registration_upload.clone(),
    };
    let reply = holder.request(wrong).await?;
    ensure!(
        code_of(&reply) == Some(ErrorCode::UnknownExchange),
        "{reply:?}"
    );
    // The wrong finish ended the change: the right id no longer works either.
    let reply = holder
        .request(Request::PasswordChangeFinish {
            change_id,
            credential_finalization,
            registration_upload,
        })
        .await?;
    ensure!(
        code_of(&reply) == Some(ErrorCode::UnknownExchange),
        "{reply:?}"
    );
    ensure!(login_code(&url_a, "carol", OLD).await? == Ok(()));
    ensure!(login_code(&url_a, "carol", NEW).await? == Err(ErrorCode::AuthFailed));
    Ok(())
}

/// A login started under the old password and finished after the change
/// committed gets no token (PROTOCOL.md 11.3): the relay checked its proof
/// against the record read at `LoginStart`, and issues a token only if that
/// record is still the account's. Deterministic: the finish is sent only
/// once the change's `Ok` has arrived, on another node where there are two.
async fn a_login_started_before_a_change_cannot_finish_after_it(
    backend: Backend,
) -> anyhow::Result<()> {
    let nodes = Nodes::start(&backend).await?;
    let url_a = nodes.a.ws_url();
    let url_b = nodes.url_b();
    register(&url_a, "erin").await?;
    let mut thief = connect(&url_b).await?;
    let (login, opaque_request) = PendingLogin::start(OLD.as_bytes())?;
    let Response::LoginResponse {
        login_id,
        opaque_response,
    } = thief
        .request(Request::LoginStart {
            username: Username::parse("erin")?,
            opaque_request,
        })
        .await?
    else {
        bail!("LoginStart refused");
    };
    // The old password is right: the thief's proof verifies.
    let opaque_finalization = login.finish(&opaque_response, Stretch::Cheap)?;
    let (mut owner, _) = session(&url_a, "erin", OLD).await?;
    let reply = change(&mut owner, OLD, NEW).await?;
    ensure!(
        matches!(reply, Response::PasswordChanged { .. }),
        "the change was refused: {reply:?}"
    );
    let reply = thief
        .request(Request::LoginFinish {
            login_id,
            opaque_finalization,
        })
        .await?;
    ensure!(
        code_of(&reply) == Some(ErrorCode::UnknownExchange),
        "a login proven against the replaced record must get no token: {reply:?}"
    );
    ensure!(login_code(&url_b, "erin", OLD).await? == Err(ErrorCode::AuthFailed));
    ensure!(login_code(&url_b, "erin", NEW).await? == Ok(()));
    Ok(())
}

/// Proving the current password is a password guess: `PasswordChangeStart`
/// spends the account's login budgets (PROTOCOL.md 11.7), so a token holder
/// gets no more guesses than anyone. With a budget of one login per minute
/// per (name, source), the login that opened the session spent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_start_spends_the_login_budget() -> anyhow::Result<()> {
    let relay = tokio::task::spawn_blocking(|| {
        Relay::start_with(StoreKind::Sqlite, &["--auth-per-username-per-minute", "1"])
    })
    .await
    .context("starting the relay")?;
    let url = relay.ws_url();
    register(&url, "dave").await?;
    let (mut holder, _) = session(&url, "dave", OLD).await?;
    let (_, credential_request) = PendingLogin::start(OLD.as_bytes())?;
    let (_, registration_request) = PendingRegistration::start(NEW.as_bytes())?;
    let reply = holder
        .request(Request::PasswordChangeStart {
            credential_request,
            registration_request,
        })
        .await?;
    match reply {
        Response::Error {
            code: ErrorCode::RateLimited,
            retry_after_secs: Some(secs),
            ..
        } if secs >= 1 => {}
        other => bail!("a start past the login budget must be RateLimited with a wait: {other:?}"),
    }
    ensure!(
        login_code(&url, "dave", OLD).await? == Err(ErrorCode::RateLimited),
        "the refused start and the login share one budget"
    );
    Ok(())
}
