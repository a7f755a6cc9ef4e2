//! Frames the relay sends to a client.
//!
//! A relay frame is either the one reply to a client request (echoing its
//! `request_id`) or an unsolicited push: a queued envelope, the end of the
//! backlog, an ephemeral payload, a prekey hint, or notice of closing.
//!
//! The variant orders below are the postcard discriminants and are frozen for
//! this wire version: new variants are appended, never inserted.
//!
//! Must never: name the sender of a delivered envelope or ephemeral payload
//! (sealed sender), or carry a token anywhere but `LoginDone`,
//! `PasswordChanged`, a `LinkMessages` that enrols a new device and
//! `LoginEnrolled`.

use serde::{Deserialize, Serialize};

use super::address::{AccountId, Address, DeviceId};
use super::client_frame::{at_most, LimitError};
use super::devices::{DeviceInfo, LinkEnrolled, LinkTicketId};
use super::error_code::ErrorCode;
use super::limits;
use super::prekey::{HybridBundleWire, PreKeyBundleWire};
use super::token::SessionToken;
use super::username::Username;

/// One relay-to-client frame. Each variant's doc starts with its postcard tag.
/// `Debug` is redacted (`redacted_debug.rs`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayFrame {
    /// Tag 0: The reply to the client request with this id (0 if the request's
    /// id could not be read).
    Response {
        /// The id of the request answered.
        request_id: u64,
        /// The answer.
        response: Response,
    },
    /// Tag 1: A queued envelope, pushed in sequence order. The client acks `seq`
    /// once it has stored or processed it; until then it may be redelivered.
    Deliver {
        /// Per-recipient sequence number, strictly increasing.
        seq: u64,
        /// The sealed envelope as the sender queued it.
        #[serde(with = "serde_bytes")]
        envelope: Vec<u8>,
        /// When the relay accepted it, Unix milliseconds.
        received_at_ms: u64,
    },
    /// Tag 2: Everything queued when the connection authenticated has been pushed.
    QueueEmpty,
    /// Tag 3: An ephemeral payload from an unnamed sender; never stored.
    EphemeralDeliver {
        /// The sealed payload.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Tag 4: The device's one-time prekeys are running low; upload more.
    PreKeysLow {
        /// How many are left.
        remaining: u32,
    },
    /// Tag 5: The relay is closing the connection, and why.
    Closing {
        /// The reason as a code.
        code: ErrorCode,
        /// Human-readable detail, at most `MAX_REASON_BYTES`.
        reason: String,
    },
    /// Tag 6: The device's one-time ML-KEM prekeys are running low; upload more.
    KemPreKeysLow {
        /// How many are left.
        remaining: u32,
    },
}

/// The outcome of one envelope of a `Send`, in request order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendOutcome {
    /// Tag 0: Durably queued under this sequence number.
    Accepted {
        /// The recipient-queue sequence number.
        seq: u64,
    },
    /// Tag 1: Not queued, and why (for example `UnknownRecipient`, `QueueFull`,
    /// `EnvelopeTooLarge`). Other envelopes of the same send are unaffected.
    Rejected {
        /// Why.
        code: ErrorCode,
    },
}

