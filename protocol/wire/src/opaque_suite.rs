//! The OPAQUE ciphersuite and key-stretching parameters umbra uses.
//!
//! Client and relay must agree on every parameter here byte for byte: a
//! different group, hash or Argon2 setting makes every login fail with
//! `InvalidLoginError`, indistinguishable from a wrong password, so relay and
//! clients both import the suite from here rather than keeping copies.
//!
//! Must never: change a parameter without a new protocol version and a
//! migration plan — every stored password file was made with these values.

use opaque_ke::argon2::{Algorithm, Argon2, Params, Version};
use opaque_ke::ciphersuite::CipherSuite;

/// OPAQUE over ristretto255 (OPRF and 3DH), SHA-512 in the key exchange,
/// Argon2id as the key-stretching function.
pub struct UmbraOpaqueSuite;

impl CipherSuite for UmbraOpaqueSuite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = Argon2<'static>;
}

/// Length of a `RegistrationRequest` (RFC 9807; PROTOCOL.md §11.3).
pub const REGISTRATION_REQUEST_LEN: usize = 32;
/// Length of a `RegistrationResponse`.
pub const REGISTRATION_RESPONSE_LEN: usize = 64;
/// Length of a `RegistrationRecord` (opaque-ke's `RegistrationUpload`).
pub const REGISTRATION_RECORD_LEN: usize = 192;
/// Length of `KE1` (opaque-ke's `CredentialRequest`).
pub const KE1_LEN: usize = 96;
/// Length of `KE2` (opaque-ke's `CredentialResponse`).
pub const KE2_LEN: usize = 320;
/// Length of `KE3` (opaque-ke's `CredentialFinalization`).
pub const KE3_LEN: usize = 64;

/// Returns `bytes` if it is exactly `len` long. opaque-ke's deserializers
/// read a prefix and ignore anything after it, so without this check a
/// message with trailing bytes would be accepted and the same message would
/// have many encodings; every OPAQUE field on the wire goes through here
/// first, on both sides.
pub fn exact_len(bytes: &[u8], len: usize) -> Option<&[u8]> {
    (bytes.len() == len).then_some(bytes)
}

/// Argon2id memory cost in KiB (64 MiB). Equal to the local store's
/// production cost (`KdfParams::recommended()` in client-core) on purpose:
/// the same password protects both, and the relay operator holds the OPRF
/// key, so it can test guesses against an account's record offline at this
/// cost. A cheaper KSF here would make the relay's record the cheap way to
/// find the password that opens a stolen device's store.
pub const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes (as the local store).
pub const ARGON2_ITERATIONS: u32 = 3;
/// Argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;

/// The key-stretching function the client passes as `ksf` to both OPAQUE
/// registration and login (they must be identical): Argon2id v0x13 with the
/// constants above; opaque-ke chooses the output length (the suite's 64-byte
/// hash length) and a fixed all-zero 16-byte salt. The relay never runs it:
/// stretching happens on the client, which is why the relay only documents
/// it. Spelled out rather than `Argon2::default()` (19 MiB, t = 2), which is
/// cheaper than the local store's key and would undercut it.
pub fn umbra_ksf() -> Argon2<'static> {
    // The constants are inside Argon2's documented bounds, so `Params::new`
    // cannot fail (the unit test below pins the resulting parameters, so a
    // fallback to the cheaper crate defaults could never ship unnoticed).
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_length_passes() {
        let bytes = [7u8; KE1_LEN + 1];
        assert_eq!(
            exact_len(&bytes[..KE1_LEN], KE1_LEN),
            Some(&bytes[..KE1_LEN])
        );
        assert_eq!(exact_len(&bytes, KE1_LEN), None);
        assert_eq!(exact_len(&bytes[..KE1_LEN - 1], KE1_LEN), None);
    }

    #[test]
    fn ksf_parameters_equal_the_documented_values() {
        let ksf = umbra_ksf();
        let params = ksf.params();
        assert_eq!(params.m_cost(), 65_536);
        assert_eq!(params.t_cost(), 3);
        assert_eq!(params.p_cost(), 1);
    }
}
