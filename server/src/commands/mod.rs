//! Request → action: what the relay does for each client request on one
//! connection, and what the connection must do afterwards.
//!
//! This is the relay's policy, one file per area: [`auth`] (OPAQUE
//! registration and login, tokens, logout), [`password`] (password change), [`directory`] (published keys,
//! one-time prekeys, X25519 and ML-KEM, classical and hybrid bundles,
//! username lookups), [`messaging`] (send, ack,
//! ephemeral frames), [`account`] (rename, deletion), [`devices`] (device
//! lists, listing and removing devices), [`link`] (the link rendezvous
//! of a new device) and [`kt`] (key-transparency heads and proofs). Handlers return
//! `Result<Response, Refusal>`; a [`Refusal`] is the one way to answer with
//! an error, so store and OPAQUE failures propagate with `?` and are logged
//! in one place. Transport concerns (reading, writing, pings, closing) live
//! in `connection`; storage in `store`.
//!
//! Must never: reveal during login whether a username exists; answer a Send
//! before its batch has committed; log envelope bytes, tokens, passwords,
//! usernames or a sender next to a recipient; send a store error's text to
//! a client.

pub mod account;
pub mod auth;
pub mod devices;
pub mod directory;
pub mod kt;
pub mod link;
pub mod messaging;
pub mod password;
mod refusal;

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Duration;

use umbra_wire::{AccountRef, Address, ErrorCode, Request, Response};

use crate::app::AppState;
use crate::auth::phase::{AuthPhase, PhaseError};
use crate::metrics::Metrics;
use crate::store::group_commit::SubmittedUnder;
use directory::BundleKind;

pub use crate::auth::phase::Authenticated;
pub use refusal::Refusal;

/// `retry_after_secs` on an `Internal` caused by the database (unreachable,
/// or failed mid-commit): a PostgreSQL restart or failover takes seconds,
/// so clients spacing their retries by at least this much do not hammer a
/// recovering database, and a client retries soon after it is back.
pub const STORE_RETRY_AFTER_SECS: u32 = 1;

/// Longest the relay works on one request before answering `Internal`
/// (outcome unknown, `retry_after_secs: 1`) anyway. A database that stops
/// answering on an open connection (a frozen host, a network partition: no
/// reset, so TCP waits minutes) bounds nothing by itself: PostgreSQL's
/// `statement_timeout` is enforced by the server, which is the part that is
/// stuck, and the pool's acquire timeout (1 s) only covers getting a
/// connection. So the relay keeps its own client-side deadline. It is
/// longer than the acquire timeout (a refused or lost connection is then
/// reported as what it is, a definite failure) plus the few millisecond
/// statements of a request, and short enough that every request that needs
/// the database is answered within 2 s (PROTOCOL.md 9.6). The abandoned
/// work's connection is not reused until it answers again: sqlx pings a
/// connection dropped mid-statement before returning it to the pool and
/// closes it if the ping fails.
pub const REQUEST_DEADLINE: Duration = Duration::from_millis(1500);

/// [`REQUEST_DEADLINE`] for `DeleteAccount`, whose deletes are bulk
/// statements (a full queue of 10,000 envelopes, a blob quota of chunks)
/// run under the store's bulk statement timeout: that timeout plus margin.
pub const BULK_REQUEST_DEADLINE: Duration =
    Duration::from_secs(crate::store::postgres::BULK_STATEMENT_TIMEOUT.as_secs() + 5);

/// The bound on each store call a connection makes on its own loop (the
/// periodic token re-check; the announcement and the prekey count after
/// `Authenticate`, one after the other): a request read next waits behind
/// them, so with [`REQUEST_DEADLINE`] it is still answered within 2 s of
/// arriving. Each is a single-row statement of a millisecond; one that
/// times out is retried (the re-check, 5 s later) or only logged.
pub const CONNECTION_STORE_DEADLINE: Duration = Duration::from_millis(250);

/// What the client is told when the relay cannot know whether the request
/// took effect (PROTOCOL.md 9.6, `Internal`).
const OUTCOME_UNKNOWN: &str = "the relay's database did not confirm the request: it may have \
     been carried out; repeating it is safe";
pub use auth::UNKNOWN_USER_CREDENTIAL_PREFIX;

