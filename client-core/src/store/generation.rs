//! Rollback detection: the store-wide generation counter and the index of
//! which generation each guarded record must carry.
//!
//! Every write transaction takes the next generation `g` of a monotonic
//! counter; every record it writes is sealed with `g` in its associated
//! data (vault.rs), and the transaction also rewrites the one `Generation`
//! record, which holds the counter and, for each record of a guarded kind
//! ([`GUARDED`]: sessions, outbox entries, one-time prekeys (X25519 and
//! ML-KEM), group sender keys, fan-out entries), the `g` it
//! was last written with. The index is read once when the store is
//! unlocked and kept in memory, so a read costs no extra backend round
//! trip. A guarded record whose `g` differs from its index entry, that has
//! no entry, or whose entry has no record, is [`StoreError::RolledBack`]:
//! that is an older sealed copy put back (or a deleted one restored, or a
//! current one deleted) by someone who can write the data directory but
//! cannot seal. A rollback of the whole directory (index included) to a
//! consistent older copy is not detectable from inside it
//! (docs/THREAT_MODEL.md).
//!
//! Must never: accept a guarded record the index does not name with the
//! same generation, or let the in-memory index run ahead of what the
//! backend committed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{RecordKind, StoreError, WriteOp};

/// The kinds whose rollback would reuse key material or resend or drop
/// messages: a ratchet session (message-key reuse), an outbox entry (a
/// resend or a lost message), a one-time prekey (used twice), our group
/// sender key (a group message key used twice), a member's sender key (a
/// group message read twice), a fan-out entry (as an outbox entry), a
/// one-time ML-KEM prekey (as a one-time prekey: its secret would open a
/// second session).
pub(crate) const GUARDED: [RecordKind; 7] = [
    RecordKind::Session,
    RecordKind::Outbox,
    RecordKind::OneTimePreKey,
    RecordKind::KemOneTimePreKey,
    RecordKind::GroupSenderKey,
    RecordKind::GroupReceiverKey,
    RecordKind::Fanout,
];

pub(crate) fn is_guarded(kind: RecordKind) -> bool {
    GUARDED.contains(&kind)
}

/// One index entry as stored (postcard, fields in order).
#[derive(Serialize, Deserialize)]
struct StoredEntry {
    kind: u8,
    slot: Vec<u8>,
    generation: u64,
}

/// The `Generation` record's value (postcard, fields in order).
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredIndex {
    generation: u64,
    entries: Vec<StoredEntry>,
}

/// The in-memory index.
#[derive(Debug, Clone, Default)]
pub(crate) struct GenerationIndex {
    /// The highest generation any committed transaction used.
    pub(crate) generation: u64,
    entries: BTreeMap<(RecordKind, Vec<u8>), u64>,
}

impl GenerationIndex {
    pub(crate) fn from_stored(stored: StoredIndex) -> Result<Self, StoreError> {
        let mut entries = BTreeMap::new();
        for e in stored.entries {
            let kind = RecordKind::from_u8(e.kind)
                .filter(|k| is_guarded(*k))
                .ok_or(StoreError::Tampered {
                    kind: RecordKind::Generation,
                })?;
            entries.insert((kind, e.slot), e.generation);
        }
        Ok(Self {
            generation: stored.generation,
            entries,
        })
    }

    pub(crate) fn to_stored(&self) -> StoredIndex {
        StoredIndex {
            generation: self.generation,
            entries: self
                .entries
                .iter()
                .map(|((kind, slot), g)| StoredEntry {
                    kind: kind.as_u8(),
                    slot: slot.clone(),
                    generation: *g,
                })
                .collect(),
        }
    }

    /// The fuzz entry point (`fuzzing` feature): decodes a `Generation`
    /// record's plaintext as `Vault::unlock` does (postcard, then the
    /// index's own checks) and returns the index's encoding as the next
    /// commit would write it; `None` if refused. Not canonical (postcard
    /// varints, entry order, a repeated entry), so callers check that the
    /// encoding is stable rather than equal to the input.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn reencode(plain: &[u8]) -> Option<Vec<u8>> {
        let stored: StoredIndex = postcard::from_bytes(plain).ok()?;
        let index = Self::from_stored(stored).ok()?;
        postcard::to_stdvec(&index.to_stored()).ok()
    }

    /// The index after a transaction of generation `g` made `ops`.
    pub(crate) fn after(&self, g: u64, ops: &[WriteOp]) -> Self {
        let mut next = self.clone();
        next.generation = next.generation.max(g);
        for op in ops {
            match op {
                WriteOp::Put { kind, slot, .. } if is_guarded(*kind) => {
                    next.entries.insert((*kind, slot.clone()), g);
                }
                WriteOp::Delete { kind, slot } if is_guarded(*kind) => {
                    next.entries.remove(&(*kind, slot.clone()));
                }
                _ => {}
            }
        }
        next
    }

    /// Checks a guarded record read back: `found` is the generation its
    /// sealed bytes carry (already authenticated), `None` if no row exists.
    pub(crate) fn check(
        &self,
        kind: RecordKind,
        slot: &[u8],
        found: Option<u64>,
    ) -> Result<(), StoreError> {
        if !is_guarded(kind) {
            return Ok(());
        }
        let expected = self.entries.get(&(kind, slot.to_vec())).copied();
        if expected == found {
            Ok(())
        } else {
            Err(StoreError::RolledBack { kind })
        }
    }

    /// Checks that every indexed record of `kind` under `prefix` was among
    /// the rows a list returned (`seen`, in any order).
    pub(crate) fn check_none_missing(
        &self,
        kind: RecordKind,
        prefix: &[u8],
        seen: &[&[u8]],
    ) -> Result<(), StoreError> {
        if !is_guarded(kind) {
            return Ok(());
        }
        let missing = self
            .entries
            .range((kind, prefix.to_vec())..)
            .take_while(|((k, slot), _)| *k == kind && slot.starts_with(prefix))
            .any(|((_, slot), _)| !seen.contains(&slot.as_slice()));
        if missing {
            Err(StoreError::RolledBack { kind })
        } else {
            Ok(())
        }
    }
}
