//! The store header: the only unsealed bytes of a local store.
//!
//! Layout (52 bytes + the sealed check record):
//! `magic "UMBRACS" (7) || version u8 = 1 || memory_kib u32be || iterations u32be ||
//! parallelism u32be || salt (16) || owner account id (16) || check (sealed record)`.
//! The check is a record of kind `Check` sealed under the derived key; failing
//! to open it means the password is wrong (or the header was altered: a changed
//! salt, parameter or owner yields a different key or associated data).
//!
//! Must never: hold anything secret (it is readable by anyone with the file).

use umbra_protocol::wire::AccountId;

use super::store_key::{KdfParams, SALT_LEN};
use super::StoreError;

const MAGIC: &[u8; 7] = b"UMBRACS";
/// The store format version, also the first byte of every record's associated data.
pub(crate) const STORE_FORMAT_VERSION: u8 = 1;
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
        if version != [STORE_FORMAT_VERSION] {
            return Err(StoreError::BadHeader("unsupported store format version"));
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
        Ok(Self {
            params: KdfParams::from_parts(u32_at(m), u32_at(t), u32_at(p)),
            salt,
            owner,
            check: check.to_vec(),
        })
    }
}
