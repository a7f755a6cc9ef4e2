//! Registration, login, token authentication and logout.
//!
//! Must never: reveal during login whether a username exists (an unknown
//! name runs OPAQUE's fake-record path and fails exactly like a wrong
//! password); let one connection finish another's exchange; log a token,
//! a password message or a username.

use std::time::Instant;

use rand::rngs::OsRng;
use rand::RngCore;
use umbra_wire::{AccountId, Address, DeviceId, ErrorCode, Response, SessionToken, Username};

use super::{Authenticated, ConnectionAuth, Handled, Refusal};
use crate::app::AppState;
use crate::auth::opaque::{OpaqueError, OpaqueServer};
use crate::auth::phase::{LoggedIn, LoggingIn, Registering};
use crate::auth::tokens::{self, unix_now, IssuedToken, TokenHash};
use crate::metrics::{AuthFailure, LoginAttempt, Metrics};
use crate::store::StoreError;

/// Prefix of the OPAQUE credential identifier used for usernames that do
/// not exist, so their fake records are stable per name and can never equal
/// a real account's identifier (which is the 16-byte account id).
pub const UNKNOWN_USER_CREDENTIAL_PREFIX: &[u8] = b"umbra/v1/relay/unknown-user:";

/// Why a live connection closes when its token stops being valid (sent in
/// `Closing{TokenExpired}` and as the refused request's error).
pub const TOKEN_EXPIRED_REASON: &str = "token expired; log in again";
/// The same for a token revoked (logout everywhere, account deletion, or a
/// login elsewhere that revoked the others).
pub const TOKEN_REVOKED_REASON: &str = "token revoked; log in again";

/// The refusal of a password login once device 1, the device a login
/// authenticates as, was removed (PROTOCOL.md 15.5).
pub const LOGIN_DEVICE_REMOVED: &str =
    "device 1 of this account was removed, so a password login has no device to log in as; \
     link this device from a current device of the account (umbra link)";

/// What a live connection's token is worth now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// Still issued to this device, until `expires_at` (Unix seconds).
    Valid {
        /// Expiry of the token.
        expires_at: u64,
    },
    /// Its expiry has passed.
    Expired,
    /// Revoked, purged, or (impossible unless the store is wrong) another
    /// device's.
    Revoked,
}

impl TokenCheck {
    /// The `Closing` reason when the connection must close, else `None`.
    pub fn closing_reason(self) -> Option<&'static str> {
        match self {
            TokenCheck::Valid { .. } => None,
            TokenCheck::Expired => Some(TOKEN_EXPIRED_REASON),
            TokenCheck::Revoked => Some(TOKEN_REVOKED_REASON),
        }
    }
}

/// Looks the connection's token up again: a revocation on any node (or one
/// whose cross-node notice was missed) shows here.
pub async fn check_token(
    state: &AppState,
    me: &Authenticated,
) -> Result<TokenCheck, crate::store::StoreError> {
    Ok(match state.store.token_info(&me.token.0).await? {
        Some(info) if info.owner == me.address && unix_now() < info.expires_at => {
            TokenCheck::Valid {
                expires_at: info.expires_at,
            }
        }
        Some(info) if info.owner == me.address => TokenCheck::Expired,
        _ => TokenCheck::Revoked,
    })
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
    match state.store.token_info(&hash.0).await? {
        Some(info) if info.owner.device == device && unix_now() < info.expires_at => {
            Metrics::inc(&state.metrics.auth_successes);
            let address = info.owner;
            conn.transition(|phase| {
                phase.authenticate(Authenticated {
                    address,
                    token: hash,
                    expires_at: info.expires_at,
                })
            })?;
            touch(state, address).await;
            Ok(address)
        }
        Some(info) if info.owner.device == device => {
            state.metrics.auth_failed(AuthFailure::TokenExpired);
            Err(Refusal::new(ErrorCode::TokenExpired, TOKEN_EXPIRED_REASON))
        }
        _ => {
            state.metrics.auth_failed(AuthFailure::TokenUnknown);
            Err(Refusal::new(
                ErrorCode::AuthFailed,
                "token unknown, revoked or for another device",
            ))
        }
    }
}

