//! The sealing layer between the client and a [`ClientStore`] backend.
//!
//! Every value is postcard-encoded, then sealed with XChaCha20-Poly1305 under
//! the record key, a fresh random 24-byte nonce, and associated data
//! `STORE_FORMAT_VERSION (1) || kind (1) || owner account id (16) ||
//! generation u64be (8) || slot`; the sealed bytes are
//! `generation u64be || nonce || ciphertext`.
//! Binding the kind and slot means a record copied over another record, or
//! moved to another slot, fails to open ([`StoreError::Tampered`]); binding
//! the owner means a record from another account's store fails too.
//! Binding the generation (the write transaction's number, generation.rs)
//! lets a guarded record put back from an older write be refused
//! ([`StoreError::RolledBack`]): reads and commits are serialised by one
//! lock, so the in-memory index always matches what the backend holds.
//! Slots that would reveal a name are `HMAC-SHA256(slot_key, kind || name)`.
//! Session records are the exception to "postcard-encoded": their value is
//! the protocol crate's versioned `SessionRecordPickle` bytes
//! ([`Vault::get_raw`], [`Vault::put_raw`]).
//!
//! Must never: write an unsealed value, reuse a nonce on purpose (nonces are
//! random and 192-bit, so accidental reuse is negligible), or return a value
//! whose tag did not verify.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::RwLock;
use umbra_protocol::wire::AccountId;
use zeroize::Zeroizing;

use super::generation::{GenerationIndex, StoredIndex};
use super::header::{HeaderKeys, StoreHeader, STORE_FORMAT_VERSION};
use super::key_slots::{KeySlot, MAX_KEY_SLOTS};
use super::store_key::{master_key, KdfParams, StoreKeys, SALT_LEN};
use super::{ClientStore, Durability, RecordKind, StoreError, WriteOp};

const NONCE_LEN: usize = 24;
const GENERATION_LEN: usize = 8;
const CHECK_PLAINTEXT: &[u8] = b"umbra client store check v1";

/// An unlocked store: a backend plus the keys that open its records.
pub(crate) struct Vault {
    backend: Arc<dyn ClientStore>,
    keys: StoreKeys,
    owner: AccountId,
    /// What the backend last committed; write-locked across each commit
    /// and read-locked across each read, so a read never sees a row newer
    /// or older than the index it is checked against.
    index: RwLock<GenerationIndex>,
    /// The next transaction's generation (above every committed one).
    next_generation: AtomicU64,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// The headers of one password change, built by [`Vault::prepare_rekey`]:
/// written in the order `both` (before the relay is asked), then `new_only`
/// (the relay took the new password) or `original` (it surely did not).
pub(crate) struct Rekey {
    pub(crate) both: Vec<u8>,
    pub(crate) new_only: Vec<u8>,
    pub(crate) original: Vec<u8>,
}

impl std::fmt::Debug for Rekey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rekey(<headers>)")
    }
}

/// A batch of sealed writes, applied atomically by [`Vault::commit`].
#[derive(Debug, Default)]
pub(crate) struct Txn {
    ops: Vec<WriteOp>,
    /// Taken from the vault's counter by the first record sealed into it.
    generation: Option<u64>,
}

impl Txn {
    pub(crate) fn new() -> Self {
        Self::default()
    }
}

impl Vault {
    /// A new vault over a [`MemoryStore`](super::MemoryStore) for a random
    /// account, with the cheap key stretching of tests: what a manager's
    /// unit tests stand on (no engine, no relay, no disk).
    #[cfg(test)]
    pub(crate) async fn for_tests() -> Arc<Self> {
        let backend: Arc<dyn ClientStore> = Arc::new(super::MemoryStore::new());
        let vault = Self::create(
            backend,
            b"password",
            KdfParams::insecure_for_tests(),
            AccountId::random(&mut rand::rngs::OsRng),
            &mut rand::rngs::OsRng,
        )
        .await
        .expect("a memory vault");
        Arc::new(vault)
    }

