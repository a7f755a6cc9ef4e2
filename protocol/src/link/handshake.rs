//! The two link messages (docs/PROTOCOL.md §15.7) as typestates: the
//! joiner's [`JoinerHandshake`] exists between posting msg1 and opening
//! msg2, the creator's [`CreatorHandshake`] between reading the code and
//! answering msg1; each step consumes its value.
//!
//! ```text
//! msg1 = 0x01 || n1 (24) || XChaCha20-Poly1305(K_join, n1, ticket || 0x01, e_J_pub)        73 bytes
//! msg2 = 0x02 || e_C_pub (32) || n2 (24) || XChaCha20-Poly1305(K_prov, n2,
//!                                             ticket || e_J_pub || e_C_pub, provisioning)
//! ```
//!
//! Random draws, in order (test vectors depend on it): the joiner draws
//! `e_J` (32 bytes) then `n1` (24); the creator draws `e_C` (32) then `n2`
//! (24).
//!
//! Must never: release a provisioning or answer a msg1 that did not
//! authenticate, derive a key from an all-zero X25519 output, or keep a
//! key, the shared secret or plaintext after a step (wiped on drop).

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{LinkCode, LinkError, LinkSecret, Provisioning};
use crate::keys::{PublicKey, SecretKey};
use crate::labels::{LINK_JOINER_KEY, LINK_PROVISION_KEY};
use crate::wire::{LinkTicketId, LINK_TICKET_LEN, MAX_LINK_MESSAGE_BYTES};

/// Type byte of the joiner's message.
pub const LINK_MSG1_TYPE: u8 = 0x01;
/// Type byte of the creator's message.
pub const LINK_MSG2_TYPE: u8 = 0x02;
/// Length of `n1` and `n2` (XChaCha20-Poly1305 nonces).
pub const LINK_NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// Length of msg1: type, nonce, sealed 32-byte public key.
pub const LINK_MSG1_LEN: usize = 1 + LINK_NONCE_LEN + KEY_LEN + TAG_LEN;
/// Length of a msg2 with an empty plaintext: type, `e_C_pub`, nonce, tag.
/// (No provisioning is empty; [`Provisioning::decode`] refuses one.)
pub const LINK_MSG2_MIN_LEN: usize = 1 + KEY_LEN + LINK_NONCE_LEN + TAG_LEN;
/// Associated data of msg2: `ticket || e_J_pub || e_C_pub`.
const MSG2_AAD_LEN: usize = LINK_TICKET_LEN + 2 * KEY_LEN;

/// `K_join = HKDF-SHA256(salt = ticket, ikm = secret, info = LINK_JOINER_KEY)`.
fn joiner_key(ticket: &LinkTicketId, secret: &LinkSecret) -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(Some(ticket.as_bytes()), secret.expose_secret())
        .expand(LINK_JOINER_KEY, key.as_mut_slice())
        // 32 bytes is far below HKDF's 255 × 32 limit.
        .unwrap_or_default();
    key
}

/// `K_prov = HKDF-SHA256(salt = secret, ikm = dh, info = LINK_PROVISION_KEY
/// || ticket || e_J_pub || e_C_pub)`, from `ours` and the peer's key.
fn provision_key(
    secret: &LinkSecret,
    ours: &SecretKey,
    theirs: &PublicKey,
    aad: &[u8; MSG2_AAD_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, LinkError> {
    // The only failure of `diffie_hellman` is a non-contributory result.
    let dh = ours
        .diffie_hellman(theirs)
        .map_err(|_| LinkError::NonContributory)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(Some(secret.expose_secret()), dh.as_bytes())
        .expand_multi_info(&[LINK_PROVISION_KEY, aad], key.as_mut_slice())
        .unwrap_or_default();
    Ok(key)
}

/// `ticket || e_J_pub || e_C_pub`: msg2's associated data and the tail of
/// `K_prov`'s info.
fn msg2_aad(ticket: &LinkTicketId, joiner: &PublicKey, creator: &PublicKey) -> [u8; MSG2_AAD_LEN] {
    let mut aad = [0u8; MSG2_AAD_LEN];
    aad[..LINK_TICKET_LEN].copy_from_slice(ticket.as_bytes());
    aad[LINK_TICKET_LEN..LINK_TICKET_LEN + KEY_LEN].copy_from_slice(joiner.as_bytes());
    aad[LINK_TICKET_LEN + KEY_LEN..].copy_from_slice(creator.as_bytes());
    aad
}

/// msg1's associated data: `ticket || 0x01`.
fn msg1_aad(ticket: &LinkTicketId) -> [u8; LINK_TICKET_LEN + 1] {
    let mut aad = [LINK_MSG1_TYPE; LINK_TICKET_LEN + 1];
    aad[..LINK_TICKET_LEN].copy_from_slice(ticket.as_bytes());
    aad
}

/// The new device between posting msg1 and opening msg2: holds the code's
/// ticket and secret and its ephemeral key `e_J`, all wiped on drop.
pub struct JoinerHandshake {
    ticket: LinkTicketId,
    secret: LinkSecret,
    ephemeral: SecretKey,
}

impl JoinerHandshake {
    /// Starts linking with the code the user typed: draws `e_J` and `n1`
    /// from `rng` and returns msg1 (73 bytes) to post after `LinkJoin`.
    pub fn start<R: RngCore + CryptoRng>(
        code: &LinkCode,
        rng: &mut R,
    ) -> (JoinerHandshake, Vec<u8>) {
        let ephemeral = SecretKey::generate(rng);
        let mut nonce = [0u8; LINK_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let key = joiner_key(&code.ticket(), code.secret());
        let mut msg1 = Vec::with_capacity(LINK_MSG1_LEN);
        msg1.push(LINK_MSG1_TYPE);
        msg1.extend_from_slice(&nonce);
        msg1.extend_from_slice(ephemeral.public_key().as_bytes());
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        // Sealing fails only for inputs over 2^38 bytes; this is 32.
        if let Ok(tag) = cipher.encrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            &msg1_aad(&code.ticket()),
            &mut msg1[1 + LINK_NONCE_LEN..],
        ) {
            msg1.extend_from_slice(&tag);
        }
        let joiner = JoinerHandshake {
            ticket: code.ticket(),
            secret: code.secret().clone(),
            ephemeral,
        };
        (joiner, msg1)
    }

    /// Opens the creator's msg2 into the provisioning. Any failure ends the
    /// handshake (the secret and `e_J` are wiped either way): the user
    /// links again with a new code.
    pub fn finish(self, msg2: &[u8]) -> Result<Provisioning, LinkError> {
        if msg2.len() < LINK_MSG2_MIN_LEN || msg2.len() > MAX_LINK_MESSAGE_BYTES {
            return Err(LinkError::MessageLength {
                message: 2,
                len: msg2.len(),
            });
        }
        if msg2[0] != LINK_MSG2_TYPE {
            return Err(LinkError::MessageType {
                message: 2,
                found: msg2[0],
            });
        }
        let mut creator = [0u8; KEY_LEN];
        creator.copy_from_slice(&msg2[1..1 + KEY_LEN]);
        let creator = PublicKey::from_bytes(creator);
        let nonce = &msg2[1 + KEY_LEN..1 + KEY_LEN + LINK_NONCE_LEN];
        let (sealed, tag) =
            msg2[1 + KEY_LEN + LINK_NONCE_LEN..].split_at(msg2.len() - LINK_MSG2_MIN_LEN);
        let aad = msg2_aad(&self.ticket, &self.ephemeral.public_key(), &creator);
        let key = provision_key(&self.secret, &self.ephemeral, &creator, &aad)?;
        let mut plaintext = Zeroizing::new(sealed.to_vec());
        XChaCha20Poly1305::new(key.as_slice().into())
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &aad,
                plaintext.as_mut_slice(),
                Tag::from_slice(tag),
            )
            .map_err(|_| LinkError::CreatorMessageRefused)?;
        Provisioning::decode(&plaintext)
    }
}

impl std::fmt::Debug for JoinerHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JoinerHandshake(<redacted>)")
    }
}

