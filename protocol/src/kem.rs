//! ML-KEM-768 (FIPS 203), the key-encapsulation mechanism of umbra's hybrid
//! handshake (PQXDH, docs/PROTOCOL.md 3.9) and of its post-quantum ratchet
//! step (4.13).
//!
//! A thin, typed layer over RustCrypto's `ml-kem`: the arithmetic is the
//! crate's; this module fixes the encodings, checks every peer input the
//! way FIPS 203 requires (the encapsulation-key modulus check of 7.2), and
//! keeps private keys in their 64-byte seed form `d || z` (FIPS 203's
//! `ML-KEM.KeyGen_internal(d, z)`), which is what umbra stores: 64 bytes
//! instead of the 2400-byte expanded decapsulation key, and regenerated on
//! load.
//!
//! Must never: accept a peer's encapsulation key or ciphertext of the wrong
//! length or (for the key) outside the modulus check; leave a seed, an
//! expanded decapsulation key or a shared secret unzeroized; print any of
//! them in `Debug`; or draw randomness from anything but the caller's CSPRNG.
//!
//! What the crate does not do, and this layer cannot fix from outside: it
//! does not wipe the intermediate values of encapsulation and
//! decapsulation (m, m', K', K-bar, r) from the stack, and its expanded
//! key derives a `Debug` that would print it and a non-constant-time
//! `PartialEq`; that is why the field is private here and never compared or
//! printed. The modulus check below relies on the crate's `ByteDecode12`
//! reducing mod q (FIPS 203 4.2.1), which `encapsulation_key_checks` pins.

use ::kem::{Decapsulate, Encapsulate};
use ml_kem::{EncodedSizeUser, KemCore, MlKem768};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Bytes of an ML-KEM-768 encapsulation (public) key.
pub const KEM_PUBLIC_KEY_LEN: usize = 1184;
/// Bytes of an ML-KEM-768 ciphertext.
pub const KEM_CIPHERTEXT_LEN: usize = 1088;
/// Bytes of the shared secret.
pub const KEM_SHARED_SECRET_LEN: usize = 32;
/// Bytes of a private key's stored form, `d (32) || z (32)`.
pub const KEM_SEED_LEN: usize = 64;

type DecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;
type EncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;

/// Why KEM bytes from a peer were refused. Always the sender's fault (or
/// the relay's, for a key served in a bundle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KemError {
    /// The input is not the fixed length.
    #[error("ML-KEM-768 {what} must be {expected} bytes, got {actual}")]
    BadLength {
        /// Which value.
        what: &'static str,
        /// The only length allowed.
        expected: usize,
        /// What arrived.
        actual: usize,
    },
    /// An encapsulation key whose coefficients are not all below q: FIPS 203
    /// 7.2's input check (`ByteEncode12(ByteDecode12(ek)) = ek`) failed.
    #[error("ML-KEM-768 encapsulation key fails the FIPS 203 modulus check")]
    InvalidEncapsulationKey,
}

/// An ML-KEM-768 encapsulation key that passed the FIPS 203 input check.
#[derive(Clone)]
pub struct KemPublicKey {
    bytes: Box<[u8; KEM_PUBLIC_KEY_LEN]>,
    key: EncapsulationKey,
}

impl KemPublicKey {
    /// Parses and checks a peer's encapsulation key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        let array: [u8; KEM_PUBLIC_KEY_LEN] =
            bytes.try_into().map_err(|_| KemError::BadLength {
                what: "encapsulation key",
                expected: KEM_PUBLIC_KEY_LEN,
                actual: bytes.len(),
            })?;
        let key = EncapsulationKey::from_bytes(&array.into());
        // ByteDecode12 reduces each coefficient mod q, so re-encoding
        // differs exactly when some coefficient was >= q.
        if key.as_bytes().as_slice() != array.as_slice() {
            return Err(KemError::InvalidEncapsulationKey);
        }
        Ok(Self {
            bytes: Box::new(array),
            key,
        })
    }

    /// The 1184 encoded bytes.
    pub fn as_bytes(&self) -> &[u8; KEM_PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// SHA-256 of the encoded key: how logs and `Debug` name it.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(self.bytes.as_slice()).into()
    }
}

impl PartialEq for KemPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for KemPublicKey {}

impl std::fmt::Debug for KemPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KemPublicKey(sha256:{})",
            hex::encode(&self.fingerprint()[..8])
        )
    }
}

