//! What went wrong, by whose fault: the typed sources of
//! [`Error::Protocol`](crate::Error::Protocol) (the relay misbehaved),
//! [`Error::Crypto`](crate::Error::Crypto) (a cryptographic operation
//! failed) and [`Error::Connection`](crate::Error::Connection) (the network
//! or the relay's availability), in the manner of rustls' error kinds.
//!
//! An integrator matches on the kind to decide whom to blame and what to
//! do: a misbehaving relay is reported, not retried; a connection failure
//! is retried later; a crypto failure names the peer's keys or ours.
//!
//! Must never: carry a secret (password, token, key bytes) in a message or
//! a source.

use std::path::PathBuf;
use std::sync::Arc;

use umbra_protocol::content::ContentError;
use umbra_protocol::device_list::DeviceListError;
use umbra_protocol::identity::IdentityError;
use umbra_protocol::pairwise::PairwiseError;
use umbra_protocol::payload::PayloadError;
use umbra_protocol::prekeys::PreKeyError;
use umbra_protocol::wire::{ErrorCode, LimitError, Username, WireError};

use crate::store::StoreError;

/// A foreign error kept as a source (TLS, WebSocket, I/O).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The relay sent something this client cannot use: its fault, not ours.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayMisbehaved {
    /// It answered a request with the wrong kind of response.
    #[error("expected {expected}, the relay answered {got}")]
    UnexpectedResponse {
        /// The response kind the request calls for.
        expected: &'static str,
        /// The kind it sent.
        got: &'static str,
    },
    /// It answered a send with no per-message result.
    #[error("the relay answered a send with no result")]
    EmptySendResult,
    /// It sent a text WebSocket message (the protocol is binary only).
    #[error("the relay sent a text message")]
    TextFrame,
    /// A frame does not decode.
    #[error("a relay frame does not decode: {0}")]
    Frame(#[from] WireError),
    /// An OPAQUE message from the relay is malformed.
    #[error("malformed OPAQUE {0} from the relay")]
    MalformedOpaque(&'static str),
    /// It served a bundle of an account other than the one asked for.
    #[error("the relay returned another account's prekey bundle")]
    WrongBundleAccount,
    /// Two logins in a row named different accounts.
    #[error("the relay named a different account on the second login")]
    AccountChanged,
    /// The identity it publishes for a name does not decode.
    #[error("the relay published an identity that does not decode: {0}")]
    PublishedIdentity(#[source] IdentityError),
    /// An answer breaks the response limits of docs/PROTOCOL.md §9.9
    /// (`Response::check_limits`).
    #[error("the relay's answer breaks a protocol limit: {0}")]
    ResponseOverLimit(#[source] LimitError),
    /// It served a device list for `account` that the account's pinned
    /// identity did not sign (§15.3: a list the account never made, e.g. a
    /// device the relay added). It was not applied.
    #[error(
        "the relay served a device list for account {account} that the account's identity did \
         not sign; it was ignored and the list verified before is kept"
    )]
    ForgedDeviceList {
        /// Whose list.
        account: umbra_protocol::wire::AccountId,
    },
    /// It served an older device list for `account` than one this client
    /// verified before (§15.3: a rollback, which could revive a removed
    /// device). It was not applied.
    #[error(
        "the relay served version {got} of account {account}'s device list, older than \
         version {held} verified before (a rollback); it was ignored and version {held} is kept"
    )]
    DeviceListRollback {
        /// Whose list.
        account: umbra_protocol::wire::AccountId,
        /// The version held.
        held: u64,
        /// The version served.
        got: u64,
    },
    /// It served a device list for `account` under the version held, but
    /// other bytes than the held list's (§15.3: two lists under one
    /// version, which a relay taking only strictly higher versions, §15.4,
    /// never stores). It was not applied.
    #[error(
        "the relay served another device list for account {account} under version {version}, \
         the version verified before; it was ignored and the list verified before is kept"
    )]
    DeviceListEquivocation {
        /// Whose list.
        account: umbra_protocol::wire::AccountId,
        /// The version both lists carry.
        version: u64,
    },
    /// It served a device list for `account` whose version is above
    /// 2^63 − 1, which a relay never stores (§15.4). It was not applied.
    #[error(
        "the relay served version {version} of account {account}'s device list, above the \
         highest a relay stores; it was ignored"
    )]
    DeviceListVersionOverLimit {
        /// Whose list.
        account: umbra_protocol::wire::AccountId,
        /// The version served.
        version: u64,
    },
    /// It served a device list for `account` that does not decode or names
    /// another account (the relay checks both before storing one, §15.4).
    #[error("the relay served a malformed device list for account {account}: {source}")]
    MalformedDeviceList {
        /// Whose list was asked for.
        account: umbra_protocol::wire::AccountId,
        /// Why it was refused.
        source: DeviceListError,
    },
}

