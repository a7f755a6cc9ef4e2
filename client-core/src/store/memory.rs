//! An in-memory [`ClientStore`]: for tests and for clients that must leave
//! nothing behind. Records are still sealed by the vault above it.
//!
//! Must never: apply part of a batch (the whole batch runs under one lock).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{ClientStore, RecordKind, StoreError, StoreFuture, StoredRecord, WriteOp};

type Rows = BTreeMap<(RecordKind, Vec<u8>), Vec<u8>>;

/// A store that lives as long as the value (share it with `Arc` to let a
/// second client instance reopen it, as a restart would).
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<(Option<Vec<u8>>, Rows)>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut (Option<Vec<u8>>, Rows)) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-access;
        // every mutation below is a single map operation, so the data is whole.
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

impl ClientStore for MemoryStore {
    fn read_header(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        let header = self.with(|s| s.0.clone());
        Box::pin(async move { Ok(header) })
    }

    fn write_header<'a>(&'a self, header: &'a [u8]) -> StoreFuture<'a, ()> {
        self.with(|s| s.0 = Some(header.to_vec()));
        Box::pin(async { Ok(()) })
    }

    fn get<'a>(&'a self, kind: RecordKind, slot: &'a [u8]) -> StoreFuture<'a, Option<Vec<u8>>> {
        let value = self.with(|s| s.1.get(&(kind, slot.to_vec())).cloned());
        Box::pin(async move { Ok(value) })
    }

    fn list<'a>(
        &'a self,
        kind: RecordKind,
        prefix: &'a [u8],
    ) -> StoreFuture<'a, Vec<StoredRecord>> {
        let rows = self.with(|s| {
            s.1.range((kind, prefix.to_vec())..)
                .take_while(|((k, slot), _)| *k == kind && slot.starts_with(prefix))
                .map(|((_, slot), sealed)| StoredRecord {
                    slot: slot.clone(),
                    sealed: sealed.clone(),
                })
                .collect()
        });
        Box::pin(async move { Ok(rows) })
    }

    fn apply(&self, batch: Vec<WriteOp>) -> StoreFuture<'_, ()> {
        self.with(|s| {
            for op in batch {
                match op {
                    WriteOp::Put { kind, slot, sealed } => {
                        s.1.insert((kind, slot), sealed);
                    }
                    WriteOp::Delete { kind, slot } => {
                        s.1.remove(&(kind, slot));
                    }
                }
            }
        });
        Box::pin(async { Ok::<(), StoreError>(()) })
    }

    fn erase_all(&self) -> StoreFuture<'_, ()> {
        self.with(|s| {
            s.0 = None;
            s.1.clear();
        });
        Box::pin(async { Ok(()) })
    }
}
