//! Safety numbers: what two users compare to verify each other's keys.
//!
//! Computed by `umbra_protocol::fingerprint` from both identities and both
//! account ids; the same 60 digits on both sides.
//!
//! Must never: compare two safety numbers with a short-circuiting `==` on
//! secret-dependent data (they are public, but the comparison stays constant-time
//! out of habit and because the protocol type requires it).

/// A 60-digit safety number, shown as 12 groups of 5 digits.
#[derive(Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    digits: String,
}

/// How many digits a safety number has.
const DIGITS: usize = 60;

impl SafetyNumber {
    pub(crate) fn from_digits(digits: String) -> Self {
        Self { digits }
    }

    /// A number the user typed or pasted: its digits, whatever separates
    /// them. `None` unless there are exactly 60.
    pub fn parse(text: &str) -> Option<Self> {
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        (digits.len() == DIGITS).then_some(Self { digits })
    }

    /// Whether `other` is the same number (constant time).
    pub fn matches(&self, other: &SafetyNumber) -> bool {
        use subtle::ConstantTimeEq;
        self.digits.as_bytes().ct_eq(other.digits.as_bytes()).into()
    }

    /// The 60 digits without spaces.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The 12 groups of 5 digits.
    pub fn groups(&self) -> Vec<&str> {
        let mut out = Vec::with_capacity(12);
        let mut rest = self.digits.as_str();
        while !rest.is_empty() {
            let cut = rest.len().min(5);
            let (head, tail) = rest.split_at(cut);
            out.push(head);
            rest = tail;
        }
        out
    }
}

impl std::fmt::Display for SafetyNumber {
    /// `12345 67890 ...` (space-separated groups).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.groups().join(" "))
    }
}

impl std::fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_number_parses_with_any_spacing_and_only_whole() {
        let sixty = "0123456789".repeat(6);
        let spaced = SafetyNumber::from_digits(sixty.clone()).to_string();
        let parsed = SafetyNumber::parse(&spaced).unwrap();
        assert!(parsed.matches(&SafetyNumber::from_digits(sixty.clone())));
        assert!(SafetyNumber::parse(&sixty[..59]).is_none());
        assert!(SafetyNumber::parse("").is_none());
        let mut other = sixty.into_bytes();
        other[59] = b'0';
        let other = SafetyNumber::from_digits(String::from_utf8(other).unwrap());
        assert!(!parsed.matches(&other));
    }
}
