//! Request → action: what the relay does for each client request on one
//! connection, and what the connection must do afterwards.
//!
//! This is the relay's policy in one place: which requests need
//! authentication, rate limits, the OPAQUE steps, token issue and checks, the
//! key directory, relaying with per-recipient outcomes, account changes.
//! Transport concerns (reading, writing, pings, closing) live in
//! `connection`; storage in `store`.
//!
//! Must never: reveal during login whether a username exists; answer a Send
//! before its batch has committed; log envelope bytes, tokens, passwords or
//! a sender next to a recipient.

use std::net::IpAddr;

use rand::rngs::OsRng;
use rand::RngCore;
use umbra_protocol::wire::{
    AccountId, AccountRef, Address, DeviceId, ErrorCode, OutgoingEnvelope, PreKeyWire, Request,
    Response, SendOutcome, SessionToken, SignedPreKeyWire, Username,
};

use crate::app::AppState;
use crate::auth::opaque::{LoginState, OpaqueError, OpaqueServer};
use crate::auth::tokens::{self, unix_now, TokenHash};
use crate::directory::{check_prekey_batch, verify_published_keys};
use crate::metrics::Metrics;
use crate::rate_limit::RetryAfter;
use crate::store::group_commit::GroupCommitError;
use crate::store::{EnqueueRejection, NewMessage, StoreError, TokenStatus};

/// Prefix of the OPAQUE credential identifier used for usernames that do
/// not exist, so their fake records are stable per name and can never equal
/// a real account's identifier (which is the 16-byte account id).
pub const UNKNOWN_USER_CREDENTIAL_PREFIX: &[u8] = b"umbra/v1/relay/unknown-user:";

/// A login between `LoginStart` and `LoginFinish`.
pub struct PendingLogin {
    state: LoginState,
    /// `None` for an unknown username (fake record): finish always fails.
    account: Option<AccountId>,
    /// Only the connection that started a login may finish it.
    connection: u64,
}

/// A registration between `RegisterStart` and `RegisterFinish`.
pub struct PendingRegistration {
    username: Username,
    account: AccountId,
}

/// The authentication state of one connection.
#[derive(Debug)]
pub struct Session {
    /// The connection's id in the hub.
    pub connection: u64,
    /// The client's IP, for rate limits.
    pub peer: IpAddr,
    /// Set once `Authenticate` succeeded.
    pub authenticated: Option<Authenticated>,
}

/// What an authenticated connection acts as.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    /// The device.
    pub address: Address,
    /// The token it presented (hash), for `Logout`.
    pub token: TokenHash,
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
    fn ok(response: Response) -> Self {
        Reply {
            response,
            after: After::Continue,
        }
    }

    fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Reply::ok(Response::error(code, message))
    }

    fn rate_limited(state: &AppState, RetryAfter(secs): RetryAfter) -> Self {
        Metrics::inc(&state.metrics.rate_limited);
        Reply::ok(Response::Error {
            code: ErrorCode::RateLimited,
            message: "too many requests".into(),
            retry_after_secs: Some(secs),
        })
    }

    fn internal(error: &StoreError, what: &'static str) -> Self {
        tracing::error!(%error, operation = what, "store operation failed");
        Reply::error(ErrorCode::Internal, "internal error; retry later")
    }
}

/// Handles one decoded, limit-checked request.
pub async fn handle(state: &AppState, session: &mut Session, request: Request) -> Reply {
    if matches!(request, Request::Ping) {
        return Reply::ok(Response::Pong);
    }
    match (session.authenticated, request.is_pre_authentication()) {
        (None, true) => pre_auth(state, session, request).await,
        (None, false) => Reply::error(ErrorCode::NotAuthenticated, "authenticate first"),
        (Some(_), true) => Reply::error(
            ErrorCode::AlreadyAuthenticated,
            "connection is already authenticated",
        ),
        (Some(auth), false) => authed(state, session, auth, request).await,
    }
}

