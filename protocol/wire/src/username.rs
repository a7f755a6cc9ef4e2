//! Validated, case-folded usernames.
//!
//! A username is how people find each other, so two spellings that look the
//! same must be the same name: input is folded to lower-case ASCII and then
//! must be 3 to 32 characters of `a-z`, `0-9`, `_` and `.`, starting with a
//! letter. On the wire only the folded (canonical) form is accepted, so one
//! name has exactly one encoding.
//!
//! Must never: accept non-ASCII (homoglyphs), or let a non-canonical spelling
//! through decoding.

use serde::{Deserialize, Serialize};

/// Shortest allowed username, in characters.
pub const USERNAME_MIN_LEN: usize = 3;
/// Longest allowed username, in characters.
pub const USERNAME_MAX_LEN: usize = 32;

/// Why a string is not a valid username.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Fewer than [`USERNAME_MIN_LEN`] characters.
    #[error("username has {len} characters; at least {USERNAME_MIN_LEN} are required")]
    TooShort {
        /// Characters supplied.
        len: usize,
    },
    /// More than [`USERNAME_MAX_LEN`] characters.
    #[error("username has {len} characters; at most {USERNAME_MAX_LEN} are allowed")]
    TooLong {
        /// Characters supplied.
        len: usize,
    },
    /// A character outside `a-z 0-9 _ .` (after folding).
    #[error("username character {character:?} at position {position} is not one of a-z, 0-9, '_' or '.'")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// Its position, counting characters from 0.
        position: usize,
    },
    /// The first character is not a letter.
    #[error("username must start with a letter a-z")]
    MustStartWithLetter,
    /// Decoding found upper-case letters: the wire carries only folded names.
    #[error("username on the wire is not in canonical lower-case form")]
    NotCanonical,
}

/// A valid username in canonical (lower-case) form. Encoded as a postcard
/// string (varint length, then UTF-8 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// Folds `input` to lower case and validates it.
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        let folded = input.to_ascii_lowercase();
        validate_folded(&folded)?;
        Ok(Self(folded))
    }

    /// Accepts only an already-canonical name, as decoding does.
    pub fn parse_canonical(input: &str) -> Result<Self, UsernameError> {
        if input.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(UsernameError::NotCanonical);
        }
        validate_folded(input)?;
        Ok(Self(input.to_owned()))
    }

    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate_folded(name: &str) -> Result<(), UsernameError> {
    let len = name.chars().count();
    if len < USERNAME_MIN_LEN {
        return Err(UsernameError::TooShort { len });
    }
    if len > USERNAME_MAX_LEN {
        return Err(UsernameError::TooLong { len });
    }
    for (position, character) in name.chars().enumerate() {
        let allowed = character.is_ascii_lowercase()
            || character.is_ascii_digit()
            || character == '_'
            || character == '.';
        if !allowed {
            return Err(UsernameError::InvalidCharacter {
                character,
                position,
            });
        }
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(UsernameError::MustStartWithLetter);
    }
    Ok(())
}

impl TryFrom<String> for Username {
    type Error = UsernameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(UsernameError::NotCanonical);
        }
        validate_folded(&value)?;
        Ok(Self(value))
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl std::str::FromStr for Username {
    type Err = UsernameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