/// The authentication state of one connection (not to be confused with a
/// ratchet session, which the relay never sees).
#[derive(Debug)]
pub struct ConnectionAuth {
    /// The connection's id in the hub.
    pub connection: u64,
    /// The client's IP, for rate limits.
    pub peer: IpAddr,
    /// Where the connection stands; holds a half-finished exchange, if any.
    phase: AuthPhase,
    /// A password change started on this (authenticated) connection.
    password_change: Option<password::ChangingPassword>,
    /// The link ticket this (unauthenticated) connection joined (15.6).
    joined: Option<link::Joined>,
}

impl ConnectionAuth {
    /// A new connection: nothing started.
    pub fn new(connection: u64, peer: IpAddr) -> Self {
        ConnectionAuth {
            connection,
            peer,
            phase: AuthPhase::Fresh,
            password_change: None,
            joined: None,
        }
    }

    /// The identity, once `Authenticate` succeeded.
    pub fn authenticated(&self) -> Option<Authenticated> {
        self.phase.authenticated().copied()
    }

    /// Until when a joined link ticket exempts this connection from the
    /// authentication deadline (Unix seconds; PROTOCOL.md 9.10, 15.6).
    pub fn link_joined_until(&self) -> Option<u64> {
        self.joined.map(|joined| joined.expires_at)
    }

    /// A password change replaced the token this connection authenticated
    /// with: it acts under `token` until `expires_at` from now on.
    fn retoken(&mut self, token: crate::auth::tokens::TokenHash, expires_at: u64) {
        if let AuthPhase::Authenticated(me) = &mut self.phase {
            me.token = token;
            me.expires_at = expires_at;
        }
    }

    /// Runs one consuming transition of the phase and keeps its result.
    fn transition<T>(
        &mut self,
        step: impl FnOnce(AuthPhase) -> (AuthPhase, Result<T, PhaseError>),
    ) -> Result<T, Refusal> {
        let (next, result) = step(std::mem::take(&mut self.phase));
        self.phase = next;
        result.map_err(Refusal::from)
    }
}

/// What the connection does after sending the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep reading.
    Continue,
    /// Register with the hub and start delivery for this address.
    StartDelivery(Address),
    /// Close the connection without a `Closing` frame (the reply said it all).
    Hangup,
    /// Send `Closing{code, reason}` after the reply, then close.
    Close(ErrorCode, &'static str),
}

/// The reply to one request and what follows it.
#[derive(Debug)]
pub struct Reply {
    /// Sent back with the request's id.
    pub response: Response,
    /// What the connection does next.
    pub after: After,
}

impl Reply {
    fn then(response: Response, after: After) -> Self {
        Reply { response, after }
    }
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        Reply::then(response, After::Continue)
    }
}

/// What a handler produces.
type Handled<T = Response> = Result<T, Refusal>;

/// Handles one decoded, limit-checked request.
pub async fn handle(state: &AppState, conn: &mut ConnectionAuth, request: Request) -> Reply {
    let kind = request.kind();
    let deadline = if matches!(request, Request::DeleteAccount) {
        BULK_REQUEST_DEADLINE
    } else {
        state.limits.request_deadline
    };
    let handled = tokio::time::timeout(deadline, dispatch(state, conn, request))
        .await
        .unwrap_or_else(|_| {
            Err(Refusal::outcome_unknown(format!(
                "no answer from the store within {} ms",
                deadline.as_millis()
            )))
        });
    match handled {
        Ok(reply) => reply,
        Err(refusal) => {
            if let Some(cause) = &refusal.cause {
                tracing::error!(request = kind, %cause, "request failed inside the relay");
            } else {
                // By kind only: the request's arguments (names, ids) stay out.
                tracing::info!(
                    request = kind,
                    code = refusal.code.name(),
                    "request refused"
                );
            }
            if refusal.code == ErrorCode::RateLimited {
                Metrics::inc(&state.metrics.rate_limited);
            }
            refusal.into_response().into()
        }
    }
}

async fn dispatch(state: &AppState, conn: &mut ConnectionAuth, request: Request) -> Handled<Reply> {
    if matches!(request, Request::Ping) {
        return Ok(Response::Pong.into());
    }
    // The joiner of a link ticket posts and fetches before it has a token
    // (15.6); an authenticated connection does so as the creator, below.
    if conn.authenticated().is_none() {
        match request {
            Request::LinkPost { ticket, payload } => {
                return Ok(link::post(state, conn, ticket, &payload).await?.into())
            }
            Request::LinkFetch { ticket, after } => {
                return Ok(checked(link::fetch(state, conn, ticket, after).await?)?.into())
            }
            _ => {}
        }
    }
    match (conn.authenticated(), request.is_pre_authentication()) {
        (None, true) => pre_auth(state, conn, request).await,
        (None, false) => Err(Refusal::new(
            ErrorCode::NotAuthenticated,
            "authenticate first",
        )),
        (Some(_), true) => Err(Refusal::new(
            ErrorCode::AlreadyAuthenticated,
            "connection is already authenticated",
        )),
        (Some(me), false) => authed(state, conn, me, request).await,
    }
}

