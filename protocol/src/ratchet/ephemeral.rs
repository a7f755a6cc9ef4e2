//! Ephemeral messages: content the relay never stores (typing notices),
//! encrypted without consuming a Double Ratchet message key.
//!
//! A typing notice is dropped by the relay whenever its recipient is
//! offline. Encrypted with a message key, every dropped notice would leave a
//! gap in the chain, and after [`MAX_SKIP`](super::MAX_SKIP) of them the next
//! stored message would be refused as too far ahead. Ephemeral messages
//! therefore use one key per *epoch* (per sending chain, named by the
//! sender's ratchet public key), derived from the chain's first chain key:
//!
//! ```text
//! EK(epoch) = HMAC-SHA256(CK_0, "umbra/v1/ratchet/ephemeral-key")
//! message   = version 0x01 || ratchet_key (32) || u64be(sent_at_ms) || nonce (12)
//!             || ChaCha20-Poly1305(EK, nonce, AD || 0x03 || message[..53], padded plaintext)
//! ```
//!
//! `CK_0` is the chain key at index 0 that KDF_RK produced for the chain;
//! the HMAC input differs from the one-byte chain-step inputs (0x01, 0x02),
//! so `EK` is independent of every message key. The nonce is random: one key
//! encrypts every notice of an epoch.
//!
//! Sending may take the sending half of a DH ratchet step (as the next
//! message would), but never advances a chain. Receiving never changes any
//! state: the receiver looks the epoch up among the peer's current and
//! recent chains (or derives it tentatively for a ratchet key it has not yet
//! seen) and otherwise drops the notice.
//!
//! Must never: derive a message key, advance or create a chain on receipt,
//! reuse a nonce on purpose, or show key bytes in `Debug`.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::chain_key::{ChainKey, KeyedChain};
use super::message_key::TAG_LEN;
use crate::keys::PublicKey;
use crate::labels;

/// Version byte of the ephemeral message format above.
pub const EPHEMERAL_MESSAGE_VERSION: u8 = 0x01;
/// Length of the random AEAD nonce.
pub const EPHEMERAL_NONCE_LEN: usize = 12;
/// Encoded header: version, ratchet key, timestamp, nonce.
pub const EPHEMERAL_HEADER_LEN: usize = 1 + 32 + 8 + EPHEMERAL_NONCE_LEN;
/// Smallest valid encoding: header and a bare tag.
pub const MIN_EPHEMERAL_MESSAGE_LEN: usize = EPHEMERAL_HEADER_LEN + TAG_LEN;
/// How many of the peer's epochs a receiver keeps keys for (its current
/// receiving chain and the ones before it).
pub const EPHEMERAL_EPOCHS_KEPT: usize = 4;

/// Why bytes are not an ephemeral message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EphemeralMessageError {
    /// Shorter than header + tag.
    #[error(
        "ephemeral message has {actual} bytes, at least {MIN_EPHEMERAL_MESSAGE_LEN} are needed"
    )]
    Truncated {
        /// Length that was supplied.
        actual: usize,
    },
    /// A version byte this implementation does not speak.
    #[error("unsupported ephemeral message version {0:#04x}")]
    UnsupportedVersion(u8),
}

/// The key of one epoch, with the ratchet public key that names it.
/// Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct EpochKey {
    #[zeroize(skip)]
    pub(crate) ratchet_key: PublicKey,
    key: [u8; 32],
}

impl EpochKey {
    /// `EK = HMAC-SHA256(CK_0, label)` for the chain `first` (at index 0)
    /// that belongs to `ratchet_key`.
    pub(crate) fn derive(ratchet_key: PublicKey, first: &ChainKey) -> Self {
        Self::derive_keyed(ratchet_key, &first.keyed())
    }

    /// [`EpochKey::derive`] from a chain key whose HMAC state is already
    /// keyed, so the new chain's first step can share the key schedule.
    pub(crate) fn derive_keyed(ratchet_key: PublicKey, first: &KeyedChain<'_>) -> Self {
        debug_assert_eq!(first.index(), 0, "an epoch key comes from CK_0");
        EpochKey {
            ratchet_key,
            key: first.hmac(labels::RATCHET_EPHEMERAL_KEY),
        }
    }

    /// The raw key, for the session's pickle and (behind `low-level-api`)
    /// test vectors.
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// Rebuilds an epoch key from its pickle.
    pub(crate) fn from_parts(ratchet_key: PublicKey, key: [u8; 32]) -> Self {
        EpochKey { ratchet_key, key }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.key))
    }

    /// Encrypts under a fresh random nonce; `ad_prefix` is the session's
    /// associated data followed by the pairwise type byte.
    pub(crate) fn encrypt<R: RngCore + CryptoRng>(
        &self,
        ad_prefix: &[u8],
        sent_at_ms: u64,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Option<EphemeralMessage> {
        let mut nonce = [0u8; EPHEMERAL_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut message = EphemeralMessage {
            ratchet_key: self.ratchet_key,
            sent_at_ms,
            nonce,
            ciphertext: Vec::new(),
        };
        let ad = message.associated_data(ad_prefix);
        message.ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &ad,
                },
            )
            .ok()?;
        Some(message)
    }

    /// Verifies and decrypts; `None` if the tag does not verify.
    pub(crate) fn decrypt(&self, ad_prefix: &[u8], message: &EphemeralMessage) -> Option<Vec<u8>> {
        let ad = message.associated_data(ad_prefix);
        self.cipher()
            .decrypt(
                Nonce::from_slice(&message.nonce),
                Payload {
                    msg: &message.ciphertext,
                    aad: &ad,
                },
            )
            .ok()
    }
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochKey")
            .field("ratchet_key", &self.ratchet_key)
            .finish_non_exhaustive()
    }
}

