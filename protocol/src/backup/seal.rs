//! Sealing and opening a backup (docs/PROTOCOL.md §13.6):
//!
//! ```text
//! sealed = BACKUP_VERSION (0x01) || u64be(seq) || key_check (16) || nonce (24)
//!          || XChaCha20-Poly1305(aead_key, nonce, ad, padded contents) (ciphertext || tag 16)
//! ad     = BACKUP_VERSION || account_id (16) || u64be(seq)
//! ```
//!
//! The nonce is 24 random bytes from the caller's CSPRNG. A counter nonce
//! is not safe here: the key stays the same for as long as the password
//! does, every device that logs in with the password holds it, and devices
//! cannot agree on a counter (two seal the same `seq` in a race; a restored
//! device starts from whatever `seq` the relay served). A random 192-bit
//! nonce makes a repeat negligible however many backups are sealed.
//!
//! `seq` is in the associated data, so a relay cannot relabel an old backup
//! as new; a client that remembers the last `seq` it saw refuses an older
//! one ([`BackupError::RolledBack`]). A fresh device remembers nothing and
//! accepts the backup it is served (§13.8 says what that allows).
//!
//! Must never: reuse a nonce on purpose, decrypt before the key check and
//! the outside checks, or return contents whose account differs from the
//! key's.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::padding::{pad, unpad};
use super::{BackupContents, BackupError, BackupKey};
use crate::wire::backup::{
    BackupHeader, BACKUP_HEADER_LEN, BACKUP_NONCE_LEN, BACKUP_TAG_LEN, BACKUP_VERSION,
};
use crate::wire::{AccountId, ACCOUNT_ID_LEN};

/// Length of the associated data: version, account id, sequence number.
pub const BACKUP_AD_LEN: usize = 1 + ACCOUNT_ID_LEN + 8;

/// An opened backup: its sequence number and contents.
#[derive(Debug)]
pub struct OpenedBackup {
    /// The sequence number it was sealed with (authenticated).
    pub seq: u64,
    /// What it holds.
    pub contents: BackupContents,
}

/// `version || account_id || u64be(seq)`.
pub fn associated_data(account: &AccountId, seq: u64) -> [u8; BACKUP_AD_LEN] {
    let mut ad = [0u8; BACKUP_AD_LEN];
    ad[0] = BACKUP_VERSION;
    ad[1..1 + ACCOUNT_ID_LEN].copy_from_slice(account.as_bytes());
    ad[1 + ACCOUNT_ID_LEN..].copy_from_slice(&seq.to_be_bytes());
    ad
}

/// Seals `contents` as backup number `seq` under `key` (the caller uses one
/// more than the last `seq` it saw). Draws the 24-byte nonce from `rng`.
pub fn seal<R: RngCore + CryptoRng>(
    contents: &BackupContents,
    key: &BackupKey,
    seq: u64,
    rng: &mut R,
) -> Result<Vec<u8>, BackupError> {
    if contents.account != *key.account() {
        return Err(BackupError::AccountMismatch);
    }
    let encoded = contents.encode()?;
    let mut buffer = pad(&encoded)?;
    let mut nonce = [0u8; BACKUP_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.aead_key().into());
    let tag = cipher
        .encrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            &associated_data(key.account(), seq),
            buffer.as_mut_slice(),
        )
        // Only inputs over 2^38 bytes fail; a bucket is at most 16 MiB.
        .map_err(|_| BackupError::TooLarge { len: encoded.len() })?;
    let mut sealed = Vec::with_capacity(BACKUP_HEADER_LEN + buffer.len() + BACKUP_TAG_LEN);
    sealed.push(BACKUP_VERSION);
    sealed.extend_from_slice(&seq.to_be_bytes());
    sealed.extend_from_slice(key.key_check());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&buffer);
    sealed.extend_from_slice(&tag);
    Ok(sealed)
}

/// Opens a sealed backup. `last_seen_seq` is the newest `seq` this device
/// has sealed or opened for the account (`None` on a fresh device); an
/// older backup is [`BackupError::RolledBack`]. Checks in the order of
/// §13.7.
pub fn open(
    key: &BackupKey,
    sealed: &[u8],
    last_seen_seq: Option<u64>,
) -> Result<OpenedBackup, BackupError> {
    let header = BackupHeader::parse(sealed)?;
    if !key.matches(&header.key_check) {
        return Err(BackupError::WrongKey);
    }
    // parse() accepted a bucket length, at least 16 KiB: both ranges exist.
    let tag_at = sealed.len() - BACKUP_TAG_LEN;
    let mut buffer = Zeroizing::new(
        sealed
            .get(BACKUP_HEADER_LEN..tag_at)
            .unwrap_or_default()
            .to_vec(),
    );
    let tag = Tag::from_slice(sealed.get(tag_at..).unwrap_or_default());
    XChaCha20Poly1305::new(key.aead_key().into())
        .decrypt_in_place_detached(
            XNonce::from_slice(&header.nonce),
            &associated_data(key.account(), header.seq),
            buffer.as_mut_slice(),
            tag,
        )
        .map_err(|_| BackupError::Tampered)?;
    if let Some(last_seen) = last_seen_seq.filter(|&last| header.seq < last) {
        return Err(BackupError::RolledBack {
            found: header.seq,
            last_seen,
        });
    }
    let contents = BackupContents::decode(unpad(&buffer)?)?;
    if contents.account != *key.account() {
        return Err(BackupError::AccountMismatch);
    }
    Ok(OpenedBackup {
        seq: header.seq,
        contents,
    })
}
