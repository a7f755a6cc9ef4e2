//! Password change on an authenticated connection (PROTOCOL.md 11.3,
//! "Password change"): an OPAQUE login under the current password and an
//! OPAQUE registration of the new one, run together in two round trips;
//! then the account's record is replaced and every token revoked, on every
//! node, this connection's included: it goes on under a new token sent in
//! `PasswordChanged` (a copy of the old one may sit in a stolen data dir).
//!
//! Why the old password is proven again, not just the token: a stolen token
//! (a device left unlocked, a leaked data dir with its password) must not be
//! enough to lock the owner out of the account. The proof is an ordinary
//! OPAQUE login against the stored record, so it costs the relay what a
//! login costs and is charged to the same rate-limit budgets as a login of
//! that account: a token holder gets no more password guesses than anyone.
//!
//! Must never: replace a record the old-password proof was not checked
//! against, keep any token issued before the change, keep a started change past
//! [`EXCHANGE_TIMEOUT`], or log a password message.

use std::fmt;
use std::time::Instant;

use rand::rngs::OsRng;
use rand::RngCore;
use umbra_wire::{ErrorCode, Response};

use crate::auth::tokens::{self, unix_now};

use super::{Authenticated, ConnectionAuth, Handled, Refusal};
use crate::app::AppState;
use crate::auth::opaque::{LoginState, OpaqueError, OpaqueServer};
use crate::auth::phase::EXCHANGE_TIMEOUT;
use crate::metrics::{AuthFailure, LoginAttempt, Metrics};
use crate::store::{PasswordFile, StoreError};

/// Why the connections of the account other than this one close.
pub const PASSWORD_CHANGED_REASON: &str = "the account's password changed; log in again";

/// A change between `PasswordChangeStart` and `PasswordChangeFinish`, kept
/// on the connection that started it (one at a time; a new start replaces it).
pub struct ChangingPassword {
    change_id: u64,
    login: LoginState,
    /// The record the old-password login runs against: the finish replaces
    /// it only if it is still the stored one.
    old_file: PasswordFile,
    /// The new password's OPRF evaluation is bound to this request's
    /// registration; the finish's upload completes it.
    attempt: LoginAttempt,
    started: Instant,
}

impl fmt::Debug for ChangingPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChangingPassword(<redacted>)")
    }
}

pub(super) async fn start(
    state: &AppState,
    conn: &mut ConnectionAuth,
    me: Authenticated,
    credential_request: &[u8],
    registration_request: &[u8],
) -> Handled {
    // A new start ends any change in progress, whatever happens next.
    conn.password_change = None;
    let account = me.address.account;
    let username = state
        .store
        .username_of(account)
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::AuthFailed, "the account no longer exists"))?;
    // The login budgets of this account's name and of this source: proving
    // the old password here is a password guess like any login.
    state
        .rate_limits
        .check_login(conn.peer, username.as_str())?;
    let old_file = state
        .store
        .password_file(account)
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::AuthFailed, "the account no longer exists"))?;
    let credential_id = account.as_bytes().as_slice();
    let (credential_response, login) = state
        .opaque
        .login_start(
            &mut OsRng,
            Some(&old_file),
            credential_request,
            credential_id,
        )
        .map_err(|e| match e {
            OpaqueError::Malformed => {
                Refusal::new(ErrorCode::BadFrame, "malformed OPAQUE credential request")
            }
            other => other.into(),
        })?;
    let registration_response = state
        .opaque
        .registration_response(registration_request, credential_id)
        .map_err(|_| Refusal::new(ErrorCode::BadFrame, "malformed OPAQUE registration request"))?;
    let change_id = loop {
        let id = OsRng.next_u64();
        if id != 0 {
            break id;
        }
    };
    conn.password_change = Some(ChangingPassword {
        change_id,
        login,
        old_file,
        attempt: LoginAttempt::start(&state.metrics),
        started: Instant::now(),
    });
    Ok(Response::PasswordChangeResponse {
        change_id,
        credential_response,
        registration_response,
    })
}

pub(super) async fn finish(
    state: &AppState,
    conn: &mut ConnectionAuth,
    me: Authenticated,
    change_id: u64,
    finalization: &[u8],
    upload: &[u8],
) -> Handled {
    // The exchange ends whatever happens next: a failed finish needs a new start.
    let pending = conn
        .password_change
        .take()
        .filter(|p| p.change_id == change_id && p.started.elapsed() <= EXCHANGE_TIMEOUT)
        .ok_or_else(|| {
            Refusal::new(
                ErrorCode::UnknownExchange,
                "no password change in progress with this id",
            )
        })?;
    if OpaqueServer::login_finish(pending.login, finalization).is_err() {
        pending.attempt.failed(AuthFailure::LoginRejected);
        return Err(Refusal::new(
            ErrorCode::AuthFailed,
            "the current password was not proven",
        ));
    }
    pending.attempt.succeeded();
    let new_file = OpaqueServer::finish_registration(upload)
        .map_err(|_| Refusal::new(ErrorCode::BadFrame, "malformed OPAQUE registration upload"))?;
    // Its own task, as `Logout{everywhere}`: a request cut off by the
    // deadline whose transaction still commits must still close the
    // account's other connections (9.6).
    let (task_state, account, keep) = (state.clone(), me.address.account, conn.connection);
    let current = me.token.0;
    let old_file = pending.old_file;
    let now = unix_now();
    let issued = tokens::issue(&mut OsRng, now, state.limits.token_ttl);
    let (issued_hash, expires_at, address) = (issued.hash, issued.expires_at, me.address);
    let change = tokio::spawn(async move {
        let state = &task_state;
        let changed = state
            .store
            .change_password(
                account,
                &old_file,
                &new_file,
                &current,
                now,
                &issued_hash.0,
                expires_at,
            )
            .await;
        if matches!(&changed, Ok(Some(_))) {
            // Before the revocation's re-checks (this node's included) run:
            // they must ask about this connection's new token, not its old.
            state.hub.retoken(address, keep, issued_hash);
        }
        let maybe_done = matches!(
            &changed,
            Ok(Some(_)) | Err(StoreError::CommitOutcomeUnknown { .. })
        );
        if maybe_done {
            crate::wakeups::revoked(state, account, Some(keep), PASSWORD_CHANGED_REASON).await;
        }
        changed
    });
    match change.await {
        Ok(Ok(Some(_))) => {
            // The connection's old token is gone with the others: its own
            // re-checks follow the new one (the hub's already do).
            conn.retoken(issued.hash, issued.expires_at);
            Metrics::inc(&state.metrics.password_changes);
            Ok(Response::PasswordChanged {
                token: issued.token,
                expires_at: issued.expires_at,
            })
        }
        Ok(Ok(None)) => Err(Refusal::new(
            ErrorCode::UnknownExchange,
            "the account's password or this session changed meanwhile; start again",
        )),
        Ok(Err(e)) => Err(e.into()),
        Err(panicked) => Err(Refusal::outcome_unknown(format!(
            "the password change task ended: {panicked}"
        ))),
    }
}
