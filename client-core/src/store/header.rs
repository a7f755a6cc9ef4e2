//! The store header: the only unsealed bytes of a local store.
//!
//! Layout (52 bytes + the sealed check record):
//! `magic "UMBRACS" (7) || version u8 = 3 || memory_kib u32be || iterations u32be ||
//! parallelism u32be || salt (16) || owner account id (16) || check (sealed record)`.
//! The check is a record of kind `Check` sealed under the derived key; failing
//! to open it means the password is wrong (or the header was altered: a changed
//! salt, parameter or owner yields a different key or associated data).
//!
//! The Argon2 parameters are read from this unauthenticated header before
//! anything can be checked, so they are bounded first
//! ([`MAX_KDF_MEMORY_KIB`], [`MAX_KDF_ITERATIONS`], [`MAX_KDF_PARALLELISM`]):
//! an edited header must not make the client allocate gigabytes or spin for
//! hours before it can say the password is wrong.
//!
//! Version 4 (`key_slots.rs`) is the same store after a password change:
//! `magic || version u8 = 4 || owner account id (16) || n u8 (1 or 2) ||
//! n key slots (132 each) || check`. Its records are unchanged (format 3,
//! associated data still starting `0x03`); only where the keys come from
//! differs: unwrapped from the first slot the password opens instead of
//! derived from the password directly.
//!
//! A header of another format version is refused by name
//! ([`StoreError::OlderFormat`], [`StoreError::NewerFormat`]) before any key
//! is derived: there is no migration, and a record of another format would
//! otherwise fail to decode somewhere deep inside.
//!
//! Must never: hold anything secret (it is readable by anyone with the file),
//! or hand parameters beyond the bounds to Argon2.

use umbra_protocol::wire::AccountId;

use super::key_slots::{KeySlot, KEY_SLOT_LEN, MAGIC, MAX_KEY_SLOTS, WRAPPED_HEADER_VERSION};
use super::store_key::{KdfParams, SALT_LEN};
use super::StoreError;
use crate::consts::{MAX_KDF_ITERATIONS, MAX_KDF_MEMORY_KIB, MAX_KDF_PARALLELISM};

/// The store format version, also the first byte of every record's
/// associated data. 2: session records are `SessionRecordPickle` bytes and
/// history entries a versioned stored form; 3: every record carries its
/// write transaction's generation, and the `Generation` record guards
/// against rolled-back records (docs/PROTOCOL.md §12.9); an older store is
/// refused with [`StoreError::OlderFormat`] (no migration).
pub(crate) const STORE_FORMAT_VERSION: u8 = 3;
const FIXED_LEN: usize = 7 + 1 + 4 + 4 + 4 + SALT_LEN + 16;

/// Where a store's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderKeys {
    /// Version 3: derived from the password (12.8).
    Derived {
        params: KdfParams,
        salt: [u8; SALT_LEN],
    },
    /// Version 4: wrapped under one or two passwords (`key_slots.rs`).
    Wrapped(Vec<KeySlot>),
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreHeader {
    pub(crate) keys: HeaderKeys,
    pub(crate) owner: AccountId,
    pub(crate) check: Vec<u8>,
}