/// The reply to one request. Each variant's doc starts with its postcard tag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Tag 0: Answer to `RegisterStart`.
    RegisterResponse {
        /// opaque-ke `RegistrationResponse` bytes.
        #[serde(with = "serde_bytes")]
        opaque_response: Vec<u8>,
    },
    /// Tag 1: Answer to `RegisterFinish`: the account now exists.
    RegisterDone {
        /// The new account's id.
        account: AccountId,
    },
    /// Tag 2: Answer to `LoginStart`.
    LoginResponse {
        /// Names the pending login for `LoginFinish`.
        login_id: u64,
        /// opaque-ke `CredentialResponse` bytes.
        #[serde(with = "serde_bytes")]
        opaque_response: Vec<u8>,
    },
    /// Tag 3: Answer to `LoginFinish`: the password was right.
    LoginDone {
        /// Bearer token for `Authenticate`.
        token: SessionToken,
        /// The account logged into.
        account: AccountId,
        /// When the token expires, Unix seconds.
        expires_at: u64,
    },
    /// Tag 4: Answer to `Authenticate`: the connection now acts as this device.
    Authenticated {
        /// The connection's own address.
        address: Address,
    },
    /// Tag 5: Answer to `Send`: one outcome per envelope, in request order.
    SendResult {
        /// Outcomes.
        results: Vec<SendOutcome>,
    },
    /// Tag 6: Answer to `FetchBundle`.
    Bundle(Box<PreKeyBundleWire>),
    /// Tag 7: Answer to `PreKeyCount` and `UploadPreKeys`.
    PreKeyCount {
        /// One-time prekeys left.
        remaining: u32,
        /// Below this the relay sends `PreKeysLow`.
        low_water: u32,
    },
    /// Tag 8: Answer to `ResolveUsername` and `Rename`.
    Resolved {
        /// The username.
        username: Username,
        /// Its account.
        account: AccountId,
        /// The identity public key the account's primary device currently
        /// publishes (the identity module's encoding, as in a bundle), or
        /// `None` if it has published none. Looking it up claims no one-time
        /// prekey: a client checks a pinned contact with it before sending
        /// over an existing session.
        #[serde(with = "serde_bytes")]
        identity: Option<Vec<u8>>,
    },
    /// Tag 9: The request succeeded and has nothing to return.
    Ok,
    /// Tag 10: Answer to `Ping`.
    Pong,
    /// Tag 11: The request failed.
    Error {
        /// Why.
        code: ErrorCode,
        /// Human-readable detail, at most `MAX_REASON_BYTES`; never secret.
        message: String,
        /// For `RateLimited`: seconds to wait before retrying.
        retry_after_secs: Option<u32>,
    },
    /// Tag 12: Answer to `PasswordChangeStart`.
    PasswordChangeResponse {
        /// Names the pending change for `PasswordChangeFinish`.
        change_id: u64,
        /// opaque-ke `CredentialResponse` (KE2) bytes, under the current record.
        #[serde(with = "serde_bytes")]
        credential_response: Vec<u8>,
        /// opaque-ke `RegistrationResponse` bytes for the new password.
        #[serde(with = "serde_bytes")]
        registration_response: Vec<u8>,
    },
    /// Tag 13: Answer to a `PasswordChangeFinish` that changed the password:
    /// every token of the account was revoked, the one this connection
    /// presented included, and this one issued in their place.
    PasswordChanged {
        /// The new bearer token for `Authenticate`; this connection now
        /// acts under it.
        token: SessionToken,
        /// When the token expires, Unix seconds.
        expires_at: u64,
    },
    /// Tag 14: Answer to `FetchDeviceList`.
    DeviceList {
        /// The stored list exactly as published (§15.2), at most
        /// `MAX_DEVICE_LIST_BYTES`; `None` if the account has published none.
        #[serde(with = "serde_bytes")]
        list: Option<Vec<u8>>,
    },
    /// Tag 15: Answer to `ListDevices`.
    Devices {
        /// The account's current devices in ascending id order, at most
        /// `MAX_DEVICES_PER_ACCOUNT`.
        devices: Vec<DeviceInfo>,
    },
    /// Tag 16: Answer to `LinkCreate`.
    LinkTicket {
        /// The new rendezvous's handle.
        ticket: LinkTicketId,
        /// When it expires, Unix seconds.
        expires_at: u64,
    },
    /// Tag 17: Answer to `LinkFetch`.
    LinkMessages {
        /// The other side's posts numbered above `after`, in order: at most
        /// `MAX_LINK_MESSAGES_PER_SIDE`, each at most `MAX_LINK_MESSAGE_BYTES`.
        messages: Vec<LinkMessage>,
        /// Set for the joiner once the creator enrolled it: its new device
        /// and first token.
        enrolled: Option<LinkEnrolled>,
    },
    /// Tag 18: Answer to `LinkEnrol`: the joiner's new device id.
    DeviceEnrolled {
        /// The device id assigned.
        device: DeviceId,
    },
    /// Tag 19: Answer to `FetchHybridBundle`.
    HybridBundle(Box<HybridBundleWire>),
    /// Tag 20: Answer to `KemPreKeyCount` and `UploadKemPreKeys`.
    KemPreKeyCount {
        /// One-time ML-KEM prekeys left.
        remaining: u32,
        /// Below this the relay sends `KemPreKeysLow`.
        low_water: u32,
    },
    /// Tag 21: Answer to `LoginEnrol` (the new device and its first token)
    /// and to `LoginDevice` (the named device and its new token)
    /// (the login's token is revoked in its place), fields as in
    /// `LinkMessages.enrolled`.
    LoginEnrolled(LinkEnrolled),
    /// Tag 22: Answer to `KtHead`: the newest signed head (§16.7), the
    /// consistency proof (§16.8) from the head of the epoch the client
    /// named, and the entry and inclusion proof of the older epoch it
    /// named, each `None` when not asked for.
    KtHead {
        /// The head's encoding.
        #[serde(with = "serde_bytes")]
        head: Vec<u8>,
        /// Consistency proof from size `known + 1` to `epoch + 1`.
        #[serde(with = "serde_bytes")]
        consistency: Option<Vec<u8>>,
        /// The 49-byte entry of epoch `entry_of`.
        #[serde(with = "serde_bytes")]
        entry: Option<Vec<u8>>,
        /// Its inclusion proof in the head's log.
        #[serde(with = "serde_bytes")]
        inclusion: Option<Vec<u8>>,
    },
    /// Tag 23: Answer to `KtLookup`: the head it is proven against (the
    /// newest) and the lookup proof (§16.5).
    KtLookup {
        /// The head's encoding.
        #[serde(with = "serde_bytes")]
        head: Vec<u8>,
        /// The proof's encoding.
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
    },
    /// Tag 24: Answer to `KtHistory`: the head and the history proof (§16.6).
    KtHistory {
        /// The head's encoding.
        #[serde(with = "serde_bytes")]
        head: Vec<u8>,
        /// The proof's encoding.
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
    },
}