    /// Initialises an empty backend for `owner`, sealed under `password`.
    pub(crate) async fn create<R: RngCore + CryptoRng>(
        backend: Arc<dyn ClientStore>,
        password: &[u8],
        params: KdfParams,
        owner: AccountId,
        rng: &mut R,
    ) -> Result<Self, StoreError> {
        if backend.read_header().await?.is_some() {
            return Err(StoreError::AlreadyInitialized);
        }
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let keys = StoreKeys::derive(password, &salt, params)?;
        let vault = Self {
            backend,
            keys,
            owner,
            index: RwLock::new(GenerationIndex::default()),
            next_generation: AtomicU64::new(1),
        };
        let check = vault.seal_bytes(RecordKind::Check, &[], 0, CHECK_PLAINTEXT, rng)?;
        let header = StoreHeader {
            keys: HeaderKeys::Derived { params, salt },
            owner,
            check,
        };
        vault.backend.write_header(&header.encode()).await?;
        Ok(vault)
    }

    /// Opens an initialised backend; a wrong password is [`StoreError::WrongPassword`].
    pub(crate) async fn unlock(
        backend: Arc<dyn ClientStore>,
        password: &[u8],
    ) -> Result<Self, StoreError> {
        let header = backend
            .read_header()
            .await?
            .ok_or(StoreError::NotInitialized)?;
        let header = StoreHeader::decode(&header)?;
        let keys = match &header.keys {
            HeaderKeys::Derived { params, salt } => StoreKeys::derive(password, salt, *params)?,
            // The first slot the password opens; none is a wrong password.
            HeaderKeys::Wrapped(slots) => {
                let mut found = None;
                for slot in slots {
                    if let Some(keys) = slot.open(password, header.owner)? {
                        found = Some(keys);
                        break;
                    }
                }
                found.ok_or(StoreError::WrongPassword)?
            }
        };
        let mut vault = Self {
            backend,
            keys,
            owner: header.owner,
            index: RwLock::new(GenerationIndex::default()),
            next_generation: AtomicU64::new(1),
        };
        match vault.open_bytes(RecordKind::Check, &[], &header.check) {
            Ok((_, check)) if check.as_slice() == CHECK_PLAINTEXT => {}
            _ => return Err(StoreError::WrongPassword),
        }
        // Read once here, so no later read needs another round trip. A
        // missing index is an empty one: then any guarded record present
        // is refused when read.
        if let Some(sealed) = vault.backend.get(RecordKind::Generation, &[]).await? {
            let stored: StoredIndex = vault.open_value(RecordKind::Generation, &[], &sealed)?.1;
            let index = GenerationIndex::from_stored(stored)?;
            vault.next_generation = AtomicU64::new(index.generation.saturating_add(1));
            vault.index = RwLock::new(index);
        }
        Ok(vault)
    }

    /// Prepares a password change (`key_slots.rs`): checks that `old`
    /// opens this store (else [`StoreError::WrongPassword`]) and builds the
    /// three headers of a crash-safe change, writing none of them: the
    /// header's slots plus the new one, the new one alone, and the header
    /// as it was. A header that already holds two slots (an earlier change
    /// not yet decided by a login) is [`StoreError::ChangeUnsettled`].
    /// Slow: two Argon2id derivations.
    pub(crate) async fn prepare_rekey<R: RngCore + CryptoRng>(
        &self,
        old: &[u8],
        new: &[u8],
        rng: &mut R,
    ) -> Result<Rekey, StoreError> {
        let original = self
            .backend
            .read_header()
            .await?
            .ok_or(StoreError::NotInitialized)?;
        let header = StoreHeader::decode(&original)?;
        // `kept`: every slot of the header as it is, so no crash from here
        // on drops the slot of a password the relay may hold.
        let (kept, params) = match &header.keys {
            HeaderKeys::Derived { params, salt } => {
                let master = master_key(old, salt, *params)?;
                if !StoreKeys::from_master(&master)?.same_as(&self.keys) {
                    return Err(StoreError::WrongPassword);
                }
                let slot = KeySlot::wrap(&master, *params, *salt, self.owner, &self.keys, rng)?;
                (vec![slot], *params)
            }
            HeaderKeys::Wrapped(slots) => {
                let mut found = None;
                for slot in slots {
                    if let Some(keys) = slot.open(old, self.owner)? {
                        if keys.same_as(&self.keys) {
                            found = Some(slot.params);
                            break;
                        }
                    }
                }
                let params = found.ok_or(StoreError::WrongPassword)?;
                (slots.clone(), params)
            }
        };
        // At most MAX_KEY_SLOTS (2, the header format's limit): a header
        // that already holds two is an earlier change no login has decided
        // (12.8), either slot possibly the relay's password, so neither may
        // be dropped to make room; a login settles it to one slot first.
        if kept.len() >= MAX_KEY_SLOTS {
            return Err(StoreError::ChangeUnsettled);
        }
        // The new slot keeps the store's own Argon2 cost.
        let new_slot = KeySlot::for_password(new, params, self.owner, &self.keys, rng)?;
        let with = |slots: Vec<KeySlot>| {
            StoreHeader {
                keys: HeaderKeys::Wrapped(slots),
                owner: self.owner,
                check: header.check.clone(),
            }
            .encode()
        };
        let mut both = kept;
        both.push(new_slot.clone());
        Ok(Rekey {
            both: with(both),
            new_only: with(vec![new_slot]),
            original,
        })
    }

