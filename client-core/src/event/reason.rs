//! Why an event happened, typed: the reasons [`Event`](crate::Event) and
//! [`ConnectionState`](crate::ConnectionState) carry instead of text.
//!
//! Each reason is an enum an integrator matches on (is this envelope kept
//! or lost, did the directory contradict the sender, is a key missing),
//! with a `Display` that gives the words a user sees, and a stable
//! [`DecryptFailure::code`] for scripts (`reason_code` in docs/CLI.md).
//!
//! Must never: change a `code` string or the words of an existing variant
//! (scripts and the `--json` schema depend on both; add variants instead),
//! or carry key material or a secret in a reason.

use std::sync::Arc;

use umbra_protocol::group::GroupChangeError;
use umbra_protocol::pairwise::PairwiseError;
use umbra_protocol::payload::PayloadError;
use umbra_protocol::pickle::PickleError;
use umbra_protocol::wire::{DeviceId, ErrorCode, Username};

use crate::groups::GroupFailure;
use crate::Error;

/// A client-core [`Error`] shared by the events and states that report it
/// (an event is cloned to every subscriber; the error itself is not
/// `Clone`). Two are equal when they are the same failure, not merely
/// failures with the same text.
#[derive(Debug, Clone)]
pub struct SharedError(Arc<Error>);

impl SharedError {
    /// Wraps `error` for sharing.
    pub fn new(error: Error) -> Self {
        Self(Arc::new(error))
    }

    /// The error.
    pub fn error(&self) -> &Error {
        &self.0
    }

    /// The error itself if nothing else holds it, else this shared copy as
    /// [`ConnectionFailure::Attempt`](crate::ConnectionFailure::Attempt).
    pub(crate) fn into_error(self) -> Error {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| {
            Error::Connection(crate::ConnectionFailure::Attempt(Self(shared)))
        })
    }
}

impl PartialEq for SharedError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedError {}

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Transparent, like the error it shares: its source is the error's
/// source, so a chain of causes does not name the error twice.
impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What became of an envelope that could not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It can never be opened or believed: acknowledged and dropped.
    Rejected,
    /// The failure may be local or passing: not acknowledged, the relay
    /// delivers it again on the next connection.
    Kept,
    /// It was kept until its attempts ran out, then given up.
    Lost,
}

impl Outcome {
    /// The `outcome` value of a `decryption_failed` record.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Rejected => "rejected",
            Outcome::Kept => "kept",
            Outcome::Lost => "lost",
        }
    }
}

