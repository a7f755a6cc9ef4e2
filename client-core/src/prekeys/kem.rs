//! Our ML-KEM-768 prekeys (docs/PROTOCOL.md §3.9, §12.6): the bookkeeping
//! rules and the prekey manager's reads and writes of the KEM records
//! (kinds 33 to 35). The engine side (when to upload, rotate, top up) is
//! in `kem_maintenance.rs`.
//!
//! Like the X25519 prekeys: one-time KEM prekeys are made in batches, their
//! secrets (64-byte seeds) committed *before* the upload, and each is
//! deleted in the transaction that stores the session its pre-key message
//! opened; the last-resort KEM prekey is replaced on the signed-prekey
//! schedule (`SIGNED_PREKEY_ROTATION_SECS`), and a replaced one is kept for
//! [`REPLACED_SIGNED_PREKEY_RETENTION`] counted from its replacement, so a
//! hybrid pre-key message made for it just before the rotation still opens
//! at the end of its time in the relay's queue.
//!
//! A new store gets its KEM state in its setup transaction; a store
//! written before KEM prekeys has none, and its first publication creates
//! it ([`PreKeyManager::kem_state_or_initial`]), so no migration is needed.
//!
//! Must never: hand out a KEM prekey for upload before its seed is in the
//! caller's transaction, reuse an id of either kind, delete the current
//! last-resort KEM prekey, or keep a replaced one past its retention.

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::{KemPreKey, KemPreKeyKind};
use umbra_protocol::prekeys::SIGNED_PREKEY_ROTATION_SECS;

use super::PreKeyManager;
use crate::consts::REPLACED_SIGNED_PREKEY_RETENTION;
use crate::records;
use crate::store::{StoreError, Txn, Vault};
use crate::Error;

/// KEM prekey bookkeeping as stored (kind `KemPreKeyState`, singleton): a
/// format varint (0 = V1) and then its fields, so a later layout is a new
/// variant rather than a store-format change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum StoredKemState {
    /// Format 0.
    V1(KemPreKeyState),
}

/// KEM prekey bookkeeping (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KemPreKeyState {
    /// Next one-time KEM prekey id (from 1; never reused before wrapping).
    pub(crate) next_one_time_id: u32,
    /// Next last-resort KEM prekey id.
    pub(crate) next_last_resort_id: u32,
    /// The published last-resort KEM prekey's id and creation time.
    pub(crate) current_last_resort_id: u32,
    pub(crate) current_last_resort_created_at: u64,
    /// Replaced last-resort KEM prekeys still held: id and when it was
    /// *replaced* (Unix seconds). Never lists the current one.
    pub(crate) held_last_resort: Vec<(u32, u64)>,
}

/// The next id after `id`: ids wrap from `u32::MAX` to 1, never 0.
fn next_id(id: u32) -> u32 {
    id.wrapping_add(1).max(1)
}

