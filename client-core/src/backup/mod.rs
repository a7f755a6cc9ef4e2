//! The account backup behind password-only restore (docs/PROTOCOL.md §13
//! for the format, §12.15 for when a client writes and reads it).
//!
//! OPAQUE hands the client a 64-byte export key at registration and at every
//! login with the same password; the relay never learns it. The client keeps
//! it sealed in the local store (an [`ExportKey`] in the `Backup` record, as
//! sensitive as the identity key: it opens the backup, which holds that
//! key) and seals under it, with `umbra_protocol::backup`, a backup of
//! everything a device with an empty data directory needs to be the account
//! again: the identity key, contacts with their pinned identities and trust,
//! group logs and settings. Never a ratchet session, a sender key or a
//! prekey secret (§13.3).
//!
//! [`BackupManager`] is the store side, a manager type (docs/ARCHITECTURE.md
//! §3, "Managers as types"): it reads the records a backup is built from,
//! holds the backup state record, merges two backups (`merge.rs`) and
//! writes a restored backup into a [`Txn`]; it never asks the relay, takes
//! the state lock or emits an event. The engine side (`sync.rs`: the
//! debounced background upload, compare-and-swap conflicts, re-sealing
//! under a new export key; `restore.rs`: a login on an empty data
//! directory) talks to the relay over HTTP (`http.rs`).
//!
//! Must never: put session state in a backup, show the export key or
//! backup contents in `Debug` or a log, or keep key bytes after drop.

mod adopt;
pub(crate) mod http;
pub(crate) mod merge;
pub(crate) mod restore;
pub(crate) mod sync;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lost_answer;
#[cfg(test)]
mod tests_relay;
#[cfg(test)]
mod tests_reseal;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use umbra_protocol::backup::{
    BackupContact, BackupContents, BackupGroup, BackupKey, BackupTrust, EXPORT_KEY_LEN,
};
use umbra_protocol::group::GroupLog;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{AccountId, Username};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::contact::TrustLevel;
use crate::failure::CryptoFailure;
use crate::groups::manager::{Group, Membership};
use crate::name_book::NameBinding;
use crate::records::{self, Prefix};
use crate::store::{Txn, Vault};
use crate::trust::ContactRecord;
use crate::Error;

/// OPAQUE's export key (64 bytes). Zeroized on drop; `Debug` shows nothing.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ExportKey(#[serde(with = "serde_bytes")] [u8; EXPORT_KEY_LEN]);

impl ExportKey {
    /// The key from opaque-ke's output, which is 64 bytes for umbra's suite.
    pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let mut key = [0u8; EXPORT_KEY_LEN];
        if bytes.len() != EXPORT_KEY_LEN {
            return Err(Error::Crypto(CryptoFailure::ExportKeyLength(bytes.len())));
        }
        key.copy_from_slice(bytes);
        let out = Self(key);
        key.zeroize();
        Ok(out)
    }

    /// Whether `other` is the same key, compared in constant time (a login's
    /// key against the stored ones: which password the relay holds).
    pub(crate) fn same_as(&self, other: &ExportKey) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }

    /// The backup key of `account` derived from this export key (§13.2).
    pub(crate) fn backup_key(&self, account: &AccountId) -> BackupKey {
        BackupKey::derive(&self.0, account)
    }

    /// A wiped-on-drop copy of the key bytes, for a device being linked
    /// (`crate::link`: the provisioning carries it, so the new device seals
    /// the account backup under the same key).
    pub(crate) fn to_zeroizing(&self) -> zeroize::Zeroizing<[u8; EXPORT_KEY_LEN]> {
        zeroize::Zeroizing::new(self.0)
    }

    /// The key from a linked device's provisioning.
    pub(crate) fn from_array(bytes: &[u8; EXPORT_KEY_LEN]) -> Self {
        Self(*bytes)
    }
}

impl std::fmt::Debug for ExportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportKey(<redacted>)")
    }
}

/// The backup state as stored (kind `Backup`, singleton).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct BackupState {
    /// What every backup of this account is sealed under.
    pub(crate) export_key: ExportKey,
    /// The newest `seq` the relay acknowledged (`204`) or served to us; the
    /// next backup is sealed with one more. `None` before the first.
    pub(crate) acked_seq: Option<u64>,
    /// SHA-256 of the contents encoding (with `written_at` zero) the relay
    /// acknowledged last: unchanged contents are not uploaded again.
    pub(crate) acked_digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for BackupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupState")
            .field("acked_seq", &self.acked_seq)
            .finish_non_exhaustive()
    }
}