/// Why an incoming envelope could not be decrypted, authenticated or
/// applied ([`Event::DecryptionFailed`](crate::Event::DecryptionFailed)).
/// A kept or given-up envelope wraps its cause in [`DecryptFailure::Kept`]
/// or [`DecryptFailure::Lost`]; [`DecryptFailure::cause`] unwraps it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptFailure {
    /// The sealed-sender layer does not open with our identity.
    #[error("cannot open envelope: {0}")]
    Unopenable(PairwiseError),
    /// The envelope is sealed by this device's own identity.
    #[error("envelope claims to come from this device")]
    FromThisDevice,
    /// A group message from a device other than its account's primary
    /// one. Raised only by earlier versions, which read group messages
    /// from primary devices only; this one reads them from every listed
    /// device (docs/PROTOCOL.md §8.14, §15.3) and refuses an unlisted one
    /// as [`DecryptFailure::UnlistedDevice`]. Kept so a stored or relayed
    /// reason code keeps its name.
    #[error(
        "group message from device {0} of its account; this client reads group messages from \
         primary devices only"
    )]
    OtherDevice(DeviceId),
    /// From a device of its account that the account's signed device list
    /// does not name, even after fetching the list again (docs/PROTOCOL.md
    /// §15.3 rule 3): a device the account never added, or one it removed.
    #[error("envelope from device {0}, which its account's signed device list does not name")]
    UnlistedDevice(DeviceId),
    /// A sent transcript (sent-message sync, docs/PROTOCOL.md §15.8)
    /// from another account: only our own account's devices send one.
    #[error("sent transcript from another account; only this account's own devices send one")]
    TranscriptNotFromOwnAccount,
    /// Something other than a sent transcript from another device of our
    /// own account (§15.8: that is all our devices send each other).
    #[error(
        "{0} from another device of this account, which sends its devices only sent transcripts"
    )]
    OwnDeviceContent(&'static str),
    /// A sent transcript from another device of our account that was not
    /// applied (§15.8), for the reason given.
    #[error("sent transcript from device {device} of this account not applied: {reason}")]
    TranscriptRefused {
        /// The device that sent it.
        device: DeviceId,
        /// Why.
        reason: &'static str,
    },
    /// A plain message for which this device holds no session.
    #[error("message for a session this device does not have")]
    NoSession,
    /// A classical (X3DH only, type `0x01`) pre-key message asked for a new
    /// session: refused, as every new session must be hybrid (PQXDH,
    /// docs/PROTOCOL.md §12.5). The sender's client predates post-quantum
    /// sessions; nothing of it is stored.
    #[error(
        "a classical pre-key message was refused: the sender's client is out of date, and umbra \
         starts no session without a post-quantum key (one recorded now could be read by a \
         future quantum computer)"
    )]
    ClassicalPreKeyRefused,
    /// A pre-key message for a new session (replacing ours) was refused.
    #[error("cannot start the new session: {0}")]
    NewSessionRefused(PairwiseError),
    /// A pre-key message for a first session was refused.
    #[error("cannot start session: {0}")]
    SessionRefused(PairwiseError),
    /// The session refused the message.
    #[error("cannot decrypt: {0}")]
    Undecryptable(PairwiseError),
    /// The decrypted payload does not decode.
    #[error("undecodable message: {0}")]
    Undecodable(PayloadError),
    /// A receipt lists more message ids than the protocol allows.
    #[error("receipt lists too many ids")]
    TooManyReceiptIds,
    /// The payload names another sender address than the session's peer.
    #[error("message claims another sender address than its session")]
    SenderAddressMismatch,
    /// First contact: the directory lists another key for the claimed name.
    #[error("sender claims to be {claimed} but the directory lists another key")]
    DirectoryContradicts {
        /// The name the sender claimed.
        claimed: Username,
    },
    /// A known contact's new key is not the one the directory lists.
    #[error(
        "a message claiming to be from {contact} was sealed by a key the directory does not list"
    )]
    KeyNotListed {
        /// The contact it claims to be.
        contact: Username,
    },
    /// The contact changed while the directory was being asked.
    #[error("the sender's contact changed while the directory was asked; kept for a retry")]
    ContactChangedDuringCheck,
    /// The relay answered the directory check with the wrong response.
    #[error("the directory check got {got} instead of Resolved")]
    DirectoryUnexpected {
        /// The response kind it sent.
        got: &'static str,
    },
    /// The directory could not be asked (connection, timeout, rate limit).
    #[error("cannot check the sender with the directory now: {0}")]
    DirectoryUnavailable(SharedError),
    /// The sender is a device its account's held list does not name, and
    /// the list could not be fetched again now (docs/PROTOCOL.md §15.3);
    /// kept for a retry.
    #[error("cannot fetch the sender's device list now: {0}")]
    DeviceListUnavailable(SharedError),
    /// A request the delivery needed failed.
    #[error("{0}")]
    Request(SharedError),
    /// The local store failed while the delivery was applied (not
    /// acknowledged: the relay delivers it again).
    #[error("could not store an incoming message: {0}")]
    Store(SharedError),
    /// The group layer refused or kept it.
    #[error("{0}")]
    Group(GroupRefusal),
    /// Kept for a redelivery: this was attempt `attempt`.
    #[error("{cause}; kept, it will be tried again when the relay delivers it again (attempt {attempt})")]
    Kept {
        /// Why this attempt failed.
        cause: Box<DecryptFailure>,
        /// Failed attempts so far, this one included.
        attempt: u32,
    },
    /// Kept until its attempts ran out, then given up: the message is lost.
    #[error(
        "a message was lost: it failed {attempts} times over {hours} hours and was given up ({cause})"
    )]
    Lost {
        /// Why the last attempt failed.
        cause: Box<DecryptFailure>,
        /// How many attempts failed.
        attempts: u32,
        /// Hours between the first failure and giving up.
        hours: u64,
    },
}

impl DecryptFailure {
    /// The failure itself, under a [`DecryptFailure::Kept`] or
    /// [`DecryptFailure::Lost`].
    pub fn cause(&self) -> &DecryptFailure {
        match self {
            DecryptFailure::Kept { cause, .. } | DecryptFailure::Lost { cause, .. } => {
                cause.cause()
            }
            other => other,
        }
    }

