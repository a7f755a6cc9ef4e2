//! What one leaf commits to (docs/PROTOCOL.md §16.3): a hash chain of
//! versions, each naming the epoch it was published in and the value the
//! directory gave the label from then on, so a client that remembers version
//! n can demand that every later answer extends it, and an owner can read
//! every value ever published under its label.
//!
//! Must never: let one value be read as the other kind, or let a version
//! hash be computed over bytes another structure could also produce.

use sha2::{Digest, Sha256};

use super::error::KtError;
use super::label::{LABEL_ACCOUNT, LABEL_USERNAME};
use super::vrf::LeafIndex;
use crate::labels::{KT_DEVICE_LIST, KT_IDENTITY, KT_LEAF, KT_VERSION};
use crate::AccountId;

/// A SHA-256 output.
pub type Hash32 = [u8; 32];

/// Bytes of an account value: kind, identity hash, device-list hash.
pub const ACCOUNT_VALUE_LEN: usize = 65;
/// Bytes of a username value: kind, flag, account.
pub const USERNAME_VALUE_LEN: usize = 18;

/// What the directory says of a label from one version on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LeafValue {
    /// An account's published keys, as digests (the client has the bytes
    /// from the bundle or `Resolved` and the `DeviceList` answer).
    Account {
        /// `identity_hash` of §16.3, all zero before any identity is published.
        identity: Hash32,
        /// `device_list_hash` of §16.3, all zero while the implicit list applies.
        device_list: Hash32,
    },
    /// The account holding a username; `None` once it was released.
    Username {
        /// The holder.
        account: Option<AccountId>,
    },
}

impl LeafValue {
    /// The account value for a published identity (the 128-byte public
    /// identity exactly as served, or `None`) and signed device list (its
    /// whole 15.2 encoding, signature included, or `None` for the implicit list).
    pub fn account(identity: Option<&[u8]>, device_list: Option<&[u8]>) -> Self {
        LeafValue::Account {
            identity: identity.map_or([0; 32], |b| labelled_hash(KT_IDENTITY, b)),
            device_list: device_list.map_or([0; 32], |b| labelled_hash(KT_DEVICE_LIST, b)),
        }
    }

    /// The kind byte, equal to its label's.
    pub fn kind(&self) -> u8 {
        match self {
            LeafValue::Account { .. } => LABEL_ACCOUNT,
            LeafValue::Username { .. } => LABEL_USERNAME,
        }
    }

    /// The fixed-length encoding of §16.3.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            LeafValue::Account {
                identity,
                device_list,
            } => [&[LABEL_ACCOUNT][..], identity, device_list].concat(),
            LeafValue::Username { account } => {
                let mut out = vec![LABEL_USERNAME];
                match account {
                    Some(a) => {
                        out.push(0x01);
                        out.extend_from_slice(a.as_bytes());
                    }
                    None => out.extend_from_slice(&[0u8; 17]),
                }
                out
            }
        }
    }

    /// Reads one value from the front of `bytes` (its kind byte says its
    /// length) and returns it with the rest.
    pub fn take(bytes: &[u8]) -> Result<(Self, &[u8]), KtError> {
        let what = "leaf value";
        let &kind = bytes.first().ok_or(KtError::Truncated { what })?;
        let len = match kind {
            LABEL_ACCOUNT => ACCOUNT_VALUE_LEN,
            LABEL_USERNAME => USERNAME_VALUE_LEN,
            byte => return Err(KtError::UnknownByte { what, byte }),
        };
        if bytes.len() < len {
            return Err(KtError::Truncated { what });
        }
        let (value, rest) = bytes.split_at(len);
        let body = &value[1..];
        if kind == LABEL_ACCOUNT {
            let mut identity = [0; 32];
            let mut device_list = [0; 32];
            identity.copy_from_slice(&body[..32]);
            device_list.copy_from_slice(&body[32..]);
            let value = LeafValue::Account {
                identity,
                device_list,
            };
            return Ok((value, rest));
        }
        let mut account = [0u8; 16];
        account.copy_from_slice(&body[1..]);
        let value = match body[0] {
            0x01 => LeafValue::Username {
                account: Some(AccountId::from_bytes(account)),
            },
            0x00 if account == [0; 16] => LeafValue::Username { account: None },
            0x00 => {
                return Err(KtError::Malformed {
                    what: "released username with an account",
                })
            }
            byte => {
                return Err(KtError::UnknownByte {
                    what: "username flag",
                    byte,
                })
            }
        };
        Ok((value, rest))
    }
}

/// One version of a label: its number (from 1), epoch and value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionRecord {
    /// 1 for the first publication, one more for each later one.
    pub version: u64,
    /// The epoch whose map first holds this version.
    pub epoch: u64,
    /// What the directory says from this version on.
    pub value: LeafValue,
}

/// `C_n = SHA-256(KT_VERSION || u64be n || u64be epoch || value || C_{n-1})`;
/// `C_0` is 32 zero bytes.
pub fn chain_hash(record: &VersionRecord, prev: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update(KT_VERSION);
    h.update(record.version.to_be_bytes());
    h.update(record.epoch.to_be_bytes());
    h.update(record.value.encode());
    h.update(prev);
    h.finalize().into()
}

/// `SHA-256(KT_LEAF || index || C_N)`: the map's leaf for a label whose
/// latest chain hash is `chain`.
pub fn leaf_hash(index: &LeafIndex, chain: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update(KT_LEAF);
    h.update(index.0);
    h.update(chain);
    h.finalize().into()
}

fn labelled_hash(label: &[u8], bytes: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(label);
    h.update(bytes);
    h.finalize().into()
}
