//! Groups. Two halves: sender keys (this file's first block: how a member
//! encrypts a group message once and every member decrypts and
//! authenticates it) and group state (the second block: membership, signed
//! hash-chained changes, fork choice).
//!
//! Sender keys are Signal's: a sender holds a chain key advanced by
//! HMAC-SHA256 and an Ed25519 signing key, both bound to one group and
//! epoch. It hands them, as a [`SignedDistribution`] signed by its identity
//! key, to every member over the pairwise (Double Ratchet) channel; members
//! verify it ([`SignedDistribution::verify`]) and keep a [`GroupReceiver`]
//! per sender device. A group message ([`GroupMessage`]) is encrypted and
//! signed once and sealed (section 5) to each recipient device as sealed
//! inner type `0x04`, without a ratchet layer. Every message is signed, so
//! a member cannot forge another member's messages although all members
//! know the chain key; the receiver state is found by the header's group id
//! and the *sealed* sender, and only opens envelopes sealed by the identity
//! that signed the distribution.
//!
//! Must never: accept a message whose signature does not verify strictly,
//! build a receiver from an unverified distribution, decrypt the same
//! iteration twice (replay), store more than [`MAX_SKIPPED_KEYS`] skipped
//! keys or jump more than [`MAX_SKIP`] ahead, change receiver state when a
//! message is refused, or print key bytes.
//!
//! Layout (sender keys): [`id`] (the 32-byte [`GroupId`]), [`error`] (why a
//! sender-key operation failed), `chain` (the HMAC chain and the
//! per-message AEAD key schedule), [`message`] (the header, length limits
//! and sealing), [`distribution`] (the signed sender key handed to
//! members), [`sender_key`] (our [`GroupSender`] and the [`GroupReceiver`]
//! we keep per member device), `pickle` (their stored forms).

mod chain;
pub mod distribution;
pub mod error;
pub mod id;
pub mod message;
mod pickle;
pub mod sender_key;

#[cfg(test)]
mod tests;

/// The receiver's skip limits, under their historical names (defined, with
/// their reasons, in [`crate::consts`]).
pub use crate::consts::{MAX_GROUP_SKIP as MAX_SKIP, MAX_GROUP_SKIPPED_KEYS as MAX_SKIPPED_KEYS};
pub use distribution::{
    SignedDistribution, VerifiedDistribution, DISTRIBUTION_LEN, DISTRIBUTION_SIGNED_LEN,
    DISTRIBUTION_VERSION,
};
pub use error::GroupError;
pub use id::{GroupId, GROUP_ID_LEN};
pub use message::{
    GroupMessage, GroupMessageHeader, GROUP_HEADER_LEN, GROUP_MESSAGE_VERSION, MAX_GROUP_INNER_LEN,
    MAX_GROUP_MESSAGE_LEN, MAX_GROUP_PAYLOAD, MAX_GROUP_PLAINTEXT, MIN_GROUP_MESSAGE_LEN,
};
pub use pickle::{GroupReceiverPickle, GroupSenderPickle};
pub use sender_key::{GroupReceiver, GroupSender};

// Group state and membership (P2): signed hash-chained changes, the
// state they move and its authorization rules, fork choice, welcomes.
pub mod change;
mod change_error;
mod fork;
pub mod log;
pub mod state;
pub mod welcome;

pub use change::{
    ChangeHash, GroupAction, GroupChange, NewMember, GROUP_CHANGE_VERSION, MAX_GROUP_CHANGE_BYTES,
};
pub use change_error::GroupChangeError;
pub use log::{GroupLog, HeadMove, LogOutcome};
pub use state::{GroupPolicy, GroupState, Member, GROUP_STATE_VERSION, MAX_GROUP_STATE_BYTES};
pub use welcome::GroupWelcome;
