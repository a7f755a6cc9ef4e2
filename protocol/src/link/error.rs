//! Why linking a device fails (docs/PROTOCOL.md §15.7): one variant per
//! thing that can be wrong, each saying whose fault it is, so a client can
//! tell the user "you mistyped the code" apart from "someone interfered
//! with the exchange" or "the other device sent something malformed".
//!
//! Must never: carry the code, a key, a nonce or plaintext bytes in a
//! variant or a message (not even the mistyped character of a code: the
//! rest of the code is a secret, and an error may be logged).

use crate::content::ContentError;
use crate::wire::UsernameError;

/// Why a link code did not parse, a handshake message was refused, or a
/// provisioning did not encode or decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The code, once spaces and hyphens are removed, is not 77 characters
    /// long: the user typed too much or too little.
    #[error("the link code has {found} characters (spaces and hyphens not counted); a link code has 77: check that it was copied whole")]
    CodeLength {
        /// Characters found after removing spaces and hyphens.
        found: usize,
    },
    /// A character of the code is not base32 (a–z, 2–7): mistyped.
    #[error("character {position} of the link code (counting from 1, spaces and hyphens not counted) is not a letter a–z or a digit 2–7: check the code")]
    CodeCharacter {
        /// Its position among the code's 77 characters, from 1.
        position: usize,
    },
    /// The last character sets bits no code has (77 base32 characters
    /// carry 385 bits for 384): the last character was mistyped.
    #[error(
        "the last character of the link code is not one a link code can end with: check the code"
    )]
    CodeEnding,
    /// A handshake message has a length its kind never has: truncated or
    /// not a link message at all (the peer's or the relay's fault).
    #[error("link message {message} is {len} bytes, which no such message is: it was cut short or is not a link message")]
    MessageLength {
        /// 1 for the joiner's message, 2 for the creator's.
        message: u8,
        /// Its length.
        len: usize,
    },
    /// A handshake message starts with another type byte than its kind's.
    #[error("link message {message} starts with type {found:#04x}, not {message:#04x}: it is not the message expected here")]
    MessageType {
        /// The kind expected (1 or 2).
        message: u8,
        /// The type byte found.
        found: u8,
    },
    /// The creator could not open the joiner's message under its code: the
    /// code was mistyped on the new device, or someone who knows only the
    /// ticket joined first. The ticket is spent; link again.
    #[error("the new device's message does not open under this link code: the code was mistyped on the new device, or someone else joined with the ticket; start linking again")]
    JoinerMessageRefused,
    /// The joiner could not open the creator's message: it was altered on
    /// the way, or was not made by the holder of this code.
    #[error("the existing device's message does not open under this link code: it was tampered with or does not come from the device that showed the code; start linking again")]
    CreatorMessageRefused,
    /// X25519 with the peer's ephemeral key is all zero (1.1): the peer
    /// sent a small-order point, which no honest device does.
    #[error("the other device's ephemeral key gives an all-zero shared secret (a small-order point): refused")]
    NonContributory,
    /// The provisioning plaintext ends before its layout does.
    #[error("the provisioning ends before its {field} field: it was cut short")]
    ProvisioningTruncated {
        /// The first field that is missing or incomplete.
        field: &'static str,
    },
    /// The provisioning's first byte is not a format this code reads.
    #[error("the provisioning has format {found:#04x}; this version reads only 0x01")]
    ProvisioningFormat {
        /// The format byte found.
        found: u8,
    },
    /// A provisioning field holds a value its layout never has.
    #[error("the provisioning is malformed: {0}")]
    ProvisioningMalformed(&'static str),
    /// Bytes follow the end of the provisioning's layout.
    #[error("the provisioning has {extra} bytes after its last field")]
    ProvisioningTrailing {
        /// How many bytes are left over.
        extra: usize,
    },
    /// The provisioning's username is not a canonical username (9.5).
    #[error("the provisioning's username is invalid: {0}")]
    ProvisioningUsername(#[source] UsernameError),
    /// The provisioning's snapshot pointer breaks a file-pointer limit (10.4).
    #[error("the provisioning's snapshot pointer is invalid: {0}")]
    ProvisioningSnapshot(#[source] ContentError),
    /// The encoded provisioning would not fit one link post.
    #[error("the provisioning is {len} bytes; at most {max} fit one link message")]
    ProvisioningTooLarge {
        /// Its encoded length.
        len: usize,
        /// `MAX_PROVISIONING_BYTES`.
        max: usize,
    },
}