async fn pre_auth(state: &AppState, conn: &mut ConnectionAuth, request: Request) -> Handled<Reply> {
    let response = match request {
        Request::RegisterStart {
            username,
            opaque_request,
        } => auth::register_start(state, conn, username, &opaque_request).await?,
        Request::RegisterFinish {
            username,
            opaque_upload,
        } => auth::register_finish(state, conn, username, &opaque_upload).await?,
        Request::LoginStart {
            username,
            opaque_request,
        } => auth::login_start(state, conn, username, &opaque_request).await?,
        Request::LoginFinish {
            login_id,
            opaque_finalization,
        } => auth::login_finish(state, conn, login_id, &opaque_finalization).await?,
        Request::Authenticate { token, device } => {
            let address = auth::authenticate(state, conn, &token, device).await?;
            return Ok(Reply::then(
                Response::Authenticated { address },
                After::StartDelivery(address),
            ));
        }
        Request::LinkJoin { ticket } => link::join(state, conn, ticket).await?,
        Request::LoginEnrol => auth::login_enrol(state, conn).await?,
        Request::LoginDevice { device } => auth::login_device(state, conn, device).await?,
        // `is_pre_authentication` admits only the arms above.
        _ => {
            return Err(Refusal::new(
                ErrorCode::AlreadyAuthenticated,
                "not valid before authentication",
            ))
        }
    };
    Ok(response.into())
}

async fn authed(
    state: &AppState,
    conn: &mut ConnectionAuth,
    me: Authenticated,
    request: Request,
) -> Handled<Reply> {
    let address = me.address;
    // A Send's or Ack's token is re-checked by the group committer, right
    // before the transaction that would store it (`group_commit`).
    let under = SubmittedUnder {
        token: me.token.0,
        owner: address,
    };
    if changes_state(&request) && !matches!(request, Request::Send { .. } | Request::Ack { .. }) {
        // Catches a revocation whose cross-node notice this node missed, and
        // an expiry the connection's timer has not acted on yet.
        let check = auth::check_token(state, &me).await?;
        if let Some(reason) = check.closing_reason() {
            return Ok(Reply::then(
                Response::error(ErrorCode::TokenExpired, reason),
                After::Close(ErrorCode::TokenExpired, reason),
            ));
        }
    }
    let response = match request {
        Request::Logout { everywhere } => {
            let response = auth::logout(state, conn, me, everywhere).await?;
            return Ok(Reply::then(response, After::Hangup));
        }
        Request::DeleteAccount => {
            let response = account::delete(state, conn, address).await?;
            return Ok(Reply::then(response, After::Hangup));
        }
        Request::Rename { new_username } => account::rename(state, address, new_username).await?,
        Request::PublishKeys {
            identity,
            signed_prekey,
            last_resort,
        } => {
            directory::publish_keys(
                state,
                address,
                &identity,
                &signed_prekey,
                last_resort.as_ref(),
            )
            .await?
        }
        Request::UploadPreKeys { prekeys } => {
            directory::upload_prekeys(state, address, &prekeys).await?
        }
        Request::PreKeyCount => directory::prekey_count(state, address).await?,
        Request::FetchBundle { target } => {
            directory::fetch(state, address, target, None, BundleKind::Classical).await?
        }
        Request::UploadKemPreKeys {
            last_resort,
            one_time,
        } => directory::upload_kem_prekeys(state, address, last_resort, one_time).await?,
        Request::KemPreKeyCount => directory::kem_prekey_count(state, address).await?,
        // HybridBundle has response limits (9.9: its KEM keys' length).
        Request::FetchHybridBundle { account, device } => checked(
            directory::fetch(
                state,
                address,
                AccountRef::Account(account),
                device,
                BundleKind::Hybrid,
            )
            .await?,
        )?,
        Request::KtHead { known, entry_of } => kt::head(state, address, known, entry_of).await?,
        Request::KtLookup { label } => kt::lookup(state, address, label).await?,
        Request::KtHistory { label, first } => kt::history(state, address, label, first).await?,
        Request::ResolveUsername { username } => {
            directory::resolve_username(state, address, username).await?
        }
        Request::Send { messages } => {
            return closing_if_refused(messaging::send(state, address, under, messages).await)
        }
        Request::Ack { seqs } => {
            return closing_if_refused(messaging::ack(state, address, under, seqs).await)
        }
        Request::Ephemeral { to, payload } => messaging::ephemeral(state, address, to, payload)?,
        Request::PublishDeviceList { list } => devices::publish_list(state, address, &list).await?,
        Request::FetchDeviceList { account } => {
            checked(devices::fetch_list(state, address, account).await?)?
        }
        Request::ListDevices => checked(devices::list(state, address).await?)?,
        Request::RemoveDevice { device } => devices::remove(state, address, device).await?,
        Request::FetchDeviceBundle { account, device } => {
            devices::fetch_bundle(state, address, account, device).await?
        }
        Request::LinkCreate => link::create(state, address).await?,
        Request::LinkPost { ticket, payload } => link::post(state, conn, ticket, &payload).await?,
        Request::LinkFetch { ticket, after } => {
            checked(link::fetch(state, conn, ticket, after).await?)?
        }
        Request::LinkEnrol { ticket } => link::enrol(state, address, ticket).await?,
        Request::PasswordChangeStart {
            credential_request,
            registration_request,
        } => password::start(state, conn, me, &credential_request, &registration_request).await?,
        Request::PasswordChangeFinish {
            change_id,
            credential_finalization,
            registration_upload,
        } => {
            password::finish(
                state,
                conn,
                me,
                change_id,
                &credential_finalization,
                &registration_upload,
            )
            .await?
        }
        // Pre-authentication requests and Ping were routed before this point.
        _ => {
            return Err(Refusal::new(
                ErrorCode::AlreadyAuthenticated,
                "connection is already authenticated",
            ))
        }
    };
    Ok(response.into())
}