async fn pre_auth(state: &AppState, session: &mut Session, request: Request) -> Reply {
    match request {
        Request::RegisterStart {
            username,
            opaque_request,
        } => register_start(state, session, username, &opaque_request).await,
        Request::RegisterFinish {
            username,
            opaque_upload,
        } => register_finish(state, session, username, &opaque_upload).await,
        Request::LoginStart {
            username,
            opaque_request,
        } => login_start(state, session, username, &opaque_request).await,
        Request::LoginFinish {
            login_id,
            opaque_finalization,
        } => login_finish(state, session, login_id, &opaque_finalization).await,
        Request::Authenticate { token, device } => {
            authenticate(state, session, &token, device).await
        }
        // `is_pre_authentication` admits only the arms above.
        _ => Reply::error(
            ErrorCode::AlreadyAuthenticated,
            "not valid before authentication",
        ),
    }
}

/// Binds the connection to the token's device. An expired token that the
/// store still knows gets `TokenExpired` (log in again, nothing is wrong);
/// anything else that fails gets `AuthFailed`. The distinction reveals
/// nothing to a guesser: only the holder of a once-valid token can reach it.
async fn authenticate(
    state: &AppState,
    session: &mut Session,
    token: &SessionToken,
    device: DeviceId,
) -> Reply {
    let hash = TokenHash::of(token);
    let status = match state.store.token_status(&hash.0, unix_now()).await {
        Ok(status) => status,
        Err(e) => return Reply::internal(&e, "token_status"),
    };
    match status {
        TokenStatus::Valid(address) if address.device == device => {
            Metrics::inc(&state.metrics.auth_successes);
            session.authenticated = Some(Authenticated {
                address,
                token: hash,
            });
            Reply {
                response: Response::Authenticated { address },
                after: After::StartDelivery(address),
            }
        }
        TokenStatus::Expired(address) if address.device == device => {
            Metrics::inc(&state.metrics.auth_failures);
            Reply::error(ErrorCode::TokenExpired, "token expired; log in again")
        }
        TokenStatus::Valid(_) | TokenStatus::Expired(_) | TokenStatus::Unknown => {
            Metrics::inc(&state.metrics.auth_failures);
            Reply::error(
                ErrorCode::AuthFailed,
                "token unknown, revoked or for another device",
            )
        }
    }
}

async fn register_start(
    state: &AppState,
    session: &Session,
    username: Username,
    request: &[u8],
) -> Reply {
    if let Err(wait) = state
        .rate_limits
        .check_auth(session.peer, username.as_str())
    {
        return Reply::rate_limited(state, wait);
    }
    match state.store.account_by_username(&username).await {
        Ok(Some(_)) => return Reply::error(ErrorCode::UsernameTaken, "username is taken"),
        Ok(None) => {}
        Err(e) => return Reply::internal(&e, "account_by_username"),
    }
    // The account id is fixed now because it is the OPAQUE credential
    // identifier: the password keeps working across renames.
    let account = AccountId::random(&mut OsRng);
    let response = match state
        .opaque
        .registration_response(request, account.as_bytes())
    {
        Ok(r) => r,
        Err(_) => {
            return Reply::error(ErrorCode::BadFrame, "malformed OPAQUE registration request")
        }
    };
    if state
        .put_registration(
            session.connection,
            PendingRegistration { username, account },
        )
        .is_err()
    {
        return Reply::error(ErrorCode::Internal, "relay busy; retry later");
    }
    Reply::ok(Response::RegisterResponse {
        opaque_response: response,
    })
}

async fn register_finish(
    state: &AppState,
    session: &Session,
    username: Username,
    upload: &[u8],
) -> Reply {
    let pending = match state.take_registration(session.connection) {
        Ok(p) if p.username == username => p,
        _ => {
            return Reply::error(
                ErrorCode::UnknownExchange,
                "no registration in progress for this username",
            )
        }
    };
    let file = match OpaqueServer::finish_registration(upload) {
        Ok(f) => f,
        Err(_) => return Reply::error(ErrorCode::BadFrame, "malformed OPAQUE registration upload"),
    };
    match state
        .store
        .create_account(pending.account, &pending.username, &file)
        .await
    {
        Ok(()) => {
            Metrics::inc(&state.metrics.registrations);
            Reply::ok(Response::RegisterDone {
                account: pending.account,
            })
        }
        Err(StoreError::UsernameTaken) => {
            Reply::error(ErrorCode::UsernameTaken, "username is taken")
        }
        Err(e) => Reply::internal(&e, "create_account"),
    }
}

