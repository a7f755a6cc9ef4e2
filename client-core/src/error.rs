//! The one error type of the client API.
//!
//! Each variant names a failure a caller can act on: a wrong password, a
//! contact whose key changed, a relay refusal with its code, a network
//! problem worth retrying. Integrators match on these; the CLI maps them to
//! exit codes.
//!
//! Whose fault a failure was is in the variant: the relay misbehaved
//! ([`Error::Protocol`], a [`RelayMisbehaved`]), cryptography failed
//! ([`Error::Crypto`], a [`CryptoFailure`]), the network did
//! ([`Error::Connection`], a [`ConnectionFailure`]), the local store did
//! ([`Error::Store`]), or the caller asked for something impossible (the
//! usage variants: [`Error::UnknownUser`], [`Error::InvalidUsername`],
//! [`Error::MessageTooLarge`], [`Error::InvalidMessage`], ...). A peer is
//! named by [`Username`] or [`PeerRef`] and an account by [`AccountId`],
//! never by a bare string; a reason is a typed enum
//! ([`UnknownPeer`], [`InvalidMessage`], [`crate::Ended`],
//! [`crate::TlsRootsProblem`]) with its own text.
//!
//! Must never: carry a secret (password, token, key) in its message.

use umbra_protocol::wire::{AccountId, ErrorCode, Username};

