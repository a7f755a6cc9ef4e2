//! The plaintext of a backup, [`BackupContents`], and its encoding:
//! `CONTENTS_VERSION || postcard(seq of Section)`, a section being `{ tag:
//! varint u32, body: byte string }` whose body is the postcard encoding of
//! one field (docs/PROTOCOL.md §13.4).
//!
//! Why sections and not one postcard struct: postcard is not
//! self-describing, so a struct that gains a field cannot be read by older
//! code and an older encoding cannot be read by newer code
//! (`#[serde(default)]` does not apply: a missing trailing field is an
//! unexpected end of input). A section that is absent takes its default
//! (empty), so new optional data is a new tag, with no version change; a
//! section with a tag this code does not know is kept verbatim in
//! [`BackupContents::extensions`] and written back when the client seals
//! again, so an older device never drops a newer device's data. Only a
//! change that older code must not misread bumps [`CONTENTS_VERSION`].
//!
//! The encoding is canonical: tags strictly ascending, empty contacts,
//! groups and settings sections omitted (and refused when present), lists
//! sorted by key. Decoding accepts exactly what encoding produces.
//!
//! Must never: panic on any input, accept a section twice, or print the
//! identity's private half, names or texts in `Debug`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::entries::{
    check_contacts, check_groups, check_history, check_settings, BackupContact, BackupGroup,
    HistoryEntry, SettingValue, Settings,
};
use super::BackupError;
use crate::identity::IdentityKeyPair;
use crate::wire::AccountId;

/// The contents version this code writes and reads.
pub const CONTENTS_VERSION: u8 = 0x01;
/// Most sections of unknown tags one backup carries.
pub const MAX_EXTENSIONS: usize = 16;

/// The section tags of contents version 1.
pub mod tag {
    /// The account id (required).
    pub const ACCOUNT: u32 = 1;
    /// The identity key pair (required).
    pub const IDENTITY: u32 = 2;
    /// When the backup was written, Unix seconds (required).
    pub const WRITTEN_AT: u32 = 3;
    /// Contacts (omitted when there are none).
    pub const CONTACTS: u32 = 4;
    /// Groups (omitted when there are none).
    pub const GROUPS: u32 = 5;
    /// Settings (omitted when there are none).
    pub const SETTINGS: u32 = 6;
    /// Message history (present exactly when the user opted in).
    pub const HISTORY: u32 = 7;
    /// The first tag version 1 does not define: from here, extensions.
    pub const FIRST_EXTENSION: u32 = 8;
}

/// A section this code does not know, kept verbatim. Zeroized on drop (a
/// newer client may put secrets there).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct BackupExtension {
    /// Its tag, at least [`tag::FIRST_EXTENSION`].
    pub tag: u32,
    /// Its body, as found.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// Everything a restored device needs to be the account again: its
/// identity, contacts and their trust, groups, settings, and history if the
/// user opted in. Never session state (see [`super`]).
pub struct BackupContents {
    /// The account (must be the one the backup key was derived for).
    pub account: AccountId,
    /// The account's identity key pair (zeroized on drop).
    pub identity: IdentityKeyPair,
    /// When this backup was written (Unix seconds), shown at restore.
    pub written_at: u64,
    /// Contacts, in strictly ascending account order.
    pub contacts: Vec<BackupContact>,
    /// Groups, in strictly ascending id order.
    pub groups: Vec<BackupGroup>,
    /// Settings by name.
    pub settings: Settings,
    /// Message history; `None` unless the user opted in.
    pub history: Option<Vec<HistoryEntry>>,
    /// Sections of tags this code does not know, strictly ascending by tag.
    pub extensions: Vec<BackupExtension>,
}

type Section = BackupExtension;

impl BackupContents {
    /// Contents with an identity and nothing else yet.
    pub fn new(account: AccountId, identity: IdentityKeyPair, written_at: u64) -> Self {
        Self {
            account,
            identity,
            written_at,
            contacts: Vec::new(),
            groups: Vec::new(),
            settings: Settings::new(),
            history: None,
            extensions: Vec::new(),
        }
    }