    /// What became of the envelope.
    pub fn outcome(&self) -> Outcome {
        match self {
            DecryptFailure::Kept { .. } | DecryptFailure::Store(_) => Outcome::Kept,
            DecryptFailure::Lost { .. } => Outcome::Lost,
            _ => Outcome::Rejected,
        }
    }

    /// A stable machine-readable name of the cause (`reason_code` in
    /// docs/CLI.md): the same for a kept, lost or rejected envelope.
    pub fn code(&self) -> &'static str {
        match self.cause() {
            DecryptFailure::Unopenable(_) => "unopenable",
            DecryptFailure::FromThisDevice => "from_this_device",
            DecryptFailure::OtherDevice(_) => "other_device",
            DecryptFailure::UnlistedDevice(_) => "unlisted_device",
            DecryptFailure::TranscriptNotFromOwnAccount => "transcript_not_from_own_account",
            DecryptFailure::OwnDeviceContent(_) => "own_device_content",
            DecryptFailure::TranscriptRefused { .. } => "transcript_refused",
            DecryptFailure::NoSession => "no_session",
            DecryptFailure::ClassicalPreKeyRefused => "classical_prekey_refused",
            DecryptFailure::NewSessionRefused(_) => "new_session_refused",
            DecryptFailure::SessionRefused(_) => "session_refused",
            DecryptFailure::Undecryptable(_) => "undecryptable",
            DecryptFailure::Undecodable(_) => "undecodable",
            DecryptFailure::TooManyReceiptIds => "too_many_receipt_ids",
            DecryptFailure::SenderAddressMismatch => "sender_address_mismatch",
            DecryptFailure::DirectoryContradicts { .. } => "directory_contradicts",
            DecryptFailure::KeyNotListed { .. } => "key_not_listed",
            DecryptFailure::ContactChangedDuringCheck => "contact_changed_during_check",
            DecryptFailure::DirectoryUnexpected { .. } => "directory_unexpected",
            DecryptFailure::DirectoryUnavailable(_) => "directory_unavailable",
            DecryptFailure::DeviceListUnavailable(_) => "device_list_unavailable",
            DecryptFailure::Request(_) => "request_failed",
            DecryptFailure::Store(_) => "store_failed",
            DecryptFailure::Group(group) => group.code(),
            // `cause()` never returns a wrapper.
            DecryptFailure::Kept { .. } | DecryptFailure::Lost { .. } => "kept",
        }
    }
}

/// Why a sealed group message, or group content inside a pairwise one, was
/// refused or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupRefusal {
    /// A group message from an account that is not a contact yet.
    #[error("group message from a sender whose keys have not arrived")]
    SenderUnknown,
    /// Sealed by another identity than the member's pinned one.
    #[error("group message sealed by another identity than the member's pinned one")]
    NotPinnedIdentity,
    /// The envelope carries no group message.
    #[error("not a group message")]
    NotGroupMessage,
    /// For a group this device has not joined (yet).
    #[error("group message for a group not joined yet")]
    UnknownGroup,
    /// For a group we left.
    #[error("group message for a group we left")]
    GroupLeft,
    /// From an account the group does not list.
    #[error("group message from someone who is not a member")]
    NotMember,
    /// Before the sender's key distribution arrived.
    #[error("group message before its sender key")]
    NoSenderKey,
    /// It does not open or verify with the sender's key.
    #[error("group message refused: {0}")]
    Unopenable(GroupOpenFailure),
    /// Its payload does not decode.
    #[error("undecodable group message: {0}")]
    Undecodable(PayloadError),
    /// Its payload claims another sender than the one that sealed it.
    #[error("group message claims another sender than the one that sealed it")]
    SenderMismatch,
    /// A group change that does not decode.
    #[error("malformed group change: {0}")]
    MalformedChange(GroupChangeError),
    /// A group welcome that does not decode.
    #[error("malformed group welcome: {0}")]
    MalformedWelcome(GroupChangeError),
    /// A sender key for a group this device has not joined (yet).
    #[error("sender key for a group not joined yet")]
    SenderKeyUnknownGroup,
    /// A sender key from an account the group does not list.
    #[error("sender key from someone not a member")]
    SenderKeyFromNonMember,
    /// A sender key distribution that does not verify.
    #[error("{0}")]
    SenderKeyRefused(GroupFailure),
    /// A change whose author we know nothing of.
    #[error("a change by someone we do not know")]
    ChangeByStranger,
    /// A change for a group this device has not joined (yet).
    #[error("change for a group not joined yet")]
    ChangeUnknownGroup,
    /// A group's Create that does not verify.
    #[error("group refused: {0}")]
    CreateRefused(GroupChangeError),
    /// A new group that does not list us.
    #[error("a new group we are not in")]
    NotInNewGroup,
    /// A valid-looking change kept until its parent or author arrives.
    #[error("group change kept: {0}")]
    ChangeKept(GroupChangeError),
    /// A change the group's log refuses.
    #[error("group change refused: {0}")]
    ChangeRefused(GroupChangeError),
    /// A welcome back into a group we left, from someone not its admin.
    #[error(
        "group welcome refused: a group we left or were removed from, and the sender was not \
         its admin"
    )]
    WelcomeFromNonAdmin,
    /// A welcome that does not verify.
    #[error("group welcome refused: {0}")]
    WelcomeRefused(GroupChangeError),
}

