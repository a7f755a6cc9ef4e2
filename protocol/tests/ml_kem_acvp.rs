//! ML-KEM-768's own known-answer tests: NIST ACVP keyGen, encapsulation and
//! decapsulation cases, and Wycheproof's encapsulation-key-check cases
//! (FIPS 203 7.2, the check ACVP calls `encapsulationKeyCheck`)
//! (protocol/tests/data/ml-kem-768-acvp.json, whose `source` fields name
//! where each set was copied from), run through umbra's
//! `kem` module wherever its API reaches and through the `ml-kem` crate
//! directly where it does not (umbra never holds an expanded decapsulation
//! key that was not generated from a seed, and ACVP's decapsulation cases
//! give only the expanded key).
//!
//! ACVP's `decapsulationKeyCheck` (FIPS 203 7.3: the length of an expanded
//! decapsulation key and the `H(ek)` embedded in it) does not apply: umbra
//! stores and loads only the 64-byte seed `d || z` and expands it itself
//! (docs/PROTOCOL.md 3.9), so no expanded key from outside ever reaches it.
//!
//! This is the independent check of the primitive the hybrid handshake
//! (docs/PROTOCOL.md 3.9, 3.10) rests on: every other umbra test only shows
//! that both ends agree with each other.

use ::kem::Decapsulate;
use ml_kem::{EncodedSizeUser, KemCore, MlKem768};
use rand_core::{CryptoRng, RngCore};
use serde_json::Value;
use umbra_protocol::kem::{
    encapsulate, encapsulate_deterministic, KemCiphertext, KemError, KemKeyPair, KemPublicKey,
    KEM_PUBLIC_KEY_LEN, KEM_SEED_LEN,
};

type DecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ml-kem-768-acvp.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes(case: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        case[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing")),
    )
    .unwrap()
}

fn cases<'a>(v: &'a Value, group: &str) -> &'a [Value] {
    let cases = v[group].as_array().unwrap();
    assert!(!cases.is_empty(), "{group} has cases");
    cases
}

/// An "RNG" that hands out exactly the given bytes, then panics: proves that
/// `kem::encapsulate` draws its message `m` as one 32-byte read and nothing
/// else.
struct Scripted(Vec<u8>);

