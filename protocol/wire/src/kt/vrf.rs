//! The VRF that turns a directory label into its leaf index (docs/PROTOCOL.md
//! §16.2): RFC 9381 ECVRF-RISTRETTO255-SHA512 (c2sp.org/vrf-r255) through the
//! `vrf-r255` crate. Only the relay can compute an index (it holds the secret
//! key), anyone can check one against the public key, so a proof's siblings
//! say nothing about which accounts sit next to the one proven.
//!
//! Must never: print or log the secret key (its `Debug` is redacted), keep
//! it unzeroized in a value this module owns, or hand-roll any part of the VRF.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::error::KtError;
use super::label::KtLabel;
use crate::labels::KT_VRF_INPUT;
use crate::limits::KT_INDEX_LEN;

/// Bytes of an encoded VRF proof (Gamma 32 || c 16 || s 32).
pub const VRF_PROOF_LEN: usize = 80;
/// Bytes of a VRF public key (a compressed ristretto255 point).
pub const VRF_PUBLIC_KEY_LEN: usize = 32;

/// Where a label's leaf sits in the map: the first 32 bytes of its VRF output.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LeafIndex(pub [u8; KT_INDEX_LEN]);

impl LeafIndex {
    /// Bit `i` of the index (0 = the most significant bit of byte 0): the
    /// branch taken below depth `i` (0 left, 1 right).
    pub fn bit(&self, i: usize) -> bool {
        (self.0[i / 8] >> (7 - i % 8)) & 1 == 1
    }
}

/// An encoded VRF proof (RFC 9381 `pi_string`), checked when used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VrfProof(pub [u8; VRF_PROOF_LEN]);

/// The relay's VRF public key, as clients pin it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VrfPublicKey(vrf_r255::PublicKey);

impl std::fmt::Debug for VrfPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VrfPublicKey({})", hex::encode(self.to_bytes()))
    }
}

impl VrfPublicKey {
    /// Parses a key; refuses a non-canonical point and the identity.
    pub fn from_bytes(bytes: [u8; VRF_PUBLIC_KEY_LEN]) -> Result<Self, KtError> {
        vrf_r255::PublicKey::from_bytes(bytes)
            .map(Self)
            .ok_or(KtError::BadVrfKey)
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; VRF_PUBLIC_KEY_LEN] {
        self.0.to_bytes()
    }

    /// Checks `proof` for `label` and returns the label's leaf index.
    pub fn verify(&self, label: &KtLabel, proof: &VrfProof) -> Result<LeafIndex, KtError> {
        let pi = vrf_r255::Proof::from_bytes(proof.0).ok_or(KtError::BadVrfProof)?;
        let beta: Option<[u8; 64]> = self.0.verify(&vrf_input(label), &pi).into();
        beta.map(|b| index_of(&b)).ok_or(KtError::BadVrfProof)
    }
}

/// The relay's VRF secret key: a canonical ristretto255 scalar. Zeroized on
/// drop; `Debug` prints nothing of it.
pub struct VrfSecretKey {
    scalar: Zeroizing<[u8; 32]>,
    public: VrfPublicKey,
}

impl std::fmt::Debug for VrfSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VrfSecretKey(<redacted>)")
    }
}

impl VrfSecretKey {
    /// A fresh key from the caller's CSPRNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let sk = vrf_r255::SecretKey::generate(rng);
        Self {
            scalar: Zeroizing::new(sk.to_bytes()),
            public: VrfPublicKey(vrf_r255::PublicKey::from(sk)),
        }
    }

    /// Loads a stored key (the little-endian canonical scalar); refuses a
    /// non-canonical scalar and zero.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KtError> {
        let sk: Option<vrf_r255::SecretKey> = vrf_r255::SecretKey::from_bytes(*bytes).into();
        let sk = sk.ok_or(KtError::BadVrfKey)?;
        Ok(Self {
            scalar: Zeroizing::new(*bytes),
            public: VrfPublicKey(vrf_r255::PublicKey::from(sk)),
        })
    }

    /// The stored form, for the relay's key file only.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.scalar.clone()
    }

    /// The public half clients pin.
    pub fn public_key(&self) -> VrfPublicKey {
        self.public
    }

    /// The label's leaf index and the proof of it.
    ///
    /// The crate's `SecretKey` is `Copy` and has no zeroizing drop, so it is
    /// rebuilt here for each call and lives only on this stack frame; the
    /// one long-lived copy is `self.scalar`, which is zeroized.
    pub fn evaluate(&self, label: &KtLabel) -> (LeafIndex, VrfProof) {
        let sk: Option<vrf_r255::SecretKey> = vrf_r255::SecretKey::from_bytes(*self.scalar).into();
        let sk = sk.expect("checked canonical when the key was made");
        let pi = sk.prove(&vrf_input(label));
        let beta: Option<[u8; 64]> = self.public.0.verify(&vrf_input(label), &pi).into();
        let beta = beta.expect("a proof made with the key verifies under it");
        (index_of(&beta), VrfProof(pi.to_bytes()))
    }
}

/// alpha = KT_VRF_INPUT || label encoding (§16.2).
fn vrf_input(label: &KtLabel) -> Vec<u8> {
    [KT_VRF_INPUT, &label.encode()].concat()
}

fn index_of(beta: &[u8; 64]) -> LeafIndex {
    let mut index = [0u8; KT_INDEX_LEN];
    index.copy_from_slice(&beta[..KT_INDEX_LEN]);
    LeafIndex(index)
}
