//! The Double Ratchet root key and its KDF (KDF_RK).
//!
//! Every DH ratchet step mixes a fresh X25519 output into the root key and
//! yields a new root key plus the first chain key of a new sending or
//! receiving chain:
//!
//! `HKDF-SHA256(salt = root_key, ikm = dh_out, info = "umbra/v1/ratchet/root-key", L = 64)`
//! → bytes 0..32 are the new root key, bytes 32..64 the new chain key.
//!
//! Must never: expose its bytes in `Debug`, outlive its use without being
//! zeroized, or be combined with a DH output that was not checked to be
//! contributory (callers pass a [`SharedSecret`], which only
//! `SecretKey::diffie_hellman` produces).

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::chain_key::ChainKey;
use crate::kem::KemSharedSecret;
use crate::keys::SharedSecret;
use crate::labels;

/// The 32-byte root key of a ratchet session. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootKey([u8; 32]);

impl RootKey {
    /// Wraps key bytes (the X3DH session secret, or a stored session).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key: for the session's pickle and, through the
    /// `low-level-api` feature (the only way to name this type outside the
    /// crate), for test vectors.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// KDF_RK: consumes this root key and a DH output, returns the next root
    /// key and the first chain key (index 0) of the new chain.
    pub fn step(&self, dh_out: &SharedSecret) -> (RootKey, ChainKey) {
        self.derive(dh_out.as_bytes(), labels::RATCHET_ROOT_KEY)
    }

    /// The hybrid KDF_RK of a step that mixes a KEM secret (§4.13):
    /// `ikm = dh_out || kem_secret` under its own label, so a hybrid step
    /// and a classical one never produce the same keys.
    pub fn step_hybrid(
        &self,
        dh_out: &SharedSecret,
        kem_secret: &KemSharedSecret,
    ) -> (RootKey, ChainKey) {
        let mut ikm = [0u8; 64];
        ikm[..32].copy_from_slice(dh_out.as_bytes());
        ikm[32..].copy_from_slice(kem_secret.as_bytes());
        let out = self.derive(&ikm, labels::RATCHET_HYBRID_ROOT_KEY);
        ikm.zeroize();
        out
    }

    /// Either step: `step_hybrid` when `kem_secret` is given.
    pub(crate) fn step_with(
        &self,
        dh_out: &SharedSecret,
        kem_secret: Option<&KemSharedSecret>,
    ) -> (RootKey, ChainKey) {
        match kem_secret {
            Some(secret) => self.step_hybrid(dh_out, secret),
            None => self.step(dh_out),
        }
    }

    fn derive(&self, ikm: &[u8], info: &[u8]) -> (RootKey, ChainKey) {
        let hk = Hkdf::<Sha256>::new(Some(&self.0), ikm);
        let mut okm = [0u8; 64];
        // The only HKDF failure is an output longer than 255 * 32 bytes; 64 is
        // a constant, so this cannot depend on input.
        #[allow(clippy::expect_used)]
        hk.expand(info, &mut okm)
            .expect("64 bytes is a valid HKDF-SHA256 output length");
        let mut root = [0u8; 32];
        let mut chain = [0u8; 32];
        root.copy_from_slice(&okm[..32]);
        chain.copy_from_slice(&okm[32..]);
        okm.zeroize();
        let out = (RootKey(root), ChainKey::new(chain, 0));
        root.zeroize();
        chain.zeroize();
        out
    }
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}