/// The relay checks the limits of what it answers before sending it
/// (PROTOCOL.md 9.9, "Response limits"): one that breaks them is its bug.
fn checked(response: Response) -> Handled {
    response
        .check_limits()
        .map_err(|e| Refusal::internal(format!("answer over its limits: {e}")))?;
    Ok(response)
}

/// A Send or Ack the committer refused for its token closes the connection,
/// as the re-check before the other state-changing requests does.
fn closing_if_refused(handled: Handled) -> Handled<Reply> {
    match handled {
        Err(refusal) if refusal.code == ErrorCode::TokenExpired => {
            let reason = match refusal.reason {
                Cow::Borrowed(reason) => reason,
                Cow::Owned(_) => auth::TOKEN_REVOKED_REASON,
            };
            Ok(Reply::then(
                Response::error(ErrorCode::TokenExpired, reason),
                After::Close(ErrorCode::TokenExpired, reason),
            ))
        }
        other => other.map(Into::into),
    }
}

/// Requests whose effect outlives the connection or reaches another account,
/// so a revoked or expired token must not get them through: the token is
/// looked up again before each. (Reads, pings, ephemeral frames and logout
/// are not re-checked; the connection's timer and the cross-node notices
/// bound how long they keep working.)
fn changes_state(request: &Request) -> bool {
    matches!(
        request,
        Request::Send { .. }
            | Request::Ack { .. }
            | Request::PublishKeys { .. }
            | Request::UploadPreKeys { .. }
            | Request::FetchBundle { .. }
            // The KEM prekeys of issue 14, as their X25519 counterparts.
            | Request::UploadKemPreKeys { .. }
            | Request::FetchHybridBundle { .. }
            | Request::Rename { .. }
            | Request::DeleteAccount
            // A revoked connection must not change its owner's password.
            | Request::PasswordChangeStart { .. }
            | Request::PasswordChangeFinish { .. }
            // A revoked connection must not revoke its owner's fresh tokens.
            | Request::Logout { everywhere: true }
            // The devices of 15.4-15.6: a removed or revoked device must not
            // publish a list, remove a device, claim a prekey or link one.
            | Request::PublishDeviceList { .. }
            | Request::RemoveDevice { .. }
            | Request::FetchDeviceBundle { .. }
            | Request::LinkCreate
            | Request::LinkPost { .. }
            | Request::LinkEnrol { .. }
    )
}