/// One ephemeral message as it travels (inside a pairwise envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EphemeralMessage {
    /// The sender's ratchet public key: names the epoch.
    pub ratchet_key: PublicKey,
    /// The sender's clock when it sent the message, in Unix milliseconds
    /// (authenticated; the receiver bounds its age).
    pub sent_at_ms: u64,
    /// The random AEAD nonce.
    pub nonce: [u8; EPHEMERAL_NONCE_LEN],
    /// `ciphertext || tag`.
    pub ciphertext: Vec<u8>,
}

impl EphemeralMessage {
    /// The 53-byte header: version, ratchet key, timestamp, nonce.
    pub fn header(&self) -> [u8; EPHEMERAL_HEADER_LEN] {
        let mut out = [0u8; EPHEMERAL_HEADER_LEN];
        out[0] = EPHEMERAL_MESSAGE_VERSION;
        out[1..33].copy_from_slice(self.ratchet_key.as_bytes());
        out[33..41].copy_from_slice(&self.sent_at_ms.to_be_bytes());
        out[41..].copy_from_slice(&self.nonce);
        out
    }

    fn associated_data(&self, ad_prefix: &[u8]) -> Vec<u8> {
        let mut ad = Vec::with_capacity(ad_prefix.len() + EPHEMERAL_HEADER_LEN);
        ad.extend_from_slice(ad_prefix);
        ad.extend_from_slice(&self.header());
        ad
    }

    /// Length of the encoding.
    pub fn encoded_len(&self) -> usize {
        EPHEMERAL_HEADER_LEN + self.ciphertext.len()
    }

    /// Appends the encoding to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header());
        out.extend_from_slice(&self.ciphertext);
    }

    /// Parses the encoding. Structure only; authenticity comes from the key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EphemeralMessageError> {
        if bytes.len() < MIN_EPHEMERAL_MESSAGE_LEN {
            return Err(EphemeralMessageError::Truncated {
                actual: bytes.len(),
            });
        }
        let (header, ciphertext) = bytes.split_at(EPHEMERAL_HEADER_LEN);
        if header[0] != EPHEMERAL_MESSAGE_VERSION {
            return Err(EphemeralMessageError::UnsupportedVersion(header[0]));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&header[1..33]);
        let mut sent_at = [0u8; 8];
        sent_at.copy_from_slice(&header[33..41]);
        let mut nonce = [0u8; EPHEMERAL_NONCE_LEN];
        nonce.copy_from_slice(&header[41..]);
        Ok(EphemeralMessage {
            ratchet_key: PublicKey::from_bytes(key),
            sent_at_ms: u64::from_be_bytes(sent_at),
            nonce,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn round_trip_and_the_header_is_authenticated() {
        let key = EpochKey::derive(PublicKey::from_bytes([4; 32]), &ChainKey::new([9; 32], 0));
        let message = key.encrypt(b"ad", 77, b"typing", &mut OsRng).unwrap();
        let mut bytes = Vec::new();
        message.write_to(&mut bytes);
        assert_eq!(bytes.len(), message.encoded_len());
        let parsed = EphemeralMessage::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, message);
        assert_eq!(key.decrypt(b"ad", &parsed).unwrap(), b"typing");
        assert!(key.decrypt(b"AD", &parsed).is_none());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let refused = match EphemeralMessage::from_bytes(&bad) {
                Ok(m) => key.decrypt(b"ad", &m).is_none(),
                Err(_) => true,
            };
            assert!(refused, "flip at {i} accepted");
        }
        assert_eq!(
            EphemeralMessage::from_bytes(&bytes[..MIN_EPHEMERAL_MESSAGE_LEN - 1]),
            Err(EphemeralMessageError::Truncated {
                actual: MIN_EPHEMERAL_MESSAGE_LEN - 1
            })
        );
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode(key.as_bytes())));
    }

    #[test]
    fn the_epoch_key_is_not_a_message_key() {
        let first = ChainKey::new([9; 32], 0);
        let ek = EpochKey::derive(PublicKey::from_bytes([4; 32]), &first);
        assert_ne!(ek.as_bytes(), first.message_key().key_bytes());
        assert_ne!(Some(*ek.as_bytes()), first.next().map(|c| *c.as_bytes()));
    }
}
