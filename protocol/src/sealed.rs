//! Sealed sender: hides who sent an envelope from the relay that carries it.
//!
//! Two layers, in the shape of Signal's sealed sender v1. Layer 1: a fresh
//! ephemeral X25519 key agreed with the recipient's identity key encrypts the
//! sender's public identity and relay address (account id, device id), like
//! the account and device in Signal's sender certificate. Layer 2: the static-static DH between sender and
//! recipient identity keys, chained with the layer-1 chain key, encrypts the
//! inner message, with the layer-1 ciphertext as associated data. Only the
//! holder of the claimed sender identity's X25519 key can produce a layer 2
//! that opens, so a forged sender claim fails. The address is what the
//! recipient files the session under; the pairwise layer binds it to the
//! session's X3DH transcript.
//!
//! Must never: return a sender whose binding signature does not verify,
//! return inner bytes that did not authenticate, accept an envelope larger
//! than [`MAX_ENVELOPE_LEN`], or skip the low-order check of either DH.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::identity::{IdentityError, IdentityKeyPair, IdentityPublic, IDENTITY_PUBLIC_LEN};
use crate::keys::{PublicKey, SecretKey};
use crate::labels;
use crate::wire::{AccountId, Address, DeviceId, ACCOUNT_ID_LEN};
use crate::x3dh::{encode_address, ADDRESS_LEN};

/// First byte of every sealed envelope of this format.
pub const SEALED_VERSION: u8 = 1;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;
/// Offset of the encrypted sender identity.
const STATIC_CT_OFFSET: usize = 1 + 32;
/// Length of the layer-1 plaintext: sender identity and address.
const SENDER_LEN: usize = IDENTITY_PUBLIC_LEN + ADDRESS_LEN;
/// Length of the encrypted sender identity and address.
pub const STATIC_CT_LEN: usize = SENDER_LEN + TAG_LEN;
/// Offset of the encrypted inner message.
const INNER_CT_OFFSET: usize = STATIC_CT_OFFSET + STATIC_CT_LEN;
/// Bytes an envelope adds to the inner message (1 + 32 + 164 + 16 = 213).
pub const ENVELOPE_OVERHEAD: usize = INNER_CT_OFFSET + TAG_LEN;
/// Largest inner message: a full padded plaintext plus 8 KiB of ratchet
/// headers and tags.
pub const MAX_INNER_LEN: usize = crate::padding::MAX_PADDED_LEN + 8 * 1024;
/// Largest envelope [`open`] accepts.
pub const MAX_ENVELOPE_LEN: usize = MAX_INNER_LEN + ENVELOPE_OVERHEAD;
/// Every key in this module is used for exactly one encryption, so the
/// nonce is constant.
const NONCE: [u8; 12] = [0u8; 12];

/// Why sealing or opening failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealedError {
    /// The inner message is longer than [`MAX_INNER_LEN`].
    #[error("inner message of {len} bytes exceeds {MAX_INNER_LEN}")]
    InnerTooLong {
        /// Length of the inner message.
        len: usize,
    },
    /// The envelope is shorter than [`ENVELOPE_OVERHEAD`].
    #[error("envelope of {len} bytes is shorter than the {ENVELOPE_OVERHEAD}-byte minimum")]
    TooShort {
        /// Length of the envelope.
        len: usize,
    },
    /// The envelope is longer than [`MAX_ENVELOPE_LEN`].
    #[error("envelope of {len} bytes exceeds {MAX_ENVELOPE_LEN}")]
    TooLong {
        /// Length of the envelope.
        len: usize,
    },
    /// The first byte is not [`SEALED_VERSION`].
    #[error("unsupported sealed-sender version {0}")]
    UnsupportedVersion(u8),
    /// The recipient identity key given to [`seal`] is a low-order point
    /// (or, opening, the envelope's ephemeral key is).
    #[error("ephemeral Diffie-Hellman is not contributory (low-order point)")]
    LowOrderEphemeral,
    /// The static-static DH is not contributory: a low-order identity key.
    #[error("static Diffie-Hellman is not contributory (low-order identity key)")]
    LowOrderStatic,
    /// The recipient identity given to [`seal`] does not verify.
    #[error("recipient identity is invalid: {0}")]
    InvalidRecipient(IdentityError),
    /// Layer 1 did not authenticate: not for us, or tampered with.
    #[error("sender layer does not authenticate (wrong recipient or tampered)")]
    SenderLayerUndecryptable,
    /// Layer 1 decrypted but holds no valid identity.
    #[error("sealed sender identity is invalid: {0}")]
    InvalidSender(IdentityError),
    /// Layer 1 decrypted to the wrong length (cannot happen with a
    /// conforming sender: the ciphertext length is fixed).
    #[error("sealed sender layer has the wrong length")]
    MalformedSenderLayer,
    /// Layer 2 did not authenticate: the sender claim is forged, or the
    /// envelope was tampered with.
    #[error("inner layer does not authenticate (forged sender or tampered)")]
    InnerLayerUndecryptable,
}

