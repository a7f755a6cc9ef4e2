//! What can go wrong in key transparency: one variant per check, so a client
//! can tell its user (and its event log) exactly which proof failed and how.
//!
//! Must never: carry secret material, or merge two different failures into
//! one variant (a relay lie and a malformed proof are not the same event).

use thiserror::Error;

/// A key-transparency proof, head or encoding was refused (docs/PROTOCOL.md §16).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KtError {
    /// The bytes end before a field of the named structure.
    #[error("key transparency: {what} is truncated")]
    Truncated {
        /// Which structure.
        what: &'static str,
    },
    /// Bytes remain after the last field of the named structure.
    #[error("key transparency: {what} has trailing bytes")]
    Trailing {
        /// Which structure.
        what: &'static str,
    },
    /// A format, kind or flag byte has a value this version does not define.
    #[error("key transparency: {what} has the undefined byte {byte:#04x}")]
    UnknownByte {
        /// Which field.
        what: &'static str,
        /// The byte found.
        byte: u8,
    },
    /// A field breaks a rule of its encoding (named in the message).
    #[error("key transparency: malformed {what}")]
    Malformed {
        /// Which rule.
        what: &'static str,
    },
    /// A count is above its limit in `umbra_wire::limits`.
    #[error("key transparency: {what} has {count} entries, above the limit {limit}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many there were.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The VRF public key is not a valid ristretto255 point or is the identity.
    #[error("key transparency: invalid VRF public key")]
    BadVrfKey,
    /// The VRF proof does not decode or does not verify for this label under
    /// this key: the relay computed the index of another label or key.
    #[error("key transparency: VRF proof does not verify for this label")]
    BadVrfProof,
    /// The proof's path does not lead to the map root it was checked against.
    #[error("key transparency: proof does not lead to the map root")]
    RootMismatch,
    /// A version's value is of the other kind than its label (an account's
    /// value under a username's label or the reverse).
    #[error("key transparency: value kind does not match the label kind")]
    ValueKindMismatch,
    /// Version numbers do not start at 1 or do not increase by one.
    #[error("key transparency: bad version numbering")]
    BadVersion,
    /// A version's epoch is not after the previous version's, or is after the
    /// epoch of the head it is proven against.
    #[error("key transparency: version epoch {epoch} out of order (head epoch {head_epoch})")]
    BadVersionEpoch {
        /// The version's epoch.
        epoch: u64,
        /// The epoch of the head checked against.
        head_epoch: u64,
    },
    /// The hash chain of versions does not reach the chain hash expected.
    #[error("key transparency: version chain does not match")]
    ChainMismatch,
    /// A history proof's first version is 1 but its prior hash is not zero,
    /// or the reverse.
    #[error("key transparency: bad prior chain hash")]
    BadPrior,
    /// The builder was asked to publish a version in an epoch not after the
    /// label's latest version.
    #[error("key transparency: epoch {epoch} is not after the latest version's {latest}")]
    EpochNotAfterLatest {
        /// The epoch asked for.
        epoch: u64,
        /// The latest version's epoch.
        latest: u64,
    },
    /// A label that is not in the map was asked for its history.
    #[error("key transparency: label not in the map")]
    UnknownLabel,
    /// The history range asked for is empty or outside the label's versions.
    #[error("key transparency: no such version range")]
    BadRange,
    /// The epoch head's signature does not verify under the directory key.
    #[error("key transparency: epoch head signature does not verify")]
    BadHeadSignature,
    /// An RFC 9162 inclusion proof does not lead to the log root.
    #[error("key transparency: log inclusion proof does not verify")]
    BadInclusion,
    /// An RFC 9162 consistency proof does not connect the two log roots: the
    /// newer log does not extend the older one.
    #[error("key transparency: log consistency proof does not verify")]
    BadConsistency,
    /// A log index or size is out of range (index not below size, size 0,
    /// older size above newer, or a size the proof's length cannot fit).
    #[error("key transparency: log sizes out of range")]
    BadLogSize,
    /// Two heads for the same epoch differ: the relay signed two histories.
    #[error("key transparency: two different heads for epoch {epoch}")]
    Fork {
        /// The epoch both heads claim.
        epoch: u64,
    },
    /// A newer head is older than the one remembered (lower epoch or time).
    #[error("key transparency: head goes back (epoch {got} after {remembered})")]
    Rollback {
        /// The epoch remembered.
        remembered: u64,
        /// The epoch offered.
        got: u64,
    },
}