impl KemPreKeyState {
    /// A new device's bookkeeping and its first last-resort KEM prekey (id 1).
    pub(crate) fn initial<R: RngCore + CryptoRng>(
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> (Self, KemPreKey) {
        let key = KemPreKey::generate(identity, KemPreKeyKind::LastResort, 1, now, rng);
        let state = Self {
            next_one_time_id: 1,
            next_last_resort_id: 2,
            current_last_resort_id: 1,
            current_last_resort_created_at: now,
            held_last_resort: Vec::new(),
        };
        (state, key)
    }

    /// `count` fresh signed one-time KEM prekeys with new ids.
    pub(crate) fn generate_one_time<R: RngCore + CryptoRng>(
        &mut self,
        identity: &IdentityKeyPair,
        count: usize,
        now: u64,
        rng: &mut R,
    ) -> Vec<KemPreKey> {
        (0..count)
            .map(|_| {
                let id = self.next_one_time_id;
                self.next_one_time_id = next_id(id);
                KemPreKey::generate(identity, KemPreKeyKind::OneTime, id, now, rng)
            })
            .collect()
    }

    /// Whether the last-resort KEM prekey is due for replacement at `now`
    /// (the signed prekey's schedule).
    pub(crate) fn rotation_due(&self, now: u64) -> bool {
        now.saturating_sub(self.current_last_resort_created_at) >= SIGNED_PREKEY_ROTATION_SECS
    }

    /// A new last-resort KEM prekey, made current; the old one is held as
    /// replaced at `now`.
    pub(crate) fn rotate<R: RngCore + CryptoRng>(
        &mut self,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> KemPreKey {
        let id = self.next_last_resort_id;
        self.next_last_resort_id = next_id(id);
        let key = KemPreKey::generate(identity, KemPreKeyKind::LastResort, id, now, rng);
        let replaced = self.current_last_resort_id;
        self.held_last_resort.retain(|(held, _)| *held != replaced);
        self.held_last_resort.push((replaced, now));
        self.current_last_resort_id = id;
        self.current_last_resort_created_at = now;
        key
    }

    /// Forgets the replaced last-resort KEM prekeys whose retention ran out
    /// at `now` and returns their ids (their seeds are to be deleted).
    pub(crate) fn take_expired(&mut self, now: u64) -> Vec<u32> {
        let retention = REPLACED_SIGNED_PREKEY_RETENTION.as_secs();
        let current = self.current_last_resort_id;
        self.held_last_resort.retain(|(id, _)| *id != current);
        let (keep, expired): (Vec<_>, Vec<_>) = self
            .held_last_resort
            .iter()
            .copied()
            .partition(|(_, replaced_at)| now.saturating_sub(*replaced_at) < retention);
        self.held_last_resort = keep;
        expired.into_iter().map(|(id, _)| id).collect()
    }
}

/// The KEM state to work on, and whether it was created just now (then its
/// first last-resort key is in the caller's transaction and must be
/// uploaded).
pub(crate) struct KemStateInTxn {
    pub(crate) state: KemPreKeyState,
    pub(crate) created: bool,
}

/// What one last-resort upkeep did.
#[derive(Debug)]
pub(crate) struct KemUpkeep {
    /// The new last-resort KEM prekey, if it rotated (it needs uploading).
    pub(crate) rotated: Option<KemPreKey>,
    /// How many replaced last-resort KEM prekeys were deleted.
    pub(crate) deleted: usize,
}

impl KemUpkeep {
    /// Whether anything is to be committed.
    pub(crate) fn changed(&self) -> bool {
        self.rotated.is_some() || self.deleted > 0
    }
}

impl PreKeyManager {
    /// The KEM bookkeeping, if this store has any yet.
    pub(crate) async fn kem_state(&self) -> Result<Option<KemPreKeyState>, StoreError> {
        Ok(self
            .vault
            .load(&records::kem_prekeys::state())
            .await?
            .map(|StoredKemState::V1(state)| state))
    }

    /// The KEM bookkeeping, created with a first last-resort KEM prekey in
    /// `txn` when the store has none (a new device, or a store written
    /// before KEM prekeys). Save it with [`PreKeyManager::save_kem_state`].
    pub(crate) async fn kem_state_or_initial<R: RngCore + CryptoRng>(
        &self,
        txn: &mut Txn,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> Result<KemStateInTxn, Error> {
        if let Some(state) = self.kem_state().await? {
            return Ok(KemStateInTxn {
                state,
                created: false,
            });
        }
        let state = Self::save_initial_kem(&self.vault, txn, identity, now, rng)?;
        Ok(KemStateInTxn {
            state,
            created: true,
        })
    }

    /// Adds a new KEM state and its first last-resort KEM prekey to `txn`
    /// (a new store's setup, which runs before any manager exists, and a
    /// store written before KEM prekeys at its first publication).
    pub(crate) fn save_initial_kem<R: RngCore + CryptoRng>(
        vault: &Vault,
        txn: &mut Txn,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> Result<KemPreKeyState, StoreError> {
        let (state, key) = KemPreKeyState::initial(identity, now, rng);
        vault.save(
            txn,
            records::kem_prekeys::last_resort(vault, key.id()),
            &key,
        )?;
        let stored = StoredKemState::V1(state.clone());
        vault.save(txn, records::kem_prekeys::state(), &stored)?;
        Ok(state)
    }

    /// Adds the bookkeeping record to `txn`.
    pub(crate) fn save_kem_state(
        &self,
        txn: &mut Txn,
        state: &KemPreKeyState,
    ) -> Result<(), StoreError> {
        let stored = StoredKemState::V1(state.clone());
        self.vault.save(txn, records::kem_prekeys::state(), &stored)
    }

    /// `count` new one-time KEM prekeys, their seeds and `state` (advanced)
    /// added to `txn`: upload them only once it is committed.
    pub(crate) fn add_kem_one_time<R: RngCore + CryptoRng>(
        &self,
        txn: &mut Txn,
        state: &mut KemPreKeyState,
        identity: &IdentityKeyPair,
        count: usize,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<KemPreKey>, StoreError> {
        let keys = state.generate_one_time(identity, count, now, rng);
        for key in &keys {
            let slot = records::kem_prekeys::one_time(&self.vault, key.id());
            self.vault.save(txn, slot, key)?;
        }
        self.save_kem_state(txn, state)?;
        Ok(keys)
    }

    /// Rotates the last-resort KEM prekey if due at `now` and deletes the
    /// replaced ones whose retention ran out, adding both and `state` to
    /// `txn` (nothing when nothing changed).
    pub(crate) fn upkeep_kem_last_resort<R: RngCore + CryptoRng>(
        &self,
        txn: &mut Txn,
        state: &mut KemPreKeyState,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> Result<KemUpkeep, StoreError> {
        let rotated = state
            .rotation_due(now)
            .then(|| state.rotate(identity, now, rng));
        let expired = state.take_expired(now);
        let upkeep = KemUpkeep {
            deleted: expired.len(),
            rotated,
        };
        if !upkeep.changed() {
            return Ok(upkeep);
        }
        if let Some(key) = &upkeep.rotated {
            let slot = records::kem_prekeys::last_resort(&self.vault, key.id());
            self.vault.save(txn, slot, key)?;
        }
        for id in expired {
            let slot = records::kem_prekeys::last_resort(&self.vault, id);
            self.vault.remove(txn, slot);
        }
        self.save_kem_state(txn, state)?;
        Ok(upkeep)
    }

    /// The published last-resort KEM prekey, if the store has KEM state.
    #[cfg(test)]
    pub(crate) async fn kem_current_last_resort(&self) -> Result<Option<KemPreKey>, StoreError> {
        let Some(state) = self.kem_state().await? else {
            return Ok(None);
        };
        self.kem_prekey(KemPreKeyKind::LastResort, state.current_last_resort_id)
            .await
    }

    /// The private KEM prekey of `kind` and `id` a hybrid pre-key message
    /// names, if we still hold it.
    pub(crate) async fn kem_prekey(
        &self,
        kind: KemPreKeyKind,
        id: u32,
    ) -> Result<Option<KemPreKey>, StoreError> {
        match kind {
            KemPreKeyKind::OneTime => {
                self.vault
                    .load(&records::kem_prekeys::one_time(&self.vault, id))
                    .await
            }
            KemPreKeyKind::LastResort => {
                self.vault
                    .load(&records::kem_prekeys::last_resort(&self.vault, id))
                    .await
            }
        }
    }

    /// Adds the deletion of one-time KEM prekey `id` to `txn`: it opened a
    /// session, and opens no other (forward secrecy).
    pub(crate) fn consume_kem_one_time(&self, txn: &mut Txn, id: u32) {
        self.vault
            .remove(txn, records::kem_prekeys::one_time(&self.vault, id));
    }
}

#[cfg(test)]
mod tests;