async fn login_start(
    state: &AppState,
    session: &Session,
    username: Username,
    request: &[u8],
) -> Reply {
    if let Err(wait) = state
        .rate_limits
        .check_auth(session.peer, username.as_str())
    {
        return Reply::rate_limited(state, wait);
    }
    let record = match state.store.account_by_username(&username).await {
        Ok(r) => r,
        Err(e) => return Reply::internal(&e, "account_by_username"),
    };
    let unknown_id = [UNKNOWN_USER_CREDENTIAL_PREFIX, username.as_str().as_bytes()].concat();
    let (credential_id, file, account) = match &record {
        Some(r) => (
            r.account.as_bytes().as_slice(),
            Some(&r.password_file),
            Some(r.account),
        ),
        None => (unknown_id.as_slice(), None, None),
    };
    let (response, login_state) =
        match state
            .opaque
            .login_start(&mut OsRng, file, request, credential_id)
        {
            Ok(pair) => pair,
            Err(OpaqueError::CorruptPasswordFile) => {
                tracing::error!("stored password file does not parse");
                return Reply::error(ErrorCode::Internal, "internal error");
            }
            Err(_) => {
                return Reply::error(ErrorCode::BadFrame, "malformed OPAQUE credential request")
            }
        };
    let login_id = loop {
        let id = OsRng.next_u64();
        if id != 0 {
            break id;
        }
    };
    let pending = PendingLogin {
        state: login_state,
        account,
        connection: session.connection,
    };
    if state.put_login(login_id, pending).is_err() {
        return Reply::error(ErrorCode::Internal, "relay busy; retry later");
    }
    Reply::ok(Response::LoginResponse {
        login_id,
        opaque_response: response,
    })
}

async fn login_finish(
    state: &AppState,
    session: &Session,
    login_id: u64,
    finalization: &[u8],
) -> Reply {
    let pending = match state.take_login(login_id) {
        Ok(p) if p.connection == session.connection => p,
        _ => {
            return Reply::error(
                ErrorCode::UnknownExchange,
                "no login in progress with this id",
            )
        }
    };
    let verified = OpaqueServer::login_finish(pending.state, finalization);
    let account = match (verified, pending.account) {
        (Ok(()), Some(account)) => account,
        _ => {
            Metrics::inc(&state.metrics.auth_failures);
            return Reply::error(ErrorCode::AuthFailed, "login failed");
        }
    };
    let issued = tokens::issue(&mut OsRng, unix_now(), state.limits.token_ttl);
    match state
        .store
        .insert_token(&issued.hash.0, Address::primary(account), issued.expires_at)
        .await
    {
        Ok(()) => {
            Metrics::inc(&state.metrics.auth_successes);
            Reply::ok(Response::LoginDone {
                token: issued.token,
                account,
                expires_at: issued.expires_at,
            })
        }
        Err(e) => Reply::internal(&e, "insert_token"),
    }
}

