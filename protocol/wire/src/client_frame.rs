//! Frames a client sends to the relay.
//!
//! Every client frame is a request with a `request_id` that the relay's one
//! reply echoes, so a client can pipeline requests and match answers. Ids are
//! chosen by the client, must be non-zero (0 marks a relay error about a frame
//! whose id could not be read) and should not repeat on a connection.
//!
//! The variant order below is the postcard discriminant and is frozen for
//! this wire version: new requests are appended, never inserted.
//!
//! Must never: carry a sender address next to an envelope (sealed sender), or
//! plaintext of any kind.

use serde::{Deserialize, Serialize};

use super::address::{AccountId, Address, DeviceId};
use super::devices::LinkTicketId;
use super::error_code::ErrorCode;
use super::limits;
use super::prekey::{KemPreKeyWire, PreKeyWire, SignedPreKeyWire};
use super::token::SessionToken;
use super::username::Username;

/// One client-to-relay frame: `request_id` (varint u64), then `request`.
/// `Debug` is redacted (`redacted_debug.rs`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    /// Client-chosen id, echoed by the reply. Never 0.
    pub request_id: u64,
    /// What the client asks for.
    pub request: Request,
}

/// Names an account either by its current username or by its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountRef {
    /// Tag 0.
    Username(Username),
    /// Tag 1.
    Account(AccountId),
}

/// One recipient's copy of a message: its address and its own sealed
/// envelope, which the relay stores and forwards without reading.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingEnvelope {
    /// The recipient device.
    pub to: Address,
    /// The sealed-sender envelope, at most `MAX_ENVELOPE_BYTES`.
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
}

