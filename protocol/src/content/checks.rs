//! The checks that decoded content must pass before anyone shows or uses
//! it: every variant's limits ([`Content::validate`]), a file pointer's blob
//! id, name and media type, a reaction's emoji, a timer's range, and the
//! control characters text may carry. They live apart from the encoding in
//! `content.rs` so the rules a receiver enforces can be read in one place.
//! These functions must never repair a value (the attachment module's
//! sanitiser does that for display); they only accept or refuse it, with
//! the field and position that failed.

use super::transcript::transcript_inner;
use super::{
    Content, ContentError, FilePointer, MessageId, MAX_BLOB_ID_BYTES, MAX_CONTENT_TYPE_BYTES,
    MAX_FILE_NAME_BYTES, MAX_IDS_PER_RECEIPT, MAX_REACTION_BYTES, MAX_TEXT_BYTES,
};
use crate::group::{ChangeHash, GroupChange, GroupWelcome};

impl FilePointer {
    /// Checks blob id, file name and content type.
    pub fn validate(&self) -> Result<(), ContentError> {
        if self.blob_id.is_empty() || self.blob_id.len() > MAX_BLOB_ID_BYTES {
            return Err(ContentError::InvalidBlobId {
                len: self.blob_id.len(),
                max: MAX_BLOB_ID_BYTES,
            });
        }
        validate_file_name(&self.file_name)?;
        validate_content_type(&self.content_type)
    }
}

/// Control characters (C0, DEL, C1) can rewrite a terminal's display, so
/// text shown to a user may carry only the ones `allowed` lets through.
pub(super) fn reject_controls(
    field: &'static str,
    value: &str,
    allowed: impl Fn(char) -> bool,
) -> Result<(), ContentError> {
    match value
        .char_indices()
        .find(|&(_, c)| c.is_control() && !allowed(c))
    {
        Some((position, _)) => Err(ContentError::ControlCharacter { field, position }),
        None => Ok(()),
    }
}

/// A receiver may save the file under this name, so it must not be able to
/// name another directory.
fn validate_file_name(name: &str) -> Result<(), ContentError> {
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(ContentError::FileNameTooLong {
            len: name.len(),
            max: MAX_FILE_NAME_BYTES,
        });
    }
    if name.is_empty() {
        return Err(ContentError::InvalidFileName { reason: "empty" });
    }
    if name == "." || name == ".." {
        return Err(ContentError::InvalidFileName {
            reason: "a directory reference",
        });
    }
    if name.contains(['/', '\\']) {
        return Err(ContentError::InvalidFileName {
            reason: "contains a path separator",
        });
    }
    reject_controls("file name", name, |_| false)
}

fn validate_content_type(content_type: &str) -> Result<(), ContentError> {
    if content_type.len() > MAX_CONTENT_TYPE_BYTES {
        return Err(ContentError::ContentTypeTooLong {
            len: content_type.len(),
            max: MAX_CONTENT_TYPE_BYTES,
        });
    }
    if content_type.is_empty() || !content_type.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ContentError::InvalidContentType);
    }
    Ok(())
}

/// A reaction is shown beside the message it names, on one line, so it
/// must be short and hold nothing that moves the cursor or breaks the
/// line. Whether it is really an emoji is the interface's business (there
/// is no emoji table here); the limit keeps it to one.
pub(super) fn validate_reaction(emoji: &str) -> Result<(), ContentError> {
    if emoji.len() > MAX_REACTION_BYTES {
        return Err(ContentError::ReactionTooLong {
            len: emoji.len(),
            max: MAX_REACTION_BYTES,
        });
    }
    if emoji.is_empty() {
        return Err(ContentError::InvalidReaction { reason: "empty" });
    }
    if emoji.chars().any(char::is_whitespace) {
        return Err(ContentError::InvalidReaction {
            reason: "contains white space",
        });
    }
    reject_controls("reaction", emoji, |_| false)
}

impl Content {
    /// Checks the limits of docs/PROTOCOL.md §10.
    pub fn validate(&self) -> Result<(), ContentError> {
        match self {
            Content::Text { body, .. } | Content::GroupText { body, .. } => validate_text(body),
            Content::TextReply {
                id, target, body, ..
            }
            | Content::GroupTextReply {
                id, target, body, ..
            }
            | Content::Edit {
                id, target, body, ..
            } => {
                refuse_self_target(id, target)?;
                validate_text(body)
            }
            Content::Reaction {
                id, target, emoji, ..
            } => {
                refuse_self_target(id, target)?;
                validate_reaction(emoji)
            }
            Content::DeleteForEveryone { id, target, .. } => refuse_self_target(id, target),
            Content::SentTranscript { content, .. } => transcript_inner(content).map(|_| ()),
            Content::ExpirationTimer { seconds, .. } => validate_timer(*seconds),
            Content::DeliveryReceipt { ids } | Content::ReadReceipt { ids } => {
                if ids.is_empty() {
                    Err(ContentError::EmptyReceipt)
                } else if ids.len() > MAX_IDS_PER_RECEIPT {
                    Err(ContentError::TooManyReceiptIds {
                        count: ids.len(),
                        max: MAX_IDS_PER_RECEIPT,
                    })
                } else {
                    Ok(())
                }
            }
            Content::FilePointer(pointer) => pointer.validate(),
            Content::GroupControl { change } => {
                GroupChange::from_bytes(change)?;
                Ok(())
            }
            Content::GroupWelcome { state, change } => {
                GroupWelcome::from_parts(state, change)?;
                Ok(())
            }
            Content::GroupSync { have, version, .. } => {
                if *have == ChangeHash::ZERO && *version != 0 {
                    return Err(ContentError::InvalidGroupSync { version: *version });
                }
                Ok(())
            }
            Content::Typing { .. }
            | Content::Presence { .. }
            | Content::SenderKeyDistribution { .. }
            | Content::DeleteConversation
            | Content::ProfileChange { .. }
            | Content::GroupTyping { .. }
            | Content::SessionReset
            | Content::GroupSyncDone { .. }
            | Content::GroupKeyRequest { .. } => Ok(()),
        }
    }
}

/// A text body's limits (§10.4), shared by every variant that carries one.
fn validate_text(body: &str) -> Result<(), ContentError> {
    if body.len() > MAX_TEXT_BYTES {
        return Err(ContentError::TextTooLong {
            len: body.len(),
            max: MAX_TEXT_BYTES,
        });
    }
    reject_controls("text", body, |c| matches!(c, '\t' | '\n' | '\r'))
}

/// A disappearing-message timer is off (0) or within the limits of
/// `consts` (§10.8).
fn validate_timer(seconds: u32) -> Result<(), ContentError> {
    use crate::consts::{MAX_EXPIRATION_TIMER_SECS as MAX, MIN_EXPIRATION_TIMER_SECS as MIN};
    if seconds != 0 && !(MIN..=MAX).contains(&seconds) {
        return Err(ContentError::TimerOutOfRange {
            seconds,
            min: MIN,
            max: MAX,
        });
    }
    Ok(())
}

/// A message that replies to, reacts to, edits or deletes itself names
/// nothing that exists when it arrives; refusing it keeps "the target is
/// another message" a rule receivers can rely on.
fn refuse_self_target(id: &MessageId, target: &MessageId) -> Result<(), ContentError> {
    if id == target {
        return Err(ContentError::TargetsItself);
    }
    Ok(())
}