/// Records the device's last use, to the hour (`ListDevices`, 15.5). Best
/// effort and bounded: the connection is authenticated whatever it gives.
async fn touch(state: &AppState, address: Address) {
    let touched = tokio::time::timeout(
        super::CONNECTION_STORE_DEADLINE,
        state.store.touch_device(address, unix_now()),
    )
    .await;
    if !matches!(touched, Ok(Ok(_))) {
        tracing::warn!("cannot record a device's last use");
    }
}

pub(super) async fn register_start(
    state: &AppState,
    conn: &mut ConnectionAuth,
    username: Username,
    request: &[u8],
) -> Handled {
    state.rate_limits.check_register(conn.peer)?;
    if crate::store::is_reserved_username(&username) {
        return Err(crate::store::StoreError::UsernameReserved.into());
    }
    // A quarantined name is refused here exactly like a held one, so the
    // answer does not tell a released name from a held one.
    if state.store.account_by_username(&username).await?.is_some()
        || state
            .store
            .name_is_quarantined(&username, unix_now())
            .await?
    {
        return Err(Refusal::new(ErrorCode::UsernameTaken, "username is taken"));
    }
    // The account id is fixed now because it is the OPAQUE credential
    // identifier: the password keeps working across renames.
    let account = AccountId::random(&mut OsRng);
    let response = state
        .opaque
        .registration_response(request, account.as_bytes())
        .map_err(|_| Refusal::new(ErrorCode::BadFrame, "malformed OPAQUE registration request"))?;
    let pending = Registering::new(username, account, Instant::now());
    conn.transition(|phase| phase.begin_registration(pending))?;
    Ok(Response::RegisterResponse {
        opaque_response: response,
    })
}

pub(super) async fn register_finish(
    state: &AppState,
    conn: &mut ConnectionAuth,
    username: Username,
    upload: &[u8],
) -> Handled {
    let pending = conn
        .transition(|phase| phase.finish_registration(&username, Instant::now()))
        .map_err(|r| unknown_exchange(r, "no registration in progress for this username"))?;
    let file = OpaqueServer::finish_registration(upload)
        .map_err(|_| Refusal::new(ErrorCode::BadFrame, "malformed OPAQUE registration upload"))?;
    state
        .store
        .create_account(pending.account, &pending.username, &file, unix_now())
        .await?;
    Metrics::inc(&state.metrics.registrations);
    Ok(Response::RegisterDone {
        account: pending.account,
    })
}

