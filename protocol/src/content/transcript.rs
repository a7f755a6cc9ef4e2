//! Sent-message sync (docs/PROTOCOL.md §10.7): the transcript a sender's own
//! other devices receive of what it sent 1:1, and the rule of which kinds a
//! transcript may carry. Kept apart from the content encoding because it is
//! the one variant that nests another: it must never decode more than one
//! level down, whatever a hostile peer nests inside.

use super::{
    encode, Content, ContentError, CONTENT_VERSION, MAX_CONTENT_BYTES,
    MIN_SUPPORTED_CONTENT_VERSION,
};
use crate::wire::{self, AccountId};

/// The kinds a [`Content::SentTranscript`] may carry: what a 1:1 send puts
/// in the conversation's history (a text, a reply, a file, a reaction, an
/// edit, a delete) or takes out of it (a conversation deleted for
/// everyone, which our other devices delete too), and the conversation's
/// disappearing-message timer, which our other devices apply too. Never a
/// transcript itself, so checking one decodes at most one level down.
pub const TRANSCRIPT_KINDS: [&str; 8] = [
    "Text",
    "TextReply",
    "FilePointer",
    "Reaction",
    "Edit",
    "DeleteForEveryone",
    "DeleteConversation",
    "ExpirationTimer",
];

/// Wraps `original` (content sent 1:1 to `destination`) as the transcript
/// the sender's own other devices receive (§10.7); a kind outside
/// [`TRANSCRIPT_KINDS`] is refused before anything is encoded.
pub fn sent_transcript(
    destination: AccountId,
    original: &Content,
) -> Result<Content, ContentError> {
    let transcript = Content::SentTranscript {
        destination,
        content: encode(original)?,
    };
    transcript.validate()?;
    Ok(transcript)
}

impl Content {
    /// The original of a [`Content::SentTranscript`], decoded and checked
    /// (§10.7); `None` for any other variant.
    pub fn transcript_original(&self) -> Option<Result<(AccountId, Content), ContentError>> {
        match self {
            Content::SentTranscript {
                destination,
                content,
            } => Some(transcript_inner(content).map(|inner| (*destination, inner))),
            _ => None,
        }
    }
}

/// Decodes a transcript's original: framed as any content, then its kind
/// checked *before* its own limits, so a transcript inside a transcript is
/// refused without being looked into (no recursion on hostile input).
pub(super) fn transcript_inner(bytes: &[u8]) -> Result<Content, ContentError> {
    let inner: Content = wire::decode_versioned(
        bytes,
        MAX_CONTENT_BYTES,
        MIN_SUPPORTED_CONTENT_VERSION..=CONTENT_VERSION,
    )?;
    if !TRANSCRIPT_KINDS.contains(&inner.kind()) {
        return Err(ContentError::NotTranscribable { kind: inner.kind() });
    }
    inner.validate()?;
    Ok(inner)
}
