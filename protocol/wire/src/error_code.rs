//! Stable numeric error codes the relay reports to clients.
//!
//! A code names what went wrong and, through [`ErrorCode::is_retryable`] and
//! [`ErrorCode::is_fatal`], what the client should do next. Each code's
//! number is part of the wire format: it is encoded as a postcard varint
//! `u16`, and a number may never be reused for a different meaning.
//!
//! Must never: change a number, or decode an unknown number as some other code
//! (an unknown number is a malformed frame).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, )+) => {
        /// Why the relay refused a request or is closing a connection.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum ErrorCode {
            $( $(#[$doc])* $name = $num, )+
        }

        impl ErrorCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)+];

            /// The code for a wire number, or `None` if this version does not
            /// know it.
            pub const fn from_u16(value: u16) -> Option<Self> {
                match value {
                    $( $num => Some(ErrorCode::$name), )+
                    _ => None,
                }
            }

            /// The code's stable name, as written in the spec.
            pub const fn name(self) -> &'static str {
                match self {
                    $( ErrorCode::$name => stringify!($name), )+
                }
            }
        }
    };
}

error_codes! {
    /// The frame could not be decoded: bad postcard, trailing bytes, an
    /// unknown variant, or a field that breaks its own rules (for example
    /// a non-canonical username). Fix the client; do not retry as is.
    BadFrame = 1,
    /// The frame's version byte is outside the receiver's supported range.
    /// The message names the range; the connection is then closed.
    UnsupportedVersion = 2,
    /// The frame exceeded `MAX_FRAME_BYTES`. Split the request.
    FrameTooLarge = 3,
    /// The request needs an authenticated connection; send `Authenticate`.
    NotAuthenticated = 4,
    /// Login or token authentication failed. Deliberately the same for an
    /// unknown username and a wrong password.
    AuthFailed = 5,
    /// Registration asked for a username someone already holds.
    UsernameTaken = 6,
    /// The username is well-formed but not allowed by relay policy
    /// (for example a reserved name).
    InvalidUsername = 7,
    /// Too many requests; wait `retry_after_secs` before trying again.
    RateLimited = 8,
    /// The addressed account or device does not exist.
    UnknownRecipient = 9,
    /// The recipient's queue is full; retry later.
    QueueFull = 10,
    /// An envelope exceeded `MAX_ENVELOPE_BYTES`.
    EnvelopeTooLarge = 11,
    /// A `Send` addressed more than `MAX_RECIPIENTS_PER_SEND` recipients, or none.
    TooManyRecipients = 12,
    /// A signed prekey's signature does not verify under the identity key.
    BadSignature = 13,
    /// An upload exceeded `ONE_TIME_PREKEYS_PER_UPLOAD_MAX`, or the relay's
    /// per-device store of one-time prekeys.
    TooManyPreKeys = 14,
    /// The target has not published keys, so no session can be started.
    NoPreKeys = 15,
    /// The session token has expired; log in again.
    TokenExpired = 16,
    /// The relay failed internally; the request may be retried.
    Internal = 17,
    /// A newer connection for the same device replaced this one.
    Replaced = 18,
    /// The relay is shutting down; reconnect later (to another node).
    ShuttingDown = 19,
    /// No account holds this username.
    UnknownUsername = 20,
    /// The connection is already authenticated; the request is only valid before.
    AlreadyAuthenticated = 21,
    /// `LoginFinish`/`RegisterFinish` named no pending exchange (unknown or
    /// timed out). Start again.
    UnknownExchange = 22,
    /// A prekey upload was malformed: duplicate ids, or an id already in use.
    BadPreKey = 23,
    /// A request field exceeded its limit (ack count, ephemeral payload,
    /// OPAQUE message, identity or reason length).
    LimitExceeded = 24,
    /// `PublishKeys` offered an identity that another account (or another
    /// device) already publishes. Refused so that nobody can pose under
    /// their own account with a copy of someone else's keys.
    IdentityInUse = 25,
    /// `PublishDeviceList` offered a version not above the list the relay
    /// holds (§15.4): fetch the stored list, verify it, and publish a higher
    /// version built on it. Only ever sent in answer to `PublishDeviceList`.
    StaleDeviceList = 26,
}

impl ErrorCode {
    /// The number this code has on the wire.
    pub const fn as_u16(self) -> u16 {
        self as u16
    }

    /// Whether repeating the same request later can succeed.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::QueueFull
                | ErrorCode::Internal
                | ErrorCode::ShuttingDown
        )
    }

    /// Whether the relay closes the connection after reporting this code.
    pub const fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::BadFrame
                | ErrorCode::UnsupportedVersion
                | ErrorCode::FrameTooLarge
                | ErrorCode::Replaced
                | ErrorCode::ShuttingDown
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_u16())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.as_u16())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u16::deserialize(deserializer)?;
        ErrorCode::from_u16(value).ok_or_else(|| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Unsigned(u64::from(value)),
                &"a known umbra error code",
            )
        })
    }
}