impl GroupRefusal {
    /// The `reason_code` of a `decryption_failed` record.
    pub fn code(&self) -> &'static str {
        match self {
            GroupRefusal::SenderUnknown => "group_sender_unknown",
            GroupRefusal::NotPinnedIdentity => "group_not_pinned_identity",
            GroupRefusal::NotGroupMessage => "group_not_group_message",
            GroupRefusal::UnknownGroup => "group_unknown_group",
            GroupRefusal::GroupLeft => "group_left",
            GroupRefusal::NotMember => "group_not_member",
            GroupRefusal::NoSenderKey => "group_no_sender_key",
            GroupRefusal::Unopenable(_) => "group_unopenable",
            GroupRefusal::Undecodable(_) => "group_undecodable",
            GroupRefusal::SenderMismatch => "group_sender_mismatch",
            GroupRefusal::MalformedChange(_) => "group_malformed_change",
            GroupRefusal::MalformedWelcome(_) => "group_malformed_welcome",
            GroupRefusal::SenderKeyUnknownGroup => "group_sender_key_unknown_group",
            GroupRefusal::SenderKeyFromNonMember => "group_sender_key_from_non_member",
            GroupRefusal::SenderKeyRefused(_) => "group_sender_key_refused",
            GroupRefusal::ChangeByStranger => "group_change_by_stranger",
            GroupRefusal::ChangeUnknownGroup => "group_change_unknown_group",
            GroupRefusal::CreateRefused(_) => "group_create_refused",
            GroupRefusal::NotInNewGroup => "group_not_in_new_group",
            GroupRefusal::ChangeKept(_) => "group_change_kept",
            GroupRefusal::ChangeRefused(_) => "group_change_refused",
            GroupRefusal::WelcomeFromNonAdmin => "group_welcome_from_non_admin",
            GroupRefusal::WelcomeRefused(_) => "group_welcome_refused",
        }
    }
}

/// Why a group message did not open with the sender's key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupOpenFailure {
    /// The envelope carries no group message.
    #[error("not a group message")]
    NotGroupMessage,
    /// The stored receiver key does not load.
    #[error("{0}")]
    StoredKey(PickleError),
    /// The sender-key layer refused it.
    #[error("{0}")]
    Refused(umbra_protocol::group::GroupError),
}

/// Why the relay refused one of our messages for good
/// ([`Event::SendFailed`](crate::Event::SendFailed),
/// [`Event::GroupDeliveryFailed`](crate::Event::GroupDeliveryFailed)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendFailure {
    /// The relay refused it with this code.
    #[error("{0}")]
    Refused(ErrorCode),
    /// The relay refused it for one device of the recipient's account with
    /// this code; the account's other devices have it (docs/PROTOCOL.md
    /// §15.3: a message goes to every device of the account's list).
    #[error("device {device} of the account: {code}")]
    Device {
        /// The device the relay refused it for.
        device: u32,
        /// Its code.
        code: ErrorCode,
    },
}

impl SendFailure {
    /// The `reason_code` of a `send_failed` record.
    pub fn code(&self) -> &'static str {
        match self {
            SendFailure::Refused(_) => "refused",
            SendFailure::Device { .. } => "device_refused",
        }
    }
}