/// An ML-KEM-768 ciphertext (public).
#[derive(Clone, PartialEq, Eq)]
pub struct KemCiphertext(Box<[u8; KEM_CIPHERTEXT_LEN]>);

impl KemCiphertext {
    /// Parses a peer's ciphertext. Any 1088 bytes are a ciphertext: a
    /// tampered one decapsulates to an unrelated secret (FIPS 203's
    /// implicit rejection), which then fails the first AEAD.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        let array: [u8; KEM_CIPHERTEXT_LEN] =
            bytes.try_into().map_err(|_| KemError::BadLength {
                what: "ciphertext",
                expected: KEM_CIPHERTEXT_LEN,
                actual: bytes.len(),
            })?;
        Ok(Self(Box::new(array)))
    }

    /// The 1088 encoded bytes.
    pub fn as_bytes(&self) -> &[u8; KEM_CIPHERTEXT_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for KemCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digest: [u8; 32] = Sha256::digest(self.0.as_slice()).into();
        write!(f, "KemCiphertext(sha256:{})", hex::encode(&digest[..8]))
    }
}

/// The 32-byte secret both sides of an encapsulation hold. Zeroized on
/// drop; compared in constant time; `Debug` shows nothing.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KemSharedSecret([u8; KEM_SHARED_SECRET_LEN]);

impl KemSharedSecret {
    /// The secret bytes, for a KDF input.
    pub fn as_bytes(&self) -> &[u8; KEM_SHARED_SECRET_LEN] {
        &self.0
    }

    /// Wraps stored secret bytes (a pickle holding a pending secret).
    pub fn from_bytes(bytes: [u8; KEM_SHARED_SECRET_LEN]) -> Self {
        Self(bytes)
    }
}

impl PartialEq for KemSharedSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for KemSharedSecret {}

impl std::fmt::Debug for KemSharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KemSharedSecret(<redacted>)")
    }
}

/// A private ML-KEM-768 key with its public half. Held as the seed it was
/// generated from plus the expanded key (both zeroized on drop).
pub struct KemKeyPair {
    seed: Zeroizing<[u8; KEM_SEED_LEN]>,
    // Boxed so that moving a key pair moves a pointer, not 2.4 KB of
    // secret coefficients that would stay behind on the stack unwiped
    // (the crate's key zeroizes itself on drop, with the `zeroize` feature).
    decapsulation: Box<DecapsulationKey>,
    public: KemPublicKey,
}

impl KemKeyPair {
    /// Draws `d` then `z` (32 bytes each) from `rng`.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; KEM_SEED_LEN]);
        rng.fill_bytes(seed.as_mut_slice());
        Self::from_seed(&seed)
    }

    /// `ML-KEM.KeyGen_internal(d = seed[0..32], z = seed[32..64])`: the
    /// stored form back into a key pair.
    pub fn from_seed(seed: &[u8; KEM_SEED_LEN]) -> Self {
        let mut d = ml_kem::B32::default();
        let mut z = ml_kem::B32::default();
        d.copy_from_slice(&seed[..32]);
        z.copy_from_slice(&seed[32..]);
        let (decapsulation, encapsulation) = MlKem768::generate_deterministic(&d, &z);
        d.zeroize();
        z.zeroize();
        let bytes: [u8; KEM_PUBLIC_KEY_LEN] = encapsulation.as_bytes().into();
        let public = KemPublicKey {
            bytes: Box::new(bytes),
            key: encapsulation,
        };
        let mut stored = Zeroizing::new([0u8; KEM_SEED_LEN]);
        stored.copy_from_slice(seed);
        Self {
            seed: stored,
            decapsulation: Box::new(decapsulation),
            public,
        }
    }

    /// The 64-byte stored form.
    pub fn seed(&self) -> &Zeroizing<[u8; KEM_SEED_LEN]> {
        &self.seed
    }

    /// The encapsulation key to publish.
    pub fn public(&self) -> &KemPublicKey {
        &self.public
    }

    /// `ML-KEM.Decaps`. Never fails: a ciphertext not made for this key
    /// yields FIPS 203's implicit-rejection secret, unrelated to any other.
    pub fn decapsulate(&self, ciphertext: &KemCiphertext) -> KemSharedSecret {
        let mut shared = self
            .decapsulation
            .decapsulate(&(*ciphertext.0).into())
            .unwrap_or_else(|()| unreachable!("ml-kem 0.2 decapsulation is infallible"));
        let mut out = [0u8; KEM_SHARED_SECRET_LEN];
        out.copy_from_slice(&shared);
        shared.zeroize();
        KemSharedSecret(out)
    }
}