/// A device operation was refused or could not finish (docs/PROTOCOL.md
/// §15; `crate::devices`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceFailure {
    /// A device cannot remove itself (the relay refuses it too, §15.5):
    /// nothing was asked of the relay.
    #[error(
        "device {0} is this device; a device cannot remove itself. Remove it from another \
         device of the account (umbra devices remove {0} there), or log out here"
    )]
    ThisDevice(u32),
    /// No current device of the account has this id.
    #[error("device {0} is not a current device of this account (umbra devices lists them)")]
    Unknown(u32),
    /// Other publications of the account's device list (another device of
    /// it) won every attempt to publish ours: the relay answered
    /// `StaleDeviceList` each time. Publishing again works.
    #[error(
        "the account's device list changed on the relay during each of {attempts} attempts to \
         publish it; try again"
    )]
    PublishContended {
        /// How many publications were refused as stale.
        attempts: usize,
    },
    /// This client removed the device (it keeps a tombstone of every id it
    /// asked the relay to remove, and ids are never reused, §15.1), so no
    /// list naming it is signed.
    #[error("device {0} was removed from this account; a removed device cannot be listed again")]
    Removed(u32),
    /// The account's list is at the highest version a relay stores
    /// (2^63 − 1, §15.4): no later list can be published.
    #[error("the account's device list is at version {version}, the last one; no newer list can be published")]
    VersionExhausted {
        /// The version held or served.
        version: u64,
    },
    /// The new list could not be built (e.g. more devices than an account
    /// may have, or a version past the last one).
    #[error("building the account's device list: {0}")]
    List(#[source] DeviceListError),
    /// A password login in an empty data directory would be a new device
    /// (§15.6), but the account already has the most devices it may have
    /// (the relay's `LimitExceeded`); nothing was written here.
    #[error(
        "the account already has {limit} devices, the most it may have, so this data directory \
         cannot become another: remove a lost one from a current device (umbra devices, then \
         umbra devices remove ID there) and log in again"
    )]
    AccountFull {
        /// `MAX_DEVICES_PER_ACCOUNT`.
        limit: usize,
    },
    /// A password login into the store of a device other than device 1 (a
    /// linked or restored one) asked the relay for this device's token
    /// (`LoginDevice`, §15.6), and the relay holds the id as no current
    /// device of the account: it was removed, and removed ids never come
    /// back (§15.1). Nothing was written here.
    #[error(
        "this data directory is device {0} of the account, and device {0} is not a current \
         device of the account (it was removed); a removed device cannot log in again: move \
         this data directory aside and link it again from a current device (umbra link)"
    )]
    NotCurrent(u32),
}

