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
//! A header of another format version is refused by name
//! ([`StoreError::OlderFormat`], [`StoreError::NewerFormat`]) before any key
//! is derived: there is no migration, and a record of another format would
//! otherwise fail to decode somewhere deep inside.
//!
//! Must never: hold anything secret (it is readable by anyone with the file),
//! or hand parameters beyond the bounds to Argon2.

use umbra_protocol::wire::AccountId;

use super::store_key::{KdfParams, SALT_LEN};
use super::StoreError;
use crate::consts::{MAX_KDF_ITERATIONS, MAX_KDF_MEMORY_KIB, MAX_KDF_PARALLELISM};

const MAGIC: &[u8; 7] = b"UMBRACS";
/// The store format version, also the first byte of every record's
/// associated data. 2: session records are `SessionRecordPickle` bytes and
/// history entries a versioned stored form; 3: every record carries its
/// write transaction's generation, and the `Generation` record guards
/// against rolled-back records (docs/PROTOCOL.md §12.9); an older store is
/// refused with [`StoreError::OlderFormat`] (no migration).
pub(crate) const STORE_FORMAT_VERSION: u8 = 3;
const FIXED_LEN: usize = 7 + 1 + 4 + 4 + 4 + SALT_LEN + 16;

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreHeader {
    pub(crate) params: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) owner: AccountId,
    pub(crate) check: Vec<u8>,
}

impl StoreHeader {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.check.len());
        out.extend_from_slice(MAGIC);
        out.push(STORE_FORMAT_VERSION);
        out.extend_from_slice(&self.params.memory_kib().to_be_bytes());
        out.extend_from_slice(&self.params.iterations().to_be_bytes());
        out.extend_from_slice(&self.params.parallelism().to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(self.owner.as_bytes());
        out.extend_from_slice(&self.check);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
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
        if memory_kib > MAX_KDF_MEMORY_KIB
            || iterations > MAX_KDF_ITERATIONS
            || parallelism > MAX_KDF_PARALLELISM
        {
            return Err(StoreError::BadHeader(
                "key-derivation parameters beyond what this client accepts",
            ));
        }
        Ok(Self {
            params: KdfParams::from_parts(memory_kib, iterations, parallelism),
            salt,
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
            params: KdfParams::from_parts(memory_kib, iterations, parallelism),
            salt: [7; SALT_LEN],
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
        bytes[7] = STORE_FORMAT_VERSION + 1;
        assert!(matches!(
            StoreHeader::decode(&bytes),
            Err(StoreError::NewerFormat { found, .. }) if found == STORE_FORMAT_VERSION + 1
        ));
    }

    #[test]
    fn parameters_within_the_bounds_are_read_back() {
        let bytes = header(MAX_KDF_MEMORY_KIB, MAX_KDF_ITERATIONS, MAX_KDF_PARALLELISM);
        let decoded = StoreHeader::decode(&bytes).expect("at the bounds is accepted");
        assert_eq!(decoded.params.memory_kib(), MAX_KDF_MEMORY_KIB);
        let production = KdfParams::recommended();
        let bytes = header(
            production.memory_kib(),
            production.iterations(),
            production.parallelism(),
        );
        assert_eq!(StoreHeader::decode(&bytes).unwrap().params, production);
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