use crate::failure::{ConnectionFailure, CryptoFailure, InvalidMessage, RelayMisbehaved};
use crate::peer::{PeerRef, UnknownPeer};
use crate::store::StoreError;

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The local store failed (wrong password, tampering, I/O...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password does not open the local store.
    #[error("wrong password")]
    WrongPassword,
    /// A group operation was refused (unknown or ambiguous group, not an
    /// admin, not a member, nothing to change...): nothing was sent.
    #[error("group: {0}")]
    Group(#[from] crate::groups::GroupFailure),
    /// The relay refused the login (wrong username or password; the relay
    /// deliberately does not say which).
    #[error("login failed: wrong username or password")]
    AuthFailed,
    /// The contact's identity key differs from the one pinned for them.
    /// Nothing is sent until the user accepts the new key
    /// ([`Client::accept_key_change`](crate::Client::accept_key_change)) or
    /// verifies it ([`Client::mark_verified`](crate::Client::mark_verified)).
    #[error("{username}'s identity key changed; verify or accept the new key before sending")]
    UntrustedKey {
        /// The contact's username.
        username: Username,
        /// The contact's account.
        account: AccountId,
    },
    /// The username now names another account than the contact the user
    /// knows by it ([`Event::NameReassigned`](crate::Event::NameReassigned)).
    /// Nothing was sent; the user must pick which account the name means,
    /// by comparing safety numbers
    /// ([`Client::name_candidates`](crate::Client::name_candidates)).
    #[error(
        "{username} now names a different account than the {username} you know; nothing was \
         sent. Compare safety numbers (verify {username}) and choose which one {username} means"
    )]
    NameReassigned {
        /// The name.
        username: umbra_protocol::wire::Username,
    },
    /// The user blocked this contact ([`Client::block`](crate::Client::block)):
    /// nothing is sent to it until it is unblocked.
    #[error("you blocked {username}; nothing was sent. Unblock {username} to send to them")]
    Blocked {
        /// The contact's username.
        username: Username,
    },
    /// The safety number the user compared is not the current one of the
    /// contact (or of any account the name could mean): the key changed
    /// again since it was shown, or it was mistyped. Nothing was changed.
    #[error("the safety number given is not the current one for {username}; nothing was changed")]
    SafetyNumberMismatch {
        /// The name.
        username: umbra_protocol::wire::Username,
    },
    /// Nobody matched: no contact by this name or label, no account by
    /// this name on the relay, or one with no published keys; `reason`
    /// says which, and so whose it is to fix.
    #[error("unknown user {peer}: {reason}")]
    UnknownUser {
        /// Whom the caller named.
        peer: PeerRef,
        /// Why nobody matched.
        reason: UnknownPeer,
    },
    /// The contact's published signed prekey is older than the protocol
    /// allows (14 days): they have not been online to rotate it, and a
    /// session started from it could be one an attacker who stole the old
    /// key can read. Nothing was sent; the contact must come online once.
    #[error(
        "{username}'s published keys are {age_days} days old (at most 14 are accepted); \
         {username} must open umbra once to refresh them before a new conversation can start"
    )]
    PeerKeysExpired {
        /// The contact.
        username: Username,
        /// How old the signed prekey is, in whole days.
        age_days: u64,
    },
    /// The relay answered an ML-KEM prekey frame with `BadFrame`: it
    /// predates post-quantum sessions (docs/PROTOCOL.md §12.6). umbra starts
    /// no classical session instead, and stops asking this relay until the
    /// client is started again; the relay must be updated.
    #[error(
        "the relay is too old for post-quantum sessions (it does not know the ML-KEM prekey \
         frames); umbra will not start a classical session: the relay must be updated"
    )]
    RelayLacksPostQuantum,
    /// A device of the contact publishes no post-quantum (ML-KEM) prekey
    /// (docs/PROTOCOL.md §3.9, §12.4): a classical session a quantum
    /// attacker who recorded it could later read is refused, and nothing
    /// was sent to that device.
    #[error(
        "{username} (device {device}) publishes no post-quantum prekey: its client or the relay \
         is out of date; umbra will not start a classical session"
    )]
    NoPostQuantumPreKey {
        /// The contact.
        username: Username,
        /// The device whose bundle has no ML-KEM prekey.
        device: umbra_protocol::wire::DeviceId,
    },
    /// The username breaks the naming rules.
    #[error("invalid username: {0}")]
    InvalidUsername(#[from] umbra_protocol::wire::UsernameError),
    /// The message is larger than the protocol allows.
    #[error("message too large: {len} bytes (UTF-8), at most {max} fit in one message; nothing was sent")]
    MessageTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message itself cannot be sent: it breaks a rule of the protocol's
    /// content format (e.g. a control character other than tab and line
    /// breaks). Nothing was encrypted or queued; fix the text.
    #[error("the message cannot be sent: {0}")]
    InvalidMessage(#[from] InvalidMessage),
    /// A reply, reaction, edit or delete for everyone that the rules of
    /// docs/PROTOCOL.md §10.6 refuse here, as every receiver would (the
    /// message is unknown in this conversation, not ours to edit, too old,
    /// deleted, ...). Nothing was encrypted or sent.
    #[error("message {target}: {reason}; nothing was sent")]
    ChangeRefused {
        /// The message the change named.
        target: crate::MessageId,
        /// Why it was refused.
        reason: crate::ChangeRefusal,
    },
    /// Other sends or deliveries changed the contact's session every time
    /// this message was being prepared (local contention, not an error of
    /// anyone's). Nothing was encrypted or sent; sending again works.
    #[error(
        "{username}'s session changed {attempts} times while the message was prepared; nothing \
         was sent; send it again"
    )]
    SessionContended {
        /// The contact.
        username: Username,
        /// How many times the send planned again.
        attempts: usize,
    },
    /// The relay answered a request with an error.
    #[error(
        "relay refused the request: {code}: {message}{}",
        retry_hint(*retry_after_secs)
    )]
    Relay {
        /// The relay's code.
        code: ErrorCode,
        /// The relay's explanation.
        message: String,
        /// For `RateLimited`: seconds to wait.
        retry_after_secs: Option<u32>,
    },
    /// The relay could not be reached or the connection broke.
    #[error("relay connection: {0}")]
    Connection(#[from] ConnectionFailure),
    /// The relay sent something this client cannot use (its fault).
    #[error("relay protocol violation: {0}")]
    Protocol(#[from] RelayMisbehaved),
    /// A key-transparency check failed (docs/PROTOCOL.md §16.9): a
    /// directory answer was refused, or contradicts the remembered head.
    #[error(transparent)]
    KeyTransparency(#[from] crate::kt::KtFailure),
    /// A cryptographic operation failed (a bad bundle, a broken session).
    #[error("cryptographic failure: {0}")]
    Crypto(#[from] CryptoFailure),
    /// An operation did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The account backup could not be written or read.
    #[error(transparent)]
    Backup(#[from] crate::failure::BackupFailure),
    /// Linking a device failed (a code that is mistyped, expired or not
    /// this relay's; a joiner that did not prove the code; no answer in
    /// time): [`crate::LinkFailure`] says which and what to do.
    #[error(transparent)]
    Link(#[from] crate::link::LinkFailure),
    /// A password change was refused before anything reached the relay: an
    /// earlier change in this data directory lost its answer, and only a
    /// login tells which password the relay now holds (docs/PROTOCOL.md
    /// 12.15, "A lost answer"). Changing again first could discard what
    /// that login needs to re-seal the backup, or a store key slot of the
    /// relay's password. Nothing was changed.
    #[error(
        "an earlier password change in this data dir was not confirmed (its answer was lost); \
         nothing was changed. Log in first (umbra login, with whichever password the relay \
         accepts now) so that change is settled, then change the password again if still needed"
    )]
    PasswordChangeUnsettled,
    /// A file could not be sent or fetched.
    #[error(transparent)]
    File(#[from] crate::failure::FileFailure),
    /// A device of the account could not be listed, removed or published
    /// (docs/PROTOCOL.md §15).
    #[error(transparent)]
    Device(#[from] crate::failure::DeviceFailure),
    /// The server URL is not usable.
    #[error("invalid server URL {0}: expected http(s):// or ws(s)://")]
    BadServerUrl(String),
    /// The client was shut down, logged out or its account deleted.
    #[error("the client is closed")]
    Closed,
    /// The relay no longer knows this data directory's session: the account
    /// logged in from another data directory (which revokes every other
    /// session, because until multi-device exists one account has one
    /// identity in one place). Nothing was received or acknowledged here;
    /// messages go to the other data directory now. Logging in here again
    /// takes the account back (contacts then see a key change again).
    ///
    /// The relay answers a deleted account's (or a reset relay's unknown)
    /// token the same way, so the message names that case too.
    #[error(
        "the relay no longer accepts this data dir's session. Most likely this account is now \
         used from another data dir: a login there ended this one's session, and messages go \
         there now; log in here again to take it back. If no other data dir logged in, the relay \
         no longer knows the account (it was deleted, or the relay's data was reset)"
    )]
    UsedElsewhere,
    /// This data directory has no live session on the relay: it logged out,
    /// or the relay refused its stored token (expired or revoked). Logging
    /// in again resumes; keys and history are kept.
    #[error("{reason}")]
    NotLoggedIn {
        /// What the relay or the store said.
        reason: String,
    },
}

/// "; retry in N s" for an answer that says when a retry may succeed.
fn retry_hint(retry_after_secs: Option<u32>) -> String {
    match retry_after_secs {
        Some(secs) => format!("; try again in {secs} s"),
        None => String::new(),
    }
}

impl Error {
    /// Nobody matched `peer`, for `reason`.
    pub(crate) fn unknown(peer: impl Into<PeerRef>, reason: UnknownPeer) -> Self {
        Error::UnknownUser {
            peer: peer.into(),
            reason,
        }
    }

    /// The failure itself: under a
    /// [`ConnectionFailure::Attempt`] (a failed attempt to reach the relay,
    /// shared with the connection state) the attempt's error, else this one.
    pub fn failure(&self) -> &Error {
        match self {
            Error::Connection(ConnectionFailure::Attempt(shared)) => shared.error().failure(),
            other => other,
        }
    }

    /// Whether repeating the operation later may succeed (network trouble,
    /// rate limits, a busy relay).
    pub fn is_retryable(&self) -> bool {
        match self {
            // A failed attempt is as retryable as its failure.
            Error::Connection(ConnectionFailure::Attempt(shared)) => shared.error().is_retryable(),
            Error::Connection(_)
            | Error::Timeout(_)
            | Error::SessionContended { .. }
            | Error::Device(crate::failure::DeviceFailure::PublishContended { .. }) => true,
            Error::Relay { code, .. } => code.is_retryable(),
            _ => false,
        }
    }

    pub(crate) fn relay(code: ErrorCode, message: String, retry_after_secs: Option<u32>) -> Self {
        Error::Relay {
            code,
            message,
            retry_after_secs,
        }
    }
}

impl From<umbra_protocol::wire::WireError> for Error {
    fn from(e: umbra_protocol::wire::WireError) -> Self {
        Error::Protocol(RelayMisbehaved::Frame(e))
    }
}

/// The error for a response of the wrong kind.
pub(crate) fn unexpected(expected: &'static str, got: &umbra_protocol::wire::Response) -> Error {
    Error::Protocol(RelayMisbehaved::UnexpectedResponse {
        expected,
        got: got.kind(),
    })
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error`] as a log line may show it. The error's own text is written
/// for the user and names contacts (`bob's identity key changed`); a log
/// must never name anyone (issue 9: usernames are never logged), so the
/// variants that carry a name, or may (a crypto failure about a contact's
/// bundle), are described without it.
pub(crate) struct LogSafe<'a>(pub(crate) &'a Error);

impl std::fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Error::UntrustedKey { .. } => f.write_str("a contact's identity key changed"),
            Error::NameReassigned { .. } => f.write_str("a name now means another account"),
            Error::SafetyNumberMismatch { .. } => f.write_str("safety number mismatch"),
            Error::Blocked { .. } => f.write_str("the contact is blocked"),
            Error::UnknownUser { .. } => f.write_str("unknown user"),
            Error::PeerKeysExpired { age_days, .. } => {
                write!(f, "a contact's published keys are {age_days} days old")
            }
            Error::InvalidUsername(_) => f.write_str("invalid username"),
            Error::Crypto(_) => f.write_str("cryptographic failure"),
            // A failed connection attempt: as safe as its failure.
            Error::Connection(ConnectionFailure::Attempt(attempt)) => {
                std::fmt::Display::fmt(&LogSafe(attempt.error()), f)
            }
            other => std::fmt::Display::fmt(other, f),
        }
    }
}

#[cfg(test)]
mod log_safe_tests {
    use super::*;

    #[test]
    fn log_safe_errors_name_nobody() {
        let name = Username::parse("zqlogname").expect("valid");
        for error in [
            Error::NameReassigned {
                username: name.clone(),
            },
            Error::SafetyNumberMismatch {
                username: name.clone(),
            },
            Error::PeerKeysExpired {
                username: name.clone(),
                age_days: 20,
            },
            // Shared with the connection state: as safe as its failure.
            Error::Connection(ConnectionFailure::Attempt(crate::SharedError::new(
                Error::SafetyNumberMismatch {
                    username: name.clone(),
                },
            ))),
        ] {
            assert!(
                error.to_string().contains("zqlogname"),
                "the user's text names them"
            );
            let logged = LogSafe(&error).to_string();
            assert!(!logged.contains("zqlogname"), "{logged}");
        }
        assert_eq!(
            LogSafe(&Error::AuthFailed).to_string(),
            Error::AuthFailed.to_string()
        );
    }
}
