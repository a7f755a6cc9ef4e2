//! The records layer: every kind of stored record as one type that binds
//! its [`RecordKind`], its value type and how its slot is made.
//!
//! The rest of the crate reads and writes the store only through
//! [`Slot`]s made here (`records::contact::slot(vault, &account)`, ...) and
//! the typed [`Vault::load`], [`Vault::save`], [`Vault::remove`] and
//! [`Vault::load_all`], so a call site can neither pair a slot with the
//! wrong kind nor decode a record as the wrong type. Which names are
//! HMAC'd into a slot (docs/PROTOCOL.md §12, the store) is decided here,
//! once per kind.
//!
//! Must never: build a slot for one kind from another kind's name, or let
//! a `RecordKind` escape to call sites outside this layer and `store/`.

pub(crate) mod account;
pub(crate) mod backup;
pub(crate) mod blocked;
pub(crate) mod contact;
pub(crate) mod devices;
pub(crate) mod disappearing;
pub(crate) mod file;
// Record decoders as a public API for client-core/fuzz, only with the
// `fuzzing` feature (re-exported from lib.rs as `umbra_client_core::fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub(crate) mod group;
pub(crate) mod history;
pub(crate) mod kem_prekeys;
pub(crate) mod kt;
pub(crate) mod outbox;
pub(crate) mod prekeys;
pub(crate) mod seen;
pub(crate) mod session;
pub(crate) mod settings;

use std::marker::PhantomData;

use rand::rngs::OsRng;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::{RecordKind, StoreError, Txn, Vault};

/// One kind of stored record: its number in the store and its value.
pub(crate) trait Kind {
    /// The kind's tag (part of every record's associated data).
    const KIND: RecordKind;
    /// What a record of this kind holds (postcard in the sealed value).
    type Value: Serialize + DeserializeOwned;
}

/// Declares a marker type for one record kind.
macro_rules! kind {
    ($(#[$doc:meta])* $name:ident = $kind:ident, $value:ty) => {
        $(#[$doc])*
        pub(crate) enum $name {}
        impl $crate::records::Kind for $name {
            const KIND: $crate::store::RecordKind = $crate::store::RecordKind::$kind;
            type Value = $value;
        }
    };
}
pub(crate) use kind;

/// Where one record of kind `K` lives. Made only by the kind's module.
pub(crate) struct Slot<K> {
    bytes: Vec<u8>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Slot<K> {
    fn clone(&self) -> Self {
        Self::from_bytes(self.bytes.clone())
    }
}

impl<K> std::fmt::Debug for Slot<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Slots are HMACs of contact names: their length is enough.
        write!(f, "Slot({} bytes)", self.bytes.len())
    }
}

impl<K> Slot<K> {
    fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            _kind: PhantomData,
        }
    }

    /// The slot's bytes (ordered kinds read their sequence number back).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<K: Kind> Slot<K> {
    /// The only record of a singleton kind.
    fn singleton() -> Self {
        Self::from_bytes(Vec::new())
    }

    /// `HMAC(slot_key, kind || name)`.
    fn named(vault: &Vault, name: &[u8]) -> Self {
        Self::from_bytes(vault.slot(K::KIND, name))
    }

    /// A named prefix followed by a big-endian sequence number.
    fn ordered(vault: &Vault, name: &[u8], seq: u64) -> Self {
        Self::from_bytes(vault.ordered_slot(K::KIND, name, seq))
    }
}

/// The records of kind `K` whose slots start with one prefix.
pub(crate) struct Prefix<K> {
    bytes: Vec<u8>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: Kind> Prefix<K> {
    /// Every record of the kind.
    pub(crate) fn all() -> Self {
        Self::from_bytes(Vec::new())
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            _kind: PhantomData,
        }
    }

    /// Every ordered record under `name`.
    fn named(vault: &Vault, name: &[u8]) -> Self {
        Self::from_bytes(vault.slot(K::KIND, name))
    }
}

impl Vault {
    /// Reads and opens the record at `slot`.
    pub(crate) async fn load<K: Kind>(
        &self,
        slot: &Slot<K>,
    ) -> Result<Option<K::Value>, StoreError> {
        self.get(K::KIND, &slot.bytes).await
    }

    /// Reads and opens every record under `prefix`, in slot order.
    pub(crate) async fn load_all<K: Kind>(
        &self,
        prefix: &Prefix<K>,
    ) -> Result<Vec<(Slot<K>, K::Value)>, StoreError> {
        Ok(self
            .list::<K::Value>(K::KIND, &prefix.bytes)
            .await?
            .into_iter()
            .map(|(bytes, value)| (Slot::from_bytes(bytes), value))
            .collect())
    }

    /// [`Vault::scan_newest_first`] over the records under `prefix`.
    pub(crate) async fn scan_all_newest_first<K: Kind>(
        &self,
        prefix: &Prefix<K>,
        visit: impl FnMut(
            &[u8],
            &mut dyn FnMut() -> Result<K::Value, StoreError>,
        ) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.scan_newest_first::<K::Value>(K::KIND, &prefix.bytes, visit)
            .await
    }

    /// Seals `value` into `txn` at `slot`.
    pub(crate) fn save<K: Kind>(
        &self,
        txn: &mut Txn,
        slot: Slot<K>,
        value: &K::Value,
    ) -> Result<(), StoreError> {
        self.put(txn, K::KIND, slot.bytes, value, &mut OsRng)
    }

    /// Adds the deletion of the record at `slot` to `txn`.
    pub(crate) fn remove<K: Kind>(&self, txn: &mut Txn, slot: Slot<K>) {
        self.delete(txn, K::KIND, slot.bytes)
    }
}
