//! The client payload: the plaintext of every pairwise message, that is what
//! a client hands to [`PairwiseSession::seal_for`](crate::pairwise::PairwiseSession::seal_for)
//! (which pads it, section 6, then encrypts it). docs/PROTOCOL.md 12.1 is its
//! byte layout; `docs/test-vectors/payload.json` pins it.
//!
//! Sealed sender authenticates the sender's *identity key*, but the recipient
//! also needs the sender's account and username to file the message and to
//! reply. So the payload is:
//!
//! ```text
//! 0x01 (payload version) || sender account id (16) || sender device (u32be)
//!      || username length (u8) || username (canonical ASCII) || content (section 10)
//! ```
//!
//! The content encoding starts with its own version byte (also `0x01` today);
//! the two are different layers and are versioned separately.
//!
//! The claim is encrypted end to end, so the relay learns nothing from it.
//! It is only a claim: the receiving client checks it against the relay's
//! directory and its pinned identity before believing it (PROTOCOL.md 12.2).
//!
//! Must never: panic on malformed input, return a partially decoded payload,
//! or accept a non-canonical username.

use crate::content::{self, Content, ContentError};
use crate::wire::{AccountId, Address, DeviceId, Username, ACCOUNT_ID_LEN};

/// Version byte of the payload layout above.
pub const PAYLOAD_VERSION: u8 = 1;

/// Bytes before the username: version, account id, device, username length.
pub const PAYLOAD_FIXED_LEN: usize = 1 + ACCOUNT_ID_LEN + 4 + 1;

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The device that claims to have sent the message.
    pub sender: Address,
    /// The username the sender claims (canonical form).
    pub sender_username: Username,
    /// What the sender says.
    pub content: Content,
}

/// Why a payload could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Fewer bytes than the fixed header, or than the username length says.
    #[error("payload is truncated")]
    Truncated,
    /// A version byte other than [`PAYLOAD_VERSION`].
    #[error("payload version {0} is not supported")]
    UnsupportedVersion(u8),
    /// The username is not UTF-8, not valid, or not in canonical form.
    #[error("payload names a non-canonical username")]
    BadUsername,
    /// The content does not decode (or, encoding, breaks a content limit).
    #[error("payload content: {0}")]
    Content(ContentError),
}

impl Payload {
    /// Encodes the payload; fails only if the content breaks a limit of
    /// section 10.4 (checked by `content::encode`).
    pub fn encode(&self) -> Result<Vec<u8>, PayloadError> {
        let name = self.sender_username.as_str().as_bytes();
        // A `Username` is at most 32 bytes, so this cannot fail; refuse
        // rather than truncate if that rule ever changes.
        let name_len = u8::try_from(name.len()).map_err(|_| PayloadError::BadUsername)?;
        let body = content::encode(&self.content).map_err(PayloadError::Content)?;
        let mut out = Vec::with_capacity(PAYLOAD_FIXED_LEN + name.len() + body.len());
        out.push(PAYLOAD_VERSION);
        out.extend_from_slice(self.sender.account.as_bytes());
        out.extend_from_slice(&self.sender.device.0.to_be_bytes());
        out.push(name_len);
        out.extend_from_slice(name);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes a payload, checking in the order of PROTOCOL.md 12.1: version,
    /// length, username, content.
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        let (&version, rest) = bytes.split_first().ok_or(PayloadError::Truncated)?;
        if version != PAYLOAD_VERSION {
            return Err(PayloadError::UnsupportedVersion(version));
        }
        if rest.len() < PAYLOAD_FIXED_LEN - 1 {
            return Err(PayloadError::Truncated);
        }
        let (account, rest) = rest.split_at(ACCOUNT_ID_LEN);
        let (device, rest) = rest.split_at(4);
        let (&name_len, rest) = rest.split_first().ok_or(PayloadError::Truncated)?;
        if rest.len() < usize::from(name_len) {
            return Err(PayloadError::Truncated);
        }
        let (name, body) = rest.split_at(usize::from(name_len));
        let account = AccountId::from_slice(account).ok_or(PayloadError::Truncated)?;
        let device: [u8; 4] = device.try_into().map_err(|_| PayloadError::Truncated)?;
        let name = std::str::from_utf8(name).map_err(|_| PayloadError::BadUsername)?;
        let sender_username =
            Username::parse_canonical(name).map_err(|_| PayloadError::BadUsername)?;
        let content = content::decode(body).map_err(PayloadError::Content)?;
        Ok(Self {
            sender: Address {
                account,
                device: DeviceId(u32::from_be_bytes(device)),
            },
            sender_username,
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::MessageId;

    fn sample() -> Payload {
        Payload {
            sender: Address::primary(AccountId::from_bytes([7; 16])),
            sender_username: Username::parse("alice").unwrap(),
            content: Content::Text {
                id: MessageId([1; 16]),
                body: "hi".into(),
                sent_at_ms: 42,
            },
        }
    }

    #[test]
    fn roundtrip() {
        let p = sample();
        assert_eq!(Payload::decode(&p.encode().unwrap()).unwrap(), p);
    }

    #[test]
    fn every_truncation_and_bad_version_is_an_error() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(Payload::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert_eq!(
            Payload::decode(&bad),
            Err(PayloadError::UnsupportedVersion(2))
        );
    }
}