/// What [`open`] returns: an authenticated sender and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The sender, whose X25519 identity key produced layer 2.
    pub sender: IdentityPublic,
    /// The relay address the sender claims (authenticated by layer 2 like
    /// the identity; whether it is true is the pairwise layer's question).
    pub sender_address: Address,
    /// The inner message (for umbra, a pairwise ratchet message).
    pub inner: Vec<u8>,
}

/// Keys of layer 1, derived from DH(e, IK_B).
struct EphemeralKeys {
    chain_key: Zeroizing<[u8; 32]>,
    cipher_key: Zeroizing<[u8; 32]>,
}

fn expand(hk: &Hkdf<Sha256>, info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    if hk.expand_multi_info(info, out.as_mut()).is_err() {
        unreachable!("HKDF-SHA256 output of 32 bytes is always valid");
    }
    out
}

/// salt = label || IK_B (128) || E (32); ikm = DH(e, IK_B.x25519).
fn ephemeral_keys(
    shared: &[u8; 32],
    recipient: &IdentityPublic,
    ephemeral: &PublicKey,
) -> EphemeralKeys {
    let mut salt = Vec::with_capacity(labels::SEALED_EPHEMERAL_SALT.len() + 160);
    salt.extend_from_slice(labels::SEALED_EPHEMERAL_SALT);
    salt.extend_from_slice(&recipient.to_bytes());
    salt.extend_from_slice(ephemeral.as_bytes());
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    EphemeralKeys {
        chain_key: expand(&hk, &[labels::SEALED_EPHEMERAL_CHAIN_KEY]),
        cipher_key: expand(&hk, &[labels::SEALED_EPHEMERAL_CIPHER_KEY]),
    }
}

/// salt = layer-1 chain key; ikm = DH(IK_A, IK_B); info = label || static_ct.
fn static_key(shared: &[u8; 32], chain_key: &[u8; 32], static_ct: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(chain_key), shared);
    expand(&hk, &[labels::SEALED_STATIC_CIPHER_KEY, static_ct])
}

fn aead(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(Key::from_slice(key))
}

/// Seals `inner` from `sender` to `recipient`. Draws the 32-byte ephemeral
/// key from `rng` (and nothing else).
pub fn seal<R: RngCore + CryptoRng>(
    sender: &IdentityKeyPair,
    sender_address: &Address,
    recipient: &IdentityPublic,
    inner: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SealedError> {
    if inner.len() > MAX_INNER_LEN {
        return Err(SealedError::InnerTooLong { len: inner.len() });
    }
    recipient.verify().map_err(SealedError::InvalidRecipient)?;
    let ephemeral = SecretKey::generate(rng);
    let ephemeral_public = ephemeral.public_key();
    let s1 = ephemeral
        .diffie_hellman(recipient.dh_key())
        .map_err(|_| SealedError::LowOrderEphemeral)?;
    let keys = ephemeral_keys(s1.as_bytes(), recipient, &ephemeral_public);

    let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD + inner.len());
    out.push(SEALED_VERSION);
    out.extend_from_slice(ephemeral_public.as_bytes());
    let mut sender_bytes = Vec::with_capacity(SENDER_LEN);
    sender_bytes.extend_from_slice(&sender.public().to_bytes());
    sender_bytes.extend_from_slice(&encode_address(sender_address));
    let static_ct = aead(&keys.cipher_key)
        .encrypt(
            Nonce::from_slice(&NONCE),
            Payload {
                msg: &sender_bytes,
                aad: &out,
            },
        )
        .map_err(|_| SealedError::SenderLayerUndecryptable)?;
    out.extend_from_slice(&static_ct);

    let s2 = sender
        .dh_secret()
        .diffie_hellman(recipient.dh_key())
        .map_err(|_| SealedError::LowOrderStatic)?;
    let k2 = static_key(s2.as_bytes(), &keys.chain_key, &static_ct);
    let inner_ct = aead(&k2)
        .encrypt(
            Nonce::from_slice(&NONCE),
            Payload {
                msg: inner,
                aad: &out,
            },
        )
        .map_err(|_| SealedError::InnerLayerUndecryptable)?;
    out.extend_from_slice(&inner_ct);
    Ok(out)
}

