//! The plaintext a client encrypts for a peer: who it claims to be, then the
//! content.
//!
//! Sealed sender authenticates the sender's *identity key*, but the recipient
//! also needs the sender's account and username to file the message and to
//! reply. So every pairwise plaintext (before padding) is:
//!
//! ```text
//! 0x01 (payload version) || sender account id (16) || sender device (u32be)
//!      || username length (u8) || username (ASCII) || content (protocol::content encoding)
//! ```
//!
//! The claim is encrypted end to end, so the relay learns nothing from it.
//! The recipient does not take it on faith: on first contact it checks with
//! the relay's directory that the account's published identity is the one
//! that sealed the envelope and that the username resolves to the account
//! (see `inbound.rs`); later the pinned identity must match.
//!
//! Must never: panic on malformed input, or accept a non-canonical username.

use umbra_protocol::content::{self, Content};
use umbra_protocol::wire::{AccountId, Address, DeviceId, Username};

use crate::Error;

/// Version byte of the payload layout above.
pub(crate) const PAYLOAD_VERSION: u8 = 1;

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    pub(crate) sender: Address,
    pub(crate) sender_username: Username,
    pub(crate) content: Content,
}

impl Payload {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        let name = self.sender_username.as_str().as_bytes();
        let name_len = u8::try_from(name.len())
            .map_err(|_| Error::Protocol("username longer than 255 bytes".into()))?;
        let body = content::encode(&self.content)
            .map_err(|e| Error::Protocol(format!("content does not encode: {e}")))?;
        let mut out = Vec::with_capacity(1 + 16 + 4 + 1 + name.len() + body.len());
        out.push(PAYLOAD_VERSION);
        out.extend_from_slice(self.sender.account.as_bytes());
        out.extend_from_slice(&self.sender.device.0.to_be_bytes());
        out.push(name_len);
        out.extend_from_slice(name);
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        let (&version, rest) = bytes.split_first().ok_or(PayloadError::Truncated)?;
        if version != PAYLOAD_VERSION {
            return Err(PayloadError::UnsupportedVersion(version));
        }
        if rest.len() < 16 + 4 + 1 {
            return Err(PayloadError::Truncated);
        }
        let (account, rest) = rest.split_at(16);
        let (device, rest) = rest.split_at(4);
        let (&name_len, rest) = rest.split_first().ok_or(PayloadError::Truncated)?;
        if rest.len() < usize::from(name_len) {
            return Err(PayloadError::Truncated);
        }
        let (name, body) = rest.split_at(usize::from(name_len));
        let account = AccountId::from_slice(account).ok_or(PayloadError::Truncated)?;
        let mut device_bytes = [0u8; 4];
        device_bytes.copy_from_slice(device);
        let name = std::str::from_utf8(name).map_err(|_| PayloadError::BadUsername)?;
        let sender_username =
            Username::parse_canonical(name).map_err(|_| PayloadError::BadUsername)?;
        let content = content::decode(body).map_err(PayloadError::Content)?;
        Ok(Self {
            sender: Address {
                account,
                device: DeviceId(u32::from_be_bytes(device_bytes)),
            },
            sender_username,
            content,
        })
    }
}

/// Why a decrypted payload was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PayloadError {
    #[error("payload is truncated")]
    Truncated,
    #[error("payload version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("payload names a non-canonical username")]
    BadUsername,
    #[error("payload content: {0}")]
    Content(umbra_protocol::content::ContentError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_protocol::content::MessageId;

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
        assert!(matches!(
            Payload::decode(&bad),
            Err(PayloadError::UnsupportedVersion(2))
        ));
    }
}
