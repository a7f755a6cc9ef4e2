//! The backup key: derived from OPAQUE's 64-byte export key, which a client
//! obtains at registration and at every login with the same password and
//! which the relay never learns (docs/PROTOCOL.md §11.3, §13.2).
//!
//! ```text
//! PRK       = HKDF-Extract(salt = none, ikm = export_key)
//! aead_key  = HKDF-Expand(PRK, BACKUP_AEAD_KEY  || u8(BACKUP_VERSION) || account_id, 32)
//! key_check = HKDF-Expand(PRK, BACKUP_KEY_CHECK || u8(BACKUP_VERSION) || account_id, 16)
//! ```
//!
//! The key check travels in the clear in every sealed backup: it is a PRF
//! output, so it says nothing about the key, and comparing it first lets a
//! client tell "wrong password" from "tampered". It gives the relay no
//! password test it does not already have: the relay's OPAQUE record
//! already lets an operator who holds the OPRF seed test guesses offline,
//! at the same Argon2id cost per guess (§13.8).
//!
//! No locator is derived: the relay stores and serves the backup under the
//! authenticated account (a session token, which only a login with the
//! password yields), and already knows which account uploaded it, so an
//! opaque index would hide nothing.
//!
//! Must never: show key bytes in `Debug`, keep them after drop, or compare
//! a key check with a short-circuiting comparison.

use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::labels;
use crate::wire::backup::{BACKUP_KEY_CHECK_LEN, BACKUP_VERSION};
use crate::wire::AccountId;

/// Length of OPAQUE's export key for umbra's suite (SHA-512 output).
pub const EXPORT_KEY_LEN: usize = 64;
/// Length of the backup AEAD key (XChaCha20-Poly1305).
pub const BACKUP_KEY_LEN: usize = 32;

/// The key a backup of one account is sealed under. Zeroized on drop;
/// `Debug` shows only the account.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct BackupKey {
    aead: [u8; BACKUP_KEY_LEN],
    check: [u8; BACKUP_KEY_CHECK_LEN],
    #[zeroize(skip)]
    account: AccountId,
}

impl BackupKey {
    /// Derives the key of `account`'s backup from the export key its
    /// OPAQUE registration or login produced.
    pub fn derive(export_key: &[u8; EXPORT_KEY_LEN], account: &AccountId) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, export_key);
        let mut aead = [0u8; BACKUP_KEY_LEN];
        let mut check = [0u8; BACKUP_KEY_CHECK_LEN];
        // HKDF-Expand fails only for outputs over 255 * 32 bytes.
        #[allow(clippy::expect_used)]
        {
            hkdf.expand_multi_info(&info_parts(labels::BACKUP_AEAD_KEY, account), &mut aead)
                .expect("32 bytes is a valid HKDF length");
            hkdf.expand_multi_info(&info_parts(labels::BACKUP_KEY_CHECK, account), &mut check)
                .expect("16 bytes is a valid HKDF length");
        }
        Self {
            aead,
            check,
            account: *account,
        }
    }

    /// The account this key belongs to (its id is in every derivation and
    /// in the associated data).
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The key check written in the clear into every backup sealed under
    /// this key.
    pub fn key_check(&self) -> &[u8; BACKUP_KEY_CHECK_LEN] {
        &self.check
    }

    /// Whether a backup's key check is this key's (constant time).
    pub(super) fn matches(&self, key_check: &[u8; BACKUP_KEY_CHECK_LEN]) -> bool {
        self.check.ct_eq(key_check).into()
    }

    pub(super) fn aead_key(&self) -> &[u8; BACKUP_KEY_LEN] {
        &self.aead
    }

    /// The raw AEAD key, for test vectors only.
    #[cfg(feature = "low-level-api")]
    pub fn aead_key_bytes(&self) -> [u8; BACKUP_KEY_LEN] {
        self.aead
    }
}

fn info_parts<'a>(label: &'a [u8], account: &'a AccountId) -> [&'a [u8]; 3] {
    [label, &[BACKUP_VERSION], account.as_bytes()]
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupKey")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_export_key_and_account_and_debug_hides_them() {
        let a = AccountId::from_bytes([1; 16]);
        let b = AccountId::from_bytes([2; 16]);
        let k1 = BackupKey::derive(&[7; EXPORT_KEY_LEN], &a);
        let k2 = BackupKey::derive(&[8; EXPORT_KEY_LEN], &a);
        let k3 = BackupKey::derive(&[7; EXPORT_KEY_LEN], &b);
        assert_ne!(k1.aead_key(), k2.aead_key());
        assert_ne!(k1.aead_key(), k3.aead_key());
        assert_ne!(k1.key_check(), k2.key_check());
        assert_ne!(k1.key_check(), k3.key_check());
        assert!(k1.matches(k1.key_check()));
        assert!(!k1.matches(k2.key_check()));
        let shown = format!("{k1:?}");
        assert!(!shown.contains(&hex::encode(k1.aead_key())), "{shown}");
        assert!(!shown.contains(&format!("{:?}", k1.aead_key())), "{shown}");
        assert!(!shown.contains(&hex::encode(k1.key_check())), "{shown}");
    }
}