/// Opens an envelope addressed to `recipient`, authenticating the sender.
pub fn open(recipient: &IdentityKeyPair, envelope: &[u8]) -> Result<Opened, SealedError> {
    let len = envelope.len();
    if len > MAX_ENVELOPE_LEN {
        return Err(SealedError::TooLong { len });
    }
    if len < ENVELOPE_OVERHEAD {
        return Err(SealedError::TooShort { len });
    }
    let (head, inner_ct) = envelope.split_at(INNER_CT_OFFSET);
    let (prefix, static_ct) = head.split_at(STATIC_CT_OFFSET);
    let (version, ephemeral) = prefix.split_at(1);
    if version != [SEALED_VERSION] {
        return Err(SealedError::UnsupportedVersion(
            version.first().copied().unwrap_or_default(),
        ));
    }
    let ephemeral = PublicKey::from_slice(ephemeral).map_err(|_| SealedError::TooShort { len })?;
    let s1 = recipient
        .dh_secret()
        .diffie_hellman(&ephemeral)
        .map_err(|_| SealedError::LowOrderEphemeral)?;
    let keys = ephemeral_keys(s1.as_bytes(), &recipient.public(), &ephemeral);
    let sender_bytes = Zeroizing::new(
        aead(&keys.cipher_key)
            .decrypt(
                Nonce::from_slice(&NONCE),
                Payload {
                    msg: static_ct,
                    aad: prefix,
                },
            )
            .map_err(|_| SealedError::SenderLayerUndecryptable)?,
    );
    // The AEAD fixes the plaintext length (STATIC_CT_LEN is checked by the
    // split above), so the split below cannot fall short.
    let (identity_bytes, address_bytes) = sender_bytes.split_at(IDENTITY_PUBLIC_LEN);
    let sender = IdentityPublic::from_bytes(identity_bytes).map_err(SealedError::InvalidSender)?;
    sender.verify().map_err(SealedError::InvalidSender)?;
    let sender_address = decode_address(address_bytes).ok_or(SealedError::MalformedSenderLayer)?;

    let s2 = recipient
        .dh_secret()
        .diffie_hellman(sender.dh_key())
        .map_err(|_| SealedError::LowOrderStatic)?;
    let k2 = static_key(s2.as_bytes(), &keys.chain_key, static_ct);
    let inner = aead(&k2)
        .decrypt(
            Nonce::from_slice(&NONCE),
            Payload {
                msg: inner_ct,
                aad: head,
            },
        )
        .map_err(|_| SealedError::InnerLayerUndecryptable)?;
    Ok(Opened {
        sender,
        sender_address,
        inner,
    })
}

/// Inverse of [`encode_address`]; `None` unless exactly 20 bytes.
fn decode_address(bytes: &[u8]) -> Option<Address> {
    if bytes.len() != ADDRESS_LEN {
        return None;
    }
    let (account, device) = bytes.split_at(ACCOUNT_ID_LEN);
    let mut device_bytes = [0u8; 4];
    device_bytes.copy_from_slice(device);
    Some(Address {
        account: AccountId::from_slice(account)?,
        device: DeviceId(u32::from_be_bytes(device_bytes)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn from() -> Address {
        Address::primary(AccountId::from_bytes([5; 16]))
    }

    #[test]
    fn roundtrip_names_the_sender() {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let bob = IdentityKeyPair::generate(&mut OsRng);
        let env = seal(&alice, &from(), &bob.public(), b"hello", &mut OsRng).unwrap();
        assert_eq!(env.len(), ENVELOPE_OVERHEAD + 5);
        let opened = open(&bob, &env).unwrap();
        assert_eq!(opened.sender, alice.public());
        assert_eq!(opened.sender_address, from());
        assert_eq!(opened.inner, b"hello");
    }

    #[test]
    fn wrong_recipient_cannot_open() {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let bob = IdentityKeyPair::generate(&mut OsRng);
        let eve = IdentityKeyPair::generate(&mut OsRng);
        let env = seal(&alice, &from(), &bob.public(), b"hello", &mut OsRng).unwrap();
        assert_eq!(open(&eve, &env), Err(SealedError::SenderLayerUndecryptable));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let bob = IdentityKeyPair::generate(&mut OsRng);
        let env = seal(&alice, &from(), &bob.public(), b"hi", &mut OsRng).unwrap();
        for i in 0..env.len() {
            let mut bad = env.clone();
            bad[i] ^= 0x01;
            assert!(open(&bob, &bad).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn size_limits() {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let bob = IdentityKeyPair::generate(&mut OsRng);
        assert_eq!(
            seal(
                &alice,
                &from(),
                &bob.public(),
                &vec![0; MAX_INNER_LEN + 1],
                &mut OsRng
            ),
            Err(SealedError::InnerTooLong {
                len: MAX_INNER_LEN + 1
            })
        );
        let max = seal(
            &alice,
            &from(),
            &bob.public(),
            &vec![7; MAX_INNER_LEN],
            &mut OsRng,
        )
        .unwrap();
        assert_eq!(max.len(), MAX_ENVELOPE_LEN);
        assert_eq!(open(&bob, &max).unwrap().inner.len(), MAX_INNER_LEN);
        assert_eq!(
            open(&bob, &vec![1; MAX_ENVELOPE_LEN + 1]),
            Err(SealedError::TooLong {
                len: MAX_ENVELOPE_LEN + 1
            })
        );
        for len in [0, 1, ENVELOPE_OVERHEAD - 1] {
            assert_eq!(
                open(&bob, &vec![1; len]),
                Err(SealedError::TooShort { len })
            );
        }
        let mut v2 = seal(&alice, &from(), &bob.public(), b"", &mut OsRng).unwrap();
        v2[0] = 2;
        assert_eq!(open(&bob, &v2), Err(SealedError::UnsupportedVersion(2)));
    }
}
