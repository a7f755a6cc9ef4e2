//! A memory store that counts the `GroupHistory` records it hands out,
//! for tests that count work (records the vault then opens) instead of
//! timing it (`groups/tests_history_index.rs`). Test-only.
//!
//! Must never: change what the store answers; it only counts.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{ClientStore, MemoryStore, RecordKind, StoreFuture, StoredRecord, WriteOp};

/// A [`MemoryStore`] that counts the group history rows it returns.
#[derive(Default)]
pub(crate) struct CountingStore {
    inner: MemoryStore,
    group_history_rows: AtomicUsize,
}

impl CountingStore {
    /// The group history rows returned since the last call.
    pub(crate) fn take_group_history_rows(&self) -> usize {
        self.group_history_rows.swap(0, Ordering::SeqCst)
    }

    fn count(&self, kind: RecordKind, rows: usize) {
        if kind == RecordKind::GroupHistory {
            self.group_history_rows.fetch_add(rows, Ordering::SeqCst);
        }
    }
}

impl ClientStore for CountingStore {
    fn read_header(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        self.inner.read_header()
    }
    fn write_header<'a>(&'a self, header: &'a [u8]) -> StoreFuture<'a, ()> {
        self.inner.write_header(header)
    }
    fn get<'a>(&'a self, kind: RecordKind, slot: &'a [u8]) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let value = self.inner.get(kind, slot).await?;
            self.count(kind, usize::from(value.is_some()));
            Ok(value)
        })
    }
    fn list<'a>(
        &'a self,
        kind: RecordKind,
        prefix: &'a [u8],
    ) -> StoreFuture<'a, Vec<StoredRecord>> {
        Box::pin(async move {
            let rows = self.inner.list(kind, prefix).await?;
            self.count(kind, rows.len());
            Ok(rows)
        })
    }
    fn apply(&self, batch: Vec<WriteOp>) -> StoreFuture<'_, ()> {
        self.inner.apply(batch)
    }
    fn erase_all(&self) -> StoreFuture<'_, ()> {
        self.inner.erase_all()
    }
}
