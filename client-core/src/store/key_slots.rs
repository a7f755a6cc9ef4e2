//! Password key slots: how a store's record and slot keys outlive a
//! password change (docs/PROTOCOL.md 12.8, "Key slots").
//!
//! A store's record and slot keys are fixed when it is created (derived
//! from the first password, 12.8) and never change: every record is sealed
//! under them and every named slot is an HMAC under them, so re-deriving
//! them from a new password would mean rewriting every record under slots
//! whose names the store does not keep. A password change instead wraps the
//! same two keys under the new password, in a key slot of a version-4
//! header:
//!
//! ```text
//! master    = Argon2id(password, salt, m, t, p)              (as 12.8)
//! wrap_key  = HKDF-SHA256(salt = none, ikm = master, info = "umbra/v1/client-store/wrap-key", L = 32)
//! wrapped   = XChaCha20-Poly1305(wrap_key, nonce, ad, record_key || slot_key)
//! ad        = "UMBRACS" || 0x04 || owner (16) || m u32be || t u32be || p u32be || salt (16)
//! ```
//!
//! Writing a header is one atomic row replacement, so a change is made
//! crash-safe in three header writes: first both passwords' slots (old,
//! new), then, once the relay has the new password, the new slot alone (or,
//! if the relay refused, the header as it was). A crash anywhere leaves a
//! header that one of the two passwords opens. The first write keeps every
//! slot the header had (there is one: a header with two, left by a change
//! whose answer was lost, is settled by a login before another change).
//!
//! Must never: keep a master or wrap key past the call, write a slot whose
//! keys were not first checked against the unlocked store's, or tell a
//! wrong password from a tampered slot (both are "does not open").

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use umbra_protocol::wire::AccountId;
use zeroize::Zeroizing;

use super::store_key::{master_key, KdfParams, StoreKeys, SALT_LEN};
use super::StoreError;

/// HKDF info for the key that wraps the store keys in a key slot.
pub(crate) const WRAP_KEY_INFO: &[u8] = b"umbra/v1/client-store/wrap-key";
/// The header version whose keys are wrapped in key slots.
pub(crate) const WRAPPED_HEADER_VERSION: u8 = 4;
/// The header's magic, shared with `header.rs`.
pub(crate) const MAGIC: &[u8; 7] = b"UMBRACS";
/// Bytes of a slot's XChaCha20 nonce.
pub(crate) const WRAP_NONCE_LEN: usize = 24;
/// `record_key || slot_key` plus the Poly1305 tag.
pub(crate) const WRAPPED_LEN: usize = 64 + 16;
/// One slot: `m || t || p || salt || nonce || wrapped`.
pub(crate) const KEY_SLOT_LEN: usize = 12 + SALT_LEN + WRAP_NONCE_LEN + WRAPPED_LEN;
/// At most two slots: the old and the new password, during a change. A
/// change starts only from one slot (`Vault::prepare_rekey` refuses a
/// header with two, an earlier change no login has decided), so it never
/// drops a slot to make room for its own.
pub(crate) const MAX_KEY_SLOTS: usize = 2;

/// One password's wrapping of the store keys.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeySlot {
    pub(crate) params: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) nonce: [u8; WRAP_NONCE_LEN],
    pub(crate) wrapped: [u8; WRAPPED_LEN],
}

impl std::fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySlot")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn wrap_cipher(master: &[u8; 32]) -> Result<XChaCha20Poly1305, StoreError> {
    let mut wrap_key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, master)
        .expand(WRAP_KEY_INFO, wrap_key.as_mut())
        .map_err(|e| StoreError::Kdf(e.to_string()))?;
    // `Key::from_slice`, not `.as_ref().into()`: with ml-kem in the tree
    // `Zeroizing<[u8; 32]>` has two `AsRef` targets and the call is ambiguous.
    Ok(XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(
        &wrap_key[..],
    )))
}

fn associated_data(owner: AccountId, params: KdfParams, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(MAGIC.len() + 1 + 16 + 12 + SALT_LEN);
    ad.extend_from_slice(MAGIC);
    ad.push(WRAPPED_HEADER_VERSION);
    ad.extend_from_slice(owner.as_bytes());
    ad.extend_from_slice(&params.memory_kib().to_be_bytes());
    ad.extend_from_slice(&params.iterations().to_be_bytes());
    ad.extend_from_slice(&params.parallelism().to_be_bytes());
    ad.extend_from_slice(salt);
    ad
}