fn bounded(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<(), StoreError> {
    if memory_kib > MAX_KDF_MEMORY_KIB
        || iterations > MAX_KDF_ITERATIONS
        || parallelism > MAX_KDF_PARALLELISM
    {
        return Err(StoreError::BadHeader(
            "key-derivation parameters beyond what this client accepts",
        ));
    }
    Ok(())
}

impl StoreHeader {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.check.len());
        out.extend_from_slice(MAGIC);
        match &self.keys {
            HeaderKeys::Derived { params, salt } => {
                out.push(STORE_FORMAT_VERSION);
                out.extend_from_slice(&params.memory_kib().to_be_bytes());
                out.extend_from_slice(&params.iterations().to_be_bytes());
                out.extend_from_slice(&params.parallelism().to_be_bytes());
                out.extend_from_slice(salt);
                out.extend_from_slice(self.owner.as_bytes());
            }
            HeaderKeys::Wrapped(slots) => {
                out.push(WRAPPED_HEADER_VERSION);
                out.extend_from_slice(self.owner.as_bytes());
                // At most MAX_KEY_SLOTS (2), so the count fits a byte.
                out.push(u8::try_from(slots.len()).unwrap_or(u8::MAX));
                for slot in slots {
                    slot.encode_into(&mut out);
                }
            }
        }
        out.extend_from_slice(&self.check);
        out
    }

    /// A version-4 header: `owner (16) || n (1) || n slots || check`.
    fn decode_wrapped(rest: &[u8]) -> Result<Self, StoreError> {
        if rest.len() < 16 + 1 {
            return Err(StoreError::BadHeader("too short"));
        }
        let (owner_bytes, rest) = rest.split_at(16);
        let owner = AccountId::from_slice(owner_bytes).ok_or(StoreError::BadHeader("owner id"))?;
        let (count, mut rest) = rest.split_at(1);
        let count = usize::from(count[0]);
        if count == 0 || count > MAX_KEY_SLOTS {
            return Err(StoreError::BadHeader("key slot count"));
        }
        let mut slots = Vec::with_capacity(count);
        for _ in 0..count {
            if rest.len() < KEY_SLOT_LEN {
                return Err(StoreError::BadHeader("too short"));
            }
            let (slot, tail) = rest.split_at(KEY_SLOT_LEN);
            let (m, t, p, slot) = KeySlot::decode(slot).ok_or(StoreError::BadHeader("key slot"))?;
            bounded(m, t, p)?;
            slots.push(slot);
            rest = tail;
        }
        if rest.is_empty() {
            return Err(StoreError::BadHeader("too short"));
        }
        Ok(Self {
            keys: HeaderKeys::Wrapped(slots),
            owner,
            check: rest.to_vec(),
        })
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() > MAGIC.len() + 1
            && bytes.starts_with(MAGIC)
            && bytes[MAGIC.len()] == WRAPPED_HEADER_VERSION
        {
            return Self::decode_wrapped(&bytes[MAGIC.len() + 1..]);
        }
        if bytes.len() <= FIXED_LEN {
            return Err(StoreError::BadHeader("too short"));
        }
        let (fixed, check) = bytes.split_at(FIXED_LEN);
        let (magic, rest) = fixed.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(StoreError::BadHeader("not an umbra client store"));
        }
        let (version, rest) = rest.split_at(1);
        match version {
            [v] if *v == STORE_FORMAT_VERSION => {}
            // Said plainly, before any key is derived: no record of an older
            // format would decode, and failing deep inside one helps nobody.
            [v] if *v < STORE_FORMAT_VERSION => {
                return Err(StoreError::OlderFormat {
                    found: *v,
                    supported: STORE_FORMAT_VERSION,
                })
            }
            [v] => {
                return Err(StoreError::NewerFormat {
                    found: *v,
                    supported: STORE_FORMAT_VERSION,
                })
            }
            _ => return Err(StoreError::BadHeader("too short")),
        }
        let u32_at = |b: &[u8]| -> u32 {
            let mut a = [0u8; 4];
            a.copy_from_slice(b);
            u32::from_be_bytes(a)
        };
        let (m, rest) = rest.split_at(4);
        let (t, rest) = rest.split_at(4);
        let (p, rest) = rest.split_at(4);
        let (salt_bytes, owner_bytes) = rest.split_at(SALT_LEN);
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(salt_bytes);
        let owner = AccountId::from_slice(owner_bytes).ok_or(StoreError::BadHeader("owner id"))?;
        let (memory_kib, iterations, parallelism) = (u32_at(m), u32_at(t), u32_at(p));
        bounded(memory_kib, iterations, parallelism)?;
        Ok(Self {
            keys: HeaderKeys::Derived {
                params: KdfParams::from_parts(memory_kib, iterations, parallelism),
                salt,
            },
            owner,
            check: check.to_vec(),
        })
    }
}

