//! Message identifiers: 16 random bytes chosen by the sender.
//!
//! The id travels inside the encrypted content, names the message in
//! receipts, and lets a recipient drop a duplicate delivery.
//!
//! Must never: be derived from content or a counter (ids must not leak
//! message order or equality to anyone who sees receipts).

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// A message's id (16 random bytes; displayed as 32 lower-case hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// Draws a fresh id.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The 32-digit hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the 32-digit hex form.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        bytes.try_into().ok().map(Self)
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}
