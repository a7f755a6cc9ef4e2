//! Safety numbers: 60 digits two users compare to rule out a key swap.
//!
//! Each side's half is 30 digits from an iterated SHA-512 over a versioned
//! label, that side's identity keys and its stable id (as in Signal); the
//! two halves are sorted before being joined, so both users see the same
//! number regardless of who computes it.
//!
//! This is the one safety-number type: the client crate re-exports it.
//!
//! Must never: depend on anything but the two (id, identity keys) pairs, or
//! compare numbers in variable time.

use sha2::{Digest, Sha512};
use subtle::{Choice, ConstantTimeEq};

use crate::identity::IdentityPublic;
use crate::labels;

/// Version of the safety-number format, hashed into every half.
pub const FINGERPRINT_VERSION: u16 = 1;
/// SHA-512 iterations per half (Signal's count).
pub const FINGERPRINT_ITERATIONS: usize = 5200;
/// Digits in a full safety number.
pub const SAFETY_NUMBER_DIGITS: usize = 60;

/// A symmetric safety number: 60 ASCII digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SafetyNumber([u8; SAFETY_NUMBER_DIGITS]);

/// One side's 30 digits.
///
/// h = SHA-512(u16be(version) || label || key_bytes(64) || stable_id), then
/// 5200 times h = SHA-512(h || key_bytes); the first 30 bytes of h as six
/// 5-byte big-endian integers, each mod 100000, zero-padded to 5 digits.
fn half(stable_id: &[u8], identity: &IdentityPublic) -> [u8; 30] {
    let keys = identity.key_bytes();
    let mut hash = Sha512::new()
        .chain_update(FINGERPRINT_VERSION.to_be_bytes())
        .chain_update(labels::FINGERPRINT)
        .chain_update(keys)
        .chain_update(stable_id)
        .finalize();
    for _ in 0..FINGERPRINT_ITERATIONS {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(keys)
            .finalize();
    }
    let mut digits = [0u8; 30];
    for (chunk, out) in hash.chunks_exact(5).zip(digits.chunks_exact_mut(5)) {
        let mut value = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)) % 100_000;
        for d in out.iter_mut().rev() {
            // value % 10 < 10, so the cast is exact.
            *d = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    digits
}

impl SafetyNumber {
    /// The safety number between two users. Symmetric: swapping the local
    /// and remote arguments gives the same number.
    pub fn compute(
        local_id: &[u8],
        local: &IdentityPublic,
        remote_id: &[u8],
        remote: &IdentityPublic,
    ) -> Self {
        let a = half(local_id, local);
        let b = half(remote_id, remote);
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        let mut out = [0u8; SAFETY_NUMBER_DIGITS];
        out[..30].copy_from_slice(&first);
        out[30..].copy_from_slice(&second);
        Self(out)
    }

    /// A number the user typed or pasted: its digits, whatever separates
    /// them (spaces, dashes, line breaks). `None` unless there are exactly
    /// 60 ASCII digits.
    pub fn parse(text: &str) -> Option<Self> {
        let mut out = [0u8; SAFETY_NUMBER_DIGITS];
        let mut count = 0usize;
        for byte in text.bytes().filter(u8::is_ascii_digit) {
            *out.get_mut(count)? = byte;
            count += 1;
        }
        (count == SAFETY_NUMBER_DIGITS).then_some(Self(out))
    }

    /// Whether `other` is the same number, compared in constant time.
    pub fn matches(&self, other: &SafetyNumber) -> bool {
        self.ct_eq(other).into()
    }

    /// The twelve groups of five digits.
    pub fn groups(&self) -> Vec<&str> {
        self.0
            .chunks(5)
            .map(|group| std::str::from_utf8(group).unwrap_or_default())
            .collect()
    }

    /// The 60 digits without spaces.
    pub fn digits(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Twelve groups of five digits separated by single spaces.
    pub fn display(&self) -> String {
        self.0
            .chunks(5)
            .map(|group| std::str::from_utf8(group).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl ConstantTimeEq for SafetyNumber {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl std::fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl std::fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SafetyNumber({})", self.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKeyPair;
    use rand::rngs::OsRng;

    #[test]
    fn symmetric_and_well_formed() {
        let a = IdentityKeyPair::generate(&mut OsRng).public();
        let b = IdentityKeyPair::generate(&mut OsRng).public();
        let ab = SafetyNumber::compute(b"alice", &a, b"bob", &b);
        let ba = SafetyNumber::compute(b"bob", &b, b"alice", &a);
        assert!(bool::from(ab.ct_eq(&ba)));
        assert_eq!(ab.digits().len(), 60);
        assert!(ab.digits().bytes().all(|c| c.is_ascii_digit()));
        let shown = ab.display();
        assert_eq!(shown.split(' ').count(), 12);
        assert!(shown.split(' ').all(|g| g.len() == 5));
    }

    #[test]
    fn a_typed_number_parses_with_any_spacing_and_only_whole() {
        let a = IdentityKeyPair::generate(&mut OsRng).public();
        let b = IdentityKeyPair::generate(&mut OsRng).public();
        let number = SafetyNumber::compute(b"alice", &a, b"bob", &b);
        let typed = number.groups().join("-\n");
        let parsed = SafetyNumber::parse(&typed).expect("60 digits");
        assert!(parsed.matches(&number));
        assert_eq!(parsed.groups().len(), 12);
        assert!(SafetyNumber::parse(&number.digits()[..59]).is_none());
        assert!(SafetyNumber::parse(&format!("{}1", number.digits())).is_none());
        assert!(SafetyNumber::parse("").is_none());
        let mut other = number.digits().as_bytes().to_vec();
        other[59] = if other[59] == b'0' { b'1' } else { b'0' };
        let other = SafetyNumber::parse(std::str::from_utf8(&other).unwrap()).unwrap();
        assert!(!parsed.matches(&other));
    }

    #[test]
    fn changes_with_any_key_or_id() {
        let a = IdentityKeyPair::generate(&mut OsRng).public();
        let b = IdentityKeyPair::generate(&mut OsRng).public();
        let m = IdentityKeyPair::generate(&mut OsRng).public();
        let base = SafetyNumber::compute(b"alice", &a, b"bob", &b);
        assert_ne!(base, SafetyNumber::compute(b"alice", &a, b"bob", &m));
        assert_ne!(base, SafetyNumber::compute(b"alice", &m, b"bob", &b));
        assert_ne!(base, SafetyNumber::compute(b"alice", &a, b"bob2", &b));
        assert_ne!(base, SafetyNumber::compute(b"alicf", &a, b"bob", &b));
    }
}