async fn authed(
    state: &AppState,
    session: &mut Session,
    auth: Authenticated,
    request: Request,
) -> Reply {
    let me = auth.address;
    match request {
        Request::Logout { everywhere } => {
            let result = if everywhere {
                state
                    .store
                    .delete_tokens_for_account(me.account)
                    .await
                    .map(|_| ())
            } else {
                state.store.delete_token(&auth.token.0).await.map(|_| ())
            };
            if let Err(e) = result {
                return Reply::internal(&e, "delete_token");
            }
            if everywhere {
                state.hub.close_account(
                    me.account,
                    Some(session.connection),
                    ErrorCode::TokenExpired,
                    "logged out everywhere",
                );
            }
            Reply {
                response: Response::Ok,
                after: After::Hangup,
            }
        }
        Request::PublishKeys {
            identity,
            signed_prekey,
            last_resort,
        } => publish_keys(state, me, &identity, &signed_prekey, last_resort.as_ref()).await,
        Request::UploadPreKeys { prekeys } => {
            if let Err(e) = check_prekey_batch(&prekeys) {
                return Reply::error(e.code(), e.to_string());
            }
            match state.store.add_one_time_prekeys(me, &prekeys).await {
                Ok(count) => prekey_count(state, count),
                Err(StoreError::TooManyPreKeys { limit, .. }) => Reply::error(
                    ErrorCode::TooManyPreKeys,
                    format!("at most {limit} one-time prekeys may be stored"),
                ),
                Err(e @ StoreError::PreKeyIdConflict { .. }) => {
                    Reply::error(ErrorCode::BadPreKey, e.to_string())
                }
                Err(e) => Reply::internal(&e, "add_one_time_prekeys"),
            }
        }
        Request::PreKeyCount => match state.store.one_time_prekey_count(me).await {
            Ok(count) => prekey_count(state, count),
            Err(e) => Reply::internal(&e, "one_time_prekey_count"),
        },
        Request::FetchBundle { target } => fetch_bundle(state, me, target).await,
        Request::ResolveUsername { username } => {
            if let Err(wait) = state.rate_limits.check_username_resolve(me.account) {
                return Reply::rate_limited(state, wait);
            }
            let account = match state.store.account_by_username(&username).await {
                Ok(Some(record)) => record.account,
                Ok(None) => {
                    return Reply::error(ErrorCode::UnknownUsername, "no account has this username")
                }
                Err(e) => return Reply::internal(&e, "account_by_username"),
            };
            // Lets a client notice a contact's new identity before sending
            // over an old session, without spending a one-time prekey.
            match state
                .store
                .published_identity(Address::primary(account))
                .await
            {
                Ok(identity) => Reply::ok(Response::Resolved {
                    username,
                    account,
                    identity,
                }),
                Err(e) => Reply::internal(&e, "published_identity"),
            }
        }
        Request::Send { messages } => send(state, messages).await,
        Request::Ack { seqs } => {
            let started = std::time::Instant::now();
            let acked = state.store.ack(me, &seqs).await;
            state.metrics.store_latency.observe(started.elapsed());
            match acked {
                Ok(n) => {
                    state
                        .metrics
                        .messages_acked
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    Reply::ok(Response::Ok)
                }
                Err(e) => Reply::internal(&e, "ack"),
            }
        }
        Request::Ephemeral { to, payload } => {
            if state.hub.send_ephemeral(to, payload) {
                Metrics::inc(&state.metrics.ephemeral_forwarded);
            }
            // The same answer whether or not it was delivered: presence is
            // not revealed through this reply.
            Reply::ok(Response::Ok)
        }
        Request::Rename { new_username } => {
            match state.store.rename_account(me.account, &new_username).await {
                Ok(()) => match state.store.published_identity(me).await {
                    Ok(identity) => Reply::ok(Response::Resolved {
                        username: new_username,
                        account: me.account,
                        identity,
                    }),
                    Err(e) => Reply::internal(&e, "published_identity"),
                },
                Err(StoreError::UsernameTaken) => {
                    Reply::error(ErrorCode::UsernameTaken, "username is taken")
                }
                Err(e) => Reply::internal(&e, "rename_account"),
            }
        }
        Request::DeleteAccount => match state.store.delete_account(me.account).await {
            Ok(_) => {
                state.hub.close_account(
                    me.account,
                    Some(session.connection),
                    ErrorCode::TokenExpired,
                    "account deleted",
                );
                Reply {
                    response: Response::Ok,
                    after: After::Hangup,
                }
            }
            Err(e) => Reply::internal(&e, "delete_account"),
        },
        // Pre-authentication requests and Ping were routed before this point.
        _ => Reply::error(
            ErrorCode::AlreadyAuthenticated,
            "connection is already authenticated",
        ),
    }
}

fn prekey_count(state: &AppState, count: u64) -> Reply {
    Reply::ok(Response::PreKeyCount {
        remaining: u32::try_from(count).unwrap_or(u32::MAX),
        low_water: state.limits.prekey_low_water,
    })
}

async fn publish_keys(
    state: &AppState,
    me: Address,
    identity: &[u8],
    signed_prekey: &SignedPreKeyWire,
    last_resort: Option<&PreKeyWire>,
) -> Reply {
    if let Err(e) = verify_published_keys(identity, signed_prekey) {
        return Reply::error(e.code(), e.to_string());
    }
    // One transaction: a failure leaves the previous keys whole, never a new
    // identity next to an old signed prekey.
    match state
        .store
        .put_keys(me, identity, signed_prekey, last_resort)
        .await
    {
        Ok(published) => {
            if published.identity_replaced {
                tracing::info!(
                    discarded = published.one_time_prekeys_discarded,
                    "identity replaced; the old identity's one-time prekeys were deleted"
                );
            }
            Reply::ok(Response::Ok)
        }
        Err(e @ StoreError::IdentityInUse) => Reply::error(ErrorCode::IdentityInUse, e.to_string()),
        Err(e) => Reply::internal(&e, "put_keys"),
    }
}