/// What a client can ask of the relay. Each variant's doc starts with its postcard tag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Tag 0: First OPAQUE registration message. Reply: `RegisterResponse`.
    RegisterStart {
        /// The wanted username.
        username: Username,
        /// opaque-ke `RegistrationRequest` bytes.
        #[serde(with = "serde_bytes")]
        opaque_request: Vec<u8>,
    },
    /// Tag 1: Final OPAQUE registration message. Reply: `RegisterDone`.
    RegisterFinish {
        /// The same username as in `RegisterStart`.
        username: Username,
        /// opaque-ke `RegistrationUpload` bytes.
        #[serde(with = "serde_bytes")]
        opaque_upload: Vec<u8>,
    },
    /// Tag 2: First OPAQUE login message. Reply: `LoginResponse`, also for
    /// unknown usernames (fake record), so login never reveals existence.
    LoginStart {
        /// Who is logging in.
        username: Username,
        /// opaque-ke `CredentialRequest` bytes.
        #[serde(with = "serde_bytes")]
        opaque_request: Vec<u8>,
    },
    /// Tag 3: Final OPAQUE login message. Reply: `LoginDone` or `AuthFailed`.
    LoginFinish {
        /// The id from `LoginResponse`.
        login_id: u64,
        /// opaque-ke `CredentialFinalization` bytes.
        #[serde(with = "serde_bytes")]
        opaque_finalization: Vec<u8>,
    },
    /// Tag 4: Binds this connection to a device. Reply: `Authenticated`.
    Authenticate {
        /// The token from `LoginDone`.
        token: SessionToken,
        /// Which device of the account connects.
        device: DeviceId,
    },
    /// Tag 5: Revokes this connection's token, or every token of the account.
    /// Reply: `Ok`, then the relay closes the connection.
    Logout {
        /// Revoke all of the account's tokens, not just this one.
        everywhere: bool,
    },
    /// Tag 6: Publishes (or replaces) the device's identity and signed prekey,
    /// and optionally its last-resort prekey. Reply: `Ok`.
    PublishKeys {
        /// Identity public key, in the identity module's encoding.
        #[serde(with = "serde_bytes")]
        identity: Vec<u8>,
        /// The signed prekey.
        signed_prekey: SignedPreKeyWire,
        /// A last-resort prekey, replacing any earlier one.
        last_resort: Option<PreKeyWire>,
    },
    /// Tag 7: Adds one-time prekeys. Reply: `PreKeyCount`.
    UploadPreKeys {
        /// At most `ONE_TIME_PREKEYS_PER_UPLOAD_MAX` keys with distinct ids.
        prekeys: Vec<PreKeyWire>,
    },
    /// Tag 8: Asks how many one-time prekeys remain. Reply: `PreKeyCount`.
    PreKeyCount,
    /// Tag 9: Claims a prekey bundle for an account's primary device. Reply: `Bundle`.
    FetchBundle {
        /// Whose bundle.
        target: AccountRef,
    },
    /// Tag 10: Looks up the account behind a username. Reply: `Resolved`.
    ResolveUsername {
        /// The name to look up.
        username: Username,
    },
    /// Tag 11: Queues sealed envelopes, one per recipient. Reply: `SendResult`
    /// with one outcome per envelope, in order.
    Send {
        /// 1 to `MAX_RECIPIENTS_PER_SEND` envelopes.
        messages: Vec<OutgoingEnvelope>,
    },
    /// Tag 12: Acknowledges delivered envelopes by sequence number; the relay
    /// deletes them. Unknown numbers are ignored. Reply: `Ok`.
    Ack {
        /// At most `MAX_ACKS_PER_FRAME` sequence numbers.
        seqs: Vec<u64>,
    },
    /// Tag 13: Forwards a sealed payload to a connected recipient only; never
    /// stored. Reply: `Ok` whether or not the recipient was online.
    Ephemeral {
        /// The recipient device.
        to: Address,
        /// Sealed payload, at most `MAX_EPHEMERAL_BYTES`.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Tag 14: Changes the account's username. Reply: `Resolved` with the new name.
    Rename {
        /// The wanted username.
        new_username: Username,
    },
    /// Tag 15: Deletes the account, its keys, queue and tokens. Reply: `Ok`,
    /// then the relay closes the connection.
    DeleteAccount,
    /// Tag 16: Liveness check. Reply: `Pong`.
    Ping,
    /// Tag 17: Starts a password change on an authenticated connection: an
    /// OPAQUE login under the current password (proof that the caller knows
    /// it, not only the token) and an OPAQUE registration of the new one,
    /// both for this connection's account. Reply: `PasswordChangeResponse`.
    PasswordChangeStart {
        /// opaque-ke `CredentialRequest` (KE1) bytes, under the old password.
        #[serde(with = "serde_bytes")]
        credential_request: Vec<u8>,
        /// opaque-ke `RegistrationRequest` bytes, for the new password.
        #[serde(with = "serde_bytes")]
        registration_request: Vec<u8>,
    },
    /// Tag 18: Finishes the change: the relay checks the old-password proof,
    /// replaces the account's OPAQUE record with the upload, revokes every
    /// token of the account (this connection's included) and issues a new
    /// one. Reply: `PasswordChanged`.
    PasswordChangeFinish {
        /// The id from `PasswordChangeResponse`.
        change_id: u64,
        /// opaque-ke `CredentialFinalization` (KE3) bytes.
        #[serde(with = "serde_bytes")]
        credential_finalization: Vec<u8>,
        /// opaque-ke `RegistrationUpload` bytes for the new password.
        #[serde(with = "serde_bytes")]
        registration_upload: Vec<u8>,
    },
    /// Tag 19: Publishes the account's signed device list (§15.2), replacing
    /// the stored one if its version is higher (§15.4). Reply: `Ok`.
    PublishDeviceList {
        /// The list's exact encoding, at most `MAX_DEVICE_LIST_BYTES`.
        #[serde(with = "serde_bytes")]
        list: Vec<u8>,
    },
    /// Tag 20: Fetches an account's stored device list. Reply: `DeviceList`.
    FetchDeviceList {
        /// Whose list.
        account: AccountId,
    },
    /// Tag 21: Lists the current devices of the connection's own account.
    /// Reply: `Devices`.
    ListDevices,
    /// Tag 22: Removes another current device of the connection's own
    /// account (§15.5). Reply: `Ok`.
    RemoveDevice {
        /// The device to remove; never the connection's own.
        device: DeviceId,
    },
    /// Tag 23: `FetchBundle` for one named device. Reply: `Bundle`.
    FetchDeviceBundle {
        /// Whose bundle.
        account: AccountId,
        /// Which of its devices.
        device: DeviceId,
    },
    /// Tag 24: Opens a link rendezvous for a new device of this account
    /// (§15.6). Reply: `LinkTicket`.
    LinkCreate,
    /// Tag 25: Joins a ticket's joiner side, before authenticating. Reply: `Ok`.
    LinkJoin {
        /// The ticket from the link code.
        ticket: LinkTicketId,
    },
    /// Tag 26: Posts a sealed link message to the caller's side of a
    /// ticket; the relay never reads it. Reply: `Ok`.
    LinkPost {
        /// The ticket.
        ticket: LinkTicketId,
        /// The sealed message, at most `MAX_LINK_MESSAGE_BYTES`.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Tag 27: Fetches the other side's posts numbered above `after` (the
    /// first post is number 1). Reply: `LinkMessages`.
    LinkFetch {
        /// The ticket.
        ticket: LinkTicketId,
        /// How many of the other side's posts the caller already has.
        after: u32,
    },
    /// Tag 28: The creator enrols the joiner as a new device of its account.
    /// Reply: `DeviceEnrolled`.
    LinkEnrol {
        /// The ticket.
        ticket: LinkTicketId,
    },
    /// Tag 29: Adds signed one-time ML-KEM prekeys and optionally replaces
    /// the signed last-resort one (docs/PROTOCOL.md 3.9). The relay checks
    /// every signature under the device's published identity and stores
    /// nothing if one fails. Reply: `KemPreKeyCount`.
    UploadKemPreKeys {
        /// A last-resort KEM prekey, replacing any earlier one.
        last_resort: Option<KemPreKeyWire>,
        /// At most `KEM_ONE_TIME_PREKEYS_PER_UPLOAD_MAX` keys with distinct ids.
        one_time: Vec<KemPreKeyWire>,
    },
    /// Tag 30: Asks how many one-time ML-KEM prekeys remain. Reply: `KemPreKeyCount`.
    KemPreKeyCount,
    /// Tag 31: Claims a hybrid bundle (X25519 and ML-KEM prekeys) for one
    /// device. Reply: `HybridBundle`.
    FetchHybridBundle {
        /// Whose bundle.
        account: AccountId,
        /// Which of its devices; none means the device `FetchBundle` serves.
        device: Option<DeviceId>,
    },
    /// Tag 32: Turns the password login this connection just completed
    /// (`LoginDone`, not yet used to `Authenticate`) into a new device of
    /// the account (§15.6, password-only restore): the relay enrols the
    /// next device id and replaces the login's token with one for it.
    /// Reply: `LoginEnrolled`.
    LoginEnrol,
    /// Tag 33: The newest signed key-transparency head (§16.7), with the
    /// consistency proof from the head of epoch `known` (the newest one the
    /// client remembers, §16.9 item 3) and the entry and inclusion proof of
    /// epoch `entry_of` (§16.9 item 4). Reply: `KtHead`.
    KtHead {
        /// The epoch of the head the client remembers, if any.
        known: Option<u64>,
        /// An older epoch whose entry the client needs proven, if any.
        entry_of: Option<u64>,
    },
    /// Tag 34: The lookup proof (§16.5) of a label in the newest epoch: an
    /// account's leaf (`Account`) or a username's (`Username`). Reply:
    /// `KtLookup`.
    KtLookup {
        /// The label.
        label: AccountRef,
    },
    /// Tag 35: The history proof (§16.6) of a label from version `first`
    /// (at most `KT_MAX_HISTORY_VERSIONS` versions). Reply: `KtHistory`.
    KtHistory {
        /// The label.
        label: AccountRef,
        /// The first version wanted, from 1.
        first: u64,
    },
    /// Tag 36: Gives the password login this connection just completed
    /// (`LoginDone`, not yet used to `Authenticate`) to `device`, a current
    /// device of the account (§15.6, logging in again as an existing
    /// device): the relay replaces the login's token with one for it. A
    /// removed device is never revived. Reply: `LoginEnrolled`.
    LoginDevice {
        /// The device the token is for.
        device: DeviceId,
    },
}

/// A request that is well-formed but breaks a limit the relay enforces as a
/// whole (per-envelope size is judged per recipient in `SendResult` instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// `Send` with no envelopes.
    #[error("send carries no envelopes")]
    EmptySend,
    /// `Send` with too many envelopes.
    #[error("send addresses {count} recipients; at most {max} are allowed")]
    TooManyRecipients {
        /// Recipients in the request.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// `UploadPreKeys` with too many keys.
    #[error("upload carries {count} prekeys; at most {max} are allowed")]
    TooManyPreKeys {
        /// Keys in the request.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A byte or count field over its limit.
    #[error("{field} is {len} long; at most {max} is allowed")]
    FieldTooLarge {
        /// Which field.
        field: &'static str,
        /// Its size (bytes, or entries for lists).
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl LimitError {
    /// The code the relay answers with.
    pub const fn code(&self) -> ErrorCode {
        match self {
            LimitError::EmptySend | LimitError::TooManyRecipients { .. } => {
                ErrorCode::TooManyRecipients
            }
            LimitError::TooManyPreKeys { .. } => ErrorCode::TooManyPreKeys,
            LimitError::FieldTooLarge { .. } => ErrorCode::LimitExceeded,
        }
    }
}

pub(crate) fn at_most(field: &'static str, len: usize, max: usize) -> Result<(), LimitError> {
    if len > max {
        Err(LimitError::FieldTooLarge { field, len, max })
    } else {
        Ok(())
    }
}

impl Request {
    /// Checks the whole-request limits of docs/PROTOCOL.md §9. The relay
    /// calls this after decoding and answers `Error { code: e.code() }`;
    /// clients call it before sending.
    pub fn check_limits(&self) -> Result<(), LimitError> {
        match self {
            Request::RegisterStart { opaque_request, .. }
            | Request::LoginStart { opaque_request, .. } => at_most(
                "opaque_request",
                opaque_request.len(),
                limits::MAX_OPAQUE_MESSAGE_BYTES,
            ),
            Request::RegisterFinish { opaque_upload, .. } => at_most(
                "opaque_upload",
                opaque_upload.len(),
                limits::MAX_OPAQUE_MESSAGE_BYTES,
            ),
            Request::LoginFinish {
                opaque_finalization,
                ..
            } => at_most(
                "opaque_finalization",
                opaque_finalization.len(),
                limits::MAX_OPAQUE_MESSAGE_BYTES,
            ),
            Request::PasswordChangeStart {
                credential_request,
                registration_request,
            } => {
                at_most(
                    "credential_request",
                    credential_request.len(),
                    limits::MAX_OPAQUE_MESSAGE_BYTES,
                )?;
                at_most(
                    "registration_request",
                    registration_request.len(),
                    limits::MAX_OPAQUE_MESSAGE_BYTES,
                )
            }
            Request::PasswordChangeFinish {
                credential_finalization,
                registration_upload,
                ..
            } => {
                at_most(
                    "credential_finalization",
                    credential_finalization.len(),
                    limits::MAX_OPAQUE_MESSAGE_BYTES,
                )?;
                at_most(
                    "registration_upload",
                    registration_upload.len(),
                    limits::MAX_OPAQUE_MESSAGE_BYTES,
                )
            }
            Request::PublishKeys { identity, .. } => {
                at_most("identity", identity.len(), limits::MAX_IDENTITY_BYTES)
            }
            Request::UploadPreKeys { prekeys } => {
                if prekeys.len() > limits::ONE_TIME_PREKEYS_PER_UPLOAD_MAX {
                    Err(LimitError::TooManyPreKeys {
                        count: prekeys.len(),
                        max: limits::ONE_TIME_PREKEYS_PER_UPLOAD_MAX,
                    })
                } else {
                    Ok(())
                }
            }
            Request::Send { messages } => {
                if messages.is_empty() {
                    Err(LimitError::EmptySend)
                } else if messages.len() > limits::MAX_RECIPIENTS_PER_SEND {
                    Err(LimitError::TooManyRecipients {
                        count: messages.len(),
                        max: limits::MAX_RECIPIENTS_PER_SEND,
                    })
                } else {
                    Ok(())
                }
            }
            Request::Ack { seqs } => at_most("seqs", seqs.len(), limits::MAX_ACKS_PER_FRAME),
            Request::Ephemeral { payload, .. } => {
                at_most("payload", payload.len(), limits::MAX_EPHEMERAL_BYTES)
            }
            Request::PublishDeviceList { list } => {
                at_most("list", list.len(), limits::MAX_DEVICE_LIST_BYTES)
            }
            Request::LinkPost { payload, .. } => {
                at_most("payload", payload.len(), limits::MAX_LINK_MESSAGE_BYTES)
            }
            Request::UploadKemPreKeys {
                last_resort,
                one_time,
            } => {
                if one_time.len() > limits::KEM_ONE_TIME_PREKEYS_PER_UPLOAD_MAX {
                    return Err(LimitError::TooManyPreKeys {
                        count: one_time.len(),
                        max: limits::KEM_ONE_TIME_PREKEYS_PER_UPLOAD_MAX,
                    });
                }
                for key in one_time.iter().chain(last_resort.iter()) {
                    at_most("kem key", key.key.len(), limits::KEM_PREKEY_KEY_LEN)?;
                }
                Ok(())
            }
            Request::KemPreKeyCount
            | Request::FetchHybridBundle { .. }
            | Request::LoginEnrol
            | Request::LoginDevice { .. } => Ok(()),
            Request::KtHead { .. } | Request::KtLookup { .. } | Request::KtHistory { .. } => Ok(()),
            Request::FetchDeviceList { .. }
            | Request::ListDevices
            | Request::RemoveDevice { .. }
            | Request::FetchDeviceBundle { .. }
            | Request::LinkCreate
            | Request::LinkJoin { .. }
            | Request::LinkFetch { .. }
            | Request::LinkEnrol { .. } => Ok(()),
            Request::Authenticate { .. }
            | Request::Logout { .. }
            | Request::PreKeyCount
            | Request::FetchBundle { .. }
            | Request::ResolveUsername { .. }
            | Request::Rename { .. }
            | Request::DeleteAccount
            | Request::Ping => Ok(()),
        }
    }

    /// Whether the request is valid only on a connection that has not yet
    /// authenticated (registration, login, and joining a link ticket: the
    /// "pre" rows of §9.7). Everything else except the requests of
    /// [`Request::is_any_authentication`] requires authentication.
    pub const fn is_pre_authentication(&self) -> bool {
        matches!(
            self,
            Request::RegisterStart { .. }
                | Request::RegisterFinish { .. }
                | Request::LoginStart { .. }
                | Request::LoginFinish { .. }
                | Request::Authenticate { .. }
                | Request::LinkJoin { .. }
                | Request::LoginEnrol
                | Request::LoginDevice { .. }
        )
    }

    /// Whether the request is valid both before and after authentication
    /// (the "any" rows of §9.7): `Ping`, and the link posts and fetches,
    /// which the joiner makes before it has a token and the creator after.
    pub const fn is_any_authentication(&self) -> bool {
        matches!(
            self,
            Request::Ping | Request::LinkPost { .. } | Request::LinkFetch { .. }
        )
    }

    /// Whether the request belongs to the devices of §15 (tags 19 to 28):
    /// for a relay or a tool that counts or routes those apart (no relay
    /// refuses them any more; umbra-relay serves every one).
    pub const fn is_device_request(&self) -> bool {
        matches!(
            self,
            Request::PublishDeviceList { .. }
                | Request::FetchDeviceList { .. }
                | Request::ListDevices
                | Request::RemoveDevice { .. }
                | Request::FetchDeviceBundle { .. }
                | Request::LinkCreate
                | Request::LinkJoin { .. }
                | Request::LinkPost { .. }
                | Request::LinkFetch { .. }
                | Request::LinkEnrol { .. }
        )
    }

    /// The variant's name, for logs (never the contents).
    pub const fn kind(&self) -> &'static str {
        match self {
            Request::RegisterStart { .. } => "RegisterStart",
            Request::RegisterFinish { .. } => "RegisterFinish",
            Request::LoginStart { .. } => "LoginStart",
            Request::LoginFinish { .. } => "LoginFinish",
            Request::Authenticate { .. } => "Authenticate",
            Request::Logout { .. } => "Logout",
            Request::PublishKeys { .. } => "PublishKeys",
            Request::UploadPreKeys { .. } => "UploadPreKeys",
            Request::PreKeyCount => "PreKeyCount",
            Request::FetchBundle { .. } => "FetchBundle",
            Request::ResolveUsername { .. } => "ResolveUsername",
            Request::Send { .. } => "Send",
            Request::Ack { .. } => "Ack",
            Request::Ephemeral { .. } => "Ephemeral",
            Request::Rename { .. } => "Rename",
            Request::DeleteAccount => "DeleteAccount",
            Request::Ping => "Ping",
            Request::PasswordChangeStart { .. } => "PasswordChangeStart",
            Request::PasswordChangeFinish { .. } => "PasswordChangeFinish",
            Request::PublishDeviceList { .. } => "PublishDeviceList",
            Request::FetchDeviceList { .. } => "FetchDeviceList",
            Request::ListDevices => "ListDevices",
            Request::RemoveDevice { .. } => "RemoveDevice",
            Request::FetchDeviceBundle { .. } => "FetchDeviceBundle",
            Request::LinkCreate => "LinkCreate",
            Request::LinkJoin { .. } => "LinkJoin",
            Request::LinkPost { .. } => "LinkPost",
            Request::LinkFetch { .. } => "LinkFetch",
            Request::LinkEnrol { .. } => "LinkEnrol",
            Request::UploadKemPreKeys { .. } => "UploadKemPreKeys",
            Request::KemPreKeyCount => "KemPreKeyCount",
            Request::FetchHybridBundle { .. } => "FetchHybridBundle",
            Request::LoginEnrol => "LoginEnrol",
            Request::KtHead { .. } => "KtHead",
            Request::KtLookup { .. } => "KtLookup",
            Request::KtHistory { .. } => "KtHistory",
            Request::LoginDevice { .. } => "LoginDevice",
        }
    }
}
