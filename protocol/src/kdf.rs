//! HKDF-SHA256 under the absent salt, with the salt's HMAC key schedule
//! computed once per process instead of once per call.
//!
//! RFC 5869 reads an absent salt as 32 zero bytes, so HKDF-Extract's HMAC is
//! keyed with a public constant; keying it (two SHA-256 blocks) on every
//! ratchet and group message repeated the same work. The output is the
//! hkdf crate's, byte for byte: this module only clones its extract state.
//!
//! Must never: cache anything derived from a secret (the cached state is
//! keyed with zero bytes and public), or compute any part of HMAC or HKDF
//! itself (the hmac and hkdf crates do).

use std::sync::LazyLock;

use hkdf::{Hkdf, HkdfExtract};
use sha2::Sha256;
use zeroize::Zeroize;

/// HKDF-Extract keyed with the absent salt, before any input key material.
static ZERO_SALT_EXTRACT: LazyLock<HkdfExtract<Sha256>> =
    LazyLock::new(|| HkdfExtract::<Sha256>::new(None));

/// `Hkdf::<Sha256>::new(None, ikm)`, without re-keying HMAC with the zero
/// salt. The PRK copy the extract step returns is wiped here; the `Hkdf`
/// keeps only its HMAC state under the PRK, as `Hkdf::new` does.
pub(crate) fn hkdf_zero_salt(ikm: &[u8]) -> Hkdf<Sha256> {
    let mut extract = ZERO_SALT_EXTRACT.clone();
    extract.input_ikm(ikm);
    let (mut prk, hkdf) = extract.finalize();
    prk.as_mut_slice().zeroize();
    hkdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_hkdf_with_an_absent_salt() {
        for len in [0usize, 1, 32, 33, 64, 65, 200] {
            let ikm: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut expected = [0u8; 44];
            Hkdf::<Sha256>::new(None, &ikm)
                .expand(b"info", &mut expected)
                .unwrap();
            let mut got = [0u8; 44];
            hkdf_zero_salt(&ikm).expand(b"info", &mut got).unwrap();
            assert_eq!(got, expected, "ikm of {len} bytes");
            // An explicit 32-byte zero salt is the same key (RFC 5869 2.2).
            Hkdf::<Sha256>::new(Some(&[0u8; 32]), &ikm)
                .expand(b"info", &mut expected)
                .unwrap();
            assert_eq!(got, expected, "ikm of {len} bytes, explicit salt");
        }
    }
}
