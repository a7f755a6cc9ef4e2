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
//! Must never: step backwards, reuse an index, print key bytes in `Debug`,
//! or keep a keyed HMAC state beyond the call that made it (see
//! `ChainKey::mac`).

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

    /// The message key at the current index, without advancing (test
    /// vectors and tests; the session takes [`ChainKey::step`]).
    #[cfg(any(test, feature = "low-level-api"))]
    pub fn message_key(&self) -> MessageKey {
        self.message_key_with(self.mac())
    }

    /// The chain key at the next index, or `None` once the index would pass
    /// `u32::MAX` (the chain is exhausted; a DH ratchet step starts a new one).
    /// For test vectors and tests, like [`ChainKey::message_key`].
    #[cfg(any(test, feature = "low-level-api"))]
    pub fn next(&self) -> Option<ChainKey> {
        let index = self.index.checked_add(1)?;
        Some(self.next_with(self.mac(), index))
    }

    /// [`ChainKey::message_key`] and [`ChainKey::next`] together, with HMAC
    /// keyed once for both (the session's path: it always needs both).
    /// `None`, deriving nothing, when the chain is exhausted.
    pub fn step(&self) -> Option<(MessageKey, ChainKey)> {
        self.keyed().step()
    }

    /// This chain key with HMAC-SHA256 keyed under it, for a caller that
    /// derives more than one output (a new chain's epoch key and its first
    /// step).
    pub(crate) fn keyed(&self) -> KeyedChain<'_> {
        KeyedChain {
            chain: self,
            mac: self.mac(),
        }
    }

    /// HMAC-SHA256 keyed with this chain key, before any input: the two
    /// SHA-256 blocks of the key schedule, shared by every output of one
    /// step. The state is key-equivalent (it computes any HMAC under the
    /// chain key), and hmac 0.12.1 / sha2 0.10.9 (Cargo.lock) implement
    /// neither `Zeroize` nor `ZeroizeOnDrop` for it, so it is never stored in
    /// a long-lived struct: it and its clones live on the stack for the
    /// length of one derivation and are consumed by `finalize`, exactly as
    /// the state `new_from_slice` made per output did before it was shared.
    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so keying cannot fail.
        #[allow(clippy::expect_used)]
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC-SHA256 accepts a 32-byte key")
    }

    fn message_key_with(&self, keyed: Hmac<Sha256>) -> MessageKey {
        let mut seed = finish(keyed, &[MESSAGE_KEY_SEED_INPUT]);
        let key = MessageKey::derive(&seed, self.index);
        seed.zeroize();
        key
    }

    fn next_with(&self, keyed: Hmac<Sha256>, index: u32) -> ChainKey {
        ChainKey {
            key: finish(keyed, &[NEXT_CHAIN_KEY_INPUT]),
            index,
        }
    }
}

/// A chain key and HMAC-SHA256 keyed under it (see [`ChainKey::keyed`] and
/// `ChainKey::mac` for why it is only ever a short-lived local). Tied to its
/// chain key by the borrow, so a state can never be used with another key.
pub(crate) struct KeyedChain<'a> {
    chain: &'a ChainKey,
    mac: Hmac<Sha256>,
}

impl KeyedChain<'_> {
    /// `HMAC-SHA256(ck, input)`.
    pub(crate) fn hmac(&self, input: &[u8]) -> [u8; 32] {
        finish(self.mac.clone(), input)
    }

    /// The chain key's index.
    pub(crate) fn index(&self) -> u32 {
        self.chain.index
    }

    /// [`ChainKey::step`] on the already keyed state.
    pub(crate) fn step(self) -> Option<(MessageKey, ChainKey)> {
        let index = self.chain.index.checked_add(1)?;
        let message_key = self.chain.message_key_with(self.mac.clone());
        Some((message_key, self.chain.next_with(self.mac, index)))
    }
}

/// `HMAC(ck, input)` from a state keyed with `ck`.
fn finish(mut keyed: Hmac<Sha256>, input: &[u8]) -> [u8; 32] {
    keyed.update(input);
    keyed.finalize().into_bytes().into()
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
        assert!(ChainKey::new([9; 32], u32::MAX).step().is_none());
        assert_eq!(format!("{ck:?}"), "ChainKey { index: 0, .. }");
    }

    #[test]
    fn one_step_equals_keying_hmac_per_output() {
        // The shared keyed state must give the bytes of a fresh HMAC per output.
        fn fresh(key: &[u8; 32], input: u8) -> [u8; 32] {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
            mac.update(&[input]);
            mac.finalize().into_bytes().into()
        }
        let mut ck = ChainKey::new([0x5a; 32], 7);
        for _ in 0..3 {
            let (mk, next) = ck.step().unwrap();
            let expected = MessageKey::derive(&fresh(ck.as_bytes(), 0x01), ck.index());
            assert_eq!(mk.key_bytes(), expected.key_bytes());
            assert_eq!(mk.nonce_bytes(), expected.nonce_bytes());
            assert_eq!(mk.index(), ck.index());
            assert_eq!(next.as_bytes(), &fresh(ck.as_bytes(), 0x02));
            assert_eq!(next.index(), ck.index() + 1);
            assert_eq!(ck.message_key().key_bytes(), expected.key_bytes());
            assert_eq!(ck.next().unwrap().as_bytes(), next.as_bytes());
            ck = next;
        }
    }
}