/// One link post as `LinkMessages` returns it: a byte string the relay
/// never reads.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkMessage(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl std::fmt::Debug for LinkMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkMessage")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The variant's name, for logs and error messages (never its contents).
    pub const fn kind(&self) -> &'static str {
        match self {
            Response::RegisterResponse { .. } => "RegisterResponse",
            Response::RegisterDone { .. } => "RegisterDone",
            Response::LoginResponse { .. } => "LoginResponse",
            Response::LoginDone { .. } => "LoginDone",
            Response::Authenticated { .. } => "Authenticated",
            Response::SendResult { .. } => "SendResult",
            Response::Bundle(_) => "Bundle",
            Response::PreKeyCount { .. } => "PreKeyCount",
            Response::Resolved { .. } => "Resolved",
            Response::Ok => "Ok",
            Response::Pong => "Pong",
            Response::Error { .. } => "Error",
            Response::PasswordChangeResponse { .. } => "PasswordChangeResponse",
            Response::PasswordChanged { .. } => "PasswordChanged",
            Response::DeviceList { .. } => "DeviceList",
            Response::Devices { .. } => "Devices",
            Response::LinkTicket { .. } => "LinkTicket",
            Response::LinkMessages { .. } => "LinkMessages",
            Response::DeviceEnrolled { .. } => "DeviceEnrolled",
            Response::HybridBundle(_) => "HybridBundle",
            Response::KemPreKeyCount { .. } => "KemPreKeyCount",
            Response::LoginEnrolled(_) => "LoginEnrolled",
            Response::KtHead { .. } => "KtHead",
            Response::KtLookup { .. } => "KtLookup",
            Response::KtHistory { .. } => "KtHistory",
        }
    }

    /// Checks the response limits of docs/PROTOCOL.md §9.9: the relay calls
    /// this before sending, and a client on receipt, refusing an answer
    /// that breaks them as it would an undecodable one. Decoding checks
    /// only structure (§9.3), as for requests. The responses that predate
    /// the device frames have no limits here and always pass.
    pub fn check_limits(&self) -> Result<(), LimitError> {
        match self {
            Response::DeviceList { list: Some(list) } => {
                at_most("list", list.len(), limits::MAX_DEVICE_LIST_BYTES)
            }
            Response::Devices { devices } => {
                at_most("devices", devices.len(), limits::MAX_DEVICES_PER_ACCOUNT)
            }
            Response::LinkMessages { messages, .. } => {
                at_most(
                    "messages",
                    messages.len(),
                    limits::MAX_LINK_MESSAGES_PER_SIDE,
                )?;
                messages.iter().try_for_each(|message| {
                    at_most("message", message.0.len(), limits::MAX_LINK_MESSAGE_BYTES)
                })
            }
            Response::HybridBundle(hybrid) => hybrid
                .kem_one_time
                .iter()
                .chain(hybrid.kem_last_resort.iter())
                .try_for_each(|key| at_most("kem key", key.key.len(), limits::KEM_PREKEY_KEY_LEN)),
            Response::DeviceList { list: None }
            | Response::KemPreKeyCount { .. }
            | Response::LinkTicket { .. }
            | Response::DeviceEnrolled { .. }
            | Response::LoginEnrolled(_)
            | Response::KtHead { .. }
            | Response::KtLookup { .. }
            | Response::KtHistory { .. }
            | Response::RegisterResponse { .. }
            | Response::RegisterDone { .. }
            | Response::LoginResponse { .. }
            | Response::LoginDone { .. }
            | Response::Authenticated { .. }
            | Response::SendResult { .. }
            | Response::Bundle(_)
            | Response::PreKeyCount { .. }
            | Response::Resolved { .. }
            | Response::Ok
            | Response::Pong
            | Response::Error { .. }
            | Response::PasswordChangeResponse { .. }
            | Response::PasswordChanged { .. } => Ok(()),
        }
    }

    /// An error reply with no retry hint.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }
}

impl RelayFrame {
    /// The variant's name, for logs (never the contents).
    pub const fn kind(&self) -> &'static str {
        match self {
            RelayFrame::Response { .. } => "Response",
            RelayFrame::Deliver { .. } => "Deliver",
            RelayFrame::QueueEmpty => "QueueEmpty",
            RelayFrame::EphemeralDeliver { .. } => "EphemeralDeliver",
            RelayFrame::PreKeysLow { .. } => "PreKeysLow",
            RelayFrame::KemPreKeysLow { .. } => "KemPreKeysLow",
            RelayFrame::Closing { .. } => "Closing",
        }
    }
}
