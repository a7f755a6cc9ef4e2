//! Whom a call is about: [`PeerRef`], parsed once at the API boundary, so a
//! display label (`bob#5e6f0a1b`) is never taken for a username, nor a
//! username for a label; and [`UnknownPeer`], why nobody matched.
//!
//! Must never: decide what a name means (the engine does, from the user's
//! bindings: docs/PROTOCOL.md §12.13), or let a label match a contact whose
//! account id does not start with exactly the digits it shows.

use std::fmt;
use std::str::FromStr;

use umbra_protocol::wire::{AccountId, Username, UsernameError};

/// How many bytes of the account id a `name#xxxxxxxx` label shows (8 hex
/// digits): enough to tell two same-named contacts apart at a glance.
pub(crate) const LABEL_PREFIX_BYTES: usize = 4;

/// A contact, as the user or a program names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerRef {
    /// The contact this username means to the user now.
    Name(Username),
    /// `name#xxxxxxxx`: the contact called `name` whose account id starts
    /// with these bytes. How a contact is shown when its name means another
    /// account (a newcomer on a known name).
    Label {
        /// The contact's username.
        name: Username,
        /// The first bytes of its account id.
        account_prefix: [u8; LABEL_PREFIX_BYTES],
    },
    /// One contact account, whatever it is called now.
    Account(AccountId),
}

impl PeerRef {
    /// The `name#xxxxxxxx` label of the contact `account` called `name`.
    pub fn label(name: Username, account: &AccountId) -> Self {
        let mut account_prefix = [0; LABEL_PREFIX_BYTES];
        account_prefix.copy_from_slice(&account.as_bytes()[..LABEL_PREFIX_BYTES]);
        PeerRef::Label {
            name,
            account_prefix,
        }
    }

    /// Whether the contact `account` called `name` is the one meant by a
    /// [`PeerRef::Label`] or [`PeerRef::Account`] (a name needs the
    /// user's bindings to decide, so it matches nothing here).
    pub(crate) fn names_exactly(&self, name: &str, account: &[u8; 16]) -> bool {
        match self {
            PeerRef::Name(_) => false,
            PeerRef::Label {
                name: wanted,
                account_prefix,
            } => wanted.as_str() == name && account[..LABEL_PREFIX_BYTES] == account_prefix[..],
            PeerRef::Account(wanted) => wanted.as_bytes() == account,
        }
    }
}

impl From<Username> for PeerRef {
    fn from(name: Username) -> Self {
        PeerRef::Name(name)
    }
}

impl From<AccountId> for PeerRef {
    fn from(account: AccountId) -> Self {
        PeerRef::Account(account)
    }
}

impl FromStr for PeerRef {
    type Err = UsernameError;

    /// `name` or `name#xxxxxxxx` (8 hex digits, either case). Anything
    /// else with a `#` is not a username either, and fails as one.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if let Some((name, digits)) = input.split_once('#') {
            let mut account_prefix = [0; LABEL_PREFIX_BYTES];
            if hex::decode_to_slice(digits, &mut account_prefix).is_ok() {
                return Ok(PeerRef::Label {
                    name: Username::parse(name)?,
                    account_prefix,
                });
            }
        }
        Username::parse(input).map(PeerRef::Name)
    }
}

impl fmt::Display for PeerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerRef::Name(name) => write!(f, "{name}"),
            PeerRef::Label {
                name,
                account_prefix,
            } => write!(f, "{name}#{}", hex::encode(account_prefix)),
            PeerRef::Account(account) => write!(f, "account {account}"),
        }
    }
}

/// Why no contact or account matched a [`PeerRef`], and whose doing it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnknownPeer {
    /// The relay has no account by this name (the user's: a typo, or the
    /// account was deleted or renamed away).
    #[error("no account has this name on the relay")]
    NotOnRelay,
    /// The account has no keys published to start a conversation with (the
    /// peer's: it must open umbra once).
    #[error("the account has published no keys to start a conversation with")]
    NoPublishedKeys,
    /// Not one of this device's contacts (the user's).
    #[error("not one of your contacts")]
    NotAContact,
    /// The contact the user knew by this name renamed, and no account holds
    /// the name now.
    #[error("the contact you knew by that name is now called {now}")]
    Renamed {
        /// The contact's name now.
        now: Username,
    },
    /// It is this account: sending to yourself is not supported.
    #[error("that is this account; sending to yourself is not supported")]
    Yourself,
}

#[cfg(test)]
mod tests {
    use rand::rngs::OsRng;

    use super::*;

    #[test]
    fn names_and_labels_parse_apart_and_print_back() {
        let bob = Username::parse("bob").expect("valid name");
        assert_eq!("Bob".parse::<PeerRef>(), Ok(PeerRef::Name(bob.clone())));
        let label: PeerRef = "bob#5E6F0A1B".parse().expect("a label");
        assert_eq!(
            label,
            PeerRef::Label {
                name: bob,
                account_prefix: [0x5e, 0x6f, 0x0a, 0x1b]
            }
        );
        assert_eq!(label.to_string(), "bob#5e6f0a1b");
        // Neither a username nor a label.
        assert!("bob#5e6f".parse::<PeerRef>().is_err());
        assert!("bob#zzzzzzzz".parse::<PeerRef>().is_err());
    }

    #[test]
    fn a_label_names_only_the_account_whose_id_starts_with_its_digits() {
        let account = AccountId::random(&mut OsRng);
        let name = Username::parse("bob").expect("valid name");
        let label = PeerRef::label(name.clone(), &account);
        assert!(label.names_exactly("bob", account.as_bytes()));
        assert!(!label.names_exactly("carol", account.as_bytes()));
        let mut other = *account.as_bytes();
        other[3] ^= 1;
        assert!(!label.names_exactly("bob", &other));
        assert!(!PeerRef::Name(name).names_exactly("bob", account.as_bytes()));
        assert!(PeerRef::Account(account).names_exactly("anything", account.as_bytes()));
    }
}
