//! What the directory is keyed by (docs/PROTOCOL.md §16.1): an account, whose
//! leaf says which identity and device list it publishes, and a username,
//! whose leaf says which account holds it. Both are committed because a
//! client relies on both: `Resolved` maps a name to an account, a bundle
//! maps an account to its keys; a relay that could move a name silently to
//! an account of its own would not need to touch the victim's keys.
//!
//! Must never: encode one label two ways (a username is canonical, 9.5).

use crate::{AccountId, Username};

/// Label kind byte of an account.
pub const LABEL_ACCOUNT: u8 = 0x01;
/// Label kind byte of a username.
pub const LABEL_USERNAME: u8 = 0x02;

/// A directory label: the key of one leaf.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum KtLabel {
    /// The account's identity and device list.
    Account(AccountId),
    /// Which account holds this (canonical) username.
    Username(Username),
}

impl KtLabel {
    /// `0x01 || account (16)` or `0x02 || u8 len || username`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            KtLabel::Account(account) => [&[LABEL_ACCOUNT][..], account.as_bytes()].concat(),
            KtLabel::Username(name) => {
                let bytes = name.as_str().as_bytes();
                let len = u8::try_from(bytes.len()).expect("usernames are at most 32 bytes");
                [&[LABEL_USERNAME, len][..], bytes].concat()
            }
        }
    }

    /// The kind byte (also the kind byte of this label's values, §16.3).
    pub fn kind(&self) -> u8 {
        match self {
            KtLabel::Account(_) => LABEL_ACCOUNT,
            KtLabel::Username(_) => LABEL_USERNAME,
        }
    }
}
