//! Sender-key groups (Signal's sender keys): each member encrypts a group
//! message once under its own symmetric chain, and signs it.
//!
//! A sender holds a chain key advanced by HMAC-SHA256 (distinct labels for
//! the message-key seed and the next chain key) and an Ed25519 signing key.
//! It hands both, as a [`SenderKeyDistribution`], to every member over the
//! pairwise (Double Ratchet) channel; members keep a [`GroupReceiver`] per
//! sender. Every message is signed, so a member cannot forge another
//! member's messages although all members know the chain key.
//!
//! Must never: accept a message whose signature does not verify strictly,
//! decrypt the same iteration twice (replay), store more than
//! [`MAX_SKIPPED_KEYS`] skipped keys or jump more than [`MAX_SKIP`] ahead,
//! change receiver state when a message is refused, or print key bytes.
//!
//! Layout: [`id`] (the 32-byte [`GroupId`]), [`error`] (why a sender-key
//! operation failed), `chain` (the HMAC chain and the per-message AEAD key
//! schedule), [`message`] (the group-message header and length limits),
//! [`distribution`] (the sender key handed to members), [`sender_key`] (our
//! [`GroupSender`] and the [`GroupReceiver`] we keep per member).

mod chain;
pub mod distribution;
pub mod error;
pub mod id;
pub mod message;
pub mod sender_key;

#[cfg(test)]
mod tests;

pub use distribution::{
    DistributionId, SenderKeyDistribution, DISTRIBUTION_ID_LEN, DISTRIBUTION_LEN,
    DISTRIBUTION_VERSION,
};
pub use error::GroupError;
pub use id::{GroupId, GROUP_ID_LEN};
pub use message::{
    GroupMessageHeader, GROUP_HEADER_LEN, GROUP_MESSAGE_VERSION, MAX_GROUP_MESSAGE_LEN,
    MAX_GROUP_PLAINTEXT, MIN_GROUP_MESSAGE_LEN,
};
pub use sender_key::{GroupReceiver, GroupSender, MAX_SKIP, MAX_SKIPPED_KEYS};

// Group state and membership (P2): signed hash-chained changes, the
// state they move and its authorization rules, fork choice, welcomes.
pub mod change;
mod change_error;
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
