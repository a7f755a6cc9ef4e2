//! The provisioning: what the creator hands the new device inside msg2
//! (docs/PROTOCOL.md §15.7), in a fixed layout:
//!
//! ```text
//! offset  len  field
//! 0       1    format = 0x01 (PROVISIONING_FORMAT)
//! 1       16   account (AccountId)
//! 17      1    u = username length, 3..=32
//! 18      u    username, canonical (9.5)
//! 18+u    32   ed25519_seed   (3.3)
//! 50+u    32   x25519_secret  (3.3)
//! 82+u    1    export_key present: 0x00 no, 0x01 yes
//!         64   export_key (only if present)
//!         1    snapshot present: 0x00 no, 0x01 yes
//!         2    p = u16be length of the pointer (only if present)
//!         p    postcard(FilePointer) (10.3; only if present)
//! ```
//!
//! The encoding is canonical: decoding accepts exactly what encoding
//! produces (a flag other than 0 or 1, a non-canonical username, a pointer
//! that does not re-encode to its bytes, or a byte after the last field is
//! refused).
//!
//! Must never: hold the identity or the export key outside zeroizing
//! storage, print them in `Debug`, or accept a provisioning that breaks its
//! layout.

use zeroize::Zeroizing;

use super::handshake::LINK_MSG2_MIN_LEN;
use super::LinkError;
use crate::content::FilePointer;
use crate::identity::IdentityKeyPair;
use crate::wire::{
    AccountId, Username, ACCOUNT_ID_LEN, MAX_LINK_MESSAGE_BYTES, USERNAME_MAX_LEN, USERNAME_MIN_LEN,
};

/// The provisioning format this code writes and reads.
pub const PROVISIONING_FORMAT: u8 = 0x01;
/// Largest provisioning: what fits one link post after msg2's 73 bytes.
pub const MAX_PROVISIONING_BYTES: usize = MAX_LINK_MESSAGE_BYTES - LINK_MSG2_MIN_LEN;
/// Length of OPAQUE's export key (11.3).
const EXPORT_KEY_LEN: usize = 64;
const SECRET_LEN: usize = 32;

/// What a new device receives from the device that linked it. Every
/// secret in it is wiped on drop (the identity's keys and the export key
/// zeroize themselves, and so does the snapshot's file key); `Debug` shows
/// only the account, the username and which optional parts are present.
pub struct Provisioning {
    /// The account the new device joins.
    pub account: AccountId,
    /// Its username (canonical).
    pub username: Username,
    /// The account's private identity (3.3): every device holds the same.
    pub identity: IdentityKeyPair,
    /// OPAQUE's export key (11.3) the creator holds, so the new device can
    /// open and keep sealing the account backup (§12.15, §13) without the
    /// password; `None` if the creator holds none.
    pub export_key: Option<Zeroizing<[u8; 64]>>,
    /// An attachment (§14) whose plaintext is a `BackupContents` encoding
    /// (§13.4): contacts, trust decisions, groups. Never a ratchet state.
    pub snapshot: Option<FilePointer>,
}

