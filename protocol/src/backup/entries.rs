//! The items a backup lists: contacts with their trust, groups, settings
//! and (only if the user opted in) message history, each with its limits
//! (docs/PROTOCOL.md §13.4). Their postcard encodings are the section
//! bodies of [`super::BackupContents`].
//!
//! Must never: hold session state of any kind (ratchet, sender key,
//! prekey secret): see the module documentation of [`super`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::BackupError;
use crate::content::{MessageId, MAX_TEXT_BYTES};
use crate::group::GroupId;
use crate::identity::IdentityPublic;
use crate::wire::{AccountId, Username};

/// Most contacts a backup lists.
pub const MAX_BACKUP_CONTACTS: usize = 10_000;
/// Most groups a backup lists.
pub const MAX_BACKUP_GROUPS: usize = 1_000;
/// Most settings a backup holds.
pub const MAX_SETTINGS: usize = 64;
/// Longest setting name, in bytes (`a-z`, `0-9`, `.`, `_`, `-`).
pub const MAX_SETTING_NAME_BYTES: usize = 64;
/// Longest text setting, in UTF-8 bytes.
pub const MAX_SETTING_TEXT_BYTES: usize = 1024;

/// What the user decided about a contact's identity (client-core's trust
/// levels, §12.3).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupTrust {
    /// Pinned on first use, never compared out of band (variant 0).
    Unverified,
    /// The user compared safety numbers (variant 1).
    Verified,
    /// A different identity was seen and awaits the user's decision
    /// (variant 2, then that identity).
    Changed {
        /// The identity the contact presented instead of the pinned one
        /// (boxed: it is 128 bytes and the other variants are empty).
        pending: Box<IdentityPublic>,
    },
}

impl BackupTrust {
    /// Whether the user verified the pinned identity.
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified)
    }
}

/// One contact: an account, the username it was last known by, the pinned
/// identity and the trust decision.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupContact {
    /// The contact's account (what a contact is, §12.13).
    pub account: AccountId,
    /// The username label it was last known by.
    pub username: Username,
    /// The pinned identity (§12.3).
    pub identity: IdentityPublic,
    /// The trust decision about it.
    pub trust: BackupTrust,
}

/// One group: its id and its log in the stored form of §8.13
/// (`GroupLog::to_pickle`), which holds the membership, never a sender key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupGroup {
    /// The group.
    pub id: GroupId,
    /// `GroupLog::to_pickle()` bytes; the restoring client loads them with
    /// `GroupLog::from_pickle`, which checks them.
    #[serde(with = "serde_bytes")]
    pub log: Vec<u8>,
}

/// A setting's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettingValue {
    /// Variant 0: a flag.
    Bool(bool),
    /// Variant 1: a count or duration.
    U64(u64),
    /// Variant 2: text of at most [`MAX_SETTING_TEXT_BYTES`].
    Text(String),
}

/// The user's settings by name, in ascending byte order of the names.
pub type Settings = BTreeMap<String, SettingValue>;

/// Which conversation a history entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Conversation {
    /// Variant 0: one-to-one with this account.
    Direct(AccountId),
    /// Variant 1: this group.
    Group(GroupId),
}

/// One message of the opt-in history.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Where it was said.
    pub conversation: Conversation,
    /// Who said it (our own account for what we sent).
    pub from: AccountId,
    /// The message id (for deduplication against redelivered messages).
    pub id: MessageId,
    /// The sender's clock, Unix milliseconds.
    pub sent_at_ms: u64,
    /// The text, at most `content::MAX_TEXT_BYTES`.
    pub body: String,
}

pub(super) fn check_contacts(contacts: &[BackupContact]) -> Result<(), BackupError> {
    if contacts.len() > MAX_BACKUP_CONTACTS {
        return Err(BackupError::Invalid("too many contacts"));
    }
    if !strictly_ascending(contacts.iter().map(|c| c.account)) {
        return Err(BackupError::Invalid(
            "contacts are not in strictly ascending account order",
        ));
    }
    Ok(())
}

pub(super) fn check_groups(groups: &[BackupGroup]) -> Result<(), BackupError> {
    if groups.len() > MAX_BACKUP_GROUPS {
        return Err(BackupError::Invalid("too many groups"));
    }
    if !strictly_ascending(groups.iter().map(|g| g.id)) {
        return Err(BackupError::Invalid(
            "groups are not in strictly ascending id order",
        ));
    }
    if groups.iter().any(|g| g.log.is_empty()) {
        return Err(BackupError::Invalid("a group has an empty log"));
    }
    Ok(())
}

pub(super) fn check_setting(name: &str, value: &SettingValue) -> Result<(), BackupError> {
    let name_ok = !name.is_empty()
        && name.len() <= MAX_SETTING_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !name_ok {
        return Err(BackupError::Invalid(
            "a setting name is empty, too long or not [a-z0-9._-]",
        ));
    }
    if matches!(value, SettingValue::Text(text) if text.len() > MAX_SETTING_TEXT_BYTES) {
        return Err(BackupError::Invalid("a text setting is too long"));
    }
    Ok(())
}

pub(super) fn check_settings<'a>(
    settings: impl ExactSizeIterator<Item = (&'a String, &'a SettingValue)> + Clone,
) -> Result<(), BackupError> {
    if settings.len() > MAX_SETTINGS {
        return Err(BackupError::Invalid("too many settings"));
    }
    if !strictly_ascending(settings.clone().map(|(name, _)| name.as_bytes())) {
        return Err(BackupError::Invalid(
            "settings are not in strictly ascending name order",
        ));
    }
    settings
        .into_iter()
        .try_for_each(|(n, v)| check_setting(n, v))
}

pub(super) fn check_history(history: &[HistoryEntry]) -> Result<(), BackupError> {
    if history.iter().any(|h| h.body.len() > MAX_TEXT_BYTES) {
        return Err(BackupError::Invalid("a history entry's text is too long"));
    }
    Ok(())
}

fn strictly_ascending<T: PartialOrd>(mut items: impl Iterator<Item = T>) -> bool {
    let Some(mut previous) = items.next() else {
        return true;
    };
    for item in items {
        if item <= previous {
            return false;
        }
        previous = item;
    }
    true
}

macro_rules! counted_debug {
    ($ty:ident, $($field:ident),*) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

// Names, texts and logs stay out of Debug: a log line must not carry the
// user's social graph or messages.
counted_debug!(BackupContact, account);
counted_debug!(HistoryEntry, conversation, sent_at_ms);

impl std::fmt::Debug for BackupGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupGroup")
            .field("id", &self.id)
            .field("log_len", &self.log.len())
            .finish()
    }
}

impl std::fmt::Debug for BackupTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unverified => "Unverified",
            Self::Verified => "Verified",
            Self::Changed { .. } => "Changed",
        })
    }
}