/// The existing device that showed the code, until it answers msg1: holds
/// the ticket and the secret (wiped on drop).
pub struct CreatorHandshake {
    ticket: LinkTicketId,
    secret: LinkSecret,
}

impl CreatorHandshake {
    /// Waits for the joiner's msg1 under the code this device generated.
    pub fn new(code: &LinkCode) -> CreatorHandshake {
        CreatorHandshake {
            ticket: code.ticket(),
            secret: code.secret().clone(),
        }
    }

    /// Opens msg1 and answers it with msg2 carrying `provisioning`, drawing
    /// `e_C` and `n2` from `rng`. A msg1 that does not open means a
    /// mistyped code on the joiner or a stranger who joined with the ticket:
    /// the caller stops (the ticket is spent) and sends no `LinkEnrol`.
    pub fn answer<R: RngCore + CryptoRng>(
        self,
        msg1: &[u8],
        provisioning: &Provisioning,
        rng: &mut R,
    ) -> Result<Vec<u8>, LinkError> {
        if msg1.len() != LINK_MSG1_LEN {
            return Err(LinkError::MessageLength {
                message: 1,
                len: msg1.len(),
            });
        }
        if msg1[0] != LINK_MSG1_TYPE {
            return Err(LinkError::MessageType {
                message: 1,
                found: msg1[0],
            });
        }
        let nonce = &msg1[1..1 + LINK_NONCE_LEN];
        let (sealed, tag) = msg1[1 + LINK_NONCE_LEN..].split_at(KEY_LEN);
        let mut joiner = [0u8; KEY_LEN];
        joiner.copy_from_slice(sealed);
        let key = joiner_key(&self.ticket, &self.secret);
        XChaCha20Poly1305::new(key.as_slice().into())
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &msg1_aad(&self.ticket),
                &mut joiner,
                Tag::from_slice(tag),
            )
            .map_err(|_| LinkError::JoinerMessageRefused)?;
        let joiner = PublicKey::from_bytes(joiner);
        let plaintext = provisioning.checked_encoding()?;

        let ephemeral = SecretKey::generate(rng);
        let mut nonce = [0u8; LINK_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let creator = ephemeral.public_key();
        let aad = msg2_aad(&self.ticket, &joiner, &creator);
        let key = provision_key(&self.secret, &ephemeral, &joiner, &aad)?;
        let mut msg2 = Vec::with_capacity(LINK_MSG2_MIN_LEN + plaintext.len());
        msg2.push(LINK_MSG2_TYPE);
        msg2.extend_from_slice(creator.as_bytes());
        msg2.extend_from_slice(&nonce);
        msg2.extend_from_slice(&plaintext);
        let tag = XChaCha20Poly1305::new(key.as_slice().into())
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &aad,
                &mut msg2[LINK_MSG2_MIN_LEN - TAG_LEN..],
            )
            // Only inputs over 2^38 bytes fail; checked_encoding bounds it.
            .map_err(|_| LinkError::ProvisioningTooLarge {
                len: plaintext.len(),
                max: super::MAX_PROVISIONING_BYTES,
            })?;
        msg2.extend_from_slice(&tag);
        Ok(msg2)
    }
}

impl std::fmt::Debug for CreatorHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CreatorHandshake(<redacted>)")
    }
}