impl KeySlot {
    /// Wraps `keys` under `master` (already derived from the password with
    /// `params` and `salt`).
    pub(crate) fn wrap<R: RngCore + CryptoRng>(
        master: &[u8; 32],
        params: KdfParams,
        salt: [u8; SALT_LEN],
        owner: AccountId,
        keys: &StoreKeys,
        rng: &mut R,
    ) -> Result<Self, StoreError> {
        let mut nonce = [0u8; WRAP_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut plain = Zeroizing::new([0u8; 64]);
        plain[..32].copy_from_slice(&keys.record_key);
        plain[32..].copy_from_slice(&keys.slot_key);
        let ad = associated_data(owner, params, &salt);
        let sealed = wrap_cipher(master)?
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_ref(),
                    aad: &ad,
                },
            )
            .map_err(|_| StoreError::Kdf("key slot encryption failed".into()))?;
        let wrapped = <[u8; WRAPPED_LEN]>::try_from(sealed.as_slice())
            .map_err(|_| StoreError::Kdf("key slot has an unexpected length".into()))?;
        Ok(KeySlot {
            params,
            salt,
            nonce,
            wrapped,
        })
    }

    /// A new slot for `password`: fresh salt, then Argon2id. Slow.
    pub(crate) fn for_password<R: RngCore + CryptoRng>(
        password: &[u8],
        params: KdfParams,
        owner: AccountId,
        keys: &StoreKeys,
        rng: &mut R,
    ) -> Result<Self, StoreError> {
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let master = master_key(password, &salt, params)?;
        Self::wrap(&master, params, salt, owner, keys, rng)
    }

    /// The store keys if `password` opens this slot, `None` if it does not
    /// (a wrong password, or a slot or owner altered). Slow.
    pub(crate) fn open(
        &self,
        password: &[u8],
        owner: AccountId,
    ) -> Result<Option<StoreKeys>, StoreError> {
        let master = master_key(password, &self.salt, self.params)?;
        let ad = associated_data(owner, self.params, &self.salt);
        let Ok(plain) = wrap_cipher(&master)?.decrypt(
            XNonce::from_slice(&self.nonce),
            Payload {
                msg: &self.wrapped,
                aad: &ad,
            },
        ) else {
            return Ok(None);
        };
        let plain = Zeroizing::new(plain);
        if plain.len() != 64 {
            return Ok(None);
        }
        let mut keys = StoreKeys {
            record_key: [0u8; 32],
            slot_key: [0u8; 32],
        };
        keys.record_key.copy_from_slice(&plain[..32]);
        keys.slot_key.copy_from_slice(&plain[32..]);
        Ok(Some(keys))
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.params.memory_kib().to_be_bytes());
        out.extend_from_slice(&self.params.iterations().to_be_bytes());
        out.extend_from_slice(&self.params.parallelism().to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.wrapped);
    }

    /// Parses one slot of exactly [`KEY_SLOT_LEN`] bytes; the parameters
    /// are bounded by the caller (`header.rs`) before any derivation.
    pub(crate) fn decode(bytes: &[u8]) -> Option<(u32, u32, u32, Self)> {
        if bytes.len() != KEY_SLOT_LEN {
            return None;
        }
        let u32_at = |at: usize| -> u32 {
            let mut a = [0u8; 4];
            a.copy_from_slice(&bytes[at..at + 4]);
            u32::from_be_bytes(a)
        };
        let (m, t, p) = (u32_at(0), u32_at(4), u32_at(8));
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[12..12 + SALT_LEN]);
        let mut nonce = [0u8; WRAP_NONCE_LEN];
        nonce.copy_from_slice(&bytes[12 + SALT_LEN..12 + SALT_LEN + WRAP_NONCE_LEN]);
        let mut wrapped = [0u8; WRAPPED_LEN];
        wrapped.copy_from_slice(&bytes[12 + SALT_LEN + WRAP_NONCE_LEN..]);
        Some((
            m,
            t,
            p,
            KeySlot {
                params: KdfParams::from_parts(m, t, p),
                salt,
                nonce,
                wrapped,
            },
        ))
    }
}
