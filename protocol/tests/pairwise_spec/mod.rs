//! The primitives and constants the pairwise vector suite computes with,
//! written from docs/PROTOCOL.md §4 with the primitive crates alone
//! (hkdf, hmac, sha2, x25519-dalek, ml-kem) and the spec's labels as literals.
//!
//! Must never: call into umbra-protocol's ratchet, KDF or KEM code.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// §4.2's labels and §4.11's type bytes, as the spec writes them.
pub mod spec {
    pub const RATCHET_ROOT_KEY: &[u8] = b"umbra/v1/ratchet/root-key";
    pub const RATCHET_MESSAGE_KEY: &[u8] = b"umbra/v1/ratchet/message-key";
    pub const PREKEY_TYPE: u8 = 0x01;
    pub const PLAIN_TYPE: u8 = 0x02;
    pub const RATCHET_VERSION: u8 = 0x02;
    /// §4.3: header length, and the chunk slot's kind byte for a chunk of
    /// the sender's own ML-KEM encapsulation key (§4.13).
    pub const HEADER_LEN: usize = 178;
    pub const EK_CHUNK: u8 = 0x01;
    pub const CHUNK_DATA: usize = 128;
}

/// FIPS 203 ML-KEM-768 KeyGen_internal(d = seed[..32], z = seed[32..]): the
/// encapsulation key (1184 bytes), from the `ml-kem` crate alone.
pub fn kem_public(seed: &[u8]) -> Vec<u8> {
    use ml_kem::{EncodedSizeUser, KemCore, MlKem768};
    let d = ml_kem::B32::try_from(&seed[..32]).unwrap();
    let z = ml_kem::B32::try_from(&seed[32..64]).unwrap();
    MlKem768::generate_deterministic(&d, &z)
        .1
        .as_bytes()
        .to_vec()
}

/// §4.13's slot for chunk `index` of the sender's epoch-1 key.
pub fn ek_slot(ek: &[u8], index: u8) -> Vec<u8> {
    let mut out = vec![spec::EK_CHUNK];
    out.extend_from_slice(&1u32.to_be_bytes());
    out.push(index);
    let start = usize::from(index) * spec::CHUNK_DATA;
    let mut data = [0u8; spec::CHUNK_DATA];
    let end = (start + spec::CHUNK_DATA).min(ek.len());
    data[..end - start].copy_from_slice(&ek[start..end]);
    out.extend_from_slice(&data);
    out
}

pub fn hmac32(key: &[u8], input: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(input);
    mac.finalize().into_bytes().into()
}

/// KDF_RK (§4.2): (RK', CK).
pub fn kdf_rk(root_key: &[u8], dh_out: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(root_key), dh_out)
        .expand(spec::RATCHET_ROOT_KEY, &mut okm)
        .unwrap();
    (okm[..32].try_into().unwrap(), okm[32..].try_into().unwrap())
}

/// seed(i), then the message key and nonce (§4.2).
pub fn message_key(chain_key: &[u8]) -> ([u8; 32], [u8; 32], [u8; 12]) {
    let seed = hmac32(chain_key, &[0x01]);
    let mut okm = [0u8; 44];
    Hkdf::<Sha256>::new(None, &seed)
        .expand(spec::RATCHET_MESSAGE_KEY, &mut okm)
        .unwrap();
    (
        seed,
        okm[..32].try_into().unwrap(),
        okm[32..].try_into().unwrap(),
    )
}

pub fn x25519(secret: [u8; 32], public: [u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(secret, public)
}

pub fn x25519_pub(secret: [u8; 32]) -> [u8; 32] {
    x25519(secret, x25519_dalek::X25519_BASEPOINT_BYTES)
}
