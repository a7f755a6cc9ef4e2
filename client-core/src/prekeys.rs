//! The prekey manager: the only code that reads and writes our prekey
//! records (the bookkeeping state, signed prekeys by id, one-time prekeys
//! by id, the last-resort prekey). A manager type in the shape of the name
//! book (docs/ARCHITECTURE.md, "Managers as types"): it holds an
//! `Arc<Vault>`, reads, and adds writes to a [`Txn`] the caller commits.
//! The rules (ids, rotation, retention from replacement) are
//! [`PreKeyState`]'s, in `prekey_maintenance.rs`; publishing, uploading
//! and when to rotate (only after the queue drained) are the engine's, in
//! `maintenance.rs`.
//!
//! Must never: hand out a key for upload before its secret is in the
//! caller's transaction, delete the current signed prekey or the
//! last-resort prekey, keep a one-time prekey a session was started with,
//! ask the relay, take the state lock or emit an event.

use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::PreKeyStore;
use umbra_protocol::prekeys::{KemPreKeyRef, OneTimePreKey, PreKeyRef, SignedPreKey};

use crate::prekey_maintenance::{InitialKeys, PreKeyState};
use crate::records;
use crate::store::{StoreError, Txn, Vault};
use crate::Error;

pub(crate) mod kem;

/// Our prekeys (see the module docs).
pub(crate) struct PreKeyManager {
    vault: Arc<Vault>,
}

/// The prekey secrets a pre-key message named, loaded from the store ahead
/// of [`PairwiseSession::accept`](umbra_protocol::pairwise::PairwiseSession::accept).
#[derive(Default)]
pub(crate) struct LoadedPreKeys {
    pub(crate) signed: Option<(u32, SecretKey)>,
    pub(crate) extra: Option<(PreKeyRef, SecretKey)>,
    /// The ML-KEM prekey a hybrid (`0x05`) message names, if held.
    pub(crate) kem: Option<(KemPreKeyRef, KemPreKey)>,
}

impl PreKeyStore for LoadedPreKeys {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        self.signed
            .as_ref()
            .filter(|(held, _)| *held == id)
            .map(|(_, k)| k.clone())
    }

    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        self.extra
            .as_ref()
            .filter(|(held, _)| *held == prekey)
            .map(|(_, k)| k.clone())
    }

    fn kem_prekey(&self, prekey: KemPreKeyRef) -> Option<KemPreKey> {
        self.kem
            .as_ref()
            .filter(|(held, _)| *held == prekey)
            .map(|(_, k)| k.clone())
    }
}

/// What one signed-prekey upkeep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignedUpkeep {
    /// A new signed prekey was made current (it needs publishing).
    pub(crate) rotated: bool,
    /// How many replaced signed prekeys were deleted.
    pub(crate) deleted: usize,
}

impl SignedUpkeep {
    /// Whether anything is to be committed.
    pub(crate) fn changed(&self) -> bool {
        self.rotated || self.deleted > 0
    }
}

fn not_initialized() -> Error {
    Error::Store(StoreError::NotInitialized)
}

impl PreKeyManager {
    pub(crate) fn new(vault: Arc<Vault>) -> Self {
        Self { vault }
    }

    /// Adds a new store's first keys to `txn` (the store is written before
    /// any engine, hence a manager, exists).
    pub(crate) fn save_initial(
        vault: &Vault,
        txn: &mut Txn,
        keys: &InitialKeys,
    ) -> Result<(), StoreError> {
        vault.save(txn, records::prekeys::state(), &keys.state)?;
        let slot = records::prekeys::signed(vault, keys.signed.id());
        vault.save(txn, slot, &keys.signed)?;
        vault.save(txn, records::prekeys::last_resort(), &keys.last_resort)
    }

    /// The bookkeeping record (every initialised store has one).
    pub(crate) async fn state(&self) -> Result<PreKeyState, Error> {
        self.vault
            .load(&records::prekeys::state())
            .await?
            .ok_or_else(not_initialized)
    }

    /// The signed prekey `id`, if we still hold it.
    pub(crate) async fn signed(&self, id: u32) -> Result<Option<SignedPreKey>, StoreError> {
        self.vault
            .load(&records::prekeys::signed(&self.vault, id))
            .await
    }