/// The digest that says whether contents changed: of their encoding with
/// `written_at` set to zero (the time alone is no change).
pub(crate) fn digest(contents: &mut BackupContents) -> Result<[u8; 32], Error> {
    let written_at = std::mem::replace(&mut contents.written_at, 0);
    let encoded = contents.encode();
    contents.written_at = written_at;
    Ok(Sha256::digest(&encoded.map_err(backup_error)?[..]).into())
}

pub(crate) fn backup_error(e: umbra_protocol::backup::BackupError) -> Error {
    Error::Backup(crate::failure::BackupFailure::Contents(e))
}

/// The store side of the backup, and the in-memory signal that something a
/// backup holds changed (see the module docs).
pub(crate) struct BackupManager {
    vault: Arc<Vault>,
    /// Set when a change may need uploading; the worker clears it.
    pub(crate) dirty: AtomicBool,
    /// Wakes the worker.
    pub(crate) wake: Arc<Notify>,
    /// The background worker (`sync.rs`), started with the connection.
    pub(crate) worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Serialises uploads (the worker, a flush, a re-seal).
    pub(crate) upload_lock: tokio::sync::Mutex<()>,
}

impl BackupManager {
    pub(crate) fn new(vault: Arc<Vault>) -> Self {
        Self {
            vault,
            dirty: AtomicBool::new(true),
            wake: Arc::new(Notify::new()),
            worker: Mutex::new(None),
            upload_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Notes that backed-up state may have changed (cheap; any caller).
    pub(crate) fn touch(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// The stored backup state, if this store has an export key.
    pub(crate) async fn state(&self) -> Result<Option<BackupState>, Error> {
        Ok(self.vault.load(&records::backup::state()).await?)
    }

    /// Adds the write of `state` to `txn`.
    pub(crate) fn put_state(&self, txn: &mut Txn, state: &BackupState) -> Result<(), Error> {
        self.vault.save(txn, records::backup::state(), state)?;
        Ok(())
    }

    /// The export key of a password change whose answer never came, if any.
    pub(crate) async fn pending(&self) -> Result<Option<ExportKey>, Error> {
        Ok(self.vault.load(&records::backup::pending()).await?)
    }

    /// Adds the write of a pending export key to `txn` (before the change
    /// is sent: a lost answer or a crash leaves it for the next login).
    pub(crate) fn put_pending(&self, txn: &mut Txn, key: &ExportKey) -> Result<(), Error> {
        self.vault.save(txn, records::backup::pending(), key)?;
        Ok(())
    }

    /// Adds the removal of the pending export key to `txn` (the relay's
    /// key is known now).
    pub(crate) fn drop_pending(&self, txn: &mut Txn) {
        self.vault.remove(txn, records::backup::pending());
    }

    /// What a backup written now holds: our identity, every contact and
    /// its trust, every group's log. No session state.
    pub(crate) async fn contents(
        &self,
        account: AccountId,
        identity: &IdentityKeyPair,
        groups: &[Group],
        written_at: u64,
    ) -> Result<BackupContents, Error> {
        let mut contents = BackupContents::new(
            account,
            crate::engine::clone_identity(identity)?,
            written_at,
        );
        let mut contacts: Vec<BackupContact> = Vec::new();
        for (_, record) in self
            .vault
            .load_all(&Prefix::<records::contact::Contacts>::all())
            .await?
        {
            contacts.push(to_backup_contact(&record)?);
        }
        contacts.sort_by_key(|c| c.account);
        contacts.dedup_by(|a, b| a.account == b.account);
        contents.contacts = contacts;
        let mut backed: Vec<BackupGroup> = groups
            .iter()
            .filter(|g| g.membership == Membership::Active)
            .map(|g| BackupGroup {
                id: g.id(),
                log: std::mem::take(&mut *g.log.to_pickle()),
            })
            .collect();
        backed.sort_by_key(|g| g.id);
        backed.dedup_by(|a, b| a.id == b.id);
        contents.groups = backed;
        Ok(contents)
    }

    /// Writes what `contents` restores into `txn`, for a store that holds
    /// only its account record: contacts with their trust and name
    /// bindings, and groups (their logs; no sender key, so a new one is
    /// made on the first send). Returns how many of each, and how many
    /// groups were skipped because their log does not load.
    /// The name bindings go through the name book and the groups through
    /// the group manager, which own those records.
    pub(crate) fn restore_into(
        &self,
        txn: &mut Txn,
        contents: &BackupContents,
        me: &AccountId,
        names: &crate::name_book::NameBook,
        groups: &crate::groups::manager::GroupManager,
    ) -> Result<Restored, Error> {
        let mut bound: std::collections::HashMap<String, NameBinding> = Default::default();
        for contact in &contents.contacts {
            let record = from_backup_contact(contact);
            self.vault.save(
                txn,
                records::contact::slot(&self.vault, &record.account),
                &record,
            )?;
            // Two contacts once known by one name: the first keeps it, the
            // other is its newcomer, as the name book records it.
            bound
                .entry(record.username.clone())
                .and_modify(|b| b.newcomer = b.newcomer.or(Some(record.account)))
                .or_insert(NameBinding {
                    account: record.account,
                    newcomer: None,
                });
        }
        for (name, binding) in &bound {
            names.put_binding(txn, name, binding)?;
        }
        let mut restored_groups = 0;
        let mut skipped_groups = 0;
        for backed in &contents.groups {
            // One group that does not load (a log this version cannot read,
            // or under another id) costs that group, not the restore.
            let log = match GroupLog::from_pickle(&backed.log) {
                Ok(log) if log.state().group() == &backed.id => log,
                _ => {
                    skipped_groups += 1;
                    continue;
                }
            };
            let mut group = Group::new(log);
            if !group.state().members().iter().any(|m| &m.account == me) {
                group.membership = Membership::Left;
            }
            groups.put(txn, &group)?;
            restored_groups += 1;
        }
        Ok(Restored {
            contacts: contents.contacts.len(),
            groups: restored_groups,
            skipped_groups,
        })
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Restored {
    pub(crate) contacts: usize,
    pub(crate) groups: usize,
    /// Groups whose log did not load: left out, the rest restored.
    pub(crate) skipped_groups: usize,
}

fn to_backup_contact(record: &ContactRecord) -> Result<BackupContact, Error> {
    let trust = match (&record.trust, &record.pending) {
        (TrustLevel::Verified, _) => BackupTrust::Verified,
        (TrustLevel::Changed, Some(pending)) => BackupTrust::Changed {
            pending: Box::new(pending.clone()),
        },
        _ => BackupTrust::Unverified,
    };
    Ok(BackupContact {
        account: AccountId::from_bytes(record.account),
        username: Username::parse_canonical(&record.username)?,
        identity: record.pinned.clone(),
        trust,
    })
}

fn from_backup_contact(contact: &BackupContact) -> ContactRecord {
    let (trust, pending) = match &contact.trust {
        BackupTrust::Unverified => (TrustLevel::Unverified, None),
        BackupTrust::Verified => (TrustLevel::Verified, None),
        BackupTrust::Changed { pending } => (TrustLevel::Changed, Some((**pending).clone())),
    };
    ContactRecord {
        account: *contact.account.as_bytes(),
        username: contact.username.as_str().to_owned(),
        pinned: contact.identity.clone(),
        trust,
        pending,
    }
}

/// Whether an event may come with a change a backup holds (a new contact,
/// a key change, a group change). Receipts, typing, connection and
/// delivery news never do; anything else wakes the worker, which uploads
/// only if the contents differ from the acknowledged ones.
pub(crate) fn may_change_backup(event: &crate::Event) -> bool {
    use crate::Event;
    !matches!(
        event,
        Event::Typing { .. }
            | Event::GroupTyping { .. }
            | Event::Connection(_)
            | Event::QueueEmpty
            | Event::Lagged { .. }
            | Event::PreKeysReplenished { .. }
            | Event::DeliveryReceipt { .. }
            | Event::ReadReceipt { .. }
            | Event::GroupReceipt { .. }
            | Event::Sent { .. }
    )
}