impl std::fmt::Debug for KemKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KemKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Clone for KemKeyPair {
    fn clone(&self) -> Self {
        Self::from_seed(&self.seed)
    }
}

/// `ML-KEM.Encaps(pk)` with the 32-byte message `m` drawn from `rng`.
pub fn encapsulate<R: RngCore + CryptoRng>(
    public: &KemPublicKey,
    rng: &mut R,
) -> (KemCiphertext, KemSharedSecret) {
    let (ciphertext, shared) = public
        .key
        .encapsulate(rng)
        .unwrap_or_else(|()| unreachable!("ml-kem 0.2 encapsulation is infallible"));
    finish(ciphertext, shared)
}

/// `ML-KEM.Encaps_internal(pk, m)`: encapsulation with a chosen `m`, for
/// test vectors and known-answer tests only.
#[cfg(any(test, feature = "low-level-api"))]
pub fn encapsulate_deterministic(
    public: &KemPublicKey,
    m: &[u8; 32],
) -> (KemCiphertext, KemSharedSecret) {
    use ml_kem::EncapsulateDeterministic;
    let (ciphertext, shared) = public
        .key
        .encapsulate_deterministic(&(*m).into())
        .unwrap_or_else(|()| unreachable!("ml-kem 0.2 encapsulation is infallible"));
    finish(ciphertext, shared)
}

fn finish(
    ciphertext: ml_kem::Ciphertext<MlKem768>,
    mut shared: ml_kem::SharedKey<MlKem768>,
) -> (KemCiphertext, KemSharedSecret) {
    let ct: [u8; KEM_CIPHERTEXT_LEN] = ciphertext.into();
    let mut out = [0u8; KEM_SHARED_SECRET_LEN];
    out.copy_from_slice(&shared);
    shared.zeroize();
    (KemCiphertext(Box::new(ct)), KemSharedSecret(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn round_trip_and_sizes() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let pair = KemKeyPair::generate(&mut rng);
        assert_eq!(pair.public().as_bytes().len(), KEM_PUBLIC_KEY_LEN);
        let (ct, ss) = encapsulate(pair.public(), &mut rng);
        assert_eq!(ct.as_bytes().len(), KEM_CIPHERTEXT_LEN);
        assert_eq!(pair.decapsulate(&ct), ss);
        // The seed regenerates the same key pair.
        let again = KemKeyPair::from_seed(pair.seed());
        assert_eq!(again.public(), pair.public());
        assert_eq!(again.decapsulate(&ct), ss);
    }

    #[test]
    fn tampered_ciphertext_gives_an_unrelated_secret() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let pair = KemKeyPair::generate(&mut rng);
        let (ct, ss) = encapsulate(pair.public(), &mut rng);
        let mut bytes = *ct.as_bytes();
        bytes[17] ^= 1;
        let bad = KemCiphertext::from_bytes(&bytes).unwrap();
        assert_ne!(pair.decapsulate(&bad), ss);
    }

    #[test]
    fn encapsulation_key_checks() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let pair = KemKeyPair::generate(&mut rng);
        let good = *pair.public().as_bytes();
        assert_eq!(KemPublicKey::from_bytes(&good).unwrap(), *pair.public());
        assert_eq!(
            KemPublicKey::from_bytes(&good[..100]).unwrap_err(),
            KemError::BadLength {
                what: "encapsulation key",
                expected: KEM_PUBLIC_KEY_LEN,
                actual: 100
            }
        );
        // First coefficient set to 0xfff >= q = 3329.
        let mut bad = good;
        bad[0] = 0xff;
        bad[1] |= 0x0f;
        assert_eq!(
            KemPublicKey::from_bytes(&bad).unwrap_err(),
            KemError::InvalidEncapsulationKey
        );
        assert!(KemCiphertext::from_bytes(&[0u8; 10]).is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let pair = KemKeyPair::generate(&mut rng);
        let (_, ss) = encapsulate(pair.public(), &mut rng);
        let shown = format!("{pair:?} {ss:?}");
        assert!(!shown.contains(&hex::encode(&pair.seed()[..8])));
        assert!(!shown.contains(&hex::encode(&ss.as_bytes()[..8])));
        assert!(shown.contains("redacted"));
    }
}
