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

use umbra_protocol::identity::IdentityError;
use umbra_protocol::pairwise::PairwiseError;
use umbra_protocol::prekeys::PreKeyError;
use umbra_protocol::wire::WireError;

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
    /// A peer's prekey bundle does not verify.
    #[error("{username}'s prekey bundle is invalid: {source}")]
    InvalidBundle {
        /// Whose bundle.
        username: String,
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
    /// The connection ended for good (the state names why).
    #[error("{0}")]
    Ended(String),
    /// The relay's certificate authorities could not be loaded.
    #[error("TLS roots: {what}")]
    TlsRoots {
        /// What is wrong with them (a path and the reason).
        what: String,
    },
    /// TLS could not be configured.
    #[error("TLS setup: {0}")]
    Tls(#[source] BoxError),
}
