//! A symmetric-ratchet chain key and its KDF (KDF_CK).
//!
//! A chain key at index `i` yields the seed of message key `i` and the chain
//! key at index `i + 1`, each by HMAC-SHA256 keyed with the chain key:
//!
//! - message-key seed = `HMAC-SHA256(ck, 0x01)` (one input byte)
//! - next chain key    = `HMAC-SHA256(ck, 0x02)` (one input byte)
//!
//! These are Signal's constants; domain separation from every other umbra
//! chain comes from the root-key label the chain key was derived under.
//!
//! Must never: step backwards, reuse an index, or print key bytes in `Debug`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::message_key::MessageKey;

/// HMAC input byte that derives a message-key seed from a chain key.
pub const MESSAGE_KEY_SEED_INPUT: u8 = 0x01;
/// HMAC input byte that derives the next chain key.
pub const NEXT_CHAIN_KEY_INPUT: u8 = 0x02;

/// A chain key together with the index of the next message key it yields.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ChainKey {
    key: [u8; 32],
    index: u32,
}

impl ChainKey {
    /// A chain key at `index` (0 for a chain fresh from KDF_RK).
    pub fn new(key: [u8; 32], index: u32) -> Self {
        Self { key, index }
    }

    /// Index of the message key this chain key yields next.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The raw key: for the session's pickle and, through the
    /// `low-level-api` feature (the only way to name this type outside the
    /// crate), for test vectors.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The message key at the current index, without advancing.
    pub fn message_key(&self) -> MessageKey {
        let mut seed = self.hmac(MESSAGE_KEY_SEED_INPUT);
        let key = MessageKey::derive(&seed, self.index);
        seed.zeroize();
        key
    }

    /// The chain key at the next index, or `None` once the index would pass
    /// `u32::MAX` (the chain is exhausted; a DH ratchet step starts a new one).
    pub fn next(&self) -> Option<ChainKey> {
        let index = self.index.checked_add(1)?;
        Some(ChainKey {
            key: self.hmac(NEXT_CHAIN_KEY_INPUT),
            index,
        })
    }

    fn hmac(&self, input: u8) -> [u8; 32] {
        // HMAC accepts keys of any length, so keying cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC-SHA256 accepts a 32-byte key");
        mac.update(&[input]);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainKey")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_forward_and_stops_at_the_last_index() {
        let ck = ChainKey::new([9; 32], 0);
        let next = ck.next().unwrap();
        assert_eq!(next.index(), 1);
        assert_ne!(next.as_bytes(), ck.as_bytes());
        // The message-key seed and the next chain key use different inputs.
        assert_ne!(ck.message_key().key_bytes(), next.message_key().key_bytes());
        assert!(ChainKey::new([9; 32], u32::MAX).next().is_none());
        assert_eq!(format!("{ck:?}"), "ChainKey { index: 0, .. }");
    }
}
