//! Why a sender-key operation failed: one typed error for every operation
//! of the sender-key layer, so callers can tell a replay from a forgery from
//! a bad length, and tell the user which.
//!
//! Must never: carry key bytes or plaintext in a variant (errors are logged).

use super::message::{MAX_GROUP_PAYLOAD, MIN_GROUP_MESSAGE_LEN};
use crate::consts::MAX_GROUP_SKIP;
use crate::padding::PaddingError;
use crate::sealed::SealedError;

/// Why a sender-key operation failed. Every failure of a receiver leaves it
/// exactly as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The content (client payload) is longer than [`MAX_GROUP_PAYLOAD`]:
    /// refused before anything is encrypted or sent.
    #[error(
        "group message content of {len} bytes is too long: at most {MAX_GROUP_PAYLOAD} bytes fit one group message"
    )]
    PlaintextTooLong {
        /// Length of the content.
        len: usize,
    },
    /// A group message shorter than [`MIN_GROUP_MESSAGE_LEN`] or longer than
    /// [`MAX_GROUP_MESSAGE_LEN`](super::MAX_GROUP_MESSAGE_LEN).
    #[error(
        "group message of {len} bytes has an impossible length (at least {MIN_GROUP_MESSAGE_LEN})"
    )]
    BadMessageLength {
        /// Length of the message.
        len: usize,
    },
    /// A distribution of the wrong length.
    #[error(
        "sender-key distribution has {len} bytes, expected {}",
        super::DISTRIBUTION_LEN
    )]
    BadDistributionLength {
        /// Length of the distribution.
        len: usize,
    },
    /// Unknown version byte (of a group message or a distribution).
    #[error("unsupported group format version {0}")]
    UnsupportedVersion(u8),
    /// The distribution's signing key is not a valid Ed25519 key.
    #[error("sender-key distribution carries an invalid signing key")]
    InvalidSigningKey,
    /// The distribution's identity signature does not verify under the
    /// identity of the member it came from.
    #[error("sender-key distribution is not signed by the member it came from")]
    BadDistributionSignature,
    /// The distribution or message names another group than expected.
    #[error("sender key or message is for another group")]
    WrongGroup,
    /// The message is under another epoch than the receiver's sender key.
    #[error("message epoch {got} does not match the sender key's epoch {expected}")]
    WrongEpoch {
        /// The receiver's epoch.
        expected: u64,
        /// The message's epoch.
        got: u64,
    },
    /// The message is from a different chain (the sender rotated its key;
    /// its new distribution is needed).
    #[error("message chain id {got} does not match the receiver's chain {expected}")]
    WrongChain {
        /// The receiver's chain id.
        expected: u32,
        /// The message's chain id.
        got: u32,
    },
    /// The sealed sender of the envelope is not the member this receiver
    /// state belongs to (state looked up by the wrong key, or a message
    /// re-sent by someone else).
    #[error("group message was sealed by another member than the sender key's owner")]
    WrongSender,
    /// The sealed envelope does not carry a group message (type 0x04).
    #[error("sealed envelope does not carry a group message")]
    NotAGroupMessage,
    /// The message signature does not verify under the sender's signing key.
    #[error("group message signature does not verify")]
    BadSignature,
    /// The iteration was already decrypted, or its key was evicted.
    #[error("iteration {0} was already received or is too old (replay)")]
    Replay(u32),
    /// The iteration is more than [`MAX_GROUP_SKIP`] ahead of the chain.
    #[error("iteration {iteration} is more than {MAX_GROUP_SKIP} ahead of {current}")]
    TooFarAhead {
        /// The receiver's next expected iteration.
        current: u32,
        /// The message's iteration.
        iteration: u32,
    },
    /// The chain reached its last iteration; the sender must rotate.
    #[error("sender chain exhausted; a new sender key is needed")]
    ChainExhausted,
    /// The ciphertext does not authenticate under the derived key.
    #[error("group ciphertext does not authenticate")]
    Undecryptable,
    /// The decrypted plaintext is not validly padded (section 6).
    #[error("group plaintext padding: {0}")]
    Padding(PaddingError),
    /// Sealing the message for one recipient failed (section 5).
    #[error("sealing the group message: {0}")]
    Sealed(SealedError),
}
