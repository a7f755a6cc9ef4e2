//! Registration, login, token authentication and logout.
//!
//! Must never: reveal during login whether a username exists (an unknown
//! name runs OPAQUE's fake-record path and fails exactly like a wrong
//! password); let one connection finish another's exchange; log a token,
//! a password message or a username.

use rand::rngs::OsRng;
use rand::RngCore;
use umbra_wire::{
    AccountId, Address, DeviceId, ErrorCode, Response, SessionToken, Username,
};

use super::{Authenticated, ConnectionAuth, Handled, Refusal};
use crate::app::AppState;
use crate::auth::opaque::{LoginState, OpaqueError, OpaqueServer};
use crate::auth::tokens::{self, unix_now, TokenHash};
use crate::metrics::Metrics;
use crate::store::TokenStatus;

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

/// Binds the connection to the token's device. An expired token that the
/// store still knows gets `TokenExpired` (log in again, nothing is wrong);
/// anything else that fails gets `AuthFailed`. The distinction reveals
/// nothing to a guesser: only the holder of a once-valid token can reach it.
pub(super) async fn authenticate(
    state: &AppState,
    conn: &mut ConnectionAuth,
    token: &SessionToken,
    device: DeviceId,
) -> Handled<Address> {
    let hash = TokenHash::of(token);
    match state.store.token_status(&hash.0, unix_now()).await? {
        TokenStatus::Valid(address) if address.device == device => {
            Metrics::inc(&state.metrics.auth_successes);
            conn.authenticated = Some(Authenticated {
                address,
                token: hash,
            });
            Ok(address)
        }
        TokenStatus::Expired(address) if address.device == device => {
            Metrics::inc(&state.metrics.auth_failures);
            Err(Refusal::new(
                ErrorCode::TokenExpired,
                "token expired; log in again",
            ))
        }
        TokenStatus::Valid(_) | TokenStatus::Expired(_) | TokenStatus::Unknown => {
            Metrics::inc(&state.metrics.auth_failures);
            Err(Refusal::new(
                ErrorCode::AuthFailed,
                "token unknown, revoked or for another device",
            ))
        }
    }
}

pub(super) async fn register_start(
    state: &AppState,
    conn: &ConnectionAuth,
    username: Username,
    request: &[u8],
) -> Handled {
    state.rate_limits.check_register(conn.peer)?;
    if state.store.account_by_username(&username).await?.is_some() {
        return Err(Refusal::new(ErrorCode::UsernameTaken, "username is taken"));
    }
    // The account id is fixed now because it is the OPAQUE credential
    // identifier: the password keeps working across renames.
    let account = AccountId::random(&mut OsRng);
    let response = state
        .opaque
        .registration_response(request, account.as_bytes())
        .map_err(|_| Refusal::new(ErrorCode::BadFrame, "malformed OPAQUE registration request"))?;
    state.put_registration(conn.connection, PendingRegistration { username, account })?;
    Ok(Response::RegisterResponse {
        opaque_response: response,
    })
}

pub(super) async fn register_finish(
    state: &AppState,
    conn: &ConnectionAuth,
    username: Username,
    upload: &[u8],
) -> Handled {
    let pending = match state.take_registration(conn.connection) {
        Ok(p) if p.username == username => p,
        _ => {
            return Err(Refusal::new(
                ErrorCode::UnknownExchange,
                "no registration in progress for this username",
            ))
        }
    };
    let file = OpaqueServer::finish_registration(upload)
        .map_err(|_| Refusal::new(ErrorCode::BadFrame, "malformed OPAQUE registration upload"))?;
    state
        .store
        .create_account(pending.account, &pending.username, &file)
        .await?;
    Metrics::inc(&state.metrics.registrations);
    Ok(Response::RegisterDone {
        account: pending.account,
    })
}

pub(super) async fn login_start(
    state: &AppState,
    conn: &ConnectionAuth,
    username: Username,
    request: &[u8],
) -> Handled {
    state.rate_limits.check_login(conn.peer, username.as_str())?;
    let record = state.store.account_by_username(&username).await?;
    let unknown_id = [UNKNOWN_USER_CREDENTIAL_PREFIX, username.as_str().as_bytes()].concat();
    let (credential_id, file, account) = match &record {
        Some(r) => (
            r.account.as_bytes().as_slice(),
            Some(&r.password_file),
            Some(r.account),
        ),
        None => (unknown_id.as_slice(), None, None),
    };
    let (response, login_state) = state
        .opaque
        .login_start(&mut OsRng, file, request, credential_id)
        .map_err(|e| match e {
            OpaqueError::Malformed => {
                Refusal::new(ErrorCode::BadFrame, "malformed OPAQUE credential request")
            }
            other => other.into(),
        })?;
    let login_id = loop {
        let id = OsRng.next_u64();
        if id != 0 {
            break id;
        }
    };
    let pending = PendingLogin {
        state: login_state,
        account,
        connection: conn.connection,
    };
    state.put_login(login_id, pending)?;
    Ok(Response::LoginResponse {
        login_id,
        opaque_response: response,
    })
}

pub(super) async fn login_finish(
    state: &AppState,
    conn: &ConnectionAuth,
    login_id: u64,
    finalization: &[u8],
) -> Handled {
    let pending = match state.take_login(login_id) {
        Ok(p) if p.connection == conn.connection => p,
        _ => {
            return Err(Refusal::new(
                ErrorCode::UnknownExchange,
                "no login in progress with this id",
            ))
        }
    };
    let verified = OpaqueServer::login_finish(pending.state, finalization);
    let Some(account) = pending.account.filter(|_| verified.is_ok()) else {
        Metrics::inc(&state.metrics.auth_failures);
        return Err(Refusal::new(ErrorCode::AuthFailed, "login failed"));
    };
    let issued = tokens::issue(&mut OsRng, unix_now(), state.limits.token_ttl);
    state
        .store
        .insert_token(&issued.hash.0, Address::primary(account), issued.expires_at)
        .await?;
    Metrics::inc(&state.metrics.auth_successes);
    Ok(Response::LoginDone {
        token: issued.token,
        account,
        expires_at: issued.expires_at,
    })
}

/// Revokes this connection's token, or every token of the account (closing
/// its other connections). The caller hangs up after the reply.
pub(super) async fn logout(
    state: &AppState,
    conn: &ConnectionAuth,
    me: Authenticated,
    everywhere: bool,
) -> Handled {
    if everywhere {
        state
            .store
            .delete_tokens_for_account(me.address.account)
            .await?;
        state.hub.close_account(
            me.address.account,
            Some(conn.connection),
            ErrorCode::TokenExpired,
            "logged out everywhere",
        );
    } else {
        state.store.delete_token(&me.token.0).await?;
    }
    Ok(Response::Ok)
}