    /// Writes one of a [`Rekey`]'s headers (a single atomic row write).
    pub(crate) async fn write_rekey_header(&self, header: &[u8]) -> Result<(), StoreError> {
        self.backend.write_header(header).await
    }

    /// After the relay accepted `password` in a login: if the header still
    /// wraps the keys under two passwords (a change whose answer was lost,
    /// 12.8), rewrites it to `password`'s slot alone, the relay's record
    /// being that password's. One atomic header write, so a crash leaves
    /// either header, both of which `password` opens. Returns whether it
    /// rewrote; a header with one slot, or one `password` opens no slot of
    /// for these keys, is left as it is.
    pub(crate) async fn keep_only_slot_of(&self, password: &[u8]) -> Result<bool, StoreError> {
        let Some(bytes) = self.backend.read_header().await? else {
            return Ok(false);
        };
        let header = StoreHeader::decode(&bytes)?;
        let HeaderKeys::Wrapped(slots) = &header.keys else {
            return Ok(false);
        };
        if slots.len() < 2 {
            return Ok(false);
        }
        let mut kept = None;
        for slot in slots {
            if let Some(keys) = slot.open(password, self.owner)? {
                if keys.same_as(&self.keys) {
                    kept = Some(slot.clone());
                    break;
                }
            }
        }
        let Some(kept) = kept else { return Ok(false) };
        let single = StoreHeader {
            keys: HeaderKeys::Wrapped(vec![kept]),
            owner: self.owner,
            check: header.check.clone(),
        };
        self.backend.write_header(&single.encode()).await?;
        Ok(true)
    }

    /// Whether the backend holds an initialised store.
    pub(crate) async fn is_initialized(backend: &dyn ClientStore) -> Result<bool, StoreError> {
        Ok(backend.read_header().await?.is_some())
    }

    pub(crate) fn owner(&self) -> AccountId {
        self.owner
    }

    pub(crate) fn backend(&self) -> &Arc<dyn ClientStore> {
        &self.backend
    }