impl Provisioning {
    /// The layout above. A provisioning whose snapshot pointer breaks a
    /// limit of 10.4 (see [`Provisioning::validate`]) still encodes, to
    /// bytes that [`Provisioning::decode`] refuses; the creator's handshake
    /// validates before it encodes.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        // Sized for the largest provisioning a post carries, so the vector
        // never reallocates: a reallocation would free a copy of the
        // identity secrets without wiping it.
        let mut out = Zeroizing::new(Vec::with_capacity(MAX_PROVISIONING_BYTES));
        out.push(PROVISIONING_FORMAT);
        out.extend_from_slice(self.account.as_bytes());
        let username = self.username.as_str().as_bytes();
        // A `Username` is 3 to 32 ASCII characters, so its length fits.
        out.push(username.len() as u8);
        out.extend_from_slice(username);
        let (seed, secret) = self.identity.secret_parts();
        out.extend_from_slice(seed.as_slice());
        out.extend_from_slice(secret.as_slice());
        match &self.export_key {
            None => out.push(0),
            Some(key) => {
                out.push(1);
                out.extend_from_slice(key.as_slice());
            }
        }
        match &self.snapshot {
            None => out.push(0),
            Some(pointer) => {
                out.push(1);
                // Postcard into a Vec fails only for types it does not
                // support, and a pointer has none; an empty pointer would
                // be refused by decode, never mistaken for a pointer.
                let encoded = Zeroizing::new(pointer_bytes(pointer).unwrap_or_default());
                let len = u16::try_from(encoded.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&encoded);
            }
        }
        out
    }

    /// Checks what [`Provisioning::encode`] cannot: the snapshot pointer's
    /// limits (10.4) and the encoded length.
    pub fn validate(&self) -> Result<(), LinkError> {
        self.checked_encoding().map(drop)
    }

    /// The encoding, if it is one [`Provisioning::decode`] accepts and one
    /// link post carries.
    pub(super) fn checked_encoding(&self) -> Result<Zeroizing<Vec<u8>>, LinkError> {
        if let Some(pointer) = &self.snapshot {
            pointer
                .validate()
                .map_err(LinkError::ProvisioningSnapshot)?;
        }
        let encoded = self.encode();
        if encoded.len() > MAX_PROVISIONING_BYTES {
            return Err(LinkError::ProvisioningTooLarge {
                len: encoded.len(),
                max: MAX_PROVISIONING_BYTES,
            });
        }
        Ok(encoded)
    }

    /// Reads the layout above, refusing anything encode would not produce.
    pub fn decode(bytes: &[u8]) -> Result<Provisioning, LinkError> {
        if bytes.len() > MAX_PROVISIONING_BYTES {
            return Err(LinkError::ProvisioningTooLarge {
                len: bytes.len(),
                max: MAX_PROVISIONING_BYTES,
            });
        }
        let mut reader = Reader(bytes);
        let format = reader.take::<1>("format")?[0];
        if format != PROVISIONING_FORMAT {
            return Err(LinkError::ProvisioningFormat { found: format });
        }
        let account = AccountId::from_bytes(reader.take::<ACCOUNT_ID_LEN>("account")?);
        let len = usize::from(reader.take::<1>("username length")?[0]);
        if !(USERNAME_MIN_LEN..=USERNAME_MAX_LEN).contains(&len) {
            return Err(LinkError::ProvisioningMalformed(
                "the username length is not 3 to 32",
            ));
        }
        let username = std::str::from_utf8(reader.slice(len, "username")?)
            .map_err(|_| LinkError::ProvisioningMalformed("the username is not UTF-8"))?;
        let username =
            Username::parse_canonical(username).map_err(LinkError::ProvisioningUsername)?;
        let seed = reader.take_secret::<SECRET_LEN>("ed25519_seed")?;
        let secret = reader.take_secret::<SECRET_LEN>("x25519_secret")?;
        let identity = IdentityKeyPair::from_secret_parts(&seed, &secret);
        let export_key = match reader.flag("export_key present")? {
            false => None,
            true => Some(reader.take_secret::<EXPORT_KEY_LEN>("export_key")?),
        };
        let snapshot = match reader.flag("snapshot present")? {
            false => None,
            true => {
                let len = usize::from(u16::from_be_bytes(reader.take::<2>("snapshot length")?));
                Some(decode_pointer(reader.slice(len, "snapshot")?)?)
            }
        };
        if !reader.0.is_empty() {
            return Err(LinkError::ProvisioningTrailing {
                extra: reader.0.len(),
            });
        }
        Ok(Provisioning {
            account,
            username,
            identity,
            export_key,
            snapshot,
        })
    }
}

/// `pointer` as postcard writes it, into a buffer sized so that it never
/// reallocates (the pointer carries the snapshot's file key, and a
/// reallocation would free a copy of it unwiped; 10.4's limits keep a
/// pointer far below this size).
fn pointer_bytes(pointer: &FilePointer) -> postcard::Result<Vec<u8>> {
    postcard::to_extend(pointer, Vec::with_capacity(MAX_PROVISIONING_BYTES))
}

/// A pointer exactly as `postcard` writes it, within 10.4's limits.
fn decode_pointer(bytes: &[u8]) -> Result<FilePointer, LinkError> {
    const MALFORMED: LinkError =
        LinkError::ProvisioningMalformed("the snapshot is not one encoded file pointer");
    let (pointer, rest) = postcard::take_from_bytes::<FilePointer>(bytes).map_err(|_| MALFORMED)?;
    if !rest.is_empty() {
        return Err(MALFORMED);
    }
    // Postcard also reads a varint padded with empty groups; only the one
    // encoding of a pointer is accepted (the layout is canonical).
    let again = Zeroizing::new(pointer_bytes(&pointer).map_err(|_| MALFORMED)?);
    if again.as_slice() != bytes {
        return Err(LinkError::ProvisioningMalformed(
            "the snapshot pointer is not in its canonical encoding",
        ));
    }
    pointer
        .validate()
        .map_err(LinkError::ProvisioningSnapshot)?;
    Ok(pointer)
}

/// The unread rest of a provisioning.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn slice(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], LinkError> {
        if self.0.len() < len {
            return Err(LinkError::ProvisioningTruncated { field });
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], LinkError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(N, field)?);
        Ok(out)
    }

    /// As [`Reader::take`], into storage that is wiped on drop.
    fn take_secret<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<Zeroizing<[u8; N]>, LinkError> {
        let mut out = Zeroizing::new([0u8; N]);
        out.copy_from_slice(self.slice(N, field)?);
        Ok(out)
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, LinkError> {
        match self.take::<1>(field)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(LinkError::ProvisioningMalformed(
                "a presence flag is neither 0x00 nor 0x01",
            )),
        }
    }
}

impl std::fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioning")
            .field("account", &self.account)
            .field("username", &self.username)
            .field("identity", &"<redacted>")
            .field(
                "export_key",
                &self.export_key.as_ref().map(|_| "<redacted>"),
            )
            .field("snapshot", &self.snapshot.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}