async fn fetch_bundle(state: &AppState, me: Address, target: AccountRef) -> Reply {
    if let Err(wait) = state.rate_limits.check_bundle_fetch(me.account) {
        return Reply::rate_limited(state, wait);
    }
    let account = match target {
        AccountRef::Account(id) => id,
        AccountRef::Username(name) => match state.store.account_by_username(&name).await {
            Ok(Some(record)) => record.account,
            Ok(None) => {
                return Reply::error(ErrorCode::UnknownUsername, "no account has this username")
            }
            Err(e) => return Reply::internal(&e, "account_by_username"),
        },
    };
    let device = Address::primary(account);
    let bundle = match state.store.claim_bundle(device).await {
        Ok(Some(bundle)) => bundle,
        Ok(None) => {
            return Reply::error(ErrorCode::NoPreKeys, "the account has not published keys")
        }
        Err(e) => return Reply::internal(&e, "claim_bundle"),
    };
    if bundle.one_time_prekey.is_some() {
        match state.store.one_time_prekey_count(device).await {
            Ok(left) if left < u64::from(state.limits.prekey_low_water) => {
                state
                    .hub
                    .prekeys_low(device, u32::try_from(left).unwrap_or(u32::MAX));
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot count prekeys after a claim"),
        }
    }
    Reply::ok(Response::Bundle(Box::new(bundle)))
}

async fn send(state: &AppState, messages: Vec<OutgoingEnvelope>) -> Reply {
    let now = unix_now();
    let expires_at = now.saturating_add(state.limits.message_ttl.as_secs());
    let mut results: Vec<Option<SendOutcome>> = Vec::with_capacity(messages.len());
    let mut batch = Vec::with_capacity(messages.len());
    for message in messages {
        let refusal = if message.envelope.len() > state.limits.max_envelope_bytes {
            Some(ErrorCode::EnvelopeTooLarge)
        } else if message.to.device != DeviceId::PRIMARY {
            // One device per account until multi-device lands.
            Some(ErrorCode::UnknownRecipient)
        } else {
            None
        };
        match refusal {
            Some(code) => results.push(Some(SendOutcome::Rejected { code })),
            None => {
                results.push(None);
                batch.push(NewMessage {
                    recipient: message.to,
                    envelope: message.envelope,
                    received_at: now,
                    expires_at,
                });
            }
        }
    }
    let expected = batch.len();
    let outcomes = if batch.is_empty() {
        Vec::new()
    } else {
        match state.enqueue(batch).await {
            Ok(outcomes) if outcomes.len() == expected => outcomes,
            Ok(_) => {
                tracing::error!("store returned the wrong number of enqueue outcomes");
                return Reply::error(ErrorCode::Internal, "internal error; retry later");
            }
            Err(GroupCommitError::Store(e)) => return Reply::internal(&e, "enqueue_batch"),
            Err(GroupCommitError::Stopped) => {
                return Reply::error(
                    ErrorCode::ShuttingDown,
                    "relay is shutting down; nothing was queued",
                )
            }
        }
    };
    let mut outcomes = outcomes.into_iter();
    let mut accepted = 0u64;
    let results = results
        .into_iter()
        .map(|slot| match slot {
            Some(done) => done,
            None => match outcomes.next() {
                Some(Ok(seq)) => {
                    accepted += 1;
                    SendOutcome::Accepted { seq }
                }
                Some(Err(EnqueueRejection::QueueFull)) => SendOutcome::Rejected {
                    code: ErrorCode::QueueFull,
                },
                Some(Err(EnqueueRejection::UnknownRecipient)) | None => SendOutcome::Rejected {
                    code: ErrorCode::UnknownRecipient,
                },
            },
        })
        .collect();
    state
        .metrics
        .messages_relayed
        .fetch_add(accepted, std::sync::atomic::Ordering::Relaxed);
    Reply::ok(Response::SendResult { results })
}
