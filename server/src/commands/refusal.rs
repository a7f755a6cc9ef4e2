//! Why a request was refused ([`Refusal`]) and how every failure the
//! handlers meet (store, group commit, directory, auth phase, OPAQUE, rate
//! limits) becomes the error code and reason a client sees.
//!
//! Must never: send a store error's text or any cause of an `Internal` to
//! a client (the cause goes to the operator's log only), or map a relay
//! failure to a code that blames the client.

use std::borrow::Cow;

use umbra_wire::{ErrorCode, Response};

use super::{auth, OUTCOME_UNKNOWN, STORE_RETRY_AFTER_SECS};
use crate::auth::opaque::OpaqueError;
use crate::auth::phase::PhaseError;
use crate::directory::DirectoryError;
use crate::rate_limit::RetryAfter;
use crate::store::group_commit::GroupCommitError;
use crate::store::StoreError;

/// Why a request was refused: the error code and reason the client sees,
/// and for relay-side failures the cause, which is logged and never sent.
#[derive(Debug)]
pub struct Refusal {
    pub(super) code: ErrorCode,
    pub(super) reason: Cow<'static, str>,
    pub(super) retry_after_secs: Option<u32>,
    /// Only for `Internal`: what failed, for the operator's log.
    pub(super) cause: Option<String>,
}

impl Refusal {
    /// A refusal the client caused or can act on.
    pub fn new(code: ErrorCode, reason: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            code,
            reason: reason.into(),
            retry_after_secs: None,
            cause: None,
        }
    }

    /// The relay failed; the client may retry. `cause` goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Refusal {
            cause: Some(cause.to_string()),
            ..Refusal::new(ErrorCode::Internal, "internal error; retry later")
        }
    }

    /// The database is unreachable: nothing was carried out; retry soon.
    pub(super) fn store_unavailable(cause: impl std::fmt::Display) -> Self {
        Refusal {
            retry_after_secs: Some(STORE_RETRY_AFTER_SECS),
            ..Refusal::internal(cause).with_reason(
                "the relay's database is unavailable: the request was not carried out; \
                 retry later",
            )
        }
    }

    /// The request may or may not have taken effect.
    pub(crate) fn outcome_unknown(cause: impl std::fmt::Display) -> Self {
        Refusal {
            retry_after_secs: Some(STORE_RETRY_AFTER_SECS),
            ..Refusal::internal(cause).with_reason(OUTCOME_UNKNOWN)
        }
    }

    fn with_reason(self, reason: &'static str) -> Self {
        Refusal {
            reason: reason.into(),
            ..self
        }
    }

    /// The error code sent to the client.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub(super) fn into_response(self) -> Response {
        Response::Error {
            code: self.code,
            message: self.reason.into_owned(),
            retry_after_secs: self.retry_after_secs,
        }
    }
}

impl From<RetryAfter> for Refusal {
    fn from(RetryAfter(secs): RetryAfter) -> Self {
        Refusal {
            retry_after_secs: Some(secs),
            ..Refusal::new(ErrorCode::RateLimited, "too many requests")
        }
    }
}