/// The fuzz entry point (`fuzzing` feature): decodes `bytes` as a header
/// and returns its encoding, `None` if it is refused. The format is
/// canonical, so an accepted header is its own encoding.
#[cfg(feature = "fuzzing")]
pub(crate) fn reencode(bytes: &[u8]) -> Option<Vec<u8>> {
    StoreHeader::decode(bytes)
        .ok()
        .map(|header| header.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(memory_kib: u32, iterations: u32, parallelism: u32) -> Vec<u8> {
        StoreHeader {
            keys: HeaderKeys::Derived {
                params: KdfParams::from_parts(memory_kib, iterations, parallelism),
                salt: [7; SALT_LEN],
            },
            owner: AccountId::from_bytes([9; 16]),
            check: vec![1, 2, 3],
        }
        .encode()
    }

    #[test]
    fn another_format_version_is_refused_by_name() {
        let production = KdfParams::recommended();
        let mut bytes = header(
            production.memory_kib(),
            production.iterations(),
            production.parallelism(),
        );
        bytes[7] = STORE_FORMAT_VERSION - 1;
        match StoreHeader::decode(&bytes) {
            Err(StoreError::OlderFormat { found, supported }) => {
                assert_eq!(
                    (found, supported),
                    (STORE_FORMAT_VERSION - 1, STORE_FORMAT_VERSION)
                );
            }
            other => panic!("an older store must be refused as such, got {other:?}"),
        }
        let message = StoreHeader::decode(&bytes).unwrap_err().to_string();
        assert!(
            message.contains("older umbra (store format 2)"),
            "{message}"
        );
        // 4 is this format's header after a password change (key slots);
        // the first newer one is 5.
        bytes[7] = WRAPPED_HEADER_VERSION + 1;
        assert!(matches!(
            StoreHeader::decode(&bytes),
            Err(StoreError::NewerFormat { found, .. }) if found == WRAPPED_HEADER_VERSION + 1
        ));
        // A version-3 header relabelled 4 is no valid key-slot header.
        bytes[7] = WRAPPED_HEADER_VERSION;
        assert!(matches!(
            StoreHeader::decode(&bytes),
            Err(StoreError::BadHeader(_))
        ));
    }

    #[test]
    fn parameters_within_the_bounds_are_read_back() {
        let bytes = header(MAX_KDF_MEMORY_KIB, MAX_KDF_ITERATIONS, MAX_KDF_PARALLELISM);
        let decoded = StoreHeader::decode(&bytes).expect("at the bounds is accepted");
        let HeaderKeys::Derived { params, .. } = decoded.keys else {
            panic!("a version-3 header derives its keys")
        };
        assert_eq!(params.memory_kib(), MAX_KDF_MEMORY_KIB);
        let production = KdfParams::recommended();
        let bytes = header(
            production.memory_kib(),
            production.iterations(),
            production.parallelism(),
        );
        assert!(matches!(
            StoreHeader::decode(&bytes).unwrap().keys,
            HeaderKeys::Derived { params, .. } if params == production
        ));
    }

    #[test]
    fn a_header_asking_for_unbounded_work_is_refused_before_any_derivation() {
        for (m, t, p) in [
            (MAX_KDF_MEMORY_KIB + 1, 3, 1),
            (u32::MAX, 3, 1),
            (64 * 1024, MAX_KDF_ITERATIONS + 1, 1),
            (64 * 1024, u32::MAX, 1),
            (64 * 1024, 3, MAX_KDF_PARALLELISM + 1),
        ] {
            match StoreHeader::decode(&header(m, t, p)) {
                Err(StoreError::BadHeader(_)) => {}
                other => panic!("m={m} t={t} p={p} must be refused, got {other:?}"),
            }
        }
    }
}
