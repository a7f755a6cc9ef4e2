//! From the user's password to the keys that seal the local store.
//!
//! `master = Argon2id(password, salt, m, t, p)` (32 bytes), then
//! `record_key = HKDF-SHA256(salt = none, ikm = master, info = RECORD_KEY_INFO, 32)` seals
//! records and `slot_key = HKDF-SHA256(salt = none, ikm = master, info = SLOT_KEY_INFO, 32)`
//! keys the HMAC that turns contact names and ids into opaque slots. Two
//! separate keys, so a slot (visible on disk) never reveals anything about
//! the sealing key.
//!
//! Production parameters are m = 64 MiB, t = 3, p = 1. Weaker parameters
//! exist only through [`KdfParams::insecure_for_tests`], whose name says
//! what it is; the header records the parameters, so a store made with them
//! keeps opening with them.
//!
//! Must never: keep the password or the master key longer than the
//! derivation, print a key in `Debug`, or accept parameters below the
//! Argon2 crate's own minimums.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::StoreError;

/// HKDF info for the record-sealing key.
pub(crate) const RECORD_KEY_INFO: &[u8] = b"umbra/v1/client-store/record-key";
/// HKDF info for the slot-naming HMAC key.
pub(crate) const SLOT_KEY_INFO: &[u8] = b"umbra/v1/client-store/slot-key";

/// Length of the random Argon2 salt stored in the header.
pub(crate) const SALT_LEN: usize = 16;

/// Argon2id cost parameters for the local store's password key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub(crate) memory_kib: u32,
    /// Passes over memory.
    pub(crate) iterations: u32,
    /// Lanes.
    pub(crate) parallelism: u32,
}

impl KdfParams {
    /// The production parameters: Argon2id, m = 64 MiB, t = 3, p = 1 (about
    /// 0.3–0.5 s on a laptop core; OWASP's first recommended set is lower).
    pub const fn recommended() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }

    /// Parameters cheap enough for unit tests (m = 64 KiB, t = 1). Never use
    /// them for a real store: a stolen data directory would then fall to a
    /// password guesser quickly.
    pub const fn insecure_for_tests() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Memory cost in KiB.
    pub const fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Iterations.
    pub const fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Parallelism.
    pub const fn parallelism(&self) -> u32 {
        self.parallelism
    }

    pub(crate) const fn from_parts(memory_kib: u32, iterations: u32, parallelism: u32) -> Self {
        Self {
            memory_kib,
            iterations,
            parallelism,
        }
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::recommended()
    }
}

/// The two keys derived from the password. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct StoreKeys {
    pub(crate) record_key: [u8; 32],
    pub(crate) slot_key: [u8; 32],
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKeys(<redacted>)")
    }
}

impl StoreKeys {
    /// Runs Argon2id then HKDF. Slow by design (see [`KdfParams`]).
    pub(crate) fn derive(
        password: &[u8],
        salt: &[u8; SALT_LEN],
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        Self::from_master(&*master_key(password, salt, params)?)
    }

    /// The record and slot keys of a version-3 header's `master`.
    pub(crate) fn from_master(master: &[u8; 32]) -> Result<Self, StoreError> {
        let hk = Hkdf::<Sha256>::new(None, master);
        let mut keys = StoreKeys {
            record_key: [0u8; 32],
            slot_key: [0u8; 32],
        };
        // Both lengths are 32 ≤ 255 × 32, so expand cannot fail.
        hk.expand(RECORD_KEY_INFO, &mut keys.record_key)
            .map_err(|e| StoreError::Kdf(e.to_string()))?;
        hk.expand(SLOT_KEY_INFO, &mut keys.slot_key)
            .map_err(|e| StoreError::Kdf(e.to_string()))?;
        Ok(keys)
    }

    /// Whether two key sets are the same, in constant time.
    pub(crate) fn same_as(&self, other: &StoreKeys) -> bool {
        use subtle::ConstantTimeEq;
        let a = self.record_key.ct_eq(&other.record_key);
        let b = self.slot_key.ct_eq(&other.slot_key);
        bool::from(a & b)
    }
}

/// `master = Argon2id(password, salt, m, t, p)`, 32 bytes. Slow by design.
pub(crate) fn master_key(
    password: &[u8],
    salt: &[u8; SALT_LEN],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let argon_params = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|e| StoreError::Kdf(e.to_string()))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut master = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, salt, master.as_mut())
        .map_err(|e| StoreError::Kdf(e.to_string()))?;
    Ok(master)
}