impl From<StoreError> for Refusal {
    /// The store errors a client caused get their own code; every other is
    /// the relay's fault.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UsernameTaken => {
                Refusal::new(ErrorCode::UsernameTaken, "username is taken")
            }
            StoreError::UsernameReserved => Refusal::new(
                ErrorCode::InvalidUsername,
                "this username is reserved by the relay; choose another",
            ),
            StoreError::TooManyPreKeys { limit, .. } => Refusal::new(
                ErrorCode::TooManyPreKeys,
                format!("at most {limit} one-time prekeys may be stored"),
            ),
            // The device's identity changed between the signature check
            // and the write: the keys are signed by one it no longer has.
            StoreError::KemPreKeyIdentityChanged => Refusal::new(
                ErrorCode::BadSignature,
                "this device published a new identity during the upload: sign the KEM \
                 prekeys with it",
            ),
            e @ StoreError::PreKeyIdConflict { .. } => {
                Refusal::new(ErrorCode::BadPreKey, e.to_string())
            }
            // PROTOCOL.md 9.6 row 25: both say "this identity conflicts".
            e @ (StoreError::IdentityInUse | StoreError::AccountIdentityDiffers) => {
                Refusal::new(ErrorCode::IdentityInUse, e.to_string())
            }
            // PROTOCOL.md 9.6 rows 9, 22, 24 and 26, and 15.6's RateLimited.
            e @ (StoreError::TooManyDevices { .. } | StoreError::TooManyLinkMessages { .. }) => {
                Refusal::new(ErrorCode::LimitExceeded, e.to_string())
            }
            e @ StoreError::UnknownDevice { .. } => {
                Refusal::new(ErrorCode::UnknownRecipient, e.to_string())
            }
            e @ StoreError::DeviceListVersionTooHigh { .. } => {
                Refusal::new(ErrorCode::LimitExceeded, e.to_string())
            }
            e @ StoreError::StaleDeviceList { .. } => {
                Refusal::new(ErrorCode::StaleDeviceList, e.to_string())
            }
            e @ StoreError::UnknownLinkTicket => {
                Refusal::new(ErrorCode::UnknownExchange, e.to_string())
            }
            StoreError::TooManyLinkTickets { retry_after_secs } => Refusal {
                retry_after_secs: Some(u32::try_from(retry_after_secs.max(1)).unwrap_or(u32::MAX)),
                ..Refusal::new(
                    ErrorCode::RateLimited,
                    "too many open link tickets; retry when one expires",
                )
            },
            e @ StoreError::CommitOutcomeUnknown { .. } => Refusal::outcome_unknown(e),
            e if e.is_unavailable() => Refusal::store_unavailable(e),
            other => Refusal::internal(other),
        }
    }
}

impl From<GroupCommitError> for Refusal {
    fn from(error: GroupCommitError) -> Self {
        match error {
            GroupCommitError::Store(e) => e.into(),
            GroupCommitError::Stopped => Refusal::new(
                ErrorCode::ShuttingDown,
                "relay is shutting down; nothing was queued",
            ),
            e @ GroupCommitError::Lost => Refusal::outcome_unknown(e),
            // The committer's re-check of a Send's or Ack's token.
            GroupCommitError::TokenRefused { expired } => {
                let check = if expired {
                    auth::TokenCheck::Expired
                } else {
                    auth::TokenCheck::Revoked
                };
                let reason = check.closing_reason().unwrap_or(auth::TOKEN_REVOKED_REASON);
                Refusal::new(ErrorCode::TokenExpired, reason)
            }
            // Refused before anything was stored (the database is slower
            // than the senders): retry after the hint.
            e @ GroupCommitError::Busy => Refusal {
                retry_after_secs: Some(STORE_RETRY_AFTER_SECS),
                ..Refusal::internal(e)
                    .with_reason("the relay is busy: nothing was queued; retry later")
            },
        }
    }
}

impl From<DirectoryError> for Refusal {
    fn from(error: DirectoryError) -> Self {
        Refusal::new(error.code(), error.to_string())
    }
}

impl From<PhaseError> for Refusal {
    fn from(error: PhaseError) -> Self {
        let code = match error {
            PhaseError::AlreadyAuthenticated => ErrorCode::AlreadyAuthenticated,
            PhaseError::UnknownExchange => ErrorCode::UnknownExchange,
        };
        Refusal::new(code, error.to_string())
    }
}

impl From<OpaqueError> for Refusal {
    /// Callers that can name the malformed message map `Malformed`
    /// themselves; this covers the rest.
    fn from(error: OpaqueError) -> Self {
        match error {
            OpaqueError::Malformed => Refusal::new(ErrorCode::BadFrame, "malformed OPAQUE message"),
            OpaqueError::AuthFailed => Refusal::new(ErrorCode::AuthFailed, "login failed"),
            e @ (OpaqueError::CorruptSetup | OpaqueError::CorruptPasswordFile) => {
                Refusal::internal(e)
            }
        }
    }
}
