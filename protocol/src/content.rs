//! What clients say to each other, inside the end-to-end encryption.
//!
//! A [`Content`] is what a ratchet session encrypts: a text, a receipt, a
//! typing or presence signal, a pointer to an encrypted file, a signed group
//! change, a group welcome, a sender-key distribution, a group typing
//! signal, a request for a group sender key, or something said about an
//! earlier message (a reply, a reaction, an edit, a delete for everyone), or a
//! conversation's disappearing-message timer. (Group messages themselves
//! are not content: they are sealed directly, docs/PROTOCOL.md §8.) It is encoded like a wire frame,
//! `[CONTENT_VERSION][postcard(Content)]` (docs/PROTOCOL.md §10), and
//! every limit below is checked both before encoding and after decoding,
//! because the peer that produced it may be hostile.
//!
//! ```
//! use umbra_protocol::content::{self, Content, MessageId};
//!
//! let text = Content::Text {
//!     id: MessageId::random(&mut rand::rngs::OsRng),
//!     body: "hello".to_owned(),
//!     sent_at_ms: 1_795_000_000_000,
//! };
//! let bytes = content::encode(&text)?;
//! assert_eq!(content::decode(&bytes)?, text);
//! # Ok::<(), content::ContentError>(())
//! ```
//!
//! Must never: panic on any input, accept a value that breaks a limit, or
//! show a file key in `Debug` output.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::group::ChangeHash;
use crate::wire::{self, AccountId, Username};

mod checks;
mod error;
mod transcript;
pub use error::ContentError;
pub use transcript::{sent_transcript, TRANSCRIPT_KINDS};

/// The group id type is the group module's (32 random bytes); re-exported
/// here because content names it.
pub use crate::group::GroupId;

/// The content version this code writes.
pub const CONTENT_VERSION: u8 = 1;
/// The oldest content version this code reads.
pub const MIN_SUPPORTED_CONTENT_VERSION: u8 = 1;

/// Largest encoded content, version byte included: exactly what padding
/// accepts (`padding::MAX_CONTENT_LEN`, one byte under the largest bucket,
/// which needs room for the terminator), so any content that encodes can
/// also be padded, ratcheted and sealed inside `wire::MAX_ENVELOPE_BYTES`.
pub const MAX_CONTENT_BYTES: usize = crate::padding::MAX_CONTENT_LEN;
/// Longest text body, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;
/// Most message ids in one receipt.
pub const MAX_IDS_PER_RECEIPT: usize = 256;
/// Longest file name, in UTF-8 bytes.
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// Longest MIME content type, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 127;
/// Longest blob id, in bytes (blob ids are at least 1 byte).
pub const MAX_BLOB_ID_BYTES: usize = 64;
/// Longest group name, in UTF-8 bytes.
pub const MAX_GROUP_NAME_BYTES: usize = 128;
/// Most members a group has (the group module's limit, `consts`).
pub const MAX_GROUP_MEMBERS: usize = crate::consts::MAX_GROUP_MEMBERS;
/// Longest reaction, in UTF-8 bytes. A reaction is one emoji, and the
/// longest emoji sequences are ZWJ sequences with skin tones (a kiss with
/// two tones is 35 bytes, a subdivision flag 28); 64 leaves room for those
/// and whatever Unicode adds next while keeping a reaction small enough
/// that a peer cannot use it to carry a message.
pub const MAX_REACTION_BYTES: usize = 64;

/// Length of message-id byte strings.
const ID_LEN: usize = 16;
const FILE_KEY_LEN: usize = 32;
const DIGEST_LEN: usize = 32;

/// Identifies one message across retries and receipts (random, 16 bytes).
/// The one message-id type: the client crate re-exports it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(#[serde(with = "crate::keys::serde_bytes_array")] pub [u8; ID_LEN]);