/// A cryptographic operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoFailure {
    /// A session could not be started from the peer's bundle.
    #[error("starting a session: {0}")]
    StartSession(#[source] PairwiseError),
    /// A message could not be encrypted with the session.
    #[error("encrypting: {0}")]
    Encrypt(#[source] PairwiseError),
    /// A peer's prekey bundle does not verify (the peer's keys, or a relay
    /// that altered them).
    #[error("{username}'s prekey bundle is invalid: {source}")]
    InvalidBundle {
        /// Whose bundle.
        username: Username,
        /// Why it was refused.
        source: PreKeyError,
    },
    /// A bundle's identity key does not decode.
    #[error("a prekey bundle's identity key does not decode: {0}")]
    BundleIdentity(#[source] IdentityError),
    /// An OPAQUE step failed on our side.
    #[error("OPAQUE {step}: {source}")]
    Opaque {
        /// Which step.
        step: &'static str,
        /// opaque-ke's error.
        source: opaque_ke::errors::ProtocolError,
    },
    /// Our identity key pair could not be copied through its encoding.
    #[error("copying the identity key pair: {0}")]
    KeyCopy(#[source] postcard::Error),
    /// OPAQUE gave an export key of another length than umbra's suite's 64.
    #[error("OPAQUE export key of {0} bytes (64 expected)")]
    ExportKeyLength(usize),
}

/// Why the account backup (docs/PROTOCOL.md §13, §12.15) could not be
/// written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupFailure {
    /// The relay's backup does not open or is not well formed: a wrong key
    /// (sealed under another password), tampered, rolled back, or contents
    /// this version cannot read; also contents this client could not seal.
    #[error("account backup: {0}")]
    Contents(#[source] umbra_protocol::backup::BackupError),
    /// The HTTP exchange with the relay failed (connection reset, closed).
    #[error("account backup transfer: {0}")]
    Transport(#[source] std::io::Error),
    /// The relay's HTTP answer is not one this client reads (its fault).
    #[error("account backup: the relay's answer is malformed: {0}")]
    BadAnswer(&'static str),
    /// The relay refused the request.
    #[error("account backup: the relay answered {status}: {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The relay's one-line reason.
        reason: String,
    },
    /// The store has no export key (written before backups existed, and
    /// not logged in since): a login with the password gives one.
    #[error("account backup: no export key in this store yet; log in again to enable backups")]
    NoExportKey,
}

/// A file could not be sent or fetched (docs/PROTOCOL.md §14).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileFailure {
    /// No file with this local id in this data directory.
    #[error("no file with id {0} (the id `receive` printed)")]
    Unknown(String),
    /// Reading the file to send, or writing the fetched one, failed.
    #[error("{what} {}: {source}", path.display())]
    Local {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The file to send changed size while it was being sent.
    #[error("{} changed while it was being sent; nothing was sent", .0.display())]
    Changed(std::path::PathBuf),
    /// The destination already exists; nothing is overwritten.
    #[error("{} already exists; give another path", .0.display())]
    Exists(std::path::PathBuf),
    /// The file is not one that can be sent (too large, not a regular file).
    #[error("cannot send {}: {reason}", path.display())]
    Unsendable {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The downloaded blob is not the file the pointer names: tampered,
    /// truncated, reordered or replaced. Nothing was saved.
    #[error("the downloaded file failed verification and was not saved: {0}")]
    Verification(#[source] umbra_protocol::attachment::AttachmentError),
    /// The HTTP exchange with the relay broke.
    #[error("file transfer: {0}")]
    Transport(#[source] std::io::Error),
    /// The relay's HTTP answer is not one this client reads.
    #[error("file transfer: the relay's answer is malformed: {0}")]
    BadAnswer(&'static str),
    /// The relay refused the upload or download.
    #[error("file transfer: the relay answered {status}: {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The relay's one-line reason.
        reason: String,
    },
}

/// The relay could not be reached, or the connection broke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionFailure {
    /// Opening the WebSocket did not finish in time.
    #[error("connecting to {url} timed out")]
    ConnectTimeout {
        /// The relay's URL.
        url: String,
    },
    /// A TLS (`https://`, `wss://`) connection reached a relay that answers
    /// in plain text.
    #[error(
        "connecting to {url}: the relay does not speak TLS on this port; use http:// (or ws://) \
         for a relay without TLS"
    )]
    NotTls {
        /// The WebSocket URL tried.
        url: String,
    },
    /// Opening the WebSocket failed.
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The relay's URL.
        url: String,
        /// The transport's error.
        source: BoxError,
    },
    /// The relay refused the connection because it is full (HTTP 503 on the
    /// upgrade: its connection cap, relay-wide or for this address, is
    /// reached). Nobody's fault; retry no sooner than `retry_after`.
    #[error(
        "{url}: the relay is full (too many connections){}",
        retry_after.map(|d| format!("; try again in {} s", d.as_secs())).unwrap_or_default()
    )]
    RelayFull {
        /// The WebSocket URL tried.
        url: String,
        /// The relay's `Retry-After`, if it sent a usable one (seconds,
        /// bounded by `MAX_RELAY_FULL_WAIT`).
        retry_after: Option<std::time::Duration>,
    },
    /// Writing to the relay failed.
    #[error("sending to the relay: {0}")]
    Send(#[source] BoxError),
    /// Reading from the relay failed.
    #[error("relay connection: {0}")]
    Receive(#[source] BoxError),
    /// The relay closed the connection.
    #[error("the relay closed the connection")]
    ClosedByRelay,
    /// There is no live connection (the client is offline).
    #[error("not connected")]
    NotConnected,
    /// The background connection did not come up in time.
    #[error("the relay is not reachable")]
    Unreachable,
    /// The relay could not be reached within the caller's wait.
    #[error("could not reach the relay within {0:?}")]
    UnreachableWithin(std::time::Duration),
    /// The connection ended while a request was queued or in flight.
    #[error("the connection was lost before the relay answered")]
    Lost,
    /// The connection ended for good; no retry happens.
    #[error("{0}")]
    Ended(Ended),
    /// The latest attempt to reach the relay failed, for a caller that never
    /// saw the connection up: the failure the connection state
    /// ([`ConnectionState::Reconnecting`](crate::ConnectionState)) shows,
    /// shared with it ([`SharedError::error`](crate::SharedError::error) is
    /// the typed failure: a [`ConnectionFailure`], a relay refusal...).
    #[error(transparent)]
    Attempt(crate::SharedError),
    /// The relay's certificate authorities could not be loaded: the local
    /// TLS configuration is at fault, not the relay.
    #[error("TLS roots{}: {problem}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    TlsRoots {
        /// The CA file tried (`None`: no system bundle was found).
        path: Option<PathBuf>,
        /// What is wrong with it.
        problem: TlsRootsProblem,
    },
    /// TLS could not be configured.
    #[error("TLS setup: {0}")]
    Tls(#[source] BoxError),
}

/// Why the connection ended for good, and whose doing it was. The
/// connection state ([`ConnectionState::Closed`](crate::ConnectionState))
/// shows the same text.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Ended {
    /// This data directory logged out (local: log in again).
    #[error("this data dir is logged out; log in again to use it")]
    LoggedOut,
    /// The stored token could not be read (local store).
    #[error("local store: {0}")]
    LocalStore(#[source] Arc<StoreError>),
    /// The relay no longer knows our token: another data directory logged
    /// in (see [`Error::UsedElsewhere`](crate::Error::UsedElsewhere)).
    #[error("{}", crate::Error::UsedElsewhere)]
    UsedElsewhere,
    /// The relay refused our token (expired or revoked): log in again.
    #[error("session expired or revoked ({code}); log in again")]
    SessionRefused {
        /// The relay's code.
        code: ErrorCode,
    },
    /// The relay does not speak this client's protocol version (upgrade the
    /// client or the relay).
    #[error("the relay does not speak this client's protocol version: {relay_says}")]
    UnsupportedVersion {
        /// The relay's explanation (its words, untrusted).
        relay_says: String,
    },
    /// Another connection for this account and device took over (local:
    /// another process using the same data, such as a second `umbra chat`).
    #[error("another connection for this account replaced this one")]
    Replaced,
}

impl PartialEq for Ended {
    /// The same end: a store failure only when it is the same failure.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Ended::LoggedOut, Ended::LoggedOut)
            | (Ended::UsedElsewhere, Ended::UsedElsewhere)
            | (Ended::Replaced, Ended::Replaced) => true,
            (Ended::LocalStore(a), Ended::LocalStore(b)) => Arc::ptr_eq(a, b),
            (Ended::SessionRefused { code: a }, Ended::SessionRefused { code: b }) => a == b,
            (
                Ended::UnsupportedVersion { relay_says: a },
                Ended::UnsupportedVersion { relay_says: b },
            ) => a == b,
            _ => false,
        }
    }
}

impl Eq for Ended {}

impl Ended {
    /// A stable machine-readable name (`reason_code` of a `closed`
    /// connection in docs/CLI.md).
    pub fn code(&self) -> &'static str {
        match self {
            Ended::LoggedOut => "logged_out",
            Ended::LocalStore(_) => "local_store",
            Ended::UsedElsewhere => "used_elsewhere",
            Ended::SessionRefused { .. } => "session_refused",
            Ended::UnsupportedVersion { .. } => "unsupported_version",
            Ended::Replaced => "replaced",
        }
    }
}

