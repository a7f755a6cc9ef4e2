//! The sender-key chain and the per-message key schedule: a chain key
//! advanced by HMAC-SHA256, a message-key seed per iteration, and the
//! ChaCha20-Poly1305 key and nonce expanded from that seed and the header.
//!
//! Must never: reuse a message key, or leave a chain key or seed unwiped.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::GroupError;
use super::message::{GROUP_HEADER_LEN, TAG_LEN};
use crate::labels;

/// A chain key at a given iteration.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(super) struct ChainKey {
    pub(super) key: [u8; 32],
    pub(super) iteration: u32,
}

/// The per-iteration seed a message key is expanded from.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(super) struct MessageKeySeed(pub(super) [u8; 32]);

fn hmac(key: &[u8; 32], input: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts 32-byte keys"),
    };
    mac.update(input);
    mac.finalize().into_bytes().into()
}

impl ChainKey {
    /// seed = HMAC(chain_key, GROUP_MESSAGE_KEY_SEED label).
    pub(super) fn message_seed(&self) -> MessageKeySeed {
        MessageKeySeed(hmac(&self.key, labels::GROUP_MESSAGE_KEY_SEED))
    }

    /// next = HMAC(chain_key, GROUP_CHAIN_KEY label), iteration + 1.
    pub(super) fn next(&self) -> Result<ChainKey, GroupError> {
        let iteration = self
            .iteration
            .checked_add(1)
            .ok_or(GroupError::ChainExhausted)?;
        Ok(ChainKey {
            key: hmac(&self.key, labels::GROUP_CHAIN_KEY),
            iteration,
        })
    }
}

/// AEAD key and nonce for one message:
/// HKDF(salt = none, ikm = seed, info = label || header (49), 44) = key || nonce.
pub(super) fn message_cipher(
    seed: &MessageKeySeed,
    header: &[u8; GROUP_HEADER_LEN],
) -> (ChaCha20Poly1305, [u8; 12]) {
    // The zero salt's HMAC key schedule is computed once per process.
    let hk = crate::kdf::hkdf_zero_salt(&seed.0);
    let mut okm = Zeroizing::new([0u8; 44]);
    if hk
        .expand_multi_info(&[labels::GROUP_MESSAGE_KEY, header], okm.as_mut())
        .is_err()
    {
        unreachable!("HKDF-SHA256 output of 44 bytes is always valid");
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]));
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&okm[32..]);
    (cipher, nonce)
}

/// Encrypts `buffer` in place (ad = header) and appends the tag, so a group
/// message is built in one allocation.
pub(super) fn seal_in_place(
    seed: &MessageKeySeed,
    header: &[u8; GROUP_HEADER_LEN],
    buffer: &mut [u8],
) -> Result<[u8; TAG_LEN], GroupError> {
    let (cipher, nonce) = message_cipher(seed, header);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), header, buffer)
        .map_err(|_| GroupError::Undecryptable)?;
    Ok(tag.into())
}

/// Opens `ciphertext || tag` under the seed's key (ad = header); the
/// plaintext is wiped when dropped.
pub(super) fn open_with(
    seed: &MessageKeySeed,
    header: &[u8; GROUP_HEADER_LEN],
    ciphertext_and_tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, GroupError> {
    let split = ciphertext_and_tag
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(GroupError::Undecryptable)?;
    let (ciphertext, tag) = ciphertext_and_tag.split_at(split);
    let (cipher, nonce) = message_cipher(seed, header);
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            header,
            plaintext.as_mut_slice(),
            Tag::from_slice(tag),
        )
        .map_err(|_| GroupError::Undecryptable)?;
    Ok(plaintext)
}