macro_rules! random_id {
    ($ty:ident, $label:literal) => {
        impl $ty {
            /// Draws a fresh id; collisions are negligible at 128 bits.
            pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
                let mut bytes = [0u8; ID_LEN];
                rng.fill_bytes(&mut bytes);
                Self(bytes)
            }

            /// Lower-case hex (32 digits).
            pub fn to_hex(&self) -> String {
                self.0.iter().map(|b| format!("{b:02x}")).collect()
            }

            /// Parses the 32-digit hex form (either case); `None` otherwise.
            pub fn from_hex(text: &str) -> Option<Self> {
                crate::wire::hex_array(text).map(Self)
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($label, "({})"), self.to_hex())
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

random_id!(MessageId, "MessageId");

/// The symmetric key an encrypted file blob is sealed with. Secret: it is
/// wiped on drop, compared in constant time and redacted from `Debug`.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct FileKey(#[serde(with = "crate::keys::serde_bytes_array")] [u8; FILE_KEY_LEN]);

impl FileKey {
    /// Draws a fresh key.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; FILE_KEY_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps key bytes.
    pub const fn from_bytes(bytes: [u8; FILE_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The secret bytes; callers must not log them.
    pub const fn expose_secret(&self) -> &[u8; FILE_KEY_LEN] {
        &self.0
    }
}

impl PartialEq for FileKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for FileKey {}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

/// Where to fetch an encrypted file and how to open and check it.
/// Field order: `id`, `blob_id`, `key`, `digest`, `size`, `file_name`,
/// `content_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePointer {
    /// The message id of this file message.
    pub id: MessageId,
    /// The relay's id of the encrypted blob (1 to `MAX_BLOB_ID_BYTES` bytes).
    #[serde(with = "serde_bytes")]
    pub blob_id: Vec<u8>,
    /// Key the blob is encrypted under.
    pub key: FileKey,
    /// SHA-256 of the encrypted blob, checked before decrypting.
    #[serde(with = "crate::keys::serde_bytes_array")]
    pub digest: [u8; DIGEST_LEN],
    /// Plaintext size in bytes.
    pub size: u64,
    /// Suggested file name: no path separators, no control characters.
    pub file_name: String,
    /// MIME type, printable ASCII without spaces.
    pub content_type: String,
}

/// One message between clients. Each variant's doc starts with its postcard tag.
/// `Debug` shows the variant's name only (see the impl): a distribution's
/// payload holds a chain key, and texts are the user's.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// Tag 0: A chat message.
    Text {
        /// Its id, for receipts and duplicate suppression.
        id: MessageId,
        /// The text, at most `MAX_TEXT_BYTES`, no control characters but
        /// tab, line feed and carriage return.
        body: String,
        /// The sender's clock when sent, Unix milliseconds.
        sent_at_ms: u64,
    },
    /// Tag 1: The listed messages arrived.
    DeliveryReceipt {
        /// 1 to `MAX_IDS_PER_RECEIPT` ids.
        ids: Vec<MessageId>,
    },
    /// Tag 2: The listed messages were read.
    ReadReceipt {
        /// 1 to `MAX_IDS_PER_RECEIPT` ids.
        ids: Vec<MessageId>,
    },
    /// Tag 3: The sender started or stopped typing.
    Typing {
        /// `true` when typing started.
        started: bool,
    },
    /// Tag 4: The sender came online or went offline.
    Presence {
        /// `true` when online.
        online: bool,
    },
    /// Tag 5: A file, stored encrypted as a blob on the relay.
    FilePointer(FilePointer),
    /// Tag 6: A signed group change (docs/PROTOCOL.md §8.8), for the
    /// group log.
    GroupControl {
        /// The change's exact bytes (`GroupChange::as_bytes`).
        #[serde(with = "serde_bytes")]
        change: Vec<u8>,
    },
    /// Tag 7: A welcome to a new member: the state after the Add and the
    /// Add itself (§8.11). (Was `GroupMessage` before group messages were
    /// sealed directly.)
    GroupWelcome {
        /// The snapshot (`GroupState::to_bytes`).
        #[serde(with = "serde_bytes")]
        state: Vec<u8>,
        /// The Add change's bytes.
        #[serde(with = "serde_bytes")]
        change: Vec<u8>,
    },
    /// Tag 8: The sender's sender key for a group, opened by the group module.
    SenderKeyDistribution {
        /// The group.
        group: GroupId,
        /// The group module's distribution message.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Tag 9: The sender deleted its 1:1 conversation with the recipient
    /// for everyone: the recipient deletes it too (docs/PROTOCOL.md
    /// §12.19). Inside a `SentTranscript`, the sender's other devices do.
    DeleteConversation,
    /// Tag 10: The sender's account now has this username.
    ProfileChange {
        /// The new username.
        new_username: Username,
    },
    /// Tag 11: The sender started or stopped typing in a group (sent as an
    /// ephemeral frame to each member, like `Typing`).
    GroupTyping {
        /// The group.
        group: GroupId,
        /// `true` when typing started.
        started: bool,
    },
    /// Tag 12: A text message to a group, the plaintext of a sealed group
    /// message (§8.4): a `Text`'s fields, then the head and version of the
    /// sender's state of the group when it sent (§8.15), so a receiver
    /// sees whether it is behind.
    GroupText {
        /// Its id, for receipts and duplicate suppression.
        id: MessageId,
        /// The text (the limits of `Text.body`).
        body: String,
        /// The sender's clock when sent, Unix milliseconds.
        sent_at_ms: u64,
        /// The sender's head (the `ChangeHash` of its state's last change).
        head: ChangeHash,
        /// That state's version.
        version: u64,
    },
    /// Tag 13: A request, pairwise, for the changes of a group above the
    /// sender's head (§8.15). `have` is all zero (and `version` 0) when the
    /// sender holds no state of the group.
    GroupSync {
        /// The group.
        group: GroupId,
        /// The sender's head.
        have: ChangeHash,
        /// That state's version.
        version: u64,
    },
    /// Tag 14: The sender started a new session with the recipient and
    /// asks it to send on that one from now on (docs/PROTOCOL.md §12.15):
    /// sent right after a restore from the account backup, whose device
    /// holds none of the old sessions, and when a message arrives on a
    /// session the sender does not have. It carries nothing: the pre-key
    /// message it travels in is the reset; nothing is shown.
    SessionReset,
    /// Tag 15: The end of an answer to a `GroupSync`, pairwise, after its
    /// changes (§8.15): "this answer brought what I would send you up to
    /// my head `head`, at `version`". An asker whose log then knows `head`
    /// has caught up with the answerer, and refuses what it held from
    /// accounts its state still does not list.
    GroupSyncDone {
        /// The group.
        group: GroupId,
        /// The answerer's head when it answered.
        head: ChangeHash,
        /// That state's version.
        version: u64,
    },
    /// Tag 16: A request, pairwise, for the sender key the recipient made
    /// for `group` at `epoch` with `chain_id` (docs/PROTOCOL.md §8.16): a
    /// group message under that key reached the sender, which holds no key
    /// to open it (the distribution was lost or refused, or the sender's
    /// device was restored). The recipient answers, if the sender is owed
    /// it, with a `SenderKeyDistribution` of that key from `iteration` or
    /// later (never earlier than what it still keeps, §8.16); otherwise
    /// with nothing.
    GroupKeyRequest {
        /// The group.
        group: GroupId,
        /// The key's epoch (from the header of the message that did not
        /// open).
        epoch: u64,
        /// The key's chain id (same header).
        chain_id: u32,
        /// The iteration of the message that did not open (same header):
        /// the earliest one the asker needs.
        iteration: u32,
    },
    /// Tag 17: A chat message that quotes (replies to) an earlier message
    /// of the same conversation, ours or the sender's (§10.6).
    TextReply {
        /// Its id, for receipts and duplicate suppression.
        id: MessageId,
        /// The quoted message; never `id` itself.
        target: MessageId,
        /// The text (the limits of `Text.body`).
        body: String,
        /// The sender's clock when sent, Unix milliseconds.
        sent_at_ms: u64,
    },
    /// Tag 18: A reply in a group, the plaintext of a sealed group message
    /// like `GroupText`, whose fields it has with `target` after `id`.
    GroupTextReply {
        /// Its id, for receipts and duplicate suppression.
        id: MessageId,
        /// The quoted message of the group; never `id` itself.
        target: MessageId,
        /// The text (the limits of `Text.body`).
        body: String,
        /// The sender's clock when sent, Unix milliseconds.
        sent_at_ms: u64,
        /// The sender's head (as in `GroupText`).
        head: ChangeHash,
        /// That state's version.
        version: u64,
    },
    /// Tag 19: The sender adds (or, with `remove`, takes back) a reaction
    /// to a message of the conversation or group (§10.6). Pairwise, or the
    /// plaintext of a sealed group message.
    Reaction {
        /// Its own id, for duplicate suppression.
        id: MessageId,
        /// The message reacted to; never `id` itself.
        target: MessageId,
        /// One emoji: 1 to `MAX_REACTION_BYTES` bytes, no control or
        /// white-space character.
        emoji: String,
        /// `true` takes the sender's `emoji` on `target` back.
        remove: bool,
        /// The sender's clock when sent, Unix milliseconds.
        sent_at_ms: u64,
    },
    /// Tag 20: The sender replaces the text of one of its own earlier text
    /// messages (§10.6). Pairwise, or the plaintext of a sealed group
    /// message.
    Edit {
        /// Its own id, for duplicate suppression.
        id: MessageId,
        /// The sender's message whose text this replaces; never `id`.
        target: MessageId,
        /// The new text (the limits of `Text.body`).
        body: String,
        /// The sender's clock when sent, Unix milliseconds (the edit
        /// window is measured on it, §10.6).
        sent_at_ms: u64,
    },
    /// Tag 21: The sender deletes one of its own earlier text messages for
    /// everyone (§10.6). Pairwise, or the plaintext of a sealed group
    /// message.
    DeleteForEveryone {
        /// Its own id, for duplicate suppression.
        id: MessageId,
        /// The sender's message to delete; never `id`.
        target: MessageId,
        /// The sender's clock when sent, Unix milliseconds (the delete
        /// window is measured on it, §10.6).
        sent_at_ms: u64,
    },
    /// Tag 22: Sent-message sync (docs/PROTOCOL.md §10.7, §15.8): a copy,
    /// for the sender's own other devices, of what it sent 1:1 to
    /// `destination`, so every device of the account shows the whole
    /// conversation with the same message ids. Only the account's own
    /// listed devices may send it; a receiver refuses it from anyone else.
    SentTranscript {
        /// The account the original went to (never the sender's own).
        destination: AccountId,
        /// The original content's exact encoding (§10.1, version byte
        /// first): one of [`TRANSCRIPT_KINDS`], checked like any content.
        #[serde(with = "serde_bytes")]
        content: Vec<u8>,
    },
    /// Tag 23: The sender set the conversation's disappearing-message
    /// timer (docs/PROTOCOL.md §10.8, §12.18): from now on both sides
    /// delete each message of the 1:1 conversation from their stores
    /// `seconds` after it was sent (sender) or received (receiver). The
    /// change with the later (`sent_at_ms`, `id`) wins on both sides, so
    /// two changes crossing on the wire converge.
    ExpirationTimer {
        /// Its own id, for duplicate suppression and the tie-break.
        id: MessageId,
        /// 0 turns the timer off; otherwise `MIN_EXPIRATION_TIMER_SECS`
        /// to `MAX_EXPIRATION_TIMER_SECS`.
        seconds: u32,
        /// The sender's clock when sent, Unix milliseconds.
        sent_at_ms: u64,
    },
}

/// Encodes content at [`CONTENT_VERSION`] after checking every limit.
pub fn encode(content: &Content) -> Result<Vec<u8>, ContentError> {
    content.validate()?;
    Ok(wire::encode_versioned(
        CONTENT_VERSION,
        content,
        MAX_CONTENT_BYTES,
    )?)
}

/// Decodes content and checks every limit. Any byte string yields content or
/// a named error.
pub fn decode(bytes: &[u8]) -> Result<Content, ContentError> {
    let content: Content = wire::decode_versioned(
        bytes,
        MAX_CONTENT_BYTES,
        MIN_SUPPORTED_CONTENT_VERSION..=CONTENT_VERSION,
    )?;
    content.validate()?;
    Ok(content)
}

impl Content {
    /// The variant's name, for logs (never the contents).
    pub const fn kind(&self) -> &'static str {
        match self {
            Content::Text { .. } => "Text",
            Content::DeliveryReceipt { .. } => "DeliveryReceipt",
            Content::ReadReceipt { .. } => "ReadReceipt",
            Content::Typing { .. } => "Typing",
            Content::Presence { .. } => "Presence",
            Content::FilePointer(_) => "FilePointer",
            Content::GroupControl { .. } => "GroupControl",
            Content::GroupWelcome { .. } => "GroupWelcome",
            Content::SenderKeyDistribution { .. } => "SenderKeyDistribution",
            Content::DeleteConversation => "DeleteConversation",
            Content::ProfileChange { .. } => "ProfileChange",
            Content::GroupTyping { .. } => "GroupTyping",
            Content::GroupText { .. } => "GroupText",
            Content::GroupSync { .. } => "GroupSync",
            Content::SessionReset => "SessionReset",
            Content::GroupSyncDone { .. } => "GroupSyncDone",
            Content::GroupKeyRequest { .. } => "GroupKeyRequest",
            Content::TextReply { .. } => "TextReply",
            Content::GroupTextReply { .. } => "GroupTextReply",
            Content::Reaction { .. } => "Reaction",
            Content::Edit { .. } => "Edit",
            Content::DeleteForEveryone { .. } => "DeleteForEveryone",
            Content::SentTranscript { .. } => "SentTranscript",
            Content::ExpirationTimer { .. } => "ExpirationTimer",
        }
    }
}

/// Never the contents: a `SenderKeyDistribution` payload carries a secret
/// chain key, and bodies and names are the user's. Only the variant, and
/// for a distribution its group and payload length, are shown.
impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::SenderKeyDistribution { group, payload } => f
                .debug_struct("SenderKeyDistribution")
                .field("group", group)
                .field("payload_len", &payload.len())
                .finish_non_exhaustive(),
            other => f.debug_struct(other.kind()).finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_distribution_never_shows_its_payload() {
        // A distinctive payload standing in for a signed distribution (its
        // chain key inside).
        let payload: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37) ^ 0xa5).collect();
        let content = Content::SenderKeyDistribution {
            group: GroupId([7; 32]),
            payload: payload.clone(),
        };
        let shown = format!("{content:?} {content:#?}");
        assert!(shown.contains("SenderKeyDistribution"), "{shown}");
        assert!(shown.contains("payload_len: 64"), "{shown}");
        let decimal = format!("{:?}", &payload[..8]);
        let decimal = decimal.trim_matches(['[', ']']);
        let hex: String = payload[..8].iter().map(|b| format!("{b:02x}")).collect();
        for leak in [decimal, hex.as_str()] {
            assert!(!shown.contains(leak), "payload bytes in {shown}");
        }
        let text = Content::Text {
            id: MessageId([1; 16]),
            body: "a secret body".to_owned(),
            sent_at_ms: 1,
        };
        assert!(!format!("{text:?}").contains("secret"));
    }

    #[test]
    fn a_transcript_carries_only_what_history_shows_and_opens_to_its_original() {
        let destination = AccountId::from_bytes([9; 16]);
        let text = Content::Text {
            id: MessageId([1; 16]),
            body: "hi".to_owned(),
            sent_at_ms: 5,
        };
        let transcript = sent_transcript(destination, &text).expect("a text is transcribable");
        let bytes = encode(&transcript).expect("encodes");
        let decoded = decode(&bytes).expect("decodes");
        assert_eq!(
            decoded.transcript_original(),
            Some(Ok((destination, text.clone())))
        );
        assert_eq!(text.transcript_original(), None);
        // A conversation deleted for everyone is deleted on our other
        // devices too (§10.7).
        let deleted = sent_transcript(destination, &Content::DeleteConversation)
            .expect("a conversation delete is transcribable");
        assert_eq!(
            decode(&encode(&deleted).expect("encodes"))
                .expect("decodes")
                .transcript_original(),
            Some(Ok((destination, Content::DeleteConversation)))
        );
        for refused in [Content::Typing { started: true }, transcript.clone()] {
            assert_eq!(
                sent_transcript(destination, &refused),
                Err(ContentError::NotTranscribable {
                    kind: refused.kind()
                })
            );
        }
        // A deep nest is refused at its first level, never walked into.
        let mut nested = transcript;
        for _ in 0..2000 {
            let mut framed = vec![CONTENT_VERSION];
            framed.extend(postcard::to_allocvec(&nested).expect("postcard"));
            if framed.len() > MAX_CONTENT_BYTES - 64 {
                break;
            }
            nested = Content::SentTranscript {
                destination,
                content: framed,
            };
        }
        assert!(matches!(
            nested.validate(),
            Err(ContentError::NotTranscribable {
                kind: "SentTranscript"
            })
        ));
    }
}