    /// The canonical encoding (§13.4), refusing contents that break a rule
    /// of it (`Invalid`). The bytes hold the identity's private key: they
    /// are wiped on drop.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, BackupError> {
        self.check()?;
        let mut sections = vec![
            section(tag::ACCOUNT, &self.account),
            section(tag::IDENTITY, &self.identity),
            section(tag::WRITTEN_AT, &self.written_at),
        ];
        if !self.contacts.is_empty() {
            sections.push(section(tag::CONTACTS, &self.contacts));
        }
        if !self.groups.is_empty() {
            sections.push(section(tag::GROUPS, &self.groups));
        }
        if !self.settings.is_empty() {
            sections.push(section(tag::SETTINGS, &self.settings));
        }
        if let Some(history) = &self.history {
            sections.push(section(tag::HISTORY, history));
        }
        sections.extend(self.extensions.iter().cloned());
        let len = 1
            + varint_len(sections.len() as u64)
            + sections
                .iter()
                .map(|s| varint_len(s.tag.into()) + varint_len(s.body.len() as u64) + s.body.len())
                .sum::<usize>();
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        out.push(CONTENTS_VERSION);
        push_varint(&mut out, sections.len() as u64);
        for s in &sections {
            push_varint(&mut out, s.tag.into());
            push_varint(&mut out, s.body.len() as u64);
            out.extend_from_slice(&s.body);
        }
        Ok(out)
    }

    /// Reads the bytes of [`encode`](Self::encode), refusing anything it
    /// would not produce.
    pub fn decode(bytes: &[u8]) -> Result<Self, BackupError> {
        let (&version, body) = bytes
            .split_first()
            .ok_or_else(|| BackupError::Malformed("empty contents".into()))?;
        if version != CONTENTS_VERSION {
            return Err(BackupError::UnknownContentsVersion {
                found: version,
                supported: CONTENTS_VERSION,
            });
        }
        let sections: Vec<Section> = exact(body, "section list")?;
        if sections.len() > tag::FIRST_EXTENSION as usize - 1 + MAX_EXTENSIONS {
            return Err(BackupError::Invalid("too many sections"));
        }
        let mut previous = 0;
        let mut parts = Parts::default();
        for s in sections {
            if s.tag <= previous {
                return Err(BackupError::Malformed(format!(
                    "section tag {} after {previous} (tags start at 1 and ascend)",
                    s.tag
                )));
            }
            previous = s.tag;
            parts.take(s)?;
        }
        let contents = parts.finish()?;
        contents.check()?;
        // Postcard reads a varint padded with empty groups (`a4 00` for 36)
        // as the value: the contents are accepted only as their one
        // encoding (§13.4, 9.2), checked by encoding them again.
        if contents.encode()?.as_slice() != bytes {
            return Err(BackupError::Malformed(
                "contents not canonically encoded (a varint longer than it needs to be)".into(),
            ));
        }
        Ok(contents)
    }

    fn check(&self) -> Result<(), BackupError> {
        check_contacts(&self.contacts)?;
        check_groups(&self.groups)?;
        check_settings(self.settings.iter())?;
        if let Some(history) = &self.history {
            check_history(history)?;
        }
        if self.extensions.len() > MAX_EXTENSIONS {
            return Err(BackupError::Invalid("too many extension sections"));
        }
        let mut previous = tag::FIRST_EXTENSION - 1;
        for e in &self.extensions {
            if e.tag <= previous {
                return Err(BackupError::Invalid(
                    "extension tags are not strictly ascending from 8",
                ));
            }
            previous = e.tag;
        }
        Ok(())
    }
}

/// The fields as sections arrive, before the required ones are checked.
#[derive(Default)]
struct Parts {
    account: Option<AccountId>,
    identity: Option<IdentityKeyPair>,
    written_at: Option<u64>,
    contacts: Vec<BackupContact>,
    groups: Vec<BackupGroup>,
    settings: Settings,
    history: Option<Vec<HistoryEntry>>,
    extensions: Vec<BackupExtension>,
}

impl Parts {
    fn take(&mut self, s: Section) -> Result<(), BackupError> {
        let body = s.body.as_slice();
        match s.tag {
            tag::ACCOUNT => self.account = Some(exact(body, "account")?),
            tag::IDENTITY => self.identity = Some(exact(body, "identity")?),
            tag::WRITTEN_AT => self.written_at = Some(exact(body, "written_at")?),
            tag::CONTACTS => self.contacts = non_empty(exact(body, "contacts")?, "contacts")?,
            tag::GROUPS => self.groups = non_empty(exact(body, "groups")?, "groups")?,
            tag::SETTINGS => {
                let list: Vec<(String, SettingValue)> =
                    non_empty(exact(body, "settings")?, "settings")?;
                check_settings(list.iter().map(|(n, v)| (n, v)))?;
                self.settings = list.into_iter().collect();
            }
            tag::HISTORY => self.history = Some(exact(body, "history")?),
            _ => self.extensions.push(s),
        }
        Ok(())
    }

    fn finish(self) -> Result<BackupContents, BackupError> {
        Ok(BackupContents {
            account: self
                .account
                .ok_or(BackupError::Invalid("no account section"))?,
            identity: self
                .identity
                .ok_or(BackupError::Invalid("no identity section"))?,
            written_at: self
                .written_at
                .ok_or(BackupError::Invalid("no written_at section"))?,
            contacts: self.contacts,
            groups: self.groups,
            settings: self.settings,
            history: self.history,
            extensions: self.extensions,
        })
    }
}

fn section<T: Serialize + ?Sized>(tag: u32, value: &T) -> Section {
    // Plain structs, strings, byte strings and sequences serialize into a
    // Vec without failing.
    #[allow(clippy::expect_used)]
    let mut body = Zeroizing::new(postcard::to_stdvec(value).expect("backup sections serialize"));
    Section {
        tag,
        body: std::mem::take(&mut *body),
    }
}

/// Decodes all of `bytes` as one `T`: trailing bytes are an error.
fn exact<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, BackupError> {
    let (value, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| BackupError::Malformed(format!("{what} section: {e}")))?;
    if !rest.is_empty() {
        return Err(BackupError::Malformed(format!(
            "{what} section: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}

fn non_empty<T>(list: Vec<T>, what: &str) -> Result<Vec<T>, BackupError> {
    if list.is_empty() {
        return Err(BackupError::Malformed(format!(
            "an empty {what} section (an encoder omits it)"
        )));
    }
    Ok(list)
}

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

impl std::fmt::Debug for BackupContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupContents")
            .field("account", &self.account)
            .field("identity", &self.identity)
            .field("written_at", &self.written_at)
            .field("contacts", &self.contacts.len())
            .field("groups", &self.groups.len())
            .field("settings", &self.settings.len())
            .field("history", &self.history.as_ref().map(Vec::len))
            .field("extensions", &self.extensions.len())
            .finish()
    }
}

impl std::fmt::Debug for BackupExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupExtension")
            .field("tag", &self.tag)
            .field("len", &self.body.len())
            .finish()
    }
}