/// What is wrong with the TLS roots (local configuration).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRootsProblem {
    /// No CA file was configured and the platform has no usable trusted
    /// root (`rustls-native-certs` found none, or `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR` name nothing usable).
    #[error("no usable system CA certificate found; configure the relay's CA file (tls_roots)")]
    NoSystemBundle,
    /// The file cannot be read.
    #[error("cannot be read: {0}")]
    Unreadable(#[source] std::io::Error),
    /// The file is not PEM.
    #[error("is not a PEM file: {0}")]
    NotPem(#[source] rustls::pki_types::pem::Error),
    /// The file holds no certificate rustls can use.
    #[error("holds no usable certificate")]
    NoUsableCertificate,
}

/// Why a message or request was refused before anything was encrypted or
/// sent: the caller's content breaks a rule of the protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// A control character other than tab and line breaks.
    #[error(
        "it contains a control character at byte {position} (terminal escapes and the like \
         cannot be sent; tab and line breaks can)"
    )]
    ControlCharacter {
        /// Its byte offset in the text.
        position: usize,
    },
    /// Another rule of the content format.
    #[error("{0}")]
    Content(#[source] ContentError),
    /// The payload does not encode (it breaks a size limit).
    #[error("it does not encode: {0}")]
    Encoding(#[source] PayloadError),
    /// The request breaks a limit of the wire format.
    #[error("the request is over a limit: {0}")]
    OverLimit(#[source] LimitError),
}
