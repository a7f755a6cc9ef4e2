//! The account backup behind password-only restore (docs/PROTOCOL.md §13).
//!
//! OPAQUE gives the client a 64-byte *export key* at registration and at
//! every login with the same password, and never gives it to the relay.
//! From it, [`BackupKey::derive`] makes the key of a backup the relay
//! stores for the account: the identity key pair, contacts with the trust
//! the user gave them, groups, settings, and message history only if the
//! user opted in ([`BackupContents`]). [`seal`](fn@seal) encodes, pads (every sealed
//! backup is one of eleven power-of-two sizes, 16 KiB to 16 MiB) and
//! encrypts them under XChaCha20-Poly1305 with the account id and a growing
//! sequence number in the associated data; [`open`](fn@open) reverses it and says
//! what was wrong ([`BackupError`]). A password change gives a new export
//! key: the client re-seals under the key derived from it.
//!
//! **Never session state.** A backup holds no Double Ratchet session, no
//! group sender key (our own chain or a member's), no prekey secret. Every
//! such state moves forward once per message and is useful only at its
//! latest point: a device restored from a copy made some messages ago would
//! encrypt new messages under message keys (and, for a sender key, chain
//! iterations) it has already used, and reused keys with the same nonces
//! break ChaCha20-Poly1305's confidentiality and integrity outright; it
//! would also resurrect keys that forward secrecy deleted. So a restored
//! device starts fresh sessions (new X3DH from contacts' bundles, a new
//! sender key per group) under a new device id, and contacts keep their
//! pinned identity (the backup restores the same identity key), so they see
//! no key change.
//!
//! Layout: [`key`] (export key → backup key and key check), [`entries`]
//! (contacts, groups, settings, history and their limits), [`contents`]
//! (the plaintext and its sectioned encoding), [`padding`] (bucket
//! padding), [`seal`](mod@seal) (framing, AEAD, rollback check), [`error`].
//! The outside (header, sizes) is `wire::backup`, for the relay.
//!
//! Must never: hold session state, show a secret in `Debug`, or panic on
//! any input to [`open`] or [`BackupContents::decode`].

pub mod contents;
pub mod entries;
pub mod error;
pub mod key;
pub mod padding;
pub mod seal;

pub use contents::{BackupContents, BackupExtension, CONTENTS_VERSION, MAX_EXTENSIONS};
pub use entries::{
    BackupContact, BackupGroup, BackupTrust, Conversation, HistoryEntry, SettingValue, Settings,
    MAX_BACKUP_CONTACTS, MAX_BACKUP_GROUPS, MAX_SETTINGS, MAX_SETTING_NAME_BYTES,
    MAX_SETTING_TEXT_BYTES,
};
pub use error::BackupError;
pub use key::{BackupKey, BACKUP_KEY_LEN, EXPORT_KEY_LEN};
pub use seal::{associated_data, open, seal, OpenedBackup, BACKUP_AD_LEN};

/// The outside of a sealed backup (header, sizes), shared with the relay.
pub use crate::wire::backup::{
    backup_bucket_for, is_backup_bucket, BackupFrameError, BackupHeader, BACKUP_HEADER_LEN,
    BACKUP_KEY_CHECK_LEN, BACKUP_NONCE_LEN, BACKUP_OVERHEAD, BACKUP_TAG_LEN, BACKUP_VERSION,
    MAX_BACKUP_BYTES, MIN_BACKUP_BYTES,
};

#[cfg(test)]
mod tests;
