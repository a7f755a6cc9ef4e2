//! One message's AEAD key and nonce, derived from a chain's message-key seed.
//!
//! `HKDF-SHA256(salt = absent (32 zero bytes), ikm = seed,
//! info = "umbra/v1/ratchet/message-key", L = 44)` → bytes 0..32 are the
//! ChaCha20-Poly1305 key, bytes 32..44 the nonce. Both are derived, never
//! sent: each key encrypts exactly one message, so a derived nonce is unique.
//!
//! Must never: encrypt twice (encryption consumes the key), be printed in
//! `Debug`, or release plaintext whose tag did not verify.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::kdf::hkdf_zero_salt;
use crate::labels;

/// Length of the Poly1305 tag appended to every ratchet ciphertext.
pub const TAG_LEN: usize = 16;

/// The AEAD rejected a ciphertext (wrong key, tampered bytes or associated
/// data) or refused to encrypt an absurdly long plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadFailure;

/// A single-use message key: ChaCha20-Poly1305 key, nonce and the chain
/// index it belongs to. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MessageKey {
    key: [u8; 32],
    nonce: [u8; 12],
    index: u32,
}

impl MessageKey {
    /// Expands a message-key seed (from KDF_CK) into key and nonce.
    pub fn derive(seed: &[u8; 32], index: u32) -> Self {
        // The zero salt's HMAC key schedule is computed once per process.
        let hk = hkdf_zero_salt(seed);
        let mut okm = [0u8; 44];
        // The only HKDF failure is an output longer than 255 * 32 bytes; 44 is
        // a constant, so this cannot depend on input.
        #[allow(clippy::expect_used)]
        hk.expand(labels::RATCHET_MESSAGE_KEY, &mut okm)
            .expect("44 bytes is a valid HKDF-SHA256 output length");
        let mut out = MessageKey {
            key: [0u8; 32],
            nonce: [0u8; 12],
            index,
        };
        out.key.copy_from_slice(&okm[..32]);
        out.nonce.copy_from_slice(&okm[32..]);
        okm.zeroize();
        out
    }

    /// Rebuilds a stored key (the session's pickle) from its parts.
    pub(crate) fn from_parts(key: [u8; 32], nonce: [u8; 12], index: u32) -> Self {
        MessageKey { key, nonce, index }
    }

    /// The chain index of this key.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The AEAD key: for the session's pickle and, through the
    /// `low-level-api` feature (the only way to name this type outside the
    /// crate), for test vectors.
    pub fn key_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The AEAD nonce (reachable as [`MessageKey::key_bytes`] is).
    pub fn nonce_bytes(&self) -> &[u8; 12] {
        &self.nonce
    }

    /// Encrypts `plaintext` under `associated_data`, appending
    /// `ciphertext || tag` to `out`. Consumes the key: it is never reused.
    pub fn encrypt_into(
        self,
        associated_data: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AeadFailure> {
        let start = out.len();
        out.reserve(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.key));
        match cipher.encrypt_in_place_detached(
            Nonce::from_slice(&self.nonce),
            associated_data,
            &mut out[start..],
        ) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(_) => {
                // Never leave the plaintext behind in a buffer meant for the wire.
                out[start..].zeroize();
                out.truncate(start);
                Err(AeadFailure)
            }
        }
    }

    /// Verifies and decrypts `ciphertext || tag`. Borrowing (not consuming)
    /// lets the caller keep the key when verification fails.
    pub fn decrypt(
        &self,
        associated_data: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, AeadFailure> {
        let body_len = ciphertext_and_tag
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(AeadFailure)?;
        let (body, tag) = ciphertext_and_tag.split_at(body_len);
        let mut buffer = body.to_vec();
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.key));
        match cipher.decrypt_in_place_detached(
            Nonce::from_slice(&self.nonce),
            associated_data,
            &mut buffer,
            Tag::from_slice(tag),
        ) {
            Ok(()) => Ok(buffer),
            Err(_) => {
                // The buffer holds unauthenticated keystream-XORed bytes on
                // failure; wipe them rather than leave them to the allocator.
                buffer.zeroize();
                Err(AeadFailure)
            }
        }
    }
}

impl std::fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageKey")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_any_tampering_fails() {
        let key = MessageKey::derive(&[3; 32], 0);
        let mut sealed = Vec::new();
        key.clone()
            .encrypt_into(b"ad", b"plaintext", &mut sealed)
            .unwrap();
        assert_eq!(sealed.len(), 9 + TAG_LEN);
        assert_eq!(key.decrypt(b"ad", &sealed).unwrap(), b"plaintext");
        assert_eq!(key.decrypt(b"AD", &sealed), Err(AeadFailure));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert_eq!(key.decrypt(b"ad", &bad), Err(AeadFailure), "byte {i}");
        }
        assert_eq!(key.decrypt(b"ad", &sealed[..TAG_LEN - 1]), Err(AeadFailure));
    }

    #[test]
    fn different_seeds_give_different_keys_and_nonces() {
        let a = MessageKey::derive(&[1; 32], 0);
        let b = MessageKey::derive(&[2; 32], 0);
        assert_ne!(a.key_bytes(), b.key_bytes());
        assert_ne!(a.nonce_bytes(), b.nonce_bytes());
        assert_eq!(format!("{a:?}"), "MessageKey { index: 0, .. }");
    }
}
