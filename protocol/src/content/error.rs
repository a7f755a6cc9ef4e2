//! Why content could not be encoded or decoded: one named error per rule
//! of docs/PROTOCOL.md §10.4, so a receiver can say which rule a peer's
//! content broke. Kept apart from the encoding in `content.rs` so that file
//! stays one concept. Must never carry the refused value itself (a text or
//! a name is the user's), only its length, position or the rule.

use crate::group::GroupChangeError;
use crate::wire::WireError;

/// Why content could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Framing failed: size, version, postcard, trailing bytes.
    #[error(transparent)]
    Frame(#[from] WireError),
    /// A text body over `MAX_TEXT_BYTES`.
    #[error("text is {len} bytes; at most {max} are allowed")]
    TextTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A text, file name or group name with a forbidden control character.
    #[error("{field} has a control character at byte {position}")]
    ControlCharacter {
        /// Which field.
        field: &'static str,
        /// Byte offset of the character.
        position: usize,
    },
    /// A receipt listing no ids.
    #[error("receipt lists no message ids")]
    EmptyReceipt,
    /// A receipt listing too many ids.
    #[error("receipt lists {count} ids; at most {max} are allowed")]
    TooManyReceiptIds {
        /// Ids listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A blob id that is empty or over `MAX_BLOB_ID_BYTES`.
    #[error("blob id is {len} bytes; 1 to {max} are allowed")]
    InvalidBlobId {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A file name over `MAX_FILE_NAME_BYTES`.
    #[error("file name is {len} bytes; at most {max} are allowed")]
    FileNameTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A file name that is empty, `.`/`..`, or contains `/`, `\` or NUL.
    #[error("file name is not a plain file name: {reason}")]
    InvalidFileName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A content type over `MAX_CONTENT_TYPE_BYTES`.
    #[error("content type is {len} bytes; at most {max} are allowed")]
    ContentTypeTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A content type that is empty or not printable ASCII without spaces.
    #[error("content type must be non-empty printable ASCII without spaces")]
    InvalidContentType,
    /// A `GroupSync` whose `have` is all zero with a version other than 0.
    #[error("group sync names no head but version {version}")]
    InvalidGroupSync {
        /// The version it gave.
        version: u64,
    },
    /// A reply, reaction, edit or delete whose target is its own id.
    #[error("a message cannot refer to itself")]
    TargetsItself,
    /// A reaction over `MAX_REACTION_BYTES`.
    #[error("reaction is {len} bytes; at most {max} are allowed")]
    ReactionTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A reaction that is empty or holds a control or white-space character.
    #[error("reaction is not one emoji: {reason}")]
    InvalidReaction {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `SentTranscript` whose original is not one of the kinds a 1:1
    /// send shows in history (`TRANSCRIPT_KINDS`), a transcript among them.
    #[error("a sent transcript cannot carry {kind}")]
    NotTranscribable {
        /// The original's kind.
        kind: &'static str,
    },
    /// An `ExpirationTimer` neither 0 (off) nor within its limits.
    #[error("disappearing-message timer of {seconds} s; 0 or {min} to {max} are allowed")]
    TimerOutOfRange {
        /// The timer given.
        seconds: u32,
        /// The shortest timer.
        min: u32,
        /// The longest timer.
        max: u32,
    },
    /// A group change or welcome that does not parse or is inconsistent
    /// (its signature and authorization are the group log's to check).
    #[error("group change: {0}")]
    Group(#[from] GroupChangeError),
}