impl RngCore for Scripted {
    fn next_u32(&mut self) -> u32 {
        unreachable!("encapsulation draws bytes, not words")
    }
    fn next_u64(&mut self) -> u64 {
        unreachable!("encapsulation draws bytes, not words")
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(
            dest.len() <= self.0.len(),
            "drew more than the script holds"
        );
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Scripted {}

fn expanded(dk: &[u8]) -> DecapsulationKey {
    DecapsulationKey::from_bytes(dk.try_into().unwrap())
}

#[test]
fn key_generation_from_the_seed_gives_acvp_keys() {
    let v = vectors();
    for case in cases(&v, "key_gen") {
        let mut seed = [0u8; KEM_SEED_LEN];
        seed[..32].copy_from_slice(&bytes(case, "d"));
        seed[32..].copy_from_slice(&bytes(case, "z"));
        let pair = KemKeyPair::from_seed(&seed);
        assert_eq!(
            pair.public().as_bytes().as_slice(),
            bytes(case, "ek"),
            "tcId {} ek",
            case["tcId"]
        );
        // The expanded decapsulation key umbra's seed stands for.
        let (dk, _) = MlKem768::generate_deterministic(
            seed[..32].try_into().unwrap(),
            seed[32..].try_into().unwrap(),
        );
        assert_eq!(
            dk.as_bytes().as_slice(),
            bytes(case, "dk"),
            "tcId {} dk",
            case["tcId"]
        );
        // ACVP's ek passes umbra's FIPS 203 input check.
        assert_eq!(
            KemPublicKey::from_bytes(&bytes(case, "ek")).unwrap(),
            *pair.public()
        );
    }
}

#[test]
fn encapsulation_gives_acvp_ciphertext_and_secret() {
    let v = vectors();
    for case in cases(&v, "encapsulation") {
        let id = &case["tcId"];
        let ek = KemPublicKey::from_bytes(&bytes(case, "ek")).unwrap();
        let m: [u8; 32] = bytes(case, "m").try_into().unwrap();
        let (c, k) = encapsulate(&ek, &mut Scripted(m.to_vec()));
        assert_eq!(c.as_bytes().as_slice(), bytes(case, "c"), "tcId {id} c");
        assert_eq!(k.as_bytes().as_slice(), bytes(case, "k"), "tcId {id} k");
        let (c2, k2) = encapsulate_deterministic(&ek, &m);
        assert_eq!(c2, c);
        assert_eq!(k2, k);
        // The case's own dk opens it again.
        let opened = expanded(&bytes(case, "dk"))
            .decapsulate(&(*c.as_bytes()).into())
            .unwrap();
        assert_eq!(opened.as_slice(), bytes(case, "k"), "tcId {id} decaps");
    }
}

/// ACVP's decapsulation cases, valid and "modify ciphertext" ones: a
/// modified ciphertext must give FIPS 203's implicit-rejection secret
/// `J(z || c)`, the value the case names, never an error.
#[test]
fn decapsulation_gives_acvp_secrets_including_implicit_rejection() {
    let v = vectors();
    let group = &v["decapsulation"];
    let dk = expanded(&bytes(group, "dk"));
    let tests = group["tests"].as_array().unwrap();
    let modified = tests
        .iter()
        .filter(|t| t["reason"] == "modify ciphertext")
        .count();
    assert!(modified >= 3, "implicit rejection is exercised");
    for case in tests {
        let id = &case["tcId"];
        let c = KemCiphertext::from_bytes(&bytes(case, "c")).unwrap();
        let k = dk.decapsulate(&(*c.as_bytes()).into()).unwrap();
        assert_eq!(k.as_slice(), bytes(case, "k"), "tcId {id}");
    }
}

/// umbra's decapsulation from a seed agrees with the expanded ACVP key of
/// that seed, on an honest and on a modified ciphertext: so the ACVP
/// decapsulation results above hold for `KemKeyPair::decapsulate` too.
#[test]
fn seeded_decapsulation_matches_the_acvp_expanded_key() {
    let v = vectors();
    for case in cases(&v, "key_gen") {
        let mut seed = [0u8; KEM_SEED_LEN];
        seed[..32].copy_from_slice(&bytes(case, "d"));
        seed[32..].copy_from_slice(&bytes(case, "z"));
        let pair = KemKeyPair::from_seed(&seed);
        let dk = expanded(&bytes(case, "dk"));
        let (c, k) = encapsulate_deterministic(pair.public(), &[7u8; 32]);
        let mut bad = *c.as_bytes();
        bad[100] ^= 0x40;
        for ct in [c, KemCiphertext::from_bytes(&bad).unwrap()] {
            let ours = pair.decapsulate(&ct);
            let theirs = dk.decapsulate(&(*ct.as_bytes()).into()).unwrap();
            assert_eq!(ours.as_bytes().as_slice(), theirs.as_slice());
        }
        assert_ne!(
            pair.decapsulate(&KemCiphertext::from_bytes(&bad).unwrap()),
            k
        );
    }
}

/// The FIPS 203 7.2 input check on peer encapsulation keys, through
/// `KemPublicKey::from_bytes` (the only way a peer's key enters umbra):
/// every key with a coefficient `>= q` (Wycheproof's CCTV/modulus and "not
/// reduced" cases) is `InvalidEncapsulationKey`, every wrong length is
/// `BadLength`, and the valid edge-case keys parse and encapsulate to the
/// case's ciphertext and secret.
#[test]
fn encapsulation_key_check_refuses_what_fips_203_refuses() {
    let v = vectors();
    let tests = cases(&v["encapsulation_key_check"], "tests");
    let count = |why: &str| tests.iter().filter(|t| t["why"] == why).count();
    assert!(count("modulus") >= 20 && count("length") >= 10 && count("valid") >= 3);
    for case in tests {
        let id = &case["tcId"];
        let ek = bytes(case, "ek");
        let parsed = KemPublicKey::from_bytes(&ek);
        match case["why"].as_str().unwrap() {
            "modulus" => {
                assert_eq!(case["result"], "invalid");
                assert_eq!(ek.len(), KEM_PUBLIC_KEY_LEN, "tcId {id}");
                assert_eq!(
                    parsed.unwrap_err(),
                    KemError::InvalidEncapsulationKey,
                    "tcId {id}"
                );
            }
            "length" => {
                assert_eq!(case["result"], "invalid");
                assert_eq!(
                    parsed.unwrap_err(),
                    KemError::BadLength {
                        what: "encapsulation key",
                        expected: KEM_PUBLIC_KEY_LEN,
                        actual: ek.len()
                    },
                    "tcId {id}"
                );
            }
            "valid" => {
                assert_eq!(case["result"], "valid");
                let ek = parsed.unwrap_or_else(|e| panic!("tcId {id}: {e}"));
                let m: [u8; 32] = bytes(case, "m").try_into().unwrap();
                let (c, k) = encapsulate(&ek, &mut Scripted(m.to_vec()));
                assert_eq!(c.as_bytes().as_slice(), bytes(case, "c"), "tcId {id} c");
                assert_eq!(k.as_bytes().as_slice(), bytes(case, "K"), "tcId {id} K");
            }
            other => panic!("tcId {id}: unknown why {other}"),
        }
    }
}
