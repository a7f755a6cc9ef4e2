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

impl SafetyNumber {
    pub(crate) fn from_digits(digits: String) -> Self {
        Self { digits }
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
