//! Maps client-core failures onto exit statuses (docs/CLI.md).
//!
//! The mapping follows what the user can do about a failure: fix the request
//! (1), retry when the network or relay is back (3), deal with a key change
//! (4), wait out a rate limit (5), fix credentials (6), fix the data
//! directory (7).
//!
//! This module must never print or format errors; it only classifies them.

use umbra_client_core::{
    ConnectionFailure, DeviceFailure, Ended, Error, FileFailure, LinkFailure, StoreError,
};
use umbra_protocol::wire::ErrorCode;

use crate::exit_status::ExitStatus;

/// The exit status for a client-core error, if `cause` is one.
pub fn status_of(cause: &(dyn std::error::Error + 'static)) -> Option<ExitStatus> {
    if let Some(error) = cause.downcast_ref::<Error>() {
        return Some(status_of_core(error));
    }
    cause.downcast_ref::<StoreError>().map(status_of_store)
}

fn status_of_core(error: &Error) -> ExitStatus {
    match error {
        Error::Store(store) => status_of_store(store),
        Error::WrongPassword
        | Error::AuthFailed
        | Error::UsedElsewhere
        | Error::NotLoggedIn { .. } => ExitStatus::AuthFailed,
        Error::UntrustedKey { .. }
        | Error::NameReassigned { .. }
        | Error::SafetyNumberMismatch { .. } => ExitStatus::UntrustedKey,
        Error::UnknownUser { .. }
        // Sending to a contact the user blocked: theirs to undo.
        | Error::Blocked { .. }
        | Error::Group(_)
        | Error::InvalidUsername(_)
        | Error::MessageTooLarge { .. }
        | Error::InvalidMessage(_)
        | Error::PeerKeysExpired { .. }
        // The contact's device publishes no ML-KEM prekey: theirs (or
        // their relay's) to update; umbra starts no classical session.
        | Error::NoPostQuantumPreKey { .. }
        // An earlier password change is undecided: the user logs in first.
        | Error::PasswordChangeUnsettled
        | Error::BadServerUrl(_) => ExitStatus::UserError,
        Error::Relay { code, .. } => status_of_relay_code(*code),
        // A file the user named (missing, existing, too large, unknown id)
        // is theirs to fix; a blob that did not arrive or did not verify
        // is the relay's side (a retry fetches it again).
        Error::File(file) => match file {
            FileFailure::Unknown(_)
            | FileFailure::Local { .. }
            | FileFailure::Changed(_)
            | FileFailure::Exists(_)
            | FileFailure::Unsendable { .. } => ExitStatus::UserError,
            FileFailure::Refused { status: 413, .. } => ExitStatus::UserError,
            _ => ExitStatus::Network,
        },
        // Removing this device or an id that is no device is the user's
        // to fix; a list publication that kept losing to another device's
        // is retried later, like a busy relay.
        Error::Device(device) => match device {
            DeviceFailure::ThisDevice(_)
            | DeviceFailure::Unknown(_)
            | DeviceFailure::Removed(_)
            | DeviceFailure::AccountFull { .. }
            | DeviceFailure::NotCurrent(_)
            | DeviceFailure::List(_) => {
                ExitStatus::UserError
            }
            _ => ExitStatus::Network,
        },
        // A code that is not one, unknown, mistyped or expired, or a link
        // that nobody answered: the user links again. A provisioning that
        // does not fit the enrolment or a snapshot that does not decode is
        // the relay's (or the other device's) doing.
        Error::Link(link) => match link {
            // Enrolled, then failed: whatever failed decides.
            LinkFailure::EnrolledNotSetUp { cause, .. }
            | LinkFailure::EnrolledNotListed { cause, .. } => status_of_core(cause),
            LinkFailure::Inconsistent(_) | LinkFailure::Snapshot(_) => ExitStatus::Network,
            LinkFailure::Provisioning(_) => ExitStatus::Internal,
            _ => ExitStatus::UserError,
        },
        Error::Connection(ConnectionFailure::Ended(ended)) => status_of_ended(ended),
        // A failed attempt to reach the relay: whatever failed decides.
        Error::Connection(ConnectionFailure::Attempt(attempt)) => status_of_core(attempt.error()),
        // The local TLS configuration is at fault: the user fixes it.
        Error::Connection(ConnectionFailure::TlsRoots { .. }) => ExitStatus::UserError,
        Error::Connection(_)
        | Error::SessionContended { .. }
        | Error::Protocol(_)
        | Error::Crypto(_)
        // The account backup failed to move or to open: the relay's side
        // (its store, its answer, or the copy it served).
        | Error::Backup(_)
        // The relay predates post-quantum sessions: the relay's side.
        | Error::RelayLacksPostQuantum
        | Error::Timeout(_)
        | Error::Closed => ExitStatus::Network,
        _ => ExitStatus::Internal,
    }
}

/// A connection that ended for good: retrying does not help, so these are
/// never "retry" (3). A logged-out or refused session is fixed by logging in
/// (6), as docs/CLI.md says; a local store failure by the data dir (7).
pub fn status_of_ended(ended: &Ended) -> ExitStatus {
    match ended {
        Ended::LoggedOut | Ended::UsedElsewhere | Ended::SessionRefused { .. } => {
            ExitStatus::AuthFailed
        }
        Ended::LocalStore(store) => status_of_store(store),
        // Another process of this data dir took the connection over.
        Ended::Replaced => ExitStatus::LocalData,
        _ => ExitStatus::Network,
    }
}

fn status_of_store(error: &StoreError) -> ExitStatus {
    match error {
        StoreError::WrongPassword => ExitStatus::AuthFailed,
        StoreError::NotInitialized | StoreError::AlreadyInitialized => ExitStatus::UserError,
        // A data dir of another store format: the user moves it aside or
        // uses the umbra that wrote it (docs/CLI.md).
        StoreError::OlderFormat { .. } | StoreError::NewerFormat { .. } => ExitStatus::LocalData,
        _ => ExitStatus::LocalData,
    }
}

fn status_of_relay_code(code: ErrorCode) -> ExitStatus {
    match code {
        ErrorCode::RateLimited => ExitStatus::RateLimited,
        ErrorCode::AuthFailed | ErrorCode::NotAuthenticated | ErrorCode::TokenExpired => {
            ExitStatus::AuthFailed
        }
        ErrorCode::UsernameTaken
        | ErrorCode::InvalidUsername
        | ErrorCode::UnknownRecipient
        | ErrorCode::UnknownUsername
        | ErrorCode::EnvelopeTooLarge
        | ErrorCode::TooManyRecipients
        | ErrorCode::NoPreKeys => ExitStatus::UserError,
        _ => ExitStatus::Network,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_status::classify;
    use umbra_client_core::{
        ConnectionFailure, CryptoFailure, InvalidMessage, PeerRef, RelayMisbehaved, UnknownPeer,
    };
    use umbra_protocol::wire::{AccountId, Username};

    fn name(text: &str) -> Username {
        Username::parse(text).expect("a valid username")
    }

    fn identity_error() -> umbra_protocol::identity::IdentityError {
        umbra_protocol::identity::IdentityPublic::from_bytes(&[])
            .expect_err("an empty identity does not decode")
    }

    fn relay(code: ErrorCode) -> Error {
        Error::Relay {
            code,
            message: "refused".into(),
            retry_after_secs: None,
        }
    }

    #[test]
    fn each_failure_kind_gets_its_documented_status() {
        let cases = [
            (Error::WrongPassword, ExitStatus::AuthFailed),
            (Error::AuthFailed, ExitStatus::AuthFailed),
            (
                Error::Store(StoreError::WrongPassword),
                ExitStatus::AuthFailed,
            ),
            (
                Error::Store(StoreError::NotInitialized),
                ExitStatus::UserError,
            ),
            (
                Error::Store(StoreError::Io(std::io::Error::other("x"))),
                ExitStatus::LocalData,
            ),
            (
                Error::UntrustedKey {
                    username: name("bob"),
                    account: AccountId::from_bytes([1; 16]),
                },
                ExitStatus::UntrustedKey,
            ),
            (
                Error::UnknownUser {
                    peer: PeerRef::Name(name("zed")),
                    reason: UnknownPeer::NotOnRelay,
                },
                ExitStatus::UserError,
            ),
            (Error::Link(LinkFailure::NotProven), ExitStatus::UserError),
            (Error::Link(LinkFailure::UnknownCode), ExitStatus::UserError),
            (
                Error::Link(LinkFailure::Inconsistent("another account")),
                ExitStatus::Network,
            ),
            (
                Error::Link(LinkFailure::EnrolledNotSetUp {
                    device: 2,
                    cause: Box::new(Error::Link(LinkFailure::Inconsistent("another account"))),
                }),
                ExitStatus::Network,
            ),
            (
                Error::Link(LinkFailure::EnrolledNotListed {
                    device: 2,
                    cause: Box::new(Error::Device(DeviceFailure::Removed(2))),
                }),
                ExitStatus::UserError,
            ),
            (Error::UsedElsewhere, ExitStatus::AuthFailed),
            (
                Error::Device(DeviceFailure::ThisDevice(1)),
                ExitStatus::UserError,
            ),
            (
                Error::Device(DeviceFailure::PublishContended { attempts: 4 }),
                ExitStatus::Network,
            ),
            // A restore into an account at its 8 devices: the user removes one.
            (
                Error::Device(DeviceFailure::AccountFull { limit: 8 }),
                ExitStatus::UserError,
            ),
            (
                Error::NotLoggedIn {
                    reason: "logged out".into(),
                },
                ExitStatus::AuthFailed,
            ),
            (
                Error::Store(StoreError::Locked {
                    dir: "/tmp/umbra".into(),
                    waited_secs: 30,
                }),
                ExitStatus::LocalData,
            ),
            (
                Error::Store(StoreError::OlderFormat {
                    found: 1,
                    supported: 2,
                }),
                ExitStatus::LocalData,
            ),
            (
                Error::Store(StoreError::NewerFormat {
                    found: 3,
                    supported: 2,
                }),
                ExitStatus::LocalData,
            ),
            (
                Error::InvalidMessage(InvalidMessage::ControlCharacter { position: 0 }),
                ExitStatus::UserError,
            ),
            (
                Error::PeerKeysExpired {
                    username: name("bob"),
                    age_days: 20,
                },
                ExitStatus::UserError,
            ),
            (
                Error::Protocol(RelayMisbehaved::EmptySendResult),
                ExitStatus::Network,
            ),
            (
                Error::Connection(ConnectionFailure::ClosedByRelay),
                ExitStatus::Network,
            ),
            (
                Error::Connection(ConnectionFailure::Ended(Ended::LoggedOut)),
                ExitStatus::AuthFailed,
            ),
            (
                Error::Connection(ConnectionFailure::Ended(Ended::SessionRefused {
                    code: ErrorCode::TokenExpired,
                })),
                ExitStatus::AuthFailed,
            ),
            (
                Error::Connection(ConnectionFailure::Ended(Ended::Replaced)),
                ExitStatus::LocalData,
            ),
            (
                Error::SessionContended {
                    username: name("bob"),
                    attempts: 3,
                },
                ExitStatus::Network,
            ),
            (
                Error::Crypto(CryptoFailure::BundleIdentity(identity_error())),
                ExitStatus::Network,
            ),
            (
                Error::Timeout(std::time::Duration::from_secs(1)),
                ExitStatus::Network,
            ),
            (relay(ErrorCode::RateLimited), ExitStatus::RateLimited),
            (relay(ErrorCode::TokenExpired), ExitStatus::AuthFailed),
            (relay(ErrorCode::UsernameTaken), ExitStatus::UserError),
            (relay(ErrorCode::Internal), ExitStatus::Network),
        ];
        for (error, expected) in cases {
            let shown = error.to_string();
            assert_eq!(classify(&anyhow::Error::new(error)), expected, "{shown}");
        }
    }

    #[test]
    fn a_rate_limit_says_when_to_try_again() {
        let error = Error::Relay {
            code: ErrorCode::RateLimited,
            message: "too many requests".into(),
            retry_after_secs: Some(7),
        };
        assert!(error.to_string().ends_with("; try again in 7 s"), "{error}");
        assert!(!relay(ErrorCode::Internal).to_string().contains("try again"));
    }

    #[test]
    fn status_is_found_under_added_context() {
        let error = anyhow::Error::new(Error::AuthFailed).context("logging in as alice");
        assert_eq!(classify(&error), ExitStatus::AuthFailed);
    }
}