    /// The opaque slot for a named record: `HMAC-SHA256(slot_key, kind || name)`.
    pub(crate) fn slot(&self, kind: RecordKind, name: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so new_from_slice cannot fail here.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.keys.slot_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&[kind.as_u8()]);
        mac.update(name);
        mac.finalize().into_bytes().to_vec()
    }

    /// An ordered slot: a named prefix followed by a big-endian sequence
    /// number, so `list` returns entries in sequence order.
    pub(crate) fn ordered_slot(&self, kind: RecordKind, name: &[u8], seq: u64) -> Vec<u8> {
        let mut slot = self.slot(kind, name);
        slot.extend_from_slice(&seq.to_be_bytes());
        slot
    }

    fn associated_data(&self, kind: RecordKind, slot: &[u8], generation: u64) -> Vec<u8> {
        let mut ad = Vec::with_capacity(2 + 16 + GENERATION_LEN + slot.len());
        ad.push(STORE_FORMAT_VERSION);
        ad.push(kind.as_u8());
        ad.extend_from_slice(self.owner.as_bytes());
        ad.extend_from_slice(&generation.to_be_bytes());
        ad.extend_from_slice(slot);
        ad
    }

    /// The generation of the transaction `txn` will be (taken on first use).
    fn txn_generation(&self, txn: &mut Txn) -> u64 {
        *txn.generation
            .get_or_insert_with(|| self.next_generation.fetch_add(1, Ordering::SeqCst))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.keys.record_key).into())
    }

    fn seal_bytes<R: RngCore + CryptoRng>(
        &self,
        kind: RecordKind,
        slot: &[u8],
        generation: u64,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let ad = self.associated_data(kind, slot, generation);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &ad,
                },
            )
            .map_err(|_| StoreError::Kdf("record encryption failed".into()))?;
        let mut out = Vec::with_capacity(GENERATION_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&generation.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a sealed record: its (now authenticated) generation and plaintext.
    fn open_bytes(
        &self,
        kind: RecordKind,
        slot: &[u8],
        sealed: &[u8],
    ) -> Result<(u64, Zeroizing<Vec<u8>>), StoreError> {
        if sealed.len() < GENERATION_LEN + NONCE_LEN {
            return Err(StoreError::Tampered { kind });
        }
        let (generation, rest) = sealed.split_at(GENERATION_LEN);
        let mut g = [0u8; GENERATION_LEN];
        g.copy_from_slice(generation);
        let generation = u64::from_be_bytes(g);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let ad = self.associated_data(kind, slot, generation);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &ad,
                },
            )
            .map(|plain| (generation, Zeroizing::new(plain)))
            .map_err(|_| StoreError::Tampered { kind })
    }

    fn open_value<T: DeserializeOwned>(
        &self,
        kind: RecordKind,
        slot: &[u8],
        sealed: &[u8],
    ) -> Result<(u64, T), StoreError> {
        let (generation, plain) = self.open_bytes(kind, slot, sealed)?;
        let value =
            postcard::from_bytes(&plain).map_err(|source| StoreError::Corrupt { kind, source })?;
        Ok((generation, value))
    }

    /// Reads and opens one record.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        kind: RecordKind,
        slot: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let index = self.index.read().await;
        match self.backend.get(kind, slot).await? {
            Some(sealed) => {
                let (generation, value) = self.open_value(kind, slot, &sealed)?;
                index.check(kind, slot, Some(generation))?;
                Ok(Some(value))
            }
            None => index.check(kind, slot, None).map(|()| None),
        }
    }

    /// Reads and opens every record of `kind` under `prefix`, in slot order.
    pub(crate) async fn list<T: DeserializeOwned>(
        &self,
        kind: RecordKind,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let index = self.index.read().await;
        let rows = self.backend.list(kind, prefix).await?;
        let slots: Vec<&[u8]> = rows.iter().map(|row| row.slot.as_slice()).collect();
        index.check_none_missing(kind, prefix, &slots)?;
        rows.iter()
            .map(|row| {
                let (generation, value) = self.open_value(kind, &row.slot, &row.sealed)?;
                index.check(kind, &row.slot, Some(generation))?;
                Ok((row.slot.clone(), value))
            })
            .collect()
    }

    /// Hands the records of `kind` under `prefix` to `visit` newest slot
    /// first (for ordered slots: the highest sequence first), opening one
    /// only when `visit` asks for it, so a search holds one plaintext at a
    /// time and skips rows it has no use for unopened. `visit` returns
    /// whether to go on. The same checks as [`Vault::list`] apply.
    pub(crate) async fn scan_newest_first<T: DeserializeOwned>(
        &self,
        kind: RecordKind,
        prefix: &[u8],
        mut visit: impl FnMut(
            &[u8],
            &mut dyn FnMut() -> Result<T, StoreError>,
        ) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let index = self.index.read().await;
        let rows = self.backend.list(kind, prefix).await?;
        let slots: Vec<&[u8]> = rows.iter().map(|row| row.slot.as_slice()).collect();
        index.check_none_missing(kind, prefix, &slots)?;
        for row in rows.iter().rev() {
            let mut open = || {
                let (generation, value) = self.open_value(kind, &row.slot, &row.sealed)?;
                index.check(kind, &row.slot, Some(generation))?;
                Ok(value)
            };
            if !visit(&row.slot, &mut open)? {
                break;
            }
        }
        Ok(())
    }

    /// Reads and opens one record whose value is its own versioned byte
    /// form (a session record's pickle), not postcard of a struct.
    pub(crate) async fn get_raw(
        &self,
        kind: RecordKind,
        slot: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let index = self.index.read().await;
        match self.backend.get(kind, slot).await? {
            Some(sealed) => {
                let (generation, plain) = self.open_bytes(kind, slot, &sealed)?;
                index.check(kind, slot, Some(generation))?;
                Ok(Some(plain))
            }
            None => index.check(kind, slot, None).map(|()| None),
        }
    }

    /// Seals already-encoded bytes into `txn` at (kind, slot).
    pub(crate) fn put_raw<R: RngCore + CryptoRng>(
        &self,
        txn: &mut Txn,
        kind: RecordKind,
        slot: Vec<u8>,
        plain: &[u8],
        rng: &mut R,
    ) -> Result<(), StoreError> {
        let generation = self.txn_generation(txn);
        let sealed = self.seal_bytes(kind, &slot, generation, plain, rng)?;
        txn.ops.push(WriteOp::Put { kind, slot, sealed });
        Ok(())
    }

    /// Seals `value` into `txn` at (kind, slot).
    pub(crate) fn put<T: Serialize, R: RngCore + CryptoRng>(
        &self,
        txn: &mut Txn,
        kind: RecordKind,
        slot: Vec<u8>,
        value: &T,
        rng: &mut R,
    ) -> Result<(), StoreError> {
        let plain = Zeroizing::new(
            postcard::to_stdvec(value).map_err(|source| StoreError::Corrupt { kind, source })?,
        );
        let generation = self.txn_generation(txn);
        let sealed = self.seal_bytes(kind, &slot, generation, &plain, rng)?;
        txn.ops.push(WriteOp::Put { kind, slot, sealed });
        Ok(())
    }

    /// Adds a deletion to `txn`.
    pub(crate) fn delete(&self, txn: &mut Txn, kind: RecordKind, slot: Vec<u8>) {
        txn.ops.push(WriteOp::Delete { kind, slot });
    }

    /// Applies `txn` atomically and durably, with the rewritten
    /// `Generation` record in the same batch; the in-memory index changes
    /// only once it committed.
    pub(crate) async fn commit(&self, txn: Txn) -> Result<(), StoreError> {
        self.commit_with(txn, Durability::Now).await
    }

    /// [`Vault::commit`], durable as `durability` allows. The `Generation`
    /// record travels in the same batch, so a power cut that loses a
    /// [`Durability::WithNext`] batch loses its index change with it: the
    /// store reopens at the earlier generation, consistent, not rolled back.
    pub(crate) async fn commit_with(
        &self,
        mut txn: Txn,
        durability: Durability,
    ) -> Result<(), StoreError> {
        if txn.ops.is_empty() {
            return Ok(());
        }
        let generation = self.txn_generation(&mut txn);
        let mut index = self.index.write().await;
        let next = index.after(generation, &txn.ops);
        let plain = Zeroizing::new(postcard::to_stdvec(&next.to_stored()).map_err(|source| {
            StoreError::Corrupt {
                kind: RecordKind::Generation,
                source,
            }
        })?);
        let sealed = self.seal_bytes(
            RecordKind::Generation,
            &[],
            generation,
            &plain,
            &mut rand::rngs::OsRng,
        )?;
        let mut ops = txn.ops;
        ops.push(WriteOp::Put {
            kind: RecordKind::Generation,
            slot: Vec::new(),
            sealed,
        });
        self.backend.apply_with(ops, durability).await?;
        *index = next;
        Ok(())
    }
}