    /// The last-resort prekey.
    pub(crate) async fn last_resort(&self) -> Result<Option<OneTimePreKey>, StoreError> {
        self.vault.load(&records::prekeys::last_resort()).await
    }

    /// What we publish: the current signed prekey and the last-resort one.
    pub(crate) async fn published(&self) -> Result<(SignedPreKey, Option<OneTimePreKey>), Error> {
        let state = self.state().await?;
        let signed = self
            .signed(state.current_signed_id)
            .await?
            .ok_or_else(not_initialized)?;
        Ok((signed, self.last_resort().await?))
    }

    /// `count` new one-time prekeys, their secrets and the advanced
    /// bookkeeping added to `txn`: upload them only once it is committed.
    pub(crate) async fn add_one_time<R: RngCore + CryptoRng>(
        &self,
        txn: &mut Txn,
        count: usize,
        rng: &mut R,
    ) -> Result<Vec<OneTimePreKey>, Error> {
        let mut state = self.state().await?;
        let keys = state.generate_one_time(count, rng);
        for key in &keys {
            let slot = records::prekeys::one_time(&self.vault, key.id());
            self.vault.save(txn, slot, key)?;
        }
        self.vault.save(txn, records::prekeys::state(), &state)?;
        Ok(keys)
    }

    /// Rotates the signed prekey if due at `now` and deletes the replaced
    /// ones whose retention ran out, adding both to `txn` (nothing when
    /// nothing changed).
    pub(crate) async fn upkeep_signed<R: RngCore + CryptoRng>(
        &self,
        txn: &mut Txn,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> Result<SignedUpkeep, Error> {
        let mut state = self.state().await?;
        let signed = state
            .rotation_due(now)
            .then(|| state.rotate(identity, now, rng));
        let expired = state.take_expired(now);
        let upkeep = SignedUpkeep {
            rotated: signed.is_some(),
            deleted: expired.len(),
        };
        if !upkeep.changed() {
            return Ok(upkeep);
        }
        if let Some(signed) = &signed {
            let slot = records::prekeys::signed(&self.vault, signed.id());
            self.vault.save(txn, slot, signed)?;
        }
        for id in expired {
            let slot = records::prekeys::signed(&self.vault, id);
            self.vault.remove(txn, slot);
        }
        self.vault.save(txn, records::prekeys::state(), &state)?;
        Ok(upkeep)
    }

    /// The secrets a pre-key message made for signed prekey `signed_id`
    /// (and `extra` and the ML-KEM prekey `kem`, if any) needs, as far as
    /// we hold them.
    pub(crate) async fn for_message(
        &self,
        signed_id: u32,
        extra: Option<PreKeyRef>,
        kem: Option<KemPreKeyRef>,
    ) -> Result<LoadedPreKeys, StoreError> {
        let mut loaded = LoadedPreKeys::default();
        if let Some(r) = kem {
            loaded.kem = self.kem_prekey(r.kind, r.id).await?.map(|k| (r, k));
        }
        if let Some(signed) = self.signed(signed_id).await? {
            loaded.signed = Some((signed_id, signed.secret().clone()));
        }
        loaded.extra = match extra {
            Some(r @ PreKeyRef::OneTime(id)) => self
                .vault
                .load(&records::prekeys::one_time(&self.vault, id))
                .await?
                .map(|k| (r, k.secret().clone())),
            Some(r @ PreKeyRef::LastResort(id)) => self
                .last_resort()
                .await?
                .filter(|k| k.id() == id)
                .map(|k| (r, k.secret().clone())),
            None => None,
        };
        Ok(loaded)
    }

    /// Adds the deletion of one-time prekey `id` to `txn`: it opened a
    /// session, and opens no other (forward secrecy).
    pub(crate) fn consume_one_time(&self, txn: &mut Txn, id: u32) {
        self.vault
            .remove(txn, records::prekeys::one_time(&self.vault, id));
    }

    /// Adds signed prekey `key` to `txn` (a key that turns up again, as a
    /// restored store's; only tests need it today).
    #[cfg(test)]
    pub(crate) fn put_signed(&self, txn: &mut Txn, key: &SignedPreKey) -> Result<(), StoreError> {
        let slot = records::prekeys::signed(&self.vault, key.id());
        self.vault.save(txn, slot, key)
    }
}

#[cfg(test)]
mod tests;
