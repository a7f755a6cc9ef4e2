//! Why a group operation failed: one typed error for every sender-key
//! operation, so callers can tell a replay from a forgery from a bad length.
//!
//! Must never: carry key bytes or plaintext in a variant (errors are logged).

use super::distribution::DISTRIBUTION_LEN;
use super::message::MAX_GROUP_PLAINTEXT;
use super::sender_key::MAX_SKIP;

/// Why a group operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Plaintext longer than [`MAX_GROUP_PLAINTEXT`].
    #[error("group plaintext of {len} bytes exceeds {MAX_GROUP_PLAINTEXT}")]
    PlaintextTooLong {
        /// Length of the plaintext.
        len: usize,
    },
    /// Message shorter than [`MIN_GROUP_MESSAGE_LEN`] or longer than
    /// [`MAX_GROUP_MESSAGE_LEN`].
    #[error("group message of {len} bytes has an impossible length")]
    BadMessageLength {
        /// Length of the message.
        len: usize,
    },
    /// Distribution of the wrong length.
    #[error("sender-key distribution has {len} bytes, expected {DISTRIBUTION_LEN}")]
    BadDistributionLength {
        /// Length of the distribution.
        len: usize,
    },
    /// Unknown version byte.
    #[error("unsupported group format version {0}")]
    UnsupportedVersion(u8),
    /// The distribution's signing key is not a valid Ed25519 key.
    #[error("sender-key distribution carries an invalid signing key")]
    InvalidSigningKey,
    /// The message belongs to a different distribution id.
    #[error("message is for another distribution id")]
    WrongDistribution,
    /// The message is from a different chain (the sender rotated its key;
    /// a new distribution is needed).
    #[error("message chain id {got} does not match the receiver's chain {expected}")]
    WrongChain {
        /// The receiver's chain id.
        expected: u32,
        /// The message's chain id.
        got: u32,
    },
    /// The signature does not verify under the sender's signing key.
    #[error("group message signature does not verify")]
    BadSignature,
    /// The iteration was already decrypted, or its key was evicted.
    #[error("iteration {0} was already received or is too old (replay)")]
    Replay(u32),
    /// The iteration is more than [`MAX_SKIP`] ahead of the chain.
    #[error("iteration {iteration} is more than {MAX_SKIP} ahead of {current}")]
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
}