pub(super) async fn login_start(
    state: &AppState,
    conn: &mut ConnectionAuth,
    username: Username,
    request: &[u8],
) -> Handled {
    state
        .rate_limits
        .check_login(conn.peer, username.as_str())?;
    let record = state.store.account_by_username(&username).await?;
    let unknown_id = [UNKNOWN_USER_CREDENTIAL_PREFIX, username.as_str().as_bytes()].concat();
    let (credential_id, file) = match &record {
        Some(r) => (r.account.as_bytes().as_slice(), Some(&r.password_file)),
        None => (unknown_id.as_slice(), None),
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
    let attempt = LoginAttempt::start(&state.metrics);
    let pending = LoggingIn::new(login_id, login_state, record, attempt, Instant::now());
    conn.transition(|phase| phase.begin_login(pending))?;
    Ok(Response::LoginResponse {
        login_id,
        opaque_response: response,
    })
}

pub(super) async fn login_finish(
    state: &AppState,
    conn: &mut ConnectionAuth,
    login_id: u64,
    finalization: &[u8],
) -> Handled {
    let pending = conn
        .transition(|phase| phase.finish_login(login_id, Instant::now()))
        .map_err(|r| unknown_exchange(r, "no login in progress with this id"))?;
    let verified = OpaqueServer::login_finish(pending.state, finalization);
    let Some(record) = pending.record.filter(|_| verified.is_ok()) else {
        pending.attempt.failed(AuthFailure::LoginRejected);
        return Err(Refusal::new(ErrorCode::AuthFailed, "login failed"));
    };
    // Proven; a store failure below is the relay's, not an auth failure.
    pending.attempt.succeeded();
    let account = record.account;
    let issued = tokens::issue(&mut OsRng, unix_now(), state.limits.token_ttl);
    // Proven against the record read at LoginStart: the token is issued only
    // if that record is still the account's, or a login kept pending under
    // a replaced password would outlive the change (PROTOCOL.md 11.3).
    // A password login is device 1's (11.3). Once device 1 was removed no
    // login can name a current device: the store refuses rather than issue
    // a token for the tombstone, which could then remove every current
    // device (15.5).
    let inserted = match state
        .store
        .insert_login_token(
            Address::primary(account),
            &record.password_file,
            &issued.hash.0,
            issued.expires_at,
        )
        .await
    {
        Err(StoreError::UnknownDevice { .. }) => {
            return Err(Refusal::new(
                ErrorCode::UnknownRecipient,
                LOGIN_DEVICE_REMOVED,
            ))
        }
        other => other?,
    };
    if !inserted {
        return Err(Refusal::new(
            ErrorCode::UnknownExchange,
            "the account's password changed during this login; log in again",
        ));
    }
    Metrics::inc(&state.metrics.auth_successes);
    // Kept for one `LoginEnrol` on this connection (15.6): only a login
    // that just proved the password may become a new device.
    let done = LoggedIn::new(account, record.password_file, issued.hash, Instant::now());
    conn.transition(|phase| phase.logged_in(done))?;
    Ok(Response::LoginDone {
        token: issued.token,
        account,
        expires_at: issued.expires_at,
    })
}

/// The refusal of a `LoginEnrol` with no fresh login to enrol.
pub const LOGIN_ENROL_NO_LOGIN: &str =
    "no password login to enrol: send LoginEnrol right after LoginDone, on the same connection, \
     within 60 s and before Authenticate";

/// `LoginEnrol` (PROTOCOL.md 15.6): the password login this connection
/// just completed becomes a new device of its account, with the limit and
/// the never-reused ids of a linked device; the login's token (device 1's)
/// is revoked and one for the new device issued in its place, in one
/// transaction. The login is spent whatever the outcome, and a refused
/// enrolment revokes the login's token before it answers: the client asked
/// for a new device, not a device-1 session, and never uses that token
/// again.
pub(super) async fn login_enrol(state: &AppState, conn: &mut ConnectionAuth) -> Handled {
    let login = conn
        .transition(|phase| phase.take_login(Instant::now()))
        .map_err(|r| unknown_exchange(r, LOGIN_ENROL_NO_LOGIN))?;
    let issued = tokens::issue(&mut OsRng, unix_now(), state.limits.token_ttl);
    let enrolled = match state
        .store
        .enrol_login_device(
            login.account,
            &login.proven,
            &login.token.0,
            &issued.hash.0,
            issued.expires_at,
            unix_now(),
        )
        .await
    {
        Err(StoreError::TooManyDevices { limit }) => {
            // The password login was only for this enrolment: its token
            // (device 1's, which the client never authenticates with)
            // goes now, not at its expiry (15.6 step 2).
            state.store.delete_token(&login.token.0).await?;
            return Err(Refusal::new(
                ErrorCode::LimitExceeded,
                format!(
                    "the account already has {limit} devices, the most it may have; \
                     remove one from a current device (umbra devices, then \
                     umbra devices remove ID) and log in again"
                ),
            ));
        }
        other => other?,
    };
    spent_login(state, &login.token, login.account, enrolled, issued).await
}

/// The answer to a password login spent on one device (`LoginEnrol`,
/// `LoginDevice`): the device's fresh token, or, when the store found the
/// login superseded (`None`: revoked already by a logout everywhere, or
/// issued under a record a password change replaced), the login's own
/// token revoked too (15.6 step 2) and a refusal saying why.
async fn spent_login(
    state: &AppState,
    login_token: &TokenHash,
    account: AccountId,
    device: Option<DeviceId>,
    issued: IssuedToken,
) -> Handled {
    let Some(device) = device else {
        state.store.delete_token(&login_token.0).await?;
        return Err(Refusal::new(
            ErrorCode::UnknownExchange,
            "the account's password changed, or it logged out everywhere, since this login; \
             log in again",
        ));
    };
    Metrics::inc(&state.metrics.auth_successes);
    Ok(Response::LoginEnrolled(umbra_wire::LinkEnrolled {
        account,
        device,
        token: issued.token,
        expires_at: issued.expires_at,
    }))
}

/// The refusal of a `LoginDevice` naming a device that is not current.
pub const LOGIN_DEVICE_NOT_CURRENT: &str =
    "is not a current device of this account (it was removed); link this data directory again";

/// `LoginDevice` (PROTOCOL.md 15.6): the password login this connection
/// just completed gives a token to a current device of its account, the
/// one a linked or restored device whose token ended asks for by id. The
/// login's token is replaced by the device's in one transaction; nothing
/// is enrolled and the device list is unchanged. The login is spent
/// whatever the outcome, and a refusal revokes the login's token, as a
/// refused `LoginEnrol` does: the client asked for device N's session, not
/// device 1's. A removed device is never given one (15.1).
pub(super) async fn login_device(
    state: &AppState,
    conn: &mut ConnectionAuth,
    device: DeviceId,
) -> Handled {
    let login = conn
        .transition(|phase| phase.take_login(Instant::now()))
        .map_err(|r| unknown_exchange(r, LOGIN_DEVICE_NO_LOGIN))?;
    let issued = tokens::issue(&mut OsRng, unix_now(), state.limits.token_ttl);
    let address = Address {
        account: login.account,
        device,
    };
    let given = match state
        .store
        .login_as_device(
            address,
            &login.proven,
            &login.token.0,
            &issued.hash.0,
            issued.expires_at,
        )
        .await
    {
        Err(StoreError::UnknownDevice { .. }) => {
            state.store.delete_token(&login.token.0).await?;
            return Err(Refusal::new(
                ErrorCode::UnknownRecipient,
                format!("device {} {LOGIN_DEVICE_NOT_CURRENT}", device.0),
            ));
        }
        other => other?,
    };
    let device = given.then_some(device);
    spent_login(state, &login.token, login.account, device, issued).await
}

/// The refusal of a `LoginDevice` with no fresh login to spend.
pub const LOGIN_DEVICE_NO_LOGIN: &str =
    "no password login to use: send LoginDevice right after LoginDone, on the same connection, \
     within 60 s and before Authenticate";

/// Revokes this connection's token, or every token of the account (closing
/// its other connections). The caller hangs up after the reply.
pub(super) async fn logout(
    state: &AppState,
    conn: &ConnectionAuth,
    me: Authenticated,
    everywhere: bool,
) -> Handled {
    if everywhere {
        // Its own task, so that a request cut off by the deadline (the
        // DELETE may still run once the database answers) still closes the
        // account's other connections when it does: 9.6 promises that for
        // an outcome the client is told is unknown.
        let (task_state, account, keep) = (state.clone(), me.address.account, conn.connection);
        let revocation = tokio::spawn(async move {
            let state = &task_state;
            let deleted = state.store.delete_tokens_for_account(account).await;
            // Unless the deletion surely did nothing, the tokens may be
            // gone: close the account's other connections here and on every
            // node anyway (a connection is cheap to reopen with a valid
            // token; one left open on a revoked token is not).
            let maybe_done = matches!(
                &deleted,
                Ok(_) | Err(StoreError::CommitOutcomeUnknown { .. })
            );
            if maybe_done {
                crate::wakeups::revoked(state, account, Some(keep), "logged out everywhere").await;
            }
            deleted
        });
        match revocation.await {
            Ok(deleted) => {
                deleted?;
            }
            Err(panicked) => {
                return Err(Refusal::outcome_unknown(format!(
                    "the revocation task ended: {panicked}"
                )))
            }
        }
    } else {
        state.store.delete_token(&me.token.0).await?;
    }
    Ok(Response::Ok)
}

/// Names the exchange in an `UnknownExchange` refusal; others pass through.
fn unknown_exchange(refusal: Refusal, what: &'static str) -> Refusal {
    if refusal.code() == ErrorCode::UnknownExchange {
        Refusal::new(ErrorCode::UnknownExchange, what)
    } else {
        refusal
    }
}
