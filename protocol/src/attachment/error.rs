//! Why an attachment could not be encrypted or a blob was refused.
//!
//! Each variant names what failed, so a user is told "chunk 3 was tampered
//! with" or "the download was cut short", never a bare "decryption failed".
//! Must never: carry key or plaintext bytes.

/// Why an attachment could not be encrypted or a blob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// The file (or the size a pointer promises) is larger than a blob the
    /// relay accepts can hold.
    #[error("file of {size} bytes is over the attachment limit of {max} bytes")]
    TooLarge {
        /// The plaintext size.
        size: u64,
        /// `MAX_ATTACHMENT_PLAINTEXT_BYTES`.
        max: u64,
    },
    /// The blob went on past the length its pointer's size implies.
    #[error("blob is longer than the {expected} bytes its pointer promises")]
    Oversized {
        /// The blob length the pointer implies.
        expected: u64,
    },
    /// The blob ended before the length its pointer's size implies.
    #[error("blob is truncated: {received} of {expected} bytes arrived")]
    Truncated {
        /// Bytes received.
        received: u64,
        /// The blob length the pointer implies.
        expected: u64,
    },
    /// A chunk failed authentication: altered, moved from another position,
    /// from another file, or a non-final chunk presented as the last.
    #[error("chunk {index} of the blob failed authentication (tampered with or reordered)")]
    TamperedChunk {
        /// Its position, from 0.
        index: u32,
    },
    /// The blob is not the one the pointer names.
    #[error("blob digest does not match the one in its pointer")]
    DigestMismatch,
    /// A call after an earlier one failed: a refused blob stays refused.
    #[error("this attachment stream already failed and accepts nothing more")]
    Failed,
}
